"""The pieces of an Ultralytics dataset on disk: samples, class names, label lines, files, the held-out split.

A sample is one annotated image saved at its natural (EXIF-transposed) size; its kind gives it label lines
in coordinates normalised to 0..1, or a class for classification, and writes the files Ultralytics trains
from (label files and a ``data.yaml`` with :func:`write_label_files`, or class folders). The held-out split
is the core's (:mod:`labelzoo.learning`): by a hash of the task id, so a task keeps its side as the project
grows and the current and the new model are compared on images neither trained on whenever possible.
:func:`.training_data.build_dataset` puts them together for one control.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from labelzoo.labelconfig import ControlTag
from labelzoo.learning import split_held_out
from labelzoo.results import ReadRegion

HELD_OUT_FRACTION = 0.2
MIN_HELD_OUT = 2
MIN_TRAIN = 2

Annotation = Sequence[Mapping[str, Any]]  # one annotation's result items


@dataclass
class Sample:
    """One image of the dataset: where it is, its natural size, and its labels."""

    task_id: int | None
    image: Path
    size: tuple[int, int]
    lines: list[str] = field(default_factory=list)  # YOLO label lines (not classify)
    label: int | None = None  # class index (classify)


@dataclass
class Names:
    """What a dataset's labels number: classes (which grow as new ones appear) and, for pose, keypoints."""

    classes: dict[str, int]  # class name → class index
    keypoints: dict[str, int] = field(default_factory=dict)  # label key → keypoint index (pose)

    @property
    def ordered_classes(self) -> list[str]:
        return sorted(self.classes, key=self.classes.__getitem__)


@dataclass
class Dataset:
    root: Path
    data: str  # what Ultralytics' train(data=...) takes: a YAML file, or the folder for classify
    classes: list[str]
    keypoints: dict[str, int]  # label key → keypoint index (pose)
    train: list[Sample]
    val: list[Sample]
    imgsz: int


# --- label lines -------------------------------------------------------------------------------------------


def fmt(values: Sequence[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)


def normalised(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixel points (N, 2) as fractions of the image size, clipped to the image."""
    return np.clip(points / np.asarray(size, dtype=np.float64), 0.0, 1.0)


def box_line(cls: int, corners: np.ndarray, size: tuple[int, int]) -> str | None:
    """``cls cx cy w h`` for the axis-aligned box around pixel ``corners``, clipped to the image."""
    norm = normalised(corners, size)
    (x1, y1), (x2, y2) = norm.min(axis=0), norm.max(axis=0)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return f"{cls} {fmt([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])}"


R = TypeVar("R", bound=ReadRegion)


def with_classes(regions: Iterable[R], classes: dict[str, int], control: ControlTag) -> Iterator[tuple[int, R]]:
    """``(class index, region)`` for the regions whose label is a class of the dataset; with dynamic labels
    (``value="$labels"``) a new label becomes a new class."""
    for region in regions:
        if region.label is None:
            continue
        if control.dynamic_labels:
            classes.setdefault(region.label, len(classes))
        if region.label in classes:
            yield classes[region.label], region


# --- the images, the split and the files ---------------------------------------------------------------------


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


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] or "image"


def move_image(sample: Sample, folder: Path) -> Path:
    """Move the sample's image into ``folder`` (created if need be); its new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sample.image.name
    sample.image.replace(target)
    sample.image = target
    return target


def write_label_files(
    root: Path, names: Names, train: list[Sample], val: list[Sample], extra: Mapping[str, Any] | None = None
) -> str:
    """``<split>/images`` and ``<split>/labels`` (one ``.txt`` per image) and a ``data.yaml``; its path.

    ``extra`` goes into the YAML too (pose: the keypoint shape and names).
    """
    for split, samples in (("train", train), ("val", val)):
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        for sample in samples:
            target = move_image(sample, root / split / "images")
            label_file = root / split / "labels" / f"{target.stem}.txt"
            label_file.write_text("".join(f"{line}\n" for line in sample.lines))
    config: dict[str, Any] = {
        "path": str(root),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(names.ordered_classes)),
        **(extra or {}),
    }
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return str(data)
