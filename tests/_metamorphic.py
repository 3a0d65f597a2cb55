"""The metamorphic variants of a labelled run (issue 13, section 5): what a user plausibly has instead of the
whole run folder, and whether the label survives it.

Shared by tests/test_metamorphic.py (a deterministic, stratified subset in CI) and bench/bench_metamorphic.py
(every labelled run, retention per variant and per cause), so that both judge the same way.

Every variant is made from the run's own files, never hand-written: the summary table is the run's
summary.csv when it has one, else the epoch table ingest built from its log or TensorBoard files, written in
timm's summary.csv columns. Variants:

- ``a`` the console log removed (every other file kept); needs a log and another source of epochs;
- ``b`` summary.csv alone;
- ``c`` args.yaml + summary.csv with every accuracy column as a fraction of 1;
- ``d`` args.yaml (epochs doubled) + summary.csv continued on its last row to twice its length;
- ``e`` args.yaml + the first epochs that already carry the label's evidence (through the end of the full
  run's labelled finding, at least 5 epochs; healthy runs: the first half);
- ``f`` args.yaml + summary.csv with noise at each series' own noise level (seeded);
- ``g`` args.yaml + summary.csv with every second epoch dropped;
- ``h`` the summary rows pasted on stdin, with the header (``h``) and without it (``h-``).

A label a variant truly cannot carry is declared once per cause in :data:`CANNOT_CARRY`, with the reason.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import yaml

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.excerpt import load_excerpt
from mnv4_postmortem.analyzer.model import Run

from _labelled import HEALTHY, Label, top_cause

VARIANTS = ("a", "b", "c", "d", "e", "f", "g", "h", "h-")
DESCRIPTION = {
    "a": "console log removed",
    "b": "summary.csv alone",
    "c": "accuracy as fractions of 1",
    "d": "continued on its last plateau to 2x",
    "e": "first epochs carrying the evidence",
    "f": "noise at the series' own level",
    "g": "every second epoch dropped",
    "h": "rows pasted on stdin, header",
    "h-": "rows pasted on stdin, no header",
}
WITHOUT_CONFIG = frozenset({"b", "h", "h-"})
# Causes whose evidence is the config or the log itself, not the curves: a variant without them cannot carry
# the label (the curves of a mismatched input size or a missing checkpoint look like any slow run).
CANNOT_CARRY: dict[str, tuple[frozenset[str], str]] = {
    "input-size-mismatch": (WITHOUT_CONFIG | {"a"},
                            "the input size and the pretrained weights are in args.yaml or the log only"),
    "pretrained-not-loaded": (WITHOUT_CONFIG | {"a"},
                              "a named checkpoint that was never loaded is only in args.yaml and the log"),
    "warmup-too-long": (WITHOUT_CONFIG | {"d"}, "the warmup length is in args.yaml; summary rows show a slow start "
                        "only; and the warmup's share of the schedule is the evidence, which doubling the schedule "
                        "halves (d)"),
    "lr-too-high": (WITHOUT_CONFIG, "an LR is too high only against the optimizer and global batch, which are in "
                    "args.yaml; the rows show the symptom (stuck at the prior, a collapse) and leave it unexplained"),
    "lr-too-low": (WITHOUT_CONFIG, "an LR is too low only against the optimizer and global batch (args.yaml); "
                   "the rows show slow progress only"),
    "over-regularization": (WITHOUT_CONFIG, "drop, drop-path, mixup, cutmix and smoothing are in args.yaml only"),
    "incomplete-run": (WITHOUT_CONFIG | {"e"}, "the scheduled epochs are in args.yaml or the log; "
                       "a cut excerpt is incomplete by construction"),
}
ACCURACY_WORDS = ("top1", "top5", "prec1", "prec5", "acc")
SUMMARY_COLUMNS = ("train_loss", "eval_loss", "eval_top1", "eval_top5", "lr")


@dataclass(frozen=True)
class Outcome:
    run: str
    variant: str
    cause: str          # the label's expected cause (first acceptable top)
    diagnosed: str      # the variant's top cause
    kept: bool | None   # None: the variant does not apply to this run (or the label cannot be carried)
    note: str = ""


def carries(label: Label, variant: str) -> str | None:
    """None when ``variant`` can carry ``label``; else the declared reason."""
    declared = CANNOT_CARRY.get(label.expected)
    if declared and variant in declared[0]:
        # Another acceptable top cause may still be carried: judge on it when there is one.
        if any(c not in CANNOT_CARRY or variant not in CANNOT_CARRY[c][0] for c in label.top[1:]):
            return None
        return declared[1]
    return None


def acceptable(label: Label, variant: str) -> set[str]:
    ok = set(label.top)
    if variant == "e" and HEALTHY in ok:  # cut short by construction: a healthy run that stops early may say so
        ok.add("incomplete-run")
    return ok


# ---------------------------------------------------------------------------------------------- inputs


def _files(run: Run, kind: str) -> list[Path]:
    return [run.run_dir / s.path for s in run.sources if s.kind == kind and (run.run_dir / s.path).is_file()]


def summary_table(run: Run) -> pd.DataFrame:
    """The run's summary rows: its own summary.csv, else its epoch table in timm's summary columns."""
    for path in _files(run, "summary_csv"):
        try:
            table = pd.read_csv(path)
        except Exception:  # noqa: BLE001 - a broken file: fall back to the epoch table
            continue
        if "epoch" in table.columns and len(table) >= 2:
            table = table.apply(pd.to_numeric, errors="coerce").dropna(subset=["epoch"])
            # timm writes whole epochs: a row whose epoch is not one (a stray line pasted after the table, which
            # the readers reject) is not a summary row, and would become an invented NaN row in the variants.
            table = table[table["epoch"] == table["epoch"].round()]
            return table.reset_index(drop=True)
    columns = [c for c in SUMMARY_COLUMNS if c in run.epochs.columns]
    table = run.epochs[columns].copy()
    table.insert(0, "epoch", run.epochs.index.astype(int))
    return table.reset_index(drop=True)


def _args_text(run: Run, *, epochs_factor: int = 1) -> str | None:
    paths = _files(run, "args_yaml")
    if not paths:
        return None
    text = paths[0].read_text(encoding="utf-8", errors="replace")
    if epochs_factor == 1:
        return text
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(data, dict) and isinstance(data.get("epochs"), (int, float)):
        data["epochs"] = int(data["epochs"]) * epochs_factor
        return yaml.safe_dump(data, sort_keys=False)
    return text


def _accuracy_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c != "epoch" and any(w in c.lower() for w in ACCURACY_WORDS)]


def _noise(values: np.ndarray) -> float:
    """The series' own noise: the MAD of its first differences, as a standard deviation of one value."""
    finite = values[np.isfinite(values)]
    if len(finite) < 3:
        return 0.0
    diffs = np.diff(finite)
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2))


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "little")


# ---------------------------------------------------------------------------------------------- variants


def _with_noise(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = table.copy()
    accuracy = set(_accuracy_columns(table))
    for column in table.columns:
        if column in ("epoch", "lr"):
            continue
        values = out[column].to_numpy(dtype="float64")
        noisy = values + rng.normal(0.0, _noise(values), size=len(values))
        noisy = np.where(np.isfinite(values), noisy, values)  # NaN and inf stay what they were
        if column in accuracy:
            noisy = np.clip(noisy, 0.0, 100.0 if np.nanmax(np.where(np.isfinite(values), values, 0)) > 1 else 1.0)
        else:
            noisy = np.where(np.isfinite(noisy), np.maximum(noisy, 0.0), noisy)
        out[column] = noisy
    return out


def _continued(table: pd.DataFrame) -> pd.DataFrame:
    """The run continued on its last row to twice its length in epochs (the schedule in args.yaml is doubled to
    match): a table that starts late (a resumed run, a pasted excerpt) still ends at 2 x (last epoch + 1) - 1."""
    last_epoch = int(table["epoch"].iloc[-1])
    n = last_epoch + 1
    last = table.iloc[[-1] * n].reset_index(drop=True)
    last["epoch"] = last_epoch + 1 + np.arange(n)
    return pd.concat([table, last], ignore_index=True)


def _evidence_end(label: Label, full: Diagnosis | None, table: pd.DataFrame) -> int:
    """How many rows carry the label's evidence: through the end of the full run's labelled finding (at least
    5 rows); for a healthy run, the first half."""
    n = len(table)
    if label.expected == HEALTHY or full is None:
        return max(5, n // 2)
    epochs = [f.epochs[1] for f in full.findings if f.cause in label.top and f.epochs]
    if not epochs:
        return n
    last_epoch = min(epochs)
    rows = int((table["epoch"] <= last_epoch).sum()) + 1
    return min(n, max(5, rows))


def _csv(table: pd.DataFrame, *, header: bool = True) -> str:
    buffer = io.StringIO()
    table = table.assign(epoch=table["epoch"].astype(int))
    table.to_csv(buffer, index=False, header=header, float_format="%.6g", na_rep="nan")
    return buffer.getvalue()


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _copy_without_logs(run: Run, folder: Path) -> Path | None:
    logs = {p.resolve() for p in _files(run, "console_log")}
    if not logs:
        return None
    others = [s for s in run.sources if s.kind in ("summary_csv", "tensorboard", "args_yaml")]
    if not any(s.kind in ("summary_csv", "tensorboard") for s in others):
        return None  # the log is the only source of epochs: nothing would be left to analyse
    folder.mkdir(parents=True, exist_ok=True)
    for source in others:
        src = run.run_dir / source.path
        dst = folder / source.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_file() and src.resolve() not in logs:
            shutil.copy2(src, dst)
    return folder


def make_variant(run: Run, label: Label, variant: str, workdir: Path, full: Diagnosis | None = None) -> Run | None:
    """The variant's Run, or None when it does not apply to this run (no log to remove, no config...)."""
    folder = workdir / variant.replace("-", "_nohdr")
    table = summary_table(run)
    if len(table) < 2:
        return None
    if variant == "a":
        copied = _copy_without_logs(run, folder)
        return load_run(copied) if copied is not None else None
    if variant in ("h", "h-"):
        if variant == "h-":
            columns = ["epoch"] + [c for c in SUMMARY_COLUMNS if c in table.columns]
            if columns[1:4] != ["train_loss", "eval_loss", "eval_top1"]:
                return None  # a headerless row is read in timm's column order only
            return load_excerpt(_csv(table[columns], header=False).encode())
        return load_excerpt(_csv(table).encode())
    if variant == "b":
        return load_run(_write(folder, {"summary.csv": _csv(table)}))
    edits: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
        "c": lambda t: t.assign(**{c: t[c] / 100.0 for c in _accuracy_columns(t)}),
        "d": _continued,
        "e": lambda t: t.iloc[: _evidence_end(label, full, t)],
        "f": lambda t: _with_noise(t, _seed(label.run, "f")),
        "g": lambda t: t.iloc[sorted(set(range(0, len(t), 2)) | {len(t) - 1})],  # the last epoch stays: it is the run's end
    }
    args = _args_text(run, epochs_factor=2 if variant == "d" else 1)
    files = {"summary.csv": _csv(edits[variant](table).reset_index(drop=True))}
    if args is not None:
        files["args.yaml"] = args
    return load_run(_write(folder, files))


def outcomes(label: Label, analyze: Callable[[Run], Diagnosis], variants=VARIANTS) -> Iterator[Outcome]:
    """Each variant of ``label``'s run, analysed and judged."""
    run = load_run(label.path)
    full = analyze(run)
    with tempfile.TemporaryDirectory(prefix="mnv4-metamorphic-") as tmp:
        for variant in variants:
            reason = carries(label, variant)
            if reason is not None:
                yield Outcome(label.run, variant, label.expected, "-", None, f"declared: {reason}")
                continue
            made = make_variant(run, label, variant, Path(tmp), full)
            if made is None:
                yield Outcome(label.run, variant, label.expected, "-", None, "does not apply to this run")
                continue
            diagnosis = analyze(made)
            diagnosed = top_cause(diagnosis.findings, diagnosis.unexplained)
            yield Outcome(label.run, variant, label.expected, diagnosed, diagnosed in acceptable(label, variant))
