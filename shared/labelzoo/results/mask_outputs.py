"""A mask for one object → Label Studio regions on the controls that take masks there: brush RLE and/or polygons.

Which controls (:func:`mask_outputs`): the ``BrushLabels`` and ``PolygonLabels`` connected to the object
(the image a prompt was drawn on), without those marked ``model_skip``. Among them, those that have the
wanted label (the prompt's, say) get the mask with that label key (``alias`` respected); when none has it,
every one gets the mask with its first label, and a warning says why.

The regions (:func:`mask_regions`): a mask may have several disjoint parts. A brush region holds them all
in one RLE at the mask's size; a polygon holds one outline, so each part becomes its own polygon, largest
first (holes are not representable and are filled).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelzoo.errors import TaskError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag
from labelzoo.results.geometry import mask_to_polygons
from labelzoo.results.readers import label_key
from labelzoo.results.regions import brush, polygon

MASK_TAGS = ("BrushLabels", "PolygonLabels")

log = logging.getLogger("labelzoo.results")


@dataclass(frozen=True)
class MaskOutput:
    """A control that receives a mask, and the label key its regions carry (``None``: unlabelled)."""

    control: ControlTag
    label: str | None


def mask_outputs(
    config: LabelConfig, obj: ObjectTag, label: str | None, logger: logging.Logger | None = None
) -> list[MaskOutput]:
    """The controls on ``obj`` that receive a mask labelled ``label``, and the label each one gets.

    A :class:`TaskError` when the config has no ``BrushLabels`` or ``PolygonLabels`` for ``obj``.
    """
    controls = [c for c in config.controls_for(obj.name) if c.tag in MASK_TAGS and not c.model_skip]
    if not controls:
        raise TaskError(
            f'the label config has no <BrushLabels> or <PolygonLabels> with toName="{obj.name}" for the '
            f'mask; add e.g. <BrushLabels name="mask" toName="{obj.name}"> with the same labels as the prompt'
        )
    keys = {c.name: label_key(c, label) for c in controls} if label is not None else {}
    with_label = [MaskOutput(c, keys[c.name]) for c in controls if keys.get(c.name) is not None]
    if with_label:
        return with_label
    outputs = [MaskOutput(c, c.label_keys[0] if c.label_keys else label) for c in controls]
    (logger or log).warning(
        "label %r is in none of %s; the mask gets %s",
        label,
        ", ".join(f"{c.tag} {c.name!r}" for c in controls),
        ", ".join(f"{o.label!r} in {o.control.name!r}" for o in outputs),
    )
    return outputs


def mask_regions(
    output: MaskOutput, to_name: str, mask: np.ndarray, score: float | None, *, tolerance_px: float
) -> list[dict[str, Any]]:
    """The result items for one output: one brush region, or one polygon per part simplified to
    ``tolerance_px`` pixels (parts thinner than a pixel have none); ``[]`` for an empty mask.

    ``mask`` is (height, width) bool at the natural image size.
    """
    if not mask.any():
        return []
    labels = None if output.label is None else [output.label]
    control = output.control
    if control.tag == "BrushLabels":
        return [brush(control.name, to_name, mask=mask, labels=labels, score=score)]
    height, width = mask.shape
    return [
        polygon(control.name, to_name, points=outline, image_size=(width, height), labels=labels, score=score)
        for outline in mask_to_polygons(mask, tolerance_px=tolerance_px)  # largest part first
    ]
