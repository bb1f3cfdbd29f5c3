"""Background training jobs: debounce, one at a time, cancellation, failures, progress, crashes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import flask
import pytest

from labelzoo.errors import NotFound
from labelzoo.media import MediaSettings
from labelzoo.training import TrainingService
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import (  # noqa: F401 - services_fixture
    BASE,
    KEYWORD,
    annotation,
    created,
    make_settings,
    python,
    services_fixture,
    start_training,
    task,
    train,
    wait_for,
    wait_job,
)

DIED = "worker died (killed?) during training; the previous version keeps serving"


def running(service: TrainingService, job_id: str) -> dict[str, Any]:
    """Wait until the job runs and its training set is fixed."""
    return wait_for(
        lambda: (j := service.job(job_id))["status"] == "running" and j["examples"] and j,
        20,
        f"job {job_id} to run",
    )


def project_dir_entries(service: TrainingService, project: str = "12") -> set[str]:
    return {p.name for p in (service.model_dir / project).iterdir()}


def test_debounce_then_follow_up_job_for_annotations_that_arrived_meanwhile(
    tmp_path: Path, services: Any
) -> None:
    service = services(make_settings(tmp_path, train_after=3, STEPPER_STEP_SECONDS=0.25))
    assert service.handle_event(created(1, 1))["job"] is None
    assert service.handle_event(created(2, 2))["job"] is None
    answer = service.handle_event(created(3, 3))
    first = answer["job"]
    assert first is not None and answer["pending"] == 3
    assert running(service, first)["examples"] == 3

    answers = [service.handle_event(created(i, i)) for i in (4, 5, 6)]
    assert [a["pending"] for a in answers] == [1, 2, 3]  # counted from when the running job started
    assert [a["job"] for a in answers[:2]] == [None, None]
    follow_up = answers[2]["job"]
    assert follow_up not in (None, first) and service.job(follow_up)["status"] == "queued"
    assert service.handle_event(created(7, 7))["job"] is None  # the queued job will include it

    done = wait_job(service, first)
    later = wait_job(service, follow_up)
    assert done["status"] == later["status"] == "succeeded", (done, later)
    assert (done["examples"], later["examples"]) == (3, 7)
    assert later["started_at"] >= done["finished_at"]
    assert later["parent_version"] == done["version"]
    assert service.current_version("12") == later["version"]
    assert len(service.jobs("12")) == 2


def test_no_automatic_training_when_disabled_or_impossible(tmp_path: Path, services: Any) -> None:
    off = services(make_settings(tmp_path / "off", train_after=0))
    assert all(off.handle_event(created(i, i))["job"] is None for i in range(5))
    assert off.jobs() == []
    keyword = services(make_settings(tmp_path / "kw", train_after=1), path=KEYWORD)
    assert keyword.handle_event(created(1, 1))["job"] is None
    answer = keyword.handle_event(start_training())
    job = keyword.job(answer["job"])
    assert job["status"] == "skipped" and "does not learn from annotations" in job["message"]
    empty = services(make_settings(tmp_path / "empty"))
    job = wait_job(empty, empty.handle_event(start_training())["job"])
    assert job["status"] == "skipped" and job["message"].startswith("no annotations to train on")


def test_one_job_at_a_time_per_project_across_two_services(tmp_path: Path, services: Any) -> None:
    settings = make_settings(tmp_path, STEPPER_STEP_SECONDS=0.15)
    a, b = services(settings), services(settings)
    a.handle_event(created(1, 1))
    first = a.start_training("12")["id"]
    running(a, first)
    second = b.start_training("12")["id"]
    assert second != first and b.job(second)["status"] == "queued"
    assert a.start_training("12")["id"] == second  # the queued job is shared, not duplicated
    b.handle_event(created(2, 2, project_id=13))
    other = b.start_training("13")["id"]

    seen_running: list[int] = []
    while any(a.job(j)["status"] in ("queued", "running") for j in (first, second, other)):
        seen_running.append(sum(j["status"] == "running" for j in a.jobs()))
        time.sleep(0.02)
    assert max(seen_running) == 1  # one local training per MODEL_DIR, whichever process runs it
    jobs = {j: a.job(j) for j in (first, second, other)}
    assert {j["status"] for j in jobs.values()} == {"succeeded"}, jobs
    assert jobs[second]["started_at"] >= jobs[first]["finished_at"]


def test_cancel_a_queued_job_it_never_starts(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, STEPPER_STEP_SECONDS=0.2))
    service.handle_event(created(1, 1))
    first = service.start_training("12")["id"]
    running(service, first)
    queued = service.start_training("12")["id"]
    cancelled = service.cancel(queued)
    assert (cancelled["status"], cancelled["message"]) == ("cancelled", "cancelled before it started")
    assert wait_job(service, first)["status"] == "succeeded"
    time.sleep(1.2)  # longer than the runner's poll interval
    assert service.job(queued)["started_at"] is None and service.job(queued)["status"] == "cancelled"
    assert service.cancel(first)["status"] == "succeeded"  # cancelling a finished job changes nothing
    with pytest.raises(NotFound):
        service.cancel("nope")


def test_cancel_a_running_job(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, STEPPER_STEPS=40, STEPPER_STEP_SECONDS=0.1))
    service.handle_event(created(1, 1))
    job_id = service.start_training("12")["id"]
    wait_for(lambda: service.job(job_id)["progress"] > 0, 20, "progress")
    assert service.cancel(job_id)["cancel_requested"] is True
    job = wait_job(service, job_id)
    assert job["status"] == "cancelled" and job["version"] is None
    assert "previous version keeps serving" in job["message"]
    assert service.current_version("12") == BASE
    assert project_dir_entries(service) == {"jobs"}
    log = Path(job["log_path"]).read_text()
    assert "cancel requested" in log and "cancelled at step" in log  # fit() saw ctx.cancelled()


def test_a_job_that_ignores_cancel_is_terminated_after_the_grace_period(
    tmp_path: Path, services: Any
) -> None:
    settings = make_settings(
        tmp_path, STEPPER_STEPS=100, STEPPER_STEP_SECONDS=0.1, STEPPER_IGNORE_CANCEL="true"
    )
    service = services(settings, cancel_grace=0.5)
    service.handle_event(created(1, 1))
    job_id = service.start_training("12")["id"]
    wait_for(lambda: service.job(job_id)["progress"] > 0, 20, "progress")
    started = time.monotonic()
    service.cancel(job_id)
    job = wait_job(service, job_id)
    assert time.monotonic() - started < 5
    assert job["status"] == "cancelled" and job["progress"] < 0.5
    assert "terminating it" in Path(job["log_path"]).read_text()
    assert project_dir_entries(service) == {"jobs"}


def test_a_failure_is_recorded_with_its_traceback(tmp_path: Path, services: Any) -> None:
    good = services(make_settings(tmp_path))
    v1 = train(good, (1, 1, "cat"))["version"]
    good.close()
    failing = services(make_settings(tmp_path, STEPPER_FAIL_AT=1))
    job = train(failing, (2, 2, "dog"))
    assert job["status"] == "failed"
    assert job["error"] == "ValueError: boom at step 1"
    assert job["message"].startswith(
        "training failed: ValueError: boom at step 1; the previous version keeps"
    )
    assert job["log_path"] in job["message"]
    log = Path(job["log_path"]).read_text()
    assert "Traceback (most recent call last)" in log and 'raise ValueError(f"boom at step {step}")' in log
    assert failing.current_version("12") == v1
    assert project_dir_entries(failing) == {"jobs", v1}


def test_progress_and_metrics_are_visible_while_training(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, STEPPER_STEPS=4, STEPPER_STEP_SECONDS=0.4))
    service.handle_event(created(1, 1))
    job_id = service.start_training("12")["id"]
    mid = wait_for(lambda: 0 < (j := service.job(job_id))["progress"] < 1 and j, 20, "progress")
    assert mid["status"] == "running" and mid["message"].startswith("step ")
    assert "loss" in mid["metrics"]
    job = wait_job(service, job_id)
    assert job["progress"] == 1.0
    assert job["metrics"] == {"loss": 0.25, "accuracy": 0.9}
    assert "progress 50% step 2/4 loss=0.5" in Path(job["log_path"]).read_text()
    assert service.versions("12")[0]["metrics"] == {"loss": 0.25, "accuracy": 0.9}


def test_fit_may_decline_promotion(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, STEPPER_PROMOTE="false"))
    job = train(service, (1, 1, "cat"), (2, 2, "dog"))
    assert (job["status"], job["message"], job["version"]) == (
        "succeeded",
        "succeeded, not promoted: 2 examples",
        None,
    )
    assert service.current_version("12") == BASE
    assert project_dir_entries(service) == {"jobs"}


def _first_version_then_slow_service(tmp_path: Path, services: Any) -> tuple[str, Path]:
    fast = services(make_settings(tmp_path))
    v1 = train(fast, (1, 1, "cat"))["version"]
    fast.close()
    return v1, tmp_path / "midway"


def test_sigkill_of_the_training_process_keeps_the_previous_version(tmp_path: Path, services: Any) -> None:
    v1, midway = _first_version_then_slow_service(tmp_path, services)
    slow = services(
        make_settings(tmp_path, STEPPER_STEPS=6, STEPPER_STEP_SECONDS=0.5, STEPPER_MIDWAY_FILE=midway)
    )
    job = train_in_background(slow)
    pid = int(wait_for(lambda: midway.exists() and midway.read_text(), 20, "the training to be half-way"))
    assert any(p.name.startswith(".staging-") for p in (slow.model_dir / "12").iterdir())  # half-written
    os.kill(pid, signal.SIGKILL)
    job = wait_job(slow, job)
    assert job["status"] == "failed"
    assert job["message"] == (
        "training process killed by SIGKILL (out of memory?); the previous version keeps serving"
    )
    assert slow.current_version("12") == v1
    assert project_dir_entries(slow) == {"jobs", v1}

    restarted = services(make_settings(tmp_path))
    restarted.recover()
    assert restarted.current_version("12") == v1
    assert restarted.job(job["id"])["status"] == "failed"
    assert project_dir_entries(restarted) == {"jobs", v1}


def test_server_killed_mid_training_is_recovered_at_restart(tmp_path: Path, services: Any) -> None:
    v1, midway = _first_version_then_slow_service(tmp_path, services)
    server = python(
        f"""
import time
from pathlib import Path
from tests.core.training_support import Services, created, make_settings, start_training
settings = make_settings(Path({str(tmp_path)!r}), STEPPER_STEPS=6, STEPPER_STEP_SECONDS=0.5,
                         STEPPER_MIDWAY_FILE={str(midway)!r})
service = Services()(settings)
service.handle_event(created(2, 2, "dog"))
print(service.handle_event(start_training())["job"], flush=True)
time.sleep(120)
""",
        stdout=-1,
    )
    try:
        assert server.stdout is not None
        job_id = server.stdout.readline().strip()
        child = int(
            wait_for(lambda: midway.exists() and midway.read_text(), 20, "the training to be half-way")
        )
    finally:
        server.kill()  # SIGKILL: no cleanup of any kind
        server.wait()
    wait_for(
        lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 10, "the orphaned training to exit"
    )

    restarted = services(make_settings(tmp_path))
    assert restarted.job(job_id)["status"] == "running"  # what the crash left behind
    assert any(p.name.startswith(".staging-") for p in (restarted.model_dir / "12").iterdir())
    restarted.recover()
    job = restarted.job(job_id)
    assert (job["status"], job["message"]) == ("failed", DIED)
    assert restarted.current_version("12") == v1
    assert project_dir_entries(restarted) == {"jobs", v1}


def test_closing_the_service_requeues_its_running_job(tmp_path: Path, services: Any) -> None:
    settings = make_settings(tmp_path, STEPPER_STEPS=20, STEPPER_STEP_SECONDS=0.2)
    first = services(settings)
    first.handle_event(created(1, 1))
    job_id = first.start_training("12")["id"]
    running(first, job_id)
    first.close()
    second = services(make_settings(tmp_path))
    job = second.job(job_id)
    assert (job["status"], job["message"]) == ("queued", "queued again: the server stopped during training")
    second.recover()
    assert wait_job(second, job_id)["status"] == "succeeded"


def train_in_background(service: TrainingService) -> str:
    service.handle_event(created(2, 2, "dog"))
    return service.handle_event(start_training())["job"]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_start_training_pulls_the_annotations_from_label_studio(tmp_path: Path, services: Any) -> None:
    ls = FakeLabelStudio()
    exported = [
        {**task(10), "annotations": [annotation(1, 10, "cat")], "predictions": []},
        {
            **task(11),
            "annotations": [annotation(2, 11, "dog"), annotation(3, 11, cancelled=True)],
            "predictions": [],
        },
    ]

    def export(pid: int) -> Any:
        if flask.request.headers.get("Authorization") != f"Token {ls.legacy_token}":
            return flask.jsonify(detail="Authentication credentials were not provided."), 401
        return flask.jsonify(exported if pid == 12 else [])

    ls.app.add_url_rule("/api/projects/<int:pid>/export", "export", export)
    with ls:
        settings = make_settings(tmp_path)
        media = MediaSettings(label_studio_url=ls.url, api_key=ls.legacy_token, cache_dir=tmp_path / "cache")
        service = services(dataclasses.replace(settings, media=media))
        service.handle_event(created(9, 9, "cat"))  # deleted in Label Studio since: the export is the truth
        job = wait_job(service, service.handle_event(start_training())["job"])
        assert job["status"] == "succeeded", job
        (call,) = ls.requests_to("/api/projects/12/export")
        assert call.query == "exportType=JSON&download_all_tasks=false"
        weights = json.loads((service.version_dir("12", job["version"]) / "weights.json").read_text())
        assert (weights["examples"], weights["labels"], weights["reason"]) == (
            [1, 2],
            ["cat", "dog"],
            "start_training",
        )
        assert "pulled 3 annotations from Label Studio" in Path(job["log_path"]).read_text()
        versions_before = service.current_version("12")

        ls.fail_next["/api/projects/12/export"] = [403]
        service.handle_event(created(4, 12, "dog"))
        job = wait_job(service, service.handle_event(start_training())["job"])
        # a "Start Training" whose export failed trains nothing and says why (the fidelity issue, item 8)
        assert job["status"] == "failed" and "could not pull the project's annotations" in job["message"], job
        assert "403" in job["error"] and job["version"] is None
        assert "could not pull annotations from Label Studio" in Path(job["log_path"]).read_text()
        assert service.current_version("12") == versions_before
