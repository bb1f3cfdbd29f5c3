"""A size-capped disk cache of downloaded media, safe for concurrent threads and processes.

Entries are named ``sha256(key) + extension``: the key is the original URI (``s3://…``, the download
URL, a ``data:`` URI), never the task, so the same file shared by many tasks is stored once, and the
extension is kept because decoders such as ffmpeg sniff it. Files are written to a temporary file in
the cache folder and renamed into place, so a reader never sees a partial file, and two processes
downloading the same key at once both end up with a complete file. Within a process, a per-key lock
makes concurrent requests for one key download it once.

Eviction is least-recently-used by modification time, which :meth:`MediaCache.get_or_create` bumps on
every hit. It runs after an insert pushes the cache over its cap, trims down to 90 % of it and skips the
file just inserted and any file used in the last ``grace_seconds``: a path handed out moments ago (to a
model still reading it, possibly in another process) is never deleted under it. The cap is therefore
soft: a single file larger than the whole cap is still returned and stays until a later eviction.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_SECONDS = 3600.0
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,16}")


@dataclass
class _KeyLock:
    lock: threading.Lock
    users: int = 0


class MediaCache:
    def __init__(self, directory: Path, max_bytes: int, *, grace_seconds: float = 60.0) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.grace_seconds = grace_seconds
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, _KeyLock] = {}
        self._locks_guard = threading.Lock()
        self._size_lock = threading.Lock()
        self._approx_bytes: int | None = None  # this process's running estimate; rescanned when over the cap

    def path_for(self, key: str, suffix: str = "") -> Path:
        """Where the entry for ``key`` lives; ``suffix`` is kept only if it looks like an extension."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.directory / (digest + (suffix if _SUFFIX.fullmatch(suffix) else ""))

    def get_or_create(self, key: str, suffix: str, fill: Callable[[BinaryIO], object]) -> Path:
        """The cached file for ``key``; on a miss ``fill`` writes its content into an open temp file.

        If ``fill`` raises, nothing is left behind and the exception propagates.
        """
        path = self.path_for(key, suffix)
        if _touch(path):
            return path
        with self._key_lock(key):
            if _touch(path):
                return path
            self.directory.mkdir(parents=True, exist_ok=True)  # a /tmp cleaner may have removed it
            fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=_TEMP_PREFIX, suffix=path.suffix)
            try:
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                os.replace(temp_name, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp_name)
                raise
            size = path.stat().st_size
        self._after_insert(path, size)
        return path

    def size_bytes(self) -> int:
        """Bytes currently stored (a directory scan)."""
        return sum(size for _, size, _ in self._entries())

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        with self._locks_guard:
            entry = self._locks.setdefault(key, _KeyLock(threading.Lock()))
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._locks_guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._locks[key]

    def _after_insert(self, path: Path, size: int) -> None:
        with self._size_lock:
            if self._approx_bytes is None:
                self._approx_bytes = self.size_bytes()
            else:
                self._approx_bytes += size
            if self._approx_bytes > self.max_bytes:
                self._approx_bytes = self._evict(keep=path)

    def _evict(self, keep: Path) -> int:
        """Delete least-recently-used entries down to 90 % of the cap; returns the bytes left."""
        entries = sorted(self._entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        target = self.max_bytes * 0.9
        recent = time.time() - self.grace_seconds
        for path, size, used in entries:
            if total <= target:
                break
            if path == keep or used > recent:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
        return total

    def _entries(self) -> Iterator[tuple[Path, int, float]]:
        """``(path, size, last use)`` of each entry; deletes temp files abandoned by a crashed writer."""
        now = time.time()
        with os.scandir(self.directory) as scan:
            for item in scan:
                try:
                    stat = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if item.name.startswith(_TEMP_PREFIX):
                    if now - stat.st_mtime > _STALE_TEMP_SECONDS:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(item.path)
                elif item.is_file(follow_symlinks=False):
                    yield Path(item.path), stat.st_size, stat.st_mtime


def _touch(path: Path) -> bool:
    """Mark ``path`` as just used (its mtime drives eviction); False if it does not exist."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True
