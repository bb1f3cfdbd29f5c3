"""Active learning in a real Label Studio: after a promotion the unlabelled tasks carry the new version's
predictions, and uncertainty sampling hands out the one the new model is least sure of.

The backend is titled after its model version, as ``labelzoo bootstrap`` connects it: Label Studio's sampling
and score column count the predictions of the project's model version, which is the backend's title; the
backend renames itself after each promotion, and its refresh job (``REFRESH_AFTER_PROMOTION``, on by default,
off in the other end-to-end tests) posts the new version's predictions for every unlabelled task.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.conftest import TEMPLATE_BACKEND
from tests.e2e.project import check_predictions, wait_for_job
from tests.e2e.reviews import review, sentiment

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
BASE = "template-tfidf"

pytestmark = pytest.mark.slow


def wait_for_refresh(server_url: str, project: int, version: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = requests.get(server_url + "/bulk", params={"project": str(project)}, timeout=5).json()["jobs"]
        for job in jobs:
            if job["kind"] == "refresh" and job["model_version"] == version and job["status"] != "running":
                return job
        time.sleep(0.3)
    raise TimeoutError(f"no finished refresh of {version} after {timeout:.0f} s: {jobs}")


def test_after_a_promotion_uncertainty_sampling_follows_the_new_model(ls_project, serve_for_ls):
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="6", REFRESH_AFTER_PROMOTION="all")
    project = ls_project(CONFIG, title="Active learning", sampling="Uncertainty sampling")
    reviews = [review(i) for i in range(20)]
    ids = project.import_tasks({"text": text} for text, _ in reviews)
    labelled, unlabelled = ids[:6], ids[6:]
    project.connect(server.url, BASE)
    assert project.settings()["model_version"] == BASE

    for task, (_, label) in zip(labelled, reviews[:6], strict=True):
        project.annotate(task, sentiment(label))
    job = wait_for_job(server.url, project.id)
    assert job["status"] == "succeeded" and job["promoted"], job
    version = job["version"]

    refresh = wait_for_refresh(server.url, project.id, version)
    assert refresh["status"] == "succeeded" and refresh["posted"] == len(unlabelled), refresh
    assert project.settings()["model_version"] == version  # the backend renamed itself; LS followed
    by_task = check_predictions(project.predictions(version), unlabelled, version, result_types={"choices"})
    scores = {task: prediction["score"] for task, prediction in by_task.items()}
    assert len(set(scores.values())) > 1, scores  # so "the least sure" means something

    handed = project.api.get(f"/api/projects/{project.id}/next/")
    assert handed["id"] == min(scores, key=scores.get), (handed["id"], scores)
