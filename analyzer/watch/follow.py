"""``watch``'s loop: poll the run directory, diagnose at each new epoch, print what changed, act on it.

Waiting: a poll that finds nothing new doubles the wait (``interval`` up to ``max_interval``); new data
resets it. Where ``watchfiles`` is installed (inotify / FSEvents / ReadDirectoryChangesW through the
Rust ``notify`` crate) a file event ends the wait early; otherwise the loop just sleeps. Diagnosing is
rate-limited (``live.next_diagnosis_delay``): epochs that arrive while a diagnosis would exceed its
share of one core are coalesced into the next one.

Nothing here writes into the run directory: the hook gets the finding on its stdin.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from mnv4_postmortem.analyzer.engine import RulePack
from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.watch.live import LiveDiagnosis, next_diagnosis_delay
from mnv4_postmortem.analyzer.watch.render import change_lines, note_line
from mnv4_postmortem.analyzer.watch.sources import LiveRunDir
from mnv4_postmortem.analyzer.watch.tracker import DEFAULT_CONFIRM, Change, at_least, change_json

HOOK_TIMEOUT = 60.0


@dataclass(frozen=True)
class WatchOptions:
    interval: float = 1.0             # first wait between polls (s)
    max_interval: float = 10.0        # back-off ceiling (s)
    idle: float | None = None         # --until-done: no new data for this long ends the watch (s)
    until_done: bool = False
    fail_on: Severity | None = None
    on_finding: str | None = None
    fmt: str = "text"
    confirm: int = DEFAULT_CONFIRM
    use_watchfiles: bool = True
    tb_aliases: object = None


@dataclass(frozen=True)
class WatchResult:
    exit_code: int                    # 0 done, 1 --fail-on reached
    reason: str
    diagnoses: int
    diagnose_cpu: float


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def follow(root: Path, pack: RulePack, options: WatchOptions, emit: Callable[[str], None],
           warn: Callable[[str], None]) -> WatchResult:
    live_dir = LiveRunDir(root, tb_aliases=options.tb_aliases)
    live = LiveDiagnosis(pack, options.confirm)
    live.warm_up()
    waiter = _Waiter(root, options.use_watchfiles)
    hook_level = options.fail_on if options.fail_on is not None else Severity.WARNING
    interval, diagnosed, diagnoses = options.interval, None, 0
    last_data = time.monotonic()
    not_before = 0.0
    announced_wait = False
    while True:
        if not live_dir.exists():
            if not announced_wait:
                _out(emit, options, {"time": now_text(), "event": "waiting", "message": f"waiting for {root} to appear"})
                announced_wait = True
        elif live_dir.poll():
            last_data, interval = time.monotonic(), options.interval
        progress = live_dir.progress()
        ended = live_dir.run_ended()
        if progress != diagnosed and (time.monotonic() >= not_before or ended):
            run = live_dir.build_run()
            if run is not None:
                changes = live.update(run, live=not ended)
                diagnoses += 1
                diagnosed = progress
                not_before = time.monotonic() + next_diagnosis_delay(live.last_cost, options.interval)
                for change in changes:
                    _show(change, emit, options)
                    if change.finding is not None and at_least(change, hook_level) and options.on_finding:
                        _run_hook(options.on_finding, change, warn)
                    if options.fail_on is not None and at_least(change, options.fail_on):
                        _out(emit, options, {"time": now_text(), "event": "exit", "code": 1,
                                             "message": f"--fail-on {options.fail_on.label}: {change.finding.rule_id}"})
                        return WatchResult(1, "fail-on", diagnoses, live.cpu_seconds)
        idle = time.monotonic() - last_data
        if options.until_done and progress == diagnosed and (
                ended or (options.idle is not None and idle >= options.idle)):
            reason = "timm printed its *** Best metric line" if ended else f"no new data for {options.idle:g} s"
            _out(emit, options, {"time": now_text(), "event": "done", "message": reason, "diagnoses": diagnoses,
                                 "diagnose_cpu_s": round(live.cpu_seconds, 3)})
            _final_report(live, live_dir, options, emit)
            return WatchResult(0, reason, diagnoses, live.cpu_seconds)
        wait = interval
        if progress != diagnosed:
            wait = min(interval, max(0.05, not_before - time.monotonic()))
        if options.until_done and options.idle is not None:
            wait = min(wait, max(0.05, options.idle - idle + 0.01))
        waiter.wait(wait)
        interval = min(interval * 2, options.max_interval)


def _show(change: Change, emit: Callable[[str], None], options: WatchOptions) -> None:
    if options.fmt == "json":
        emit(json.dumps(change_json(change, now_text())))
    else:
        emit("\n".join(change_lines(change, now_text())))


def _out(emit: Callable[[str], None], options: WatchOptions, event: dict) -> None:
    emit(json.dumps(event) if options.fmt == "json" else note_line(event))


def _run_hook(command: str, change: Change, warn: Callable[[str], None]) -> None:
    """The user's command, with the finding as JSON on stdin (no network code of ours)."""
    payload = json.dumps(change_json(change, now_text()))
    try:
        done = subprocess.run(command, shell=True, input=payload.encode(), timeout=HOOK_TIMEOUT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    except subprocess.TimeoutExpired:
        warn(f"--on-finding command did not finish in {HOOK_TIMEOUT:g} s: {command}")
        return
    except OSError as exc:
        warn(f"--on-finding command could not start: {exc}")
        return
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if done.stderr else []
        warn(f"--on-finding command exited {done.returncode}: {command}" + (f" ({detail[0]})" if detail else ""))


def _final_report(live: LiveDiagnosis, live_dir: LiveRunDir, options: WatchOptions, emit: Callable[[str], None]) -> None:
    """``--until-done``: the full report of the run as it ended (the same as ``report``)."""
    from mnv4_postmortem.analyzer.render import renderer
    from mnv4_postmortem.analyzer.render.json_render import report_dict

    run = live_dir.build_run()
    if run is None:
        return
    live.update(run, live=False)
    if live.diagnosis is None:
        return
    if options.fmt == "json":
        emit(json.dumps({"time": now_text(), "event": "report", "report": report_dict(live.diagnosis)}))
    else:
        emit(renderer("report", "text")(live.diagnosis, verbose=False))


class _Waiter:
    """Sleep until the next poll, or until the file system says something changed (watchfiles)."""

    def __init__(self, root: Path, use_watchfiles: bool):
        self.root = root
        self.enabled = use_watchfiles
        self.stream = None

    def wait(self, seconds: float) -> None:
        if self.enabled and self.stream is None and self.root.is_dir():
            self.stream = self._open()
        if self.stream is None:
            time.sleep(seconds)
            return
        self._next(seconds)

    def _open(self):
        try:
            import watchfiles
        except ImportError:
            self.enabled = False
            return None
        return watchfiles

    def _next(self, seconds: float) -> None:
        # One short-lived watch per wait: simple, and a directory that disappears does not leave a
        # stale watch behind. rust_timeout ends the wait when nothing happens.
        watchfiles = self.stream
        try:
            for _ in watchfiles.watch(self.root, debounce=50, step=20, rust_timeout=max(1, int(seconds * 1000)),
                                      yield_on_timeout=True, raise_interrupt=True):
                return
        except (OSError, RuntimeError):
            self.enabled, self.stream = False, None
            time.sleep(seconds)
