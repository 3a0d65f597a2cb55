"""Assembly: the parser's arrays -> frames, segments, events, layout and timm version."""

from __future__ import annotations

import math
from array import array
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.console_log.data import MAX_LISTED_ISSUES, MAX_WARNINGS, ConsoleLog, Version
from mnv4_postmortem.analyzer.ingest.console_log.grammar import INT_FIELDS
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Event

if TYPE_CHECKING:
    from mnv4_postmortem.analyzer.ingest.console_log.parser import Parser

# ---------------------------------------------------------------------------------------------
# Version evidence (§14). Versions are tuples; None = unbounded.

_NO_UPPER: Version = (99, 0, 0)


def _version_text(low: Version | None, high: Version | None) -> str | None:
    fmt = lambda v: ".".join(map(str, v))  # noqa: E731
    if low and high:
        return fmt(low) if low == high else f"{fmt(low)}-{fmt(high)}"
    if low:
        return f">={fmt(low)}"
    return f"<={fmt(high)}" if high else None


def _narrow(evidence: list[tuple[Version | None, Version | None]]) -> tuple[Version | None, Version | None]:
    """Intersect version ranges in order of reliability; a range that contradicts the ones
    before it (timm forks mix eras) is ignored."""
    low, high = (0, 0, 0), _NO_UPPER
    for lo, hi in evidence:
        new_low, new_high = max(low, lo or low), min(high, hi or high)
        if new_low <= new_high:
            low, high = new_low, new_high
    return (low if low != (0, 0, 0) else None), (high if high != _NO_UPPER else None)





def _significant_digits(token: str) -> int:
    mantissa = token.lstrip("+-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) if mantissa.isdigit() else 0


# ---------------------------------------------------------------------------------------------
# Assembly: arrays -> frames, segments, events, layout and version


class Growing:
    """Columns appended to block by block: ``append`` every column of a block's rows, then
    ``commit``. They grow in place (``ndarray.resize`` reallocates; for large arrays the C library
    remaps pages rather than copying), so no per-block pieces are kept and nothing is joined at the
    end; ``result`` trims them to their exact size the same way. No view of them may be held while
    they grow (hence ``refcheck=False`` is safe: only temporaries are taken)."""

    def __init__(self, names: tuple[str, ...]):
        self.arrays = {name: np.empty(0, np.int64 if name in INT_FIELDS else np.float64) for name in names}
        self.size = 0

    def append(self, name: str, values: np.ndarray, order: np.ndarray | None) -> None:
        array_, need = self.arrays[name], self.size + len(values)
        if need > len(array_):
            array_.resize(max(need, len(array_) * 3 // 2 + 4096), refcheck=False)
        target = array_[self.size:need]
        if order is None:
            target[...] = values
        else:
            np.take(values, order, out=target)

    def commit(self, count: int) -> None:
        self.size += count

    def result(self) -> dict[str, np.ndarray]:
        for array_ in self.arrays.values():
            array_.resize(self.size, refcheck=False)
        return self.arrays


def _columns(rows: Growing) -> dict[str, np.ndarray]:
    """One array per field, in line order (it is stored so; a hostile input is checked anyway)."""
    out = rows.result()
    order = None
    if len(out["line"]) > 1 and (np.diff(out["line"]) < 0).any():
        order = np.argsort(out["line"], kind="stable")
        for key in out:
            out[key] = out[key][order]
    return out


def _segments(p: Parser, train: dict[str, np.ndarray], test: dict[str, np.ndarray]):
    """Restart boundaries (first line of each new segment) and one resume event per boundary."""
    bounds: list[int] = []
    clusters: list[list[tuple[int, str, dict]]] = []
    seen_activity = 0
    for marker in sorted(p.markers, key=lambda item: item[0]):
        # Train/Test lines before the marker (both arrays are sorted)
        before = int(np.searchsorted(train["line"], marker[0]) + np.searchsorted(test["line"], marker[0]))
        if before > seen_activity:
            bounds.append(marker[0])
            clusters.append([marker])
            seen_activity = before
        elif clusters and before == seen_activity and bounds:
            clusters[-1].append(marker)
    reasons: dict[int, str] = {}
    epoch, idx, lines = train["epoch"], train["idx"], train["line"]
    if len(lines) > 1:
        back = np.flatnonzero((epoch[1:] < epoch[:-1]) | ((epoch[1:] == epoch[:-1]) & (idx[1:] < idx[:-1]))) + 1
        known = np.array(bounds, np.int64)
        # a message boundary between the two Train lines already accounts for the restart
        marked = np.searchsorted(known, lines[back], "right") != np.searchsorted(known, lines[back - 1], "right")
        for k in back[~marked].tolist():
            reasons[int(lines[k])] = (f"the epoch counter goes back from {epoch[k - 1]} [{idx[k - 1]}] "
                                      f"to {epoch[k]} [{idx[k]}]")
        bounds = sorted(set(bounds) | set(reasons))
    events = []
    cluster_at = {cluster[0][0]: cluster for cluster in clusters}
    for segment, line in enumerate(bounds, start=1):
        first_epoch = _first_epoch_from(train, line)
        data: dict[str, Any] = {"segment": segment}
        source_line = line
        if line in cluster_at:
            resume = [m for m in cluster_at[line] if m[1] == "resume"]
            detail = next((m for m in resume if m[2]), None)
            if detail:
                data.update(detail[2])
                source_line = detail[0]
                text = f"resumed from {detail[2]['checkpoint']} (epoch {detail[2]['checkpoint_epoch']})"
            elif resume:
                text = "resumed from a checkpoint"
            else:
                text = "a new run starts (log appended)"
        else:
            text = reasons.get(line, "training restarts")
        where = f"; training continues at epoch {first_epoch}" if first_epoch is not None else ""
        events.append(Event("resume", f"{text} at line {line}{where}", p.ref(source_line), first_epoch, data))
    return np.array(bounds, np.int64), events


def _first_epoch_from(train: dict[str, np.ndarray], line: int) -> int | None:
    k = int(np.searchsorted(train["line"], line))
    return int(train["epoch"][k]) if k < len(train["line"]) else None


def _epoch_before(train: dict[str, np.ndarray], lines: np.ndarray) -> np.ndarray:
    """Index of the last Train row before each line (-1: none)."""
    return np.searchsorted(train["line"], lines) - 1


def _evals(p: Parser, test: dict[str, np.ndarray], train: dict[str, np.ndarray],
           train_segment: np.ndarray, bounds: np.ndarray) -> pd.DataFrame:
    lines = test["line"]
    if not len(lines):
        return _empty_evals()
    segment = np.searchsorted(bounds, lines, side="right")
    before = _epoch_before(train, lines)
    new_block = np.ones(len(lines), bool)
    new_block[1:] = ((test["ema"][1:] != test["ema"][:-1]) | (test["last"][1:] != test["last"][:-1])
                     | (test["idx"][1:] <= test["idx"][:-1]) | (before[1:] != before[:-1])
                     | (segment[1:] != segment[:-1]))
    block_start = np.flatnonzero(new_block)
    block_end = np.append(block_start[1:], len(lines)) - 1
    train_row = before[block_start]
    has_epoch = (train_row >= 0)
    has_epoch[has_epoch] &= train_segment[train_row[has_epoch]] == segment[block_start[has_epoch]]
    for k in np.flatnonzero(~has_epoch)[:MAX_LISTED_ISSUES].tolist():
        p.issue("validation block without Train lines before it in the same run; its epoch is unknown", int(lines[block_start[k]]))
    cut = test["idx"][block_end] != test["last"][block_end]
    for k in np.flatnonzero(cut)[:MAX_LISTED_ISSUES].tolist():
        row = block_end[k]
        p.issue(f"validation block cut at [{test['idx'][row]}/{test['last'][row]}]; its last running average is used", int(lines[row]))
    keep_start, keep_end = block_start[has_epoch], block_end[has_epoch]
    frame = pd.DataFrame({
        "epoch": train["epoch"][train_row[has_epoch]].astype(np.int64),
        "pass": pd.Series(np.where(test["ema"][keep_end] == 1, "ema", "model"), dtype="str"),
        "eval_loss": test["loss"][keep_end],
        "eval_top1": test["top1"][keep_end],
        "eval_top5": test["top5"][keep_end],
        "segment": segment[keep_start].astype(np.int64),
        "src_line": lines[keep_end].astype(np.int64),
    }, copy=False)
    return frame


def _empty_evals() -> pd.DataFrame:
    return pd.DataFrame({
        "epoch": np.empty(0, np.int64), "pass": pd.Series([], dtype="str"), "eval_loss": np.empty(0), "eval_top1": np.empty(0),
        "eval_top5": np.empty(0), "segment": np.empty(0, np.int64), "src_line": np.empty(0, np.int64)})


def _layout(p: Parser, train: dict[str, np.ndarray], message_range: tuple[Version | None, Version | None]) -> str | None:
    if not len(train["line"]):
        return None
    votes = {"A": 0, "B": 0, "CD": 0}
    for token, weight in p.loss_samples:
        sig = _significant_digits(token)
        decimals = len(token.split(".")[1]) if "." in token and "e" not in token.lower() else -1
        if decimals == 6 and sig >= 5:      # '{:>9.6f}'
            votes["A"] += weight
        elif sig == 4:                      # '{:#.4g}'
            votes["B"] += weight
        elif sig == 3:                      # '{:#.3g}'
            votes["CD"] += weight
    if not any(votes.values()):
        p.issue("Train lines have no Loss field in a known format; layout unknown", int(train["line"][0]))
        return None
    best = max(votes, key=votes.get)   # type: ignore[arg-type]
    if best != "CD":
        return best
    if p.percent:
        idx, total, pct = np.concatenate(p.percent, axis=1)
        usable = (total > 1) & (pct >= 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            old_rule = np.round(100.0 * idx / (total - 1))     # v0.9.0-1.0.7: idx / (N - 1)
            new_rule = np.round(100.0 * (idx + 1) / total)     # v1.0.8+: (idx + 1) / N
        telling = usable & (old_rule != new_rule)
        c_votes = int((telling & (pct == old_rule)).sum())
        d_votes = int((telling & (pct == new_rule)).sum())
        if c_votes != d_votes:
            return "C" if c_votes > d_votes else "D"
    low, high = message_range
    return "C" if high is not None and high <= (1, 0, 7) else "D"


_LAYOUT_RANGES: dict[str, tuple[Version | None, Version | None]] = {
    "A": (None, (0, 4, 12)), "B": ((0, 5, 0), (0, 8, 17)), "C": ((0, 9, 0), (1, 0, 7)), "D": ((1, 0, 8), None)}


def _throughput_bug(train: dict[str, np.ndarray], layout: str | None, message_range) -> bool:
    """v1.0.16-1.0.19 printed updates/s (= 1 / time) where samples/s belongs."""
    if layout != "D":
        return False
    low, high = message_range
    if (low and low > (1, 0, 19)) or (high and high < (1, 0, 16)):
        return False
    t, rate = train["batch_time"], train["rate"]
    valid = np.isfinite(t) & np.isfinite(rate) & (t > 0.001) & (rate > 0)
    if valid.sum() < 3:
        return False
    t, rate = t[valid], rate[valid]
    tolerance = 0.005 * t + 0.0005 * rate + 1e-3   # the printing precision of both numbers
    return bool((np.abs(rate * t - 1.0) <= tolerance).mean() >= 0.9)


def _nonfinite_events(p: Parser, steps: pd.DataFrame, evals: pd.DataFrame) -> list[Event]:
    events = []
    checks = [(steps, column, None) for column in ("train_loss", "train_loss_avg", "lr")]
    p.missing.setdefault("eval_loss", array("q"))
    passes = evals["pass"].to_numpy(dtype=object)
    for name in ("model", "ema"):
        subset = evals[passes == name]
        checks += [(subset, column, name) for column in ("eval_loss", "eval_top1", "eval_top5")]
    for frame, column, pass_name in checks:
        values = frame[column].to_numpy()
        bad = ~np.isfinite(values)
        if len(p.missing[column]) and bad.any():
            absent = np.isin(frame["src_line"].to_numpy(), np.frombuffer(p.missing[column], np.int64))
            bad &= ~absent
        if not bad.any():
            continue
        first = frame[bad].groupby("segment", sort=True).head(1)
        for row in first.itertuples(index=False):
            value = getattr(row, column)
            label = column if pass_name is None else f"{column} ({pass_name} pass)"
            data = {"metric": column, "value": str(value), "segment": int(row.segment)}
            if pass_name:
                data["pass"] = pass_name
            events.append(Event("nonfinite", f"{label} is {value} at epoch {row.epoch}", p.ref(int(row.src_line)),
                                int(row.epoch), data))
    return events


def assemble(p: Parser, n_lines: int) -> ConsoleLog:
    train = _columns(p.rows["train"])
    test = _columns(p.rows["test"])
    message_range = _narrow(list(p.evidence))
    bounds, resume_events = _segments(p, train, test)
    train_segment = np.searchsorted(bounds, train["line"], side="right").astype(np.int64)
    layout = _layout(p, train, message_range)
    bug = _throughput_bug(train, layout, message_range)
    rate = train.pop("rate")
    if bug:
        batch = p.lr_calc.global_batch if p.lr_calc else math.nan
        rate *= batch
        p.issue("throughput printed as updates/s (timm 1.0.16-1.0.19 bug): samples_per_sec "
                + ("corrected with the global batch size from the LR line" if p.lr_calc else "unknown (NaN)"),
                int(train["line"][0]))
    evals = _evals(p, test, train, train_segment, bounds)
    steps = pd.DataFrame({
        "epoch": train["epoch"], "idx": train["idx"], "per_epoch": train["total"],
        "update": train["epoch"] * train["total"] + train["idx"],
        "train_loss": train["loss"], "train_loss_avg": train["loss_avg"], "lr": train["lr"],
        "samples_per_sec": rate, "batch_time": train["batch_time"], "data_time": train["data"],
        "segment": train_segment, "src_line": train["line"],
    }, copy=False)
    assert list(steps.columns) == list(STEP_COLUMNS) + ["segment", "src_line"]
    evidence = []
    if layout:
        evidence.append(_LAYOUT_RANGES[layout])
    if bug:
        evidence.append(((1, 0, 16), (1, 0, 19)))
    if p.prec_era:
        evidence.append((None, (0, 1, 20)))
    if p.test_decimals:
        four = sum(weight for decimals, weight in p.test_decimals if decimals == 4)
        three = sum(weight for decimals, weight in p.test_decimals if decimals == 3)
        if four != three:
            evidence.append((None, (0, 8, 17)) if four > three else ((0, 9, 0), None))
    version = _version_text(*_narrow(evidence + p.evidence))
    events = resume_events + _events(p, train, steps, evals)
    events.sort(key=lambda event: (event.source.line or 0, event.kind))
    return ConsoleLog(
        path=p.path, steps=steps, evals=evals,
        info=MappingProxyType(dict(p.info)), info_refs=MappingProxyType(dict(p.info_refs)),
        lr_calc=p.lr_calc, events=tuple(events), issues=tuple(p.issues), layout=layout,
        timm_version=version, n_lines=n_lines, throughput_bug=bug)


def _events(p: Parser, train: dict[str, np.ndarray], steps: pd.DataFrame, evals: pd.DataFrame) -> list[Event]:
    events = _nonfinite_events(p, steps, evals)
    for line, value, epoch in p.best:
        events.append(Event("best_metric", f"best metric {value} at epoch {epoch}", p.ref(line), epoch,
                            {"value": value, "epoch": epoch}))
    for line in p.skipped_eval:
        row = int(np.searchsorted(train["line"], line)) - 1
        epoch = int(train["epoch"][row]) if row >= 0 else None
        events.append(Event("skipped_eval", "evaluation and checkpointing skipped (--val-interval)", p.ref(line), epoch))
    for (kind, text), (line, count) in p.crashes.items():
        extra = f" (x{count})" if count > 1 else ""
        events.append(Event(kind, text + extra, p.ref(line), _epoch_at(train, line), {"count": count}))
    for number, ((category, text), (line, count)) in enumerate(p.warnings.items()):
        if number == MAX_WARNINGS:
            p.issue(f"{len(p.warnings) - MAX_WARNINGS} more distinct warnings not listed", line)
            break
        extra = f" (x{count})" if count > 1 else ""
        events.append(Event("warning", f"{category}: {text}{extra}", p.ref(line), _epoch_at(train, line),
                            {"category": category, "count": count}))
    return events + p.events


def _epoch_at(train: dict[str, np.ndarray], line: int) -> int | None:
    row = int(np.searchsorted(train["line"], line)) - 1
    return int(train["epoch"][row]) if row >= 0 else None
