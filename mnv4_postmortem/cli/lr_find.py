"""``mnv4-postmortem lr-find RUN_DIR``: an LR range test on the run's recipe (needs the [runner] extra).

Self-contained like ``reproduce``: torch and timm load inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from mnv4_postmortem.cli import exit_codes
from mnv4_postmortem.cli.app import tb_alias_options

INSTALL_HINT = ('lr-find needs the [runner] extra (torch, timm): pip install "mnv4-postmortem[runner]" '
                '(from a checkout: pip install -e ".[runner]")')


@click.command("lr-find")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="ImageFolder with train/ (and validation/).")
@click.option("--proxy", is_flag=True, help="Use the procedural proxy dataset (no downloads) at the run's size and class count.")
@click.option("--steps", type=click.IntRange(min=20), default=200, show_default=True, help="Batches in the sweep.")
@click.option("--start-lr", type=click.FloatRange(min=0, min_open=True), default=1e-7, show_default=True)
@click.option("--end-lr", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True)
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda", "mps")), default="auto", show_default=True)
@click.option("--init-checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from these weights when the run's pretrained weights cannot be loaded here.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default ./mnv4-postmortem-repro/<run-name>/lr-find/; never inside RUN_DIR).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@tb_alias_options
def lr_find_command(run_dir: Path, data_dir: Path | None, proxy: bool, steps: int, start_lr: float, end_lr: float,
                    device: str, init_checkpoint: Path | None, out: Path | None, fmt: str,
                    tb_alias: tuple[str, ...] = (), tb_aliases_file: Path | None = None) -> None:
    """LR range test: sweep the LR exponentially from --start-lr to --end-lr over --steps batches of the
    run's model, optimizer, loss and batch, record and smooth the loss, then restore the model and
    optimizer. Prints the suggested LR and range (and which rule chose them), the run's LR against
    them, and writes the loss-vs-LR plot (PNG and SVG) with the run's LR marked.
    """
    from mnv4_postmortem.cli.app import echo_err, emit, fail, session

    if start_lr >= end_lr:
        fail("--start-lr must be below --end-lr")
    if proxy == (data_dir is not None):
        fail("give exactly one of --proxy or --data-dir DIR")
    try:
        from mnv4_postmortem.runner import missing_requirements
    except ImportError:
        fail(INSTALL_HINT)
    import importlib.util

    missing = missing_requirements() + ([] if importlib.util.find_spec("torch_lr_finder") else ["torch-lr-finder"])
    if missing:
        fail(f"{INSTALL_HINT}; missing here: {', '.join(missing)}")
    from mnv4_postmortem.analyzer.reproduction import ReproFolder
    from mnv4_postmortem.runner import lr_find as lf
    from mnv4_postmortem.runner.reproduce import ReproduceError, check_out_dir, resolve_device

    try:
        folder = check_out_dir(run_dir, out or ReproFolder.default_for(run_dir).lr_find)
    except ReproduceError as exc:
        fail(str(exc))
    run = session(tb_alias=tb_alias, tb_aliases_file=tb_aliases_file, with_rules=False).load(run_dir)
    echo_err(f"LR range test on {run_dir}: {steps} batches, lr {start_lr:g} -> {end_lr:g} (exponential)")
    result = lf.lr_find_for_run(run, data="proxy" if proxy else str(data_dir), steps=steps, start_lr=start_lr,
                                end_lr=end_lr, device=resolve_device(device), init_checkpoint=init_checkpoint)
    # the summary, the document and the plot: the registry's lr-find renderers, from one document
    from mnv4_postmortem.runner.output import RunnerOutput

    output = RunnerOutput(_plain_console())
    doc = lf.result_json(result)
    doc["plots"] = [str(p) for p in output.save_plots("lr-find", doc, folder / "lr_find")]
    (folder / "lr_find.json").write_text(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    emit(output.document("lr-find", doc) if fmt == "json" else output.text("lr-find", doc))
    raise SystemExit(exit_codes.OK)


def _plain_console():
    from rich.console import Console

    return Console(highlight=False)
