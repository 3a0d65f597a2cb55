#!/usr/bin/env python3
"""A small train.py stand-in for the fidelity test: the same timm calls as timm's train.py
(create_model, create_optimizer_v2, create_scheduler_v2, ModelEmaV3, the loss train.py picks,
update_summary), written plainly. Reads train.py's own options (unknown ones are ignored), writes
<output>/<experiment>/summary.csv + args.yaml and timm 1.0 console lines on stdout."""

import argparse
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import yaml
from timm import create_model
from timm.data import ImageDataset, create_transform
from timm.loss import LabelSmoothingCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import AverageMeter, ModelEmaV3, accuracy, update_summary

p = argparse.ArgumentParser()
p.add_argument("data_dir")
p.add_argument("--model", default="resnet50")
p.add_argument("--num-classes", type=int)
p.add_argument("--img-size", type=int, default=224)
p.add_argument("-b", "--batch-size", type=int, default=128)
p.add_argument("--opt", default="sgd")
p.add_argument("--lr", type=float)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--weight-decay", type=float, default=2e-5)
p.add_argument("--sched", default="cosine")
p.add_argument("--epochs", type=int, default=300)
p.add_argument("--warmup-epochs", type=int, default=5)
p.add_argument("--warmup-lr", type=float, default=1e-5)
p.add_argument("--min-lr", type=float, default=0.0)
p.add_argument("--smoothing", type=float, default=0.1)
p.add_argument("--drop", type=float, default=0.0)
p.add_argument("--drop-path", type=float)
p.add_argument("--model-ema", action="store_true")
p.add_argument("--model-ema-decay", type=float, default=0.9998)
p.add_argument("--model-ema-warmup", action="store_true")
p.add_argument("--no-aug", action="store_true")
p.add_argument("--seed", type=int, default=42)
p.add_argument("--output", default="")
p.add_argument("--experiment", default="")
p.add_argument("--log-interval", type=int, default=50)
args, _unknown = p.parse_known_args()

random.seed(args.seed)
np.random.seed(args.seed)
torch.manual_seed(args.seed)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True, warn_only=True)
out = os.path.join(args.output, args.experiment)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "args.yaml"), "w") as f:
    yaml.safe_dump(vars(args), f)

size = (3, args.img_size, args.img_size)
mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
train_set = ImageDataset(os.path.join(args.data_dir, "train"),
                         transform=create_transform(size, is_training=True, no_aug=args.no_aug, mean=mean, std=std))
val_set = ImageDataset(os.path.join(args.data_dir, "validation"),
                       transform=create_transform(size, is_training=False, mean=mean, std=std, crop_pct=1.0))
model = create_model(args.model, num_classes=args.num_classes, drop_rate=args.drop, drop_path_rate=args.drop_path)
train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                           generator=torch.Generator().manual_seed(args.seed))
val_loader = torch.utils.data.DataLoader(val_set, batch_size=args.batch_size,
                                         generator=torch.Generator().manual_seed(args.seed))
optimizer = create_optimizer_v2(model, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay, momentum=args.momentum)
scheduler, num_epochs = create_scheduler_v2(optimizer, sched=args.sched, num_epochs=args.epochs,
                                            warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr,
                                            min_lr=args.min_lr, updates_per_epoch=len(train_loader))
ema = ModelEmaV3(model, decay=args.model_ema_decay, use_warmup=args.model_ema_warmup) if args.model_ema else None
loss_fn = LabelSmoothingCrossEntropy(args.smoothing) if args.smoothing else nn.CrossEntropyLoss()
print(f"Scheduled epochs: {num_epochs} (epochs + cooldown_epochs). Warmup within epochs when warmup_prefix=False. "
      f"LR stepped per epoch.")


def validate(net, suffix=""):
    net.eval()
    losses, top1, top5 = AverageMeter(), AverageMeter(), AverageMeter()
    with torch.inference_mode():
        for i, (x, y) in enumerate(val_loader):
            o = net(x)
            a1, a5 = accuracy(o, y, topk=(1, min(5, args.num_classes)))
            losses.update(nn.functional.cross_entropy(o, y).item(), x.shape[0])
            top1.update(a1.item(), x.shape[0])
            top5.update(a5.item(), x.shape[0])
    last = len(val_loader) - 1
    print(f"Test{suffix}: [{last:>4d}/{last}]  Time: 0.000 (0.000)  Loss: {losses.val:>7.3f} ({losses.avg:>6.3f})  "
          f"Acc@1: {top1.val:>7.3f} ({top1.avg:>7.3f})  Acc@5: {top5.val:>7.3f} ({top5.avg:>7.3f})")
    return {"loss": losses.avg, "top1": top1.avg, "top5": top5.avg}


updates = 0
for epoch in range(num_epochs):
    model.train()
    losses = AverageMeter()
    n = len(train_loader)
    for i, (x, y) in enumerate(train_loader):
        t = time.time()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        updates += 1
        if ema is not None:
            ema.update(model, step=updates)
        losses.update(loss.item(), x.shape[0])
        if i % args.log_interval == 0 or i == n - 1:
            lr = optimizer.param_groups[0]["lr"]
            dt = time.time() - t
            print(f"Train: {epoch} [{i:>4d}/{n} ({100. * (i + 1) / n:>3.0f}%)]  Loss: {losses.val:#.3g} ({losses.avg:#.3g})  "
                  f"Time: {dt:.3f}s, {x.shape[0] / dt:>7.2f}/s  ({dt:.3f}s, {x.shape[0] / dt:>7.2f}/s)  LR: {lr:.3e}  "
                  f"Data: 0.000 (0.000)")
        scheduler.step_update(num_updates=updates, metric=losses.avg)
    metrics = validate(model)
    if ema is not None:
        metrics = validate(ema.module, " (EMA)")
    update_summary(epoch, {"loss": losses.avg}, metrics, os.path.join(out, "summary.csv"),
                   lr=optimizer.param_groups[0]["lr"], write_header=epoch == 0)
    scheduler.step(epoch + 1, metrics["top1"])
