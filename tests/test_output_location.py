"""Issue 17 items 7 and 8: default outputs never land in a run directory, wherever the current folder is,
and ``report`` writes nothing outside ``-o`` and the working directory.

The run is the bundled seed run (real timm output) with a TensorBoard run folder nested in it
(``RUN/tb/<date_host>/``, written by TensorBoard's own event writer): the layout where ``report .`` from
inside the nested folder used to write into the outer run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.output_location import default_output_folder
from mnv4_postmortem.cli import cli
from mnv4_postmortem.runner.reproduce import default_out_dir


def _nested_layout(root: Path) -> tuple[Path, Path]:
    run = root / "RUN"
    shutil.copytree(FIXTURE_RUNS / "seed_mnv4", run)
    tb = run / "tb" / "Mar31_16-30-58_host"
    tb.mkdir(parents=True)
    writer = EventFileWriter(str(tb))
    for epoch in range(8):
        values = [summary_pb2.Summary.Value(tag="train/loss", simple_value=2.3 * 0.9 ** epoch),
                  summary_pb2.Summary.Value(tag="val/acc1", simple_value=10.0 + 5 * epoch)]
        writer.add_event(event_pb2.Event(step=epoch, wall_time=1000.0 + epoch, summary=summary_pb2.Summary(value=values)))
    writer.close()
    return run, tb


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def layout(tmp_path):
    run, tb = _nested_layout(tmp_path / "parent")
    return tmp_path / "parent", run, tb


def test_the_rule_picks_the_parent_of_the_outermost_run(layout):
    parent, run, tb = layout
    assert default_output_folder(run, cwd=parent).folder == parent.resolve()
    assert default_output_folder(run, cwd=parent).note() is None
    inside = default_output_folder(run / "train.log", cwd=run)
    assert inside.folder == parent.resolve() and inside.moved_from == run.resolve()
    nested = default_output_folder(tb, cwd=tb)  # the TB folder is a run, and so is the one holding it
    assert nested.folder == parent.resolve() and "nothing is written there" in nested.note()
    # an unrelated run directory is a run directory too
    elsewhere = default_output_folder(FIXTURE_RUNS / "v1_healthy", cwd=tb)
    assert elsewhere.folder == parent.resolve()


COMMANDS = [
    ["report", "{run}"], ["report", "{run}", "--format", "json"], ["report", "{run}", "--format", "md"],
    ["report", "{run}", "--format", "html"], ["report", "{log}", "--format", "html"], ["report", "{tb}", "--format", "html"],
    ["inspect", "{run}"], ["inspect", "{tb}", "--format", "json"], ["batch", "{run}"], ["rules", "list"],
]


@pytest.mark.parametrize("where", ["run", "tb", "parent"])
def test_no_command_writes_into_the_run_from_inside_it_or_its_parent(layout, monkeypatch, where):
    parent, run, tb = layout
    cwd = {"run": run, "tb": tb, "parent": parent}[where]
    before = _snapshot(run)
    monkeypatch.chdir(cwd)
    for command in COMMANDS:
        args = [a.format(run=run, log=run / "train.log", tb=tb) for a in command]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    assert _snapshot(run) == before
    # the HTML reports went beside the outermost run (here: the parent), and the user was told where
    assert sorted(p.name for p in parent.glob("*.postmortem.html")) == [
        "Mar31_16-30-58_host.postmortem.html", "RUN.postmortem.html", "train.postmortem.html"]


def test_the_runner_default_out_folder_leaves_the_run(layout, monkeypatch):
    parent, run, tb = layout
    monkeypatch.chdir(tb)
    assert default_out_dir(tb) == parent.resolve() / "mnv4-postmortem-repro" / tb.name
    monkeypatch.chdir(parent)
    assert default_out_dir(run) == parent.resolve() / "mnv4-postmortem-repro" / "RUN"


def test_report_writes_nothing_outside_o_and_the_working_directory(layout, tmp_path):
    # Issue 17 item 8: a report that imported timm left $TMPDIR/torchinductor_<user>/ behind. TMPDIR and
    # HOME point at empty folders; after every format, they are still empty and so is the run.
    parent, run, _ = layout
    tmp, home, work = tmp_path / "tmp", tmp_path / "home", tmp_path / "work"
    for folder in (tmp, home, work):
        folder.mkdir()
    before = _snapshot(run)
    # matplotlib keeps a font cache for every program that uses it (like __pycache__): it gets a folder of
    # its own, as a user's ~/.config/matplotlib already is; everything else must stay empty.
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "MPLCONFIGDIR": str(tmp_path / "mplconfig")}
    env.pop("MNV4_DEBUG", None)
    for fmt in ("json", "html"):  # the analysis (every format shares it) and the plots
        out = tmp_path / f"report.{fmt}"
        result = subprocess.run([sys.executable, "-m", "mnv4_postmortem", "report", str(run), "--format", fmt,
                                 "-o", str(out)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert out.is_file()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp.rglob("*")) == []
    assert sorted(p.relative_to(tmp_path).as_posix() for p in home.rglob("*")) == []
    assert list(work.iterdir()) == []
    assert _snapshot(run) == before
