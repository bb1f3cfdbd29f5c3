"""``RectangleLabels model_obb="true"``: rotated boxes from an oriented-box (OBB) model.

Predicting: OBB ``xywhr`` (centre, size, radians clockwise on screen) becomes a rectangle rotated around
its top-left corner, as Label Studio draws it. Training: ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four
corners. Held-out score: mAP of the boxes matched by Ultralytics' probabilistic IoU of rotated boxes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from labelzoo.labelconfig import ControlTag, LabelMap
from labelzoo.results import read_rectangles, rotated_rectangle

from ..dataset import Annotation, fmt, normalised, with_classes
from ..kind import ControlPlan, InstanceKind
from ..outputs import ControlOutput, image_size, kept, values

if TYPE_CHECKING:
    from ultralytics.engine.results import Results


def oriented_rectangles(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    out = ControlOutput()
    size = image_size(result)
    xywhr = values(result, "obb", "xywhr")
    for i, label, conf in kept(result, labels, plan.threshold, out, "obb"):
        cx, cy, w, h, radians = xywhr[i]
        region = rotated_rectangle(
            plan.control.name,
            plan.obj.name,
            center=(cx, cy),
            size=(w, h),
            angle_deg=math.degrees(radians),
            image_size=size,
            labels=[label],
            score=conf,
        )
        out.add(region, conf)
    return out


def corner_lines(
    result: Annotation,
    classes: dict[str, int],
    control: ControlTag,
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """``cls x1 y1 … x4 y4`` for each of the control's rectangles in one annotation, normalised to 0..1."""
    lines: list[str] = []
    for cls, rect in with_classes(read_rectangles(result, control, to_name), classes, control):
        lines.append(f"{cls} {fmt(normalised(rect.corners(size), size).ravel())}")
    return lines


def rotated_ious(rows: list[np.ndarray], result: Results, keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    corners = np.array([r[1:9].reshape(4, 2) * np.asarray(size, np.float64) for r in rows]).reshape(-1, 4, 2)
    truth = xyxyxyxy2xywhr(corners) if len(corners) else np.zeros((0, 5))
    found = values(result, "obb", "xywhr")[keep] if len(keep) else np.zeros((0, 5))
    return batch_probiou(torch.tensor(truth).float(), torch.tensor(found).float()).numpy()


class Obb(InstanceKind):
    name = "obb"
    attributes = ("model_iou", "model_obb")
    tags = ("RectangleLabels",)
    controls_doc = '`RectangleLabels model_obb="true"`'
    default_model = "yolo11n-obb.pt"
    served_by = ("obb",)
    result_attribute = "obb"
    metric_suffix = "B"

    regions = staticmethod(oriented_rectangles)
    label_lines = staticmethod(corner_lines)
    ious = staticmethod(rotated_ious)

    def fills(self, control: ControlTag) -> bool:
        return super().fills(control) and control.bool_attr("model_obb", False)


OBB = Obb()
