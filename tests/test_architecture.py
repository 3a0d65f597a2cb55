"""Structure checks: one import namespace, and data flowing one way through the stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

# stage -> stages it must never import (directly). Renderers never compute diagnoses; the pipeline
# wires the stages but renders nothing; the CLI reaches analysis only through the pipeline, the
# rule loader and the renderer registry (never a stage's internals).
FORBIDDEN = {
    "analyzer/ingest": ("detect", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
    "analyzer/detect": ("ingest", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
    "analyzer/features": ("ingest", "engine", "render", "pipeline", "diagnosis"),
    "analyzer/engine": ("ingest", "detect", "features", "render", "pipeline", "diagnosis"),
    "analyzer/render": ("ingest", "detect", "features", "engine", "pipeline"),
    "analyzer/pipeline.py": ("render",),
    "analyzer/diagnosis.py": ("ingest", "detect", "features", "engine", "render", "pipeline"),
    "mnv4_postmortem/cli": ("detect", "features.derived", "features.namespace", "engine.evaluate", "render.text",
                            "render.json_render", "render.html", "render.batch_", "render.rule"),
    # The ground floor of timm knowledge: every stage reads it, it reads none of them.
    "analyzer/timm": ("ingest", "detect", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
}

# analyzer/timm/ may import only these: model.py, itself, the standard library and numpy.
TIMM_ALLOWED_PROJECT = ("mnv4_postmortem.analyzer.model", "mnv4_postmortem.analyzer.timm")
TIMM_ALLOWED_THIRD_PARTY = ("numpy",)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative import inside the analyzer package
                package = ".".join(path.relative_to(REPO).with_suffix("").parts[: -node.level])
                module = f"{package}.{module}".strip(".")
                module = module.replace("analyzer", "mnv4_postmortem.analyzer", 1)
            names.add(module)
    return names


def _python_files(where: Path) -> list[Path]:
    return [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))


def test_stages_import_only_to_their_left():
    for folder, banned in FORBIDDEN.items():
        assert (REPO / folder).exists(), folder
        for path in _python_files(REPO / folder):
            for module in imported_modules(path):
                for stage in banned:
                    assert not module.startswith(f"mnv4_postmortem.analyzer.{stage}"), f"{path.relative_to(REPO)} imports {module}"


def test_timm_package_imports_only_model_stdlib_and_numpy():
    import sys

    files = list((REPO / "analyzer" / "timm").rglob("*.py"))
    assert files, "analyzer/timm/ is missing"
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("mnv4_postmortem"):
                ok = any(module == allowed or module.startswith(allowed + ".") for allowed in TIMM_ALLOWED_PROJECT)
            else:
                ok = top in sys.stdlib_module_names or top in TIMM_ALLOWED_THIRD_PARTY or top == "__future__"
            assert ok, f"{path.relative_to(REPO)} imports {module}"


def test_no_generic_top_level_packages_are_installed():
    """Every package the wheel installs lives under mnv4_postmortem (no bare `analyzer` or `runner`)."""
    tomllib = pytest.importorskip("tomllib")
    setuptools_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = list(setuptools_config["packages"]) + list(setuptools_config["package-dir"])
    assert names and all(n == "mnv4_postmortem" or n.startswith("mnv4_postmortem.") for n in names), names
    # and every folder with Python code under analyzer/ is listed, so none is silently left out of the wheel
    listed = set(setuptools_config["packages"])
    for init in (REPO / "analyzer").rglob("__init__.py"):
        dotted = ".".join(("mnv4_postmortem", *init.parent.relative_to(REPO).parts))
        assert dotted in listed, f"{dotted} is not in [tool.setuptools] packages"


def test_core_never_imports_torch_at_import_time():
    """The core needs no torch: timm is only tried lazily (input_size asks timm's pretrained config when present)."""
    for path in (REPO / "analyzer").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("torch", "timm") for n in names), path


def test_rule_names_table_matches_the_derived_fields():
    """features/names.py lists Derived's fields for the light rule loader; they must not drift apart."""
    from dataclasses import fields

    from mnv4_postmortem.analyzer.features.derived import Derived
    from mnv4_postmortem.analyzer.features.names import DERIVED_FIELDS

    assert DERIVED_FIELDS == {f.name for f in fields(Derived)}


# The runner's boundaries: the analyzer never imports the runner; the runner's planning modules and
# the CLI import neither torch nor timm at module level (only the trainer, proxy and artifacts do).
TORCH_FREE_RUNNER = ("spec.py", "scaling.py", "verify.py", "targets.py", "reproduce.py", "launch.py", "script.py",
                     "__init__.py", "ablation.py", "ablation_run.py", "lr_find.py", "show_batch.py")


def _module_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_the_analyzer_never_imports_the_runner():
    for path in (REPO / "analyzer").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith("mnv4_postmortem.runner"), f"{path.relative_to(REPO)} imports {module}"


def test_runner_planning_and_cli_modules_load_without_torch():
    paths = [REPO / "runner" / name for name in TORCH_FREE_RUNNER] + list((REPO / "mnv4_postmortem").rglob("*.py"))
    for path in paths:
        for name in _module_level_imports(path):
            assert name.split(".")[0] not in ("torch", "timm", "torchvision"), f"{path.relative_to(REPO)} imports {name}"
            if path.parent.name == "cli":
                assert not name.startswith("mnv4_postmortem.runner"), f"{path.relative_to(REPO)} imports {name} at load"


def test_runner_reads_the_analyzers_timm_tables_in_one_place():
    """The runner reads the analyzer's timm knowledge (analyzer/timm/) through runner/spec.py alone."""
    for path in (REPO / "runner").rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("mnv4_postmortem.analyzer.timm"):
                assert path.name == "spec.py", f"{path.relative_to(REPO)} imports {module}"


def test_one_import_style_absolute_everywhere():
    """Issue 6: one import style across the package; a relative import names its module by position only."""
    for root in ("analyzer", "runner", "mnv4_postmortem", "rules"):
        for path in (REPO / root).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            relative = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
            assert not relative, f"{path.relative_to(REPO)}: relative import on line(s) {relative}"


def test_every_project_import_resolves_including_function_local_ones():
    """Heavy modules are imported inside functions (light commands); a name dropped from its module would
    only fail when that command runs, so every ``from mnv4_postmortem... import name`` is resolved here."""
    import importlib

    pytest.importorskip("torch")  # the runner's modules import torch/timm
    pytest.importorskip("timm")
    unresolved = []
    for root in ("analyzer", "runner", "mnv4_postmortem"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnv4_postmortem")):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            unresolved.append(f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{alias.name}")
    assert not unresolved, unresolved


# ----------------------------------------------------------------------------- issue 16: one front door

def runtime_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports when it runs (anywhere, functions included), leaving out
    ``if TYPE_CHECKING:`` blocks: a type-only name is no data flow."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return {n for n in names if n.startswith("mnv4_postmortem")}


A = "mnv4_postmortem.analyzer."

# The runner is a client of the analyzer: the session, the result types and analyzer/timm's public names.
RUNNER_MAY_IMPORT = tuple(A + m for m in ("session", "reproduction", "diagnosis", "findings", "model",
                                           "verification", "timm"))
# Named debts, so that they cannot grow: timm's EMA rules (features/ema.py), the derived recipe quantities
# (features/derived.py) and the LR reference (features/namespace.py) are still read from features/.
RUNNER_DEBTS = {
    "spec.py": (A + "features.derived", A + "features.ema"),
    "scaling.py": (A + "features.ema",),
    "ablation_run.py": (A + "features.namespace",),
}


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def test_the_runner_reaches_the_analyzer_only_through_the_session_result_types_and_timm():
    for path in sorted((REPO / "runner").rglob("*.py")):
        allowed = RUNNER_MAY_IMPORT + RUNNER_DEBTS.get(path.name, ())
        for module in runtime_imports(path):
            if module.startswith(A) or module == A.rstrip("."):
                assert _within(module, allowed), f"{path.relative_to(REPO)} imports {module}"


# Every command reads runs and rules through the session: no command composes ingest + pipeline + rule
# loading itself (each did, slightly differently, before issue 16).
SESSION_OWNS = tuple(A + m for m in ("pipeline", "ingest.merge", "ingest.excerpt", "engine.loader", "engine.evaluate",
                                      "engine.expr", "engine.testing", "engine.hypothesis"))


def test_commands_and_batch_workers_go_through_the_session():
    paths = list((REPO / "mnv4_postmortem" / "cli").rglob("*.py")) + list((REPO / "analyzer" / "batch").rglob("*.py"))
    for path in paths:
        for module in runtime_imports(path):
            assert not _within(module, SESSION_OWNS), f"{path.relative_to(REPO)} imports {module}"
            # `from mnv4_postmortem.analyzer.ingest import load_run` is the session's job too; asking the format
            # registry (`analyzer.ingest.formats`, issue 14: batch discovery finds what ingest reads) is not
            assert module != A + "ingest" or path.name == "app.py", f"{path.relative_to(REPO)} imports {module}"
    for path in (REPO / "analyzer" / "batch").rglob("*.py"):
        for module in runtime_imports(path):
            assert not _within(module, (A + "detect", A + "engine", A + "features.derived", A + "features.namespace")), \
                f"{path.relative_to(REPO)} imports {module}"


def test_the_session_renders_nothing_and_renderers_never_import_batch():
    for module in runtime_imports(REPO / "analyzer" / "session.py"):
        assert not _within(module, (A + "render", "mnv4_postmortem.runner", "mnv4_postmortem.cli")), module
    # The reproduction folder's owner reads verifications, knows the stdin argument (run_argument) and asks
    # issue 17's output_location where the default folder goes (never inside a run directory); nothing else.
    for module in runtime_imports(REPO / "analyzer" / "reproduction.py"):
        assert _within(module, (A + "verification", A + "run_argument", A + "output_location")), module
    for path in (REPO / "analyzer" / "render").rglob("*.py"):
        for module in runtime_imports(path):
            assert not _within(module, (A + "batch",)), f"{path.relative_to(REPO)} imports {module}"


def test_a_forced_rule_is_the_engines_business():
    """Only the engine compiles expressions; the runner asks the session for a hypothesis's fix."""
    for path in (REPO / "runner").rglob("*.py"):
        assert "compile_expr" not in path.read_text(encoding="utf-8"), path.relative_to(REPO)
