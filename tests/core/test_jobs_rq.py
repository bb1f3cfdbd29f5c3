"""Training through Redis: a real redis-server and a real RQ worker process (burst mode)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labelzoo.training import TrainingService
from tests.core.training_support import (  # noqa: F401 - services_fixture
    BASE,
    created,
    make_settings,
    python,
    redis_server,
    services_fixture,
    start_training,
    wait_for,
    wait_job,
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def dispatched(service: TrainingService) -> str:
    service.handle_event(created(1, 1, "cat"))
    service.handle_event(created(2, 2, "dog"))
    job_id = service.handle_event(start_training())["job"]
    wait_for(
        lambda: service.job(job_id)["message"].startswith("waiting for a training worker"),
        20,
        "the job to reach the RQ queue",
    )
    return job_id


def run_worker(tmp_path: Path, redis_url: str, **options: object) -> None:
    """``labelzoo worker --burst`` with its own settings (same MODEL_DIR, as a shared volume would give)."""
    code = f"""
from pathlib import Path
from labelzoo.rq_worker import run_rq_worker
from tests.core.training_support import make_settings
settings = make_settings(Path({str(tmp_path)!r}), redis_url={redis_url!r}, **{options!r})
run_rq_worker(settings, ["labelzoo-training"], burst=True)
"""
    worker = python(code)
    assert worker.wait(60) == 0


def test_an_rq_worker_trains_and_the_server_promotes(tmp_path: Path, redis_url: str, services: Any) -> None:
    service = services(make_settings(tmp_path, redis_url=redis_url))
    job_id = dispatched(service)
    assert service.job(job_id)["executor"] == "rq" and service.current_version("12") == BASE
    run_worker(tmp_path, redis_url, STEPPER_STEP_SECONDS=0.05)
    job = wait_job(service, job_id)
    assert job["status"] == "succeeded", job
    assert job["metrics"] == {"loss": 0.25, "accuracy": 0.9}
    version = job["version"]
    assert service.current_version("12") == version
    weights = json.loads((service.version_dir("12", version) / "weights.json").read_text())
    assert weights["examples"] == [1, 2] and weights["labels"] == ["cat", "dog"]
    log = Path(job["log_path"]).read_text()
    assert "handed to the RQ queue" in log and "progress 100% step 4/4" in log
    assert {p.name for p in (service.model_dir / "12").iterdir()} == {"jobs", version}
    assert_stored_as_json(redis_url, job_id)


def assert_stored_as_json(redis_url: str, job_id: str) -> None:
    """The RQ job's call, meta and result in Redis are JSON: nobody who can write there can plant a pickle."""
    from redis import Redis

    redis = Redis.from_url(redis_url)
    stored = redis.hgetall(f"rq:job:{job_id}")
    for field in (b"data", b"meta"):
        raw = zlib.decompress(stored[field]) if field == b"data" else stored[field]
        assert json.loads(raw) is not None, (field, raw)
    results = redis.xrange(f"rq:results:{job_id}")
    assert results and json.loads(base64.b64decode(results[-1][1][b"return_value"]))["status"] == "succeeded"


def test_a_failure_on_the_worker_is_recorded(tmp_path: Path, redis_url: str, services: Any) -> None:
    service = services(make_settings(tmp_path, redis_url=redis_url))
    job_id = dispatched(service)
    run_worker(tmp_path, redis_url, STEPPER_FAIL_AT=0)
    job = wait_job(service, job_id)
    assert (job["status"], job["error"]) == ("failed", "ValueError: boom at step 0")
    assert "Traceback" in Path(job["log_path"]).read_text()
    assert service.current_version("12") == BASE
    assert {p.name for p in (service.model_dir / "12").iterdir()} == {"jobs"}


def test_cancelling_a_job_still_in_the_queue(tmp_path: Path, redis_url: str, services: Any) -> None:
    service = services(make_settings(tmp_path, redis_url=redis_url))
    job_id = dispatched(service)
    service.cancel(job_id)
    job = wait_job(service, job_id)
    assert (job["status"], job["message"]) == ("cancelled", "cancelled before a worker started it")
    run_worker(tmp_path, redis_url)  # finds nothing to do
    assert service.job(job_id)["status"] == "cancelled" and service.current_version("12") == BASE
