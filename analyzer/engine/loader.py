"""Load a rule pack from files and folders, keeping every good rule when some files are broken.

Folders are walked for ``*.yaml`` (``*.test.yaml`` are rule tests, ``causes.yaml`` declares extra
causes); the shipped pack is read through ``importlib.resources``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from yaml.nodes import MappingNode, Node, SequenceNode

from mnv4_postmortem.analyzer.engine import yamlnodes as yn
from mnv4_postmortem.analyzer.engine.expr import ROOT_NAMES
from mnv4_postmortem.analyzer.engine.schema import CAUSES, KEBAB, KnownNames, Rule, RuleError, RuleParser, as_name_check

BUILTIN_PACKAGE = "mnv4_postmortem.rules"
CAUSES_FILE = "causes.yaml"
TEST_SUFFIX = ".test.yaml"
# What a cause asserts about a setting, as the way its treatment must move it ("lr-too-low" -> lr: higher).
# The verifier holds every treatment to it (runner/targets.py).
DIRECTIONS = ("lower", "higher")


# What a cause says about testing it (causes.yaml): the metric its fix should move, and the recipe
# component an ablation rung toggles for it. A cause that declares no metric is about how the raw model
# trains, so its fix is judged on the raw model's own top-1.
CAUSE_METRICS = ("eval_top1", "eval_top1_model")
DEFAULT_CAUSE_METRIC = "eval_top1_model"
ABLATION_COMPONENTS = ("ema", "lr", "regularization")
CAUSE_FIELDS = ("id", "description", "metric", "ablation", "treatment")


@dataclass(frozen=True, slots=True)
class CauseInfo:
    metric: str = DEFAULT_CAUSE_METRIC   # the metric a fix for this cause should move
    ablation: str | None = None          # the ablation component that toggles this cause (ABLATION_COMPONENTS)


@dataclass(frozen=True, slots=True)
class RulePack:
    rules: tuple[Rule, ...]
    errors: tuple[RuleError, ...] = ()
    causes: Mapping[str, str] = field(default_factory=lambda: dict(CAUSES))
    notices: tuple[str, ...] = ()  # what the user should know but is not an error (a shipped rule overridden)
    # cause -> {setting: "lower" | "higher"}: the direction a treatment of that cause moves each setting
    treatments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    cause_info: Mapping[str, CauseInfo] = field(default_factory=dict)  # causes.yaml's metric / ablation per cause

    def info(self, cause: str) -> CauseInfo:
        """What the catalog says about testing ``cause`` (the defaults when it says nothing)."""
        return self.cause_info.get(cause, CauseInfo())

    def causes_toggled_by(self, component: str) -> tuple[str, ...]:
        """The causes an ablation rung for ``component`` tests."""
        return tuple(c for c, i in self.cause_info.items() if i.ablation == component)

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id or alias."""
        for rule in self.rules:
            if rule.id == rule_id or rule_id in rule.aliases:
                return rule
        return None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)


@dataclass(frozen=True, slots=True)
class _Source:
    display: str     # how messages name the file
    stem: str        # the file name without .yaml: must equal the rule id
    read: Any        # () -> str


def _read_text(display: str, read: Any) -> tuple[str | None, RuleError | None]:
    try:
        data = read()
    except OSError as exc:
        return None, RuleError(display, None, None, None, f"cannot read: {exc.strerror or exc}")
    if len(data) > yn.MAX_FILE_BYTES:
        return None, RuleError(display, None, None, None, f"file is larger than {yn.MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, RuleError(display, None, None, None, f"not UTF-8 text (byte offset {exc.start})")


def _stem(name: str) -> str:
    return name[: -len(".yaml")] if name.endswith(".yaml") else name


def _walk_paths(paths: Sequence[Path | str]) -> tuple[list[_Source], list[_Source], list[RuleError]]:
    rules: list[_Source] = []
    causes: list[_Source] = []
    errors: list[RuleError] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*.yaml")
                if p.is_file() and not any(part.startswith((".", "__")) for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files = [path]
        else:
            errors.append(RuleError(str(path), None, None, None, "no such file or directory"))
            continue
        for file in files:
            source = _Source(str(file), _stem(file.name), file.read_bytes)
            if file.name.endswith(TEST_SUFFIX):
                continue
            (causes if file.name == CAUSES_FILE else rules).append(source)
    return rules, causes, errors


def _walk_traversable(root: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    for child in sorted(root.iterdir(), key=lambda c: c.name):
        if child.name.startswith((".", "__")):
            continue
        if child.is_dir():
            yield from _walk_traversable(child, f"{prefix}{child.name}/")
        elif child.name.endswith(".yaml"):
            yield f"{prefix}{child.name}", child


def _parse_causes(source: _Source, catalog: dict[str, str], info: dict[str, CauseInfo] | None = None,
                  treatments: dict[str, dict[str, str]] | None = None) -> list[RuleError]:
    text, error = _read_text(source.display, source.read)
    if error:
        return [error]
    errors: list[RuleError] = []
    treatments = {} if treatments is None else treatments

    def fail(node: Node | None, fld: str | None, message: str) -> None:
        where = yn.loc(node) if node is not None else None
        errors.append(RuleError(source.display, where and where.line, where and where.col, fld, message))

    try:
        root = yn.compose(text)
    except yn.YamlError as exc:
        errors.append(RuleError(source.display, exc.loc and exc.loc.line, exc.loc and exc.loc.col, None, exc.message))
        return errors
    if root is None:
        return errors
    if not isinstance(root, SequenceNode):
        fail(root, None, "causes.yaml holds a list of {id, description}")
        return errors
    for i, item in enumerate(root.value):
        if not isinstance(item, MappingNode):
            fail(item, f"[{i}]", "expected a mapping with id and description")
            continue
        entry: dict[str, tuple[Node, Any]] = {}
        for key, key_node, value_node, _ in yn.pairs(item):
            if key not in CAUSE_FIELDS:
                fail(key_node, f"[{i}].{key}", f"unknown field (allowed: {', '.join(CAUSE_FIELDS)})")
            entry[key] = (value_node, yn.construct(value_node))
        cause_node, cause = entry.get("id", (item, None))
        # A cause already in the catalog may be named without a description, to add metadata (treatment).
        default = catalog.get(cause, "") if isinstance(cause, str) else ""
        description = entry.get("description", (item, default))[1]
        if not isinstance(cause, str) or not KEBAB.match(cause):
            fail(cause_node, f"[{i}].id", "a cause id is a kebab-case string")
        elif not isinstance(description, str) or not description.strip():
            fail(item, f"[{i}].description", "missing description")
        elif cause in catalog and catalog[cause] != description:
            fail(cause_node, f"[{i}].id", f"cause '{cause}' is already declared")
        else:
            catalog[cause] = description
            if "treatment" in entry and treatments is not None:
                errors.extend(_parse_treatment(source, i, cause, *entry["treatment"], treatments))
            parsed = _cause_info(entry, i, fail)
            if parsed is not None and info is not None:
                info[cause] = parsed
    return errors


def _parse_treatment(source: _Source, i: int, cause: str, node: Node, value: Any,
                     treatments: dict[str, dict[str, str]]) -> list[RuleError]:
    """``treatment: {lr: higher}``: each setting a fix of this cause moves, and which way."""
    where = yn.loc(node)
    if not isinstance(value, dict) or not value or not all(
            isinstance(k, str) and v in DIRECTIONS for k, v in value.items()):
        return [RuleError(source.display, where and where.line, where and where.col, f"[{i}].treatment",
                          f"a mapping of setting -> {' | '.join(DIRECTIONS)}")]
    treatments[cause] = dict(value)
    return []


def _cause_info(entry: Mapping[str, tuple[Node, Any]], i: int, fail: Any) -> CauseInfo | None:
    """The optional testing metadata of one causes.yaml entry; None when it declares none or is invalid."""
    if "metric" not in entry and "ablation" not in entry:
        return None
    metric_node, metric = entry.get("metric", (None, DEFAULT_CAUSE_METRIC))
    ablation_node, ablation = entry.get("ablation", (None, None))
    if metric not in CAUSE_METRICS:
        fail(metric_node, f"[{i}].metric", f"metric must be one of {', '.join(CAUSE_METRICS)}")
        return None
    if ablation is not None and ablation not in ABLATION_COMPONENTS:
        fail(ablation_node, f"[{i}].ablation", f"ablation must be one of {', '.join(ABLATION_COMPONENTS)}")
        return None
    return CauseInfo(metric, ablation)


def _load_sources(
    rule_sources: Iterable[_Source],
    cause_sources: Iterable[_Source],
    errors: list[RuleError],
    *,
    known_names: KnownNames,
    causes: Mapping[str, str] | None,
    roots: tuple[str, ...],
) -> RulePack:
    catalog = dict(CAUSES if causes is None else causes)
    treatments: dict[str, dict[str, str]] = {}
    info: dict[str, CauseInfo] = {}
    for source in cause_sources:
        errors.extend(_parse_causes(source, catalog, info, treatments))
    known = as_name_check(known_names)
    rules: list[Rule] = []
    claimed: dict[str, str] = {}  # id or alias -> "file:line" of the rule that claimed it
    for source in rule_sources:
        text, error = _read_text(source.display, source.read)
        if error:
            errors.append(error)
            continue
        try:
            root = yn.compose(text)
        except yn.YamlError as exc:
            errors.append(RuleError(source.display, exc.loc and exc.loc.line, exc.loc and exc.loc.col, None, exc.message))
            continue
        parser = RuleParser(source.display, text, stem=source.stem, causes=catalog, known=known, roots=roots)
        rule = parser.parse(root)
        errors.extend(parser.errors)
        if rule is None:
            continue
        clash = next((name for name in (rule.id, *rule.aliases) if name in claimed), None)
        if clash is not None:
            line, col = rule.location("id")
            what = "id" if clash == rule.id else "alias"
            errors.append(
                RuleError(source.display, line, col, "id", f"duplicate {what} '{clash}' (first defined at {claimed[clash]})", rule.id)
            )
            continue
        line, _ = rule.location("id")
        for name in (rule.id, *rule.aliases):
            claimed[name] = f"{source.display}:{line}"
        rules.append(rule)
    return RulePack(rules=tuple(rules), errors=tuple(errors), causes=catalog, treatments=treatments, cause_info=info)


def load_rules(
    paths: Sequence[Path | str],
    *,
    known_names: KnownNames = None,
    causes: Mapping[str, str] | None = None,
    roots: tuple[str, ...] = ROOT_NAMES,
) -> RulePack:
    """Load every rule under ``paths`` (files or folders).

    ``known_names``: a ``Callable[[str], bool]`` answering for dotted paths *and their prefixes*
    (``"series"``, ``"series.eval_top1"``, ``"series.eval_top1.stall"``), or a nested mapping
    (see :class:`~.schema.NameSchema`). Without it, only the root names are checked.
    ``causes`` replaces the built-in catalog (``causes.yaml`` files found add to it).
    """
    rule_sources, cause_sources, errors = _walk_paths(paths)
    return _load_sources(rule_sources, cause_sources, errors, known_names=known_names, causes=causes, roots=roots)


def builtin_rules_root() -> Any:
    """The shipped pack's folder (a ``Path`` for normal installs, else a Traversable)."""
    return importlib.resources.files(BUILTIN_PACKAGE)


def load_builtin_rules(*, known_names: KnownNames = None, roots: tuple[str, ...] = ROOT_NAMES) -> RulePack:
    """The shipped pack, read through ``importlib.resources`` (works from a wheel or a zip too)."""
    root = builtin_rules_root()
    if isinstance(root, Path):
        return load_rules([root], known_names=known_names, roots=roots)
    rule_sources: list[_Source] = []
    cause_sources: list[_Source] = []
    for display, entry in _walk_traversable(root, "rules/"):
        name = display.rsplit("/", 1)[-1]
        if name.endswith(TEST_SUFFIX):
            continue
        source = _Source(display, _stem(name), entry.read_bytes)
        (cause_sources if name == CAUSES_FILE else rule_sources).append(source)
    return _load_sources(rule_sources, cause_sources, [], known_names=known_names, causes=None, roots=roots)


def load_pack(
    extra: Sequence[Path | str] = (),
    *,
    builtin: bool = True,
    known_names: KnownNames = None,
) -> RulePack:
    """The shipped rules plus the user's own (``--rules PATH``), broken files kept as errors.

    A user rule whose id (or alias) equals a shipped rule's replaces that shipped rule, and the pack
    says so in ``notices``: a ``--rules`` user expects an override, never the same rule twice. Two
    user rules with the same id are an error naming both files (the loader's duplicate check).
    """
    shipped = load_builtin_rules(known_names=known_names) if builtin else None
    user = load_rules(list(extra), known_names=known_names) if extra else None
    if shipped is None:
        return user if user is not None else RulePack(rules=())
    if user is None:
        return shipped
    return _overlay(shipped, user)


def _overlay(shipped: RulePack, user: RulePack) -> RulePack:
    claims = {name: rule for rule in user.rules for name in (rule.id, *rule.aliases)}
    kept: list[Rule] = []
    notices: list[str] = list(shipped.notices) + list(user.notices)
    for rule in shipped.rules:
        override = next((claims[name] for name in (rule.id, *rule.aliases) if name in claims), None)
        if override is None:
            kept.append(rule)
        else:
            notices.append(f"rule '{rule.id}' from {override.path} replaces the shipped rule ({rule.path})")
    causes = {**dict(shipped.causes), **dict(user.causes)}
    info = {**dict(shipped.cause_info), **dict(user.cause_info)}
    return RulePack(rules=tuple(kept) + user.rules, errors=shipped.errors + user.errors, causes=causes,
                    notices=tuple(notices), treatments={**dict(shipped.treatments), **dict(user.treatments)},
                    cause_info=info)


def find_test_files(paths: Sequence[Path | str]) -> list[Path]:
    """Every ``*.test.yaml`` under ``paths`` (files are kept as given), sorted."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{TEST_SUFFIX}") if p.is_file()))
        elif path.name.endswith(TEST_SUFFIX):
            found.append(path)
    return found


__all__ = [
    "CauseInfo",
    "RulePack",
    "builtin_rules_root",
    "find_test_files",
    "load_builtin_rules",
    "load_pack",
    "load_rules",
]
