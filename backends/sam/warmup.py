"""Background jobs run one at a time on a daemon thread, with a cap on how many may wait.

Used to encode images before anyone clicks on them. The thread is a daemon, started on first use, so
a pile of queued warm-ups never holds up a worker's shutdown (a ``ThreadPoolExecutor`` would run its
whole queue before the process may exit).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("labelzoo.sam")


class WarmUpQueue:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def submit(self, jobs: Sequence[Callable[[], None]], limit: int) -> int:
        """Queue the first jobs that keep at most ``limit`` waiting or running; returns how many."""
        with self._lock:
            accepted = list(jobs[: max(limit - self._pending, 0)])
            self._pending += len(accepted)
            if accepted and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sam-warmup", daemon=True)
                self._thread.start()
        for job in accepted:
            self._jobs.put(job)
        return len(accepted)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is waiting or running; False if some still are after ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a job reports its own expected failures; this is the safety net
                log.exception("a warm-up job failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
