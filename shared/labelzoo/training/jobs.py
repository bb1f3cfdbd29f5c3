"""Job records: create, claim (one running job per project, across processes), progress, finish.

Status moves ``queued → running → succeeded | failed | cancelled``; a job that had nothing to do ends
``skipped``. Partial unique indexes allow one queued and one running job per project, and
:meth:`JobStore.claim` picks a queued job inside a ``BEGIN IMMEDIATE`` transaction, so two server
processes can never start the same job, nor two jobs of one project.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelzoo.store.db import Database, iso
from labelzoo.training.layout import JobPaths

FINAL = ("succeeded", "failed", "cancelled", "skipped")


@dataclass(frozen=True)
class JobRecord:
    id: str
    project: str
    status: str
    reason: str
    executor: str
    progress: float
    message: str
    metrics: Mapping[str, float]
    created_at: float
    started_at: float | None
    finished_at: float | None
    parent_version: str | None
    candidate: str | None
    generation: int | None
    examples: int | None
    dispatched_at: float | None
    version: str | None
    error: str | None
    log_path: str
    runner: str | None
    cancel_requested: bool = field(default=False)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        values = dict(row)
        values["metrics"] = json.loads(values["metrics"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "status": self.status,
            "reason": self.reason,
            "progress": round(self.progress, 4),
            "message": self.message,
            "metrics": dict(self.metrics),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "parent_version": self.parent_version,
            "examples": self.examples,
            "version": self.version,
            "promoted": self.version is not None,
            "error": self.error,
            "log_path": self.log_path,
            "executor": self.executor,
            "cancel_requested": self.cancel_requested,
        }


class JobStore:
    def __init__(self, db: Database, model_dir: Path) -> None:
        self.db = db
        self.model_dir = model_dir

    def paths(self, project: str, job_id: str) -> JobPaths:
        return JobPaths(self.model_dir, project, job_id)

    def create(
        self, conn: sqlite3.Connection, project: str, reason: str, executor: str,
        status: str = "queued", message: str = "",
    ) -> JobRecord:
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        finished = now if status in FINAL else None
        conn.execute(
            "INSERT INTO jobs (id, project, status, reason, executor, message, created_at, finished_at, "
            "log_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, project, status, reason, executor, message, now, finished,
             str(self.paths(project, job_id).log)),
        )
        return self._get(conn, job_id)

    def queued(self, conn: sqlite3.Connection, project: str) -> JobRecord | None:
        query = "SELECT * FROM jobs WHERE project = ? AND status = 'queued'"
        row = conn.execute(query, (project,)).fetchone()
        return JobRecord.from_row(row) if row else None

    def get(self, job_id: str) -> JobRecord | None:
        return self._get(self.db.conn, job_id)

    def list(self, project: str | None = None, limit: int = 200) -> list[JobRecord]:
        """Newest first."""
        if project is None:
            rows = self.db.conn.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = self.db.conn.execute(
                "SELECT * FROM jobs WHERE project = ? ORDER BY created_at DESC LIMIT ?", (project, limit)
            )
        return [JobRecord.from_row(r) for r in rows]

    def running(self, executor: str | None = None) -> list[JobRecord]:
        rows = self.db.conn.execute("SELECT * FROM jobs WHERE status = 'running' ORDER BY started_at")
        return [j for j in map(JobRecord.from_row, rows) if executor is None or j.executor == executor]

    def claim(
        self,
        runner: str,
        one_local_at_a_time: bool,
        on_claim: Callable[[sqlite3.Connection, JobRecord], None],
    ) -> JobRecord | None:
        """Atomically start the oldest queued job whose project has no running job.

        With ``one_local_at_a_time`` (in-process training), nothing starts while any local job runs on
        this ``MODEL_DIR``: trainings would otherwise compete for the same GPU or CPU cores.
        """
        if self.db.conn.execute("SELECT 1 FROM jobs WHERE status = 'queued' LIMIT 1").fetchone() is None:
            return None  # the common case, answered without taking the write lock
        with self.db.write() as conn:
            if one_local_at_a_time and conn.execute(
                "SELECT 1 FROM jobs WHERE status = 'running' AND executor = 'local'"
            ).fetchone():
                return None
            row = conn.execute(
                "SELECT * FROM jobs j WHERE status = 'queued' AND NOT EXISTS ("
                "  SELECT 1 FROM jobs r WHERE r.project = j.project AND r.status = 'running') "
                "ORDER BY created_at LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, runner = ?, message = 'starting' "
                "WHERE id = ?",
                (time.time(), runner, row["id"]),
            )
            job = self._get(conn, row["id"])
            on_claim(conn, job)
            return job

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields of a running job (progress, message, metrics, parent_version, candidate)."""
        if "metrics" in fields:
            fields["metrics"] = json.dumps(dict(fields["metrics"]))
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.conn.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND status = 'running'", [*fields.values(), job_id]
        )

    def finish(
        self, conn: sqlite3.Connection, job_id: str, status: str, message: str, *,
        error: str | None = None, version: str | None = None, metrics: Mapping[str, float] | None = None,
    ) -> bool:
        """End a running job; False if it had already ended (another process finished it first)."""
        progress = "1.0" if status == "succeeded" else "progress"
        sets = f"status = ?, message = ?, error = ?, version = ?, finished_at = ?, progress = {progress}"
        values: list[Any] = [status, message, error, version, time.time()]
        if metrics is not None:
            sets += ", metrics = ?"
            values.append(json.dumps(dict(metrics)))
        query = f"UPDATE jobs SET {sets} WHERE id = ? AND status = 'running'"
        return conn.execute(query, [*values, job_id]).rowcount == 1

    def requeue(self, job_id: str, message: str) -> str | None:
        """Put a running job back in the queue (its process is stopping), unless one is queued already.

        The job's new status: ``queued``, or ``cancelled`` when a newer queued job replaces it; None when
        it was not running.
        """
        with self.db.write() as conn:
            job = self._get(conn, job_id)
            if job is None or job.status != "running":
                return None
            if self.queued(conn, job.project) is None:
                conn.execute(
                    "UPDATE jobs SET status = 'queued', started_at = NULL, runner = NULL, progress = 0, "
                    "message = ? WHERE id = ?",
                    (message, job_id),
                )
                return "queued"
            self.finish(conn, job_id, "cancelled", message + "; a newer queued job replaces it")
            return "cancelled"

    def cancel(self, job_id: str) -> JobRecord | None:
        """A queued job is cancelled at once; a running one is flagged for its supervisor."""
        with self.db.write() as conn:
            job = self._get(conn, job_id)
            if job is None:
                return None
            if job.status == "queued":
                conn.execute(
                    "UPDATE jobs SET status = 'cancelled', message = 'cancelled before it started', "
                    "finished_at = ? WHERE id = ?",
                    (time.time(), job_id),
                )
            elif job.status == "running":
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1, message = 'cancelling' WHERE id = ?", (job_id,)
                )
            return self._get(conn, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        row = self.db.conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _get(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRecord.from_row(row) if row else None
