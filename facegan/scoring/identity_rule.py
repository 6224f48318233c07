"""Which identity network scores identity cosine: one rule for ``facegan eval`` and ``facegan ablate``.

The network asked for (``--identity-net``; ``ablate`` asks for its baseline's choice, so every
run of a study is scored by the same network), else the recipe's ``eval.identity_net``, else
the network the run trained against (``loss.identity_net``). When the choice is the training
network, the recipe's ``loss.identity_weights`` (an explicit weights file, or None) comes with
it, so the score uses the weights the loss saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IdentityChoice:
    """The identity network that scores a run: its name and an explicit weights file (or None)."""

    name: str
    weights: str | None = None


def identity_net_for(recipe: Any, requested: str | None = None) -> IdentityChoice:
    """The identity network that scores ``recipe``'s run (module docstring): ``requested``, else
    ``eval.identity_net``, else ``loss.identity_net``; with ``loss.identity_weights`` when it
    is the training network."""
    name = requested or recipe.eval.identity_net or recipe.loss.identity_net
    weights = recipe.loss.identity_weights if name == recipe.loss.identity_net else None
    return IdentityChoice(name, weights)
