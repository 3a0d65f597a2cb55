"""timm's ``args.yaml`` (and wandb's ``config.yaml`` copy of it) -> the arguments as written (the merge step
makes them a :class:`TrainConfig` with the defaults of their era: ``timm.defaults.build_config``).

timm writes ``yaml.safe_dump(vars(args))`` right after argparse (timm-formats.md §9): every key of
that version, sorted, and nothing derived at run time. ``lr: null`` (v0.8.2dev0+) means the LR was
computed from ``lr_base`` and the global batch (§6.6); ``timm/recipe.py`` redoes that computation.

The file is user input, so it is loaded defensively: safe loading only, a size cap, and a check of
how far YAML aliases expand before any Python object is built (a "billion laughs" document is a
few hundred bytes that expand to 10^9 nodes when anything walks the result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.config_sanity import impossible_values
from mnv4_postmortem.analyzer.ingest.decode import decode_bytes, detect, head_text
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef
from mnv4_postmortem.analyzer.timm.argument_names import ARGUMENT_NAMES, ArgsVerdict, classify_args

__all__ = [
    "ArgsYaml",
    "parse_args_yaml",
    "parse_wandb_config",
]

# A real args.yaml is 2-6 kB (a wandb config.yaml ~10 kB); 1 MiB is far beyond any, and a YAML
# document that size still loads in well under a second.
MAX_YAML_BYTES = 1024 * 1024
# How many extra nodes aliases may add by repetition. Real args.yaml files have none (safe_dump of
# a flat namespace); a few shared lists are fine, exponential growth is not.
MAX_ALIAS_EXPANSION = 100_000
# wandb's bookkeeping entries in config.yaml, not training arguments.
_WANDB_META_KEYS = frozenset({"_wandb", "wandb_version"})
# libyaml when present: much faster, and it enforces a nesting-depth limit itself.
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True, eq=False)
class ArgsYaml:
    """An args.yaml as read: ``args`` holds the keys as timm spells them, values untouched."""

    path: str
    args: Mapping[str, Any]
    issues: tuple[IngestIssue, ...]


def parse_args_yaml(path: Path, display_path: str | None = None) -> ArgsYaml:
    """Read a timm args.yaml. Raises :class:`IngestError` (naming file and line) when unusable."""
    path = Path(path)
    shown = display_path if display_path is not None else str(path)
    mapping, issues, line_of = _load_mapping(path, shown)
    issues += impossible_values(mapping, line_of, shown)
    return ArgsYaml(shown, mapping, tuple(issues))


def parse_wandb_config(path: Path, display_path: str | None = None) -> ArgsYaml:
    """Read wandb's ``config.yaml``: ``key: {desc: ..., value: ...}`` per argument -> ``key: value``.

    wandb stores ``wandb.init(config=args)`` this way (timm ``--log-wandb``); its own ``_wandb`` and
    ``wandb_version`` entries are dropped.
    """
    path = Path(path)
    shown = display_path if display_path is not None else str(path)
    mapping, issues, line_of = _load_mapping(path, shown)
    args: dict[str, Any] = {}
    for key, entry in mapping.items():
        if key in _WANDB_META_KEYS:
            continue
        if isinstance(entry, Mapping) and "value" in entry:
            args[key] = entry["value"]
        else:
            args[key] = entry
            issues.append(IngestIssue(SourceRef(shown), f"{key!r} is not a wandb entry with a 'value'; kept as is"))
    issues += impossible_values(args, line_of, shown)
    return ArgsYaml(shown, args, tuple(issues))


# --------------------------------------------------------------------------------------------
# Loading


def _load_mapping(path: Path, shown: str) -> tuple[dict[str, Any], list[IngestIssue], dict[str, int]]:
    """The top-level mapping, the issues met, and the line of each top-level key."""
    text, decoding = _read_text(path, shown)
    loader = _BASE_LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise IngestError("empty file: no arguments", SourceRef(shown))
        if not isinstance(root, yaml.MappingNode):
            kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
            raise IngestError(f"not an args file: the top level is {kind}, not key: value pairs", _mark_ref(shown, root.start_mark))
        if "&" in text and "*" in text:  # an alias needs an anchor: without both there is none
            _check_alias_expansion(root, shown)
        loader.flatten_mapping(root)  # resolve ``<<: *base`` merge keys as safe_load would
        issues = decoding + _duplicate_key_issues(root, shown)
        mapping = _construct_pairs(loader, root, shown, issues)
        line_of = {str(key.value): key.start_mark.line + 1 for key, _ in root.value if isinstance(key, yaml.ScalarNode)}
    except yaml.YAMLError as exc:
        raise IngestError(f"YAML error: {_describe_yaml_error(exc)}", _yaml_error_ref(exc, shown, text)) from None
    finally:
        loader.dispose()
    if root.value and not mapping:
        raise IngestError(f"no readable arguments; first problem: {issues[-1].message}", issues[-1].source)
    return mapping, issues, line_of


def _construct_pairs(loader: Any, root: yaml.MappingNode, shown: str, issues: list[IngestIssue]) -> dict[str, Any]:
    """Build the top-level mapping one key at a time, so one unreadable value costs only its key."""
    mapping: dict[str, Any] = {}
    for key_node, value_node in root.value:
        try:
            key = loader.construct_object(key_node, deep=True)
            value = loader.construct_object(value_node, deep=True)
            hash(key)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            # The safe constructor still raises on odd scalars (a date 2021-13-45, bad !!binary,
            # an unknown tag such as !!python/object); those keys are skipped, not executed.
            loader.recursive_objects.clear()
            line = value_node.start_mark.line + 1
            why = _describe_yaml_error(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
            issues.append(IngestIssue(SourceRef(shown, line=line), f"value at line {line} skipped: {why}"))
            continue
        if not isinstance(key, str):
            issues.append(IngestIssue(SourceRef(shown, line=key_node.start_mark.line + 1), f"key {key!r} is not a string; kept as {str(key)!r}"))
            key = str(key)
        mapping[key] = value
    return mapping


def _read_text(path: Path, shown: str) -> tuple[str, list[IngestIssue]]:
    """The file's text in whatever encoding it announces (see ``decode.py``), and how it was decoded."""
    with open_input(path, shown) as handle:
        raw = handle.read(MAX_YAML_BYTES + 1)
    if len(raw) > MAX_YAML_BYTES:
        raise IngestError(f"file is over the {MAX_YAML_BYTES}-byte limit for an args file", SourceRef(shown))
    if detect(raw).is_utf8:   # UTF-16 text is full of NUL bytes; its NUL characters are checked below
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise IngestError(f"binary content (NUL byte at byte {nul})",
                              SourceRef(shown, line=raw.count(b"\n", 0, nul) + 1, offset=nul))
    text, issues = decode_bytes(raw, shown)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise IngestError(f"binary content (NUL character at character {nul})", SourceRef(shown, line=line))
    return text, issues


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_alias_expansion(root: yaml.Node, shown: str) -> None:
    """Refuse documents whose aliases expand far beyond what is written, or refer to themselves.

    Composing keeps an alias as a second reference to the same node, so the node graph is as small
    as the text; counting each node's expanded size over that graph (memoized, iterative) costs the
    same. The first node found over the budget is the one named in the error.
    """
    distinct = _count_distinct(root)
    budget = distinct + MAX_ALIAS_EXPANSION
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = _weight(node) + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > budget:
                raise IngestError(
                    f"YAML aliases expand this document over {MAX_ALIAS_EXPANSION} nodes beyond what is written "
                    "(an alias bomb?); refusing to load",
                    _mark_ref(shown, node.start_mark),
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise IngestError("YAML alias refers to a node that contains it (recursive structure)", _mark_ref(shown, node.start_mark))
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _weight(node: yaml.Node) -> int:
    """A node's cost: 1, plus one per 64 characters of a scalar (an aliased 1 MB string costs too)."""
    return 1 + len(node.value) // 64 if isinstance(node, yaml.ScalarNode) else 1


def _count_distinct(root: yaml.Node) -> int:
    """The summed weight of the nodes as written (each shared node once)."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        total += _weight(node)
        stack.extend(_children(node))
    return total


def _duplicate_key_issues(root: yaml.MappingNode, shown: str) -> list[IngestIssue]:
    """YAML keeps the last of repeated keys silently; say so (timm never writes them, hand edits do)."""
    first_line: dict[str, int] = {}
    issues = []
    for key_node, _value in root.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in first_line:
            issues.append(
                IngestIssue(
                    SourceRef(shown, line=line),
                    f"key {key_node.value!r} repeats line {first_line[key_node.value]}; the later value is used",
                )
            )
        else:
            first_line[key_node.value] = line
    return issues


def _mark_ref(shown: str, mark: Any) -> SourceRef:
    return SourceRef(shown, line=mark.line + 1) if mark is not None else SourceRef(shown)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return f"{where}{what or exc}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _yaml_error_ref(exc: yaml.YAMLError, shown: str, text: str) -> SourceRef:
    if isinstance(exc, yaml.MarkedYAMLError):
        return _mark_ref(shown, exc.problem_mark or exc.context_mark)
    position = getattr(exc, "position", None)  # ReaderError: a character index
    if isinstance(position, int):
        return SourceRef(shown, line=text.count("\n", 0, position) + 1)
    return SourceRef(shown)


# --------------------------------------------------------------------------------------------
# The registered formats (see ``formats.py``)

# A top-level ``key:`` at the start of a line: enough of YAML to sniff which names a settings file holds.
_TOP_LEVEL_KEY = re.compile(rb"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:", re.MULTILINE)
OTHER_CONFIG_FAMILY = "other config (not timm train.py arguments)"


def _is_yaml_name(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


_WANDB_VALUE = re.compile(rb"\n[ \t]+value:")  # wandb indents by 2 (older clients) or 4 (0.18+) spaces


def _is_wandb(head: bytes) -> bool:
    text = b"\n" + head
    return b"_wandb:" in text and _WANDB_VALUE.search(text) is not None


def _head_keys(head: bytes) -> list[str]:
    text = head_text(head).encode("utf-8")  # a BOM or UTF-16 must not hide the keys (ingest/decode.py)
    return [m.group(1).decode("ascii", "replace") for m in _TOP_LEVEL_KEY.finditer(text)]


def args_contribution(args: ArgsYaml, family: str, format_name: str = "args_yaml") -> Contribution:
    """An args file (or an excerpt's arguments) as the run's configuration."""
    return Contribution(
        format=format_name,
        sources=(SourceInfo(args.path, "args_yaml", family, None, (), None, len(args.args)),),
        args=args.args,
        args_source=SourceRef(args.path),
        issues=args.issues,
    )


def other_config_contribution(args: ArgsYaml, verdict: ArgsVerdict, format_name: str = "args_yaml") -> Contribution:
    """A settings file that is not timm's arguments (timm/argument_names.py): its keys are listed, none is
    read as a train.py setting, so no timm default is filled in on its account."""
    info = SourceInfo(args.path, "other", f"{OTHER_CONFIG_FAMILY}: {verdict.reason()}", None, (), None,
                      len(args.args), config_keys=tuple(str(k) for k in args.args))
    return Contribution(format=format_name, sources=(info,), issues=args.issues)


class _ArgsYamlFormat:
    """timm's args.yaml, and any YAML settings file that names a train.py argument: the parse decides, on all
    its keys, whether it is timm's arguments or "other config" (``timm.argument_names.classify_args``)."""

    name = "args_yaml"
    names = ("args.yaml",)
    kind: SourceKind = "args_yaml"
    family = "timm args.yaml"

    def sniff(self, name: str, head: bytes) -> str | None:
        if not _is_yaml_name(name) or _is_wandb(head):
            return None
        keys = _head_keys(head)
        if not any(key in ARGUMENT_NAMES for key in keys):
            return None  # a YAML file about something else (a dataset list, a CI config): not ours
        return self.family if classify_args(keys).timm else OTHER_CONFIG_FAMILY

    def parse(self, path: Path, shown: str) -> Contribution:
        args = parse_args_yaml(path, shown)
        verdict = classify_args(args.args)
        if verdict.timm:
            return args_contribution(args, self.family)
        if Path(path).name == "args.yaml":
            # timm's own output name, not timm's arguments (a hand-edited file, another trainer's): say so by
            # name (issue 17), never drop it silently; its keys are still listed as other config (issue 19).
            args = ArgsYaml(args.path, args.args, args.issues + (IngestIssue(
                SourceRef(shown), f"args.yaml not read as timm's train.py arguments: {verdict.reason()}; "
                                  "its keys are listed as other config"),))
        return other_config_contribution(args, verdict)


class _WandbConfigFormat:
    """wandb's config.yaml copy of the arguments (``--log-wandb``)."""

    name = "wandb_config"
    names = ("config.yaml",)
    kind: SourceKind = "args_yaml"
    family = "wandb config.yaml"

    def sniff(self, name: str, head: bytes) -> str | None:
        return self.family if _is_yaml_name(name) and _is_wandb(head) else None

    def parse(self, path: Path, shown: str) -> Contribution:
        args = parse_wandb_config(path, shown)
        verdict = classify_args(args.args)  # wandb keeps any project's config, not only timm's arguments
        return (args_contribution(args, self.family, self.name) if verdict.timm
                else other_config_contribution(args, verdict, self.name))


ARGS_YAML = _ArgsYamlFormat()
WANDB_CONFIG = _WandbConfigFormat()
