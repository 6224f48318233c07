"""`facegan models`: the models that ship with facegan."""

from __future__ import annotations

import typer

from facegan.commands.common import console as _console
from facegan.commands.common import reflowed, user_errors


@user_errors
@reflowed
def models(
    json_out: bool = typer.Option(False, "--json", help="Print the cards as JSON instead of a table."),
) -> None:
    """List the models bundled with facegan: task, size, training data, licence, test-split scores.

    Every command that takes a checkpoint takes a bundled model's name too
    (facegan restore --checkpoint inpaint-128, facegan eval sr8-128, facegan export sr4-128), and
    restore uses the bundled models of its task unless --checkpoint names another. A GAN model
    (name ending -gan) is its PSNR model fine-tuned with an adversarial term; --fidelity F blends
    the two (restore's default: the card's F). The scores are of the shipped weights on the
    identity-disjoint test split they were evaluated on (a GAN model's at its default F;
    docs/models.md has the full model card).

    Example: facegan models
    """
    import json

    from rich.table import Table

    from facegan.checkpoints.bundled import MODELS_DIR, list_models
    from facegan.data.build import human_bytes

    found = list_models()
    if json_out:
        # recipes left out (docs/models.md and the card files have them); earlier stages by source and steps
        print(json.dumps({m.name: {k: ([{"source": s.get("source"), "steps": s.get("steps")} for s in v]
                                       if k == "earlier_stages" else v)
                                   for k, v in m.card.items() if k != "recipe"} for m in found}, indent=2))
        return
    console = _console()
    if not found:
        console.print(f"no bundled models in {MODELS_DIR}")
        return
    table = Table(title="facegan's bundled models (docs/models.md)", caption_justify="left",
                  caption="scores: the shipped weights on the test split named; PSNR in dB (PSNR-Y for sr), mean over images, "
                          "then the best peer (a model users could run instead) and the best classical reference; "
                          "judge = dlib face descriptor, never used in training")
    for col in ("name", "task", "in -> out", "params", "file", "training data", "licence", "test scores"):
        table.add_column(col, justify="right" if col in ("params", "file") else "left",
                         no_wrap=col in ("name", "task", "params"))
    for m in found:
        c = m.card
        size, scale = c["size"], c.get("scale") or 1
        table.add_row(m.name, c["task"] + (f" x{scale}" if scale > 1 else ""), f"{size // scale} -> {size} px",
                      f"{c.get('parameters', 0) / 1e6:.2f} M", human_bytes(m.size_bytes) + f" {c.get('dtype', '')}",
                      c.get("training_data", "").split(":")[0], c.get("licence", ""),
                      _fidelity(c) + _scores(c.get("eval", {})))
    console.print(table)


def _fidelity(card: dict) -> str:
    """A GAN model's line: its PSNR partner and default --fidelity."""
    pair = card.get("fidelity")
    if not pair:
        return ""
    default = pair.get("default")
    return (f"GAN partner of {pair.get('psnr_model')}; restore runs the pair at --fidelity "
            f"{default:g}\n" if default is not None else f"GAN partner of {pair.get('psnr_model')}\n")


def _scores(evals: dict) -> str:
    """One line per eval setting: the model's PSNR (or PSNR-Y) and judge share, beside the best
    peer (a model users could run instead) and the best classical reference."""
    lines = []
    for key, ev in evals.items():
        m = ev.get("metrics", {})
        main = "psnr_y" if "psnr_y" in m else "psnr"
        refs = list(ev.get("references", {}).values())
        text = f"{key}: {m.get(main, float('nan')):.2f}"
        for group in ([r for r in refs if "(peer)" in r["name"]], [r for r in refs if "(peer)" not in r["name"]]):
            best = max(group, key=lambda r: r["metrics"].get(main, float("-inf")), default=None)
            if best is not None:
                text += f" · {best['name'].split(' (')[0].split(',')[0]} {best['metrics'].get(main, float('nan')):.2f}"
        if "judge_verified" in m:
            text += f", verified {m['judge_verified']:.0%}"
        lines.append(text)
    return "\n".join(lines) or "-"
