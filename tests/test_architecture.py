"""Structure checks: one import namespace, and data flowing one way through the stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

# stage -> stages it must never import (directly). Renderers never compute diagnoses.
FORBIDDEN = {
    "analyzer/ingest": ("detect", "features", "engine", "render", "diagnose", "findings", "report"),
    "analyzer/detect": ("ingest", "features", "engine", "render", "diagnose", "findings", "report"),
    "analyzer/features": ("ingest", "engine", "render", "diagnose", "report"),
    "analyzer/engine": ("ingest", "detect", "features", "render", "diagnose", "report"),
    "analyzer/render": ("ingest", "detect", "features", "engine", "diagnose"),
    # The ground floor of timm knowledge: every stage reads it, it reads none of them.
    "analyzer/timm": ("ingest", "detect", "features", "engine", "render", "diagnose", "findings", "report"),
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


def test_stages_import_only_to_their_left():
    for folder, banned in FORBIDDEN.items():
        for path in (REPO / folder).rglob("*.py"):
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
