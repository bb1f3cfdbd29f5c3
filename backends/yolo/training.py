"""Fine-tune an Ultralytics model on a control's dataset, with settings chosen from the dataset's size.

Ultralytics' defaults are tuned for datasets of thousands of images: a nominal batch of 64 accumulates
gradients over 16 batches of 4 before the optimiser steps, so 30 images step it twice per epoch, and
mosaic augmentation turns a handful of pictures into noise. A live labelling project has tens of
images, so small sets get batches of 2 with a step per batch (``nbs`` = ``batch``), no mosaic, a short
warm-up, AdamW at a fixed learning rate, and enough epochs for ~180 optimiser steps. Measured on 29
synthetic images: batches of 4 for 150 steps located the boxes (IoU 0.90) but with confidences around
0.27, under any useful threshold; batches of 2 for 180 steps, in the same time, reached confidences of
0.8. Larger sets move back towards the defaults. ``YOLO_EPOCHS`` fixes the epoch count instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelzoo.backend import FitContext

from .dataset import Dataset
from .options import YoloOptions

SMALL, MEDIUM = 100, 1000  # training images
TARGET_STEPS = {"small": 180, "medium": 1000, "large": 3000}
MIN_EPOCHS, MAX_EPOCHS = 10, 100
METRIC_SUFFIX = {"detect": "B", "obb": "B", "segment": "M", "pose": "P"}


class TrainingCancelled(Exception):
    """Raised from a training callback when the job was cancelled: Ultralytics stops between two batches."""


def train_settings(kind: str, n_train: int, imgsz: int, options: YoloOptions) -> dict[str, Any]:
    """Ultralytics ``train()`` arguments for ``n_train`` images (see the module docstring)."""
    size = "small" if n_train < SMALL else "medium" if n_train < MEDIUM else "large"
    batch = {"small": 2, "medium": 8, "large": 16}[size]
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = options.epochs or min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS[size] / steps_per_epoch)))
    settings: dict[str, Any] = {
        "epochs": epochs,
        "batch": batch,
        "imgsz": imgsz,
        "device": options.device,
        "workers": 0 if size == "small" else 2,
        "seed": 0,
        "deterministic": True,
        "plots": False,
        "verbose": False,
        "amp": options.half,
        "patience": max(10, epochs // 3),
    }
    if size == "small":
        settings.update(nbs=batch, mosaic=0.0, warmup_epochs=1, optimizer="AdamW", lr0=0.004)
    elif size == "medium":
        settings.update(nbs=16, close_mosaic=max(1, epochs // 5), warmup_epochs=2, optimizer="AdamW", lr0=0.002)
    if kind == "pose":
        settings["fliplr"] = 0.0  # a mirrored image swaps left and right keypoints, which the config does not name
    return settings


def progress_metric(kind: str, metrics: dict[str, float]) -> dict[str, float]:
    """The headline validation numbers of an epoch, under short names (mAP50, mAP50-95 or top1)."""
    if kind == "classify":
        return {"top1": float(metrics.get("metrics/accuracy_top1", 0.0))}
    suffix = METRIC_SUFFIX[kind]
    return {
        "mAP50": float(metrics.get(f"metrics/mAP50({suffix})", 0.0)),
        "mAP50-95": float(metrics.get(f"metrics/mAP50-95({suffix})", 0.0)),
    }


def fine_tune(
    start: str,
    dataset: Dataset,
    kind: str,
    options: YoloOptions,
    ctx: FitContext,
    workdir: Path,
    report: Callable[[float, str, dict[str, float]], None],
) -> Path:
    """Train from the weights ``start`` on ``dataset``; returns the best checkpoint (by validation fitness).

    ``report(fraction, message, metrics)`` is called after every epoch; a cancelled job stops the training
    between two batches by raising :class:`TrainingCancelled`.
    """
    from ultralytics import YOLO

    args = train_settings(kind, len(dataset.train), dataset.imgsz, options)
    model = YOLO(start)

    def after_epoch(trainer: Any) -> None:
        done = min(trainer.epoch + 1, trainer.epochs)
        numbers = progress_metric(kind, dict(trainer.metrics or {}))
        shown = " ".join(f"{k}={v:.3f}" for k, v in numbers.items())
        report(done / trainer.epochs, f"epoch {done}/{trainer.epochs} {shown}", numbers)

    def check_cancel(trainer: Any) -> None:
        if ctx.cancelled():
            raise TrainingCancelled("training cancelled")

    model.add_callback("on_fit_epoch_end", after_epoch)
    model.add_callback("on_train_batch_end", check_cancel)
    ctx.logger.info("training %s from %s: %s", kind, start, {k: v for k, v in args.items() if k != "verbose"})
    model.train(data=dataset.data, project=str(workdir), name="run", exist_ok=True, **args)
    best = Path(model.trainer.best)
    return best if best.exists() else Path(model.trainer.last)


def set_class_names(checkpoint: Path, names: list[str]) -> None:
    """Give a trained checkpoint the config's class names (classification trains on numbered folders)."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        if ckpt.get(key) is not None:
            ckpt[key].names = dict(enumerate(names))
    torch.save(ckpt, checkpoint)
