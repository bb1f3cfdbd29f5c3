"""What a per-backend end-to-end test needs in a few lines: a Label Studio project bound to one backend.

``LSProject`` wraps one project of the session's Label Studio; :func:`check_predictions` asserts what Label
Studio stored; :func:`wait_for_job` follows the backend's training jobs. See ``tests/e2e/README.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import requests

from tests.e2e.ls_api import LabelStudioAPI

FINAL_JOB_STATES = ("succeeded", "failed", "cancelled", "skipped")


class LSProject:
    """One Label Studio project, created with a label config, and (after :meth:`connect`) its backend."""

    def __init__(self, api: LabelStudioAPI, title: str, label_config: str, **fields: Any) -> None:
        self.api = api
        self.label_config = label_config
        self.id = int(api.create_project(title, label_config, **fields)["id"])
        self.backend_id: int | None = None

    # tasks ------------------------------------------------------------------------------------
    def import_tasks(self, data: Iterable[dict[str, Any]]) -> list[int]:
        """Import one task per ``data`` dict; returns the task ids in order."""
        return self.api.import_tasks(self.id, [{"data": d} for d in data])

    def upload(self, paths: Sequence[Path]) -> list[dict[str, Any]]:
        """Upload files (one task each, task data ``/data/upload/<project>/<hash>-<name>``); tasks in order."""
        return self.api.upload_files(self.id, paths)

    def tasks(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.api.tasks(self.id, query)

    def open(self, task: int) -> dict[str, Any]:
        return self.api.task(task)

    def annotate(self, task: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        return self.api.annotate(task, result)

    # backend ----------------------------------------------------------------------------------
    def connect(self, url: str, title: str, **fields: Any) -> dict[str, Any]:
        """Connect the backend as the "Connect Model" dialog does; asserts Label Studio saw it connected."""
        backend = self.api.connect_backend(self.id, url, title, **fields)
        assert backend["state"] == "CO", backend
        self.backend_id = int(backend["id"])
        return backend

    @property
    def backend(self) -> dict[str, Any]:
        """The backend as Label Studio sees it now (reading it makes LS call /health and /setup)."""
        assert self.backend_id is not None, "connect() first"
        return self.api.backend(self.backend_id)

    def retrieve_predictions(self, task_ids: Sequence[int] | None = None) -> Any:
        return self.api.retrieve_predictions(self.id, task_ids)

    def predictions(self, model_version: str | None = None) -> list[dict[str, Any]]:
        stored = self.api.predictions(project=self.id)
        return [p for p in stored if model_version is None or p["model_version"] == model_version]

    def train(self) -> Any:
        assert self.backend_id is not None, "connect() first"
        return self.api.train(self.backend_id)

    def interactive(self, task: int, context: dict[str, Any]) -> Any:
        assert self.backend_id is not None, "connect() first"
        return self.api.interactive(self.backend_id, task, context)

    # project settings -------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return self.api.project(self.id)

    def select_model_version(self, version: str) -> dict[str, Any]:
        """Settings → Annotation → "Predictions": the version whose predictions annotators see and the
        Data Manager's "Prediction score" column averages (protocol §6). Label Studio refuses (400) a version
        that is neither a backend title nor the version of a stored prediction."""
        return self.api.update_project(self.id, model_version=version)


def check_predictions(
    predictions: Sequence[dict[str, Any]],
    task_ids: Iterable[int],
    model_version: str,
    result_types: set[str] | None = None,
    scored: bool = True,
) -> dict[int, dict[str, Any]]:
    """Assert Label Studio stored exactly one prediction of ``model_version`` per task, and return them by task.

    ``result_types``: every result item's ``type`` must be one of these, and each prediction has at least
    one item; None means the predictions must be empty (an untrained model). ``scored``: the prediction
    score is a number in (0, 1] (it drives uncertainty sampling and the Data Manager score column).
    """
    ours = [p for p in predictions if p["model_version"] == model_version]
    by_task: dict[int, dict[str, Any]] = {}
    for p in ours:
        assert p["task"] not in by_task, f"task {p['task']} has two predictions of {model_version}: {ours}"
        by_task[p["task"]] = p
    assert set(by_task) == set(task_ids), (sorted(by_task), sorted(task_ids), predictions)
    for p in ours:
        if result_types is None:
            assert p["result"] == [], p
            continue
        assert p["result"], p
        assert {item["type"] for item in p["result"]} <= result_types, p
        if scored:
            assert isinstance(p["score"], float) and 0 < p["score"] <= 1, p
    return by_task


def wait_for_job(
    server_url: str, project: int, accept: Callable[[dict[str, Any]], bool] = lambda job: True,
    timeout: float = 180,
) -> dict[str, Any]:
    """Wait until the backend's ``/jobs`` lists a finished job of the project that ``accept`` takes."""
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = requests.get(server_url + "/jobs", params={"project": str(project)}, timeout=5).json()["jobs"]
        for job in jobs:
            if job["status"] in FINAL_JOB_STATES and accept(job):
                return job
        time.sleep(0.3)
    raise TimeoutError(f"no finished training job for project {project} after {timeout:.0f} s: {jobs}")


def wait_bulk(server_url: str, job_id: str, done: Callable[[dict[str, Any]], bool] | None = None,
              timeout: float = 180) -> dict[str, Any]:
    """Wait until the backend's bulk job ``job_id`` has ended (or ``done`` takes it); its JSON."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = requests.get(f"{server_url}/bulk/{job_id}", timeout=10).json()
        if done(job) if done is not None else job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise TimeoutError(f"bulk job {job_id} after {timeout:.0f} s: {job}")
