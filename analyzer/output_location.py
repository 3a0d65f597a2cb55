"""Where default outputs go: never inside a run directory, wherever the current directory is.

Default outputs are ``report --format html``'s ``<run-name>.postmortem.html`` and the runner's
``mnv4-postmortem-repro/<run-name>/`` (reproduce, lr-find, --ablate, --show-batch; ``report`` reads a
verification from the same place). Their home is the current folder, unless that folder is inside a run
directory; then it is the parent of the OUTERMOST run directory that holds the current folder. "A run
directory" is the run being analysed (its folder, when a file such as ``train.log`` is given) and any
folder that holds timm output itself, by the one definition ``batch`` discovers runs with
(:func:`~mnv4_postmortem.analyzer.batch.discover.is_run_folder`: summary.csv, args.yaml, a console log,
TensorBoard event files). The outermost, because a TensorBoard run folder nested in a timm run
(``RUN/tb/``) is a run of its own and its parent is still a run. When the output moves, the caller
prints the new path on stderr. Only an explicit ``-o``/``--out`` may point into a run directory (and the
runner refuses even that).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OutputFolder", "default_output_folder"]


@dataclass(frozen=True, slots=True)
class OutputFolder:
    folder: Path                 # where the default output goes
    moved_from: Path | None = None  # the outermost run directory the current folder is inside, if any

    def note(self) -> str | None:
        """What to tell the user on stderr when the output does not go to the current folder."""
        if self.moved_from is None:
            return None
        return (f"the current folder is inside the run directory {self.moved_from}; nothing is written there, "
                f"so the default output goes to {self.folder}")


def default_output_folder(run_path: Path | str | None, cwd: Path | None = None) -> OutputFolder:
    """The folder for a default output of the run at ``run_path`` (None: stdin, no run folder)."""
    here = (cwd or Path.cwd()).resolve()
    run_folder = None
    if run_path is not None and str(run_path) != "-":
        run = Path(run_path).resolve()
        run_folder = run if run.is_dir() else run.parent
    outermost = None
    for folder in (here, *here.parents):
        if folder == run_folder or (folder not in _shared_folders() and _holds_run_output(folder)):
            outermost = folder
    if outermost is None:
        return OutputFolder(here)
    parent = outermost.parent
    if parent == outermost or not os.access(parent, os.W_OK):  # the run is "/" or its parent is read-only
        parent = Path(tempfile.gettempdir()).resolve()
    return OutputFolder(parent, outermost)


def _shared_folders() -> set[Path]:
    """Folders that are never a run directory by their contents (only when they are the run analysed): the
    filesystem root, the home folder and the temp folder hold whatever lands there, and a stray log or
    train.py in ~ or $TMPDIR would otherwise move every default output below them up to / or /home."""
    shared = {Path(os.path.abspath(os.sep)), Path(tempfile.gettempdir()).resolve()}
    try:
        shared.add(Path.home().resolve())
    except (RuntimeError, KeyError, OSError):
        pass
    return shared


def _holds_run_output(folder: Path) -> bool:
    from mnv4_postmortem.analyzer.batch.discover import is_run_folder

    try:
        files = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except OSError:
        return False
    return is_run_folder(folder, files)
