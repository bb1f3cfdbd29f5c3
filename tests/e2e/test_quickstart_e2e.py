"""The quickstarts' one-shot step (``labelzoo bootstrap``) against a real Label Studio: it creates the
demo project, connects the backend under the title of its model version so that the "Prediction score"
column and uncertainty sampling work at once, and the server renames the backend when a new version
is promoted so they keep working. Running the step twice changes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE_BACKEND, base_env
from tests.e2e.project import check_predictions, wait_for_job
from tests.e2e.reviews import review, sentiment

BASE = "template-tfidf"

pytestmark = pytest.mark.slow


def run_bootstrap(label_studio, server, tmp_path) -> subprocess.CompletedProcess[str]:
    env = base_env(tmp_path, LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=label_studio.pat)
    cmd = [sys.executable, "-m", "labelzoo.cli", "bootstrap", str(TEMPLATE_BACKEND), "--backend-url", server.url,
           "--public-url", label_studio.url, "--username", "e2e@example.com", "--timeout", "60"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_bootstrap_sets_up_a_demo_project_whose_scores_work(label_studio, ls_api, serve_for_ls, tmp_path):
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="6")
    out = run_bootstrap(label_studio, server, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    (project,) = [p for p in ls_api.get("/api/projects/", params={"page_size": 1000})["results"]
                  if p["title"] == "labelzoo template demo"]
    assert f"Open {label_studio.url}/projects/{project['id']} and log in as e2e@example.com" in out.stdout
    assert project["label_config"].strip() == (TEMPLATE_BACKEND / "label_config.xml").read_text().strip()
    (backend,) = ls_api.get("/api/ml/", params={"project": project["id"]})
    assert (backend["url"], backend["title"], backend["state"]) == (server.url, BASE, "CO")
    settings = ls_api.project(project["id"])
    assert settings["model_version"] == BASE and settings["sampling"] == "Uncertainty sampling"

    again = run_bootstrap(label_studio, server, tmp_path)  # idempotent: no second project or backend
    assert again.returncode == 0, again.stdout + again.stderr
    titles = [p["title"] for p in ls_api.get("/api/projects/", params={"page_size": 1000})["results"]]
    assert titles.count("labelzoo template demo") == 1
    assert len(ls_api.get("/api/ml/", params={"project": project["id"]})) == 1

    # annotations train a new version; the server renames the backend after it, and LS the project setting
    reviews = [review(i) for i in range(12)]
    ids = ls_api.import_tasks(project["id"], [{"text": text} for text, _ in reviews])
    for task, (_, label) in zip(ids[:6], reviews[:6], strict=True):
        ls_api.annotate(task, sentiment(label))
    job = wait_for_job(server.url, project["id"])
    assert job["status"] == "succeeded" and job["promoted"], job
    version = job["version"]
    deadline = time.monotonic() + 60  # the rename follows the promotion, which ends the job
    while ls_api.backend(backend["id"])["title"] != version and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ls_api.backend(backend["id"])["title"] == version
    assert ls_api.project(project["id"])["model_version"] == version
    log = Path(job["log_path"]).read_text()
    assert f"renamed 1 Label Studio backend(s) from '{BASE}' to '{version}'" in log

    ls_api.retrieve_predictions(project["id"])
    scores = {t: p["score"] for t, p in check_predictions(
        ls_api.predictions(project["id"]), ids, version, result_types={"choices"}).items()}
    shown = {t["id"]: t["predictions_score"] for t in ls_api.tasks(project["id"])}
    assert shown == pytest.approx(scores)  # the Data Manager's "Prediction score" column is filled
