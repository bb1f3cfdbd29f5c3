"""``RectangleLabels``: axis-aligned boxes from any model that finds boxes.

Predicting: each kept box, in pixels, becomes a rectangle in percent of the natural image size. Training:
``cls cx cy w h`` per rectangle (a rotated one becomes the axis-aligned box around it). Held-out score:
mAP of the boxes matched by IoU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labelzoo.labelconfig import ControlTag, LabelMap
from labelzoo.metrics import box_iou
from labelzoo.results import read_rectangles, rectangle

from ..dataset import Annotation, box_line, with_classes
from ..kind import ControlPlan, InstanceKind
from ..outputs import ControlOutput, image_size, kept, values

if TYPE_CHECKING:
    from ultralytics.engine.results import Results


def rectangles(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    out = ControlOutput()
    size = image_size(result)
    xyxy = values(result, "boxes", "xyxy")
    for i, label, conf in kept(result, labels, plan.threshold, out):
        x1, y1, x2, y2 = xyxy[i]
        box = (x1, y1, x2 - x1, y2 - y1)
        out.add(rectangle(plan.control.name, plan.obj.name, box=box, image_size=size, labels=[label], score=conf), conf)
    return out


def box_lines(
    result: Annotation,
    classes: dict[str, int],
    control: ControlTag,
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """``cls cx cy w h`` for each of the control's rectangles in one annotation, normalised to 0..1."""
    lines: list[str] = []
    for cls, rect in with_classes(read_rectangles(result, control, to_name), classes, control):
        line = box_line(cls, rect.corners(size), size)
        if line:
            lines.append(line)
    return lines


def box_ious(rows: list[np.ndarray], result: Results, keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    scale = np.tile(np.asarray(size, np.float64), 2)
    truth = np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for _, cx, cy, w, h in rows]).reshape(-1, 4)
    return box_iou(truth * scale, values(result, "boxes", "xyxy")[keep])


class Detect(InstanceKind):
    name = "detect"
    attributes = ("model_iou", "model_obb")
    tags = ("RectangleLabels",)
    controls_doc = "`RectangleLabels`"
    default_model = "yolo11n.pt"
    served_by = ("detect", "segment", "pose")  # every model that finds boxes can fill a RectangleLabels
    metric_suffix = "B"

    regions = staticmethod(rectangles)
    label_lines = staticmethod(box_lines)
    ious = staticmethod(box_ious)

    def fills(self, control: ControlTag) -> bool:
        return super().fills(control) and not control.bool_attr("model_obb", False)


DETECT = Detect()
