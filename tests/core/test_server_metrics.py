"""``/metrics`` under gunicorn: one scrape counts the requests of every worker, whichever worker answers it."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from labelzoo.observability import MULTIPROC_ENV
from labelzoo.server.app import WORKER_HEADER
from labelzoo.server.metrics import Metrics
from labelzoo.server.multiprocess import prepare_metrics_dir, remove
from tests.core.test_server_protocol import predict_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    """Which worker answered a scrape, and its samples. ``requests.get`` opens a new connection each time,
    which gunicorn hands to any worker."""
    response = requests.get(url + "/metrics", timeout=5)
    response.raise_for_status()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    return response.headers[WORKER_HEADER], samples


def until(predicate: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while (found := predicate()) is None or found is False:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def ready_pids(samples: Samples) -> set[str]:
    """The workers whose base model is ready, from ``labelzoo_model_state`` (one series per worker)."""
    return {dict(labels)["pid"] for (name, labels), v in samples.items()
            if name == "labelzoo_model_state" and dict(labels)["state"] == "ready" and v == 1}


def predicted(samples: Samples) -> float:
    return samples.get(("labelzoo_http_requests_total",
                        frozenset({"route": "/predict", "method": "POST", "status": "200"}.items())), 0.0)


def test_one_scrape_counts_every_worker_and_a_dead_worker_leaves_only_its_counts(serve) -> None:
    server = serve(workers=2)
    until(lambda: len(ready_pids(scrape(server.url)[1])) == 2, "both workers to load the model")

    answered: Counter[str] = Counter()
    while len(answered) < 2 or sum(answered.values()) < 10:  # a fresh connection for each request
        assert sum(answered.values()) < 300, answered
        response = requests.post(server.url + "/predict", json=predict_body("positive"), timeout=10)
        assert response.status_code == 200, response.text
        answered[response.headers[WORKER_HEADER]] += 1
    total = sum(answered.values())

    scrapes: dict[str, Samples] = {}
    while len(scrapes) < 2:  # until each worker has answered a scrape
        worker, samples = scrape(server.url)
        scrapes[worker] = samples
    for samples in scrapes.values():
        assert predicted(samples) == total
        assert samples[("labelzoo_predicted_tasks_total", frozenset({("outcome", "ok")}))] == total
        assert samples[("labelzoo_model_ready", frozenset())] == 1  # every live worker has the model
        assert ready_pids(samples) == set(answered)
        loads = ("labelzoo_model_load_seconds_count", frozenset({"kind": "base", "outcome": "ready"}.items()))
        assert samples[loads] == 2

    folder = Path(re.search(r"metrics of all workers: files in (\S+)", server.log())[1])
    assert folder.name.startswith("labelzoo-metrics-") and folder.is_dir()  # fresh for this start

    killed = next(iter(answered))
    os.kill(int(killed), signal.SIGKILL)  # gunicorn forks a replacement; child_exit drops the dead one's gauges
    survivor = (set(answered) - {killed}).pop()
    pids = until(lambda: len(p := ready_pids(scrape(server.url)[1])) == 2 and killed not in p and p, "a new worker")
    assert survivor in pids
    _, samples = scrape(server.url)
    assert predicted(samples) == total  # the dead worker's counts stay in the totals
    assert samples[("labelzoo_model_ready", frozenset())] == 1

    server.stop()
    assert not folder.exists()  # removed when the server exits


def test_a_metrics_folder_the_user_set_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "prom"
    monkeypatch.setenv(MULTIPROC_ENV, str(chosen))
    metrics_dir = prepare_metrics_dir()
    assert (metrics_dir.path, metrics_dir.owned) == (chosen, False) and chosen.is_dir()
    remove(metrics_dir)
    assert chosen.is_dir()  # not made here: not deleted either


def test_no_metrics_folder_is_made_once_prometheus_client_was_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its values would then stay in each worker's memory: the server must not start counting that way."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with pytest.raises(RuntimeError, match="imported before PROMETHEUS_MULTIPROC_DIR was set"):
        prepare_metrics_dir()
    assert MULTIPROC_ENV not in os.environ


def test_a_scrape_skips_a_metrics_file_a_worker_has_not_written_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker creates its file empty and sizes it a moment later; one killed in between leaves it empty."""
    written = MmapedDict(str(tmp_path / "counter_101.db"))
    written.write_value(mmap_key("labelzoo_predict_busy", "labelzoo_predict_busy_total", [], [], "busy"), 3.0, 0.0)
    written.close()
    (tmp_path / "counter_102.db").touch()
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert "labelzoo_predict_busy_total 3.0" in Metrics().render().decode()
