"""``PolygonLabels`` and ``BrushLabels``: instance masks from a segmentation model.

Predicting: a polygon is the largest outline of an instance's mask, traced at the model's mask resolution
and simplified; a brush region is the mask itself, scaled to the natural image size, as RLE (one region per
instance). Training: ``cls x1 y1 x2 y2 ...`` per instance: polygons as drawn, brush masks traced into outer
outlines through their boundary pixels' centres (which Ultralytics' ``polygon2mask``, truncating, fills
back to the same pixels). Held-out score: mAP of the instances matched by mask IoU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from labelzoo.labelconfig import ControlTag, LabelConfig, LabelMap
from labelzoo.metrics import mask_iou
from labelzoo.results import brush, mask_to_polygons, polygon, read_brushes, read_polygons

from ..dataset import Annotation, Names, fmt, normalised, with_classes
from ..kind import ControlPlan, Converter, InstanceKind, Warn
from ..outputs import ControlOutput, image_size, kept, numpy

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

    from ..weights import YoloModel

MIN_CONTOUR_AREA = 4.0  # pixels: brush specks smaller than this are not instances
MASK_SIDE = 320  # held-out masks are compared at most this large (longer side), to bound memory


def _is_polygon(control: ControlTag) -> bool:
    return control.tag.lower() == "polygonlabels"


# --- predicting ----------------------------------------------------------------------------------------------


def _mask_stack(result: Results) -> np.ndarray | None:
    """Instance masks as the model produced them: (N, h, w) floats at its input size (letterboxed)."""
    if result.masks is None or len(result.masks) == 0:
        return None
    return numpy(result.masks.data)


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
    size = image_size(result)
    for i, label, conf in kept(result, labels, plan.threshold, out):
        points = outline(masks[i], size)
        if points is None:
            continue  # a mask thinner than a pixel has no outline worth drawing
        region = polygon(plan.control.name, plan.obj.name, points=points, image_size=size, labels=[label], score=conf)
        out.add(region, conf)
    return out


def brushes(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    """Each kept instance mask, scaled to the natural size, as brush RLE (one region per instance)."""
    out = ControlOutput()
    masks = _mask_stack(result)
    if masks is None:
        return out
    size = image_size(result)
    for i, label, conf in kept(result, labels, plan.threshold, out):
        mask = natural_mask(masks, i, size)
        if mask.any():
            region = brush(plan.control.name, plan.obj.name, mask=mask, image_size=size, labels=[label], score=conf)
            out.add(region, conf)
    return out


# --- learning ------------------------------------------------------------------------------------------------


def polygon_lines(
    result: Annotation,
    classes: dict[str, int],
    control: ControlTag,
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """``cls x1 y1 x2 y2 ...`` for each of the control's polygons in one annotation, as drawn."""
    lines: list[str] = []
    for cls, shape in with_classes(read_polygons(result, control, to_name), classes, control):
        if len(shape.points) >= 3:
            lines.append(f"{cls} {fmt(np.clip(shape.points / 100.0, 0.0, 1.0).ravel())}")
    return lines


def brush_lines(
    result: Annotation,
    classes: dict[str, int],
    control: ControlTag,
    size: tuple[int, int],
    *,
    to_name: str | None = None,
) -> list[str]:
    """One ``cls x1 y1 x2 y2 ...`` line for each blob of each of the control's brush masks in one annotation."""
    lines: list[str] = []
    for cls, stroke in with_classes(read_brushes(result, control, to_name, image_size=size), classes, control):
        for points in mask_to_polygons(stroke.resized(size), min_area_px=MIN_CONTOUR_AREA):
            lines.append(f"{cls} {fmt(normalised(points, size).ravel())}")
    return lines


def mask_ious(rows: list[np.ndarray], result: Results, keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mask IoU at most :data:`MASK_SIDE` pixels large: the outlines filled, the predicted masks scaled down."""
    factor = min(1.0, MASK_SIDE / max(size))
    small = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
    truth = np.zeros((len(rows), small[1], small[0]), np.uint8)
    for i, row in enumerate(rows):
        canvas = np.zeros((small[1], small[0]), np.uint8)
        # the pixel each vertex lies in (pixel i covers [i, i + 1)): outlines through pixel centres fill back
        points = np.floor(row[1:].reshape(-1, 2) * np.array(small)).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
        truth[i] = canvas
    masks, chosen = _mask_stack(result), np.flatnonzero(keep)
    found = np.zeros((len(chosen), small[1], small[0]), np.uint8)
    for j, i in enumerate(chosen if masks is not None else ()):
        full = natural_mask(masks, int(i), size).astype(np.uint8)
        found[j] = cv2.resize(full, small, interpolation=cv2.INTER_NEAREST)
    return mask_iou(truth, found)


class Segment(InstanceKind):
    name = "segment"
    tags = ("PolygonLabels", "BrushLabels")
    controls_doc = "`PolygonLabels` and `BrushLabels`"
    default_model = "yolo11n-seg.pt"
    served_by = ("segment",)
    metric_suffix = "M"
    ious = staticmethod(mask_ious)

    def converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig, warn: Warn) -> Converter:
        labels = self.label_map(plan, model, warn)
        regions = polygons if _is_polygon(plan.control) else brushes
        return lambda result: regions(result, plan, labels)

    def lines(self, plan: ControlPlan, result: Annotation, names: Names, size: tuple[int, int]) -> list[str]:
        lines = polygon_lines if _is_polygon(plan.control) else brush_lines
        return lines(result, names.classes, plan.control, size, to_name=plan.obj.name)


SEGMENT = Segment()
