"""``reproduce RUN_DIR --ablate``: train the ablation ladder (:mod:`.ablation`) with the runner.

Every rung is an arm of the runner: its patch goes on the ORIGINAL recipe and is scaled like the
control (:meth:`TrainSpec.arm`), so the budget-faithful scaling (EMA decay per update count, warmup
fraction, per-sample LR) holds on every rung. Rungs that differ only in EMA settings share one training
trajectory (one raw model, one EMA copy per rung), as in ``reproduce``. Each rung's folder is read
back by the analyzer's ordinary parsers, which gives the table's "findings that fire".

Writes ``ablation.json`` and ``ablation_top1.png`` / ``.svg`` (eval top-1 per rung, overlaid) in the
out folder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from rich.console import Console

from mnv4_postmortem.analyzer.reproduction import ReproFolder
from mnv4_postmortem.analyzer.session import Analyzer, lr_reference
from mnv4_postmortem.runner import ablation
from mnv4_postmortem.runner.ablation import LadderPlan
from mnv4_postmortem.runner.output import RunnerOutput

ABLATION_FILE = "ablation.json"
PLOT_BASE = "ablation_top1"

__all__ = ["run_ablation", "ABLATION_FILE", "ladder_for"]


def causes_of(run, analyzer: Analyzer | None = None) -> tuple[list[str], list[str]]:
    """The fired findings' causes (most likely first) and the differential's (considered) causes."""
    diagnosis = (analyzer or Analyzer()).diagnose(run)
    fired = list(dict.fromkeys(f.cause for f in diagnosis.findings))
    considered = [c.cause for c in diagnosis.considered if c.cause not in fired]
    return fired, list(dict.fromkeys(considered))


def ladder_for(run, spec, *, one_at_a_time: bool = False, max_rungs: int | None = None,
               analyzer: Analyzer | None = None) -> LadderPlan:
    original = dict(spec.original_args)
    global_batch = int(original.get("batch_size") or 32) * int(original.get("grad_accum_steps") or 1)
    cap = lr_reference(original.get("opt"), global_batch)
    fired, considered = causes_of(run, analyzer)
    analyzer = analyzer or Analyzer()
    toggles = {key: analyzer.causes_toggled_by(key) for key in ablation.COMPONENT_KEYS}
    components = ablation.components_of(original, cap, fired, considered, toggles, defaults=run.config.defaults)
    return ablation.plan_ladder(components, one_at_a_time=one_at_a_time, max_rungs=max_rungs, lr_cap=cap)


def run_ablation(run_dir: Path, opts: Any, console: Console, *, one_at_a_time: bool = False,
                 max_rungs: int | None = None, spec: Any = None) -> int:
    """The whole ladder; ``spec`` replaces the one built from the run (tests pass a tiny model's)."""
    from mnv4_postmortem.runner.reproduce import (
        ReproduceError, analyze_arm, check_out_dir, default_out_dir, print_spec, resolve_device,
    )
    from mnv4_postmortem.runner.spec import build_spec

    if opts.proxy == (opts.data_dir is not None):
        raise ReproduceError("give exactly one of --proxy or --data-dir DIR")
    out = ReproFolder(check_out_dir(run_dir, opts.out or default_out_dir(run_dir))).ablation
    analyzer = opts.session()
    run = analyzer.load(Path(run_dir))
    data = "proxy" if opts.proxy else str(opts.data_dir)
    if spec is None:
        spec = build_spec(run, data=data, epochs=opts.epochs, max_samples=opts.max_samples,
                          val_samples=opts.val_samples, img_size=opts.img_size, init_checkpoint=opts.init_checkpoint)
    print_spec(spec, console)
    plan = ladder_for(run, spec, one_at_a_time=one_at_a_time, max_rungs=max_rungs, analyzer=analyzer)
    if len(plan.rungs) < 2:
        raise ReproduceError("no advanced component is switched on in this recipe: the ladder has nothing to add back")
    arms = [spec.arm(f"rung{r.index}", "control" if r.index == 0 else "treatment", r.patch) for r in plan.rungs]
    seeds = list(range(opts.seeds))
    groups = _trajectories(arms)
    output = RunnerOutput(console)
    output.show("ladder-plan", plan_document(plan, arms, groups, spec, seeds))
    if opts.dry_run:
        console.print("[bold]--dry-run[/]: nothing was trained.")
        return 0
    device = resolve_device(opts.device)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[tuple[int, int], dict[str, Any]] = {}
    interrupted = False
    try:
        from mnv4_postmortem.runner.launch import run_job

        for seed in seeds:
            for members in groups:
                dirs = [out / f"rung{i}" / f"seed{seed}" for i in members]
                label = "+".join(f"rung{i}" for i in members)
                console.print(f"training {label} seed {seed} ({spec.budget.updates} updates)")
                trained = run_job(spec, [arms[i] for i in members], seed, dirs, device, opts.train_script,
                                  getattr(opts, "tensorboard", True))
                for i, d, result in zip(members, dirs, trained):
                    results[(i, seed)] = analyze_arm(d, result, analyzer)
                _write(out, plan, arms, seeds, results, spec, started, complete=False)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]Interrupted: keeping the rungs that finished[/]")
    doc = _write(out, plan, arms, seeds, results, spec, started, complete=not interrupted)
    plot = output.save_plots("ladder", doc, out / PLOT_BASE)
    doc["plot"] = [str(p) for p in plot]
    (out / ABLATION_FILE).write_text(output.document("ladder", doc), encoding="utf-8")
    output.show("ladder", doc)
    console.print(f"wrote {out / ABLATION_FILE}; plot {plot[0]}")
    return 130 if interrupted else 0


def _trajectories(arms: Sequence[Any]) -> list[list[int]]:
    """Rung indices grouped by training trajectory (rungs that differ only in EMA settings share one)."""
    groups: dict[tuple, list[int]] = {}
    for i, arm in enumerate(arms):
        groups.setdefault(arm.trajectory_key(), []).append(i)
    return list(groups.values())


def plan_document(plan: LadderPlan, arms, groups, spec, seeds) -> dict[str, Any]:
    """What the ladder will train, as the ``ladder-plan`` renderer shows it (before anything runs)."""
    return {
        "mode": plan.mode, "order_rule": plan.order_rule, "lr_cap": plan.lr_cap,
        "opt": spec.original_args.get("opt"), "original_batch": spec.budget.original_batch,
        "components": [{"key": c.key, "label": c.label, "why": list(c.why)} for c in plan.components],
        "rungs": [{"rung": rung.index, "added": rung.added, "lr": arm.args.get("lr"), "ema": arm.ema_on,
                   "ema_decay": arm.args.get("model_ema_decay"), "drop": arm.args.get("drop"),
                   "drop_path": arm.args.get("drop_path"), "smoothing": arm.args.get("smoothing")}
                  for rung, arm in zip(plan.rungs, arms)],
        "notes": list(plan.notes),
        "cost": {"rungs": len(plan.rungs), "seeds": len(seeds), "trainings": len(groups) * len(seeds),
                 "updates": len(groups) * len(seeds) * spec.budget.updates, "batch": spec.budget.batch,
                 "epochs": spec.budget.epochs, "val_samples": spec.budget.val_samples},
    }


def _write(out: Path, plan: LadderPlan, arms, seeds, results, spec, started: float, *, complete: bool) -> dict[str, Any]:
    doc = build_document(plan, arms, seeds, results, spec, started, complete=complete)
    (out / ABLATION_FILE).write_text(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    return doc


def build_document(plan: LadderPlan, arms, seeds, results, spec, started: float, *, complete: bool) -> dict[str, Any]:
    rungs = []
    flats: list[bool | None] = []
    for rung, arm in zip(plan.rungs, arms):
        per_seed = [results[(rung.index, s)] for s in seeds if (rung.index, s) in results]
        gains = [ablation.eval_gain(r["curve"]["eval_top1"]) for r in per_seed]
        flat = ablation.is_flat(gains)
        flats.append(flat)
        rungs.append({
            "rung": rung.index, "added": rung.added, "components": list(rung.components),
            "patch": _plain(rung.patch), "lr": arm.args.get("lr"), "ema": arm.ema_on,
            "final_top1": _mean([r["final_top1"] for r in per_seed]),
            "final_top1_model": _mean([_last(r["curve"]["eval_top1_model"]) for r in per_seed]),
            "train_loss": _mean([_last(r["curve"]["train_loss"]) for r in per_seed]),
            "eval_gain": _mean(gains), "flat": flat,
            "fired": sorted({f["rule_id"] for r in per_seed for f in r["findings"] if f["severity"] != "info"}),
            "seeds": [{"seed": s, **{k: v for k, v in results[(rung.index, s)].items() if k != "correct"}}
                      for s in seeds if (rung.index, s) in results],
        })
    first = ablation.first_stall_rung(flats, plan.mode)
    return {
        "schema": "mnv4-postmortem/ablation", "schema_version": "1.0", "run": str(spec.run_dir),
        "run_name": spec.run_name, "mode": plan.mode, "order_rule": plan.order_rule, "lr_cap": plan.lr_cap,
        "flat_rule": f"reported eval top-1 gains < {ablation.FLAT_GAIN:g} points (best minus first epoch, mean over seeds)",
        "components": [asdict(c) | {"restore": _plain(c.restore), "off": _plain(c.off)} for c in plan.components],
        "dropped": list(plan.dropped), "seeds": list(seeds), "complete": complete,
        "seconds": round(time.time() - started, 1), "rungs": rungs,
        "first_stall_rung": first,
        "first_stall_added": plan.rungs[first].added if first is not None else None,
        "stall_line": stall_line(plan, rungs, first),
        "spec": spec.to_json(),
    }


def stall_line(plan: LadderPlan, rungs: Sequence[Mapping[str, Any]], first: int | None) -> str:
    if not rungs or rungs[0]["flat"] is None:
        return "the baseline did not finish: nothing to compare"
    if rungs[0]["flat"]:
        return (f"the baseline itself is flat (eval top-1 gains {_fmt(rungs[0]['eval_gain'])} points): the stall is not "
                "caused by an advanced component; look at the data, the model or the LR")
    if first is None:
        return "no rung brings the stall back: the flat eval does not reproduce with these components at this scale"
    r = rungs[first]
    below = rungs[first - 1] if plan.mode == "cumulative" else rungs[0]
    return (f"rung {first} brings the stall back: {r['added']} (eval top-1 gains {_fmt(r['eval_gain'])} points; "
            f"rung {below['rung']} gained {_fmt(below['eval_gain'])})")


def _mean(values: Sequence[Any]) -> float | None:
    known = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return round(sum(known) / len(known), 4) if known else None


def _last(values: Sequence[Any]) -> Any:
    return values[-1] if values else None


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(float(value), spec)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(mapping), default=str))
