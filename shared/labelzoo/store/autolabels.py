"""The annotations auto-labelling jobs posted to Label Studio, so that they can be told from people's and undone.

A job writes a row *before* it posts an annotation (state ``posting``, with the annotation's ``unique_id`` and a
hash of its result) and fills in Label Studio's id once the POST answers (``posted``). Label Studio sends the
``ANNOTATION_CREATED`` webhook while that POST is still open, so the row is already there when the training side
asks :meth:`AutoLabels.is_auto` whether to learn from the annotation: an auto-made annotation whose result is
unchanged is the model's own answer and is never trained on, nor counted as a human label when precision is
measured. Once a person changes its result, it is theirs.

Undo marks each row ``undone`` (deleted from Label Studio), ``kept`` (a person changed it, so it stays) or
``gone`` (deleted in Label Studio already).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labelzoo.store.db import Database

LIVE = ("posting", "posted")  # rows whose annotation may be in Label Studio as the job posted it
_IN_BATCH = 500  # task ids per query: SQLite's limit on bound parameters is 999 in old builds

#: ``is_auto(task id, annotation id, result)`` for annotations of tasks read in advance
Recogniser = Callable[[int | None, int | None, Sequence[Mapping[str, Any]]], bool]
_NAMESPACE = uuid.UUID("5a0d1c3e-7f4b-4c8e-9a52-6c1b0e2f4d17")


def result_hash(result: Sequence[Mapping[str, Any]]) -> str:
    """A hash of an annotation result that does not depend on key order or whitespace."""
    canonical = json.dumps(list(result), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def unique_id(job_id: str, task_id: int) -> str:
    """The ``unique_id`` a job gives its annotation of a task: the same on every try, so a retried POST can only
    fail as a duplicate in Label Studio, never store a second annotation."""
    return str(uuid.uuid5(_NAMESPACE, f"labelzoo-autolabel:{job_id}:{task_id}"))


@dataclass(frozen=True)
class AutoLabel:
    job_id: str
    project: str
    task_id: int
    unique_id: str
    annotation_id: int | None
    result_hash: str
    score: float
    state: str


class AutoLabels:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, job_id: str, project: str, task_id: int, result: Sequence[Mapping[str, Any]],
              score: float) -> AutoLabel:
        """The row for a job's annotation of a task, written before it is posted (the existing one on a retry)."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO bulk_autolabels (job_id, project, task_id, unique_id, result_hash, score, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, task_id) DO NOTHING",
                (job_id, project, task_id, unique_id(job_id, task_id), result_hash(result), score, time.time()))
        found = self.get(job_id, task_id)
        assert found is not None
        return found

    def posted(self, job_id: str, task_id: int, annotation_id: int) -> None:
        self._set(job_id, task_id, "posted", annotation_id)

    def forget(self, job_id: str, task_id: int) -> None:
        """Drop a row whose annotation was not posted after all (a person annotated the task first)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM bulk_autolabels WHERE job_id = ? AND task_id = ? AND state = 'posting'",
                         (job_id, task_id))

    def ended(self, job_id: str, task_id: int, state: str) -> None:
        """Record how undo left the annotation: ``undone``, ``kept`` or ``gone``."""
        self._set(job_id, task_id, state)

    def get(self, job_id: str, task_id: int) -> AutoLabel | None:
        row = self.db.conn.execute("SELECT * FROM bulk_autolabels WHERE job_id = ? AND task_id = ?",
                                   (job_id, task_id)).fetchone()
        return _row(row) if row else None

    def of_job(self, job_id: str, states: Sequence[str] = LIVE) -> list[AutoLabel]:
        marks = ",".join("?" * len(states))
        rows = self.db.conn.execute(
            f"SELECT * FROM bulk_autolabels WHERE job_id = ? AND state IN ({marks}) ORDER BY task_id",
            (job_id, *states))
        return [_row(r) for r in rows]

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self.db.conn.execute("SELECT state, COUNT(*) FROM bulk_autolabels WHERE job_id = ? GROUP BY state",
                                    (job_id,))
        return {state: int(n) for state, n in rows}

    def is_auto(self, project: str, task_id: int | None, annotation_id: int | None,
                result: Sequence[Mapping[str, Any]]) -> bool:
        """Whether an annotation is one an auto-labelling job posted, with its result as posted."""
        return self.recogniser(project, [task_id])(task_id, annotation_id, result)

    def recogniser(self, project: str, task_ids: Iterable[int | None]) -> Recogniser:
        """:meth:`is_auto` for many annotations of these tasks, from one read of the store per 500 tasks."""
        wanted = sorted({t for t in task_ids if t is not None})
        live: dict[int, list[tuple[int | None, str]]] = defaultdict(list)
        for start in range(0, len(wanted), _IN_BATCH):
            part = wanted[start:start + _IN_BATCH]
            rows = self.db.conn.execute(
                "SELECT task_id, annotation_id, result_hash FROM bulk_autolabels WHERE project = ? AND state IN "
                f"('posting', 'posted') AND task_id IN ({','.join('?' * len(part))})", (project, *part))
            for row in rows:
                live[row["task_id"]].append((row["annotation_id"], row["result_hash"]))

        def is_auto(task_id: int | None, annotation_id: int | None, result: Sequence[Mapping[str, Any]]) -> bool:
            posted = live.get(task_id) if task_id is not None else None
            if not posted:
                return False
            digest = result_hash(result)
            return any(known == digest and mine in (None, annotation_id) for mine, known in posted)

        return is_auto

    def _set(self, job_id: str, task_id: int, state: str, annotation_id: int | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bulk_autolabels SET state = ?, annotation_id = COALESCE(?, annotation_id) "
                "WHERE job_id = ? AND task_id = ?", (state, annotation_id, job_id, task_id))


def _row(row: Any) -> AutoLabel:
    return AutoLabel(job_id=row["job_id"], project=row["project"], task_id=row["task_id"],
                     unique_id=row["unique_id"], annotation_id=row["annotation_id"],
                     result_hash=row["result_hash"], score=row["score"], state=row["state"])
