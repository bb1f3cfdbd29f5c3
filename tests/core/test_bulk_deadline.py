"""A batch /predict past PREDICT_DEADLINE: it answers every task in time and hands the rest to a bulk job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelzoo.bulk.store import FINAL
from tests.conftest import FIXTURES
from tests.core.bulk_support import (  # noqa: F401 - fake_ls_fixture
    CONFIG,
    PROJECT,
    fake_ls_fixture,
    ls_env,
    texts,
    versions_per_task,
)
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import wait_for

SLOW_BACKEND = FIXTURES / "slow_backend"


def predict_body(ids: list[int]) -> dict[str, Any]:
    """A /predict body as Label Studio sends it for these tasks."""
    return {"tasks": [{"id": i, "data": {"text": f"task {i}"}} for i in ids], "label_config": CONFIG,
            "project": f"{PROJECT}.1718900000", "params": {"login": None, "password": None, "context": None}}


def only_job(client: Any) -> dict[str, Any]:
    (job,) = client.get(f"/bulk?project={PROJECT}").json["jobs"]
    return dict(job)


def test_a_batch_past_the_deadline_is_posted_by_a_bulk_job(
    fake_ls: FakeLabelStudio, make_client: Any, tmp_path: Path
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    gate = tmp_path / "gate"
    gate.touch()  # nothing can finish before the deadline
    client = make_client(SLOW_BACKEND, **ls_env(fake_ls, PREDICT_DEADLINE="0.3", SLOW_GATE=str(gate)))
    answer = client.post("/predict", json=predict_body(ids)).json
    results = answer["results"]
    assert len(results) == 6 and answer["model_version"] == "slow-1"  # one item per task, or LS drops them all
    assert all("result" not in item and item["model_version"] == "slow-1" for item in results)
    job = only_job(client)
    assert (job["kind"], job["status"], job["total"], job["model_version"]) == ("tasks", "running", 6, "slow-1")
    assert f"bulk job {job['id']} posts its prediction" in results[0]["error"]
    assert {item["deferred_to"] for item in results} == {job["id"]}

    # Label Studio sends the tasks again (the user clicked twice): the job has them, nothing is predicted twice
    again = client.post("/predict", json=predict_body(ids)).json["results"]
    assert all(f"bulk job {job['id']} is predicting this task" in item["error"] for item in again)
    assert {item["deferred_to"] for item in again} == {job["id"]}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'labelzoo_predicted_tasks_total{outcome="deferred"} 12.0' in metrics  # handed over, not failed
    assert 'labelzoo_predicted_tasks_total{outcome="failed"} 0.0' in metrics

    gate.unlink()
    done = wait_for(lambda: (j := only_job(client))["status"] in FINAL and j, 30, "the hand-off job")
    assert (done["status"], done["posted"], done["failed"]) == ("succeeded", 6, 0), done
    assert versions_per_task(fake_ls) == {i: ["slow-1"] for i in ids}  # the same version /setup reports


def test_what_finishes_in_time_is_answered_and_the_rest_posted_once(
    fake_ls: FakeLabelStudio, make_client: Any
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(8))
    # four batches of 0.3 s cannot all finish within a 0.5 s deadline
    client = make_client(SLOW_BACKEND, **ls_env(fake_ls, PREDICT_DEADLINE="0.5", SLOW_SECONDS="0.3"))
    results = client.post("/predict", json=predict_body(ids)).json["results"]
    assert len(results) == 8
    answered = {task_id for task_id, item in zip(ids, results, strict=True) if "result" in item}
    assert len(answered) < 8
    assert answered == set(ids[:len(answered)])  # a prefix: batches finish in order
    wait_for(lambda: only_job(client)["status"] in FINAL, 30, "the hand-off job")
    posted = {task_id for task_id, versions in versions_per_task(fake_ls).items() if versions}
    assert answered.isdisjoint(posted) and answered | posted == set(ids)  # every task stored exactly once
    assert all(len(versions) <= 1 for versions in versions_per_task(fake_ls).values())


def test_without_credentials_the_rest_is_left_for_label_studio_to_ask_again(make_client: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    client = make_client(SLOW_BACKEND, PREDICT_DEADLINE="0.3", SLOW_GATE=str(gate))
    results = client.post("/predict", json=predict_body([1, 2, 3])).json["results"]
    gate.unlink()
    assert len(results) == 3 and all("result" not in item for item in results)
    assert "Label Studio asks for it again next time" in results[0]["error"]
    assert not any("deferred_to" in item for item in results)
    assert client.get("/bulk").json["jobs"] == []


def test_a_batch_within_the_deadline_is_answered_whole(fake_ls: FakeLabelStudio, make_client: Any) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(5))
    client = make_client(SLOW_BACKEND, **ls_env(fake_ls, PREDICT_DEADLINE="30"))
    results = client.post("/predict", json=predict_body(ids)).json["results"]
    assert [item["result"][0]["value"]["choices"] for item in results] == [["cat"]] * 5
    assert client.get("/bulk").json["jobs"] == [] and fake_ls.predictions_of(PROJECT) == []
