"""A mask → Label Studio regions: brush RLE and/or polygons, for the controls on the prompt's image.

Which controls: the ``BrushLabels`` and ``PolygonLabels`` connected to the image the prompt was drawn
on. Among them, those that have the prompt's label get the mask with that label; when none has it,
every one gets the mask with its first label (and a warning says why).

A mask may have several disjoint parts. A brush region holds them all in one RLE; a polygon holds one
outline, so each part becomes its own polygon (holes are not representable and are filled).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelzoo import TaskError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag
from labelzoo.results import brush, label_key, mask_to_polygons, polygon

OUTPUT_TAGS = ("BrushLabels", "PolygonLabels")


@dataclass(frozen=True)
class Output:
    control: ControlTag
    label: str | None


def choose_outputs(config: LabelConfig, obj: ObjectTag, label: str | None, log: logging.Logger) -> list[Output]:
    """The controls (and the label each one gets) that receive the mask drawn on ``obj``."""
    controls = [
        control for control in config.controls_for(obj.name) if control.tag in OUTPUT_TAGS and not control.model_skip
    ]
    if not controls:
        raise TaskError(
            f'the label config has no <BrushLabels> or <PolygonLabels> with toName="{obj.name}" for SAM\'s '
            f'mask; add e.g. <BrushLabels name="mask" toName="{obj.name}"> with the same labels as the prompt'
        )
    keys = {c.name: label_key(c, label) for c in controls} if label is not None else {}
    with_label = [Output(c, keys[c.name]) for c in controls if keys.get(c.name) is not None]
    if with_label:
        return with_label
    outputs = [Output(c, c.label_keys[0] if c.label_keys else label) for c in controls]
    log.warning(
        "prompt label %r is in none of %s; the mask gets %s",
        label,
        ", ".join(f"{c.tag} {c.name!r}" for c in controls),
        ", ".join(f"{o.label!r} in {o.control.name!r}" for o in outputs),
    )
    return outputs


def mask_regions(
    output: Output, to_name: str, mask: np.ndarray, score: float, *, tolerance_px: float
) -> list[dict[str, Any]]:
    """The result items for one output control: one brush region, or one polygon per part."""
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
