"""The template backend learns through the whole machinery, served by two gunicorn workers:
annotation webhooks → store → background job → promoted version → every worker predicts with it, and what
they serve is exactly what the trained scikit-learn pipeline says when called directly."""

from __future__ import annotations

import random
import time

import joblib
import pytest
import requests

from labelzoo.scoremap import ScoreMap
from tests.conftest import TEMPLATE_BACKEND

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
GOOD = ["great", "wonderful", "excellent", "lovely", "fantastic", "superb", "delightful"]
BAD = ["awful", "terrible", "horrible", "dreadful", "poor", "disappointing", "broken"]
THINGS = ["film", "hotel", "meal", "service", "book", "phone", "concert"]
PROJECT = {"id": 3, "title": "Reviews", "label_config": CONFIG, "created_at": "2026-11-01T09:00:00Z"}


def review(rng: random.Random, positive: bool) -> str:
    words = GOOD if positive else BAD
    return f"The {rng.choice(THINGS)} was {rng.choice(words)}, really {rng.choice(words)}."


def annotation_webhook(i: int, text: str, choice: str) -> dict:
    task = {"id": 1000 + i, "data": {"text": text}, "project": 3}
    result = [{"id": f"r{i}", "from_name": "sentiment", "to_name": "text", "type": "choices",
               "value": {"choices": [choice]}}]
    annotation = {"id": 500 + i, "task": task["id"], "project": 3, "result": result, "was_cancelled": False,
                  "ground_truth": False, "created_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-02T10:00:00Z"}
    return {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": task, "project": PROJECT}


def predict_body(texts: list[str]) -> dict:
    return {"tasks": [{"id": 1 + i, "data": {"text": t}} for i, t in enumerate(texts)],
            "project": "3.1761987600", "label_config": CONFIG, "params": {"context": None}}


def wait_for_promotion(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = requests.get(url + "/jobs", params={"project": "3"}, timeout=5).json()["jobs"]
        done = [j for j in jobs if j["status"] in ("succeeded", "failed", "cancelled")]
        if done:
            return done[0]
        time.sleep(0.3)
    raise TimeoutError(f"no training job finished: {jobs}")


def test_annotations_by_webhook_train_a_version_both_workers_serve(serve, tmp_path):
    rng = random.Random(1)
    server = serve(TEMPLATE_BACKEND, workers=2, TRAIN_AFTER_ANNOTATIONS="30")
    setup = {"project": "3.1761987600", "schema": CONFIG, "extra_params": None}
    base = requests.post(server.url + "/setup", json=setup, timeout=3).json()["model_version"]
    assert base == "template-tfidf"
    held_out = [(review(rng, i % 2 == 0), "Positive" if i % 2 == 0 else "Negative") for i in range(20)]
    before = requests.post(server.url + "/predict", json=predict_body([t for t, _ in held_out]), timeout=30).json()
    assert all(item["result"] == [] for item in before["results"])  # nothing learned yet

    for i in range(30):
        positive = i % 2 == 1
        body = annotation_webhook(i, review(rng, positive), "Positive" if positive else "Negative")
        started = time.perf_counter()
        response = requests.post(server.url + "/webhook", json=body, timeout=1)  # Label Studio waits 1 s
        assert response.status_code == 201, response.text
        assert time.perf_counter() - started < 1.0

    job = wait_for_promotion(server.url)
    assert job["status"] == "succeeded" and job["promoted"], job
    version = job["version"]
    assert version.startswith("template-tfidf-p3-v1-"), version

    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        with requests.Session() as fresh:  # a new connection each time, so both workers answer some
            response = fresh.post(server.url + "/setup", json=setup, timeout=3)
        seen[response.headers["X-Labelzoo-Worker"]] = response.json()["model_version"]
    assert len(seen) == 2, "only one gunicorn worker answered"
    assert set(seen.values()) == {version}

    after = requests.post(server.url + "/predict", json=predict_body([t for t, _ in held_out]), timeout=30).json()
    assert {item["model_version"] for item in after["results"]} == {version}
    picked = [item["result"][0]["value"]["choices"][0] for item in after["results"]]
    correct = sum(p == want for p, (_, want) in zip(picked, held_out, strict=True))
    assert correct >= 18, (picked, held_out)
    (saved,) = (tmp_path / "models").rglob("classifiers.joblib")  # the promoted version's, as fit() saved it
    classifier = joblib.load(saved)["sentiment"]
    direct = classifier.predict_proba([t for t, _ in held_out])
    classes = direct.argmax(axis=1)
    assert picked == [str(classifier.classes_[c]) for c in classes]
    chosen = [float(p[c]) for p, c in zip(direct, classes, strict=True)]
    assert [item["result"][0]["score"] for item in after["results"]] == chosen  # the region: the model's own
    # the task score: the version's map of it, fitted on the tasks its fit held out
    scores = ScoreMap.read(saved.parent)
    assert scores.tasks >= 1 and not scores.is_identity
    assert [item["score"] for item in after["results"]] == pytest.approx([scores(p) for p in chosen], abs=1e-12)
    assert all(0.5 < item["score"] <= 1 for item in after["results"])
    versions = requests.get(server.url + "/versions", params={"project": "3"}, timeout=3).json()["versions"]
    assert [v["version"] for v in versions if v["current"]] == [version]
