"""How many predictions one worker process takes on, so that its cheap routes never wait behind them.

A gunicorn worker has ``THREADS`` threads for every route. Unbounded, concurrent ``/predict`` requests take
all of them (and, CPU-bound, all the cores), and ``/health`` or ``/setup`` queue behind them past Label
Studio's 1 s and 3 s timeouts. So:

* at most ``THREADS - 2`` ``/predict`` requests are inside the worker at once (:meth:`PredictGate.admit`);
  one more is turned away at once with 503 and a ``Retry-After`` estimated from how long predictions take,
  so two threads always stay free for the cheap routes;
* of those, ``PREDICT_CONCURRENCY`` backend calls run at once (:meth:`PredictGate.run`; bulk jobs of
  this process take the same slots), interactive prompts first: a click never waits behind a batch that
  arrived before it, only behind the calls already running.

Each slot runs its calls on a thread of its own that lives as long as the process, never on the request's
thread. PyTorch's CPU kernels use an OpenMP team per calling thread, and GNU OpenMP stops its idle team
members spinning between operations once more of them are alive than there are cores: each small
operation then wakes a sleeping thread (measured on 2 cores: 65 µs instead of 4 µs per softmax of a
64×64 tensor, openai-whisper's decoding 1.9× slower served than called). With every call on one of
``PREDICT_CONCURRENCY`` threads, a worker keeps that many teams, however many request threads it has.

The gauges ``labelzoo_predict_admitted``, ``_running`` and ``_waiting`` follow every change (a scrape of one
worker then adds up all of them, see :mod:`labelzoo.observability`); ``labelzoo_predict_busy`` counts the
requests turned away.
"""

from __future__ import annotations

import contextvars
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TypeVar

from labelzoo.errors import LabelzooError
from labelzoo.observability import core_metrics

#: threads of a worker that predictions never take: /health, /setup, /metrics… always find one
RESERVED_THREADS = 2
_SMOOTHING = 0.2  # weight of the newest duration in the running mean behind Retry-After

T = TypeVar("T")


class Busy(LabelzooError):
    """The worker already holds as many predictions as it takes; ``retry_after`` seconds is a fair wait."""

    status = 503
    code = "busy"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictGate:
    """Admission of ``/predict`` requests and slots for backend calls; thread-safe, one per process."""

    def __init__(self, admitted: int, concurrency: int) -> None:
        if admitted < 1 or concurrency < 1:
            raise ValueError("a predict gate needs at least one admitted request and one compute slot")
        self.admitted = admitted
        self.concurrency = concurrency
        self._cond = threading.Condition()
        self._inside = 0  # admitted requests
        self._running = 0  # backend calls holding a slot
        self._waiting = {True: 0, False: 0}  # backend calls waiting for a slot, by interactive
        self._mean_seconds = 1.0  # of a backend call, smoothed
        self._free = list(range(concurrency))  # slots not running a call
        self._threads = [ComputeThread(f"labelzoo-compute-{slot}") for slot in range(concurrency)]

    @classmethod
    def for_threads(cls, threads: int, concurrency: int) -> PredictGate:
        return cls(max(1, threads - RESERVED_THREADS), concurrency)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of the admitted places for a request, or raise :class:`Busy` at once."""
        with self._cond:
            if self._inside >= self.admitted:
                core_metrics().predict_busy.inc()
                raise Busy(
                    f"the backend is busy: {self._inside} predictions are in this worker, the most it takes "
                    f"(THREADS - {RESERVED_THREADS}); retry later, or run more workers (WORKERS)",
                    self.retry_after(),
                )
            self._inside += 1
            core_metrics().predict_admitted.inc()
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                core_metrics().predict_admitted.dec()

    def run(self, call: Callable[[], T], *, interactive: bool = False) -> T:
        """``call()`` on a compute slot's thread once a slot is free (interactive calls get the next free slot
        first), in the caller's context variables; its result or its exception comes back to the caller."""
        with self.compute(interactive=interactive) as slot:
            return self._threads[slot].submit(contextvars.copy_context().run, call).result()

    @contextmanager
    def compute(self, *, interactive: bool = False) -> Iterator[int]:
        """Hold a compute slot (its number) for one backend call; interactive calls get the next free slot first."""
        with self._cond:
            self._waiting[interactive] += 1
            core_metrics().predict_waiting.inc()
            try:
                while self._running >= self.concurrency or (not interactive and self._waiting[True]):
                    self._cond.wait()
            finally:
                self._waiting[interactive] -= 1
                core_metrics().predict_waiting.dec()
            self._running += 1
            slot = self._free.pop()
            core_metrics().predict_running.inc()
        started = time.monotonic()
        try:
            yield slot
        finally:
            with self._cond:
                self._running -= 1
                self._free.append(slot)
                core_metrics().predict_running.dec()
                seconds = time.monotonic() - started
                self._mean_seconds += _SMOOTHING * (seconds - self._mean_seconds)
                self._cond.notify_all()

    def retry_after(self) -> int:
        """Whole seconds until the calls now running and waiting are likely done (1 to 60)."""
        queued = self._running + self._waiting[True] + self._waiting[False]
        return min(60, max(1, math.ceil(self._mean_seconds * queued / self.concurrency)))

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"admitted": self._inside, "running": self._running,
                    "waiting": self._waiting[True] + self._waiting[False]}


class ComputeThread:
    """One daemon thread, started on the first call, that runs the calls given to it one after another."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...], Future[object]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[..., T], *args: object) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        self._calls.put((call, args, future))  # type: ignore[arg-type]
        return future

    def _work(self) -> None:
        while True:
            call, args, future = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call(*args))
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
