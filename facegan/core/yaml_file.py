"""YAML as users write it (recipe files, ablation specs, ``--set`` values): one-line errors,
no duplicate keys, and bounded work.

YAML aliases let a few lines stand for a huge value (``a: &a [x, x]``, ``b: &b [*a, *a]``, ...:
thirty lines make 10⁹ leaves), and deep nesting exhausts Python's recursion. Before anything
is built, the parsed node graph is measured without expanding it: a document whose expansion
holds more than :data:`MAX_VALUES` values, that nests deeper than :data:`MAX_DEPTH` levels, or
whose aliases refer to themselves is refused in one line. Files are read only when they are
regular files of at most :data:`MAX_BYTES`; UTF-8 (with or without a BOM) and UTF-16/32 with a
BOM are read, as the YAML specification allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from facegan.core.errors import FaceganError, not_found

#: The most values (scalars, sequences and mappings, aliases expanded) a document may stand for.
MAX_VALUES = 100_000
#: The deepest nesting of sequences and mappings a document may have.
MAX_DEPTH = 64
#: The largest YAML file read.
MAX_BYTES = 1 << 20

_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


class _DuplicateKey(Exception):
    """A YAML mapping names the same key twice."""


class _Unbounded(Exception):
    """A document that would expand too far, nest too deep, or refer to itself."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing duplicate keys (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(f"duplicate key {key!r} (lines {seen[key]} and {line}): keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_bounds(root: yaml.Node) -> None:
    """Raise :class:`_Unbounded` when ``root`` expands past :data:`MAX_VALUES` values, nests past
    :data:`MAX_DEPTH`, or holds an alias to one of its own ancestors. The graph is walked once,
    without recursion, each shared node (an anchor) measured once."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0) if kids else 0
            if size[key] > MAX_VALUES:
                raise _Unbounded(f"it expands to more than {MAX_VALUES:,} values (YAML aliases nested in aliases?)")
            if depth[key] > MAX_DEPTH:
                raise _Unbounded(f"it nests more than {MAX_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in on_path:
            raise _Unbounded("an alias refers to a value that contains it (a recursive YAML alias)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def _parse(text: str) -> Any:
    """The value of one YAML document, its size checked before it is built."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_bounds(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_yaml(text: str, where: str, lenient: bool = False) -> Any:
    """The YAML value of ``text``; FaceganError starting with ``where`` for anything unsafe or
    (unless ``lenient``: then the text itself is the value, as for ``--set key=some text``) invalid."""
    try:
        return _parse(text)
    except (_Unbounded, RecursionError) as err:
        reason = str(err) if isinstance(err, _Unbounded) else f"it nests more than {MAX_DEPTH} levels deep"
        raise FaceganError(f"{where}: refused: {reason}") from None
    except _DuplicateKey as err:
        raise FaceganError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        if lenient:
            return text
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FaceganError(f"{where}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None


def read_text(path: Path, what: str) -> str:
    """The text of the small regular file ``path``; one-line errors that say what is wrong."""
    try:
        info = path.stat()
    except OSError:
        reason = not_found(path)  # a symbolic link loop, no permission, or not there
        raise FaceganError(f"{what} {path} {'not found' if reason == 'does not exist' else reason}") from None
    if path.is_dir():
        raise FaceganError(f"{what} {path} is a folder, not a YAML file")
    if not path.is_file():
        raise FaceganError(f"{what} {path} is not a regular file (a device, pipe or socket); pass a YAML file")
    if info.st_size > MAX_BYTES:
        raise FaceganError(f"{what} {path} is {info.st_size / 2**20:.1f} MiB; a {what} is a small YAML text file "
                           f"(at most {MAX_BYTES // 2**20} MiB)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FaceganError(f"{what} {path} cannot be read ({err.strerror or err})") from None
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise FaceganError(f"{path}: not UTF-8 text (a {what} is a YAML text file; save it as UTF-8)") from None


def load_raw(path: str | Path, what: str = "recipe") -> Any:
    """The YAML value in the file ``path`` (a recipe, an ablation spec; {} for an empty file)."""
    path = Path(path)
    raw = parse_yaml(read_text(path, what), str(path))
    return raw if raw is not None else {}
