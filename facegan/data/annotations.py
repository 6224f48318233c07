"""CelebA's and CelebA-HQ's annotation files: where they live and what they say.

Formats, exactly as the official releases ship them (whitespace-separated, one image a line):

* ``list_eval_partition.txt`` (``Eval/``): ``000001.jpg 0``; 0 = train, 1 = val, 2 = test.
* ``identity_CelebA.txt`` (``Anno/``): ``000001.jpg 2880``.
* ``list_landmarks_align_celeba.txt`` and ``list_landmarks_celeba.txt`` (``Anno/``): a count
  line, a header line (``lefteye_x lefteye_y righteye_x ... rightmouth_y``), then
  ``000001.jpg 69 109 106 113 77 142 73 152 108 154``: left eye, right eye, nose, left and
  right mouth corner (x y each, image pixels; "left" = the image's left). The first file is
  for ``img_align_celeba`` (178x218), the second for ``img_celeba`` (in the wild).
* ``CelebA-HQ-to-CelebA-mapping.txt`` (CelebAMask-HQ): a header ``idx orig_idx orig_file``,
  then ``0 119613 119614.jpg``: CelebA-HQ image ``0.jpg`` was made from CelebA's
  ``119614.jpg`` (``orig_idx`` is 0-based).

Annotation files are looked for in a root folder and in its ``Anno/`` and ``Eval/``.
"""

from __future__ import annotations

from pathlib import Path

from facegan.core.errors import FaceganError

PARTITION = "list_eval_partition.txt"
IDENTITY = "identity_CelebA.txt"
LANDMARKS_ALIGNED = "list_landmarks_align_celeba.txt"
LANDMARKS_WILD = "list_landmarks_celeba.txt"
HQ_MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"

#: Where annotation files may sit, relative to the root given by the user.
ANNOTATION_DIRS = ("", "Anno", "Eval")
#: How the official partition numbers name the splits.
PARTITION_SPLITS = {"0": "train", "1": "val", "2": "test"}
LANDMARK_HEADER = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                   "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y")
WHERE_CELEBA_FILES = "CelebA's annotation files live in Anno/ and Eval/ of the official release"


def find_annotation(root: Path, name: str) -> Path | None:
    """``name`` in ``root``, ``root/Anno`` or ``root/Eval`` (first found), or None."""
    for sub in ANNOTATION_DIRS:
        path = Path(root) / sub / name
        if path.is_file():
            return path
    return None


def require_annotation(root: Path, name: str, hint: str = WHERE_CELEBA_FILES) -> Path:
    """Like :func:`find_annotation`, but a missing file is a one-line error saying where it lives."""
    path = find_annotation(root, name)
    if path is None:
        raise FaceganError(f"{name} not found in {root} (nor in its Anno/ or Eval/); {hint}")
    return path


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FaceganError(f"cannot read {path} ({exc.strerror or exc})") from None
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _bad_line(path: Path, number: int, fields: list[str], expected: str) -> FaceganError:
    got = " ".join(fields)
    got = got if len(got) <= 60 else got[:57] + "..."
    return FaceganError(f"{path} line {number}: expected '{expected}', got '{got}'")


def _two_columns(path: Path, expected: str) -> dict[str, str]:
    """``file value`` lines as a dict; duplicates and malformed lines are errors."""
    table: dict[str, str] = {}
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise _bad_line(path, number, fields, expected)
        if fields[0] in table:
            raise FaceganError(f"{path} line {number}: {fields[0]} is listed twice")
        table[fields[0]] = fields[1]
    if not table:
        raise FaceganError(f"{path} is empty")
    return table


def read_partition(path: Path) -> dict[str, str]:
    """``list_eval_partition.txt`` as {file: "train" | "val" | "test"}."""
    raw = _two_columns(path, "<file> <0|1|2>")
    bad = next((f for f, v in raw.items() if v not in PARTITION_SPLITS), None)
    if bad is not None:
        raise FaceganError(f"{path}: {bad} has partition {raw[bad]!r}; expected 0, 1 or 2")
    return {f: PARTITION_SPLITS[v] for f, v in raw.items()}


def read_identities(path: Path) -> dict[str, str]:
    """``identity_CelebA.txt`` as {file: identity number as text}."""
    table = _two_columns(path, "<file> <identity number>")
    bad = next((f for f, v in table.items() if not v.isdigit()), None)
    if bad is not None:
        raise FaceganError(f"{path}: {bad} has identity {table[bad]!r}; expected a number")
    return table


def read_landmarks(path: Path) -> dict[str, tuple[float, ...]]:
    """A CelebA landmark file as {file: (10 coordinates)} (count and header lines checked)."""
    lines = _lines(path)
    if len(lines) < 2:
        raise FaceganError(f"{path} is too short: it needs a count line and a header line")
    (n1, count), (n2, header) = lines[0], lines[1]
    if len(count) != 1 or not count[0].isdigit():
        raise _bad_line(path, n1, count, "<number of images>")
    if tuple(header) != LANDMARK_HEADER:
        raise _bad_line(path, n2, header, " ".join(LANDMARK_HEADER[:3]) + " ...")
    table: dict[str, tuple[float, ...]] = {}
    for number, fields in lines[2:]:
        if len(fields) != 11:
            raise _bad_line(path, number, fields, "<file> lefteye_x lefteye_y ... rightmouth_y")
        try:
            values = tuple(float(v) for v in fields[1:])
        except ValueError:
            raise _bad_line(path, number, fields, "<file> and ten numbers") from None
        if fields[0] in table:
            raise FaceganError(f"{path} line {number}: {fields[0]} is listed twice")
        table[fields[0]] = values
    if len(table) != int(count[0]):
        raise FaceganError(f"{path} says it lists {int(count[0])} images but lists {len(table)}")
    return table


def read_hq_mapping(path: Path) -> list[tuple[str, str]]:
    """``CelebA-HQ-to-CelebA-mapping.txt`` as [(CelebA-HQ file "N.jpg", CelebA file)] by idx."""
    lines = _lines(path)
    if not lines or lines[0][1] != ["idx", "orig_idx", "orig_file"]:
        found = " ".join(lines[0][1]) if lines else "an empty file"
        raise FaceganError(f"{path} should start with the header 'idx orig_idx orig_file', "
                           f"found '{found[:60]}'")
    rows: dict[int, str] = {}
    for number, fields in lines[1:]:
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise _bad_line(path, number, fields, "<idx> <orig_idx> <orig_file>")
        idx = int(fields[0])
        if idx in rows:
            raise FaceganError(f"{path} line {number}: idx {idx} is listed twice")
        rows[idx] = fields[2]
    if not rows:
        raise FaceganError(f"{path} lists no images")
    return [(f"{idx}.jpg", rows[idx]) for idx in sorted(rows)]
