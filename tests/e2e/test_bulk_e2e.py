"""Bulk pre-annotation with a real Label Studio: a run killed part-way and resumed, and a /predict past its
deadline whose remaining tasks are posted through the API. Every task ends with one prediction of the version."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import FIXTURES, TEMPLATE_BACKEND, base_env
from tests.core.training_support import wait_for
from tests.e2e.project import check_predictions, wait_bulk, wait_for_job
from tests.e2e.reviews import review, sentiment

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
SLOW_BACKEND = FIXTURES / "slow_backend"
TASKS = 300

pytestmark = pytest.mark.slow


def test_an_interrupted_bulk_run_resumes_to_one_prediction_per_task(label_studio, ls_project, serve_for_ls, tmp_path):
    project = ls_project(CONFIG, title="Bulk")
    reviews = [review(i) for i in range(TASKS)]
    ids = project.import_tasks({"text": text} for text, _ in reviews)
    server = serve_for_ls(TEMPLATE_BACKEND, TRAIN_AFTER_ANNOTATIONS="0")
    project.connect(server.url, "Template")
    for task, (_, label) in zip(ids[:12], reviews[:12], strict=True):
        project.annotate(task, sentiment(label))
    project.train()
    job = wait_for_job(server.url, project.id, lambda j: j["reason"] == "start_training")
    assert job["status"] == "succeeded" and job["promoted"], job
    version = job["version"]

    # the CLI shares the server's MODEL_DIR, so it predicts with the trained version
    env = base_env(tmp_path, LABEL_STUDIO_API_KEY=label_studio.pat)
    command = [sys.executable, "-m", "labelzoo.cli", "predict", str(TEMPLATE_BACKEND), "--project", str(project.id),
               "--label-studio-url", label_studio.url, "--chunk-size", "20"]
    first = subprocess.Popen([*command, "--rate-limit", "3"], env=env, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(project.predictions(version)) >= 40, 120, "two chunks in Label Studio")
    first.send_signal(signal.SIGKILL)  # no chance to clean up: its job stays "running" under a dead process
    first.wait(30)
    stored = len(project.predictions(version))
    assert first.returncode == -signal.SIGKILL and 40 <= stored < TASKS

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    assert f"{TASKS} tasks in project {project.id}, {TASKS - stored} to predict" in second.stderr
    by_task = check_predictions(project.predictions(), ids, version, result_types={"choices"})
    right = sum(p["result"][0]["value"]["choices"] == [label] for p, (_, label) in
                zip((by_task[i] for i in ids), reviews, strict=True))
    assert right >= 0.9 * TASKS  # real predictions of the trained model

    # started again, from the server this time: nothing left to do, nothing stored twice
    answer = requests.post(f"{server.url}/bulk", json={"project": project.id}, timeout=10)
    assert answer.status_code == 201, answer.text
    again = wait_bulk(server.url, answer.json()["id"], timeout=120)
    assert (again["status"], again["total"], again["posted"]) == ("succeeded", 0, 0), again
    jobs = requests.get(f"{server.url}/bulk", params={"project": project.id}, timeout=5).json()["jobs"]
    assert {j["status"] for j in jobs} == {"succeeded", "interrupted"}  # the killed run's job was closed
    assert len(project.predictions()) == TASKS


def test_retrieve_predictions_past_the_deadline_stores_every_task_once(ls_project, serve_for_ls):
    project = ls_project(CONFIG, title="Deadline")
    ids = project.import_tasks({"text": review(i)[0]} for i in range(20))
    # ten batches of 0.3 s: about three finish within the 1 s deadline, the bulk job posts the others
    server = serve_for_ls(SLOW_BACKEND, PREDICT_DEADLINE="1", SLOW_SECONDS="0.3", SLOW_BATCH_SIZE="2")
    project.connect(server.url, "Slow")
    started = time.monotonic()
    project.retrieve_predictions()
    assert time.monotonic() - started < 30  # Label Studio got its answer long before its 100 s timeout
    (job,) = requests.get(f"{server.url}/bulk", params={"project": project.id}, timeout=5).json()["jobs"]
    assert job["kind"] == "tasks" and 0 < job["total"] <= len(ids), job
    done = wait_bulk(server.url, job["id"], timeout=120)
    assert (done["status"], done["posted"]) == ("succeeded", job["total"]), done
    # Label Studio stored the answered ones from /predict, the job posted the rest: one each, none lost
    check_predictions(project.predictions(), ids, "slow-1", result_types={"choices"})

    project.retrieve_predictions()  # Label Studio counts every task as predicted: nothing is added
    check_predictions(project.predictions(), ids, "slow-1", result_types={"choices"})
