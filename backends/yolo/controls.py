"""Which model fills which control, at what threshold: the label config read into a plan.

=====================  ==================  ============================================
control on ``<Image>``  kind (YOLO task)    result
=====================  ==================  ============================================
RectangleLabels         detect              axis-aligned boxes
RectangleLabels         obb                 with ``model_obb="true"``: rotated boxes
PolygonLabels           segment             the largest outline of each instance mask
BrushLabels             segment             each instance mask as RLE, at the natural size
KeyPointLabels          pose                each ``<Label model_index="i">`` takes keypoint i
Choices                 classify            the most likely choice (several if ``choice="multiple"``)
=====================  ==================  ============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag
from labelzoo.settings import Settings
from labelzoo.thresholds import score_threshold

from .options import YoloOptions

CONTROL_KINDS = {
    "rectanglelabels": "detect",
    "polygonlabels": "segment",
    "brushlabels": "segment",
    "keypointlabels": "pose",
    "choices": "classify",
}
#: the backend's default score threshold (labelzoo.thresholds): Ultralytics' own default confidence
DEFAULT_THRESHOLD = 0.25
#: keypoints below this confidence are left out (Ultralytics itself hides them below 0.5)
DEFAULT_POINT_THRESHOLD = 0.5


def kind_of(control: ControlTag) -> str:
    kind = CONTROL_KINDS[control.tag.lower()]
    if kind == "detect" and control.bool_attr("model_obb", False):
        return "obb"
    return kind


@dataclass(frozen=True)
class ControlPlan:
    """One control to fill: its object, the kind of model, the model's name and the thresholds."""

    control: ControlTag
    obj: ObjectTag
    kind: str
    model_name: str  # model_path from the config, or the default for the kind
    custom: bool  # True when model_path came from the label config
    threshold: float  # model_score_threshold, else MODEL_SCORE_THRESHOLD, else DEFAULT_THRESHOLD

    @property
    def where(self) -> str:
        return f"<{self.control.tag} name={self.control.name!r}>"

    @property
    def candidate_floor(self) -> float:
        """Predictions are asked down to a quarter of the threshold: the near misses give an empty task its score."""
        return self.threshold / 4

    @property
    def point_threshold(self) -> float:
        value = self.control.float_attr("model_point_threshold", DEFAULT_POINT_THRESHOLD)
        return DEFAULT_POINT_THRESHOLD if value is None else value

    def point_width(self, image_width: int) -> float | None:
        """``model_point_size`` (pixels, as upstream) as percent of the image width; None = the default."""
        size = self.control.float_attr("model_point_size")
        return None if size is None or size <= 0 else size * 100.0 / image_width


def plan_controls(config: LabelConfig, options: YoloOptions, settings: Settings) -> list[ControlPlan]:
    """Every served control of the config, in document order, minus those with ``model_skip="true"``."""
    plans = (
        plan_control(control, obj, options, settings) for control, obj in config.pairs(tuple(CONTROL_KINDS), "Image")
    )
    return [plan for plan in plans if plan is not None]


def plan_control(control: ControlTag, obj: ObjectTag, options: YoloOptions, settings: Settings) -> ControlPlan | None:
    """The plan for one control (None with ``model_skip``); a LabelConfigError says what to fix."""
    if control.model_skip:
        return None
    kind = kind_of(control)
    custom_path = control.model_path
    if custom_path and not settings.allow_custom_model_path:
        raise LabelConfigError(
            f'<{control.tag} name="{control.name}"> has model_path="{custom_path}", but custom model paths '
            "are off: set ALLOW_CUSTOM_MODEL_PATH=true on the backend, or remove model_path to use "
            f"{options.models[kind]}"
        )
    return ControlPlan(
        control=control,
        obj=obj,
        kind=kind,
        model_name=custom_path or options.models[kind],
        custom=bool(custom_path),
        threshold=score_threshold(control, DEFAULT_THRESHOLD, settings),
    )


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
