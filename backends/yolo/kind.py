"""The recipe every kind of control follows: :class:`Kind`, written out once per kind in :mod:`.kinds`.

A kind is an Ultralytics task (detect, obb, segment, pose, classify) as a label config asks for it. Its
recipe holds everything the backend does differently for it: which controls it fills, which models serve
it, how a model's result becomes regions, how annotations become training labels, how a model is scored
on the held-out images and which of those metrics decides promotion. The backend's other modules work on
a plan's kind through this interface and never ask which kind it is.

:class:`InstanceKind` is what the four kinds that find instances (boxes, rotated boxes, masks, keypoint
sets) share: label files with ``data.yaml``, and COCO-style mAP on the held-out images
(:func:`.evaluate.mean_average_precision`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, LabelConfig, LabelMap, ObjectTag, build_label_map

from .dataset import Annotation, Dataset, Names, Sample, write_label_files
from .evaluate import Compare, mean_average_precision
from .outputs import ControlOutput

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

    from .config import YoloOptions
    from .weights import YoloModel

Converter = Callable[["Results"], ControlOutput]


class LabelLines(Protocol):
    """The label lines of the control's regions in one annotation, on an image of natural ``size``; ``classes``
    numbers the labels."""

    def __call__(self, result: Annotation, classes: dict[str, int], control: ControlTag, size: tuple[int, int], *,
                 to_name: str | None = None) -> list[str]: ...  # fmt: skip


Warn = Callable[[str], None]  # says once why a control will get no predictions


class Kind(ABC):
    """One kind of control; see the module docstring. Instances are stateless: one per kind, in :mod:`.kinds`."""

    name: ClassVar[str]  # the Ultralytics task; also its word in YOLO_MODEL_<NAME>, YOLO_PRELOAD and yolo.json
    tags: ClassVar[tuple[str, ...]]  # the control tags on an <Image> it may fill
    controls_doc: ClassVar[str]  # those controls as the settings table names them
    default_model: ClassVar[str]
    served_by: ClassVar[tuple[str, ...]]  # the Ultralytics tasks whose models' results it reads
    metric: ClassVar[str]  # the held-out metric that decides promotion (higher is better)
    train_arguments: ClassVar[Mapping[str, Any]] = {}  # Ultralytics train() arguments of its own
    attributes: ClassVar[tuple[str, ...]] = ()  # control attributes of its own, besides the plan's (.plans)

    def __repr__(self) -> str:
        return f"<YOLO kind {self.name}>"

    def fills(self, control: ControlTag) -> bool:
        """Whether this kind fills ``control`` (its tag is one of :attr:`tags`; some kinds ask more)."""
        return control.tag.lower() in {tag.lower() for tag in self.tags}

    # --- predicting ------------------------------------------------------------------------------------------

    def check_model(self, model: YoloModel, where: str) -> None:
        """A LabelConfigError unless ``model`` gives results this kind can read."""
        if model.task not in self.served_by:
            wanted = " or ".join(self.served_by)
            raise LabelConfigError(
                f"{where}: {model.source} is a {model.task} model; this control needs a {wanted} model"
            )

    def model_labels(self, control: ControlTag, model: YoloModel) -> list[str]:
        """What the model can put into the control, for the label report of ``/setup``: its class names."""
        return list(model.names.values())

    @abstractmethod
    def converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig, warn: Warn) -> Converter:
        """The function from one image's result to the control's output; ``warn`` says why it will be empty."""

    @staticmethod
    def label_map(plan: ControlPlan, model: YoloModel, warn: Warn) -> LabelMap:
        """The model's classes mapped onto the control's labels; ``warn`` is told when none maps."""
        labels = build_label_map(plan.control, model.names)
        if labels.is_empty:
            warn(f"no class of the model {model.source} matches any of its labels, so it gets no predictions. "
                 f"{labels.report()}")  # fmt: skip
        return labels

    # --- learning --------------------------------------------------------------------------------------------

    def names(self, control: ControlTag, current: YoloModel | None) -> Names:
        """The dataset's numbering before any annotation is read: the control's labels are the classes."""
        return Names({key: i for i, key in enumerate(control.label_keys)})

    def usable(self, plan: ControlPlan, result: Annotation) -> bool:
        """Whether an annotation can train this control at all (else its image is not even fetched)."""
        return True

    @abstractmethod
    def label(self, sample: Sample, plan: ControlPlan, result: Annotation, names: Names) -> None:
        """Give ``sample`` the labels of one annotation (``result``), numbering new classes in ``names``."""

    def refusal(self, samples: list[Sample]) -> str | None:
        """Why these samples, enough in number, still cannot train the kind; None when they can."""
        return None

    @abstractmethod
    def write(self, root: Path, names: Names, train: list[Sample], val: list[Sample]) -> str:
        """Write the split under ``root`` as Ultralytics trains from it; what ``train(data=...)`` takes."""

    def after_training(self, checkpoint: Path, dataset: Dataset) -> None:  # noqa: B027 - most kinds need nothing
        """Finish a trained checkpoint before it is evaluated and kept."""

    @abstractmethod
    def progress(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """The headline numbers of Ultralytics' validation metrics after an epoch, under short names."""

    @abstractmethod
    def evaluate(self, model: YoloModel, plan: ControlPlan, dataset: Dataset, options: YoloOptions) -> dict[str, float]:
        """The model's metrics on ``dataset.val`` through the control's label mapping; higher is better."""


class InstanceKind(Kind):
    """A kind that finds instances: label files, and mAP50 / mAP50-95 of the instances matched by IoU.

    Most such kinds are three functions, named by the class attributes :attr:`regions` (one image's result →
    the control's output), :attr:`label_lines` (one annotation → its label lines) and :attr:`ious` (held-out
    instances against the model's); a kind that needs more than the control for them (pose: the model's
    keypoints) overrides :meth:`converter`, :meth:`lines` and :meth:`comparer` instead.
    """

    metric = "mAP50-95"
    attributes: ClassVar[tuple[str, ...]] = ("model_iou",)  # the NMS overlap: only instances are suppressed
    result_attribute: ClassVar[str] = "boxes"  # where a result holds the instances: boxes, or obb
    metric_suffix: ClassVar[str]  # Ultralytics' validation metrics are named mAP50(B), mAP50(M), mAP50(P)…
    class_agnostic: ClassVar[bool] = False  # True: instances match whatever their class (pose)
    regions: ClassVar[Callable[[Results, ControlPlan, LabelMap], ControlOutput]]
    label_lines: ClassVar[LabelLines]
    ious: ClassVar[Compare]

    def converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig, warn: Warn) -> Converter:
        labels = self.label_map(plan, model, warn)
        return lambda result: self.regions(result, plan, labels)

    def label(self, sample: Sample, plan: ControlPlan, result: Annotation, names: Names) -> None:
        sample.lines = self.lines(plan, result, names, sample.size)

    def lines(self, plan: ControlPlan, result: Annotation, names: Names, size: tuple[int, int]) -> list[str]:
        """The label lines of one annotation on an image of natural ``size``."""
        return self.label_lines(result, names.classes, plan.control, size, to_name=plan.obj.name)

    def write(self, root: Path, names: Names, train: list[Sample], val: list[Sample]) -> str:
        return write_label_files(root, names, train, val, self.data_yaml(names))

    def data_yaml(self, names: Names) -> dict[str, Any]:
        """What the kind adds to ``data.yaml``."""
        return {}

    def progress(self, metrics: Mapping[str, float]) -> dict[str, float]:
        suffix = self.metric_suffix
        return {
            "mAP50": float(metrics.get(f"metrics/mAP50({suffix})", 0.0)),
            "mAP50-95": float(metrics.get(f"metrics/mAP50-95({suffix})", 0.0)),
        }

    def evaluate(self, model: YoloModel, plan: ControlPlan, dataset: Dataset, options: YoloOptions) -> dict[str, float]:
        compare = self.comparer(plan, model, dataset)
        return mean_average_precision(model, plan.control, dataset, options, compare=compare,
                                      instances=self.result_attribute, class_agnostic=self.class_agnostic)

    def comparer(self, plan: ControlPlan, model: YoloModel, dataset: Dataset) -> Compare:
        """How the instances of a held-out image compare with the model's: the IoU (or OKS) function."""
        return self.ious


@dataclass(frozen=True)
class ControlPlan:
    """One control to fill: its object, the kind of model, the model's name and the threshold."""

    control: ControlTag
    obj: ObjectTag
    kind: Kind
    model_name: str  # model_path from the config, or the default for the kind
    custom: bool  # True when model_path came from the label config
    threshold: float  # model_score_threshold and model_conf (the higher), else MODEL_SCORE_THRESHOLD, else default
    iou: float | None  # model_iou: the NMS overlap above which the less confident instance goes; None = Ultralytics'
    trainable: bool  # model_trainable: False leaves the control's model as it is when the project trains

    @property
    def where(self) -> str:
        return f"<{self.control.tag} name={self.control.name!r}>"

    @property
    def candidate_floor(self) -> float:
        """Predictions are asked down to a quarter of the threshold: the near misses give an empty task its score."""
        return self.threshold / 4
