"""Bulk jobs, their chunks and their task claims, in the store's ``bulk_*`` tables (shared by all processes).

A job is planned once: the ids of the tasks it must predict are *claimed* (one row per task, unique
per project, so two jobs never predict the same task) and split into *chunks*. Chunks are the unit of
work, of progress and of resumption: a job that stops part-way goes on with its pending chunks. Claims
also let ``/predict`` answer at once for a task a running job is about to post, instead of predicting
it a second time. A job's claims are dropped when it ends.

Status: ``queued → running → succeeded | failed | cancelled | interrupted``. A server that shuts down
puts its running jobs back to ``queued``; the next server process to start resumes them. A job whose
process died (its runner token is dead) is resumed the same way, except ``labelzoo predict`` runs,
which end ``interrupted``: running the command again resumes from Label Studio's state.

The metrics of bulk jobs (``labelzoo_bulk_*``, :mod:`labelzoo.observability`) are counted here, where each
start, chunk and end is written exactly once whichever process or thread gets there.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from labelzoo.errors import StoreUnavailable
from labelzoo.observability import core_metrics
from labelzoo.store import Database, iso
from labelzoo.store.procs import token_alive

FINAL = ("succeeded", "failed", "cancelled", "interrupted")
EXECUTORS = ("thread", "rq", "cli")  # a server thread, RQ workers, a `labelzoo predict` process
RESERVATION_SECONDS = 3600.0  # far longer than a /predict: Label Studio has stored its answer by then



@dataclass(frozen=True)
class BulkJob:
    id: str
    project: str
    kind: str
    executor: str
    status: str
    model_version: str
    label_config: str | None
    planned: bool
    total: int
    project_tasks: int | None
    message: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    runner: str | None
    cancel_requested: bool
    options: dict[str, Any] | None  # an auto-label job's options
    report: dict[str, Any] | None  # an auto-label job's estimate, and its undo

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BulkJob:
        values = dict(row)
        values["planned"] = bool(values["planned"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        for name in ("options", "report"):
            values[name] = json.loads(values[name]) if values[name] else None
        return cls(**values)


@dataclass(frozen=True)
class Chunk:
    seq: int
    task_ids: list[int]


@dataclass(frozen=True)
class ChunkCounts:
    posted: int = 0
    skipped: int = 0
    failed: int = 0


class BulkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # jobs ----------------------------------------------------------------------------------------
    def create(self, project: str, kind: str, executor: str, version: str, *, label_config: str | None = None,
               runner: str | None = None, options: dict[str, Any] | None = None) -> BulkJob:
        """A new job: ``queued``, or ``running`` at once when its ``runner`` is given."""
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}")
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        status = "queued" if runner is None else "running"
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO bulk_jobs (id, project, kind, executor, status, model_version, label_config, created_at, "
                "started_at, runner, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, project, kind, executor, status, version, label_config, now,
                 None if runner is None else now, runner, None if options is None else json.dumps(options)),
            )
        job = self.get(job_id)
        assert job is not None
        if status == "running":
            core_metrics().bulk_jobs_started.labels(kind).inc()
        return job

    def get(self, job_id: str) -> BulkJob | None:
        row = self.db.conn.execute("SELECT * FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        return BulkJob.from_row(row) if row else None

    def list(self, project: str | None = None, limit: int = 100) -> list[BulkJob]:
        """Newest first."""
        if project is None:
            rows = self.db.conn.execute("SELECT * FROM bulk_jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = self.db.conn.execute(
                "SELECT * FROM bulk_jobs WHERE project = ? ORDER BY created_at DESC LIMIT ?", (project, limit))
        return [BulkJob.from_row(r) for r in rows]

    def take(self, job_id: str, runner: str, *, previous: str | None = None) -> bool:
        """Start a queued job, or take over a running one from its dead ``previous`` runner."""
        with self.db.write() as conn:
            if previous is None:
                query, args = "status = 'queued'", ()
            else:
                query, args = "status = 'running' AND runner = ?", (previous,)
            changed = conn.execute(
                f"UPDATE bulk_jobs SET status = 'running', runner = ?, started_at = COALESCE(started_at, ?), "
                f"message = 'running' WHERE id = ? AND {query}",
                (runner, time.time(), job_id, *args),
            ).rowcount
            started = conn.execute("SELECT kind FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone() if changed else None
        if started is not None:
            core_metrics().bulk_jobs_started.labels(started["kind"]).inc()
        return started is not None

    def set_label_config(self, job_id: str, label_config: str) -> None:
        self.db.conn.execute("UPDATE bulk_jobs SET label_config = ? WHERE id = ?", (label_config, job_id))

    def update_report(self, job_id: str, **fields: Any) -> None:
        """Add ``fields`` to an auto-label or calibration job's report."""
        with self.db.write() as conn:
            row = conn.execute("SELECT report FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
            report = {**(json.loads(row[0]) if row and row[0] else {}), **fields}
            conn.execute("UPDATE bulk_jobs SET report = ? WHERE id = ?", (json.dumps(report), job_id))

    def set_message(self, job_id: str, message: str) -> None:
        self.db.conn.execute("UPDATE bulk_jobs SET message = ? WHERE id = ? AND status = 'running'", (message, job_id))

    def plan(self, job_id: str, project: str, chunks: Iterable[Sequence[int]], *,
             project_tasks: int | None = None) -> list[Chunk]:
        """Claim the chunks' tasks for the job and store the chunks, numbered in order.

        Tasks another job holds are left out, and so is a chunk left empty (its number is skipped).
        """
        planned: list[Chunk] = []
        total = 0
        with self.db.write() as conn:
            for seq, ids in enumerate(chunks):
                mine = [task_id for task_id in ids if conn.execute(
                    "INSERT OR IGNORE INTO bulk_claims (project, task_id, job_id) VALUES (?, ?, ?)",
                    (project, task_id, job_id)).rowcount == 1]
                if mine:
                    planned.append(Chunk(seq, mine))
                    conn.execute("INSERT INTO bulk_chunks (job_id, seq, task_ids) VALUES (?, ?, ?)",
                                 (job_id, seq, json.dumps(mine)))
                    total += len(mine)
            conn.execute("UPDATE bulk_jobs SET planned = 1, total = ?, project_tasks = ? WHERE id = ?",
                         (total, project_tasks, job_id))
        return planned

    def pending_chunks(self, job_id: str) -> list[Chunk]:
        rows = self.db.conn.execute(
            "SELECT seq, task_ids FROM bulk_chunks WHERE job_id = ? AND status = 'pending' ORDER BY seq", (job_id,))
        return [Chunk(row["seq"], json.loads(row["task_ids"])) for row in rows]

    def finish_chunk(self, job_id: str, seq: int, counts: ChunkCounts, *, error: str | None = None,
                     failed: bool = False, worker: str | None = None) -> None:
        """Record a chunk's outcome: ``failed`` when the chunk as a whole could not run (``error`` says why)."""
        recorded = self.db.conn.execute(
            "UPDATE bulk_chunks SET status = ?, posted = ?, skipped = ?, failed = ?, error = ?, worker = ? "
            "WHERE job_id = ? AND seq = ? AND status = 'pending'",
            ("failed" if failed else "done", counts.posted, counts.skipped, counts.failed, error, worker, job_id, seq),
        ).rowcount
        if recorded == 1:
            tasks = core_metrics().bulk_tasks
            for outcome in ("posted", "skipped", "failed"):
                tasks.labels(outcome).inc(getattr(counts, outcome))

    def counts(self, job_id: str) -> dict[str, Any]:
        row = self.db.conn.execute(
            "SELECT COUNT(*) AS chunks, COALESCE(SUM(status != 'pending'), 0) AS chunks_done, "
            "COALESCE(SUM(status = 'failed'), 0) AS chunks_failed, COALESCE(SUM(posted), 0) AS posted, "
            "COALESCE(SUM(skipped), 0) AS skipped, COALESCE(SUM(failed), 0) AS failed, "
            "COUNT(DISTINCT worker) AS workers FROM bulk_chunks WHERE job_id = ?", (job_id,)).fetchone()
        return dict(row)

    def chunk_errors(self, job_id: str, limit: int = 3) -> list[str]:
        rows = self.db.conn.execute(
            "SELECT error FROM bulk_chunks WHERE job_id = ? AND error IS NOT NULL ORDER BY seq LIMIT ?",
            (job_id, limit))
        return [row[0] for row in rows]

    def finish(self, job_id: str, status: str, message: str, *, error: str | None = None) -> bool:
        """End a job and drop its claims; False if it was not running (someone else ended it)."""
        assert status in FINAL
        now = time.time()
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE bulk_jobs SET status = ?, message = ?, error = ?, finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (status, message, error, now, job_id)).rowcount
            conn.execute("DELETE FROM bulk_claims WHERE job_id = ?", (job_id,))
            ended = conn.execute(
                "SELECT kind, started_at FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone() if changed else None
        if ended is not None:
            metrics = core_metrics()
            metrics.bulk_jobs_finished.labels(ended["kind"], status).inc()
            if ended["started_at"] is not None:  # a queued job cancelled before it ran has no duration
                metrics.bulk_job_seconds.labels(ended["kind"], status).observe(max(0.0, now - ended["started_at"]))
        return ended is not None

    def requeue(self, job_id: str, message: str) -> None:
        """Put a running job back in the queue, claims kept: the process running it is stopping."""
        self.db.conn.execute(
            "UPDATE bulk_jobs SET status = 'queued', runner = NULL, message = ? WHERE id = ? AND status = 'running'",
            (message, job_id))

    def cancel(self, job_id: str) -> BulkJob | None:
        """A queued job ends at once; a running one is flagged for its runner (checked between chunks)."""
        job = self.get(job_id)
        if job is None:
            return None
        if job.status == "queued":
            self.finish(job_id, "cancelled", "cancelled before it ran")
        elif job.status == "running":
            self.db.conn.execute("UPDATE bulk_jobs SET cancel_requested = 1, message = 'cancelling' WHERE id = ?",
                                 (job_id,))
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        row = self.db.conn.execute("SELECT cancel_requested FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    # recovery and claims ---------------------------------------------------------------------------
    def orphans(self) -> list[BulkJob]:
        """Queued jobs, and running jobs whose process is gone (dead runner token on this host)."""
        rows = self.db.conn.execute("SELECT * FROM bulk_jobs WHERE status IN ('queued', 'running')")
        jobs = [BulkJob.from_row(r) for r in rows]
        return [j for j in jobs if j.status == "queued" or (j.runner and token_alive(j.runner) is False)]

    def reserve(self, project: str, version: str, task_ids: Sequence[int]) -> dict[int, str]:
        """For a batch /predict of ``version``: which of these tasks a job posts, or posted, a prediction of
        ``version`` for (task id → job id), the others reserved for the request, in one transaction.

        A job holds the tasks a live running job is predicting (any version: its claims) and those in the done
        chunks of a job of ``version`` (Label Studio holds that prediction). A reserved task is left out by the
        chunks of ``version`` that run later (:meth:`reserved`): whichever of the request and the job comes
        first predicts it, never both. Reservations older than :data:`RESERVATION_SECONDS` are dropped. While
        the store cannot be written the request still gets its answer, unreserved (the health check says why).
        """
        now = time.time()
        try:
            with self.db.write() as conn:
                conn.execute("DELETE FROM bulk_reserved WHERE reserved_at < ?", (now - RESERVATION_SECONDS,))
                found = self._held(conn, project, version, task_ids)
                conn.executemany(
                    "INSERT OR REPLACE INTO bulk_reserved (project, version, task_id, reserved_at) VALUES (?, ?, ?, ?)",
                    [(project, version, task_id, now) for task_id in task_ids if task_id not in found])
        except StoreUnavailable:
            return self._held(self.db.conn, project, version, task_ids)
        return found

    @staticmethod
    def _held(conn: sqlite3.Connection, project: str, version: str, task_ids: Sequence[int]) -> dict[int, str]:
        """The tasks a job holds for ``version`` (see :meth:`reserve`): task id → job id."""
        found: dict[int, str] = {}
        for part in _parts(task_ids):
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                f"SELECT c.task_id, c.job_id, j.runner FROM bulk_claims c JOIN bulk_jobs j ON j.id = c.job_id "
                f"WHERE c.project = ? AND j.status = 'running' AND c.task_id IN ({marks})", (project, *part))
            found.update({row[0]: row[1] for row in rows if row[2] and token_alive(row[2]) is not False})
            rows = conn.execute(
                f"SELECT t.value, c.job_id FROM bulk_chunks c JOIN bulk_jobs j ON j.id = c.job_id, "
                f"json_each(c.task_ids) t WHERE j.project = ? AND j.model_version = ? AND c.status = 'done' "
                f"AND t.value IN ({marks})", (project, version, *part))
            found.update({int(row[0]): row[1] for row in rows if int(row[0]) not in found})
        return found

    def release(self, project: str, version: str, task_ids: Sequence[int]) -> None:
        """Give back reservations: the request answered these tasks without a prediction."""
        with contextlib.suppress(StoreUnavailable), self.db.write() as conn:  # nothing was reserved then
            conn.executemany("DELETE FROM bulk_reserved WHERE project = ? AND version = ? AND task_id = ?",
                             [(project, version, task_id) for task_id in task_ids])

    def reserved(self, project: str, version: str, task_ids: Sequence[int]) -> set[int]:
        """Which of these tasks a /predict of ``version`` answers or answered (:meth:`reserve`)."""
        found: set[int] = set()
        for part in _parts(task_ids):
            marks = ",".join("?" * len(part))
            rows = self.db.conn.execute(
                f"SELECT task_id FROM bulk_reserved WHERE project = ? AND version = ? AND task_id IN ({marks})",
                (project, version, *part))
            found.update(row[0] for row in rows)
        return found


def _parts(task_ids: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    """The ids in parts that fit SQLite's bound-variable limit."""
    for start in range(0, len(task_ids), size):
        yield list(task_ids[start:start + size])


def job_json(job: BulkJob, counts: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    done = counts["posted"] + counts["skipped"] + counts["failed"]
    return {
        "id": job.id,
        "project": job.project,
        "kind": job.kind,
        "executor": job.executor,
        "status": job.status,
        "model_version": job.model_version,
        "total": job.total,
        "done": done,
        "posted": counts["posted"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "progress": round(done / job.total, 4) if job.total else (1.0 if job.planned else 0.0),
        "chunks": {"total": counts["chunks"], "done": counts["chunks_done"], "failed": counts["chunks_failed"]},
        "workers": counts["workers"],  # processes (server threads, RQ workers) that finished chunks
        "project_tasks": job.project_tasks,
        "message": job.message,
        "error": job.error,
        "errors": errors,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "cancel_requested": job.cancel_requested,
        **({"auto_label": {**job.options, **(job.report or {})}} if job.options is not None else {}),
        **({"calibration": job.report or {}} if job.kind == "calibrate" else {}),
    }
