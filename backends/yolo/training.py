"""Fine-tune an Ultralytics model on a control's dataset, with settings chosen from the dataset's size.

Ultralytics' defaults are tuned for datasets of thousands of images: a nominal batch of 64 accumulates
gradients over 16 batches of 4 before the optimiser steps, so 30 images step it twice per epoch, and
mosaic augmentation turns a handful of pictures into noise. A live labelling project has tens of
images, so small sets get batches of 2 with a step per batch (``nbs`` = ``batch``), no mosaic, a short
warm-up, AdamW at a fixed learning rate, and enough epochs for ~180 optimiser steps. Measured on 29
synthetic images: batches of 4 for 150 steps located the boxes (IoU 0.90) but with confidences around
0.27, under any useful threshold; batches of 2 for 180 steps, in the same time, reached confidences of
0.8. Larger sets move back towards the defaults. ``YOLO_EPOCHS`` fixes the epoch count instead. A kind adds
arguments of its own (:attr:`.kind.Kind.train_arguments`) and names the epoch's headline metrics
(:meth:`.kind.Kind.progress`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelzoo.backend import FitContext
from labelzoo.schedule import passes_for

from .config import YoloOptions
from .dataset import Dataset
from .kind import Kind

SMALL, MEDIUM = 100, 1000  # training images
TARGET_STEPS = {"small": 180, "medium": 1000, "large": 3000}
MIN_EPOCHS, MAX_EPOCHS = 10, 100


class TrainingCancelled(Exception):
    """Raised from a training callback when the job was cancelled: Ultralytics stops between two batches."""


def train_settings(kind: Kind, n_train: int, imgsz: int, options: YoloOptions) -> dict[str, Any]:
    """Ultralytics ``train()`` arguments for ``n_train`` images of a kind (see the module docstring), at ``imgsz``
    (the data's size) unless ``YOLO_IMGSZ`` fixes the size the model is served at: it trains at that size too."""
    size = "small" if n_train < SMALL else "medium" if n_train < MEDIUM else "large"
    batch = {"small": 2, "medium": 8, "large": 16}[size]
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = options.epochs or passes_for(TARGET_STEPS[size], per_pass=steps_per_epoch, low=MIN_EPOCHS, high=MAX_EPOCHS)
    settings: dict[str, Any] = {
        "epochs": epochs,
        "batch": batch,
        "imgsz": options.imgsz or imgsz,
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
    settings.update(kind.train_arguments)
    return settings


def fine_tune(
    start: str,
    dataset: Dataset,
    kind: Kind,
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
        numbers = kind.progress(dict(trainer.metrics or {}))
        shown = " ".join(f"{k}={v:.3f}" for k, v in numbers.items())
        report(done / trainer.epochs, f"epoch {done}/{trainer.epochs} {shown}", numbers)

    def check_cancel(trainer: Any) -> None:
        if ctx.cancelled():
            raise TrainingCancelled("training cancelled")

    model.add_callback("on_fit_epoch_end", after_epoch)
    model.add_callback("on_train_batch_end", check_cancel)
    ctx.logger.info("training %s from %s: %s", kind.name, start, {k: v for k, v in args.items() if k != "verbose"})
    model.train(data=dataset.data, project=str(workdir), name="run", exist_ok=True, **args)
    best = Path(model.trainer.best)
    return best if best.exists() else Path(model.trainer.last)
