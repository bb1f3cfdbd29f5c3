"""labelzoo.caching: the bounded single-flight LRU cache and the background warm-up queue."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest

from labelzoo import TaskError
from labelzoo.caching import LruCache, WarmUpQueue

ENTRY_BYTES = 4 * 8 * 8 * 4  # a (1, 4, 8, 8) float32 array


@dataclass(frozen=True)
class Entry:
    features: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes)


def entry(tag: float) -> Entry:
    """A small value whose contents identify it."""
    return Entry(np.full((1, 4, 8, 8), float(tag), dtype=np.float32))


def sized_cache(max_bytes: int) -> LruCache[str, Entry]:
    return LruCache(max_bytes=max_bytes, nbytes=lambda value: value.nbytes)


# --- the cache -----------------------------------------------------------------------------------


def test_cache_counts_hits_and_misses_and_evicts_the_least_recently_used() -> None:
    cache = sized_cache(max_bytes=3 * ENTRY_BYTES)
    for i, key in enumerate("abc"):
        cache.get_or_compute(key, lambda i=i: entry(i))
    assert cache.get_or_compute("a", lambda: pytest.fail("a is cached")).features[0, 0, 0, 0] == 0
    cache.get_or_compute("d", lambda: entry(3))  # b is now the least recently used
    assert cache.keys() == ["c", "a", "d"]
    assert "b" not in cache
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.entries, stats.nbytes) == (1, 4, 1, 3, 3 * ENTRY_BYTES)
    cache.get_or_compute("b", lambda: entry(1))  # computed again after eviction
    assert cache.stats().misses == 5 and cache.keys() == ["a", "d", "b"]


def test_cache_hands_back_but_does_not_keep_what_exceeds_its_size() -> None:
    cache = sized_cache(max_bytes=ENTRY_BYTES - 1)
    calls = []
    for _ in range(2):
        assert cache.get_or_compute("a", lambda: calls.append(1) or entry(1)).features.shape == (1, 4, 8, 8)
    assert len(calls) == 2 and cache.stats().entries == 0


def test_concurrent_requests_for_one_new_key_compute_it_once() -> None:
    cache = sized_cache(max_bytes=10 * ENTRY_BYTES)
    started, release = threading.Event(), threading.Event()
    calls = []

    def compute() -> Entry:
        calls.append(threading.get_ident())
        started.set()
        release.wait(10)
        return entry(7)

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(cache.get_or_compute, "img", compute)
        assert started.wait(10)
        others = [pool.submit(cache.get_or_compute, "img", compute) for _ in range(5)]
        release.set()
        results = [first.result(10)] + [f.result(10) for f in others]
    assert len(calls) == 1
    assert all(r is results[0] for r in results)
    assert (cache.stats().misses, cache.stats().hits) == (1, 5)


def test_a_failed_computation_reaches_every_waiter_and_is_retried_later() -> None:
    cache = sized_cache(max_bytes=10 * ENTRY_BYTES)
    started, release = threading.Event(), threading.Event()

    def broken() -> Entry:
        started.set()
        release.wait(10)
        raise TaskError("not an image")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get_or_compute, "img", broken)
        assert started.wait(10)
        second = pool.submit(cache.get_or_compute, "img", lambda: pytest.fail("joins the running computation"))
        release.set()
        for future in (first, second):
            with pytest.raises(TaskError, match="not an image"):
                future.result(10)
    assert "img" not in cache
    assert cache.get_or_compute("img", lambda: entry(1)).features[0, 0, 0, 0] == 1


def test_threads_hammering_a_small_cache_keep_it_consistent() -> None:
    cache = sized_cache(max_bytes=5 * ENTRY_BYTES)
    wrong = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.randrange(20)
            got = cache.get_or_compute(str(key), lambda key=key: entry(key))
            if got.features[0, 0, 0, 0] != key:
                wrong.append(key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    stats = cache.stats()
    assert wrong == []
    assert stats.hits + stats.misses == 8 * 300
    assert stats.entries == len(cache.keys()) <= 5
    assert stats.nbytes == stats.entries * ENTRY_BYTES
    assert stats.misses - stats.evictions == stats.entries


def test_a_cache_bounded_by_count_evicts_past_it_and_an_unbounded_one_never() -> None:
    counted: LruCache[int, str] = LruCache(max_entries=2)
    for key in (1, 2, 1, 3):  # 1 is used again, so 2 is the oldest when 3 arrives
        counted.get_or_compute(key, lambda key=key: f"value {key}")
    assert counted.keys() == [1, 3] and counted.stats().evictions == 1 and counted.stats().nbytes == 0
    assert LruCache(max_entries=0).get_or_compute("a", lambda: "kept by nobody") == "kept by nobody"

    forever: LruCache[int, int] = LruCache()
    for key in range(1000):
        forever.get_or_compute(key, lambda key=key: key * 2)
    assert forever.stats().entries == 1000 and forever.stats().evictions == 0
    assert forever.get_or_compute(999, lambda: pytest.fail("cached")) == 1998


def test_both_bounds_apply_together() -> None:
    cache = LruCache(max_entries=3, max_bytes=10, nbytes=len)
    for key, value in [("a", "xxxx"), ("b", "xxxx"), ("c", "x")]:
        cache.get_or_compute(key, lambda value=value: value)
    assert cache.keys() == ["a", "b", "c"] and cache.stats().nbytes == 9
    cache.get_or_compute("d", lambda: "xx")  # 11 bytes: the oldest goes
    assert cache.keys() == ["b", "c", "d"]
    cache.get_or_compute("e", lambda: "")  # 4 entries: the oldest goes again
    assert cache.keys() == ["c", "d", "e"] and cache.stats().nbytes == 3


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        LruCache(max_bytes=10)
    with pytest.raises(ValueError, match="max_entries"):
        LruCache(max_entries=-1)
    with pytest.raises(ValueError, match="max_bytes"):
        LruCache(max_bytes=-1, nbytes=len)


# --- the warm-up queue ---------------------------------------------------------------------------


def test_the_warm_up_queue_caps_waiting_jobs_and_outlives_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    jobs = WarmUpQueue()
    gate, done = threading.Event(), []

    def boom() -> None:
        raise RuntimeError("decoder exploded")

    assert jobs.submit([lambda: gate.wait(10) and done.append("first"), boom, lambda: done.append("third")], 3) == 3
    assert jobs.submit([lambda: done.append("late")], limit=3) == 0  # three already waiting or running
    assert not jobs.wait_idle(0.05)
    gate.set()
    assert jobs.wait_idle(10)
    assert done == ["first", "third"] and "decoder exploded" in caplog.text
    assert jobs.submit([lambda: done.append("again")], limit=3) == 1
    assert jobs.wait_idle(10) and done[-1] == "again"


def test_the_warm_up_queue_skips_keys_already_waiting_or_running() -> None:
    jobs = WarmUpQueue(name="test-warmup")
    gate, done = threading.Event(), []
    started = threading.Event()

    def blocked() -> None:
        started.set()
        gate.wait(10)
        done.append("a")

    assert jobs.submit({"a": blocked, "b": lambda: done.append("b")}, limit=10) == 2
    assert started.wait(10)
    # "a" is running and "b" waiting: only "c" is new, and the duplicate keys do not use the limit
    assert jobs.submit({"a": lambda: done.append("a again"), "b": lambda: done.append("b again"),
                        "c": lambda: done.append("c")}, limit=3) == 1  # fmt: skip
    gate.set()
    assert jobs.wait_idle(10)
    assert done == ["a", "b", "c"]
    assert jobs.submit({"a": lambda: done.append("a later")}, limit=3) == 1  # done: it may be queued again
    assert jobs.wait_idle(10) and done[-1] == "a later"
    assert [t.name for t in threading.enumerate() if t.name == "test-warmup"] == ["test-warmup"]
