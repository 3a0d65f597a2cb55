"""Run discovery: which files of a run directory are timm outputs, recognised by content.

A console log can have any name (``train.log``, ``slurm-123.out``, ``output.log``, none), so every
small-enough regular file is sniffed by its first bytes. Event files are found by name *or* by a
valid TFRecord header. Checkpoints are only noted. Nothing is ever written, symlink loops are cut
by remembering visited directories, and unreadable entries become issues instead of errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnv4_postmortem.analyzer.ingest import formats
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceKind, SourceRef

SNIFF_BYTES = 64 * 1024
MAX_DEPTH = 6
MAX_ENTRIES = 20_000  # a run folder with more entries than this is not a run folder (e.g. a dataset root)
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".ckpt", ".safetensors", ".bin")


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: Path
    rel: str            # path relative to the run directory, used in every message
    kind: SourceKind
    family: str | None = None
    format: str | None = None   # the name of the registered format that claimed it (formats.FORMATS)


@dataclass(frozen=True, slots=True)
class Discovery:
    run_dir: Path
    files: tuple[FoundFile, ...]
    issues: tuple[IngestIssue, ...]

    def of_kind(self, kind: SourceKind) -> list[FoundFile]:
        return [f for f in self.files if f.kind == kind]


def discover(run_dir: Path) -> Discovery:
    """Classify the files under ``run_dir``. Raises IngestError only when the directory itself is unusable."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise IngestError("no such file or directory", SourceRef(str(run_dir)))
    if run_dir.is_file():
        # A single file is accepted as a one-file run (e.g. just a console log).
        return _classify_files(run_dir.parent, [run_dir], [])
    if not os.access(run_dir, os.R_OK | os.X_OK):
        raise IngestError("directory is not readable", SourceRef(str(run_dir)))
    paths, issues = _walk(run_dir)
    return _classify_files(run_dir, paths, issues)


def _walk(root: Path) -> tuple[list[Path], list[IngestIssue]]:
    files: list[Path] = []
    issues: list[IngestIssue] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            issues.append(IngestIssue(SourceRef(_rel(folder, root)), f"cannot stat: {exc.strerror or exc}"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            issues.append(IngestIssue(SourceRef(_rel(folder, root)), "symlink loop: directory already visited, skipped"))
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            issues.append(IngestIssue(SourceRef(_rel(folder, root)), f"cannot list directory: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if len(files) >= MAX_ENTRIES:
                issues.append(IngestIssue(SourceRef(_rel(folder, root)), f"more than {MAX_ENTRIES} files; the rest are ignored"))
                return files, issues
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=True):
                    if depth + 1 <= MAX_DEPTH and not entry.name.startswith("."):
                        stack.append((path, depth + 1))
                elif entry.is_file(follow_symlinks=True):
                    files.append(path)
                elif entry.is_symlink():
                    issues.append(IngestIssue(SourceRef(_rel(path, root)), "dangling symlink, skipped"))
            except OSError as exc:
                issues.append(IngestIssue(SourceRef(_rel(path, root)), f"cannot stat: {exc.strerror or exc}"))
    return sorted(files), issues


def _classify_files(root: Path, paths: list[Path], issues: list[IngestIssue]) -> Discovery:
    found: list[FoundFile] = []
    for path in paths:
        rel = _rel(path, root)
        if path.name.endswith(CHECKPOINT_SUFFIXES):
            found.append(FoundFile(path, rel, "checkpoint"))
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError as exc:
            issues.append(IngestIssue(SourceRef(rel), f"unreadable: {exc.strerror or exc}"))
            continue
        claimed = formats.sniff(path.name, head)
        if claimed is None:
            found.append(FoundFile(path, rel, "other"))
            if path.name in TIMM_OUTPUT_NAMES:
                issues.append(_unrecognised(rel, path.name, head))
        else:
            fmt, family = claimed
            found.append(FoundFile(path, rel, fmt.kind, family, fmt.name))
    return Discovery(root, tuple(found), tuple(issues))


# timm's own output names: a file so named that no format claims by its content is said so, never
# dropped silently (a hand-edited args.yaml with two keys, a summary.csv saved by another tool).
TIMM_OUTPUT_NAMES = {
    "args.yaml": "timm's args.yaml (at least 3 of model, batch_size, epochs, opt as top-level keys)",
    "summary.csv": "timm's summary.csv (a header line starting with epoch and naming train_loss)",
}


def _unrecognised(rel: str, name: str, head: bytes) -> IngestIssue:
    if not head:
        return IngestIssue(SourceRef(rel), f"{name} not read: empty file")
    return IngestIssue(SourceRef(rel, line=1),
                       f"{name} not read: its first {len(head)} bytes do not look like {TIMM_OUTPUT_NAMES[name]}")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
