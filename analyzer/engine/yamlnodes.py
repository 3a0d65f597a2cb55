"""YAML read through PyYAML's node API so every value keeps its ``line:col``.

``yaml.compose`` builds the node tree without constructing Python objects; values are constructed
one node at a time with ``SafeConstructor`` (safe tags only), which lets every error name the exact
place in the file.

The tree is composed by libyaml (``CSafeLoader``) where PyYAML was built with it: the pure-Python
scanner was about a third of loading the shipped rule pack, libyaml does the same files 20x faster and
gives the same nodes and marks (a plain scalar's style is ``''`` there and ``None`` here; nothing reads
it beyond "is it quoted or a block"). A file libyaml rejects is composed again by the pure-Python
loader, so every error message and position stays PyYAML's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Loc:
    line: int  # 1-based
    col: int   # 1-based


class YamlError(ValueError):
    """Unparseable YAML; ``loc`` is where PyYAML noticed the problem."""

    def __init__(self, message: str, loc: Loc | None):
        super().__init__(message)
        self.message = message
        self.loc = loc


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def compose(text: str) -> Node | None:
    """The single document's root node (None for an empty file), or :class:`YamlError`."""
    try:
        root = _compose_tree(text)
        if root is not None:
            construct(root)  # unsafe or unknown tags (!!python/...) fail here, once, with a position
        return root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(mark.line + 1, mark.column + 1) if mark is not None else None
        message = f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}"
        if exc.context and exc.context_mark is not None and exc.problem:
            # Where the unclosed construct began is usually where the mistake is.
            start = exc.context_mark
            message += f" ({exc.context} that starts at {start.line + 1}:{start.column + 1})"
        raise YamlError(message, loc) from None
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters
        raise YamlError(f"invalid YAML: {exc}", None) from None
    except RecursionError:
        raise YamlError("invalid YAML: nested too deeply", None) from None


def _compose_tree(text: str) -> Node | None:
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except Exception:  # noqa: BLE001 - any failure: the pure-Python loader says what and where
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def loc(node: Node) -> Loc:
    return Loc(node.start_mark.line + 1, node.start_mark.column + 1)


def construct(node: Node) -> Any:
    """The Python value of ``node`` (safe tags only)."""
    constructor = SafeConstructor()
    return constructor.construct_object(node, deep=True)


def kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = construct(node)
    if value is None:
        return "null"
    return f"{type(value).__name__} {node.value!r}"


def pairs(node: MappingNode) -> Iterator[tuple[str, Node, Node, bool]]:
    """``(key, key_node, value_node, duplicate)`` for each entry; non-string keys are stringified."""
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, ScalarNode) else "<complex key>"
        yield key, key_node, value_node, key in seen
        seen.add(key)


def is_str(node: Node) -> bool:
    return isinstance(node, ScalarNode) and isinstance(construct(node), str)


def position_in_scalar(node: Node, source: str, offset: int) -> Loc:
    """Where character ``offset`` of a scalar's value sits in the file (best effort).

    Exact for single-line plain and quoted scalars without escapes and for literal (``|``) and
    folded (``>``) blocks; continuation lines are assumed to rejoin with one character each.
    """
    if not isinstance(node, ScalarNode):
        return loc(node)
    start, end = node.start_mark, node.end_mark
    lines = source.splitlines()
    if node.style in ("|", ">"):
        content = lines[start.line + 1 : end.line + 1]
        first_line = start.line + 1
        column0 = 0
    elif start.line == end.line:
        quote = 1 if node.style in ("'", '"') else 0
        return Loc(start.line + 1, start.column + 1 + quote + offset)
    else:
        quote = 1 if node.style in ("'", '"') else 0
        content = [" " * (start.column + quote) + lines[start.line][start.column + quote :]]
        content += lines[start.line + 1 : end.line + 1]
        first_line = start.line
        column0 = start.column + quote
    remaining = offset
    for i, raw in enumerate(content):
        indent = len(raw) - len(raw.lstrip(" ")) if (i > 0 or column0 == 0) else column0
        text = raw[indent:]
        if not text.strip():
            continue  # blank lines inside blocks do not show up as characters of a folded value
        if remaining <= len(text):
            return Loc(first_line + i + 1, indent + remaining + 1)
        remaining -= len(text) + 1
    return loc(node)


__all__ = [
    "Loc",
    "MAX_FILE_BYTES",
    "YamlError",
    "compose",
    "construct",
    "is_str",
    "kind",
    "loc",
    "pairs",
    "position_in_scalar",
]
