"""Bulk jobs against a fake Label Studio: in the foreground, from the server, resumed after a crash or a stop."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from labelzoo.bulk.store import FINAL, ChunkCounts
from labelzoo.store.procs import process_token
from tests.conftest import FIXTURES, KEYWORD_BACKEND, base_env
from tests.core.bulk_support import (  # noqa: F401 - fake_ls_fixture
    CONFIG,
    PROJECT,
    fake_ls_fixture,
    ls_env,
    texts,
    versions_per_task,
    wait_final,
)
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import wait_for

SLOW_BACKEND = FIXTURES / "slow_backend"
IMPORT = f"/api/projects/{PROJECT}/import/predictions"


def dead_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(proc.pid)
    proc.wait()
    return token


def test_a_job_predicts_each_task_lacking_the_version_once(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(10))
    fake_ls.tasks[ids[0]]["predictions"].append({"model_version": "keyword-1", "result": []})
    fake_ls.tasks[ids[1]]["predictions"].append({"model_version": "keyword-1-old", "result": []})
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="3"))
    job = runtime.bulk.run_here(PROJECT)
    assert (job["status"], job["executor"], job["model_version"]) == ("succeeded", "cli", "keyword-1")
    assert (job["total"], job["posted"], job["failed"], job["project_tasks"]) == (9, 9, 0, 10)
    assert job["chunks"] == {"total": 3, "done": 3, "failed": 0}
    versions = versions_per_task(fake_ls)
    assert all(v.count("keyword-1") == 1 for v in versions.values())
    assert versions[ids[1]] == ["keyword-1-old", "keyword-1"]
    stored = {p["task"]: p for p in fake_ls.predictions_of(PROJECT) if p.get("task")}
    assert stored[ids[3]]["result"][0]["value"]["choices"] == ["cat"] and stored[ids[3]]["score"] == 0.75

    posts = len(fake_ls.requests_to(IMPORT))
    again = runtime.bulk.run_here(PROJECT)  # safe to run twice: nothing left to do
    assert (again["status"], again["total"], again["posted"]) == ("succeeded", 0, 0)
    assert len(fake_ls.requests_to(IMPORT)) == posts and versions_per_task(fake_ls) == versions


def test_the_server_runs_a_job_in_the_background(fake_ls: FakeLabelStudio, make_client: Any) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(7))
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="2"))
    started = client.post("/bulk", json={"project": PROJECT})
    assert started.status_code == 201, started.json
    job_id = started.json["id"]
    assert started.json["executor"] == "thread" and started.json["kind"] == "project"

    def ended() -> dict[str, Any] | None:
        job = client.get(f"/bulk/{job_id}").json
        return job if job["status"] in FINAL else None

    job = wait_for(ended, 60, "the bulk job")
    assert (job["status"], job["posted"], job["progress"]) == ("succeeded", 7, 1.0), job
    assert versions_per_task(fake_ls) == {i: ["keyword-1"] for i in ids}
    listed = client.get(f"/bulk?project={PROJECT}").json["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    assert client.get("/bulk/nope").status_code == 404


def test_without_label_studio_credentials_there_is_no_job(make_client: Any) -> None:
    answer = make_client(KEYWORD_BACKEND).post("/bulk", json={"project": PROJECT})
    assert answer.status_code == 400 and answer.json["error"] == "bad_request"
    assert "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in answer.json["message"]


def test_a_running_job_is_returned_again_claims_its_tasks_and_can_be_cancelled(
    fake_ls: FakeLabelStudio, make_client: Any, tmp_path: Path
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    gate = tmp_path / "gate"
    gate.touch()
    client = make_client(SLOW_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="2", SLOW_GATE=str(gate)))
    job_id = client.post("/bulk", json={"project": PROJECT}).json["id"]
    wait_for(lambda: client.get(f"/bulk/{job_id}").json["total"] == 6, 30, "the job to be planned")
    again = client.post("/bulk", json={"project": PROJECT})
    assert again.status_code == 200 and again.json["id"] == job_id

    # /predict leaves the claimed tasks to the job instead of storing a second prediction
    body = {"tasks": [{"id": ids[0], "data": {"text": "a cat"}}], "label_config": CONFIG, "project": f"{PROJECT}.1"}
    (item,) = client.post("/predict", json=body).json["results"]
    assert "result" not in item and f"bulk job {job_id} is predicting this task" in item["error"]

    def reading(n: int) -> bool:  # a chunk reads its tasks right before predicting them
        return len([r for r in fake_ls.requests_to("/api/tasks/") if "selectedItems" in r.query]) >= n

    wait_for(lambda: reading(2), 30, "two chunks under way (BULK_PARALLEL=2), waiting at the gate")
    cancelled = client.post(f"/bulk/{job_id}/cancel").json
    assert cancelled["cancel_requested"] and cancelled["status"] == "running"
    gate.unlink()
    job = wait_for(lambda: (j := client.get(f"/bulk/{job_id}").json)["status"] in FINAL and j, 30, "the cancel")
    assert job["status"] == "cancelled" and job["chunks"]["done"] == 2
    assert sum(len(v) for v in versions_per_task(fake_ls).values()) == 4  # the chunks under way were posted
    # claims are gone with the job: a task of the chunk that never ran is predicted; one the job posted is not
    # (Label Studio holds its prediction of this version)
    posted = {task for task, versions in versions_per_task(fake_ls).items() if versions}
    left = next(i for i in ids if i not in posted)
    other = {"tasks": [{"id": left, "data": {"text": "a cat"}}], "label_config": CONFIG, "project": f"{PROJECT}.1"}
    assert client.post("/predict", json=other).json["results"][0]["result"]
    assert "result" not in client.post("/predict", json=body).json["results"][0]


def test_a_job_whose_process_died_is_resumed_by_the_next_server(
    fake_ls: FakeLabelStudio, make_runtime: Any
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    env = ls_env(fake_ls, BULK_CHUNK_SIZE="2")
    crashed = make_runtime(KEYWORD_BACKEND, wait=False, **env).bulk.store
    job = crashed.create(str(PROJECT), "project", "thread", "keyword-1", label_config=CONFIG, runner=dead_token())
    chunks = crashed.plan(job.id, str(PROJECT), [ids[0:2], ids[2:4], ids[4:6]], project_tasks=6)
    fake_ls.tasks[ids[0]]["predictions"].append({"model_version": "keyword-1", "result": []})
    fake_ls.tasks[ids[1]]["predictions"].append({"model_version": "keyword-1", "result": []})
    crashed.finish_chunk(job.id, chunks[0].seq, ChunkCounts(posted=2))  # done before the crash

    server = make_runtime(KEYWORD_BACKEND, **env)  # start() resumes the job
    resumed = wait_final(server, job.id)
    assert (resumed["status"], resumed["posted"], resumed["chunks"]["done"]) == ("succeeded", 6, 3), resumed
    assert versions_per_task(fake_ls) == {i: ["keyword-1"] for i in ids}
    assert len(fake_ls.requests_to(IMPORT)) == 2  # only the two pending chunks


def test_a_stopping_server_requeues_its_job_for_the_next_one(
    fake_ls: FakeLabelStudio, make_runtime: Any, tmp_path: Path
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    gate = tmp_path / "gate"
    gate.touch()
    env = ls_env(fake_ls, BULK_CHUNK_SIZE="2", SLOW_GATE=str(gate))
    first = make_runtime(SLOW_BACKEND, **env)
    job, _ = first.bulk.start(PROJECT)
    wait_for(lambda: first.bulk.job(job["id"])["total"] == 6, 30, "the job to be planned")
    closing = threading.Thread(target=first.close)
    closing.start()  # the job stops after the chunk under way
    gate.unlink()
    closing.join(30)
    stopped = first.bulk.store.get(job["id"])
    assert stopped is not None and (stopped.status, stopped.runner) == ("queued", None)

    second = make_runtime(SLOW_BACKEND, **env)
    assert wait_final(second, job["id"])["status"] == "succeeded"
    assert versions_per_task(fake_ls) == {i: ["slow-1"] for i in ids}


def test_a_label_config_the_backend_cannot_fill_fails_the_job(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    fake_ls.projects[0]["label_config"] = '<View><Image name="i" value="$image"/></View>'
    fake_ls.add_tasks(PROJECT, texts(2))
    job = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls)).bulk.run_here(PROJECT)
    assert job["status"] == "failed" and "no control the 'keyword_backend' backend can fill" in job["error"]
    assert fake_ls.requests_to(IMPORT) == []


def test_cli_predicts_a_label_studio_project(fake_ls: FakeLabelStudio, tmp_path: Path) -> None:
    ids = fake_ls.add_tasks(PROJECT, [*texts(4), {"text": "FAIL"}])
    env = base_env(tmp_path, LABEL_STUDIO_API_KEY=fake_ls.legacy_token)
    proc = subprocess.run(
        [sys.executable, "-m", "labelzoo.cli", "predict", str(KEYWORD_BACKEND), "--project", str(PROJECT),
         "--label-studio-url", fake_ls.url, "--chunk-size", "2", "--rate-limit", "0"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr  # one task failed
    assert "5 tasks in project 7, 5 to predict" in proc.stderr
    assert "4 predictions posted to Label Studio, 0 tasks skipped" in proc.stderr and "1 failed" in proc.stderr
    assert f"task {ids[4]}: cannot classify 'FAIL'" in proc.stderr
    assert versions_per_task(fake_ls) == {**{i: ["keyword-1"] for i in ids[:4]}, ids[4]: []}
