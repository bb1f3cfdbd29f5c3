"""Quarantine: a trained version whose files cannot load is set aside; its project is served by an ancestor.

The rule (documented in docs/protocol.md, "Broken versions"):

* When a trained version fails to load, :func:`blame_files` decides whether its files are at fault: they
  differ from the manifest recorded at promotion (a file missing, truncated or changed), or the error
  says so itself (a file of the version's folder not found; a decoder that ran out of data or met
  garbage: ``EOFError``, ``UnpicklingError``, ``JSONDecodeError``, torch's "PytorchStreamReader failed",
  …, also when wrapped by the backend's own error). Then the version is quarantined: a row in the store
  with the reason, seen by every worker and kept across restarts.
* Any other failure (out of memory, a missing dependency, a bug in ``load()``, a network error) is not
  blamed on the files: nothing is recorded, the request gets a 503, and the next request loads the
  version again. Good weights are never set aside for a failure that may pass.
* A version whose folder is missing is treated as quarantined while it is missing (nothing recorded).
* A quarantine is lifted when the files change (restored from a backup; compared by names, sizes and
  times, see :func:`~labelzoo.training.manifest.signature`): the next request loads the version again and
  quarantines it again if that fails.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import struct
import tarfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labelzoo.store.db import Database, iso
from labelzoo.training.manifest import damage, signature

#: decoders' errors for data that ends early or is not what they read
_DECODE_ERRORS = (EOFError, pickle.UnpicklingError, json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile,
                  tarfile.TarError, struct.error)
#: what libraries say about a broken file in a generic RuntimeError/ValueError (lower case)
_BROKEN_FILE_WORDS = ("corrupt", "truncated", "pytorchstreamreader failed", "error while deserializing",
                      "unexpected end of", "invalid load key", "not a zip file", "bad magic number")
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})


@dataclass(frozen=True)
class Quarantined:
    """Why a version is not served; ``since`` is None for a missing folder (nothing is recorded then)."""

    reason: str
    since: float | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"reason": self.reason, "since": iso(self.since)}


class QuarantineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, project: str, version: str, reason: str, folder: Path) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO quarantine (project, version, reason, signature, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (project, version) DO UPDATE SET reason = excluded.reason, "
                "signature = excluded.signature, created_at = excluded.created_at",
                (project, version, reason, signature(folder), time.time()),
            )

    def active(self, project: str, version: str, folder: Path) -> Quarantined | None:
        """The version's quarantine, unless its files changed since it was recorded (that lifts it)."""
        row = self.db.conn.execute(
            "SELECT reason, signature, created_at FROM quarantine WHERE project = ? AND version = ?",
            (project, version),
        ).fetchone()
        if row is None or row["signature"] != signature(folder):
            return None
        return Quarantined(row["reason"], row["created_at"])


def blame_files(error: BaseException, folder: Path, files: Mapping[str, Sequence[int | str]] | None) -> str | None:
    """What is wrong with the files of the version in ``folder`` that failed to load with ``error``.

    None when the failure is not theirs. ``files`` is the manifest recorded at promotion (None for versions
    promoted before manifests were kept: then only the error is judged).
    """
    if files is not None and (found := damage(folder, files)) is not None:
        return found
    for exc in _chain(error):
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            return None
    for exc in _chain(error):
        if isinstance(exc, OSError) and exc.errno in _MISSING and _inside(exc.filename, folder):
            return f"{os.fsdecode(exc.filename)} cannot be opened ({exc.strerror})"
        if isinstance(exc, _DECODE_ERRORS):
            return f"a file cannot be decoded ({type(exc).__name__})"
        if any(word in str(exc).lower() for word in _BROKEN_FILE_WORDS):
            return "a file is damaged"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _inside(filename: object, folder: Path) -> bool:
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return False
    path = Path(os.path.abspath(os.fsdecode(filename)))
    return path == folder or folder in path.parents
