"""Where the jobs run: here (``local``, with rich progress bars) or through submitit.

``--launcher submitit`` submits each trajectory x seed as one job through ``submitit.AutoExecutor``
(SLURM on a cluster: ``--slurm-partition``, ``--gpus-per-job``, ``--timeout-min``) and collects the
results as they finish. Tests use submitit's local executor (``cluster="local"``), so the same code
path runs here. A job is a plain function of picklable arguments (:func:`run_job`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["run_jobs", "run_job"]


def run_job(spec, arms, seed: int, out_dirs: Sequence[Path], device: str, train_script: Path | None,
            tensorboard: bool = True, progress=None) -> list[Any]:
    """Train one trajectory x seed; returns one ArmResult per arm (picklable: this runs in submitit jobs too)."""
    if train_script is not None:
        from mnv4_postmortem.runner.script import run_train_script

        return [run_train_script(Path(train_script), spec, arm, seed, Path(d), device=device)
                for arm, d in zip(arms, out_dirs)]
    from mnv4_postmortem.runner.trainer import train_trajectory

    return train_trajectory(spec, arms, seed, [Path(d) for d in out_dirs], device=device, progress=progress,
                            tensorboard=tensorboard)


def run_jobs(jobs: Sequence[Any], state: Any, console: Console) -> None:
    if state.opts.launcher == "submitit":
        _run_submitit(jobs, state, console)
    else:
        _run_local(jobs, state, console)


def _args(job, state) -> tuple:
    arms = [p.arm for p in job.arms]
    dirs = [state.arm_dir(p.key, job.seed) for p in job.arms]
    return state.spec, arms, job.seed, dirs, state.device, state.opts.train_script, state.opts.tensorboard


def _run_local(jobs, state, console: Console) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} upd"),
               TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {job.name: progress.add_task(job.name, total=state.spec.budget.updates, epoch="-", loss="-")
                 for job in jobs}
        for job in jobs:
            task = tasks[job.name]

            def update(step: int, total: int, epoch: int, loss: float, _task=task) -> None:
                progress.update(_task, completed=step, total=total, epoch=epoch, loss=f"{loss:.3f}")

            results = run_job(*_args(job, state), progress=update)
            progress.update(task, completed=progress.tasks[task].total)
            state.record(job, results)


def _run_submitit(jobs, state, console: Console) -> None:
    import submitit

    opts = state.opts
    folder = Path(opts.submitit_folder or (state.out / "submitit"))
    executor = submitit.AutoExecutor(folder=str(folder), cluster=opts.submitit_cluster)
    params: dict[str, Any] = {"timeout_min": int(opts.timeout_min)}
    if opts.gpus_per_job:
        params["gpus_per_node"] = int(opts.gpus_per_job)
    if opts.slurm_partition:
        params["slurm_partition"] = opts.slurm_partition
    executor.update_parameters(**params)
    submitted = [(job, executor.submit(run_job, *_args(job, state))) for job in jobs]
    console.print(f"submitted {len(submitted)} job(s) through submitit ({executor.cluster}); logs in {folder}")
    pending = list(submitted)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} jobs"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("submitit jobs", total=len(pending))
        try:
            while pending:
                for item in list(pending):
                    job, handle = item
                    if handle.done():
                        state.record(job, handle.result())
                        pending.remove(item)
                        progress.advance(task)
                time.sleep(0.5)
        except KeyboardInterrupt:
            for _, handle in pending:
                handle.cancel(check=False)
            raise
