"""``Choices``: image classes from a classification model.

Predicting: a choice's probability is the sum of the probabilities of the model classes it takes
(``predicted_values``); the most likely choice is kept, or with ``choice="multiple"`` every choice at or
above the threshold. Training: ``train/<class>/`` and ``val/<class>/`` folders (numbered; the trained
checkpoint then gets the config's class names). Held-out score: ``top1`` accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from labelzoo.labelconfig import LabelConfig, LabelMap, build_label_map
from labelzoo.results import choices, read_choices

from ..dataset import Annotation, Dataset, Names, Sample, move_image
from ..evaluate import predictions
from ..kind import ControlPlan, Converter, Kind, Warn
from ..outputs import ControlOutput, numpy

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

    from ..config import YoloOptions
    from ..weights import YoloModel


class Classify(Kind):
    name = "classify"
    tags = ("Choices",)
    controls_doc = "`Choices`"
    default_model = "yolo11n-cls.pt"
    served_by = ("classify",)
    metric = "top1"

    def converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig, warn: Warn) -> Converter:
        labels = self.label_map(plan, model, warn)
        return lambda result: classification(result, plan, labels)

    def usable(self, plan: ControlPlan, result: Annotation) -> bool:
        return _choice(plan, result) is not None

    def label(self, sample: Sample, plan: ControlPlan, result: Annotation, names: Names) -> None:
        key = _choice(plan, result)
        sample.label = names.classes.setdefault(key, len(names.classes)) if key is not None else None

    def refusal(self, samples: list[Sample]) -> str | None:
        if len({s.label for s in samples}) < 2:
            return "all annotated images have the same choice; at least 2 classes are needed"
        return None

    def write(self, root: Path, names: Names, train: list[Sample], val: list[Sample]) -> str:
        """A folder per class index under ``train/`` and ``val/``; Ultralytics trains from ``root``."""
        for split, samples in (("train", train), ("val", val)):
            for i in range(len(names.classes)):
                (root / split / f"{i:04d}").mkdir(parents=True, exist_ok=True)
            for sample in samples:
                move_image(sample, root / split / f"{sample.label:04d}")
        return str(root)

    def after_training(self, checkpoint: Path, dataset: Dataset) -> None:
        set_class_names(checkpoint, dataset.classes)

    def progress(self, metrics: Mapping[str, float]) -> dict[str, float]:
        return {"top1": float(metrics.get("metrics/accuracy_top1", 0.0))}

    def evaluate(self, model: YoloModel, plan: ControlPlan, dataset: Dataset, options: YoloOptions) -> dict[str, float]:
        labels = build_label_map(plan.control, model.names)
        correct = 0
        for sample, result in predictions(model, dataset.val, options):
            by_label = choice_probabilities(result, labels)
            if by_label and max(by_label, key=by_label.__getitem__) == dataset.classes[sample.label]:
                correct += 1
        return {"top1": correct / max(1, len(dataset.val))}


CLASSIFY = Classify()


def _choice(plan: ControlPlan, result: Annotation) -> str | None:
    return next((c.label for c in read_choices(result, plan.control, plan.obj.name) if c.label), None)


def choice_probabilities(result: Results, labels: LabelMap) -> dict[str, float]:
    """Each choice's probability: the sum over the model classes that map to it."""
    by_label: dict[str, float] = {}
    for cls, p in enumerate(numpy(result.probs.data) if result.probs is not None else ()):
        label = labels.get(result.names[cls])
        if label is not None:
            by_label[label] = by_label.get(label, 0.0) + float(p)
    return by_label


def classification(result: Results, plan: ControlPlan, labels: LabelMap) -> ControlOutput:
    """The likeliest choice (all likely ones with ``choice="multiple"``), scored by the least likely kept."""
    out = ControlOutput()
    ranked = sorted(choice_probabilities(result, labels).items(), key=lambda item: -item[1])
    candidates = ranked if plan.control.choice_multiple else ranked[:1]
    chosen = [(label, p) for label, p in candidates if out.consider(min(p, 1.0), plan.threshold)]
    if chosen:
        score = min(min(p, 1.0) for _, p in chosen)
        out.add(choices(plan.control.name, plan.obj.name, choices=[label for label, _ in chosen], score=score), score)
    return out


def set_class_names(checkpoint: Path, names: list[str]) -> None:
    """Give a trained checkpoint the config's class names (classification trains on numbered folders)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        if ckpt.get(key) is not None:
            ckpt[key].names = dict(enumerate(names))
    torch.save(ckpt, checkpoint)
