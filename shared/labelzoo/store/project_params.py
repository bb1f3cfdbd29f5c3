"""Each project's ``extra_params`` from ``/setup``, shared by every worker process through the store.

Label Studio sends ``extra_params`` only with ``/setup``; ``/predict`` may land on another gunicorn
worker, so the value is kept on disk rather than in a per-process dict.
"""

from __future__ import annotations

import json
from typing import Any

from labelzoo.store.db import Database


class ProjectParams:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, project: str, params: dict[str, Any]) -> None:
        """Store ``params``; no write when they are what is stored already.

        Label Studio repeats ``/setup`` on every Data Manager load: skipping the unchanged write keeps the
        write lock free, and ``/setup`` answering while ``MODEL_DIR`` is read-only.
        """
        text = json.dumps(params, sort_keys=True)
        row = self._db.conn.execute("SELECT params FROM project_params WHERE project = ?", (project,)).fetchone()
        if row is not None and row[0] == text:
            return
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO project_params (project, params) VALUES (?, ?) "
                "ON CONFLICT(project) DO UPDATE SET params = excluded.params",
                (project, text),
            )

    def get(self, project: str) -> dict[str, Any]:
        row = self._db.conn.execute("SELECT params FROM project_params WHERE project = ?", (project,)).fetchone()
        return json.loads(row[0]) if row else {}
