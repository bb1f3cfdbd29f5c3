"""The one SQLite file behind all state (``MODEL_DIR/labelzoo.sqlite3``), shared by every process.

Several gunicorn workers, their training children and the in-process runners all open the same file,
so the rules are:

* WAL journal: readers never block the writer and the writer never blocks readers;
* a busy timeout: a writer waits for another process's transaction instead of failing;
* autocommit connections, with explicit ``BEGIN IMMEDIATE`` around every multi-statement write, so a
  transaction takes the write lock up front (no deadlock when two processes upgrade from reading);
* one connection per thread and process: ``sqlite3`` connections must not cross threads, and a
  connection inherited through ``fork`` must never be used by the child.

WAL needs a local file system (it uses shared memory); see ``labelzoo.training`` for the RQ layout. The
schema is :data:`labelzoo.store.schema.MIGRATIONS`. Errors that mean ``MODEL_DIR`` cannot be written
become :class:`~labelzoo.errors.StoreUnavailable` (:mod:`labelzoo.store.writable`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labelzoo.store.schema import MIGRATIONS
from labelzoo.store.writable import connect

BUSY_TIMEOUT_MS = 15_000



def iso(epoch: float | None) -> str | None:
    """The store keeps epoch seconds; JSON answers show UTC ISO 8601 with milliseconds."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def enable_wal(conn: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Switch the file to WAL once; the mode is stored in the file, so later connections only read it.

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once rather than
    waiting when several processes (gunicorn workers starting together) open a new file at the same
    moment: so retry for a while instead of failing the worker's boot.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Database:
    """Hands out this thread's connection to one SQLite file and runs its migrations once.

    ``PRAGMA user_version`` counts the migrations applied to the file; ``migrations`` defaults to the schema
    of the whole store (tests pass their own).
    """

    def __init__(self, path: Path, migrations: tuple[str, ...] = MIGRATIONS) -> None:
        self.path = path
        self.migrations = migrations
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate(self.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again in a forked child)."""
        cached: tuple[int, sqlite3.Connection] | None = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        conn = connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn = (os.getpid(), conn)
        with self._lock:
            self._opened.append((os.getpid(), conn))
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite ends the transaction itself on some errors (a full disk)
                conn.execute("ROLLBACK")
            raise

    def check_writable(self, lock_wait: float = 0.2) -> None:
        """Take the write lock and release it: :class:`StoreUnavailable` when the store cannot be written.

        Nothing is written, so this is cheap enough for every ``/health``. A lock held elsewhere for longer
        than ``lock_wait`` means another process is writing, so the store is writable: that is not waited for.
        """
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {int(lock_wait * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connections this process opened (call when no thread uses the database any more)."""
        with self._lock:
            mine = [conn for pid, conn in self._opened if pid == os.getpid()]
            self._opened.clear()
        for conn in mine:
            conn.close()
        self._local = threading.local()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= len(self.migrations):
            return
        with self.write():
            done = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(self.migrations[done:], start=done + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
