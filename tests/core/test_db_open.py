"""Opening the SQLite store: switching a new file to WAL survives the "database is locked" answer that
SQLite gives at once when gunicorn workers open a new file together (seen as a worker failing to boot)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from labelzoo.store.db import enable_wal


class FlakyConnection:
    """Answers "database is locked" to the first ``failures`` journal-mode switches, then behaves."""

    def __init__(self, real: sqlite3.Connection, failures: int, error: str = "database is locked") -> None:
        self.real, self.failures, self.error, self.attempts = real, failures, error, 0

    def execute(self, sql: str) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA journal_mode ="):
            self.attempts += 1
            if self.attempts <= self.failures:
                raise sqlite3.OperationalError(self.error)
        return self.real.execute(sql)


def test_a_locked_file_is_switched_to_wal_once_the_lock_goes(tmp_path: Path) -> None:
    conn = FlakyConnection(sqlite3.connect(tmp_path / "a.sqlite3"), failures=3)
    enable_wal(conn, timeout=5)  # type: ignore[arg-type]
    assert conn.attempts == 4
    assert conn.real.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = FlakyConnection(sqlite3.connect(tmp_path / "a.sqlite3"), failures=99)
    enable_wal(again, timeout=5)  # type: ignore[arg-type]
    assert again.attempts == 0  # the mode is stored in the file: later connections only read it


def test_other_errors_and_a_lock_that_never_goes_are_raised(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        enable_wal(FlakyConnection(sqlite3.connect(tmp_path / "b.sqlite3"), 1, "disk I/O error"))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(FlakyConnection(sqlite3.connect(tmp_path / "c.sqlite3"), 10**6), timeout=0.2)  # type: ignore[arg-type]
