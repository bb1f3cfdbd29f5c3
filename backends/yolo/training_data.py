"""A control's annotations → its Ultralytics dataset on disk, or None when there is too little to learn from.

Each usable annotation's image is saved at its natural size and labelled by the control's kind
(:meth:`.kind.Kind.label`); the kind then writes the files (:meth:`.kind.Kind.write`), split into training
and held-out images (:func:`.dataset.held_out`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from labelzoo.backend import TrainingExample
from labelzoo.errors import LabelzooError
from labelzoo.images import open_image
from labelzoo.media import MediaResolver
from labelzoo.taskdata import media_path

from .dataset import MIN_HELD_OUT, MIN_TRAIN, Dataset, Sample, choose_imgsz, held_out, safe_name
from .kind import ControlPlan
from .weights import YoloModel

log = logging.getLogger("labelzoo.yolo")


def build_dataset(
    plan: ControlPlan,
    examples: Sequence[TrainingExample],
    media: MediaResolver,
    root: Path,
    *,
    max_pixels: int,
    current: YoloModel | None = None,
) -> Dataset | None:
    """Write the control's dataset under ``root``; None (with a log line) when there is too little to learn from.

    ``current`` is the model training starts from (a pose dataset keeps its skeleton when it can).
    """
    kind = plan.kind
    names = kind.names(plan.control, current)
    samples: list[Sample] = []
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for n, example in enumerate(examples):
        if not kind.usable(plan, example.result):
            continue
        try:
            picture = open_image(media_path(example.task, plan.obj, media), max_pixels=max_pixels)
        except LabelzooError as exc:
            log.warning("%s: task %s left out of training: %s", plan.where, example.task.id, exc.message)
            continue
        path = images / f"{n:05d}_{safe_name(str(example.task.id))}.png"
        picture.save(path, compress_level=1)
        sample = Sample(example.task.id, path, picture.size)
        kind.label(sample, plan, example.result, names)
        samples.append(sample)
    labelled = [s for s in samples if s.lines or s.label is not None]
    if len(samples) < MIN_TRAIN + MIN_HELD_OUT or not labelled or not names.classes:
        log.warning(
            "%s: %d usable annotated images (%d with regions); at least %d are needed to train, skipped",
            plan.where,
            len(samples),
            len(labelled),
            MIN_TRAIN + MIN_HELD_OUT,
        )
        return None
    refusal = kind.refusal(samples)
    if refusal is not None:
        log.warning("%s: %s, skipped", plan.where, refusal)
        return None
    train, val = held_out(samples)
    data = kind.write(root, names, train, val)
    imgsz = choose_imgsz([s.size for s in samples])
    return Dataset(root, data, names.ordered_classes, names.keypoints, train, val, imgsz)
