"""Template backend: a TF-IDF + logistic-regression text classifier for ``<Choices>`` on ``<Text>``.

It starts knowing nothing, learns each Choices control from the annotations Label Studio sends, and
predicts the choice with its probability as the score (low scores are the tasks worth labelling next).
``labelzoo new my_backend`` copies this folder as the start of your own backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from labelzoo import Backend, FitContext, FitResult, PredictContext, Prediction, Target, Task, TrainingData
from labelzoo.labelconfig import ControlTag, ObjectTag, build_label_map
from labelzoo.results import choices
from labelzoo.taskdata import text_of

MODEL_FILE = "classifiers.joblib"
HOLDOUT_EVERY = 5  # every 5th example validates the new model before it may replace the current one
MIN_HOLDOUT_EXAMPLES = 10


def new_classifier() -> Pipeline:
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=1000, C=10.0),
    )


def chosen(result: Sequence[Any], control: ControlTag) -> str | None:
    """The first choice an annotation made in this control, or None if it left the control empty."""
    for item in result:
        if item.get("from_name") == control.name and item.get("type") == "choices":
            picked = item.get("value", {}).get("choices") or []
            return str(picked[0]) if picked else None
    return None


def accuracy(model: Pipeline, texts: list[str], labels: list[str]) -> float:
    return float((model.predict(texts) == np.array(labels)).mean())


class TextClassifier(Backend):
    targets = (Target("Choices", "Text"), Target("Choices", "HyperText"))
    batch_size = 512
    description = "TF-IDF + logistic regression text classifier that learns from annotations (template)"

    classifiers: dict[str, Pipeline]

    def load(self) -> None:
        self.classifiers = joblib.load(self.weights / MODEL_FILE) if self.weights else {}

    def base_version(self) -> str:
        return "template-tfidf"

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        model = self.classifiers.get(control.name)
        return None if model is None else [str(c) for c in model.classes_]

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        results: list[list[dict[str, Any]]] = [[] for _ in tasks]
        scores: list[list[float]] = [[] for _ in tasks]
        for control, obj in ctx.pairs("Choices", ("Text", "HyperText")):
            model = self.classifiers.get(control.name)
            if model is None:
                continue  # not trained for this control yet
            labels = build_label_map(control, model.classes_)
            texts = [text_of(task, obj, ctx.media) for task in tasks]
            for i, probs in enumerate(model.predict_proba(texts)):
                best = int(probs.argmax())
                label = labels.get(str(model.classes_[best]))
                if label is None:
                    continue  # the config no longer has this choice
                score = float(probs[best])
                results[i].append(choices(control.name, obj.name, choices=[label], score=score))
                scores[i].append(score)
        return [Prediction(result=r, score=min(s) if s else None) for r, s in zip(results, scores, strict=True)]

    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        classifiers = dict(getattr(self, "classifiers", {}))
        metrics: dict[str, float] = {}
        improved = False
        for control, obj in data.config.pairs("Choices", ("Text", "HyperText")):
            texts, labels = [], []
            for example in data.examples:
                label = chosen(example.result, control)
                if label is not None:
                    texts.append(text_of(example.task, obj, ctx.media))
                    labels.append(label)
            if len(set(labels)) < 2:
                ctx.logger.info("%s: %d examples, fewer than 2 classes; not trained", control.name, len(labels))
                continue
            ctx.report(0.2, f"training {control.name} on {len(texts)} examples")
            new_score, old_score = self._validate(classifiers.get(control.name), texts, labels)
            if new_score is not None:
                metrics[f"{control.name}.accuracy"] = new_score
            if old_score is not None:
                metrics[f"{control.name}.previous_accuracy"] = old_score
            if new_score is None or old_score is None or new_score >= old_score:
                classifiers[control.name] = new_classifier().fit(texts, labels)
                improved = True
        if not improved:
            return FitResult(promote=False, metrics=metrics, summary="no control got a better classifier")
        joblib.dump(classifiers, ctx.output_dir / MODEL_FILE)
        ctx.report(1.0, "done", **metrics)
        return FitResult(promote=True, metrics=metrics, summary=", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))

    @staticmethod
    def _validate(current: Pipeline | None, texts: list[str], labels: list[str]) -> tuple[float | None, float | None]:
        """Accuracy of a new model and of the current one on the same held-out examples.

        With too few examples to hold any out, nothing is validated (None) and the new model is accepted.
        """
        if len(texts) < MIN_HOLDOUT_EXAMPLES:
            return None, None
        held = set(range(0, len(texts), HOLDOUT_EVERY))
        train_x = [t for i, t in enumerate(texts) if i not in held]
        train_y = [y for i, y in enumerate(labels) if i not in held]
        test_x = [texts[i] for i in sorted(held)]
        test_y = [labels[i] for i in sorted(held)]
        if len(set(train_y)) < 2:
            return None, None
        new_score = accuracy(new_classifier().fit(train_x, train_y), test_x, test_y)
        old_score = None if current is None else accuracy(current, test_x, test_y)
        return new_score, old_score
