"""The one owner of a reproduction folder's layout, and of what ``report`` attaches from it (stdlib only).

``reproduce RUN_DIR`` writes into ``./mnv4-postmortem-repro/<run-name>/`` unless ``--out`` says where::

    <out>/verification.json     the verdicts (analyzer/verification.py reads it back)
    <out>/batch_grid.png        reproduce --show-batch
    <out>/arms/<arm>/seed<k>/   one trained arm
    <out>/ablation/             reproduce --ablate
    <out>/lr-find/              lr-find

The runner writes these paths and the session (``analyzer/session.py``) reads them back through
:class:`ReproFolder`, so a report, a batch page and the runner never disagree on where a file lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnv4_postmortem.analyzer.run_argument import STDIN_ARGUMENT, is_stdin  # noqa: F401  (its one owner)
from mnv4_postmortem.analyzer.verification import (
    DEFAULT_OUT_ROOT, FILE_NAME as VERIFICATION_FILE, Verification, VerificationError, load_verification,
)

BATCH_GRID_FILE = "batch_grid.png"

__all__ = ["ReproFolder", "Attachments", "AttachmentError", "find_attachments", "BATCH_GRID_FILE", "VERIFICATION_FILE"]


class AttachmentError(ValueError):
    """An attachment the user named (``--verification``, ``--batch-grid``) that cannot be used."""


@dataclass(frozen=True, slots=True)
class ReproFolder:
    """Where a reproduction of one run keeps its outputs."""

    root: Path

    @classmethod
    def default_for(cls, run_dir: Path | str) -> ReproFolder:
        """``./mnv4-postmortem-repro/<run-name>/``, the current folder moved out of any run directory it is
        inside (analyzer/output_location.py), so the runner never writes into one and report reads it back."""
        from mnv4_postmortem.analyzer.output_location import default_output_folder

        return cls(default_output_folder(run_dir).folder / DEFAULT_OUT_ROOT / Path(run_dir).resolve().name)

    @staticmethod
    def default_moved_note(run_dir: Path | str) -> str | None:
        """What to tell the user when :meth:`default_for` left the current folder (it is inside a run)."""
        from mnv4_postmortem.analyzer.output_location import default_output_folder

        return default_output_folder(run_dir).note()

    @property
    def verification(self) -> Path:
        return self.root / VERIFICATION_FILE

    @property
    def batch_grid(self) -> Path:
        return self.root / BATCH_GRID_FILE

    @property
    def arms(self) -> Path:
        return self.root / "arms"

    @property
    def ablation(self) -> Path:
        return self.root / "ablation"

    @property
    def lr_find(self) -> Path:
        return self.root / "lr-find"


@dataclass(frozen=True, slots=True)
class Attachments:
    """What a reproduction adds to a run's report, and what went wrong finding it (warnings, not errors)."""

    verification: Verification | None = None
    batch_grid: bytes | None = None
    warnings: tuple[str, ...] = ()


def find_attachments(run_dir: Path | str, verification: Path | None = None, batch_grid: Path | None = None) -> Attachments:
    """The verification and the batch grid that belong to ``run_dir``.

    ``verification``: a reproduce output folder (or its verification.json) the user named; else the
    default folder's, when it exists. ``batch_grid``: a PNG the user named; else batch_grid.png in that
    same folder. What the user named must be usable (:class:`AttachmentError`); a broken default is a
    warning and no attachment. A run pasted on stdin has no folder, so only named attachments apply.
    """
    pasted = is_stdin(run_dir)   # Path("./-") is the folder named "-", not stdin
    if verification is not None:
        folder: ReproFolder | None = ReproFolder(verification if Path(verification).is_dir() else Path(verification).parent)
    else:
        folder = None if pasted else ReproFolder.default_for(run_dir)
    warnings: list[str] = []
    found = None
    if not pasted:
        found = _verification(verification, folder, warnings)
    return Attachments(found, _batch_grid(batch_grid, folder), tuple(warnings))


def _verification(given: Path | None, folder: ReproFolder | None, warnings: list[str]) -> Verification | None:
    path = given if given is not None else (folder.verification if folder is not None else None)
    if path is None or (given is None and not path.is_file()):
        return None
    try:
        loaded = load_verification(path)
    except VerificationError as exc:
        if given is not None:
            raise AttachmentError(str(exc)) from None
        warnings.append(f"{exc}; no Verification section")
        return None
    warnings.extend(loaded.warnings)  # records left out of an otherwise usable file, each named
    return loaded


def _batch_grid(given: Path | None, folder: ReproFolder | None) -> bytes | None:
    path = given if given is not None else (folder.batch_grid if folder is not None else None)
    if path is None or (given is None and not path.is_file()):
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from None
