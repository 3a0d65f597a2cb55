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

from mnv4_postmortem.analyzer.ingest.console_log import sniff_console_log
from mnv4_postmortem.analyzer.ingest.summary_csv import sniff_summary_csv
from mnv4_postmortem.analyzer.ingest.tensorboard import sniff_event_file
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceKind, SourceRef

SNIFF_BYTES = 64 * 1024
MAX_DEPTH = 6
MAX_ENTRIES = 20_000  # a run folder with more entries than this is not a run folder (e.g. a dataset root)
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".ckpt", ".safetensors", ".bin")
EVENT_FILE_MARK = "tfevents"


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: Path
    rel: str            # path relative to the run directory, used in every message
    kind: SourceKind
    family: str | None = None


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
        kind, family = _sniff(path.name, head)
        found.append(FoundFile(path, rel, kind, family))
    return Discovery(root, tuple(found), tuple(issues))


def _sniff(name: str, head: bytes) -> tuple[SourceKind, str | None]:
    if EVENT_FILE_MARK in name or sniff_event_file(head):
        return "tensorboard", "TensorBoard event file"
    if sniff_summary_csv(head):
        return "summary_csv", None
    family = _sniff_args_yaml(name, head)
    if family:
        return "args_yaml", family
    family = sniff_console_log(head)
    if family:
        return "console_log", family
    return "other", None


ARGS_KEYS = (b"\nmodel:", b"\nbatch_size:", b"\nepochs:", b"\nopt:")


def _sniff_args_yaml(name: str, head: bytes) -> str | None:
    """timm's args.yaml (sorted keys: model, batch_size, epochs, opt ...) or wandb's config.yaml copy of them."""
    if not name.endswith((".yaml", ".yml")):
        return None
    text = b"\n" + head
    if b"_wandb:" in text and b"\n  value:" in text:
        return "wandb config.yaml"
    if sum(key in text for key in ARGS_KEYS) >= 3:
        return "timm args.yaml"
    return None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
