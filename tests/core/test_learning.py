"""labelzoo.learning: the stable held-out split by task id and the promote-if-not-worse rule, and the
template backend using both: it promotes a clearly better classifier and keeps its own over a worse one."""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path

import pytest

from labelzoo import FitContext, PredictContext, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.learning import decide, noise_margin, split_held_out, split_key, unit_hash
from labelzoo.media import MediaResolver
from labelzoo.testing import backend_class
from tests.conftest import REPO

# --- the split -----------------------------------------------------------------------------------


def ids(items: list[int], fraction: float = 0.2, **minimums: int) -> tuple[list[int], list[int]]:
    split = split_held_out(items, task_id=lambda i: i, fraction=fraction, **minimums)
    train, held_out = split  # a split unpacks as (train, held_out)
    assert (train, held_out) == (split.train, split.held_out) and split.validated == bool(held_out)
    return train, held_out


def test_a_task_keeps_its_side_as_the_project_grows() -> None:
    train, held = ids(list(range(200)))
    assert sorted(train + held) == list(range(200)) and 25 <= len(held) <= 55
    assert held == sorted(held) and train == sorted(train)  # the original order on both sides
    later_train, later_held = ids(list(range(1000)))
    assert set(held) <= set(later_held) and set(train) <= set(later_train)
    shuffled = list(range(200))
    random.Random(1).shuffle(shuffled)
    assert sorted(ids(shuffled)[1]) == held  # by task id, not by position


def test_the_hash_is_the_one_spacy_split_by_so_its_projects_keep_their_held_out_tasks() -> None:
    for task_id in range(2000):
        for percent in (5, 20, 50):
            old_rule = zlib.crc32(f"task:{task_id}".encode()) % 100 < percent
            assert (unit_hash(split_key(task_id)) < percent / 100) == old_rule
    assert all(0.0 <= unit_hash(f"task:{i}") < 1.0 for i in range(2000))


def test_small_projects_are_topped_up_to_the_minimum_and_never_starve_training() -> None:
    train, held = ids(list(range(5)), min_held_out=2, min_train=2)
    assert len(held) == 2 and len(train) == 3
    natural = {i for i in range(12) if unit_hash(split_key(i)) < 0.2}
    train, held = ids(list(range(12)), min_held_out=4, min_train=2)
    assert len(held) == max(4, len(natural)) and natural <= set(held)  # the lowest hashes fill the gap
    assert ids(list(range(4)), min_held_out=3, min_train=2) == (list(range(4)), [])  # too few: all train
    # hash luck never holds out more than twice the fraction
    assert all(len(ids(list(range(start, start + 10)), min_held_out=1)[1]) <= 4 for start in range(0, 3000, 10))


def test_items_without_a_task_id_split_by_content_then_position() -> None:
    items = [{"id": None, "text": f"text {i}"} for i in range(60)]
    by_content = split_held_out(items, task_id=lambda x: x["id"], content=lambda x: x["text"], fraction=0.3)
    reordered = split_held_out(items[::-1], task_id=lambda x: x["id"], content=lambda x: x["text"], fraction=0.3)
    assert by_content.validated and sorted(x["text"] for x in by_content.held_out) == sorted(
        x["text"] for x in reordered.held_out
    )
    assert split_key(None, {"b": 1, "a": [2]}) == split_key(None, {"a": [2], "b": 1})  # canonical JSON
    assert split_key(None, object(), position=7) == split_key(None, None, position=7) == "position:7"
    assert split_key(5, "ignored") == "task:5"


def test_several_items_of_one_task_land_on_the_same_side() -> None:
    items = [(task, obj) for task in range(50) for obj in ("title", "body")]
    split = split_held_out(items, task_id=lambda x: x[0], fraction=0.3)
    held_tasks = {task for task, _ in split.held_out}
    assert held_tasks and not held_tasks & {task for task, _ in split.train}


def test_the_held_out_tasks_are_those_of_the_held_out_items() -> None:
    items = [(task, obj) for task in range(40) for obj in ("title", "body")]
    split = split_held_out(items, task_id=lambda x: x[0], fraction=0.25)
    held = split.held_out_tasks(lambda x: x[0])
    assert held == {task for task, _ in split.held_out} and len(held) >= 5
    assert not held & {task for task, _ in split.train}
    assert split_held_out(items, task_id=lambda x: x[0], fraction=0.0).held_out_tasks(lambda x: x[0]) == set()


def test_a_zero_fraction_validates_nothing_and_bad_arguments_are_refused() -> None:
    split = split_held_out(list(range(30)), task_id=lambda i: i, fraction=0.0)
    assert split.train == list(range(30)) and not split.validated
    with pytest.raises(ValueError, match="fraction"):
        ids(list(range(10)), fraction=1.0)
    with pytest.raises(ValueError, match="min_held_out"):
        ids(list(range(10)), min_held_out=0)


# --- the decision --------------------------------------------------------------------------------


def test_a_model_equal_within_noise_is_promoted_and_a_clearly_worse_one_is_not() -> None:
    within = decide(0.875, 1.0, n_held_out=8, metric="accuracy")  # one item of eight
    assert within.promote and within.margin == pytest.approx(noise_margin(1.0, 0.875, 8))
    assert "within the noise margin" in within.reason and "accuracy 0.875" in within.reason
    worse = decide(0.5, 1.0, n_held_out=8)
    assert not worse.promote and "the current model is kept" in worse.reason
    assert decide(0.93, 0.95, n_held_out=20).promote
    assert not decide(0.93, 0.95, n_held_out=5000).promote  # the same gap is no longer noise
    better = decide(0.9, 0.6, n_held_out=30)
    assert better.promote and "no worse" in better.reason


def test_a_decision_gives_its_scores_as_metrics_leaving_out_the_unknown() -> None:
    assert decide(0.8, 0.7, n_held_out=20).metrics("f1") == {"f1": 0.8, "previous_f1": 0.7}
    assert decide(0.8, None, n_held_out=20).metrics("f1") == {"f1": 0.8}
    assert decide(None, 0.7, n_held_out=0).metrics("accuracy") == {"previous_accuracy": 0.7}


def test_the_margin_is_one_standard_error_and_shrinks_with_more_items() -> None:
    assert noise_margin(0.5, 0.5, 100) == pytest.approx(0.05, abs=1e-3)
    assert noise_margin(1.0, 1.0, 8) > 0.08  # perfect scores on few items are still noisy
    margins = [noise_margin(0.9, 0.9, n) for n in (10, 100, 1000)]
    assert margins == sorted(margins, reverse=True)


def test_a_fixed_margin_replaces_the_noise_estimate() -> None:
    assert not decide(0.79, 0.8, n_held_out=10, margin=0.0).promote
    assert decide(0.79, 0.8, n_held_out=10, margin=0.02).promote
    with pytest.raises(ValueError, match="margin"):
        decide(0.7, 0.8, n_held_out=10, margin=-1)


def test_without_a_current_model_or_held_out_items_the_new_model_is_promoted() -> None:
    assert decide(0.2, None, n_held_out=10).promote
    assert decide(None, 0.9, n_held_out=0).promote
    assert decide(0.1, 0.9, n_held_out=0).promote
    assert "too few held-out items" in decide(None, 0.9, n_held_out=0).reason


# --- the template backend, seeded ----------------------------------------------------------------

TEMPLATE = REPO / "backends" / "template"
CONFIG = parse_label_config((TEMPLATE / "label_config.xml").read_text())
GOOD, BAD = [f"bright{i}" for i in range(30)], [f"gloomy{i}" for i in range(30)]
FILLERS = [f"thing{i}" for i in range(200)]
SEEDS = range(20)


def review(rng: random.Random, label: str) -> str:
    """Two words of the label's vocabulary among five fillers: a few dozen reviews do not cover it."""
    return " ".join(rng.sample(GOOD if label == "Positive" else BAD, 2) + rng.sample(FILLERS, 5))


def annotated(rng: random.Random, n: int) -> list[TrainingExample]:
    labels = [rng.choice(["Positive", "Negative"]) for _ in range(n)]
    return [example(i, review(rng, label), label) for i, label in enumerate(labels)]


def example(task_id: int, text: str, label: str) -> TrainingExample:
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
    return TrainingExample(task=Task(id=task_id, data={"text": text}), result=result)


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings.from_env({"MODEL_DIR": str(root / "models"), "MEDIA_CACHE_DIR": str(root / "cache")})
        self.media = MediaResolver(self.settings.media)
        self.cls = backend_class(TEMPLATE)

    def fit(self, current: object, examples: list[TrainingExample], version: str) -> tuple[object, object]:
        out = self.root / version
        out.mkdir()
        fitted = current.fit(TrainingData(project="1", config=CONFIG, examples=examples),
                             FitContext(output_dir=out, media=self.media, settings=self.settings))
        new = self.cls(self.settings, weights=out) if fitted.promote else current
        new.load()
        return fitted, new

    def blank(self) -> object:
        backend = self.cls(self.settings)
        backend.load()
        return backend

    def accuracy(self, backend: object, examples: list[TrainingExample]) -> float:
        ctx = PredictContext(project="1", config=CONFIG, media=self.media, settings=self.settings, model_version="v")
        predictions = backend.predict([e.task for e in examples], ctx)
        truth = [e.result[0]["value"]["choices"][0] for e in examples]
        return sum(bool(p.result) and p.result[0]["value"]["choices"] == [t] for p, t in zip(predictions, truth,
                                                                                             strict=True)) / len(truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_template_promotes_a_clearly_better_classifier(tmp_path: Path, seed: int) -> None:
    """30 annotations, then 60 more. With every 5th example held out by position, the first version (trained
    on all 30, so also on the held-out ones among them) was scored on what it had learned and kept itself
    in 4 of these 20 runs."""
    rng = random.Random(seed)
    data, unseen = annotated(rng, 90), annotated(rng, 300)
    project = Project(tmp_path)
    _, v1 = project.fit(project.blank(), data[:30], "v1")
    fitted, v2 = project.fit(v1, data, "v2")
    assert fitted.promote, fitted.summary
    assert project.accuracy(v2, unseen) > project.accuracy(v1, unseen)  # it was better


@pytest.mark.parametrize("seed", SEEDS)
def test_the_template_keeps_its_classifier_over_one_trained_on_shuffled_labels(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = annotated(rng, 90)
    project = Project(tmp_path)
    _, v1 = project.fit(project.blank(), data, "v1")
    module = sys.modules[project.cls.__module__]
    split = split_held_out(data, task_id=lambda e: e.task.id, fraction=module.HELD_OUT_FRACTION,
                           min_held_out=module.MIN_HELD_OUT, min_train=module.MIN_TRAIN)
    labels = [e.result[0]["value"]["choices"][0] for e in split.train]
    rng.shuffle(labels)  # the training side gets nonsense; the held-out side keeps the truth
    noisy = {e.task.id: example(e.task.id, e.task.data["text"], label) for e, label in zip(split.train, labels,
                                                                                          strict=True)}
    fitted, _ = project.fit(v1, [noisy.get(e.task.id, e) for e in data], "v2")
    assert not fitted.promote, fitted.summary
    assert "the current model is kept" in fitted.summary


TWO_CONTROLS = parse_label_config("""<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
  <Choices name="length" toName="text"><Choice value="Short"/><Choice value="Long"/></Choices>
</View>""")


def template_split(examples: list[TrainingExample], module: object) -> set[int]:
    split = split_held_out(examples, task_id=lambda e: e.task.id, content=lambda e: e.task.data,
                           fraction=module.HELD_OUT_FRACTION, min_held_out=module.MIN_HELD_OUT,
                           min_train=module.MIN_TRAIN)  # fmt: skip
    return {e.task.id for e in split.held_out}


def test_the_template_reports_the_tasks_its_split_held_out(tmp_path: Path) -> None:
    data = annotated(random.Random(3), 60)
    project = Project(tmp_path)
    fitted, _ = project.fit(project.blank(), data, "v1")
    expected = template_split(data, sys.modules[project.cls.__module__])
    assert fitted.promote and expected and set(fitted.held_out) == expected


def test_the_template_holds_out_only_the_tasks_no_classifier_it_trained_learnt_from(tmp_path: Path) -> None:
    """``length`` is annotated on the last 20 tasks only: its split differs from ``sentiment``'s, and a task
    that either control's new classifier trained on is not held out."""
    data = annotated(random.Random(4), 60)
    both = [TrainingExample(task=e.task, result=[*e.result, {"from_name": "length", "to_name": "text",
            "type": "choices", "value": {"choices": ["Short" if i % 2 else "Long"]}}] if i >= 40 else e.result)
            for i, e in enumerate(data)]  # fmt: skip
    project = Project(tmp_path)
    fitted = project.blank().fit(TrainingData(project="1", config=TWO_CONTROLS, examples=both),
                                 FitContext(output_dir=tmp_path, media=project.media, settings=project.settings))
    module = sys.modules[project.cls.__module__]
    sentiment, length = template_split(data, module), template_split(data[40:], module)
    assert sentiment - length and length - sentiment  # the two splits differ: neither is the answer alone
    ids = {e.task.id for e in data}
    trained = (ids - sentiment) | ({e.task.id for e in data[40:]} - length)
    assert set(fitted.held_out) == ids - trained and fitted.held_out
    assert set(fitted.held_out) - length  # a task the length classifier never saw (no length label) is held out
    assert {"sentiment.accuracy", "length.accuracy"} <= set(fitted.metrics)  # both controls trained
