"""Which model fills which control, at what threshold: the label config read into a plan.

Each served control on an ``<Image>`` gets the kind that fills it (:func:`.kinds.kind_of`; the table is in
:mod:`.kinds`), the model for that kind (``model_path`` on the control, else the configured one), its score
threshold, the NMS overlap (``model_iou``) and whether training touches it (``model_trainable``).

Upstream's ``model_conf`` is Ultralytics' ``conf``: detections below it are dropped before NMS. Since NMS
keeps a box unless a more confident one overlaps it, dropping the boxes below a threshold before NMS or
after it leaves the same boxes, so ``model_conf`` acts as the control's threshold; with
``model_score_threshold`` as well, the higher of the two holds.
"""

from __future__ import annotations

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag
from labelzoo.labelconfig.attributes import THRESHOLD_ATTRIBUTES
from labelzoo.settings import Settings
from labelzoo.thresholds import score_threshold

from .config import YoloOptions
from .kind import ControlPlan
from .kinds import CLASSIFY, CONTROL_TAGS, DETECT, kind_of

#: the kind whose model fills a control on a <Video>: tracking follows a detector's boxes, a timeline classifies
#: each frame
VIDEO_KINDS = {"videorectangle": DETECT, "timelinelabels": CLASSIFY}
#: the backend's default score threshold (labelzoo.thresholds): Ultralytics' own default confidence
DEFAULT_THRESHOLD = 0.25
#: the control attributes every kind reads (the kinds add their own: :attr:`.kind.Kind.attributes`)
PLAN_ATTRIBUTES = (*THRESHOLD_ATTRIBUTES, "model_conf", "model_path", "model_trainable")


def plan_controls(config: LabelConfig, options: YoloOptions, settings: Settings) -> list[ControlPlan]:
    """Every served control of the config, in document order, minus those with ``model_skip="true"``."""
    plans = (plan_control(control, obj, options, settings) for control, obj in config.pairs(CONTROL_TAGS, "Image"))
    return [plan for plan in plans if plan is not None]


def training_plans(config: LabelConfig, options: YoloOptions, settings: Settings) -> list[ControlPlan]:
    """The controls a training job may train: the image controls, then each VideoRectangle (a detector trained
    on frames of its videos) and TimelineLabels (a classifier trained on the frames of its ranges)."""
    video = (plan_control(c, o, options, settings) for c, o in config.pairs(("VideoRectangle", "TimelineLabels"),
                                                                            "Video"))  # fmt: skip
    return [*plan_controls(config, options, settings), *(plan for plan in video if plan is not None)]


def plan_control(control: ControlTag, obj: ObjectTag, options: YoloOptions, settings: Settings) -> ControlPlan | None:
    """The plan for one control (None with ``model_skip``); a LabelConfigError says what to fix."""
    if control.model_skip:
        return None
    kind = VIDEO_KINDS.get(control.tag.lower()) or kind_of(control)
    custom_path = control.model_path
    if custom_path and not settings.allow_custom_model_path:
        raise LabelConfigError(
            f'<{control.tag} name="{control.name}"> has model_path="{custom_path}", but custom model paths '
            "are off: set ALLOW_CUSTOM_MODEL_PATH=true on the backend, or remove model_path to use "
            f"{options.models[kind.name]}"
        )
    return ControlPlan(
        control=control,
        obj=obj,
        kind=kind,
        model_name=custom_path or options.models[kind.name],
        custom=bool(custom_path),
        threshold=plan_threshold(control, settings),
        iou=unit_attr(control, "model_iou"),
        trainable=control.bool_attr("model_trainable", True),
    )


def plan_threshold(control: ControlTag, settings: Settings) -> float:
    """The control's score threshold with upstream's ``model_conf`` (see the module docstring)."""
    conf = unit_attr(control, "model_conf")
    if conf is None:
        return score_threshold(control, DEFAULT_THRESHOLD, settings)
    if control.score_threshold is None:
        return conf
    return max(conf, score_threshold(control, DEFAULT_THRESHOLD, settings))


def unit_attr(control: ControlTag, name: str) -> float | None:
    """Attribute ``name`` as a number in 0..1, None when absent; a LabelConfigError names a bad value."""
    value = control.float_attr(name)
    if value is not None and not 0.0 <= value <= 1.0:
        raise LabelConfigError(f'<{control.tag} name="{control.name}"> has {name}="{control.attr(name)}"; '
                               "use a value in 0..1")
    return value
