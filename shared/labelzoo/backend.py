"""The contract a backend implements: load a model once, predict a batch, optionally learn.

A backend is a subclass of :class:`Backend` in ``backends/<name>/model.py`` (or any folder given to
``labelzoo serve``). It never sees HTTP, webhook payloads or download code: the server hands it parsed
tasks, a :class:`PredictContext` (label config, media resolver, parameters) and, for training, a
:class:`TrainingData` built from the annotations the store collected.

One instance holds one model version. The runtime creates an instance per version it serves (the base
model, and each project's fine-tuned version), calls :meth:`Backend.load` once in a background thread,
and keeps a few loaded instances in memory.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labelzoo.errors import BadRequest
from labelzoo.options import Options
from labelzoo.results.agreement import same_annotation
from labelzoo.scoremap import IDENTITY, ScoreMap
from labelzoo.thresholds import score_threshold

if TYPE_CHECKING:
    from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag
    from labelzoo.media import MediaResolver
    from labelzoo.settings import Settings


@dataclass(frozen=True)
class Target:
    """A (control tag, object tag) pair the backend can fill, e.g. ``Target("RectangleLabels", "Image")``."""

    control: str
    object: str

    def __str__(self) -> str:
        return f"<{self.control}> on <{self.object}>"


@dataclass(frozen=True)
class Task:
    """One Label Studio task: its id, its data (raw, URLs unresolved) and the whole payload."""

    id: int | None
    data: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "task") -> Task:
        if not isinstance(obj, dict):
            raise BadRequest(f"{where} must be a JSON object, got {type(obj).__name__}")
        data = obj.get("data")
        if not isinstance(data, dict):
            raise BadRequest(f"{where} has no 'data' object (got {type(data).__name__})")
        task_id = obj.get("id")
        if task_id is not None and (isinstance(task_id, bool) or not isinstance(task_id, int)):
            raise BadRequest(f"{where}.id must be an integer, got {task_id!r}")
        return cls(id=task_id, data=data, raw=obj)


@dataclass
class Prediction:
    """The prediction for one task: Label Studio result items and a task-level score.

    ``score`` drives Label Studio's uncertainty sampling and "Prediction score" column (lower = less
    sure): make it a real confidence. A failed task carries ``error`` instead of a result; the server
    leaves it out of what Label Studio stores, so the task is predicted again next time.
    """

    result: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None
    error: str | None = None

    @classmethod
    def failed(cls, message: str) -> Prediction:
        return cls(result=[], score=None, error=message)


@dataclass(frozen=True)
class PredictContext:
    """What a backend needs besides the tasks: the parsed label config, media access, parameters."""

    project: str
    config: LabelConfig
    media: MediaResolver
    settings: Settings
    model_version: str
    params: Mapping[str, Any] = field(default_factory=dict)  # the project's extra_params
    prompt: Mapping[str, Any] | None = None  # params.context of an interactive request
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("labelzoo.backend"))
    #: the map the core applies to the task scores (:mod:`labelzoo.scoremap`); the backend never needs it
    task_scores: ScoreMap = IDENTITY

    @property
    def interactive(self) -> bool:
        return self.prompt is not None

    def pairs(
        self, control_tags: str | Sequence[str], object_tags: str | Sequence[str]
    ) -> list[tuple[ControlTag, ObjectTag]]:
        """The (control, object) pairs to fill, without controls marked ``model_skip="true"``."""
        return [(c, o) for c, o in self.config.pairs(control_tags, object_tags) if not c.model_skip]


@dataclass(frozen=True)
class TrainingExample:
    """One annotation of a task: the one shape an annotation has from the webhook to :meth:`Backend.fit`.

    The webhook and export parsers build it, the store keeps it (``updated_at``, a canonical UTC ISO string,
    decides which of two deliveries is newer; cancelled ones are kept but never trained on), and the training
    process receives the task's latest usable annotation as one.
    """

    task: Task
    result: Sequence[Mapping[str, Any]]
    annotation_id: int | None = None
    updated_at: str = ""
    was_cancelled: bool = False
    ground_truth: bool = False

    @property
    def id(self) -> int | None:
        """The annotation's id (Label Studio's name for it)."""
        return self.annotation_id

    @property
    def task_id(self) -> int | None:
        return self.task.id

    @property
    def task_data(self) -> Mapping[str, Any]:
        return self.task.data

    def to_json(self) -> dict[str, Any]:
        return {
            "annotation_id": self.annotation_id,
            "task": {"id": self.task.id, "data": dict(self.task.data)},
            "result": list(self.result),
            "updated_at": self.updated_at,
            "was_cancelled": self.was_cancelled,
            "ground_truth": self.ground_truth,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TrainingExample:
        task = obj["task"]
        return cls(
            task=Task(id=task["id"], data=task["data"], raw=task),
            result=obj["result"],
            annotation_id=obj.get("annotation_id"),
            updated_at=obj.get("updated_at", ""),
            was_cancelled=bool(obj.get("was_cancelled", False)),
            ground_truth=bool(obj.get("ground_truth", False)),
        )


@dataclass(frozen=True)
class TrainingData:
    project: str
    config: LabelConfig
    examples: Sequence[TrainingExample]
    reason: str = "annotations"  # "annotations" (N new ones arrived) or "start_training"


@dataclass
class FitContext:
    """Where and how to train: write new weights to ``output_dir``; report progress; honour cancel."""

    output_dir: Path
    media: MediaResolver
    settings: Settings
    report: Callable[..., None] = lambda *args, **kwargs: None  # report(progress 0..1, message, **metrics)
    cancelled: Callable[[], bool] = lambda: False
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("labelzoo.training"))

    def warn(self, problems: Iterable[object]) -> None:
        """Log each problem met reading the annotations (a skipped span, an unreadable file) for the job log."""
        for problem in problems:
            self.logger.warning("%s", problem)


@dataclass(frozen=True)
class FitResult:
    """``promote`` says whether the new weights in ``output_dir`` should replace the current version.

    ``held_out``: the task ids of the examples given to :meth:`Backend.fit` that no model of the new version
    trained on (the held-out split it validated on). The version records the other examples' tasks as the
    ones it learnt from (``versions.trained_on``, with what its parent learnt from), so that precision can be
    measured later on human annotations it never saw. Empty (the default) says the version learnt from every
    example it was given: the safe assumption. Name only tasks that no new model trained on.
    """

    promote: bool
    metrics: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    held_out: Collection[Any] = ()


class Backend(ABC):
    """Subclass this: set ``targets``, implement :meth:`load` and :meth:`predict`, optionally :meth:`fit`."""

    #: what the backend labels; the server predicts every control of the config that matches one
    targets: ClassVar[tuple[Target, ...]] = ()
    #: answers interactive prompts (``params.context``): SAM-style clicks and boxes
    interactive: ClassVar[bool] = False
    #: tasks per :meth:`predict` call; the server splits larger /predict requests into chunks
    batch_size: ClassVar[int] = 32
    #: one line for ``labelzoo backends``
    description: ClassVar[str] = ""
    #: the environment variables the backend reads (:mod:`labelzoo.options`), checked when an instance is made;
    #: on an instance, ``self.options`` holds their values (``self.options.yolo_batch``)
    options = Options()
    #: the score a prediction needs when neither its control's ``model_score_threshold`` nor
    #: ``MODEL_SCORE_THRESHOLD`` says (:mod:`labelzoo.thresholds`); None: the backend does not filter by score
    default_score_threshold: ClassVar[float | None] = None
    #: the torch device types the backend runs on (:mod:`labelzoo.devices`); () when it uses no torch device
    device_types: ClassVar[tuple[str, ...]] = ()
    #: the ``model_*`` attributes of a control that the backend reads (``model_skip`` is the core's); any other
    #: on a control it fills is named in ``/setup``'s warnings (:meth:`ignored_attribute`)
    control_attributes: ClassVar[tuple[str, ...]] = ()

    #: the task-score map stored with this instance's version (:mod:`labelzoo.scoremap`), read when a trained
    #: version is loaded; the identity for the base model
    task_scores: ScoreMap = IDENTITY

    def __init__(self, settings: Settings, weights: Path | None = None) -> None:
        self.settings = settings
        self.weights = weights  # a trained version's folder, or None for the base model
        self.options = type(self).options.read(settings.env)  # at start-up: a bad value stops the server

    def score_threshold(self, control: ControlTag) -> float:
        """The score a prediction for ``control`` needs to be shown (:mod:`labelzoo.thresholds`)."""
        return score_threshold(control, self.default_score_threshold or 0.0, self.settings)

    def load(self) -> None:  # noqa: B027 - optional hook: a backend without weights has nothing to load
        """Load the model (heavy work goes here, never in ``__init__``). Runs once, off the request path."""

    @abstractmethod
    def base_version(self) -> str:
        """A short, stable name for the base model, e.g. ``"yolo11n"``: the version of untrained projects."""

    def notices(self) -> Sequence[str]:
        """What a user must know about the loaded model, e.g. that it predicts nothing until trained.

        Called once the model is loaded; the server logs each notice, shows them in ``/health`` (``model.notices``)
        and puts them in ``/setup``'s ``warnings``, which Label Studio shows when the backend is connected.
        """
        return ()

    def health(self) -> Mapping[str, Any]:
        """Live facts about the loaded model for ``/health``'s ``model`` section, read on every ``/health`` once
        the model is loaded (keep it cheap), e.g. which inference engine serves each model while a faster one is
        prepared in the background (:mod:`labelzoo.acceleration`). A ``notices`` entry (a list of strings) joins
        ``model.notices``: what the user must know that only became true after loading; the rest shows under
        ``model.details``. Log such a notice when it arises: the server does not."""
        return {}

    @classmethod
    def ignored_attribute(cls, control: ControlTag, name: str) -> str | None:
        """Why attribute ``name`` (lowercase, ``model_*`` or ``score_threshold``) changes nothing on ``control``,
        or None when the backend honours it. Override to refuse a listed attribute on some controls, with a
        reason the user can act on (:mod:`labelzoo.labelconfig.attributes`)."""
        if name in cls.control_attributes:
            return None
        return f"this backend does not read it (it reads {', '.join(cls.control_attributes) or 'no model_* attribute'})"

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        """The class names the model can emit for this control, for the label mismatch report.

        ``None`` means labels do not apply (a TextArea) or come from training (a blank model).
        """
        return None

    @abstractmethod
    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> Sequence[Prediction]:
        """Predict every task, in order: exactly one :class:`Prediction` per task."""

    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        """Train from ``data`` starting from this instance's model; save to ``ctx.output_dir``."""
        raise NotImplementedError(f"{type(self).__name__} does not learn from annotations")

    def agrees(self, shown: Sequence[Mapping[str, Any]], human: Sequence[Mapping[str, Any]]) -> bool:
        """Whether a shown pre-label is right: it equals the human annotation of the task (both restricted to
        the controls this backend fills). Auto-labelling measures precision with it. The default is
        :func:`labelzoo.results.same_annotation`; override it to document a looser or stricter notion."""
        return same_annotation(shown, human)

    @classmethod
    def can_fit(cls) -> bool:
        return cls.fit is not Backend.fit

    @classmethod
    def fills(cls, config: LabelConfig) -> list[tuple[ControlTag, ObjectTag]]:
        """The (control, object) pairs of ``config`` this backend predicts: those it serves, less the controls
        marked ``model_skip="true"``."""
        return [(control, obj) for control in config.controls.values() for obj in control.objects
                if cls.serves(control.tag, obj.tag) and not control.model_skip]

    @classmethod
    def serves(cls, control_tag: str, object_tag: str) -> bool:
        return any(
            t.control.lower() == control_tag.lower() and t.object.lower() == object_tag.lower()
            for t in cls.targets
        )
