"""A worker full of predictions turns the next /predict away with 503 and Retry-After, and its cheap routes answer
at once meanwhile; backend calls run one at a time (PREDICT_CONCURRENCY) whatever the requests' number."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.core.test_bulk_deadline import SLOW_BACKEND
from tests.core.test_server_protocol import CONFIG


def body(*texts: str) -> dict[str, Any]:
    return {"tasks": [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)], "project": "7.1",
            "label_config": CONFIG, "params": {"context": None}}


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_full_worker_says_busy_and_keeps_answering_health(make_client: Any, make_runtime: Any,
                                                            tmp_path: Path) -> None:
    gate_file = tmp_path / "hold"
    gate_file.touch()  # predictions wait while it exists
    runtime = make_runtime(SLOW_BACKEND, THREADS="4", SLOW_GATE=str(gate_file))  # 2 requests let in
    from labelzoo.server.app import create_app

    client = create_app(runtime).test_client()
    answers: list[int] = []
    inside = [threading.Thread(target=lambda: answers.append(client.post("/predict", json=body("a")).status_code))
              for _ in range(2)]
    for thread in inside:
        thread.start()
    wait_until(lambda: runtime.gate.stats() == {"admitted": 2, "running": 1, "waiting": 1})  # one call at a time

    refused = client.post("/predict", json=body("b"))
    assert refused.status_code == 503 and refused.get_json()["error"] == "busy"
    assert "THREADS - 2" in refused.get_json()["message"] and 1 <= int(refused.headers["Retry-After"]) <= 60
    started = time.perf_counter()
    assert client.get("/health").status_code == 200 and client.post("/setup", json={
        "project": "7.1", "schema": CONFIG}).status_code == 200
    assert time.perf_counter() - started < 0.5

    gate_file.unlink()
    for thread in inside:
        thread.join(10)
    assert answers == [200, 200]
    assert client.post("/predict", json=body("c")).status_code == 200  # places are given back
