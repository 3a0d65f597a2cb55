"""Watch a training run from inside its loop: :class:`Monitor` (any loop), and thin adapters that need
their library: ``mnv4_postmortem.watch.lightning.PostmortemCallback`` (PyTorch Lightning) and
``mnv4_postmortem.watch.huggingface.PostmortemCallback`` (Hugging Face ``Trainer``)."""

from mnv4_postmortem.analyzer.watch.monitor import METRICS, Monitor
from mnv4_postmortem.analyzer.watch.tracker import Change

__all__ = ["METRICS", "Change", "Monitor"]
