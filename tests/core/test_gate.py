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


def test_calls_from_any_number_of_request_threads_run_on_one_thread_per_slot() -> None:
    """PyTorch keeps an OpenMP team per calling thread; more teams than cores make its small operations slow."""
    gate = PredictGate(admitted=16, concurrency=2)
    names: set[str] = set()
    lock = threading.Lock()

    def call() -> str:
        time.sleep(0.005)
        with lock:
            names.add(threading.current_thread().name)
        return threading.current_thread().name

    callers = [threading.Thread(target=gate.run, args=(call,)) for _ in range(12)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(5)
    assert names <= {"labelzoo-compute-0", "labelzoo-compute-1"} and names
    assert gate.run(call, interactive=True) in names | {"labelzoo-compute-0", "labelzoo-compute-1"}


def test_a_call_sees_the_callers_context_and_its_error_reaches_the_caller() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    gate = PredictGate(admitted=2, concurrency=1)
    var.set("the caller's")
    assert gate.run(var.get) == "the caller's"

    def fail() -> None:
        raise KeyError("broken model")

    with pytest.raises(KeyError, match="broken model"):
        gate.run(fail)
    assert gate.stats() == {"admitted": 0, "running": 0, "waiting": 0}
    assert gate.run(lambda: 42) == 42  # the slot's thread survives a failed call
