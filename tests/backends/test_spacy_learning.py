"""The spaCy backend learning: from a blank pipeline, incrementally, from scratch, without forgetting,
and end to end through annotation webhooks, a background job and a new served version.

Held-out sentences use names and sentence shapes that no training sentence has, so F1 measures what
the model learned, not what it memorised.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import spacy

from labelzoo import Backend, FitContext, PredictContext, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.learning import split_held_out
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend
from tests.backends.spacy_support import (
    LEARNING_CONFIG,
    LEARNING_NAMES,
    Sentence,
    labels_result,
    sentences,
    span_f1,
    train_pipeline,
)
from tests.conftest import REPO

SPACY = REPO / "backends" / "spacy"
FINAL = {"succeeded", "failed", "cancelled", "skipped"}


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
                              "MODEL_SCORE_THRESHOLD": "0.3", **env})


def backend_for(settings: Settings, weights: Path | None = None) -> Backend:
    backend = load_backend(str(SPACY)).cls(settings, weights)
    backend.load()
    return backend


def examples_for(
    batch: list[Sentence], first_id: int = 1, names: dict[str, str] = LEARNING_NAMES
) -> list[TrainingExample]:
    return [
        TrainingExample(task=Task(id=first_id + i, data={"text": s.text}), result=labels_result(s, names))
        for i, s in enumerate(batch)
    ]


def fit(backend: Backend, examples: list[TrainingExample], out: Path, reason: str = "annotations",
        config: str = LEARNING_CONFIG) -> Any:
    out.mkdir(parents=True)
    data = TrainingData(project="1", config=parse_label_config(config), examples=examples, reason=reason)
    return backend.fit(data, FitContext(output_dir=out, media=MediaResolver(backend.settings.media),
                                        settings=backend.settings))


def predictions(backend: Backend, batch: list[Sentence], config: str = LEARNING_CONFIG) -> list[Any]:
    settings = backend.settings
    ctx = PredictContext(project="1", config=parse_label_config(config), media=MediaResolver(settings.media),
                         settings=settings, model_version="test")
    return list(backend.predict([Task(id=10_000 + i, data={"text": s.text}) for i, s in enumerate(batch)], ctx))


def f1(
    backend: Backend, batch: list[Sentence], config: str = LEARNING_CONFIG, names: dict[str, str] = LEARNING_NAMES
) -> float:
    return span_f1(batch, [p.result for p in predictions(backend, batch, config)], names)


def firm_recall(backend: Backend, batch: list[Sentence], config: str) -> float:
    want = {(i, a, b) for i, s in enumerate(batch) for a, b, label in s.spans if label == "ORG"}
    got = {(i, r["value"]["start"], r["value"]["end"]) for i, p in enumerate(predictions(backend, batch, config))
           for r in p.result if r["value"]["labels"] == ["Firm"]}
    return len(want & got) / len(want)


@pytest.fixture(scope="module")
def held_out() -> list[Sentence]:
    return sentences(80, seed=99, held_out=True)


def test_a_blank_pipeline_learns_the_config_labels_then_updates_and_retrains(
    tmp_path: Path, held_out: list[Sentence]
) -> None:
    settings = settings_for(tmp_path)
    blank = backend_for(settings)
    assert f1(blank, held_out) == 0.0
    first = sentences(40, seed=1)
    v1_dir = tmp_path / "v1"
    fitted = fit(blank, examples_for(first), v1_dir)
    assert fitted.promote and fitted.summary.startswith("full retraining on")  # nothing to start from
    v1 = backend_for(settings, v1_dir)
    assert set(v1.ner.labels) == {"Person", "City", "Company"}  # new labels, named as in the config
    v1_f1 = f1(v1, held_out)
    assert v1_f1 >= 0.6

    more = examples_for(first + sentences(20, seed=2))
    updated = fit(v1, more, tmp_path / "v2")  # annotations arrived: continue from v1
    assert updated.summary.startswith("incremental update on")
    assert updated.metrics["previous_f1"] > 0.5  # v1, scored on the same held-out annotations
    # promoted unless clearly worse: by more than the noise margin of labelzoo.learning.decide
    margin = updated.metrics["promote_margin"]
    assert updated.promote == (updated.metrics["f1"] >= updated.metrics["previous_f1"] - margin)
    assert (tmp_path / "v2" / "pipeline").exists() == updated.promote
    retrained = fit(v1, more, tmp_path / "v3", reason="start_training")  # from the blank pipeline again
    assert retrained.summary.startswith("full retraining on")
    assert retrained.metrics["held_out_texts"] == updated.metrics["held_out_texts"] > 0  # the same split
    module = sys.modules[type(v1).__module__]
    split = split_held_out(more, task_id=lambda e: e.task.id, fraction=v1.options.spacy_holdout / 100,
                           min_held_out=module.MIN_HELD_OUT, min_train=module.MIN_TRAIN)
    held = {e.task.id for e in split.held_out}  # the tasks no new pipeline trained on, reported to the version
    assert len(held) == updated.metrics["held_out_texts"] and set(updated.held_out) == set(retrained.held_out) == held
    assert retrained.metrics["f1"] >= 0.8


def test_a_pretrained_pipeline_learns_a_new_label_and_keeps_the_ones_nobody_annotates(tmp_path: Path) -> None:
    pretrained = train_pipeline(tmp_path / "pretrained", names={"PERSON": "PERSON", "CITY": "GPE"})
    settings = settings_for(tmp_path, SPACY_MODEL=str(pretrained))
    config = LEARNING_CONFIG.replace('<Label value="City"/><Label value="Company"/>', '<Label value="Firm"/>')
    names = {"PERSON": "Person", "ORG": "Firm"}  # annotators mark people and firms, never cities
    base = backend_for(settings)
    unseen = sentences(40, seed=5)
    assert firm_recall(base, unseen, config) == 0.0  # it knows people and cities, not firms
    fitted = fit(base, examples_for(sentences(40, seed=1), names=names), tmp_path / "v1", config=config)
    assert fitted.promote and fitted.metrics["rehearsed_labels"] == 1  # GPE
    trained = backend_for(settings, tmp_path / "v1")
    assert set(trained.ner.labels) == {"PERSON", "GPE", "Firm"}
    assert f1(trained, unseen, config, names) >= 0.85
    assert firm_recall(trained, unseen, config) >= 0.8
    # cities were never annotated, and the model still finds them (without rehearsal: 1 in 8)
    nlp = spacy.load(tmp_path / "v1" / "pipeline")
    cities = [(s.text[a:b], s.text) for s in unseen for a, b, label in s.spans if label == "CITY"]
    found = sum(any(e.text == city and e.label_ == "GPE" for e in nlp(text).ents) for city, text in cities)
    assert found / len(cities) >= 0.8


def _created(annotation_id: int, task: Task, result: list[dict]) -> dict[str, Any]:
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {
            "id": annotation_id, "task": task.id, "project": 5, "completed_by": 1, "result": result,
            "was_cancelled": False, "ground_truth": False, "lead_time": 4.2,
            "created_at": "2025-06-01T09:00:00.000000Z", "updated_at": "2025-06-01T09:00:00.000000Z",
        },
        "task": {"id": task.id, "data": dict(task.data), "project": 5, "is_labeled": True},
        "project": {"id": 5, "title": "NER", "label_config": LEARNING_CONFIG, "model_version": "spacy"},
    }


def test_annotations_arriving_by_webhook_train_a_new_version_that_predict_serves(
    make_client: Any, held_out: list[Sentence]
) -> None:
    client = make_client(SPACY, TRAIN_AFTER_ANNOTATIONS="40", MODEL_SCORE_THRESHOLD="0.3")
    body = {"tasks": [{"id": 10_000 + i, "data": {"text": s.text}} for i, s in enumerate(held_out)],
            "project": "5.1718900000", "label_config": LEARNING_CONFIG, "params": {}}
    before = client.post("/predict", json=body).get_json()["results"]
    assert {r["model_version"] for r in before} == {"spacy-blank-en"}
    assert all(r["result"] == [] for r in before)

    for example in examples_for(sentences(40, seed=1)):
        answer = client.post("/webhook", json=_created(example.task.id, example.task, list(example.result)))
        assert answer.status_code == 201
    job_id = answer.get_json()["job"]
    assert job_id  # the 40th annotation queued a training job

    deadline = time.monotonic() + 120
    while (job := client.get(f"/jobs/{job_id}").get_json())["status"] not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded" and job["promoted"], job
    assert job["metrics"]["f1"] >= 0.6
    assert client.get("/jobs?project=5").get_json()["jobs"][0]["id"] == job_id

    after = client.post("/predict", json=body).get_json()["results"]
    assert {r["model_version"] for r in after} == {job["version"]}
    assert job["version"].startswith("spacy-blank-en-p5-v1")
    assert span_f1(held_out, [r["result"] for r in after], LEARNING_NAMES) >= 0.6
