"""``mnv4-postmortem batch ROOT...``: diagnose many runs in parallel; with ``--out DIR``, an index and reports."""

from __future__ import annotations

from pathlib import Path

import click

from mnv4_postmortem.analyzer.render import formats
from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import SEVERITIES, echo_err, emit, fail, rules_option, session, stderr_console, tb_alias_options



@click.command("batch")
@click.argument("roots", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice((*formats("batch"), *(n for n in formats("batch-summary") if n == "md"))), default="text", show_default=True,
              help="stdout: text, one line per run; json, one JSON object per run (JSON Lines); md, a Markdown summary.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write index.html, runs.csv, runs.jsonl, summary.md and each run's HTML report (runs/) here.")
@click.option("--no-run-reports", is_flag=True, help="With --out: build the index alone, no per-run reports.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the number of cores).")
@click.option("--dask-scheduler", "dask_address", metavar="ADDRESS",
              help="Analyse on an existing Dask cluster (e.g. tcp://host:8786) instead of local processes.")
@rules_option
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None, help="Exit 1 when any run has a finding at or above this severity.")
@click.option("--fail-on-nothing-to-judge", is_flag=True,
              help="Exit 4 when any run had nothing to judge (read, but no train or eval curve over a few epochs) "
                   "and no run fails --fail-on. Default: such runs are listed as their own class and do not "
                   "change the exit status.")
@tb_alias_options
def batch_command(roots: tuple[Path, ...], fmt: str, out_dir: Path | None, no_run_reports: bool, jobs: int | None,
                  dask_address: str | None, rule_paths: tuple[Path, ...], fail_on: str | None,
                  fail_on_nothing_to_judge: bool = False, tb_alias: tuple[str, ...] = (),
                  tb_aliases_file: Path | None = None) -> None:
    """Diagnose every run found under ROOTS, recursively. A run is a folder with any timm output
    (summary.csv, args.yaml, a console log, TensorBoard event files, also in nested TensorBoard run
    folders). A broken run is listed with its error and never stops the batch; progress goes to stderr.
    A run with nothing to judge (read, but no curve to judge) is its own class, neither healthy nor flagged.

    \b
    Exit codes: 0 done, 1 a run at or above --fail-on, 2 usage error (e.g. an unreachable --dask-scheduler),
    4 --fail-on-nothing-to-judge and a run had nothing to judge (1 wins over 4),
    130 interrupted (Ctrl-C): the runs that finished are written as a complete set (rows and index)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mnv4_postmortem.analyzer.batch.discover import find_runs
    from mnv4_postmortem.analyzer.batch.execute import BatchSetupError, default_jobs, run_dask, run_local
    from mnv4_postmortem.analyzer.render.terminal import one_line
    from mnv4_postmortem.analyzer.batch.outputs import REPORTS_FOLDER, BatchOutputs
    from mnv4_postmortem.analyzer.batch.rows import RunTask
    from mnv4_postmortem.analyzer.findings import Severity

    # once here, so overrides and broken rule files are reported once; the workers rebuild it from its options
    analyzer = session(rule_paths, tb_alias=tb_alias, tb_aliases_file=tb_aliases_file)
    found = find_runs(roots)
    _refuse_run_dirs_as_out(out_dir, found)
    run_dirs = [str(p) for p in found]
    threshold = Severity.parse(fail_on) if fail_on else None
    # Outputs go to a staging folder inside --out and are swapped in at the end (see batch/outputs.py).
    outputs = BatchOutputs(out_dir) if out_dir is not None else None
    task = RunTask(
        analyzer=analyzer.options,
        report_dir=str(outputs.reports_dir) if outputs is not None and not no_run_reports else None,
        roots=tuple(str(r) for r in roots),
        line_format=fmt if fmt in formats("batch") else None,
    )
    jobs = min(jobs or default_jobs(), max(1, len(run_dirs)))  # no idle workers for a small batch
    stream = run_dask(run_dirs, task, dask_address) if dask_address else run_local(run_dirs, task, jobs, echo_err)
    rows, failing, interrupted = [], 0, False
    progress = Progress(TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[last]}"), console=stderr_console(), transient=False)
    try:
        with progress:
            bar = progress.add_task("runs", total=len(run_dirs), last="")
            for row in stream:
                rows.append(row)
                progress.update(bar, advance=1, last=one_line(row.name[-50:]))
                if outputs is not None:
                    outputs.add(row)
                if threshold is not None and any(Severity.parse(f.severity) >= threshold for f in row.findings):
                    failing += 1
                if row.line is not None:
                    emit(row.line)
    except KeyboardInterrupt:
        interrupted = True
    except BatchSetupError as exc:
        if outputs is not None:
            outputs.abandon()
        fail(str(exc))
    except BaseException:
        if outputs is not None:
            outputs.abandon()
        raise
    if outputs is not None:
        outputs.finish(rows, interrupted=interrupted)
    if fmt == "md":
        from mnv4_postmortem.analyzer.batch.outputs import summarize
        from mnv4_postmortem.analyzer.render import renderer

        emit(renderer("batch-summary", "md")(summarize(rows, interrupted)))
    unusable = sum(1 for r in rows if r.error)
    unjudged = sum(1 for r in rows if r.nothing_to_judge)
    where = f"; wrote {out_dir / 'index.html'}" if out_dir is not None else ""
    done = f"interrupted: {len(rows)} of {len(run_dirs)}" if interrupted else f"{len(rows)}"
    echo_err(f"{done} run(s), {unusable} unusable, {unjudged} nothing to judge, {failing} at or above --fail-on{where}")
    if interrupted:
        raise SystemExit(exit_codes.INTERRUPTED)
    if failing:
        raise SystemExit(exit_codes.FINDINGS)
    if fail_on_nothing_to_judge and unjudged:
        raise SystemExit(exit_codes.NOTHING_TO_JUDGE)


def _refuse_run_dirs_as_out(out_dir: Path | None, runs: list[Path]) -> None:
    """Never write into a user's run directory: --out must not be a run folder or lie inside one."""
    if out_dir is None:
        return
    target = out_dir.resolve()
    for run in runs:
        run = run.resolve()
        if target == run or run in target.parents:
            raise click.BadParameter(f"{out_dir} is inside the run folder {run}; choose a folder outside it",
                                     param_hint="--out")
