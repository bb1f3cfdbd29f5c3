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
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO project_params (project, params) VALUES (?, ?) "
                "ON CONFLICT(project) DO UPDATE SET params = excluded.params",
                (project, json.dumps(params, sort_keys=True)),
            )

    def get(self, project: str) -> dict[str, Any]:
        row = self._db.conn.execute("SELECT params FROM project_params WHERE project = ?", (project,)).fetchone()
        return json.loads(row[0]) if row else {}
