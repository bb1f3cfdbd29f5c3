"""What an image's controls get from one reading: boxes with their text, and the image's whole text.

Each ``Rectangle`` / ``RectangleLabels`` gets one region per word or line (its ``model_granularity``, else
``OCR_GRANULARITY``) scoring at least its threshold, labelled with the label fed by ``Text`` (else its first
label), followed by the text in every per-region ``TextArea`` that takes such regions. A whole-image
``TextArea`` gets the lines of the image. Every score is Tesseract's confidence / 100.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, ObjectControls, label_or_first
from labelzoo.results import rectangle, textarea, with_region_text
from labelzoo.scores import probability

from .options import GRANULARITIES
from .tesseract import Piece, Reading

REGION_TAGS = ("Rectangle", "RectangleLabels")
TEXT_LABEL = "Text"  # the label a RectangleLabels control's text regions get, when it has one of that name

Items = list[dict[str, Any]]


@dataclass(frozen=True)
class RegionPlan:
    control: ControlTag
    labels: list[str] | None
    """``[label]`` for a RectangleLabels, None for a Rectangle."""
    texts: tuple[str, ...]
    """The per-region TextAreas that hold each region's text."""
    granularity: str
    threshold: float


def score_of(confidence: float) -> float:
    """Tesseract's confidence (0..100) as a score in [0, 1]."""
    return probability(confidence / 100.0)


def granularity(control: ControlTag, default: str) -> str:
    raw = control.attr("model_granularity")
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in GRANULARITIES:
        raise LabelConfigError(
            f'<{control.tag} name="{control.name}"> has model_granularity="{raw}"; use "word" or "line"'
        )
    return value


def region_labels(control: ControlTag) -> list[str] | None:
    """The labels of a text region of ``control``; a :class:`LabelConfigError` for a RectangleLabels without any."""
    if control.tag.lower() != "rectanglelabels":
        return None
    label = label_or_first(control, TEXT_LABEL)
    if label is None:
        raise LabelConfigError(f'<RectangleLabels name="{control.name}"> has no label to give text regions')
    return [label]


def plan_regions(
    group: ObjectControls, default_granularity: str, threshold: Callable[[ControlTag], float]
) -> list[RegionPlan]:
    plans = []
    for control in group.of(*REGION_TAGS):
        labels = region_labels(control)
        areas = group.region_texts_for(control, labels[0] if labels else "")
        texts = tuple(area.name for area in areas)
        plans.append(RegionPlan(control, labels, texts, granularity(control, default_granularity), threshold(control)))
    return plans


def page_items(
    group: ObjectControls, plans: list[RegionPlan], reading: Reading, size: tuple[int, int],
    threshold: Callable[[ControlTag], float],
) -> Iterator[tuple[Items, float]]:
    """Each region (with its texts) and each whole-image text of one image, with its score."""
    for plan in plans:
        for piece in reading.pieces[plan.granularity]:
            score = score_of(piece.confidence)
            if score >= plan.threshold:
                yield _piece_items(plan, group.obj.name, piece, size, score), score
    text, score = reading.text, score_of(reading.confidence)
    for control in group.texts:
        if text and score >= threshold(control):
            yield [textarea(control.name, group.obj.name, text=text, score=score)], score


def _piece_items(plan: RegionPlan, to_name: str, piece: Piece, size: tuple[int, int], score: float) -> Items:
    left, top, right, bottom = piece.box
    region = rectangle(plan.control.name, to_name, box=(left, top, right - left, bottom - top), image_size=size,
                       labels=plan.labels, score=score)
    return with_region_text(region, plan.texts, text=piece.text, score=score)
