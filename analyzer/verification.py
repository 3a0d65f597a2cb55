"""A reproduction's ``verification.json``, read back for ``report`` (stdlib only; no torch).

The runner (``mnv4-postmortem reproduce``) writes it; ``report RUN_DIR --verification DIR`` (or a
verification sitting in the default out folder, ``./mnv4-postmortem-repro/<run-name>/``) adds a
Verification section to the text, JSON and HTML outputs. The format (schema
``mnv4-postmortem/verification``, version 1.x):

* ``run``, ``run_name``, ``created``, ``complete`` (every job finished), ``interrupted`` (Ctrl-C),
  ``seconds``, ``device``, ``launcher``, ``trainer`` (``built-in`` | ``train-script``), ``seeds``,
  ``metric`` (what the effect is measured on);
* ``spec``: the scaled training spec: ``budget`` (original vs reproduction updates, epochs, batch,
  samples), ``init`` (kind, note, what the change of init means), ``entries`` (each setting with
  ``original``, ``value``, ``status`` kept | scaled | replaced, ``why``);
* ``findings``: per finding, ``finding``, ``cause``, ``rule_id``, ``fired_on_run``, ``patch`` (the fix),
  ``fix_command``, ``verdict`` (confirmed | refuted | inconclusive), ``reason``, ``settle`` (what would
  settle an inconclusive one), ``checks``, ``effect`` (``mean_diff``, per-seed ``diffs``, ``ci`` with
  ``ci_level`` and ``test``, ``bootstrap_ci`` with ``bootstrap``), ``arms`` (control, treatment: each
  with ``args_changed_from_control``, ``ema`` (decay original/scaled, initial-weight share original /
  predicted / observed at the end) and ``seeds`` (folder, causes that fired, final top-1, curves));
* ``skipped``: findings that could not be tested here, each with its ``reason``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "mnv4-postmortem/verification"
SUPPORTED_MAJOR = "1"
FILE_NAME = "verification.json"
DEFAULT_OUT_ROOT = Path("mnv4-postmortem-repro")

__all__ = ["Verification", "VerificationError", "load_verification", "default_verification_path", "FILE_NAME",
           "DEFAULT_OUT_ROOT"]


class VerificationError(ValueError):
    """A verification.json that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class Verification:
    path: Path
    data: Mapping[str, Any]

    @property
    def findings(self) -> list[Mapping[str, Any]]:
        return list(self.data.get("findings") or [])

    @property
    def complete(self) -> bool:
        return bool(self.data.get("complete"))


def default_out_dir(run_dir: Path) -> Path:
    """The reproduction folder's default (its owner is analyzer/reproduction.py)."""
    from mnv4_postmortem.analyzer.reproduction import ReproFolder

    return ReproFolder.default_for(run_dir).root


def default_verification_path(run_dir: Path) -> Path:
    return default_out_dir(run_dir) / FILE_NAME


def load_verification(path: Path) -> Verification:
    """Read ``path`` (a verification.json, or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VerificationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise VerificationError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerificationError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise VerificationError(f"{path}: not a verification file (schema {SCHEMA!r} expected)")
    version = str(data.get("schema_version", ""))
    if version.split(".")[0] != SUPPORTED_MAJOR:
        raise VerificationError(f"{path}: schema_version {version!r} is not supported (1.x expected)")
    findings = data.get("findings")
    if not isinstance(findings, list) or not all(isinstance(f, dict) and "verdict" in f for f in findings):
        raise VerificationError(f"{path}: 'findings' must be a list of objects with a 'verdict'")
    return Verification(path, data)
