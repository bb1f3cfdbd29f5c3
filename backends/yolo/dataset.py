"""Label Studio annotations of one control → an Ultralytics dataset on disk, with a held-out split.

Formats (all coordinates normalised to 0..1 of the natural, EXIF-transposed image):

* detect: ``cls cx cy w h`` (a rotated rectangle becomes the axis-aligned box around it);
* obb: ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four corners;
* segment: ``cls x1 y1 x2 y2 ...``; polygons as drawn, brush masks traced into outer outlines through their
  boundary pixels' centres (which Ultralytics' ``polygon2mask``, truncating, fills back to the same pixels);
* pose: ``cls cx cy w h x1 y1 v1 ... xK yK vK``, one line per instance;
* classify: ``train/<class>/`` and ``val/<class>/`` folders.

Pose instances: keypoints whose ``parentID`` names a rectangle of the annotation belong to it; other
keypoints go to the smallest rectangle that contains them; keypoints with no rectangle at all form one
instance boxed by their extent. Its class is the rectangle's label, or ``object``.

Annotations are read with the core's readers (:mod:`labelzoo.results`), brush masks traced with its
``mask_to_polygons``, and the held-out split is the core's (:mod:`labelzoo.learning`): by a hash of the task
id, so a task keeps its side as the project grows and the current and the new model are compared on images
neither trained on whenever possible.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from labelzoo.backend import TrainingExample
from labelzoo.errors import LabelzooError
from labelzoo.images import open_image
from labelzoo.labelconfig import ControlTag
from labelzoo.learning import split_held_out
from labelzoo.media import MediaResolver
from labelzoo.results import (
    ReadRegion,
    mask_to_polygons,
    read_brushes,
    read_choices,
    read_keypoints,
    read_polygons,
    read_rectangles,
)
from labelzoo.taskdata import media_path

from .controls import ControlPlan

log = logging.getLogger("labelzoo.yolo")

HELD_OUT_FRACTION = 0.2
MIN_HELD_OUT = 2
MIN_TRAIN = 2
ORPHAN_CLASS = "object"
MIN_CONTOUR_AREA = 4.0  # pixels: brush specks smaller than this are not instances


@dataclass
class Sample:
    """One image of the dataset: where it is, its natural size, and its labels."""

    task_id: int | None
    image: Path
    size: tuple[int, int]
    lines: list[str] = field(default_factory=list)  # YOLO label lines (not classify)
    label: int | None = None  # class index (classify)


@dataclass
class Dataset:
    kind: str
    root: Path
    data: str  # what Ultralytics' train(data=...) takes: a YAML file, or the folder for classify
    classes: list[str]
    keypoints: list[str]  # label keys by keypoint index (pose)
    train: list[Sample]
    val: list[Sample]
    imgsz: int


# --- annotations → label lines ------------------------------------------------------------------


def _fmt(values: Sequence[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)


def _normalised(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.clip(points / np.asarray(size, dtype=np.float64), 0.0, 1.0)


def box_line(cls: int, corners: np.ndarray, size: tuple[int, int]) -> str | None:
    """``cls cx cy w h`` for the axis-aligned box around pixel ``corners``, clipped to the image."""
    norm = _normalised(corners, size)
    (x1, y1), (x2, y2) = norm.min(axis=0), norm.max(axis=0)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return f"{cls} {_fmt([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])}"


def _class_of(region: ReadRegion, classes: dict[str, int], control: ControlTag) -> int | None:
    """The region's class index; with dynamic labels (``value="$labels"``) a new label becomes a new class."""
    if region.label is not None and control.dynamic_labels:
        classes.setdefault(region.label, len(classes))
    return classes.get(region.label) if region.label is not None else None


def shape_lines(
    kind: str,
    tag: str,
    result: Sequence[Mapping[str, Any]],
    classes: dict[str, int],
    control: ControlTag,
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """Label lines for detect, obb and segment from one annotation's regions of the control."""
    lines: list[str] = []
    if tag == "rectanglelabels":
        for rect in read_rectangles(result, control, to_name):
            cls = _class_of(rect, classes, control)
            if cls is None:
                continue
            corners = rect.corners(size)  # obb: the four corners; detect: the axis-aligned box around them
            obb = f"{cls} {_fmt(_normalised(corners, size).ravel())}"
            line = box_line(cls, corners, size) if kind == "detect" else obb
            if line:
                lines.append(line)
    elif tag == "polygonlabels":
        for shape in read_polygons(result, control, to_name):
            cls = _class_of(shape, classes, control)
            if cls is not None and len(shape.points) >= 3:
                lines.append(f"{cls} {_fmt(np.clip(shape.points / 100.0, 0.0, 1.0).ravel())}")
    elif tag == "brushlabels":  # each blob of the mask becomes an instance
        for stroke in read_brushes(result, control, to_name, image_size=size):
            cls = _class_of(stroke, classes, control)
            if cls is not None:
                for outline in mask_to_polygons(stroke.resized(size), min_area_px=MIN_CONTOUR_AREA):
                    lines.append(f"{cls} {_fmt(_normalised(outline, size).ravel())}")
    return lines


def pose_lines(
    control: ControlTag,
    keypoints: Sequence[Mapping[str, Any]],
    rectangles: Sequence[Mapping[str, Any]],
    point_index: Mapping[str, int],
    classes: dict[str, int],
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """One line per instance: its box, then every keypoint index as ``x y 2`` (labelled) or ``0 0 0`` (missing).

    ``keypoints`` holds the control's keypoints, ``rectangles`` the rectangles of any control (both may be
    the whole annotation). ``classes`` grows as new instance classes appear (rectangle labels, or ``object``).
    """
    if not point_index:
        return []
    boxes = read_rectangles(rectangles, None, to_name)
    corners = [box.corners(size) for box in boxes]
    by_id = {box.id: i for i, box in enumerate(boxes) if box.id is not None}
    members: dict[int | None, list[tuple[int, np.ndarray]]] = {}
    for keypoint in read_keypoints(keypoints, control, to_name):
        if keypoint.label not in point_index:
            continue
        point = np.array(keypoint.point(size))
        parent = by_id.get(keypoint.parent_id)
        if parent is None:
            inside = [
                (float(np.prod(np.ptp(box, axis=0))), i) for i, box in enumerate(corners)
                if np.all(point >= box.min(axis=0)) and np.all(point <= box.max(axis=0))
            ]  # fmt: skip
            parent = min(inside)[1] if inside else None
        members.setdefault(parent, []).append((point_index[keypoint.label], point))
    count = max(point_index.values()) + 1
    lines = []
    for parent, points in members.items():
        if parent is not None:
            box, name = corners[parent], boxes[parent].label or ORPHAN_CLASS
        else:
            xy = np.array([p for _, p in points])
            pad = 0.05 * np.asarray(size, dtype=np.float64)
            box, name = np.array([xy.min(axis=0) - pad, xy.max(axis=0) + pad]), ORPHAN_CLASS
        cls = classes.setdefault(name, len(classes))
        line = box_line(cls, box, size)
        if line is None:
            continue
        triples = np.zeros((count, 3))
        for index, point in points:
            triples[index] = [*_normalised(point[None], size)[0], 2.0]
        lines.append(f"{line} {_fmt(triples.ravel())}")
    return lines


# --- the split and the files ---------------------------------------------------------------------


def held_out(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, val) by the core's stable split on the task id: 20 % held out, at least 2 of each."""
    train, val = split_held_out(
        samples, task_id=lambda s: s.task_id, fraction=HELD_OUT_FRACTION, min_held_out=MIN_HELD_OUT, min_train=MIN_TRAIN
    )
    return train, val


def choose_imgsz(sizes: Sequence[tuple[int, int]]) -> int:
    """Training size from the data: the median longer side, rounded up to a multiple of 32, in 64..640."""
    longest = float(np.median([max(size) for size in sizes]))
    return int(min(640, max(64, math.ceil(longest / 32) * 32)))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] or "image"


def build_dataset(
    plan: ControlPlan,
    examples: Sequence[TrainingExample],
    media: MediaResolver,
    root: Path,
    *,
    keypoint_index: Mapping[str, int] | None = None,
    max_pixels: int,
) -> Dataset | None:
    """Write the control's dataset under ``root``; None (with a log line) when there is too little to learn from."""
    control, tag = plan.control, plan.control.tag.lower()
    # pose classes are the instances' (rectangle labels); the keypoint labels are keypoints, not classes
    classes: dict[str, int] = {} if plan.kind == "pose" else {key: i for i, key in enumerate(control.label_keys)}
    samples: list[Sample] = []
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for n, example in enumerate(examples):
        obj = plan.obj.name
        if plan.kind == "classify":
            key = next((c.label for c in read_choices(example.result, control, obj) if c.label), None)
            if key is None:
                continue
        elif plan.kind == "pose" and not read_keypoints(example.result, control, obj):
            continue
        try:
            picture = open_image(media_path(example.task, plan.obj, media), max_pixels=max_pixels)
        except LabelzooError as exc:
            log.warning("%s: task %s left out of training: %s", plan.where, example.task.id, exc.message)
            continue
        size = picture.size
        path = images / f"{n:05d}_{_safe(str(example.task.id))}.png"
        picture.save(path, compress_level=1)
        sample = Sample(example.task.id, path, size)
        if plan.kind == "classify":
            sample.label = classes.setdefault(key, len(classes))
        elif plan.kind == "pose":
            sample.lines = pose_lines(
                control, example.result, example.result, keypoint_index or {}, classes, size, to_name=obj
            )
        else:
            sample.lines = shape_lines(plan.kind, tag, example.result, classes, control, size, to_name=obj)
        samples.append(sample)
    labelled = [s for s in samples if s.lines or s.label is not None]
    if len(samples) < MIN_TRAIN + MIN_HELD_OUT or not labelled or not classes:
        log.warning(
            "%s: %d usable annotated images (%d with regions); at least %d are needed to train, skipped",
            plan.where,
            len(samples),
            len(labelled),
            MIN_TRAIN + MIN_HELD_OUT,
        )
        return None
    if plan.kind == "classify" and len({s.label for s in samples}) < 2:
        log.warning("%s: all annotated images have the same choice; at least 2 classes are needed, skipped", plan.where)
        return None
    train, val = held_out(samples)
    names = sorted(classes, key=classes.__getitem__)
    keypoints = sorted(keypoint_index or {}, key=lambda k: (keypoint_index or {})[k])
    data = _write_split_files(plan.kind, root, names, keypoints, keypoint_index, train, val)
    return Dataset(plan.kind, root, data, names, keypoints, train, val, choose_imgsz([s.size for s in samples]))


def _write_split_files(
    kind: str,
    root: Path,
    names: list[str],
    keypoints: list[str],
    keypoint_index: Mapping[str, int] | None,
    train: list[Sample],
    val: list[Sample],
) -> str:
    if kind == "classify":
        for split, samples in (("train", train), ("val", val)):
            for i in range(len(names)):
                (root / split / f"{i:04d}").mkdir(parents=True, exist_ok=True)
            for sample in samples:
                target = root / split / f"{sample.label:04d}" / sample.image.name
                sample.image.replace(target)
                sample.image = target
        return str(root)
    for split, samples in (("train", train), ("val", val)):
        folder = root / split / "images"
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        for sample in samples:
            target = folder / sample.image.name
            sample.image.replace(target)
            sample.image = target
            label_file = root / split / "labels" / f"{target.stem}.txt"
            label_file.write_text("".join(f"{line}\n" for line in sample.lines))
    config: dict[str, Any] = {
        "path": str(root),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(names)),
    }
    if kind == "pose":
        count = max((keypoint_index or {}).values(), default=-1) + 1
        by_index = {index: key for key, index in (keypoint_index or {}).items()}
        config["kpt_shape"] = [count, 3]
        config["kpt_names"] = {i: [by_index.get(j, str(j)) for j in range(count)] for i in range(len(names))}
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return str(data)
