"""The names a rule may use (``config.*``, ``derived.*``, ``series.<metric>.*``, ``events.*``).

Light on purpose: the rule loader checks names against this table, and ``rules list|show|validate``
must not import the pipeline (pandas, ruptures, tensorboard). ``namespace.py`` builds the values;
a test keeps ``DERIVED_FIELDS`` equal to the fields of ``features.derived.Derived``.
"""

from __future__ import annotations

DERIVED_FIELDS = frozenset(
    "model timm_version lr lr_source batch_size grad_accum_steps world_size global_batch lr_per_sample "
    "steps_per_epoch steps_per_epoch_source updates_per_epoch updates_run updates_scheduled epochs_run "
    "epochs_scheduled epochs_scheduled_source ema ema_evaluated ema_init_share_by_epoch "
    "ema_init_share_final ema_horizon_epochs ema_half_life_epochs ema_half_share_epoch run_input_size "
    "run_input_size_source pretrained_input_size input_size_source input_size_ratio uses_pretrained "
    "init_source num_classes chance_top1 chance_top5 regularization dataset_size_hint dataset_size_source "
    "trainer ema_evaluation".split()
)

ROOTS = ("config", "derived", "series", "events")


def is_known_name(path: str) -> bool:
    """Whether a dotted name can exist in the namespace (used by the rule loader to catch typos)."""
    parts = path.split(".")
    if parts[0] not in ROOTS:
        return False
    if len(parts) == 1:
        return True
    if parts[0] == "config":
        return len(parts) == 2  # any timm argument name (unknown ones are MISSING); config values have no attributes
    if parts[0] == "series":
        return len(parts) == 2 or parts[2] in SERIES_ATTRIBUTES
    if parts[0] == "derived":
        return parts[1] in DERIVED_FIELDS | DERIVED_EXTRAS
    return parts[1] in EVENT_ATTRIBUTES


SERIES_ATTRIBUTES = frozenset(
    "present n first last min max first_epoch last_epoch argmin_epoch argmax_epoch segments first_segment last_segment "
    "stall leading_stall chance nonfinite explosion spikes at mean_between change_between rel_drop_between fraction_below "
    "chance_epochs chance_fraction chance_at_end rel_drop gain leading_flat refs refs_between name".split()
)
DERIVED_EXTRAS = frozenset({
    "lr_reference", "lr_ratio", "ema_share_at", "updates_at", "first_epoch", "run_dir", "ln_classes",
    "train_loss_floor", "config_present", "num_classes_confidence", "ema_half_share_updates", "timm_at_least", "log_present",
})
EVENT_ATTRIBUTES = frozenset(
    "resume truncated crash oom nonfinite warning skipped_eval last_crash last_crash_ref incomplete generalization_gap "
    "ema_gap schedule issues gradients".split()
)
