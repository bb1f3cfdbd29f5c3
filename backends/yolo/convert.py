"""Ultralytics ``Results`` of one image → Label Studio regions for one control.

Every function reads the candidates of one kind, maps each model class through the control's label
map (unmapped classes are dropped), keeps those at or above the control's threshold and remembers the
best one below it (the *near miss*, which scores a task that got no region). Images reach the model
already EXIF-transposed, so ``result.orig_shape`` is the natural size every percentage refers to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labelzoo.labelconfig import ControlTag, LabelMap
from labelzoo.results import brush, choices, keypoint, mask_to_polygons, polygon, rectangle, rotated_rectangle

from .controls import ControlPlan

if TYPE_CHECKING:  # Ultralytics is imported after weights.prepare_ultralytics() set its environment
    from ultralytics.engine.results import Results

Region = dict[str, Any]


@dataclass
class ControlOutput:
    """What one control predicted for one image: regions, the confidence of each decision, the near miss."""

    regions: list[Region] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    near_miss: float = 0.0

    def consider(self, score: float, threshold: float) -> bool:
        """True if a candidate of this confidence is kept; otherwise it may become the near miss."""
        if score >= threshold:
            return True
        self.near_miss = max(self.near_miss, score)
        return False


def task_score(outputs: list[ControlOutput]) -> float:
    """The task-level score: the mean confidence of everything predicted; with nothing predicted, the near miss.

    So a task the model found nothing in scores below every task with a prediction (a near miss is below the
    threshold, a prediction above it), the closer it came the higher, and 0 if nothing came close.
    """
    scores = [s for output in outputs for s in output.scores]
    if scores:
        return float(sum(scores) / len(scores))
    return float(max((output.near_miss for output in outputs), default=0.0))


def _size(result: Results) -> tuple[int, int]:
    height, width = result.orig_shape[:2]
    return int(width), int(height)


def _numpy(value: Any) -> np.ndarray:
    return value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)


def _candidates(result: Results, attribute: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """(confidences, class ids, the Boxes/OBB object) for ``result.boxes`` or ``result.obb``."""
    found = getattr(result, attribute)
    if found is None or len(found) == 0:
        return np.zeros(0), np.zeros(0, int), found
    return _numpy(found.conf), _numpy(found.cls).astype(int), found


def rectangles(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    out = ControlOutput()
    confs, classes, boxes = _candidates(result, "boxes")
    if not len(confs):
        return out
    xyxy = _numpy(boxes.xyxy)
    for (x1, y1, x2, y2), conf, cls in zip(xyxy, confs, classes, strict=True):
        label = labels.get(result.names[cls])
        if label is None or not out.consider(float(conf), plan.threshold):
            continue
        out.regions.append(
            rectangle(
                plan.control.name,
                plan.obj.name,
                box=(x1, y1, x2 - x1, y2 - y1),
                image_size=_size(result),
                labels=[label],
                score=float(conf),
            )
        )
        out.scores.append(float(conf))
    return out


def oriented_rectangles(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    """OBB ``xywhr`` (centre, size, radians clockwise on screen) → rectangles rotated around their corner."""
    out = ControlOutput()
    confs, classes, obb = _candidates(result, "obb")
    if not len(confs):
        return out
    for (cx, cy, w, h, radians), conf, cls in zip(_numpy(obb.xywhr), confs, classes, strict=True):
        label = labels.get(result.names[cls])
        if label is None or not out.consider(float(conf), plan.threshold):
            continue
        out.regions.append(
            rotated_rectangle(
                plan.control.name,
                plan.obj.name,
                center=(cx, cy),
                size=(w, h),
                angle_deg=math.degrees(radians),
                image_size=_size(result),
                labels=[label],
                score=float(conf),
            )
        )
        out.scores.append(float(conf))
    return out


def _mask_stack(result: Results) -> np.ndarray | None:
    """Instance masks as the model produced them: (N, h, w) floats at its input size (letterboxed)."""
    if result.masks is None or len(result.masks) == 0:
        return None
    return _numpy(result.masks.data)


def natural_mask(masks: np.ndarray, index: int, size: tuple[int, int]) -> np.ndarray:
    """Mask ``index`` of a (N, h, w) stack at the natural image size (W, H) as bool, undoing the letterbox."""
    from ultralytics.utils import ops

    width, height = size
    mask = torch.from_numpy(np.ascontiguousarray(masks[index : index + 1, None], dtype=np.float32))
    return ops.scale_masks(mask, (height, width))[0, 0].numpy() > 0.5


def outline(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The largest outer outline of a model-resolution mask as (N, 2) natural-size pixels, simplified.

    Vertices follow the core's convention (:func:`labelzoo.results.mask_to_polygons`: the centres of the
    boundary mask pixels). Simplification drops points within half a mask pixel of the outline: straight runs
    collapse to their ends, and the polygon fills back to the mask give or take a pixel along slanted edges.
    """
    content, scale = unletterboxed(mask > 0.5, size)
    found = mask_to_polygons(content, largest_only=True, tolerance_px=0.5 * max(*scale, 1.0), scale=scale)
    return found[0] if found else None


def unletterboxed(mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """The part of a letterboxed (h, w) mask that shows the image, and its scale (sx, sy) to the natural size.

    Ultralytics' letterbox scales the image by one gain, rounds each side, and centres it in the padding.
    """
    width, height = size
    rows, cols = mask.shape
    gain = min(rows / height, cols / width)
    shown_w, shown_h = max(round(width * gain), 1), max(round(height * gain), 1)
    left, top = round((cols - shown_w) / 2 - 0.1), round((rows - shown_h) / 2 - 0.1)
    return mask[top : top + shown_h, left : left + shown_w], (width / shown_w, height / shown_h)


def polygons(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    out = ControlOutput()
    masks = _mask_stack(result)
    if masks is None:
        return out
    confs, classes, _ = _candidates(result, "boxes")
    for i, (conf, cls) in enumerate(zip(confs, classes, strict=True)):
        label = labels.get(result.names[cls])
        if label is None or not out.consider(float(conf), plan.threshold):
            continue
        points = outline(masks[i], _size(result))
        if points is None:
            continue  # a mask thinner than a pixel has no outline worth drawing
        out.regions.append(
            polygon(
                plan.control.name,
                plan.obj.name,
                points=points,
                image_size=_size(result),
                labels=[label],
                score=float(conf),
            )
        )
        out.scores.append(float(conf))
    return out


def brushes(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    """Each kept instance mask, scaled to the natural size, as brush RLE (one region per instance)."""
    out = ControlOutput()
    masks = _mask_stack(result)
    if masks is None:
        return out
    confs, classes, _ = _candidates(result, "boxes")
    size = _size(result)
    for i, (conf, cls) in enumerate(zip(confs, classes, strict=True)):
        label = labels.get(result.names[cls])
        if label is None or not out.consider(float(conf), plan.threshold):
            continue
        mask = natural_mask(masks, i, size)
        if not mask.any():
            continue
        out.regions.append(
            brush(plan.control.name, plan.obj.name, mask=mask, image_size=size, labels=[label], score=float(conf))
        )
        out.scores.append(float(conf))
    return out


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
    confs, classes, boxes = _candidates(result, "boxes")
    if not len(confs) or result.keypoints is None:
        return out
    size = _size(result)
    data = _numpy(result.keypoints.data)
    xyxy = _numpy(boxes.xyxy)
    width = plan.point_width(size[0])
    for n, (conf, cls) in enumerate(zip(confs, classes, strict=True)):
        if not out.consider(float(conf), plan.threshold):
            continue
        parent_id = None
        if parent is not None:
            box_label = parent[1].get(result.names[cls])
            if box_label is not None:
                x1, y1, x2, y2 = xyxy[n]
                box = rectangle(
                    parent[0].name,
                    plan.obj.name,
                    box=(x1, y1, x2 - x1, y2 - y1),
                    image_size=size,
                    labels=[box_label],
                    score=float(conf),
                )
                out.regions.append(box)
                parent_id = box["id"]
        kept = 0
        for index, label in sorted(points.items()):
            if index >= data.shape[1]:
                continue
            x, y = data[n, index, :2]
            point_conf = float(data[n, index, 2]) if data.shape[2] > 2 else float(conf)
            if point_conf < plan.point_threshold:
                continue
            extra = {"width": width} if width is not None else {}
            item = keypoint(
                plan.control.name,
                plan.obj.name,
                point=(x, y),
                image_size=size,
                labels=[label],
                score=point_conf,
                parent_id=parent_id,
                **extra,
            )
            if parent_id is None:
                item["meta"] = {"text": [f"instance {n + 1}"]}
            out.regions.append(item)
            kept += 1
        if kept or parent_id is not None:
            out.scores.append(float(conf))
    return out


def classification(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    """Choice probabilities summed over the model classes that map to each choice (``predicted_values``)."""
    out = ControlOutput()
    if result.probs is None:
        return out
    probs = _numpy(result.probs.data)
    by_label: dict[str, float] = {}
    for cls, p in enumerate(probs):
        label = labels.get(result.names[cls])
        if label is not None:
            by_label[label] = by_label.get(label, 0.0) + float(p)
    if not by_label:
        return out
    ranked = sorted(by_label.items(), key=lambda item: -item[1])
    candidates = ranked if plan.control.choice_multiple else ranked[:1]
    chosen = [(label, p) for label, p in candidates if out.consider(min(p, 1.0), plan.threshold)]
    if chosen:
        score = min(min(p, 1.0) for _, p in chosen)
        out.regions.append(
            choices(plan.control.name, plan.obj.name, choices=[label for label, _ in chosen], score=score)
        )
        out.scores.append(score)
    return out
