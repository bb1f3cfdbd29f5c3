"""The core's process-wide metrics, in one process: training and bulk jobs, model loads, media fetches, the gate.

The metric objects are the process's, shared by every test in it: each test compares values after with before.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from labelzoo.errors import MediaError
from labelzoo.media import MediaResolver, MediaSettings
from labelzoo.observability import core_metrics
from labelzoo.prediction import ModelPool
from labelzoo.prediction.gate import Busy, PredictGate
from tests.conftest import KEYWORD_BACKEND
from tests.core.bulk_support import PROJECT, fake_ls_fixture, ls_env, texts  # noqa: F401 - fake_ls_fixture
from tests.core.fake_label_studio import FakeFileHost, FakeLabelStudio
from tests.core.training_support import (  # noqa: F401 - services_fixture
    STEPPER,
    backend,
    make_settings,
    services_fixture,
    train,
    wait_for,
)


def value(name: str, **labels: str) -> float:
    return core_metrics().registry.get_sample_value(name, labels) or 0.0


class Delta:
    """How much each named sample grew since this object was made."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def __call__(self) -> list[float]:
        return [value(name, **labels) - was for (name, labels), was in zip(self.samples, self.before, strict=True)]


def test_training_jobs_count_by_outcome_with_their_durations(tmp_path: Path, services: Any) -> None:
    outcomes = ("promoted", "rejected", "failed")
    grown = Delta(
        ("labelzoo_training_jobs_started_total", {}),
        *(("labelzoo_training_jobs_finished_total", {"outcome": o}) for o in outcomes),
        *(("labelzoo_training_job_seconds_count", {"outcome": o}) for o in outcomes),
    )
    promoted = train(services(make_settings(tmp_path / "a")), (1, 1, "cat"))
    rejected = train(services(make_settings(tmp_path / "b", STEPPER_PROMOTE="false")), (1, 1, "cat"))
    failed = train(services(make_settings(tmp_path / "c", STEPPER_FAIL_AT=0)), (1, 1, "cat"))
    assert [(j["status"], j["promoted"]) for j in (promoted, rejected, failed)] == [
        ("succeeded", True), ("succeeded", False), ("failed", False)]
    # counted by the runner thread right after it commits the end, which the test may see first
    wait_for(lambda: grown() == [3, 1, 1, 1, 1, 1, 1], 10, f"the job metrics (now {grown()})")


def test_a_bulk_job_counts_its_start_end_duration_and_tasks(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    fake_ls.add_tasks(PROJECT, texts(5))
    ended = {"kind": "project", "outcome": "succeeded"}
    grown = Delta(
        ("labelzoo_bulk_jobs_started_total", {"kind": "project"}),
        ("labelzoo_bulk_jobs_finished_total", ended),
        ("labelzoo_bulk_job_seconds_count", ended),
        ("labelzoo_bulk_tasks_total", {"outcome": "posted"}),
        ("labelzoo_bulk_tasks_total", {"outcome": "failed"}),
    )
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="2"))
    job = runtime.bulk.run_here(PROJECT)
    assert (job["status"], job["posted"], job["chunks"]["total"]) == ("succeeded", 5, 3)
    assert grown() == [1, 1, 1, 5, 0]


def test_base_model_loads_are_timed_and_their_state_shown(make_runtime: Any) -> None:
    ready = Delta(("labelzoo_model_load_seconds_count", {"kind": "base", "outcome": "ready"}))
    make_runtime(KEYWORD_BACKEND)
    assert ready() == [1]
    assert value("labelzoo_model_ready") == 1 and value("labelzoo_model_state", state="ready") == 1

    failed = Delta(("labelzoo_model_load_seconds_count", {"kind": "base", "outcome": "failed"}))
    runtime = make_runtime(KEYWORD_BACKEND, wait=False, KEYWORD_LOAD_ERROR="no such weights file")
    assert not runtime.models.wait_ready(10) and runtime.models.base_state.state == "failed"
    assert failed() == [1]
    assert value("labelzoo_model_ready") == 0
    assert [value("labelzoo_model_state", state=s) for s in ("loading", "ready", "failed")] == [0, 0, 1]


def test_trained_version_loads_are_timed_by_outcome(tmp_path: Path) -> None:
    weights = tmp_path / "v1"
    weights.mkdir()
    (weights / "weights.json").write_text(json.dumps({"examples": [1]}))
    kinds = [{"kind": "trained", "outcome": o} for o in ("ready", "failed")]
    grown = Delta(*(("labelzoo_model_load_seconds_count", k) for k in kinds))
    ModelPool(backend(STEPPER).cls, make_settings(tmp_path)).get("v1", weights, wait=10)
    oom = ModelPool(backend(STEPPER).cls, make_settings(tmp_path, STEPPER_LOAD_OOM="true"))
    with pytest.raises(Exception, match="failed to load"):
        oom.get("v1", weights, wait=10)
    assert grown() == [1, 1]


def test_media_fetch_errors_count_by_kind_and_reason(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    with FakeFileHost() as host:
        resolver = MediaResolver(MediaSettings(cache_dir=tmp_path / "cache", local_roots=(root,),
                                               allowed_hosts=("127.0.0.1",)))
        cases = {
            "ftp://example.com/a.png": ("invalid", "invalid"),
            "data:image/png;base64,!!": ("data_uri", "invalid"),
            "/data/upload/1/a.png": ("label_studio", "not_configured"),
            "http://10.0.0.1/a.png": ("url", "refused"),  # refused by the guard before any connection
            f"{host.url}/missing.png": ("url", "not_found"),
            "missing.png": ("local", "not_found"),
            str(tmp_path / "outside.png"): ("local", "refused"),
        }
        grown = Delta(*(("labelzoo_media_fetch_errors_total", {"kind": k, "reason": r}) for k, r in cases.values()))
        for media in list(cases)[:-1]:
            with pytest.raises(MediaError):
                resolver.local_path(media)
        [outside] = resolver.fetch_many([(str(tmp_path / "outside.png"), None)])  # a batch's failures count too
        assert isinstance(outside, MediaError)
        resolver.close()
    assert grown() == [1] * len(cases)


def test_the_gate_counts_turned_away_requests_and_shows_what_runs_and_waits() -> None:
    gate = PredictGate(admitted=1, concurrency=1)
    grown = Delta(("labelzoo_predict_busy_total", {}), ("labelzoo_predict_admitted", {}),
                  ("labelzoo_predict_running", {}), ("labelzoo_predict_waiting", {}))

    def second_call() -> None:
        with gate.compute():
            pass

    with gate.admit(), gate.compute():
        with pytest.raises(Busy), gate.admit():
            pass
        other = threading.Thread(target=second_call)
        other.start()
        wait_for(lambda: grown()[3] == 1, 5, "the second call to wait")
        assert grown() == [1, 1, 1, 1]
    other.join(5)
    assert grown() == [1, 0, 0, 0]
