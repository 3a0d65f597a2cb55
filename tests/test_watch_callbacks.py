"""The Monitor and its trainer adapters, each on a tiny real CPU training loop built to stall: SGD at
an LR 1e-6 times the typical one for its batch, so the loss does not move (lr-too-low)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

CLASSES, FEATURES, SAMPLES, BATCH, EPOCHS = 10, 16, 320, 32, 12
STALL_LR = 1e-8          # typical SGD LR at batch 32: 0.1 * 32 / 256 = 0.0125, so a ratio of ~1e-6


def _data(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(CLASSES, FEATURES, generator=generator) * 3
    labels = torch.randint(0, CLASSES, (SAMPLES,), generator=generator)
    return centers[labels] + torch.randn(SAMPLES, FEATURES, generator=generator), labels


def _stalled(changes) -> list:
    return [c for c in changes if c.kind == "started" and c.finding is not None and c.finding.cause == "lr-too-low"]


def _fired(changes) -> list:
    """Any finding that started firing: what the adapters must act on (stop the trainer). The cause named is the
    rules' business; on these two trainers' logs (no LR in the pushed config) the symptoms-first pack names
    ema-lag-symptoms, not lr-too-low: a known rule weakness, checked by the plain-loop test above."""
    return [c for c in changes if c.kind == "started" and c.finding is not None]


def test_monitor_in_a_plain_loop_fires_on_a_stalled_recipe():
    from mnv4_postmortem.watch import Monitor

    x, y = _data()
    model = torch.nn.Linear(FEATURES, CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=STALL_LR)
    monitor = Monitor({"opt": "sgd", "lr": STALL_LR, "batch_size": BATCH, "epochs": EPOCHS, "num_classes": CLASSES,
                       "warmup_epochs": 0}, steps_per_epoch=SAMPLES // BATCH)
    changes = monitor.start()
    for epoch in range(EPOCHS):
        total = 0.0
        for start in range(0, SAMPLES, BATCH):
            loss = torch.nn.functional.cross_entropy(model(x[start:start + BATCH]), y[start:start + BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
        with torch.no_grad():
            logits = model(x)
            top1 = float((logits.argmax(1) == y).float().mean() * 100)
            eval_loss = float(torch.nn.functional.cross_entropy(logits, y))
        changes += monitor.log_epoch(epoch, train_loss=total / (SAMPLES // BATCH), eval_loss=eval_loss, eval_top1=top1)
    stalled = _stalled(changes)
    assert stalled and not stalled[0].predicted and stalled[0].epoch < EPOCHS - 1
    assert any(f.cause == "lr-too-low" for f in monitor.findings)


def test_monitor_rejects_unknown_metrics_and_repeated_epochs():
    from mnv4_postmortem.watch import Monitor

    monitor = Monitor({"num_classes": 10})
    with pytest.raises(ValueError, match="unknown metric"):
        monitor.log_epoch(0, accuracy=3.0)
    monitor.log_epoch(0, train_loss=2.3)
    with pytest.raises(ValueError, match="already logged"):
        monitor.log_epoch(0, train_loss=2.3)


def test_lightning_callback_stops_a_stalled_run(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from mnv4_postmortem.watch.lightning import PostmortemCallback

    x, y = _data()

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(FEATURES, CLASSES)

        def training_step(self, batch, _):
            loss = torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            logits = self.layer(batch[0])
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, batch[1]))
            self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=STALL_LR)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    callback = PostmortemCallback({"num_classes": CLASSES}, fail_on="warning")
    trainer = pl.Trainer(max_epochs=30, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         num_sanity_val_steps=0, callbacks=[callback])
    trainer.fit(Tiny(), loader, loader)
    stalled = _fired(callback.changes)
    assert stalled, [(c.kind, c.finding and c.finding.rule_id) for c in callback.changes]
    assert trainer.current_epoch < 30          # stopped by the callback, long before max_epochs
    assert callback.handler.stop_reason is stalled[0]


def test_huggingface_callback_stops_a_stalled_run(tmp_path):
    transformers = pytest.importorskip("transformers")
    from mnv4_postmortem.watch.huggingface import PostmortemCallback

    x, y = _data()

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(FEATURES, CLASSES)

        def forward(self, features, labels=None):
            logits = self.layer(features)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    rows = [{"features": x[i], "labels": y[i]} for i in range(SAMPLES)]

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(1) == prediction.label_ids).mean())}

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=30, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH, learning_rate=STALL_LR, optim="sgd", lr_scheduler_type="constant",
        eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    callback = PostmortemCallback({"num_classes": CLASSES}, fail_on="warning")
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=rows, eval_dataset=rows,
                                   compute_metrics=accuracy, callbacks=[callback])
    trainer.train()
    stalled = _fired(callback.changes)
    assert stalled, [(c.kind, c.finding and c.finding.rule_id) for c in callback.changes]
    assert math.ceil(trainer.state.epoch) < 30
