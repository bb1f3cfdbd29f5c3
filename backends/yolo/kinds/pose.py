"""``KeyPointLabels``: the keypoints of each instance a pose model finds.

Predicting: each ``<Label>`` takes one keypoint of the model (:func:`keypoint_map`); each kept instance gives
its keypoints above ``model_point_threshold``, each with its own confidence, grouped under the instance's
box when the image has a ``RectangleLabels`` for the pose classes (:func:`poses`). Training:
``cls cx cy w h x1 y1 v1 ... xK yK vK``, one line per instance (:func:`pose_lines`), never mirrored (left
and right keypoints would swap). Held-out score: mAP of the instances matched by keypoint similarity (OKS),
whatever their class.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, LabelConfig, LabelMap, build_label_map
from labelzoo.results import keypoint, read_keypoints, read_rectangles, rectangle

from ..dataset import Annotation, Dataset, Names, box_line, fmt, normalised
from ..evaluate import Compare
from ..kind import ControlPlan, Converter, InstanceKind, Warn
from ..outputs import ControlOutput, candidates, image_size, numpy, values

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

    from ..weights import YoloModel

#: keypoints below this confidence are left out (Ultralytics itself hides them below 0.5)
DEFAULT_POINT_THRESHOLD = 0.5
ORPHAN_CLASS = "object"  # the class of an instance whose keypoints have no rectangle


class Pose(InstanceKind):
    name = "pose"
    attributes = ("model_iou", "model_point_threshold", "model_point_size", "model_add_bboxes")
    tags = ("KeyPointLabels",)
    controls_doc = "`KeyPointLabels`"
    default_model = "yolo11n-pose.pt"
    served_by = ("pose",)
    metric_suffix = "P"
    class_agnostic = True  # the instances' classes are the boxes'; the keypoints are what is scored
    # a mirrored image swaps left and right keypoints, which the config does not name
    train_arguments: ClassVar[Mapping[str, Any]] = {"fliplr": 0.0}

    def model_labels(self, control: ControlTag, model: YoloModel) -> list[str]:
        return keypoint_labels(control, model.keypoint_names)

    def converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig, warn: Warn) -> Converter:
        points = keypoint_map(plan.control, model.keypoint_names)
        if not points:
            warn(f"none of its labels names a keypoint of {model.source} ({', '.join(model.keypoint_names)}); "
                 'add model_index="<i>" to each <Label>')  # fmt: skip
        parent = pose_parent(config, plan, model)
        return lambda result: poses(result, plan, points, parent)

    def names(self, control: ControlTag, current: YoloModel | None) -> Names:
        # the classes are the instances' (rectangle labels); the keypoint labels are keypoints, not classes
        return Names({}, training_keypoints(control, current.keypoint_names if current is not None else []))

    def usable(self, plan: ControlPlan, result: Annotation) -> bool:
        return bool(read_keypoints(result, plan.control, plan.obj.name))

    def lines(self, plan: ControlPlan, result: Annotation, names: Names, size: tuple[int, int]) -> list[str]:
        return pose_lines(plan.control, result, result, names.keypoints, names.classes, size, to_name=plan.obj.name)

    def data_yaml(self, names: Names) -> dict[str, Any]:
        count = _count(names.keypoints)
        by_index = {index: key for key, index in names.keypoints.items()}
        keypoints = [by_index.get(j, str(j)) for j in range(count)]
        return {"kpt_shape": [count, 3], "kpt_names": {i: keypoints for i in range(len(names.classes))}}

    def comparer(self, plan: ControlPlan, model: YoloModel, dataset: Dataset) -> Compare:
        points = keypoint_map(plan.control, model.keypoint_names)
        positions = {i: dataset.keypoints[key] for i, key in points.items() if key in dataset.keypoints}
        return functools.partial(keypoint_similarities, count=_count(dataset.keypoints), positions=positions)


POSE = Pose()


def _count(keypoints: Mapping[str, int]) -> int:
    return max(keypoints.values(), default=-1) + 1


# --- the label config ----------------------------------------------------------------------------------------


def point_threshold(control: ControlTag) -> float:
    value = control.float_attr("model_point_threshold", DEFAULT_POINT_THRESHOLD)
    return DEFAULT_POINT_THRESHOLD if value is None else value


def point_width(control: ControlTag, image_width: int) -> float | None:
    """``model_point_size`` (pixels, as upstream) as percent of the image width; None = the default."""
    size = control.float_attr("model_point_size")
    return None if size is None or size <= 0 else size * 100.0 / image_width


def keypoint_map(control: ControlTag, keypoint_names: list[str]) -> Mapping[int, str]:
    """Keypoint index → label key: ``model_index="i"`` on a ``<Label>``, else a label named like the keypoint.

    Names compare case-insensitively with ``_``, ``-`` and spaces alike (``left_eye`` = ``Left Eye``).
    """
    found: dict[int, str] = {}
    for label in control.labels:
        raw = label.attr("model_index")
        if raw is None:
            continue
        try:
            index = int(raw)
        except ValueError:
            raise LabelConfigError(
                f'<Label value="{label.value}"> of <{control.tag} name="{control.name}"> has model_index="{raw}"; '
                'use the keypoint\'s index in the model, e.g. model_index="0"'
            ) from None
        found.setdefault(index, label.key)
    claimed = set(found.values())
    by_name = {_loose(name): i for i, name in enumerate(keypoint_names)}
    for label in control.labels:
        if label.key in claimed or label.attr("model_index") is not None:
            continue
        index = by_name.get(_loose(label.value or label.key))
        if index is not None and index not in found:
            found[index] = label.key
    return found


def training_keypoints(control: ControlTag, keypoint_names: list[str]) -> dict[str, int]:
    """Label key → keypoint index to train with, starting from a model with these keypoints.

    When the model already has a keypoint for every label (``model_index`` or name), the skeleton is kept;
    otherwise it is a new skeleton: explicit ``model_index`` values stay, the other labels take the free
    indices in document order. The trained model carries the label keys as its keypoint names.
    """
    mapped = {key: index for index, key in keypoint_map(control, keypoint_names).items()}
    if all(key in mapped for key in control.label_keys):
        return mapped
    explicit = {key: index for index, key in keypoint_map(control, []).items()}
    free = (i for i in range(len(control.label_keys) + len(explicit)) if i not in explicit.values())
    return {key: explicit[key] if key in explicit else next(free) for key in control.label_keys}


def keypoint_labels(control: ControlTag, keypoint_names: list[str]) -> list[str]:
    """The model's keypoints as the /setup label report shows them: mapped ones by their config label."""
    mapping = keypoint_map(control, keypoint_names)
    return [mapping.get(i, name) for i, name in enumerate(keypoint_names)]


def _loose(text: str) -> str:
    return " ".join(text.casefold().replace("_", " ").replace("-", " ").split())


def pose_parent(config: LabelConfig, plan: ControlPlan, model: YoloModel) -> tuple[ControlTag, LabelMap] | None:
    """The RectangleLabels control on the same image that takes the pose classes, for the instance boxes."""
    if not plan.control.bool_attr("model_add_bboxes", True):
        return None
    for control in config.controls_for(plan.obj.name):
        if control.tag.lower() == "rectanglelabels":
            labels = build_label_map(control, model.names)
            if not labels.is_empty:
                return control, labels
    return None


# --- predicting ----------------------------------------------------------------------------------------------


def poses(
    result: Results,
    plan: ControlPlan,
    points: Mapping[int, str],
    parent: tuple[ControlTag, LabelMap] | None,
) -> ControlOutput:
    """Each kept instance's visible keypoints, grouped under its box when the config has a box control for it.

    ``points`` maps keypoint index → label key; ``parent`` is a RectangleLabels control on the same image whose
    labels take the pose classes (``model_add_bboxes="false"`` turns it off): the instance box goes there and
    its keypoints get ``parentID``. Without one, an instance's keypoints share ``meta.text`` ("instance 1").
    The instance's confidence is the decision's score; each keypoint carries its own confidence.
    """
    out = ControlOutput()
    confs, classes = candidates(result)
    if not len(confs) or result.keypoints is None:
        return out
    size = image_size(result)
    data = numpy(result.keypoints.data)
    xyxy = values(result, "boxes", "xyxy")
    width = point_width(plan.control, size[0])
    extra = {"width": width} if width is not None else {}
    threshold = point_threshold(plan.control)
    for n, (conf, cls) in enumerate(zip(confs, classes, strict=True)):
        if not out.consider(float(conf), plan.threshold):
            continue
        parent_id = None
        box_label = parent[1].get(result.names[cls]) if parent is not None else None
        if parent is not None and box_label is not None:
            x1, y1, x2, y2 = xyxy[n]
            box = rectangle(parent[0].name, plan.obj.name, box=(x1, y1, x2 - x1, y2 - y1), image_size=size,
                            labels=[box_label], score=float(conf))  # fmt: skip
            out.regions.append(box)
            parent_id = box["id"]
        kept = 0
        for index, label in sorted(points.items()):
            if index >= data.shape[1]:
                continue
            x, y = data[n, index, :2]
            point_conf = float(data[n, index, 2]) if data.shape[2] > 2 else float(conf)
            if point_conf < threshold:
                continue
            item = keypoint(plan.control.name, plan.obj.name, point=(x, y), image_size=size, labels=[label],
                            score=point_conf, parent_id=parent_id, **extra)  # fmt: skip
            if parent_id is None:
                item["meta"] = {"text": [f"instance {n + 1}"]}
            out.regions.append(item)
            kept += 1
        if kept or parent_id is not None:
            out.scores.append(float(conf))
    return out


# --- learning ------------------------------------------------------------------------------------------------


def pose_lines(
    control: ControlTag,
    keypoints: Annotation,
    rectangles: Annotation,
    point_index: Mapping[str, int],
    classes: dict[str, int],
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """One line per instance: its box, then every keypoint index as ``x y 2`` (labelled) or ``0 0 0`` (missing).

    ``keypoints`` holds the control's keypoints, ``rectangles`` the rectangles of any control (both may be
    the whole annotation). ``classes`` grows as new instance classes appear (rectangle labels, or ``object``).
    Keypoints whose ``parentID`` names a rectangle belong to it; other keypoints go to the smallest rectangle
    that contains them; keypoints with no rectangle at all form one instance boxed by their extent.
    """
    if not point_index:
        return []
    boxes = read_rectangles(rectangles, None, to_name)
    corners = [box.corners(size) for box in boxes]
    by_id = {box.id: i for i, box in enumerate(boxes) if box.id is not None}
    members: dict[int | None, list[tuple[int, np.ndarray]]] = {}
    for point in read_keypoints(keypoints, control, to_name):
        if point.label not in point_index:
            continue
        xy = np.array(point.point(size))
        parent = by_id.get(point.parent_id)
        if parent is None:
            inside = [
                (float(np.prod(np.ptp(box, axis=0))), i) for i, box in enumerate(corners)
                if np.all(xy >= box.min(axis=0)) and np.all(xy <= box.max(axis=0))
            ]  # fmt: skip
            parent = min(inside)[1] if inside else None
        members.setdefault(parent, []).append((point_index[point.label], xy))
    count = _count(point_index)
    lines = []
    for parent, found in members.items():
        if parent is not None:
            box, name = corners[parent], boxes[parent].label or ORPHAN_CLASS
        else:
            xy = np.array([p for _, p in found])
            pad = 0.05 * np.asarray(size, dtype=np.float64)
            box, name = np.array([xy.min(axis=0) - pad, xy.max(axis=0) + pad]), ORPHAN_CLASS
        cls = classes.setdefault(name, len(classes))
        line = box_line(cls, box, size)
        if line is None:
            continue
        triples = np.zeros((count, 3))
        for index, xy in found:
            triples[index] = [*normalised(xy[None], size)[0], 2.0]
        lines.append(f"{line} {fmt(triples.ravel())}")
    return lines


def keypoint_similarities(
    rows: list[np.ndarray],
    result: Results,
    keep: np.ndarray,
    size: tuple[int, int],
    *,
    count: int,
    positions: Mapping[int, int],
) -> np.ndarray:
    """Object keypoint similarity of each true instance with each predicted one; ``positions`` takes a model
    keypoint index to the dataset's keypoint index (through their label)."""
    from ultralytics.utils.metrics import OKS_SIGMA, kpt_iou

    scale = np.asarray(size, np.float64)
    truth = np.array([r[5:].reshape(-1, 3)[:count] for r in rows]).reshape(-1, count, 3)
    truth[..., :2] *= scale
    area = np.array([r[3] * r[4] * scale[0] * scale[1] for r in rows])
    data = numpy(result.keypoints.data)[keep] if result.keypoints is not None and len(keep) else np.zeros((0, 0, 3))
    found = np.zeros((len(data), count, 3))
    for i, position in positions.items():
        if i < data.shape[1]:
            found[:, position, : data.shape[2]] = data[:, i]
    sigma = OKS_SIGMA if count == len(OKS_SIGMA) else np.ones(count) / count
    return kpt_iou(torch.tensor(truth), torch.tensor(found), torch.tensor(area * 0.53), list(sigma)).numpy()
