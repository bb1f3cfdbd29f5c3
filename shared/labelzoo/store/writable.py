"""Whether ``MODEL_DIR`` can be written, and the one place where SQLite's can't-write errors get a name.

A read-only mount, a full disk or a folder owned by another user shows up as an ``sqlite3.OperationalError``
("attempt to write a readonly database", "database or disk is full", "unable to open database file") on
whichever statement meets it first. Every connection of the store is a :class:`StoreConnection`, which
turns those into :class:`~labelzoo.errors.StoreUnavailable` (HTTP 503) naming ``MODEL_DIR`` and the fix:
a webhook that could not store its annotations answers 503, never a 500 with a traceback, never a 201.
Other SQLite errors (a locked database, a bad statement) pass unchanged.

:func:`check_dir` writes and deletes a small file in ``MODEL_DIR``: the start-up check of the server and of
``labelzoo worker`` (with :meth:`labelzoo.store.db.Database.check_writable` for the store itself), and part
of ``/health``.

SQLite's messages are matched rather than ``sqlite_errorcode``, which Python 3.10 lacks; they are stable
strings of the SQLite library (``sqlite3_errstr``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from labelzoo.errors import StoreUnavailable

#: SQLite's message → what it means for MODEL_DIR
_MEANINGS = (
    ("readonly database", "it is read-only"),
    ("database or disk is full", "its disk is full"),
    ("unable to open database file", "the store cannot be opened"),
    ("disk I/O error", "its disk gives I/O errors"),
    ("access permission denied", "access is denied"),
)
FIX = ("labelzoo keeps its store (labelzoo.sqlite3), trained versions and job logs there: mount it read-write, "
       "let this process's user write to it, or free disk space")
PROBE_PREFIX = ".labelzoo-write-check-"


def unavailable(exc: sqlite3.OperationalError, db_path: Path) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` that ``exc`` means, or None when it is another kind of error."""
    text = str(exc)
    for needle, meaning in _MEANINGS:
        if needle in text:
            return StoreUnavailable(
                f"MODEL_DIR {db_path.parent} cannot be written: {meaning} (SQLite: {text!r} on {db_path.name}); "
                f"nothing was saved. {FIX}"
            )
    return None


def _raise(exc: sqlite3.OperationalError, db_path: Path) -> NoReturn:
    mapped = unavailable(exc, db_path)
    if mapped is None:
        raise exc
    raise mapped from exc


def connect(db_path: Path, **kwargs: Any) -> StoreConnection:
    """``sqlite3.connect`` for the store, its open errors named as every later statement's are."""
    try:
        conn = sqlite3.connect(db_path, factory=StoreConnection, **kwargs)
    except sqlite3.OperationalError as exc:
        _raise(exc, db_path)
    assert isinstance(conn, StoreConnection)
    return conn


class StoreConnection(sqlite3.Connection):
    """A connection whose ``execute`` raises :class:`StoreUnavailable` where the store cannot be written."""

    def __init__(self, database: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.store_path = Path(database)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            _raise(exc, self.store_path)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            _raise(exc, self.store_path)


def check_dir(model_dir: Path, *, create: bool = False) -> None:
    """Write and delete a small file in ``model_dir`` (made first with ``create``); StoreUnavailable if that fails.

    Catches what a look at permission bits cannot: a read-only mount, a full disk, and (as root, who passes
    every permission check) nothing less than a real write.
    """
    try:
        if create:
            model_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=model_dir, prefix=PROBE_PREFIX)
        try:
            os.write(fd, b"labelzoo")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise StoreUnavailable(f"MODEL_DIR {model_dir} cannot be written ({exc}). {FIX}") from exc
