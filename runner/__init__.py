"""Reproduction runner (torch + timm, the ``[runner]`` extra): re-runs a flagged run at small scale,
as it was (control) and with a finding's fix (treatment), K seeds each, and says whether the
diagnosis holds. The analyzer core never imports this package.

API (modules load torch only where they say so):

``spec`` (torch-free)
    ``build_spec(run, data="proxy"|DIR, epochs=, max_samples=, val_samples=, img_size=, init_checkpoint=)``
    -> ``TrainSpec``: the run's recipe (args.yaml + the log's effective values + the era's defaults),
    scaled to the budget; ``spec.entries`` says what is kept / scaled / replaced and why, and
    ``spec.arm(name, role, patch)`` -> ``ArmSpec`` (train.py args, scaled; a patch is applied to the
    ORIGINAL recipe and then scaled like the control). ``ArmSpec.trajectory_key()`` groups arms that
    differ only in EMA settings. This is the only module importing the analyzer's timm tables.
    ``reproduce.spec_record(spec)`` is its typed view (the SpecRecord the renderers read).
``scaling`` (torch-free)
    ``scale_ema(decay, warmup, version, U, U')`` -> ``EmaPlan`` (decay', warmup_gamma', predicted share);
    ``scale_lr``, ``resolve_lr_from_base``, ``scale_epochs``, ``warmup_decay``.
``proxy`` (torch)
    ``ProxyDataset(num_classes, img_size, length, split)``: procedural images, no downloads.
``trainer`` (torch + timm)
    ``train_arm(spec, arm, seed, out_dir, device=, on_step=, on_epoch=, progress=)`` -> ``ArmResult``;
    ``train_trajectory(spec, arms, seed, out_dirs, ...)``: one raw model, one EMA per arm.
    ``on_step(step, model, loss, optimizer)`` runs after each ``optimizer.step()``, before ``zero_grad``
    (gradients still present). Building blocks: ``build_model``, ``build_optimizer``,
    ``build_scheduler``, ``build_mixup``, ``build_loss``, ``build_datasets``, ``evaluate``,
    ``seed_everything``. Each arm folder holds train.py-format ``train.log``, ``summary.csv``,
    ``args.yaml`` and ``tensorboard/`` events (read them with ``analyzer.ingest.load_run``).
``script``: ``run_train_script(path, spec, arm, seed, out_dir)`` runs the user's own train.py instead.
``verify`` (torch-free): verdicts, paired statistics, ``verification.json``.
``reproduce``: the whole ``mnv4-postmortem reproduce`` flow (``reproduce(run_dir, options, console)``).
``launch``: local and submitit launchers.
``output`` (torch-free): ``RunnerOutput(console)``: what the runner shows (spec, plan, verdicts, ladder, LR
    range test) is rendered by the render registry's renderers from typed records and documents; this is the
    runner's one door to the registry, and no runner module formats a table or draws a plot itself.

The runner reaches the analyzer through the session (``analyzer/session.py``: runs, diagnoses, hypotheses,
and the derived recipe quantities, EMA arithmetic and LR reference it scales), the result types and
``analyzer/timm/``'s public names (``tests/test_architecture.py``).
"""

from __future__ import annotations

REQUIRED = ("torch", "timm")


def missing_requirements() -> list[str]:
    """The [runner] extra's packages that cannot be imported here (empty when all are there)."""
    import importlib.util

    missing = []
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as missing
            found = False
        if not found:
            missing.append(name)
    return missing
