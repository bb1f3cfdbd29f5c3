"""How many predictions one worker process takes on, so that its cheap routes never wait behind them.

A gunicorn worker has ``THREADS`` threads for every route. Unbounded, concurrent ``/predict`` requests take
all of them (and, CPU-bound, all the cores), and ``/health`` or ``/setup`` queue behind them past Label
Studio's 1 s and 3 s timeouts. So:

* at most ``THREADS - 2`` ``/predict`` requests are inside the worker at once (:meth:`PredictGate.admit`);
  one more is turned away at once with 503 and a ``Retry-After`` estimated from how long predictions take,
  so two threads always stay free for the cheap routes;
* of those, ``PREDICT_CONCURRENCY`` backend calls run at once (:meth:`PredictGate.compute`; bulk jobs of
  this process take the same slots), interactive prompts first: a click never waits behind a batch that
  arrived before it, only behind the calls already running.

The gauges ``labelzoo_predict_admitted``, ``_running`` and ``_waiting`` follow every change (a scrape of one
worker then adds up all of them, see :mod:`labelzoo.observability`); ``labelzoo_predict_busy`` counts the
requests turned away.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from labelzoo.errors import LabelzooError
from labelzoo.observability import core_metrics

#: threads of a worker that predictions never take: /health, /setup, /metrics… always find one
RESERVED_THREADS = 2
_SMOOTHING = 0.2  # weight of the newest duration in the running mean behind Retry-After


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

    @contextmanager
    def compute(self, *, interactive: bool = False) -> Iterator[None]:
        """Hold a compute slot for one backend call; interactive calls get the next free slot first."""
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
            core_metrics().predict_running.inc()
        started = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
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
