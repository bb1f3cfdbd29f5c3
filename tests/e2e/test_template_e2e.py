"""The template backend with a real Label Studio: connect, retrieve predictions, annotate (webhooks), start
training from Label Studio, predict with the new version, and the model-version / backend-title trap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEMPLATE_BACKEND
from tests.e2e.project import check_predictions, wait_for_job
from tests.e2e.reviews import chosen, review, sentiment

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
BASE = "template-tfidf"
TITLE = "Template"

pytestmark = pytest.mark.slow


def test_template_learns_through_label_studio(label_studio, ls_project, serve_for_ls):
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="4")
    project = ls_project(CONFIG, title="Reviews")
    reviews = [review(i) for i in range(16)]
    ids = project.import_tasks({"text": text} for text, _ in reviews)
    truth = dict(zip(ids, (label for _, label in reviews), strict=True))
    before_connect, by_webhook, held_out = ids[:4], ids[4:8], ids[8:]

    # annotated before any backend is connected: no webhook exists yet, only "Start Training" pulls these
    for task in before_connect:
        project.annotate(task, sentiment(truth[task]))

    backend = project.connect(server.url, TITLE)
    assert backend["model_version"] == BASE  # what /setup answered
    assert project.settings()["model_version"] == TITLE  # LS selects the backend by its *title* (§1.10)
    assert [w["url"] for w in project.api.webhooks(project.id)] == [server.url + "/webhook"]

    # untrained: one empty prediction per task, stored under the base version, without a score
    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    check_predictions(project.predictions(), ids, BASE, result_types=None)
    assert all(p["score"] is None for p in project.predictions())

    # annotations through LS's API: its ANNOTATION_CREATED webhooks reach the backend, which trains after 4
    for task in by_webhook:
        project.annotate(task, sentiment(truth[task]))
    first = wait_for_job(server.url, project.id, lambda job: job["reason"] == "annotations")
    assert first["status"] == "succeeded" and first["promoted"], first
    assert first["examples"] == len(by_webhook)  # the 4 made before connecting never reached the backend

    # "Start Training": LS posts START_TRAINING; the backend pulls every annotation through the export API
    project.train()
    second = wait_for_job(server.url, project.id, lambda job: job["reason"] == "start_training")
    assert second["status"] == "succeeded" and second["promoted"], second
    assert second["examples"] == len(before_connect) + len(by_webhook)
    assert second["parent_version"] == first["version"]
    assert "pulled 8 annotations from Label Studio (4 new or changed)" in Path(second["log_path"]).read_text()
    assert label_studio.requests_logged(rf'"GET /api/projects/{project.id}/export\?[^"]*" 200')
    version = second["version"]
    assert version.startswith(f"{BASE}-p{project.id}-v2-"), version
    assert project.backend["model_version"] == version  # LS read the new version from /setup

    # the new version predicts every task again: one more prediction each, the old ones are kept
    project.retrieve_predictions()
    stored = project.predictions()
    by_task = check_predictions(stored, ids, version, result_types={"choices"})
    assert len(stored) == 2 * len(ids)
    assert {task: chosen(by_task[task]) for task in held_out} == {task: truth[task] for task in held_out}
    for prediction in by_task.values():
        assert prediction["result"][0]["from_name"] == "sentiment" and prediction["result"][0]["to_name"] == "text"
    # same version again: LS sends nothing new, so there are no duplicates (protocol P6)
    project.retrieve_predictions()
    assert len(project.predictions()) == 2 * len(ids)

    # opening a task that has predictions shows them and predicts nothing new
    opened = project.open(held_out[0])
    assert {p["model_version"] for p in opened["predictions"]} == {BASE, version}
    assert len(project.predictions()) == 2 * len(ids)
    # opening a task that has none makes LS ask the backend for this one task, with the current version
    text, label = review(17)
    (new_task,) = project.import_tasks([{"text": text}])
    opened = project.open(new_task)
    assert [p["model_version"] for p in opened["predictions"]] == [version], opened["predictions"]
    assert chosen(opened["predictions"][0]) == label
    project.open(new_task)
    assert len(project.predictions(version)) == len(ids) + 1


def test_prediction_score_column_needs_the_prediction_version(ls_project, serve_for_ls):
    """§6: the Data Manager's "Prediction score" averages predictions whose model_version equals the
    project's model_version, which LS sets to the backend *title* on connect: empty until the user picks
    the prediction version in the settings, then the score of each task's prediction, and sortable."""
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="6")
    project = ls_project(CONFIG, title="Scores")
    reviews = [review(i) for i in range(12)]
    ids = project.import_tasks({"text": text} for text, _ in reviews)
    project.connect(server.url, TITLE)
    for task, (_, label) in zip(ids[:6], reviews[:6], strict=True):
        project.annotate(task, sentiment(label))
    job = wait_for_job(server.url, project.id)
    assert job["status"] == "succeeded", job
    version = job["version"]
    project.retrieve_predictions()
    scores = {task: p["score"] for task, p in check_predictions(
        project.predictions(), ids, version, result_types={"choices"}).items()}

    assert project.settings()["model_version"] == TITLE
    assert all(t["predictions_score"] is None for t in project.tasks())  # the trap: no prediction is "Template"

    assert project.select_model_version(version)["model_version"] == version
    shown = {t["id"]: t["predictions_score"] for t in project.tasks()}
    assert shown == pytest.approx(scores)
    ordered = [t["id"] for t in project.tasks({"ordering": ["tasks:predictions_score"]})]
    assert [scores[t] for t in ordered] == sorted(scores.values())
    assert len(set(scores.values())) > 1  # so the order means something
