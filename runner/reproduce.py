"""``mnv4-postmortem reproduce RUN_DIR``: the whole flow, from a run folder to verdicts.

1. analyze the run, pick the findings to verify (:mod:`.targets`);
2. build the scaled spec and print it (kept / scaled / replaced, and why) before anything runs;
3. plan the arms: one control (shared by every finding) and one treatment per finding; arms that
   differ only in EMA settings share a training trajectory, identical arms share a folder;
4. train every trajectory x seed (built-in trainer or ``--train-script``; locally or via submitit);
5. analyze every arm folder with the analyzer's ordinary parsers, decide (:mod:`.verify`), write
   ``verification.json`` (also after each finished job, so Ctrl-C leaves a partial one) and print
   the summary table.

Never writes into RUN_DIR.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from rich.console import Console
from rich.markup import escape

from mnv4_postmortem.runner import scaling, verify
from mnv4_postmortem.runner.spec import ArmSpec, TrainSpec, build_spec, command_for, ema_decay, entry_json
from mnv4_postmortem.runner.targets import Target, TargetError, fired_causes, hold_to_direction, select_targets

from mnv4_postmortem.analyzer.reproduction import BATCH_GRID_FILE as BATCH_GRID, VERIFICATION_FILE, ReproFolder
from mnv4_postmortem.analyzer.session import Analyzer
from mnv4_postmortem.analyzer.verification import (
    DEFAULT_OUT_ROOT, ArmsPlan, PlannedFinding, SpecEntryRecord, SpecRecord, load_verification, read_record,
)
from mnv4_postmortem.runner.output import RunnerOutput

__all__ = ["Options", "reproduce", "default_out_dir", "ReproduceError", "VERIFICATION_FILE", "DEFAULT_OUT_ROOT"]


class ReproduceError(Exception):
    """A usage problem (exit 2): bad out folder, nothing to verify, unknown finding."""


@dataclass
class Options:
    findings: tuple[str, ...] = ()
    all_findings: bool = False
    data_dir: Path | None = None
    proxy: bool = False
    epochs: int | None = None
    max_samples: int | None = None
    val_samples: int | None = None
    img_size: int | None = None
    seeds: int = verify.DEFAULT_SEEDS
    device: str = "auto"
    out: Path | None = None
    train_script: Path | None = None
    launcher: str = "local"
    dry_run: bool = False
    init_checkpoint: Path | None = None
    slurm_partition: str | None = None
    gpus_per_job: int = 0
    timeout_min: int = 60
    submitit_folder: Path | None = None
    submitit_cluster: str | None = None   # None = auto (SLURM when present); "local" in tests
    tensorboard: bool = True
    # Replace train.py args in the original and the scaled recipe alike (tests: a tiny model). Not a CLI option.
    arg_overrides: Mapping[str, Any] = field(default_factory=dict)
    # The analyzer session (--rules, --tb-alias) that reads the run and every arm; None: the shipped rules.
    analyzer: Any = None

    def session(self) -> Analyzer:
        if self.analyzer is None:
            self.analyzer = Analyzer()
        return self.analyzer


@dataclass
class ArmPlan:
    key: str                      # folder name under arms/
    arm: ArmSpec
    targets: list[str] = field(default_factory=list)
    ema_plan: scaling.EmaPlan | None = None


@dataclass
class Job:
    """One trajectory x seed: the arms it writes."""

    arms: list[ArmPlan]
    seed: int

    @property
    def name(self) -> str:
        return "+".join(a.key for a in self.arms) + f"/seed{self.seed}"


def default_out_dir(run_dir: Path) -> Path:
    """``./mnv4-postmortem-repro/<run-name>/`` (the reproduction folder's layout has one owner)."""
    return ReproFolder.default_for(run_dir).root


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_out_dir(run_dir: Path, out: Path) -> Path:
    run, target = Path(run_dir).resolve(), Path(out).resolve()
    if target == run or run in target.parents:
        raise ReproduceError(f"--out {out} is inside the run directory {run_dir}; a reproduction never writes there")
    return target


# ------------------------------------------------------------------------------------------- flow


def reproduce(run_dir: Path, opts: Options, console: Console) -> int:
    if opts.proxy == (opts.data_dir is not None):
        raise ReproduceError("give exactly one of --proxy or --data-dir DIR")
    if opts.seeds < 1:
        raise ReproduceError("--seeds must be at least 1")
    out = check_out_dir(run_dir, opts.out or default_out_dir(run_dir))
    if opts.out is None:
        note = ReproFolder.default_moved_note(run_dir)
        if note:
            console.print(f"[yellow]note:[/] {escape(note)}")
    analyzer = opts.session()
    run = analyzer.load(Path(run_dir))
    report = analyzer.diagnose(run)
    try:
        targets = select_targets(run, report, analyzer, opts.findings, opts.all_findings)
    except TargetError as exc:
        raise ReproduceError(str(exc)) from None
    data = "proxy" if opts.proxy else str(opts.data_dir)
    spec = build_spec(run, data=data, epochs=opts.epochs, max_samples=opts.max_samples, val_samples=opts.val_samples,
                      img_size=opts.img_size, init_checkpoint=opts.init_checkpoint, hub_available=_hub_cached(run))
    if opts.arg_overrides:
        spec = replace(spec, args={**spec.args, **opts.arg_overrides},
                       original_args={**spec.original_args, **opts.arg_overrides})
    print_spec(spec, console)
    from mnv4_postmortem.runner.lr_find import LR_CAUSES, with_finder_lr

    if opts.dry_run:  # planning is torch-free: the LR range test trains, so a dry run names it and runs nothing
        if any(t.cause in LR_CAUSES and "lr" not in (t.patch or {}) for t in targets):
            console.print("--dry-run: the LR range test that would choose the lr-* treatment's LR is not run")
    else:
        targets = with_finder_lr(run, targets, data, resolve_device(opts.device), console, opts.init_checkpoint)
    targets = [hold_to_direction(t, spec.original_args, analyzer.pack.treatments) for t in targets]
    skipped = skipped_targets(targets, spec)
    for t_id, why in skipped.items():
        console.print(f"[yellow]{escape(t_id)}: skipped: {escape(why)}[/]")
    testable = [t for t in targets if t.id not in skipped]
    if not testable:
        raise ReproduceError("none of the selected findings can be tested here: " + "; ".join(skipped.values()))
    plans, per_target = plan_arms(spec, testable)
    print_plan(spec, testable, plans, per_target, opts, console)
    if opts.dry_run:
        console.print("[bold]--dry-run[/]: nothing was trained.")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(opts.seeds))
    jobs = plan_jobs(plans, seeds)
    device = resolve_device(opts.device)
    state = _State(run_dir=Path(run_dir), out=out, spec=spec, targets=testable, plans=plans, per_target=per_target,
                   seeds=seeds, device=device, opts=opts, started=time.time(), skipped=skipped)
    interrupted = False
    try:
        from mnv4_postmortem.runner.launch import run_jobs

        run_jobs(jobs, state, console)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]Interrupted: keeping the arms that finished; writing a partial verification.json[/]")
    doc = state.document(complete=not interrupted and state.all_done(jobs), interrupted=interrupted)
    written = write_verification(out, doc)
    print_summary(written, console)
    console.print(f"wrote {out / VERIFICATION_FILE}")
    return 130 if interrupted else 0


def _hub_cached(run) -> bool:
    """Whether timm can load the model's hub weights without a network (already in the HF cache)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        import timm

        cfg = timm.models.get_pretrained_cfg(str(run.config.get("model")))
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not hub_id:
            return False
        for name in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id, name)
            if isinstance(hit, str) and os.path.exists(hit):
                return True
    except Exception:  # noqa: BLE001 - no hub library, unknown model: not available
        return False
    return False


# ------------------------------------------------------------------------------------------- plan

# Causes that are about the original's pretrained weights: a reproduction from other weights cannot test them.
NEEDS_ORIGINAL_INIT = frozenset({"input-size-mismatch"})


def skipped_targets(targets: Sequence[Target], spec: TrainSpec) -> dict[str, str]:
    """Findings this reproduction cannot test, and why (no fix; or the weights they are about are missing)."""
    skipped: dict[str, str] = {}
    for t in targets:
        if t.untestable:
            skipped[t.id] = t.untestable
        elif not t.patch:
            skipped[t.id] = "its rule proposes no fix to test"
        elif t.cause in NEEDS_ORIGINAL_INIT and spec.init.kind == "random" and spec.init.note:
            skipped[t.id] = ("it is about the pretrained weights at another input size, and those weights cannot be "
                             "loaded here (give them with --init-checkpoint FILE)")
    return skipped



def plan_arms(spec: TrainSpec, targets: Sequence[Target]) -> tuple[list[ArmPlan], dict[str, tuple[str, str]]]:
    """Arms to train (identical ones merged) and, per target id, its (control key, treatment key)."""
    plans: list[ArmPlan] = []

    def add(arm: ArmSpec, key: str, target: str) -> str:
        for plan in plans:
            if plan.arm.same_as(arm):
                plan.targets.append(target)
                return plan.key
        plans.append(ArmPlan(key, arm, [target], _ema_plan(spec, arm)))
        return key

    per_target: dict[str, tuple[str, str]] = {}
    for t in targets:
        control = add(spec.arm("control", "control"), "control", t.id)
        treatment = add(spec.arm(f"{t.id}-fix", "treatment", t.patch), f"{t.id}-fix", t.id)
        per_target[t.id] = (control, treatment)
    return plans, per_target


def _ema_plan(spec: TrainSpec, arm: ArmSpec) -> scaling.EmaPlan | None:
    original = {**spec.original_args, **arm.patch}
    if not arm.ema_on or not original.get("model_ema"):
        return None
    decay = ema_decay(original)
    return scaling.scale_ema(float(decay), bool(original.get("model_ema_warmup")),
                             spec.ema_version, spec.budget.original_updates, spec.budget.updates)


def plan_jobs(plans: Sequence[ArmPlan], seeds: Sequence[int]) -> list[Job]:
    groups: dict[tuple, list[ArmPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.arm.trajectory_key(), []).append(plan)
    return [Job(list(group), seed) for seed in seeds for group in groups.values()]


# ------------------------------------------------------------------------------------------- state


@dataclass
class _State:
    run_dir: Path
    out: Path
    spec: TrainSpec
    targets: list[Target]
    plans: list[ArmPlan]
    per_target: dict[str, tuple[str, str]]
    seeds: list[int]
    device: str
    opts: Options
    started: float
    skipped: dict[str, str] = field(default_factory=dict)  # finding -> why it cannot be tested here
    results: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (arm key, seed) -> outcome
    done_jobs: set[str] = field(default_factory=set)

    def arm_dir(self, key: str, seed: int) -> Path:
        return ReproFolder(self.out).arms / key / f"seed{seed}"

    def record(self, job: Job, results: Sequence[Any]) -> None:
        """Analyze each finished arm folder and keep what the verdict needs; rewrite the partial JSON."""
        for plan, result in zip(job.arms, results):
            self.results[(plan.key, job.seed)] = analyze_arm(self.arm_dir(plan.key, job.seed), result,
                                                             self.opts.session())
        self.done_jobs.add(job.name)
        write_verification(self.out, self.document(complete=False, interrupted=False))

    def all_done(self, jobs: Sequence[Job]) -> bool:
        return all(j.name in self.done_jobs for j in jobs)

    def document(self, complete: bool, interrupted: bool) -> dict[str, Any]:
        return build_document(self, complete, interrupted)


def analyze_arm(folder: Path, result: Any, analyzer: Analyzer | None = None) -> dict[str, Any]:
    """Run the analyzer on one arm's folder (its ordinary parsers, the session's rules) and keep the facts a
    verdict needs."""
    analyzer = analyzer or Analyzer()
    run = analyzer.load(folder)
    report = analyzer.diagnose(run)
    top1 = run.series("eval_top1").dropna()
    model_top1 = run.series("eval_top1_model").dropna()
    correct: list[int] = []
    correct_model: list[int] = []
    final = folder / "final_eval.json"
    if final.is_file():
        saved = json.loads(final.read_text(encoding="utf-8"))
        correct, correct_model = saved.get("correct", []), saved.get("correct_model", [])
    if not len(model_top1):  # no EMA pass: the reported eval is the raw model's
        model_top1, correct_model = top1, correct
    return {
        "dir": str(folder),
        "fired": sorted(fired_causes(report)),
        "findings": [{"rule_id": f.rule_id, "cause": f.cause, "severity": f.severity.label,
                      "confidence": round(f.confidence, 3)} for f in report.findings],
        "final_top1": float(top1.iloc[-1]) if len(top1) else math.nan,
        "final_top1_model": float(model_top1.iloc[-1]) if len(model_top1) else math.nan,
        "curve": {"eval_top1": [_num(v) for v in top1.tolist()],
                  "eval_top1_model": [_num(v) for v in model_top1.tolist()],
                  "train_loss": [_num(v) for v in run.series("train_loss").dropna().tolist()]},
        "correct": correct,
        "correct_model": correct_model,
        "ema_share_observed": getattr(result, "ema_share_observed", None),
        "seconds": round(float(getattr(result, "seconds", 0.0) or 0.0), 2),
        "step_seconds": round(float(getattr(result, "step_seconds", 0.0) or 0.0), 4),
    }


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, 4) if math.isfinite(f) else None


# ------------------------------------------------------------------------------------------- output


def build_document(state: _State, complete: bool, interrupted: bool) -> dict[str, Any]:
    spec = state.spec
    findings = []
    for t in state.targets:
        control_key, treatment_key = state.per_target[t.id]
        pairs = []
        for seed in state.seeds:
            c, tr = state.results.get((control_key, seed)), state.results.get((treatment_key, seed))
            if c is None or tr is None:
                continue
            metric = target_metric(t.cause, state.opts.session())
            suffix = "" if metric == "eval_top1" else "_model"
            pairs.append(verify.SeedPair(seed, t.cause in c["fired"], t.cause in tr["fired"], c["final_top1" + suffix],
                                         tr["final_top1" + suffix], c["correct" + suffix], tr["correct" + suffix]))
        verdict = verify.decide(pairs, target_metric(t.cause))
        if not pairs and interrupted:
            verdict = verify.Verdict("inconclusive", _finished_arms_text(state, control_key, treatment_key),
                                     "run the remaining seeds")
        elif len(pairs) < len(state.seeds) and verdict.verdict != "inconclusive":
            # a partial run (Ctrl-C) decides nothing: say what the finished seeds suggest
            verdict = verify.Verdict("inconclusive", f"only {len(pairs)}/{len(state.seeds)} seeds finished "
                                     f"(the finished ones point to '{verdict.verdict}': {verdict.reason})",
                                     "run the remaining seeds", verdict.effect, verdict.checks)
        findings.append({
            "finding": t.id, "cause": t.cause, "rule_id": t.rule_id, "title": t.title,
            "metric": target_metric(t.cause, state.opts.session()),
            "fired_on_run": t.fired, "note": t.note, "patch": _jsonable(t.patch), "direction": t.direction,
            "fix_command": command_for(spec, t.patch),
            "verdict": verdict.verdict, "reason": verdict.reason, "settle": verdict.settle, "checks": verdict.checks,
            "effect": verdict.effect.to_json() if verdict.effect else None,
            "seeds_finished": [p.seed for p in pairs],
            "arms": [_arm_json(state, control_key, "control"), _arm_json(state, treatment_key, "treatment")],
            "init_changes": spec.init.changes,
        })
    return {
        "schema": verify.SCHEMA, "schema_version": verify.SCHEMA_VERSION,
        "run": str(state.run_dir), "run_name": spec.run_name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "complete": complete, "interrupted": interrupted,
        "seconds": round(time.time() - state.started, 1),
        "device": state.device, "launcher": state.opts.launcher,
        "trainer": "train-script" if state.opts.train_script else "built-in",
        "train_script": str(state.opts.train_script) if state.opts.train_script else None,
        "seeds": state.seeds,
        "metric": "final-epoch eval top-1 of the model the finding is about: reported (EMA's) for ema-lag, "
                  "the raw model's Test: top-1 otherwise (per finding: 'metric')",
        "spec": spec.to_json(), "findings": findings,
        "skipped": [{"finding": k, "reason": v} for k, v in state.skipped.items()],
        # reproduce --show-batch: the input batch as the network sees it (runner/show_batch.py)
        "batch_grid": str(state.out / BATCH_GRID) if (state.out / BATCH_GRID).is_file() else None,
    }


def _finished_arms_text(state: _State, control_key: str, treatment_key: str) -> str:
    """After Ctrl-C with no seed's pair complete: which arms did finish (their runs are kept)."""
    done = [f"{key} (seed {seed})" for key in dict.fromkeys((control_key, treatment_key)) for seed in state.seeds
            if (key, seed) in state.results]
    if not done:
        return "interrupted before any arm finished"
    return f"interrupted before any seed had both arms; finished: {', '.join(done)}"


def target_metric(cause: str, analyzer: Analyzer | None = None) -> str:
    """The final eval top-1 of the model a finding is about: the cause's ``metric`` in the rule pack's
    causes.yaml (ema-lag: what timm reports, eval_top1; the others: the raw model's own eval_top1_model)."""
    return (analyzer or Analyzer()).target_metric(cause)


def _arm_json(state: _State, key: str, role: str) -> dict[str, Any]:
    plan = next(p for p in state.plans if p.key == key)
    seeds = []
    for seed in state.seeds:
        r = state.results.get((key, seed))
        if r is None:
            continue
        seeds.append({k: v for k, v in {"seed": seed, **r}.items() if k not in ("correct", "correct_model")})
    ema = None
    if plan.ema_plan is not None:
        observed = [s["ema_share_observed"] for s in seeds if s.get("ema_share_observed") is not None]
        ema = {"decay_original": _jsonable({**state.spec.original_args, **plan.arm.patch}.get("model_ema_decay")),
               "decay_scaled": plan.ema_plan.decay, "warmup": bool(plan.arm.args.get("model_ema_warmup")),
               "warmup_gamma": plan.ema_plan.warmup_gamma,
               "share_original_end": plan.ema_plan.original_share, "share_predicted_end": plan.ema_plan.predicted_share,
               "share_observed_end": observed[0] if observed else None, "why": plan.ema_plan.why}
    changed = {k: _jsonable(v) for k, v in plan.arm.args.items() if state.spec.args.get(k) != v}
    return {"name": key, "role": role, "args_changed_from_control": changed, "ema": ema, "seeds": seeds,
            "entries": [entry_json(e) for e in plan.arm.entries if role == "treatment" and e.name in plan.arm.patch]}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def write_verification(out: Path, doc: Mapping[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / VERIFICATION_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# What reproduce shows is rendered by the registry's renderers (render/reproduce.py) from typed records.

def spec_record(spec: TrainSpec) -> SpecRecord:
    """The spec as verification.json records it, typed (what the spec table shows)."""
    return read_record(SpecRecord, spec.to_json(), "spec")


def print_spec(spec: TrainSpec, console: Console) -> None:
    RunnerOutput(console).show("reproduce-spec", spec_record(spec))


def arms_plan(spec: TrainSpec, targets: Sequence[Target], plans: Sequence[ArmPlan], per_target, seeds: int) -> ArmsPlan:
    findings = []
    for t in targets:
        control, treatment = per_target[t.id]
        plan = next(p for p in plans if p.key == treatment)
        findings.append(PlannedFinding(t.id, bool(t.fired), control, treatment, dict(t.patch or {}), t.direction or None,
                                       tuple(read_record(SpecEntryRecord, entry_json(e)) for e in plan.arm.entries)))
    groups = {p.arm.trajectory_key() for p in plans}
    return ArmsPlan(tuple(findings), len(plans), len(groups), seeds)


def print_plan(spec: TrainSpec, targets: Sequence[Target], plans: Sequence[ArmPlan], per_target, opts: Options,
               console: Console) -> None:
    RunnerOutput(console).show("reproduce-plan", arms_plan(spec, targets, plans, per_target, opts.seeds))


def print_summary(path: Path, console: Console) -> None:
    """The verdicts as written: read back from ``path`` (the same records ``report --verification`` shows)."""
    RunnerOutput(console).show("verdicts", load_verification(path))
