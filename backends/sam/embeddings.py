"""A thread-safe LRU cache of SAM image embeddings, bounded by bytes, that computes each image once.

An embedding is what SAM's heavy image encoder makes of one image; every click on that image only
runs the small prompt encoder and mask decoder against it. Upstream's predictor keeps the embedding
of a single image, so two annotators working on two images re-encode on every click. This cache
keeps many, evicting the least recently used once their size passes ``max_bytes``.

Concurrent requests for an image nobody has encoded yet share one computation: the first caller
computes it, the others wait for its result (or its error) instead of encoding the same image again.
Values are never mutated once stored, so any number of threads may decode against one embedding.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import torch


def content_key(data: bytes) -> str:
    """The cache key of an image file: a digest of its bytes, so the same picture under two URLs or in
    two tasks shares one embedding, and a changed file never gets a stale one."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Embedding:
    """One image's encoder output and the sizes needed to map prompts in and masks out."""

    features: torch.Tensor
    """(1, C, h, w) image embedding on the model's device (C=256, h=w=64 for the official models)."""
    original_size: tuple[int, int]
    """(height, width) of the natural image, EXIF orientation applied: the size masks come out at."""
    input_size: tuple[int, int]
    """(height, width) after resizing the longest side to the encoder's input size (before padding)."""

    @property
    def nbytes(self) -> int:
        return self.features.element_size() * self.features.nelement()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    """Lookups answered by a stored embedding or by joining a computation already under way."""
    misses: int
    """Lookups that had to compute the embedding (one per encoder pass)."""
    evictions: int
    entries: int
    nbytes: int


class EmbeddingCache:
    """``get_or_compute(key, compute)``: the stored embedding for ``key``, computing it at most once."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Embedding] = OrderedDict()
        self._pending: dict[str, Future[Embedding]] = {}
        self._nbytes = 0
        self._hits = self._misses = self._evictions = 0

    def get_or_compute(self, key: str, compute: Callable[[], Embedding]) -> Embedding:
        """The embedding for ``key``; on a miss ``compute()`` makes it (outside the lock).

        If ``compute`` raises, every caller waiting on this key gets the same exception and nothing is
        stored, so a later call tries again.
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return found
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

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` is stored (without touching its recency)."""
        with self._lock:
            return key in self._entries

    def keys(self) -> list[str]:
        """Stored keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, len(self._entries), self._nbytes)

    def _store(self, key: str, value: Embedding) -> None:
        """Insert ``value`` as the most recent entry and evict from the old end down to ``max_bytes``.

        A value larger than the whole cache is handed back to its callers but not kept.
        """
        size = value.nbytes
        if size > self.max_bytes:
            return
        self._entries[key] = value
        self._nbytes += size
        while self._nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._nbytes -= evicted.nbytes
            self._evictions += 1
