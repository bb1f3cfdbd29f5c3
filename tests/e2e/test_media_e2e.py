"""Uploaded files: task data points at ``/data/upload/…`` and the backend downloads it from Label Studio
with the user's Personal Access Token (refresh → Bearer access token), to train and to predict."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import TEMPLATE_BACKEND
from tests.core.training_support import wait_for
from tests.e2e.project import check_predictions, wait_for_job
from tests.e2e.reviews import chosen, review, sentiment

URL_CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text().replace(
    '<Text name="text" value="$text"/>', '<Text name="text" value="$text" valueType="url"/>'
)

pytestmark = pytest.mark.slow


def label_studio_check(server_url: str) -> dict | None:
    """The backend's start-up check of LABEL_STUDIO_URL and its token (run in the background), once done."""
    health = requests.get(server_url + "/health", timeout=5).json()["label_studio"]
    return health if "ok" in health else None


def test_backend_downloads_uploaded_text_with_the_pat(label_studio, ls_project, serve_for_ls, tmp_path):
    assert 'valueType="url"' in URL_CONFIG
    files, truth = [], []
    for i in range(8):
        text, label = review(i)
        path = tmp_path / f"review {i}.txt"
        path.write_text(text)
        files.append(path)
        truth.append(label)
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="6")
    health = wait_for(lambda: label_studio_check(server.url), 30, "the backend's check of Label Studio")
    assert health["ok"] and health["token"] == "pat", health  # it authenticated with the PAT at start

    project = ls_project(URL_CONFIG, title="Uploaded reviews")
    tasks = project.upload(files)
    prefix = f"/data/upload/{project.id}/"
    assert all(t["data"]["text"].startswith(prefix) and t["data"]["text"].endswith(".txt") for t in tasks), tasks
    ids = [t["id"] for t in tasks]
    project.connect(server.url, "Template")
    downloads_before = len(label_studio.requests_logged(rf'"GET {prefix}'))

    # training on uploaded files: the job downloads each annotated task's text from LS
    for task, label in zip(ids[:6], truth[:6], strict=True):
        project.annotate(task, sentiment(label))
    job = wait_for_job(server.url, project.id)
    assert job["status"] == "succeeded" and job["examples"] == 6, job
    project.retrieve_predictions()
    by_task = check_predictions(project.predictions(), ids, job["version"], result_types={"choices"})
    assert [chosen(by_task[t]) for t in ids[6:]] == truth[6:]  # read from the files it downloaded

    downloads = label_studio.requests_logged(rf'"GET {prefix}[^"]*" 200')
    fetched = {line.split('"GET ', 1)[1].split()[0] for line in downloads}
    assert fetched == {t["data"]["text"] for t in tasks}, downloads
    assert not label_studio.requests_logged(rf'"GET {prefix}[^"]*" 40[13]')  # never without a valid token
    assert downloads_before == 0
    assert label_studio.requests_logged(r'"POST /api/token/refresh/ [^"]*" 200')
