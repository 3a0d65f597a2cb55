"""EMA initial-share arithmetic, checked against timm-formats.md §10 and a brute-force product."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnv4_postmortem.analyzer.features.ema import EmaModel, ema_model_from, ema_version_for
from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Run, TrainConfig
from mnv4_postmortem.analyzer.timm.defaults import with_defaults
from mnv4_postmortem.analyzer.timm.version import TimmVersion


def sig3(x: float) -> str:
    return f"{x:.3g}"


def make_run(values: dict | None = None, args: dict | None = None, timm_version: str | None = None) -> Run:
    return Run(
        run_dir=Path("x"),
        # timm's defaults of the run's era attached as the ingest attaches them (timm/defaults.py)
        config=with_defaults(TrainConfig(values=values or {}, args=args or {}, timm_version=TimmVersion.parse(timm_version))),
        epochs=pd.DataFrame(),
        epoch_refs=pd.DataFrame(),
        steps=pd.DataFrame(columns=list(STEP_COLUMNS)),
        events=(),
        sources=(),
        issues=(),
        timm_version=timm_version,
    )


def brute_share(ema: EmaModel, k: int) -> float:
    """The product of the decays applied since the EMA last held the starting weights, step by step.

    v3's first update (decay 0) replaces the EMA by the model after one optimizer step, which is the
    starting point the share is measured from, so its product starts at step 2.
    """
    first = 2 if ema.version == "v3" else 1
    return float(np.prod([ema.decay_at_update(step) for step in range(first, k + 1)]))


# ------------------------------------------------------------------ reference numbers (§10)


@pytest.mark.parametrize(
    ("s", "expected"),
    [(1, "0.37"), (10, "0.798"), (100, "0.954"), (1000, "0.99"), (10_000, "0.998"), (100_000, "1")],
)
def test_warmup_decay_matches_reference_table(s: int, expected: str) -> None:
    ema = EmaModel(decay=0.99999, warmup=True, version="v3")
    assert sig3(ema.decay_at_update(s + 1)) == expected


def test_warmup_decay_at_10k_to_five_places() -> None:
    ema = EmaModel(decay=0.9998, warmup=True, version="v3")
    assert round(ema.decay_at_update(10_001), 5) == 0.99785
    assert round(ema.decay_at_update(100_001), 5) == 0.99954


def test_warmup_decay_is_capped_at_the_configured_decay() -> None:
    ema = EmaModel(decay=0.9998, warmup=True, version="v3")
    assert ema.decay_at_update(353_553 + 1) == 0.9998  # s >= 353,553: the ramp passed 0.9998
    assert ema.decay_at_update(353_552 + 1) < 0.9998


def test_constant_decay_half_life_and_share_after_10k() -> None:
    ema = EmaModel(decay=0.9998, version="v1v2-constant")
    assert round(ema.half_life) == 3465  # ln 2 / -ln 0.9998 = 3465.4
    assert ema.updates_until_share(0.5) == 3466  # reference: "half-life 3,466 updates"
    assert sig3(ema.init_weight_after(10_000)) == "0.135"
    assert ema.horizon == pytest.approx(5000.0)


def test_decay_9999_leaves_a_third_after_10k() -> None:
    ema = EmaModel(decay=0.9999, version="v1v2-constant")
    assert sig3(ema.init_weight_after(10_000)) == "0.368"
    assert sig3(ema.half_life) == "6.93e+03"


# ------------------------------------------------------------------ the three rules differ as documented


def test_v3_copies_on_first_update_so_it_lags_one_update() -> None:
    constant = EmaModel(decay=0.9998, version="v1v2-constant")
    v3 = EmaModel(decay=0.9998, version="v3")
    assert v3.init_weight_after(1) == 1.0
    assert constant.init_weight_after(1) == pytest.approx(0.9998)
    for k in (2, 50, 12_345):
        assert v3.init_weight_after(k) == pytest.approx(constant.init_weight_after(k - 1), rel=1e-12)


def test_warmup_forgets_the_start_far_faster_than_constant_decay() -> None:
    plain = EmaModel(decay=0.9999, version="v3")
    warm = EmaModel(decay=0.9999, warmup=True, version="v3")
    assert warm.init_weight_after(2) == pytest.approx(1 - 2 ** (-2 / 3))  # one step at d(1) = 0.370
    assert warm.init_weight_after(10) < 0.05 < 0.99 < plain.init_weight_after(10)
    assert warm.updates_until_share(0.5) == 2
    assert plain.updates_until_share(0.5) == 6933  # 6932 decaying updates after the copy


@pytest.mark.parametrize("k", [0, 1, 2, 3, 17, 1000, 65_537, 70_001, 400_000])
@pytest.mark.parametrize("decay", [0.9998, 0.9999, 0.6])
def test_warmup_share_equals_the_explicit_product(k: int, decay: float) -> None:
    ema = EmaModel(decay=decay, warmup=True, version="v3")
    s = np.arange(1, max(k, 1), dtype=np.float64)  # terms s = 1 .. k-1
    expected_log = np.sum(np.log(np.minimum(1 - (1 + s) ** (-2 / 3), decay))) if k >= 2 else 0.0
    floor = math.log(1e-300)  # compare logs; tiny shares underflow to 0 in float64
    got = math.log(max(ema.init_weight_after(k), 1e-300))
    assert got == pytest.approx(max(expected_log, floor), rel=1e-9, abs=1e-9)


def test_small_counts_match_update_by_update_simulation() -> None:
    for ema in (
        EmaModel(decay=0.99, version="v1v2-constant"),
        EmaModel(decay=0.99, version="v3"),
        EmaModel(decay=0.99, warmup=True, version="v3"),
    ):
        for k in range(0, 60, 7):
            assert ema.init_weight_after(k) == pytest.approx(brute_share(ema, k), rel=1e-12)


def test_vectorised_and_scalar_agree() -> None:
    ema = EmaModel(decay=0.9998, warmup=True, version="v3")
    counts = [0, 5, 100, 70_000, 500_000]
    assert list(ema.init_weight_after_many(counts)) == pytest.approx([ema.init_weight_after(k) for k in counts])


# ------------------------------------------------------------------ properties


ema_models = st.builds(
    EmaModel,
    decay=st.floats(min_value=0.5, max_value=0.99999),
    warmup=st.booleans(),
    version=st.just("v3"),
) | st.builds(EmaModel, decay=st.floats(min_value=0.5, max_value=0.99999), version=st.just("v1v2-constant"))


@settings(max_examples=60, deadline=None)
@given(ema=ema_models, a=st.integers(0, 2_000_000), b=st.integers(0, 2_000_000))
def test_share_is_monotone_non_increasing(ema: EmaModel, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= ema.init_weight_after(hi) <= ema.init_weight_after(lo) <= 1.0


@settings(max_examples=60, deadline=None)
@given(ema=ema_models, share=st.floats(min_value=1e-6, max_value=0.999))
def test_updates_until_share_is_the_exact_inverse(ema: EmaModel, share: float) -> None:
    k = ema.updates_until_share(share)
    assert k is not None and k >= 1
    assert ema.init_weight_after(k) < share <= ema.init_weight_after(k - 1)


def test_inverse_edge_cases() -> None:
    ema = EmaModel(decay=0.9998, version="v1v2-constant")
    assert ema.updates_until_share(1.5) == 0
    assert ema.updates_until_share(0.0) is None
    frozen = EmaModel(decay=1.0, version="v3")
    assert frozen.updates_until_share(0.5) is None and frozen.half_life == math.inf
    # decay 1 with warmup still forgets: the ramp's product goes to 0
    assert EmaModel(decay=1.0, warmup=True, version="v3").updates_until_share(0.01) is not None
    assert EmaModel(decay=0.0, version="v1v2-constant").init_weight_after(1) == 0.0


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan")])
def test_invalid_decay_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError):
        EmaModel(decay=bad)


def test_invalid_counts_are_rejected() -> None:
    ema = EmaModel(decay=0.9998)
    for bad in (-1, 2.5):
        with pytest.raises(ValueError):
            ema.init_weight_after(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EmaModel(decay=0.9998, warmup=True, version="v1v2-constant")


# ------------------------------------------------------------------ from a run


def test_no_ema_when_off_or_forced_to_cpu() -> None:
    assert ema_model_from(make_run({"model_ema": False})) is None
    assert ema_model_from(make_run({"model_ema": True, "model_ema_force_cpu": True})) is None
    assert ema_model_from(make_run({"model_ema": True, "model_ema_decay": "abc"})) is None


def test_ema_from_run_reads_decay_warmup_and_defaults() -> None:
    ema = ema_model_from(make_run({"model_ema": True}))
    assert ema is not None and ema.decay == 0.9998 and not ema.warmup
    warm = ema_model_from(make_run({"model_ema": True, "model_ema_decay": 0.9999, "model_ema_warmup": True}))
    assert warm is not None and warm.warmup and warm.version == "v3" and warm.decay == 0.9999


@pytest.mark.parametrize(
    ("timm_version", "args", "expected"),
    [
        (">=1.0.23", {}, "v3"),
        ("0.5-0.8", {}, "v1v2-constant"),
        ("<=0.4.12", {}, "v1v2-constant"),
        ("0.9.0-1.0.7", {"model_ema_warmup": False}, "v3"),  # 0.9.16 wrote model_ema_warmup
        ("0.9.0-1.0.7", {"model_ema": True}, "v1v2-constant"),  # 0.9.0-0.9.12 did not
        (None, {}, "v3"),
    ],
)
def test_ema_version_decision(timm_version: str | None, args: dict, expected: str) -> None:
    version, source = ema_version_for(make_run(args=args, timm_version=timm_version))
    assert version == expected and source
