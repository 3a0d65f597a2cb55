"""Structure checks: one import namespace, and data flowing one way through the stages."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

# stage -> stages it must never import (directly). Renderers never compute diagnoses.
FORBIDDEN = {
    "analyzer/ingest": ("detect", "features", "engine", "render", "diagnose", "findings", "report"),
    "analyzer/detect": ("ingest", "features", "engine", "render", "diagnose", "findings", "report"),
    "analyzer/features": ("ingest", "engine", "render", "diagnose", "report"),
    "analyzer/engine": ("ingest", "detect", "features", "render", "diagnose", "report"),
    "analyzer/render": ("ingest", "detect", "features", "engine", "diagnose"),
}


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


def test_no_generic_top_level_packages_are_installed():
    import mnv4_postmortem.analyzer as analyzer_pkg

    assert analyzer_pkg.__name__ == "mnv4_postmortem.analyzer"
    pyproject = (REPO / "pyproject.toml").read_text()
    for line in pyproject.splitlines():
        if line.strip().startswith('"') and "=" in line and "package-dir" not in line:
            key = line.split("=")[0].strip().strip('"')
            if key and not key.startswith("mnv4_postmortem") and key in ("analyzer", "runner", "rules"):
                raise AssertionError(f"{key} would install as a top-level package")


def test_core_never_imports_torch_at_import_time():
    """The core needs no torch: timm is only tried lazily (input_size asks timm's pretrained config when present)."""
    for path in (REPO / "analyzer").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("torch", "timm") for n in names), path
