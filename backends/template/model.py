"""Template backend: a TF-IDF + logistic-regression text classifier for ``<Choices>`` on ``<Text>``.

It starts knowing nothing, learns each Choices control from the annotations Label Studio sends, and
predicts the choice with its probability as the score (low scores are the tasks worth labelling next).
``labelzoo new my_backend`` copies this folder as the start of your own backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from labelzoo import Backend, FitResult, Prediction, Target
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, ControlTag, ObjectTag, build_label_map
from labelzoo.learning import decide, split_held_out
from labelzoo.results import choices, read_choices
from labelzoo.taskdata import text_of

if TYPE_CHECKING:
    from labelzoo import FitContext, PredictContext, Task, TrainingData, TrainingExample

MODEL_FILE = "classifiers.joblib"
HELD_OUT_FRACTION = 0.2  # of the tasks (by task id) validate every new classifier and never train one
MIN_HELD_OUT, MIN_TRAIN = 2, 8  # with fewer than 10 examples nothing is validated: the new classifier is taken


def new_classifier() -> Pipeline:
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=1000, C=10.0),
    )


def chosen(example: TrainingExample, control: ControlTag, obj: ObjectTag) -> str | None:
    """The first choice (a label key of the control) an annotation made, or None if it made none."""
    return next((read.label for read in read_choices(example.result, control, obj.name) if read.label), None)


def texts_and_labels(
    labelled: list[tuple[TrainingExample, str]], obj: ObjectTag, ctx: FitContext
) -> tuple[list[str], list[str]]:
    return [text_of(example.task, obj, ctx.media) for example, _ in labelled], [label for _, label in labelled]


class TextClassifier(Backend):
    targets = (Target("Choices", "Text"), Target("Choices", "HyperText"))
    batch_size = 512
    description = "TF-IDF + logistic regression text classifier that learns from annotations (template)"
    default_score_threshold = 0.0  # a control's model_score_threshold or MODEL_SCORE_THRESHOLD hides unsure choices
    control_attributes = THRESHOLD_ATTRIBUTES

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
            threshold = self.score_threshold(control)
            texts = [text_of(task, obj, ctx.media) for task in tasks]
            for i, probs in enumerate(model.predict_proba(texts)):
                best = int(probs.argmax())
                label = labels.get(str(model.classes_[best]))
                score = float(probs[best])
                if label is None or score < threshold:
                    continue  # the config no longer has this choice, or the model is not sure enough
                results[i].append(choices(control.name, obj.name, choices=[label], score=score))
                scores[i].append(score)
        return [Prediction(result=r, score=min(s) if s else None) for r, s in zip(results, scores, strict=True)]

    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        classifiers = dict(getattr(self, "classifiers", {}))
        metrics: dict[str, float] = {}
        reasons, promoted, trained = [], False, set()  # trained: the tasks some new classifier learnt from
        for control, obj in data.config.pairs("Choices", ("Text", "HyperText")):
            labelled = [(example, choice) for example in data.examples if (choice := chosen(example, control, obj))]
            split = split_held_out(
                labelled, task_id=lambda pair: pair[0].task.id, content=lambda pair: pair[0].task.data,
                fraction=HELD_OUT_FRACTION, min_held_out=MIN_HELD_OUT, min_train=MIN_TRAIN,
            )  # fmt: skip
            (train_x, train_y), (test_x, test_y) = (texts_and_labels(part, obj, ctx) for part in split)
            if len(set(train_y)) < 2:
                ctx.logger.info("%s: %d examples, fewer than 2 classes; not trained", control.name, len(labelled))
                continue
            ctx.report(0.2, f"training {control.name} on {len(train_x)} examples, {len(split.held_out)} held out")
            model = new_classifier().fit(train_x, train_y)  # never on held-out tasks: they judge every version
            trained |= {example.task.id for example, _ in split.train}
            current = classifiers.get(control.name)
            new = model.score(test_x, test_y) if test_x else None  # accuracy
            old = current.score(test_x, test_y) if test_x and current is not None else None
            decision = decide(new, old, n_held_out=len(test_x), metric=f"{control.name} accuracy")
            metrics.update({f"{control.name}.{name}": score for name, score in decision.metrics("accuracy").items()})
            ctx.logger.info("%s", decision.reason)
            reasons.append(decision.reason)
            if decision.promote:
                classifiers[control.name], promoted = model, True
        summary = "; ".join(reasons) or "no control with annotations of 2 classes or more"
        if promoted:
            joblib.dump(classifiers, ctx.output_dir / MODEL_FILE)
            ctx.report(1.0, "done", **metrics)
        return FitResult(promote=promoted, metrics=metrics, summary=summary,
                         held_out={example.task.id for example in data.examples} - trained)
