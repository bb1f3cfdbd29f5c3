"""Helpers for the training tests: settings, services on a temporary MODEL_DIR, webhook payloads."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from labelzoo.media import MediaSettings, label_studio_client
from labelzoo.registry import BackendSpec, load_backend
from labelzoo.settings import Settings
from labelzoo.training import TrainingService
from tests.conftest import FIXTURES, REPO, free_port

STEPPER = FIXTURES / "stepper_backend"
KEYWORD = FIXTURES / "keyword_backend"
BASE = "stepper-base"
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""
FINAL = {"succeeded", "failed", "cancelled", "skipped"}


def backend(path: Path = STEPPER) -> BackendSpec:
    return load_backend(str(path))


def make_settings(
    tmp_path: Path,
    *,
    train_after: int = 0,
    redis_url: str | None = None,
    pins: dict[str, str] | None = None,
    **options: object,
) -> Settings:
    """Settings for a test; ``options`` are backend knobs such as STEPPER_STEP_SECONDS."""
    return Settings(
        model_dir=tmp_path / "models",
        train_after_annotations=train_after,
        redis_url=redis_url,
        version_pins=pins or {},
        media=MediaSettings(cache_dir=tmp_path / "media-cache"),
        env={key: str(value) for key, value in options.items()},
        log_level="INFO",
    )


class Services:
    """Creates services for a test and closes them all at the end."""

    def __init__(self) -> None:
        self.made: list[TrainingService] = []

    def __call__(
        self, settings: Settings, path: Path = STEPPER, cancel_grace: float = 2.0
    ) -> TrainingService:
        client = label_studio_client(settings.media, api=True)
        service = TrainingService(settings, backend(path), client=client, cancel_grace=cancel_grace)
        self.made.append(service)
        return service

    def close(self) -> None:
        for service in self.made:
            service.close()


@pytest.fixture(name="services")
def services_fixture() -> Iterator[Services]:
    """Import ``services_fixture`` into a test module to use the ``services`` fixture."""
    made = Services()
    yield made
    made.close()


# ---- webhook payloads, shaped like Label Studio 1.23's ----------------------------------------------


def task(task_id: int, text: str | None = None, project: int = 12) -> dict[str, Any]:
    return {
        "id": task_id,
        "data": {"text": text or f"text of task {task_id}"},
        "project": project,
        "is_labeled": True,
        "inner_id": task_id,
        "meta": {},
    }


def annotation(
    ann_id: int,
    task_id: int,
    label: str = "cat",
    *,
    updated_at: str = "2025-06-01T09:00:00.000000Z",
    cancelled: bool = False,
    ground_truth: bool = False,
    project: int = 12,
) -> dict[str, Any]:
    return {
        "id": ann_id,
        "task": task_id,
        "project": project,
        "completed_by": 1,
        "updated_by": 1,
        "result": []
        if cancelled
        else [
            {
                "id": f"r{ann_id}",
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [label]},
                "origin": "manual",
            }
        ],
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "lead_time": 3.2,
        "created_at": "2025-06-01T08:59:00.000000Z",
        "updated_at": updated_at,
        "prediction": {},
        "result_count": 1,
        "last_action": None,
        "bulk_created": False,
    }


def project(project_id: int = 12, config: str = CONFIG) -> dict[str, Any]:
    return {
        "id": project_id,
        "title": "Cats",
        "label_config": config,
        "model_version": "stepper",
        "created_at": "2025-06-01T09:00:00Z",
        "sampling": "Sequential sampling",
        "task_number": 3,
    }


def created(ann_id: int, task_id: int, label: str = "cat", project_id: int = 12, **kw: Any) -> dict[str, Any]:
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": annotation(ann_id, task_id, label, project=project_id, **kw),
        "task": task(task_id, project=project_id),
        "project": project(project_id),
    }


def start_training(project_id: int = 12) -> dict[str, Any]:
    return {"action": "START_TRAINING", "project": project(project_id)}


# ---- waiting ------------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_job(service: TrainingService, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = service.job(job_id)
        return job if job["status"] in FINAL else None

    return wait_for(ended, timeout, f"job {job_id} to end (now: {service.job(job_id)})")


def train(
    service: TrainingService, *annotations: tuple[int, int, str], project_id: int = 12
) -> dict[str, Any]:
    """Record annotations (id, task, label), run START_TRAINING and wait for the job to end."""
    for ann_id, task_id, label in annotations:
        service.handle_event(created(ann_id, task_id, label, project_id=project_id))
    answer = service.handle_event(start_training(project_id))
    return wait_job(service, answer["job"])


def python_env() -> dict[str, str]:
    """Environment for a Python subprocess that imports labelzoo and the tests package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "REDIS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "shared"), str(REPO)])
    return env


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); the RQ path needs it")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, 10, "redis-server to listen")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def python(code: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], env=python_env(), text=True, **kwargs)
