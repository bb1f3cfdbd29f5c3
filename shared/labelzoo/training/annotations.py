"""Per-project annotations, label config and the "new annotations since the last job" counter."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from labelzoo.backend import Task, TrainingExample
from labelzoo.store.autolabels import AutoLabels
from labelzoo.store.db import Database

_UPSERT = """
    INSERT INTO annotations (project, id, task_id, task_data, result, was_cancelled, ground_truth, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (project, id) DO UPDATE SET
        task_id = excluded.task_id, task_data = excluded.task_data, result = excluded.result,
        was_cancelled = excluded.was_cancelled, ground_truth = excluded.ground_truth,
        updated_at = excluded.updated_at
    WHERE excluded.updated_at >= annotations.updated_at  -- a late, older webhook never wins
      AND (annotations.result IS NOT excluded.result OR annotations.task_data IS NOT excluded.task_data
           OR annotations.was_cancelled IS NOT excluded.was_cancelled
           OR annotations.ground_truth IS NOT excluded.ground_truth
           OR annotations.updated_at IS NOT excluded.updated_at)
"""

# Per task, the latest submitted annotation, a ground-truth one first; cancelled ones never count.
_EXAMPLES = """
    SELECT id, task_id, task_data, result, updated_at, was_cancelled, ground_truth FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY task_id ORDER BY ground_truth DESC, updated_at DESC, id DESC) AS rank
        FROM annotations WHERE project = ? AND was_cancelled = 0)
    WHERE rank = 1 ORDER BY task_id
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class AnnotationStore:
    """Writes take the caller's transaction (``conn``) so an event is recorded all at once."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.auto_labels = AutoLabels(db)

    def touch_project(self, conn: sqlite3.Connection, project: str, label_config: str | None) -> None:
        conn.execute("INSERT INTO projects (project) VALUES (?) ON CONFLICT DO NOTHING", (project,))
        if label_config:
            conn.execute("UPDATE projects SET label_config = ? WHERE project = ?", (label_config, project))

    def upsert(self, conn: sqlite3.Connection, project: str, records: Iterable[TrainingExample]) -> int:
        """Store annotations; returns how many usable (not cancelled) ones are new or changed.

        Annotations an auto-labelling job posted, still as it posted them, are the model's own answers: they are
        not stored, so never trained on (once a person changes one, it is stored like any other)."""
        records = list(records)
        is_auto = self.auto_labels.recogniser(project, (r.task_id for r in records))
        usable: list[tuple[Any, ...]] = []
        cancelled: list[tuple[Any, ...]] = []
        for r in records:
            if is_auto(r.task_id, r.id, r.result):
                continue
            (cancelled if r.was_cancelled else usable).append((
                project, r.id, r.task_id, _dumps(r.task_data), _dumps(r.result),
                int(r.was_cancelled), int(r.ground_truth), r.updated_at,
            ))
        self.touch_project(conn, project, None)
        conn.executemany(_UPSERT, cancelled)
        changed = conn.executemany(_UPSERT, usable).rowcount if usable else 0
        if changed:
            conn.execute("UPDATE projects SET changes = changes + ? WHERE project = ?", (changed, project))
        return changed

    def delete(self, conn: sqlite3.Connection, project: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        return conn.executemany(
            "DELETE FROM annotations WHERE project = ? AND id = ?", [(project, i) for i in ids]
        ).rowcount

    def replace(self, conn: sqlite3.Connection, project: str, records: Sequence[TrainingExample]) -> int:
        """Make the project's annotations exactly ``records`` (a full export); returns new/changed count."""
        changed = self.upsert(conn, project, records)
        keep = {r.id for r in records}
        stale = [row[0] for row in conn.execute("SELECT id FROM annotations WHERE project = ?", (project,))
                 if row[0] not in keep]
        self.delete(conn, project, stale)
        return changed

    def pending(self, conn: sqlite3.Connection, project: str) -> int:
        """New or changed annotations since the project's last job started."""
        row = conn.execute(
            "SELECT changes - trained_mark FROM projects WHERE project = ?", (project,)
        ).fetchone()
        return int(row[0]) if row else 0

    def mark_started(self, conn: sqlite3.Connection, project: str) -> None:
        conn.execute("UPDATE projects SET trained_mark = changes WHERE project = ?", (project,))

    def label_config(self, project: str) -> str | None:
        query = "SELECT label_config FROM projects WHERE project = ?"
        row = self.db.conn.execute(query, (project,)).fetchone()
        return row[0] if row else None

    def examples(self, project: str) -> list[TrainingExample]:
        return [
            TrainingExample(
                task=Task(id=row["task_id"], data=json.loads(row["task_data"])),
                result=json.loads(row["result"]),
                annotation_id=row["id"],
                updated_at=row["updated_at"],
                was_cancelled=bool(row["was_cancelled"]),
                ground_truth=bool(row["ground_truth"]),
            )
            for row in self.db.conn.execute(_EXAMPLES, (project,))
        ]

    def counts(self, project: str) -> dict[str, int]:
        row = self.db.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(was_cancelled), 0), COUNT(DISTINCT task_id) FROM annotations "
            "WHERE project = ?",
            (project,),
        ).fetchone()
        return {"annotations": row[0], "cancelled": row[1], "tasks": row[2]}
