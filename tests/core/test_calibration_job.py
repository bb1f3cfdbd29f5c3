"""A calibration job: the project's task-score map of a version, fitted on the human annotations it did not learn
from, stored, and applied to the task scores it serves for that project (region scores stay the model's own).
"Start Training" on a backend that does not learn runs one."""

from __future__ import annotations

from typing import Any

import pytest

from labelzoo.scoremap import ScoreMap
from labelzoo.store import ScoreMaps, open_store
from tests.conftest import KEYWORD_BACKEND
from tests.core.bulk_support import CONFIG, PROJECT, fake_ls_fixture, ls_env, wait_final  # noqa: F401
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.test_autolabel import held_out_project, labelzoo_predict
from tests.core.training_support import services_fixture, wait_for  # noqa: F401 - services


def served(client: Any, text: str) -> dict[str, Any]:
    body = {"tasks": [{"id": 1, "data": {"text": text}}], "project": PROJECT, "label_config": CONFIG}
    (item,) = client.post("/predict", json=body).get_json()["results"]
    return item


def test_a_calibration_job_fits_the_projects_map_and_the_version_serves_it(fake_ls: FakeLabelStudio,
                                                                           make_client: Any) -> None:
    held_out_project(fake_ls)  # 40 annotated tasks: right from score 0.80 up, wrong below
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls))
    assert served(client, "a cat sits score=0.95")["score"] == 0.95  # raw before
    started = client.post("/bulk", json={"project": PROJECT, "calibrate": True})
    assert started.status_code == 201 and started.get_json()["kind"] == "calibrate", started.get_json()
    job_id = started.get_json()["id"]
    done = wait_for(lambda: (job := client.get(f"/bulk/{job_id}").get_json())["status"] != "running"
                    and job["status"] != "queued" and job, 60, "the job to end")
    assert done["status"] == "succeeded", done
    assert "task scores calibrated on 40 held-out tasks (20 right)" in done["message"]
    scores = ScoreMap.from_json(done["calibration"]["score_map"], "the report")  # the report holds the map
    high, low = served(client, "a cat sits score=0.95"), served(client, "a dog sits score=0.65")
    assert high["score"] == pytest.approx(scores(0.95)) and low["score"] == pytest.approx(scores(0.65))
    assert high["score"] > 0.9 and low["score"] < 0.35  # probabilities: right above 0.8, wrong below
    assert high["result"][0]["score"] == 0.95  # the region's score is the model's own
    assert not fake_ls.requests_to(fake_ls.prefix + "/api/predictions/") or all(
        r.method == "GET" for r in fake_ls.requests_to(fake_ls.prefix + "/api/predictions/"))  # nothing posted


def test_too_few_annotations_fail_the_job_saying_so(fake_ls: FakeLabelStudio, make_client: Any) -> None:
    tasks = fake_ls.add_tasks(PROJECT, [{"text": "a cat sits score=0.9"}] * 3)
    for task in tasks:
        fake_ls.tasks[task]["annotations"].append({"id": task, "task": task, "was_cancelled": False,
                                                   "ground_truth": False, "result": []})
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls))
    job_id = client.post("/bulk", json={"project": PROJECT, "calibrate": True}).get_json()["id"]
    done = wait_for(lambda: (job := client.get(f"/bulk/{job_id}").get_json())["status"] == "failed" and job, 60,
                    "the job to fail")
    assert "calibrating needs 10: annotate more" in done["message"]
    bad = client.post("/bulk", json={"project": PROJECT, "calibrate": "yes"})
    assert bad.status_code == 400 and "'calibrate' must be true or false" in bad.get_json()["message"]


def test_start_training_on_a_backend_that_does_not_learn_calibrates_it(fake_ls: FakeLabelStudio,
                                                                       make_runtime: Any) -> None:
    held_out_project(fake_ls)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    answer = runtime.training.handle_event({"action": "START_TRAINING", "project": {"id": PROJECT,
                                                                                   "label_config": CONFIG}})
    job = runtime.training.job(answer["job"])
    assert job["status"] == "skipped" and "calibrating its task scores" in job["message"], job
    (calibration,) = [j for j in runtime.bulk.jobs(PROJECT) if j["kind"] == "calibrate"]
    assert wait_final(runtime, calibration["id"])["status"] == "succeeded"
    assert ScoreMaps(runtime.db).get(str(PROJECT), "keyword-1") is not None


def test_with_calibration_off_the_stored_map_is_not_served(fake_ls: FakeLabelStudio, make_client: Any,
                                                            tmp_path: Any) -> None:
    db = open_store(tmp_path / "models")
    ScoreMaps(db).put(str(PROJECT), "keyword-1", ScoreMap(a=2.0, b=-1.0, tasks=40, right=20))
    db.close()
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls, CALIBRATE_TASK_SCORES="false"))
    assert served(client, "a cat sits score=0.95")["score"] == 0.95
    on = make_client(KEYWORD_BACKEND, **ls_env(fake_ls))
    assert served(on, "a cat sits score=0.95")["score"] == pytest.approx(ScoreMap(2.0, -1.0, 40, 20)(0.95))


def test_the_command_line_calibrates_and_the_server_then_serves_the_map(fake_ls: FakeLabelStudio, make_client: Any,
                                                                        tmp_path: Any) -> None:
    held_out_project(fake_ls)
    ran = labelzoo_predict(fake_ls, tmp_path, "--project", str(PROJECT), "--calibrate")
    assert ran.returncode == 0, ran.stderr
    assert "task scores calibrated on 40 held-out tasks (20 right)" in ran.stderr
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls))  # the same MODEL_DIR
    assert served(client, "a cat sits score=0.95")["score"] > 0.9
    wrong = labelzoo_predict(fake_ls, tmp_path, "--calibrate")
    assert wrong.returncode != 0 and "--calibrate measures the model on a Label Studio project" in wrong.stderr
