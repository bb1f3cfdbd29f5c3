"""MediaCache: atomic writes, extensions kept, LRU eviction under a soft cap, one fill per key."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from labelzoo.media import MediaCache


def writer(data: bytes) -> Callable[[BinaryIO], None]:
    def fill(out: BinaryIO) -> None:
        out.write(data)

    return fill


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def set_last_use(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_entry_keeps_extension_and_content(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 10_000)
    path = cache.get_or_create("s3://bucket/clip.wav", ".wav", writer(b"RIFF"))
    assert path.suffix == ".wav" and path.read_bytes() == b"RIFF"
    assert path.parent == tmp_path
    assert cache.get_or_create("s3://bucket/clip.wav", ".wav", writer(b"other")) == path
    assert path.read_bytes() == b"RIFF"


def test_odd_suffixes_are_dropped(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 10_000)
    assert cache.path_for("k", ".jpg?x=1").suffix == ""
    assert cache.path_for("k", "/../../etc").parent == tmp_path
    assert cache.path_for("k", ".tar").name.endswith(".tar")


def test_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 10_000)

    def broken(out: BinaryIO) -> None:
        out.write(b"partial")
        raise RuntimeError("connection dropped")

    with pytest.raises(RuntimeError):
        cache.get_or_create("k", ".jpg", broken)
    assert files_in(tmp_path) == []


def test_lru_eviction_keeps_size_under_cap(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 1000, grace_seconds=0)
    paths = [cache.get_or_create(f"k{i}", ".bin", writer(bytes(300))) for i in range(3)]
    for age, path in zip((30, 20, 10), paths, strict=True):
        set_last_use(path, age)
    cache.get_or_create("k0", ".bin", writer(b""))  # a hit: k0 becomes the most recently used
    newest = cache.get_or_create("k3", ".bin", writer(bytes(300)))
    assert cache.size_bytes() <= 900
    assert paths[0].exists() and newest.exists()
    assert not paths[1].exists()  # least recently used goes first


def test_file_larger_than_cap_is_returned_then_evicted(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 1000, grace_seconds=0)
    big = cache.get_or_create("big", ".mp4", writer(bytes(5000)))
    assert big.exists() and big.stat().st_size == 5000
    set_last_use(big, 5)
    small = cache.get_or_create("small", ".jpg", writer(bytes(100)))
    assert not big.exists() and small.exists()


def test_recently_used_files_survive_eviction(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 1000, grace_seconds=60)
    first = cache.get_or_create("a", ".bin", writer(bytes(600)))
    second = cache.get_or_create("b", ".bin", writer(bytes(600)))
    assert first.exists() and second.exists()  # "a" may still be in use by whoever got it
    set_last_use(first, 120)
    cache.get_or_create("c", ".bin", writer(bytes(10)))
    assert not first.exists() and second.exists()


def test_concurrent_requests_for_one_key_fill_once(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 10_000)
    calls = []
    barrier = threading.Barrier(8)

    def slow_fill(out: BinaryIO) -> None:
        calls.append(1)
        time.sleep(0.1)
        out.write(b"data")

    results: list[Path] = []

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_create("same", ".txt", slow_fill))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(set(results)) == 1 and results[0].read_bytes() == b"data"
    assert files_in(tmp_path) == [results[0].name]


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 10_000)
    stale = tmp_path / ".tmp-crashed.jpg"
    stale.write_bytes(b"half")
    set_last_use(stale, 7200)
    fresh = tmp_path / ".tmp-writing.jpg"
    fresh.write_bytes(b"half")
    assert cache.size_bytes() == 0
    assert not stale.exists() and fresh.exists()
