"""A bulk job spread over two RQ workers (real redis-server, real `labelzoo worker` processes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Worker

from labelzoo.bulk.rq import QUEUE_NAME
from tests.conftest import FIXTURES, base_env
from tests.core.bulk_support import (  # noqa: F401 - fake_ls_fixture
    PROJECT,
    fake_ls_fixture,
    ls_env,
    texts,
    versions_per_task,
    wait_final,
)
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import redis_server, wait_for

SLOW_BACKEND = FIXTURES / "slow_backend"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def start_workers(count: int, tmp_path: Path, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    log = (tmp_path / "workers.log").open("ab")
    return [subprocess.Popen([sys.executable, "-m", "labelzoo.cli", "worker", str(SLOW_BACKEND), "--queue", "bulk"],
                             env=env, stdout=log, stderr=subprocess.STDOUT) for _ in range(count)]


def test_two_rq_workers_share_one_job(
    fake_ls: FakeLabelStudio, make_runtime: Any, redis_url: str, tmp_path: Path
) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(40))
    env = ls_env(fake_ls, REDIS_URL=redis_url, BULK_CHUNK_SIZE="4", SLOW_SECONDS="0.1")
    workers = start_workers(2, tmp_path, base_env(tmp_path, **env))
    try:
        redis = Redis.from_url(redis_url)
        wait_for(lambda: len(Worker.all(connection=redis)) == 2, 60, "both workers to listen")
        runtime = make_runtime(SLOW_BACKEND, **env)
        job, created = runtime.bulk.start(PROJECT)
        assert created and job["executor"] == "rq"
        done = wait_final(runtime, job["id"], timeout=120)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    assert (done["status"], done["total"], done["posted"], done["failed"]) == ("succeeded", 40, 40, 0), done
    assert done["chunks"] == {"total": 10, "done": 10, "failed": 0}
    assert done["workers"] == 2  # both workers took chunks of the one job
    assert versions_per_task(fake_ls) == {i: ["slow-1"] for i in ids}  # each task predicted exactly once
    assert len(fake_ls.requests_to(f"/api/projects/{PROJECT}/import/predictions")) == 10
    assert QUEUE_NAME == "labelzoo-bulk" and Redis.from_url(redis_url).llen(f"rq:queue:{QUEUE_NAME}") == 0
