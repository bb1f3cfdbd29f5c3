"""Each project's ``extra_params`` from ``/setup``, shared by every worker process through SQLite.

Label Studio sends ``extra_params`` only with ``/setup``; ``/predict`` may land on another gunicorn
worker, so the value is kept on disk rather than in a per-process dict.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class ProjectParams:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS project_params (project TEXT PRIMARY KEY, params TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def save(self, project: str, params: dict[str, Any]) -> None:
        self._connect().execute(
            "INSERT INTO project_params (project, params) VALUES (?, ?) "
            "ON CONFLICT(project) DO UPDATE SET params = excluded.params",
            (project, json.dumps(params, sort_keys=True)),
        )

    def get(self, project: str) -> dict[str, Any]:
        row = self._connect().execute("SELECT params FROM project_params WHERE project = ?", (project,)).fetchone()
        return json.loads(row[0]) if row else {}
