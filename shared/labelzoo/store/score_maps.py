"""Each project's task-score map of a model version, fitted by a calibration job on its human annotations.

Kept in the store rather than in a version's folder: the base model's folder is not the project's, and a
calibration job may fit a trained version again on annotations made since it was trained. Every worker
process reads the same row.
"""

from __future__ import annotations

import json
import time

from labelzoo.scoremap import ScoreMap
from labelzoo.store.db import Database


class ScoreMaps:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, project: str, version: str) -> ScoreMap | None:
        """The project's map of ``version``; None when no calibration job fitted one."""
        row = self._db.conn.execute("SELECT map FROM score_maps WHERE project = ? AND version = ?",
                                    (project, version)).fetchone()
        if row is None:
            return None
        return ScoreMap.from_json(json.loads(row[0]), f"the task-score map of {version} for project {project}")

    def put(self, project: str, version: str, scores: ScoreMap) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO score_maps (project, version, map, fitted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (project, version) DO UPDATE SET map = excluded.map, fitted_at = excluded.fitted_at",
                (project, version, json.dumps(scores.to_json()), time.time()),
            )
