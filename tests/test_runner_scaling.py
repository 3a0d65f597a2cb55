"""Budget-faithful scaling, checked against timm's own EMA classes (ModelEmaV2, ModelEmaV3).

The "initial-weight share" is measured, not computed: a one-weight module starts at 1 and the model
it follows sits at 0, so after the updates the EMA's weight IS the share of the initial weights.
"""

from __future__ import annotations

import math

import pytest

from mnv4_postmortem.runner.scaling import resolve_lr_from_base, scale_ema, scale_epochs, scale_lr

torch = pytest.importorskip("torch")
timm_utils = pytest.importorskip("timm.utils")


class _One(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((1,), float(value), dtype=torch.float64))


def _measured_share(ema_class, updates: int, **kwargs) -> float:
    """V3 copies the model on update 1; the model after one step counts as the initial weights (as in
    the analyzer's EmaModel), so the followed model is 1 at update 1 and 0 after it. V2 never copies."""
    ema = ema_class(_One(1.0), **kwargs)
    one, zero = _One(1.0), _One(0.0)
    for step in range(1, updates + 1):
        if ema_class is timm_utils.ModelEmaV3:
            ema.update(one if step == 1 else zero, step=step)
        else:
            ema.update(zero)
    return float(ema.module.w.detach()[0])


def _sig3(x: float) -> str:
    return f"{x:.3g}"


@pytest.mark.parametrize("decay,updates,new_updates", [(0.9998, 372, 96), (0.9999, 5000, 240), (0.999, 3000, 120)])
def test_v3_scaled_decay_keeps_the_initial_share_to_3_significant_figures(decay, updates, new_updates):
    plan = scale_ema(decay, False, "v3", updates, new_updates)
    original = _measured_share(timm_utils.ModelEmaV3, updates, decay=decay)
    reproduced = _measured_share(timm_utils.ModelEmaV3, new_updates, decay=plan.decay)
    assert _sig3(reproduced) == _sig3(original)
    # timm's V3 copies on the first update, so the share is decay^(U-1), not decay^U
    assert _sig3(original) == _sig3(decay ** (updates - 1))
    assert plan.predicted_share == pytest.approx(reproduced, rel=1e-9)


@pytest.mark.parametrize("decay,updates,new_updates", [(0.9998, 372, 96), (0.9999, 2000, 100)])
def test_v2_scaled_decay_is_decay_to_the_u_over_u_prime(decay, updates, new_updates):
    plan = scale_ema(decay, False, "v1v2-constant", updates, new_updates)
    assert plan.decay == pytest.approx(decay ** (updates / new_updates), rel=1e-12)
    reproduced = _measured_share(timm_utils.ModelEmaV2, new_updates, decay=plan.decay)
    assert _sig3(reproduced) == _sig3(decay**updates)


def _first_half_weight(updates: int, **kwargs) -> float:
    """Weight the EMA gives, at the end, to the model states of the first half of the run."""
    model = _One(1.0)
    ema = timm_utils.ModelEmaV3(model, **kwargs)
    for step in range(1, updates + 1):
        with torch.no_grad():
            model.w.fill_(1.0 if step <= updates // 2 else 0.0)
        ema.update(model, step=step)
    return float(ema.module.w.detach()[0])


def test_warmup_scaling_keeps_the_averaging_window_at_matching_fractions():
    decay, updates, new_updates = 0.9998, 372, 96
    plan = scale_ema(decay, True, "v3", updates, new_updates)
    assert plan.warmup_gamma == pytest.approx(math.sqrt(updates / new_updates))
    original = _first_half_weight(updates, decay=decay, use_warmup=True)
    scaled = _first_half_weight(new_updates, decay=plan.decay, use_warmup=True, warmup_gamma=plan.warmup_gamma)
    unscaled_ramp = _first_half_weight(new_updates, decay=plan.decay, use_warmup=True)
    assert scaled == pytest.approx(original, rel=0.15)
    # train.py's fixed ramp (gamma 1) over fewer updates would keep 5x too much of the first half
    assert abs(unscaled_ramp - original) > 3 * abs(scaled - original)


def test_warmup_cap_is_decay_to_the_u_over_u_prime():
    plan = scale_ema(0.9731, True, "v3", 372, 96)
    assert plan.decay == pytest.approx(0.9731 ** (372 / 96))


def test_lr_keeps_the_per_sample_lr_and_timms_lr_base_rule():
    assert scale_lr(0.6, 32, 16, {}) == pytest.approx(0.3)
    assert scale_lr(0.001, 32, 32, {}) == 0.001
    # train.py: lr = lr_base * batch / lr_base_size, square-rooted for adaptive optimizers
    args = {"lr_base": 0.1, "lr_base_size": 256, "opt": "sgd"}
    assert resolve_lr_from_base(args, 128) == pytest.approx(0.05)
    assert resolve_lr_from_base({**args, "opt": "adamw"}, 64) == pytest.approx(0.1 * 0.5)
    assert scale_lr(None, 256, 64, {**args, "opt": "adamw"}, from_base=True) == pytest.approx(0.05)


def test_epoch_settings_keep_their_fraction():
    assert scale_epochs(5, 12 / 12) == 5
    assert scale_epochs(5, 6 / 12) == 2  # 2.5 rounds to even; never below 1
    assert scale_epochs(1, 0.1) == 1
    assert scale_epochs(0, 0.5) == 0
