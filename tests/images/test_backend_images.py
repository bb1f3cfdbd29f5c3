"""The template and spaCy images, built and run with podman: they serve /health and /predict as uid 1000,
learn from annotation webhooks, keep the new version on their /data volume across a new container, and their
HEALTHCHECK goes healthy, then unhealthy once the server cannot work (spaCy: a pipeline that cannot load;
template: MODEL_DIR made unwritable under it, then healthy again once it is writable).

Skipped without podman: `make podman` installs it (and a stand-in python:3.11-slim where no registry can be
reached); CI does."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.backends.spacy_support import LEARNING_CONFIG, LEARNING_NAMES, Sentence, labels_result, sentences
from tests.core.test_learning_e2e import annotation_webhook, review
from tests.core.test_learning_e2e import predict_body as template_predict
from tests.images.podman import PODMAN, Container, build_backend, wait_for_job

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # the first test builds the base image too
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed: `make podman` installs it"),
]



def served_version(container: Container, body: dict[str, Any]) -> tuple[str, list[Any]]:
    response = container.post("/predict", body)
    assert response.status_code == 200, response.text
    answer = response.json()  # without the regions' ids, which are new in every answer
    return answer["model_version"], [[{k: v for k, v in region.items() if k != "id"} for region in item["result"]]
                                     for item in answer["results"]]


def assert_runs_unprivileged_and_checks_healthy(container: Container) -> None:
    assert container.exec("id", "-u") == "1000"
    assert container.exec("stat", "-c", "%u", "/data/models") == "1000"  # the volume is the user's
    assert container.check() == "healthy", container.logs()


def test_template_image_learns_keeps_its_version_on_the_volume_and_reports_its_health(started) -> None:
    image = build_backend("template")
    first, volume = started(image, TRAIN_AFTER_ANNOTATIONS="30")
    assert first.wait_answering()["status"] == "UP"
    assert_runs_unprivileged_and_checks_healthy(first)

    rng = random.Random(1)
    held_out = [review(rng, positive=i % 2 == 0) for i in range(10)]
    assert served_version(first, template_predict(held_out)) == ("template-tfidf", [[]] * 10)  # knows nothing yet
    for i in range(30):
        positive = i % 2 == 1
        answer = first.post("/webhook", annotation_webhook(i, review(rng, positive), "Positive" if positive
                                                           else "Negative"), timeout=2)
        assert answer.status_code == 201, answer.text
    job = wait_for_job(first, "3")
    assert job["status"] == "succeeded" and job["promoted"], job
    version, results = served_version(first, template_predict(held_out))
    assert version == job["version"] and all(results), results

    first.wait_out_start_period()
    first.exec("chmod", "0555", "/data/models", user="0")  # as a volume mounted read-only would be
    statuses = [first.check() for _ in range(3)]  # the default retries: 3 failures in a row
    assert statuses[-1] == "unhealthy", (statuses, first.logs())
    code, body = first.health()
    assert code == 503 and "cannot be written" in body["reason"], body
    first.exec("chmod", "0755", "/data/models", user="0")
    assert first.check() == "healthy"

    first.remove()
    second, _ = started(image, volume)
    assert second.wait_answering()["status"] == "UP"
    assert served_version(second, template_predict(held_out)) == (version, results)


def ner_webhook(i: int, sentence: Sentence) -> dict[str, Any]:
    annotation = {"id": i, "task": i, "project": 5, "result": labels_result(sentence, LEARNING_NAMES),
                  "was_cancelled": False, "ground_truth": False, "created_at": "2026-11-02T10:00:00Z",
                  "updated_at": "2026-11-02T10:00:00Z"}
    return {"action": "ANNOTATION_CREATED", "annotation": annotation,
            "task": {"id": i, "data": {"text": sentence.text}, "project": 5},
            "project": {"id": 5, "title": "NER", "label_config": LEARNING_CONFIG, "created_at": "2026-11-01T09:00:00Z"}}


def spacy_predict(texts: list[str]) -> dict[str, Any]:
    return {"tasks": [{"id": 10_000 + i, "data": {"text": t}} for i, t in enumerate(texts)],
            "project": "5.1761987600", "label_config": LEARNING_CONFIG, "params": {}}


def test_spacy_image_serves_its_pipeline_learns_and_goes_unhealthy_when_the_pipeline_cannot_load(started) -> None:
    image = build_backend("spacy")
    broken, _ = started(image, SPACY_MODEL="no_such_pipeline")
    assert broken.wait_answering()["model"]["state"] == "failed"
    code, body = broken.health()
    assert code == 503 and "no_such_pipeline" in body["reason"], body
    assert broken.check() == "starting"  # a failure in the start period does not count; it runs on meanwhile

    first, volume = started(image, TRAIN_AFTER_ANNOTATIONS="40")
    health = first.wait_answering()
    assert health["status"] == "UP" and health["model"]["base_version"].startswith("spacy-en_core_web_sm"), health
    assert_runs_unprivileged_and_checks_healthy(first)

    held_out = [s.text for s in sentences(8, seed=7, held_out=True)]
    base, results = served_version(first, spacy_predict(held_out))
    assert base == health["model"]["base_version"] and any(results)  # the pipeline in the image, offline
    for i, sentence in enumerate(sentences(40, seed=1), start=1):
        answer = first.post("/webhook", ner_webhook(i, sentence), timeout=2)
        assert answer.status_code == 201, answer.text
    job = wait_for_job(first, "5")
    assert job["status"] == "succeeded" and job["promoted"], job
    version, results = served_version(first, spacy_predict(held_out))
    assert version == job["version"] != base

    first.remove()
    second, _ = started(image, volume)
    second.wait_answering()
    assert served_version(second, spacy_predict(held_out)) == (version, results)

    broken.wait_out_start_period()
    statuses = [broken.check() for _ in range(3)]
    assert statuses[-1] == "unhealthy", (statuses, broken.logs())
