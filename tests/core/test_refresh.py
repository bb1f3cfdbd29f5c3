"""After a promotion, the project's unlabelled tasks are predicted again with the new version and posted.

Uncertainty sampling and the score column in Label Studio only count predictions of the project's model version
(which follows the promoted version, see ``rename_backends_titled``), so without a refresh the tasks keep the old
model's scores, or none. The refresh is a bulk job of kind ``refresh``: unlabelled tasks only, all of them or the
``REFRESH_AFTER_PROMOTION`` that the previous model was least sure of; a newer promotion replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labelzoo.settings import Settings
from tests.conftest import KEYWORD_BACKEND
from tests.core.bulk_support import (  # noqa: F401 - fake_ls_fixture
    CONFIG,
    PROJECT,
    api_for,
    fake_ls_fixture,
    ls_env,
    texts,
    versions_per_task,
    wait_final,
)
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import (  # noqa: F401 - services_fixture
    created,
    make_settings,
    services_fixture,
    start_training,
    wait_for,
    wait_job,
)


def annotate(ls: FakeLabelStudio, task_id: int) -> None:
    ls.tasks[task_id]["annotations"].append({"id": task_id, "result": []})


def predicted(ls: FakeLabelStudio, task_id: int, version: str, score: float | None) -> None:
    made = sum(len(t["predictions"]) for t in ls.tasks.values())  # later predictions are newer
    ls.tasks[task_id]["predictions"].append({"id": made + 1, "model_version": version, "score": score, "result": [],
                                             "created_at": f"2026-01-01T00:00:{made:02d}Z"})  # fmt: skip


def test_the_unlabelled_tasks_are_listed_least_sure_first_when_limited(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(7))
    annotate(fake_ls, ids[0])  # labelled: never refreshed
    predicted(fake_ls, ids[1], "v2", 0.1)  # already holds the new version's prediction
    predicted(fake_ls, ids[2], "v1", 0.9)
    predicted(fake_ls, ids[3], "v1", 0.2)
    predicted(fake_ls, ids[4], "v1", 0.5)
    predicted(fake_ls, ids[5], "v0", 0.1)
    predicted(fake_ls, ids[5], "v1", 0.95)  # its newest prediction counts
    api = api_for(fake_ls)  # ids[6]: never predicted, so uncertainty sampling knows nothing of it: first
    assert api.unlabelled(str(PROJECT), "v2") == ([ids[2], ids[3], ids[4], ids[5], ids[6]], 7)
    assert api.unlabelled(str(PROJECT), "v2", limit=2) == ([ids[3], ids[6]], 7)
    assert api.unlabelled(str(PROJECT), "v2", limit=3) == ([ids[3], ids[4], ids[6]], 7)


def test_a_refresh_posts_the_new_version_for_the_unlabelled_tasks_only(
    fake_ls: FakeLabelStudio, make_runtime: Any
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    annotate(fake_ls, ids[0])
    predicted(fake_ls, ids[1], "keyword-0", 0.3)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="2"))
    job = runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1")
    assert job is not None and job["kind"] == "refresh" and job["model_version"] == "keyword-1"
    done = wait_final(runtime, job["id"])
    assert (done["status"], done["posted"], done["project_tasks"]) == ("succeeded", 5, 6), done
    versions = versions_per_task(fake_ls)
    assert versions[ids[0]] == [] and versions[ids[1]] == ["keyword-0", "keyword-1"]
    assert all(versions[i] == ["keyword-1"] for i in ids[2:])
    assert any(j["id"] == job["id"] for j in runtime.bulk.jobs(PROJECT))  # shown by GET /bulk


def test_a_newer_promotion_replaces_a_running_refresh(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    fake_ls.add_tasks(PROJECT, texts(4))
    fake_ls.delays[fake_ls.prefix + f"/api/projects/{PROJECT}/import/predictions"] = 0.5
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="1", BULK_PARALLEL="1"))
    first = runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1")
    second = runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1")  # as a second promotion would
    assert first is not None and second is not None and first["id"] != second["id"]
    assert wait_final(runtime, first["id"])["status"] == "cancelled"
    assert wait_final(runtime, second["id"])["status"] == "succeeded"


@pytest.mark.parametrize(("setting", "refreshes"), [("all", True), ("off", False)])
def test_refreshing_can_be_turned_off_and_needs_label_studio(
    fake_ls: FakeLabelStudio, make_runtime: Any, setting: str, refreshes: bool
) -> None:
    fake_ls.add_tasks(PROJECT, texts(2))
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, REFRESH_AFTER_PROMOTION=setting))
    assert (runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1") is not None) is refreshes
    offline = make_runtime(KEYWORD_BACKEND)  # no Label Studio credentials: nothing to post to
    assert offline.bulk.refresh_after_promotion(str(PROJECT), "keyword-1") is None


def test_a_pinned_project_is_not_refreshed(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, MODEL_VERSION_PIN=f"{PROJECT}=keyword-1"))
    assert runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-2") is None


def test_every_promotion_is_announced_with_its_project_and_version(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, train_after=0))
    heard: list[tuple[str, str]] = []
    service.on_promotion(lambda project, version: heard.append((project, version)))
    for i in (1, 2):
        service.handle_event(created(i, i))
    job = wait_job(service, service.handle_event(start_training())["job"])
    assert job["status"] == "succeeded"  # recorded at promotion; the listener hears of it right after
    assert wait_for(lambda: heard, 10, "the promotion to be announced") == [("12", job["version"])]


def test_the_setting_is_checked_at_start_up() -> None:
    assert Settings.from_env({"REFRESH_AFTER_PROMOTION": "250"}).refresh_limit == 250
    assert Settings.from_env({}).refresh_limit is None
    with pytest.raises(ValueError, match="REFRESH_AFTER_PROMOTION='0' must be all, off or a whole number"):
        Settings.from_env({"REFRESH_AFTER_PROMOTION": "0"})


def test_a_retrieve_after_the_refresh_does_not_predict_the_refreshed_tasks_again(
    fake_ls: FakeLabelStudio, make_runtime: Any
) -> None:
    """Label Studio's "Retrieve Predictions" may list the tasks lacking the version before the refresh posted."""
    from labelzoo.server.app import create_app

    ids = fake_ls.add_tasks(PROJECT, texts(4))
    annotate(fake_ls, ids[0])
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    job = runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1")
    assert wait_final(runtime, job["id"])["status"] == "succeeded"
    tasks = [{"id": i, "data": fake_ls.tasks[i]["data"]} for i in ids]
    body = {"tasks": tasks, "project": f"{PROJECT}.1700000000", "label_config": CONFIG}
    items = create_app(runtime).test_client().post("/predict", json=body).get_json()["results"]
    assert "result" in items[0]  # the labelled task: the refresh left it out
    assert all("result" not in item and item["deferred_to"] == job["id"] for item in items[1:]), items


def test_tasks_a_predict_answered_are_left_out_by_a_refresh_that_starts_after_it(
    fake_ls: FakeLabelStudio, make_runtime: Any
) -> None:
    """The other order: Label Studio has not stored the /predict answer yet when the refresh reads the tasks."""
    from labelzoo.server.app import create_app

    ids = fake_ls.add_tasks(PROJECT, texts(4))
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    client = create_app(runtime).test_client()
    tasks = [{"id": i, "data": fake_ls.tasks[i]["data"]} for i in ids[:2]]
    tasks.append({"id": ids[2], "data": {"other": "no text: the task fails"}})
    body = {"tasks": tasks, "project": f"{PROJECT}.1700000000", "label_config": CONFIG}
    items = client.post("/predict", json=body).get_json()["results"]
    assert ["result" in item for item in items] == [True, True, False]  # Label Studio stores the first two
    job = runtime.bulk.refresh_after_promotion(str(PROJECT), "keyword-1")
    done = wait_final(runtime, job["id"])
    assert (done["posted"], done["skipped"]) == (2, 2), done  # the failed task and the one never asked for
    assert {task for task, versions in versions_per_task(fake_ls).items() if versions} == {ids[2], ids[3]}
