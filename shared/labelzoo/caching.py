"""In-process caches and background work that several backends share.

:class:`LruCache` keeps computed values (model weights, image embeddings) by key, least recently used
out first once a bound on the number of entries and/or their total size in bytes is passed. Concurrent
requests for a key nobody has computed yet share one computation: the first caller computes it, the
others wait for its result (or its error) instead of doing the same work again. Values are never
mutated once stored, so any number of threads may read one.

:class:`WarmUpQueue` runs jobs one at a time on a daemon thread, with a cap on how many may wait and
without queueing a job whose key is already waiting: work done ahead of the request that needs it
(encoding an image before anyone clicks on it). The thread is a daemon, started on first use, so a pile
of queued warm-ups never holds up a worker's shutdown (a ``ThreadPoolExecutor`` would run its whole
queue before the process may exit).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("labelzoo.caching")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    hits: int
    """Lookups answered by a stored value or by joining a computation already under way."""
    misses: int
    """Lookups that had to compute the value (one per computation)."""
    evictions: int
    entries: int
    nbytes: int
    """Total size of the stored values (0 when the cache has no size function)."""


class LruCache(Generic[K, V]):
    """``get_or_compute(key, compute)``: the stored value for ``key``, computing it at most once at a time.

    ``max_entries`` bounds the number of values, ``max_bytes`` their total ``nbytes(value)``; either, both
    or neither (a cache that only deduplicates, such as one loaded model per file).
    """

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        nbytes: Callable[[V], int] | None = None,
    ) -> None:
        if max_entries is not None and max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        if max_bytes is not None and nbytes is None:
            raise ValueError("a cache bounded by max_bytes needs the nbytes function that sizes its values")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._nbytes_of = nbytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._pending: dict[K, Future[V]] = {}
        self._nbytes = 0
        self._hits = self._misses = self._evictions = 0

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The value for ``key``; on a miss ``compute()`` makes it (outside the lock).

        If ``compute`` raises, every caller waiting on this key gets the same exception and nothing is
        stored, so a later call tries again.
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return found[0]
            pending = self._pending.get(key)
            if pending is None:
                self._misses += 1
                pending = self._pending[key] = Future()
                owner = True
            else:
                self._hits += 1
                owner = False
        if not owner:
            return pending.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._store(key, value)
        pending.set_result(value)
        return value

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is stored (without touching its recency)."""
        with self._lock:
            return key in self._entries

    def keys(self) -> list[K]:
        """Stored keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, len(self._entries), self._nbytes)

    def _store(self, key: K, value: V) -> None:
        """Insert ``value`` as the most recent entry and evict from the old end down to the bounds.

        A value larger than the whole cache (or any value, in a cache of 0 entries) is handed back to its
        callers but not kept.
        """
        size = self._nbytes_of(value) if self._nbytes_of is not None else 0
        if (self.max_bytes is not None and size > self.max_bytes) or self.max_entries == 0:
            return
        self._entries[key] = (value, size)
        self._nbytes += size
        while (self.max_bytes is not None and self._nbytes > self.max_bytes) or (
            self.max_entries is not None and len(self._entries) > self.max_entries
        ):
            _, (_, evicted) = self._entries.popitem(last=False)
            self._nbytes -= evicted
            self._evictions += 1


Job = Callable[[], object]


class WarmUpQueue:
    """Jobs run in order on one daemon thread; ``submit`` caps how many wait and skips keys already queued."""

    def __init__(self, name: str = "labelzoo-warmup") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Hashable | None, Job]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._keys: set[Hashable] = set()  # of the jobs waiting or running
        self._thread: threading.Thread | None = None

    def submit(self, jobs: Sequence[Job] | Mapping[Hashable, Job], limit: int) -> int:
        """Queue the first jobs that keep at most ``limit`` waiting or running; returns how many were queued.

        ``jobs`` is a sequence of callables, or a mapping of key → callable: a job whose key is waiting
        or running already is skipped (it will be done once) and does not count.
        """
        keyed: list[tuple[Hashable | None, Job]] = (
            list(jobs.items()) if isinstance(jobs, Mapping) else [(None, job) for job in jobs]
        )
        with self._lock:
            accepted: list[tuple[Hashable | None, Job]] = []
            for key, job in keyed:
                if self._pending + len(accepted) >= limit:
                    break
                if key is not None:
                    if key in self._keys:
                        continue
                    self._keys.add(key)
                accepted.append((key, job))
            self._pending += len(accepted)
            if accepted and self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        for item in accepted:
            self._jobs.put(item)
        return len(accepted)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is waiting or running; False if some still are after ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            key, job = self._jobs.get()
            try:
                job()
            except Exception:  # a job reports its own expected failures; this is the safety net
                log.exception("%s: a warm-up job failed", self.name)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._keys.discard(key)
                    self._idle.notify_all()
