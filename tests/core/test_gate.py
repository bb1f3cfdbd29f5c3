"""The predict gate: a bounded number of admitted requests, bounded backend calls, interactive calls first."""

from __future__ import annotations

import threading
import time

import pytest

from labelzoo.prediction.gate import Busy, PredictGate


def test_requests_beyond_the_limit_are_turned_away_at_once_with_a_retry_estimate() -> None:
    gate = PredictGate(admitted=2, concurrency=1)
    with gate.admit(), gate.admit():
        started = time.perf_counter()
        with pytest.raises(Busy) as refused, gate.admit():
            pass
        assert time.perf_counter() - started < 0.1
        assert refused.value.status == 503 and 1 <= refused.value.retry_after <= 60
        assert "THREADS - 2" in refused.value.message
    with gate.admit():  # places are given back
        assert gate.stats()["admitted"] == 1
    assert PredictGate.for_threads(8, 1).admitted == 6 and PredictGate.for_threads(1, 1).admitted == 1


def test_backend_calls_never_exceed_the_concurrency() -> None:
    gate = PredictGate(admitted=10, concurrency=2)
    running, peak, lock = [0], [0], threading.Lock()

    def call() -> None:
        with gate.compute():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert peak[0] == 2 and gate.stats() == {"admitted": 0, "running": 0, "waiting": 0}


def test_a_waiting_interactive_call_goes_before_waiting_batches() -> None:
    gate = PredictGate(admitted=10, concurrency=1)
    order: list[str] = []
    release = threading.Event()

    def call(name: str, interactive: bool) -> None:
        with gate.compute(interactive=interactive):
            order.append(name)
            if name == "first":
                release.wait(5)

    first = threading.Thread(target=call, args=("first", False))
    first.start()
    while gate.stats()["running"] == 0:
        time.sleep(0.001)
    waiting = [threading.Thread(target=call, args=(f"batch{i}", False)) for i in range(3)]
    for thread in waiting:
        thread.start()
    while gate.stats()["waiting"] < 3:
        time.sleep(0.001)
    click = threading.Thread(target=call, args=("click", True))
    click.start()
    while gate.stats()["waiting"] < 4:
        time.sleep(0.001)
    release.set()
    for thread in [first, click, *waiting]:
        thread.join(5)
    assert order[:2] == ["first", "click"] and sorted(order[2:]) == ["batch0", "batch1", "batch2"]


def test_retry_after_follows_how_long_calls_take() -> None:
    gate = PredictGate(admitted=4, concurrency=1)
    for _ in range(30):
        with gate.compute():
            time.sleep(0.001)
    assert gate.retry_after() == 1  # nothing running, and calls are short
