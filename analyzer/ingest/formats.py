"""The input formats, in the order a file is tried: the one registry discovery and the merge read.

Adding a format: one module with an object that satisfies :class:`Format`, and one line in
:data:`FORMATS`. Where its values go when they overlap with other formats' is the merge's
precedence table (``merge.PRECEDENCE``), not the format's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

from mnv4_postmortem.analyzer.ingest.args_yaml import ARGS_YAML, WANDB_CONFIG
from mnv4_postmortem.analyzer.ingest.console_log import CONSOLE_LOG
from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.deit_log import DEIT_LOG
from mnv4_postmortem.analyzer.ingest.hf_trainer import HF_TRAINER
from mnv4_postmortem.analyzer.ingest.lightning_csv import LIGHTNING_CSV
from mnv4_postmortem.analyzer.ingest.mmpretrain_log import MMPRETRAIN_LOG
from mnv4_postmortem.analyzer.ingest.wandb_run import WANDB_RUN
from mnv4_postmortem.analyzer.ingest.summary_csv import SUMMARY_CSV
from mnv4_postmortem.analyzer.ingest.tensorboard import TENSORBOARD
from mnv4_postmortem.analyzer.model import SourceKind


@runtime_checkable
class Format(Protocol):
    """One input format.

    ``sniff`` gets a file's name and first bytes (up to 64 KiB) and returns the family it recognises
    (a short description such as ``"timm args.yaml"``) or None. ``parse`` reads the whole file; it
    raises only ``IngestError``, and only when nothing in the file is usable.
    """

    name: str
    kind: SourceKind

    # Optional ``names``: file names only this format writes (``summary.csv``); a folder holding one is a
    # run even when the file is broken, so that batch lists it as unusable instead of skipping it.

    def sniff(self, name: str, head: bytes) -> str | None: ...

    def parse(self, path: Path, shown: str) -> Contribution: ...


@runtime_checkable
class Combined(Format, Protocol):
    """A format whose files are parts of one data set (a run's event files): ``combine`` makes one
    Contribution of all of them, with the run's options (``tb_aliases``)."""

    def combine(self, parts: Sequence[Contribution], options: Mapping[str, object]) -> Contribution: ...


#: Tried in this order; the first format whose ``sniff`` answers claims the file.
FORMATS: tuple[Format, ...] = (
    TENSORBOARD,
    DEIT_LOG,
    LIGHTNING_CSV,
    HF_TRAINER,
    WANDB_RUN,
    MMPRETRAIN_LOG,
    SUMMARY_CSV, WANDB_CONFIG, ARGS_YAML, CONSOLE_LOG,
)



def by_name(name: str) -> Format:
    """The registered format called ``name`` (KeyError for an unknown one)."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise KeyError(name)


def owns_name(name: str) -> bool:
    """True when a registered format declares ``name`` as its own file name (see :class:`Format`)."""
    return any(name in getattr(fmt, "names", ()) for fmt in FORMATS)


def sniff(name: str, head: bytes) -> tuple[Format, str] | None:
    """The format that claims a file, and the family it saw; None when no format does."""
    for fmt in FORMATS:
        family = fmt.sniff(name, head)
        if family:
            return fmt, family
    return None
