"""A Run built from a rule test's inline ``config`` and ``series`` (the rule-test harness's ``make_run``).

The harness (``engine/testing.py``) has already parsed the promtool-style notation into arrays, so
this module only assembles the normalized Run that real ingest would have produced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from dataclasses import replace

from mnv4_postmortem.analyzer.ingest.merge import step_counts
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Run
from mnv4_postmortem.analyzer.timm.defaults import build_config
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe

# Values a test's config states that real ingest would know from the log rather than from args.yaml.
_EFFECTIVE_KEYS = ("lr", "num_classes", "input_size", "world_size")


def synthetic_run(config: Mapping[str, Any], series: Mapping[str, Any], steps_per_epoch: int | None = None) -> Run:
    """A Run from inline ``config`` and per-epoch ``series`` (arrays, NaN for missing).

    With ``steps_per_epoch`` a minimal step frame is added (one logged step per epoch) so that
    update counts (EMA, schedule) can be derived the way they are from a real log.
    """
    columns = {name: np.asarray(v, dtype="float64") for name, v in series.items()}
    length = max((len(v) for v in columns.values()), default=0)
    frame = pd.DataFrame(
        {name: np.pad(v, (0, length - len(v)), constant_values=np.nan) for name, v in columns.items()},
        index=pd.RangeIndex(length, name="epoch"),
    )
    base = build_config(dict(config), None, config.get("timm_version"))
    effective = {k: config[k] for k in _EFFECTIVE_KEYS if k in config}
    epochs = config.get("epochs")
    steps = _synthetic_steps(frame, steps_per_epoch)
    # A rule test's ``epochs`` is the schedule length it means (as a log's "Scheduled epochs" line).
    facts = RecipeFacts(scheduled_epochs=int(epochs) if isinstance(epochs, (int, float)) else None,
                        scheduled_ref="rule test config",
                        eval_top1=frame["eval_top1"].to_numpy() if "eval_top1" in frame else None,
                        eval_top5=frame["eval_top5"].to_numpy() if "eval_top5" in frame else None,
                        train_loss=frame["train_loss"].to_numpy() if "train_loss" in frame else None,
                        eval_loss=frame["eval_loss"].to_numpy() if "eval_loss" in frame else None,
                        epochs=frame.index.to_numpy(),
                        **step_counts(steps))
    run_config = resolve_recipe(replace(base, args=dict(config), effective=effective), facts)
    return Run(
        run_dir=Path("<inline>"),
        config=run_config,
        epochs=frame,
        epoch_refs=pd.DataFrame(index=frame.index, columns=frame.columns, dtype="object"),
        steps=steps,
        events=(),
        sources=(),
        issues=(),
        timm_version=run_config.timm_version,
        epochs_scheduled=run_config.effective.get("epochs_scheduled"),
    )


def _synthetic_steps(frame: pd.DataFrame, steps_per_epoch: int | None) -> pd.DataFrame:
    if not steps_per_epoch or frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in STEP_COLUMNS})
    epochs = frame.index.to_numpy()
    last = steps_per_epoch - 1
    data = {
        "epoch": epochs,
        "idx": np.full(len(epochs), last),
        "per_epoch": np.full(len(epochs), steps_per_epoch),
        "update": epochs * steps_per_epoch + last,
        "train_loss": frame["train_loss"].to_numpy() if "train_loss" in frame else np.nan,
        "train_loss_avg": frame["train_loss"].to_numpy() if "train_loss" in frame else np.nan,
        "lr": frame["lr"].to_numpy() if "lr" in frame else np.nan,
        "samples_per_sec": np.nan,
        "batch_time": np.nan,
        "data_time": np.nan,
    }
    return pd.DataFrame(data)
