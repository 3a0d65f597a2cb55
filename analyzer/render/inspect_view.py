"""What ``inspect`` shows: a read-only view of the normalized Run (no diagnosis here)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.timm.trainers import trainer

# Config highlights, in display order: (label, keys looked up through TrainConfig.get).
HIGHLIGHTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model", ("model",)),
    ("num_classes", ("num_classes",)),
    # percent or fraction of 1, per accuracy series (ingest/units.py), with why
    ("accuracy unit", ("accuracy_units",)),
    ("input size", ("input_size", "img_size")),
    ("batch size", ("batch_size",)),
    ("global batch", ("global_batch",)),
    ("optimizer", ("opt",)),
    ("lr (effective)", ("lr",)),
    ("lr_base", ("lr_base",)),
    ("schedule", ("sched",)),
    ("epochs", ("epochs",)),
    ("warmup epochs", ("warmup_epochs",)),
    ("warmup lr", ("warmup_lr",)),
    ("cooldown epochs", ("cooldown_epochs",)),
    ("weight decay", ("weight_decay",)),
    ("model_ema", ("model_ema",)),
    ("model_ema_decay", ("model_ema_decay",)),
    ("model_ema_warmup", ("model_ema_warmup",)),
    ("model_ema_force_cpu", ("model_ema_force_cpu",)),
    ("drop", ("drop",)),
    ("drop_path", ("drop_path",)),
    ("drop_connect", ("drop_connect",)),
    ("mixup", ("mixup",)),
    ("cutmix", ("cutmix",)),
    ("smoothing", ("smoothing",)),
    ("pretrained", ("pretrained",)),
    ("pretrained_path", ("pretrained_path",)),
    ("initial_checkpoint", ("initial_checkpoint",)),
    ("resume", ("resume",)),
)

EVENT_KINDS_SHOWN = ("resume", "truncated", "crash", "oom", "nonfinite", "best_metric", "skipped_eval")


def describe(run: Run) -> dict[str, Any]:
    """A JSON-ready description of what was ingested."""
    config = run.config
    highlights = {}
    for label, keys in HIGHLIGHTS:
        key, value = _first_present(config, keys)
        if key is None:
            continue
        entry: dict[str, Any] = {"key": key, "value": _jsonable(value), "source": config.origin(key)}
        highlights[label] = entry
    epochs = run.epochs
    found_trainer = trainer(getattr(run, "trainer", None))
    return {
        "run": str(run.run_dir),
        "trainer": found_trainer.name if found_trainer else None,
        "timm_version": str(run.timm_version) if run.timm_version is not None else None,
        "epochs": {**run.epoch_span(), "columns": list(epochs.columns)},
        "steps": {"count": int(len(run.steps))},
        "sources": [
            {
                "path": s.path,
                "kind": s.kind,
                "family": s.family,
                "timm_version": s.timm_version,
                "epochs": list(s.epochs) if s.epochs else None,
                "metrics": list(s.metrics),
                "records": s.records,
                "notes": list(getattr(s, "notes", ())),
                "config_keys": list(s.config_keys),
            }
            for s in run.sources
        ],
        "config": highlights,
        "events": [
            {"kind": e.kind, "epoch": e.epoch, "message": e.message, "source": str(e.source)}
            for e in run.events
            if e.kind in EVENT_KINDS_SHOWN
        ],
        "warnings": [{"source": str(i.source), "level": i.level, "message": i.message} for i in run.issues],
    }


def render_text(view: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]Run[/bold] {escape(str(view['run']))}")
    ep = view["epochs"]
    span = f"epochs {ep['first']}..{ep['last']} ({ep['count']})" if ep["count"] else "no epoch-level data"
    sched = f", {ep['scheduled']} scheduled" if ep["scheduled"] else ""
    if view.get("trainer"):
        console.print(f"trainer: {escape(str(view['trainer']))}")
    console.print(f"timm version (guessed): {escape(str(view['timm_version'] or 'unknown'))}; {span}{sched}; {view['steps']['count']} logged steps")

    table = Table(title="Sources", show_lines=False, expand=False)
    for col in ("file", "kind", "format", "epochs", "metrics"):
        table.add_column(col, overflow="fold")
    for s in view["sources"]:
        epochs = f"{s['epochs'][0]}..{s['epochs'][1]}" if s["epochs"] else ""
        family = s["family"] or ""
        if s["timm_version"]:
            family = f"{family} (timm {s['timm_version']})"
        # cells are rich markup: a file named "[red]x" must print as itself
        table.add_row(*(escape(str(v)) for v in (s["path"], s["kind"], family, epochs, ", ".join(s["metrics"]))))
    console.print(table)
    for s in view["sources"]:
        for note in s.get("notes") or ():
            console.print(f"  {s['path']}: {note}", markup=False)
        if s.get("config_keys"):  # another trainer's settings: listed, not read as timm's (timm/argument_names.py)
            console.print(f"  {s['path']} keys (other config, not read as train.py settings): "
                          + ", ".join(s["config_keys"]), markup=False)

    config = Table(title="Config highlights", show_header=True)
    config.add_column("setting")
    config.add_column("value", overflow="fold")
    config.add_column("from", overflow="fold")
    for label, entry in view["config"].items():
        config.add_row(escape(label), escape(_fmt(entry["value"])), escape(str(entry["source"])))
    console.print(config)

    if view["events"]:
        console.print("[bold]Events[/bold]")
        for e in view["events"]:
            epoch = f" epoch {e['epoch']}" if e["epoch"] is not None else ""
            console.print(f"  {e['kind']}{epoch}: {e['message']} ({e['source']})", markup=False)
    if view["warnings"]:
        console.print(f"[bold]Ingest warnings[/bold] ({len(view['warnings'])})")
        for w in view["warnings"]:
            console.print(f"  {w['level']}: {w['source']}: {w['message']}", markup=False)


def _first_present(config, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        value = config.get(key)
        if value is not None and value != "":
            return key, value
    return None, None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
