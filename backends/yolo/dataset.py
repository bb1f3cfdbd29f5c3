"""Label Studio annotations of one control → an Ultralytics dataset on disk, with a held-out split.

Formats (all coordinates normalised to 0..1 of the natural, EXIF-transposed image):

* detect: ``cls cx cy w h`` (a rotated rectangle becomes the axis-aligned box around it);
* obb: ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four corners;
* segment: ``cls x1 y1 x2 y2 ...``; polygons as drawn, brush masks traced into outer contours;
* pose: ``cls cx cy w h x1 y1 v1 ... xK yK vK``, one line per instance;
* classify: ``train/<class>/`` and ``val/<class>/`` folders.

Pose instances: keypoints whose ``parentID`` names a rectangle of the annotation belong to it; other
keypoints go to the smallest rectangle that contains them; keypoints with no rectangle at all form one
instance boxed by their extent. Its class is the rectangle's label, or ``object``.

The held-out split is chosen by a hash of the task id: a task keeps its side as the project grows, so
the current and the new model are compared on images neither trained on whenever possible.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from labelzoo.backend import TrainingExample
from labelzoo.errors import LabelzooError
from labelzoo.images import open_image
from labelzoo.labelconfig import ControlTag
from labelzoo.media import MediaResolver
from labelzoo.results import rle_to_mask
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


# --- reading annotations -------------------------------------------------------------------------


def items_for(example: TrainingExample, name: str, to_name: str) -> list[Mapping[str, Any]]:
    return [
        item for item in example.result
        if isinstance(item, Mapping) and item.get("from_name") == name and item.get("to_name") == to_name
        and isinstance(item.get("value"), Mapping)
    ]  # fmt: skip


def label_of(item: Mapping[str, Any]) -> str | None:
    value = item["value"]
    found = value.get(str(item.get("type", ""))) or value.get("labels") or value.get("choices")
    return str(found[0]) if isinstance(found, list) and found else None


def config_key(control: ControlTag, label: str) -> str | None:
    """An annotation's label as the control's label key (annotations may hold a value whose alias is the key)."""
    for tag in control.labels:
        if label in (tag.key, tag.value):
            return tag.key
    return label if control.dynamic_labels else None


def rect_corners(value: Mapping[str, Any], size: tuple[int, int]) -> np.ndarray:
    """Corners (4, 2) in pixels of a Label Studio rectangle: top-left, top-right, bottom-right, bottom-left.

    Label Studio rotates a rectangle clockwise (on screen) around its top-left corner (protocol §5.3).
    """
    width, height = size
    x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
    w, h = float(value["width"]) * width / 100, float(value["height"]) * height / 100
    theta = math.radians(float(value.get("rotation") or 0.0))
    along = np.array([math.cos(theta), math.sin(theta)])
    down = np.array([-math.sin(theta), math.cos(theta)])
    top_left = np.array([x, y])
    return np.array([top_left, top_left + w * along, top_left + w * along + h * down, top_left + h * down])


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


def brush_outlines(item: Mapping[str, Any], size: tuple[int, int]) -> list[np.ndarray]:
    """Outer contours (pixel centres) of a brush RLE mask, one per connected blob."""
    value = item["value"]
    width = int(item.get("original_width") or size[0])
    height = int(item.get("original_height") or size[1])
    mask = rle_to_mask(value["rle"], width, height)
    if (width, height) != size:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).astype(np.float64) for c in contours if cv2.contourArea(c) >= MIN_CONTOUR_AREA]


def shape_lines(
    kind: str,
    tag: str,
    items: Sequence[Mapping[str, Any]],
    classes: Mapping[str, int],
    control: ControlTag,
    size: tuple[int, int],
) -> list[str]:
    """Label lines for detect, obb and segment from one annotation's regions of the control."""
    lines: list[str] = []
    for item in items:
        label = label_of(item)
        key = config_key(control, label) if label is not None else None
        if key is None or key not in classes:
            continue
        cls, value = classes[key], item["value"]
        if tag == "rectanglelabels":
            corners = rect_corners(value, size)
            line = (
                box_line(cls, corners, size)
                if kind == "detect"
                else f"{cls} {_fmt(_normalised(corners, size).ravel())}"
            )
            if line:
                lines.append(line)
        elif tag == "polygonlabels" and len(value.get("points") or []) >= 3:
            points = np.clip(np.asarray(value["points"], dtype=np.float64) / 100.0, 0.0, 1.0)
            lines.append(f"{cls} {_fmt(points.ravel())}")
        elif tag == "brushlabels" and value.get("format", "rle") == "rle" and value.get("rle"):
            for outline in brush_outlines(item, size):
                if len(outline) >= 3:
                    lines.append(f"{cls} {_fmt(_normalised(outline, size).ravel())}")
    return lines


def pose_lines(
    control: ControlTag,
    keypoints: Sequence[Mapping[str, Any]],
    rectangles: Sequence[Mapping[str, Any]],
    point_index: Mapping[str, int],
    classes: dict[str, int],
    size: tuple[int, int],
) -> list[str]:
    """One line per instance: its box, then every keypoint index as ``x y 2`` (labelled) or ``0 0 0`` (missing).

    ``classes`` grows as new instance classes appear (rectangle labels, or ``object``).
    """
    if not point_index:
        return []
    boxes = {str(r.get("id")): rect_corners(r["value"], size) for r in rectangles}
    labels = {str(r.get("id")): label_of(r) or ORPHAN_CLASS for r in rectangles}
    members: dict[str | None, list[tuple[int, np.ndarray]]] = {}
    for item in keypoints:
        label = label_of(item)
        key = config_key(control, label) if label is not None else None
        if key not in point_index:
            continue
        value = item["value"]
        point = np.array([float(value["x"]) * size[0] / 100, float(value["y"]) * size[1] / 100])
        parent = item.get("parentID")
        if parent not in boxes:
            inside = [
                (float(np.prod(np.ptp(corners, axis=0))), key) for key, corners in boxes.items()
                if np.all(point >= corners.min(axis=0)) and np.all(point <= corners.max(axis=0))
            ]  # fmt: skip
            parent = min(inside)[1] if inside else None
        members.setdefault(parent, []).append((point_index[key], point))
    count = max(point_index.values()) + 1
    lines = []
    for parent, points in members.items():
        if parent is not None:
            corners, name = boxes[parent], labels[parent]
        else:
            xy = np.array([p for _, p in points])
            pad = 0.05 * np.asarray(size, dtype=np.float64)
            corners, name = np.array([xy.min(axis=0) - pad, xy.max(axis=0) + pad]), ORPHAN_CLASS
        cls = classes.setdefault(name, len(classes))
        box = box_line(cls, corners, size)
        if box is None:
            continue
        triples = np.zeros((count, 3))
        for index, point in points:
            triples[index] = [*_normalised(point[None], size)[0], 2.0]
        lines.append(f"{box} {_fmt(triples.ravel())}")
    return lines


# --- the split and the files ---------------------------------------------------------------------


def _hash(task_id: int | None, fallback: int) -> float:
    digest = hashlib.sha1(f"task-{task_id if task_id is not None else f'#{fallback}'}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, val): val holds the tasks whose hash falls in the first 20 %, at least 2 and at most a third."""
    order = sorted(range(len(samples)), key=lambda i: _hash(samples[i].task_id, i))
    hashed = sum(_hash(s.task_id, i) < HELD_OUT_FRACTION for i, s in enumerate(samples))
    wanted = min(max(MIN_HELD_OUT, hashed), max(MIN_HELD_OUT, len(samples) // 3))
    val_ids = set(order[:wanted])
    return ([s for i, s in enumerate(samples) if i not in val_ids], [s for i, s in enumerate(samples) if i in val_ids])


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
        items = items_for(example, control.name, plan.obj.name)
        if plan.kind == "classify":
            label = next((label_of(i) for i in items if label_of(i)), None)
            key = config_key(control, label) if label else None
            if key is None:
                continue
        elif plan.kind == "pose" and not items:
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
            rectangles = [
                item for item in example.result
                if isinstance(item, Mapping) and item.get("type") == "rectanglelabels"
                and item.get("to_name") == plan.obj.name and isinstance(item.get("value"), Mapping)
            ]  # fmt: skip
            sample.lines = pose_lines(control, items, rectangles, keypoint_index or {}, classes, size)
        else:
            if control.dynamic_labels:
                for item in items:
                    label = label_of(item)
                    if label is not None:
                        classes.setdefault(label, len(classes))
            sample.lines = shape_lines(plan.kind, tag, items, classes, control, size)
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
