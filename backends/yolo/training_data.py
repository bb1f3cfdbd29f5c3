"""A control's annotations → its Ultralytics dataset on disk, or None when there is too little to learn from.

Each usable annotation's image is saved at its natural size and labelled by the control's kind
(:meth:`.kind.Kind.label`); the kind then writes the files (:meth:`.kind.Kind.write`), split into training
and held-out images (:func:`.dataset.held_out`). A VideoRectangle trains on frames of its annotated videos
(:func:`build_video_dataset`), a TimelineLabels on the frames of its labelled ranges (:func:`build_timeline_dataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from labelzoo.backend import TrainingExample
from labelzoo.errors import LabelzooError
from labelzoo.images import open_image
from labelzoo.labelconfig import ControlTag
from labelzoo.media import MediaResolver
from labelzoo.results import read_timeline_labels, read_video_rectangles
from labelzoo.taskdata import media_path
from labelzoo.video import read_frames, video_info

from .dataset import MIN_HELD_OUT, MIN_TRAIN, Dataset, Names, Sample, box_line, choose_imgsz, held_out, safe_name
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
    return _dataset(plan, root, names, samples)


def build_video_dataset(
    plan: ControlPlan, labels: ControlTag, examples: Sequence[TrainingExample], media: MediaResolver, root: Path,
    *, frames_per_video: int,
) -> Dataset | None:
    """A VideoRectangle's dataset: up to ``frames_per_video`` frames of each annotated video, spread evenly
    over the frames its tracks are on (read as the editor plays them: keyframes interpolated, no box after
    a keyframe with ``enabled: false`` until the next), each with the boxes of the tracks on it, numbered by
    the ``labels`` control on the video. A video's frames share its task id, so they fall on one side of the
    held-out split: the new model is validated on videos it never saw."""
    names = Names({key: i for i, key in enumerate(labels.label_keys)})
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    for example in examples:
        tracks = [t for t in read_video_rectangles(example.result, plan.control, labels, plan.obj.name)
                  if t.label in names.classes]
        if not tracks:
            continue
        try:
            path = Path(media_path(example.task, plan.obj, media))
            count = video_info(path).frames
            on = sorted({frame for track in tracks for frame in track.visible(count)})
            for frame, picture in read_frames(path, _spread(on, frames_per_video)):
                sample = Sample(example.task.id, images / f"{safe_name(str(example.task.id))}_{frame:06d}.png",
                                picture.size)
                picture.save(sample.image, compress_level=1)
                sample.lines = [line for track in tracks if (box := track.box_at(frame)) is not None
                                and (line := box_line(names.classes[track.label], _corners(box, picture.size),
                                                      picture.size))]
                samples.append(sample)
        except LabelzooError as exc:
            log.warning("%s: task %s left out of training: %s", plan.where, example.task.id, exc.message)
    return _dataset(plan, root, names, samples)


def build_timeline_dataset(plan: ControlPlan, examples: Sequence[TrainingExample], media: MediaResolver, root: Path,
                           *, frames_per_video: int) -> Dataset | None:  # fmt: skip
    """A TimelineLabels' dataset for its classifier: up to ``frames_per_video`` frames of each annotated video,
    spread evenly over the frames its ranges label, each of the class of its range (of the later region where
    two overlap). Frames no range covers are not used: a timeline need not label everything. As for tracks,
    a video's frames share its task id, so the new model is validated on videos it never saw."""
    names = plan.kind.names(plan.control, None)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    for example in examples:
        regions = [r for r in read_timeline_labels(example.result, plan.control, plan.obj.name)
                   if r.label in names.classes]  # fmt: skip
        label_of = {frame: names.classes[str(r.label)] for r in regions for frame in r.frames()}
        if not label_of:
            continue
        try:
            path = Path(media_path(example.task, plan.obj, media))
            for frame, picture in read_frames(path, _spread(sorted(label_of), frames_per_video)):
                sample = Sample(example.task.id, images / f"{safe_name(str(example.task.id))}_{frame:06d}.png",
                                picture.size, label=label_of[frame])  # fmt: skip
                picture.save(sample.image, compress_level=1)
                samples.append(sample)
        except LabelzooError as exc:
            log.warning("%s: task %s left out of training: %s", plan.where, example.task.id, exc.message)
    return _dataset(plan, root, names, samples)


def _spread(frames: Sequence[int], n: int) -> list[int]:
    """At most ``n`` of ``frames``, evenly spread from the first to the last."""
    if len(frames) <= n:
        return list(frames)
    return sorted({frames[round(i * (len(frames) - 1) / max(n - 1, 1))] for i in range(n)})


def _corners(box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """The pixel corners of a box in percent of an image of ``size``."""
    x, y, w, h = (value * size[i % 2] / 100 for i, value in enumerate(box))
    return np.array([[x, y], [x + w, y + h]])


def _dataset(plan: ControlPlan, root: Path, names: Names, samples: list[Sample]) -> Dataset | None:
    """The samples split and written as the control's kind trains from them; None (with a log line) when there
    is too little to learn from."""
    kind = plan.kind
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
