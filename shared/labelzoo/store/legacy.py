"""Fold labelzoo 0.1's extra SQLite files into the one store, once, on the first start after an upgrade.

labelzoo 0.1 kept project parameters in ``MODEL_DIR/projects.sqlite3`` and bulk jobs in
``MODEL_DIR/bulk.sqlite3``. Their rows are copied into ``labelzoo.sqlite3`` (bulk tables get a ``bulk_``
prefix) inside one write transaction, then the old file is renamed ``<name>.migrated`` so the copy is
never repeated and the original stays on disk for a manual rollback. Several workers starting together
are safe: the copy only inserts rows that are not there yet, and the one that finds the file renamed skips it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from labelzoo.store.db import Database

log = logging.getLogger("labelzoo.store")

#: old file → (old table, new table) pairs, copied column for column
LEGACY_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "projects.sqlite3": (("project_params", "project_params"),),
    "bulk.sqlite3": (("jobs", "bulk_jobs"), ("chunks", "bulk_chunks"), ("claims", "bulk_claims")),
}
MIGRATED_SUFFIX = ".migrated"


def fold_in_legacy_files(db: Database, model_dir: Path) -> None:
    for name, tables in LEGACY_FILES.items():
        path = model_dir / name
        if not path.is_file():
            continue
        with db.write() as conn:
            if not path.is_file():  # another worker migrated it while this one waited for the lock
                continue
            copied = _copy_tables(path, conn, tables)
        with contextlib.suppress(FileNotFoundError):  # renamed by another worker after its copy
            os.replace(path, path.with_name(name + MIGRATED_SUFFIX))
        for suffix in ("-wal", "-shm"):
            path.with_name(name + suffix).unlink(missing_ok=True)
        log.info("migrated %s into %s (%d rows); the old file is kept as %s%s", path, db.path, copied, name,
                 MIGRATED_SUFFIX)


def _copy_tables(path: Path, conn: sqlite3.Connection, tables: tuple[tuple[str, str], ...]) -> int:
    """Insert the old file's rows that the store lacks; returns how many rows were read."""
    old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    old.row_factory = sqlite3.Row
    copied = 0
    try:
        present = {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for source, target in tables:
            if source not in present:
                continue
            rows = old.execute(f"SELECT * FROM {source}").fetchall()
            if not rows:
                continue
            columns = list(rows[0].keys())
            sql = (f"INSERT OR IGNORE INTO {target} ({', '.join(columns)}) "
                   f"VALUES ({', '.join('?' for _ in columns)})")
            conn.executemany(sql, [tuple(row) for row in rows])
            copied += len(rows)
    finally:
        old.close()
    return copied
