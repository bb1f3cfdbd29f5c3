"""Supervise one training in a child process: progress, cancellation, crashes.

:func:`supervise` runs in the process that owns the job (the runner thread of a server process, or an
RQ work-horse). It starts ``python -m labelzoo.training.worker`` (a fresh interpreter: no state shared
with the server, no re-import of the server's ``__main__``), so a crash, an out-of-memory kill or a
hung CUDA call in training can never take the server down, and cancellation can end it.

The protocol with the child: the pickled :class:`~labelzoo.training.worker.ChildArgs` on its stdin,
then ``cancel`` lines; the child answers with JSON lines on an inherited pipe (progress, then a result
or an error). Its stdout and stderr go to the job's log file. When the supervisor dies, the child's
stdin reaches end-of-file and the child exits: training never outlives its owner.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

import labelzoo
from labelzoo.observability import MULTIPROC_ENV
from labelzoo.settings import Settings
from labelzoo.training.layout import ChildArgs, JobPaths
from labelzoo.training.versions import fsync_tree

log = logging.getLogger("labelzoo.training")

KILL_AFTER_TERMINATE = 5.0  # seconds between SIGTERM and SIGKILL
PACKAGE_ROOT = Path(labelzoo.__file__).resolve().parents[1]


class Reporter(ABC):
    """Where a supervisor sends progress and asks about cancellation, both throttled to every 0.5 s.

    Progress reports are merged (latest progress and message, metrics accumulated by name) and written
    by :meth:`_write`; :meth:`_check_cancel` asks the job's owner whether someone cancelled it.
    """

    INTERVAL = 0.5

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"progress": None, "message": "", "metrics": {}}
        self._dirty = False
        self._written_at = 0.0
        self._checked_at = 0.0
        self._cancelled = False

    def progress(self, progress: float | None, message: str, metrics: Mapping[str, float]) -> None:
        if progress is not None:
            self.state["progress"] = progress
        self.state["message"] = message or self.state["message"]
        self.state["metrics"] = {**self.state["metrics"], **metrics}
        self._dirty = True
        self._flush(force=False)

    def cancel_requested(self) -> bool:
        self._flush(force=False)
        now = time.monotonic()
        if not self._cancelled and now - self._checked_at >= self.INTERVAL:
            self._checked_at = now
            self._cancelled = self._check_cancel()
        return self._cancelled

    def close(self) -> None:
        self._flush(force=True)

    def _flush(self, force: bool) -> None:
        now = time.monotonic()
        if self._dirty and (force or now - self._written_at >= self.INTERVAL):
            self._dirty, self._written_at = False, now
            self._write({**self.state, "metrics": dict(self.state["metrics"])})

    @abstractmethod
    def _write(self, state: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def _check_cancel(self) -> bool: ...


@dataclass(frozen=True)
class Outcome:
    """How a training ended. ``interrupted``: the supervising process is shutting down (not a failure).

    ``trained_on``: the task ids the new weights learnt from (the examples less the backend's held-out ones);
    None when not known (a training that did not succeed, or a result from a worker that does not report it).
    """

    status: Literal["succeeded", "failed", "cancelled", "interrupted"]
    message: str
    promote: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None
    trained_on: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "message": self.message, "promote": self.promote,
            "metrics": dict(self.metrics), "summary": self.summary, "error": self.error,
            "trained_on": None if self.trained_on is None else list(self.trained_on),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            status=data["status"], message=data["message"], promote=bool(data["promote"]),
            metrics=dict(data["metrics"]), summary=data["summary"], error=data["error"],
            trained_on=_task_ids(data.get("trained_on")),  # absent: a worker from before it was recorded
        )


def _task_ids(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(i) for i in value)


class JobLog:
    """Lines for the job's log file, mirrored to the ``labelzoo.training`` logger."""

    def __init__(self, path: Path, job_id: str) -> None:
        self.path = path
        self.job_id = job_id
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str, level: int = logging.INFO) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp} {logging.getLevelName(level)} labelzoo.training: {message}\n")
        log.log(level, "job %s: %s", self.job_id, message)


def supervise(
    settings: Settings,
    backend_path: str,
    paths: JobPaths,
    parent_dir: Path | None,
    reporter: Reporter,
    *,
    cancel_grace: float,
    stop: threading.Event | None = None,
) -> Outcome:
    """Train in a child process until it ends; never raises for what happens inside the child."""
    joblog = JobLog(paths.log, paths.job_id)
    if paths.staging.exists():
        shutil.rmtree(paths.staging)
    paths.staging.mkdir(parents=True)
    args = ChildArgs(
        settings=settings, backend_path=backend_path, spec_path=str(paths.spec), staging=str(paths.staging),
        parent_dir=str(parent_dir) if parent_dir else None, sys_path=list(sys.path),
    )
    proc, reader, messages = _start(args, paths)
    joblog(f"training process {proc.pid} started")

    result: dict[str, Any] | None = None
    error: str | None = None
    cancelled_at: float | None = None
    terminated_at: float | None = None
    stopping = False

    def handle(message: list[Any]) -> None:
        nonlocal result, error
        kind, *body = message
        if kind == "progress":
            reporter.progress(*body)
        elif kind == "result":
            result = body[0]
        elif kind == "error":
            error = body[0]

    while proc.poll() is None:
        with contextlib.suppress(queue.Empty):
            handle(messages.get(timeout=0.2))
        now = time.monotonic()
        if stop is not None and stop.is_set() and not stopping:
            stopping = True
            joblog("the supervising process is stopping: ending the training process", logging.WARNING)
            proc.terminate()
            terminated_at = now
        elif cancelled_at is None and reporter.cancel_requested():
            cancelled_at = now
            _tell(proc, b"cancel\n")
            joblog(f"cancel requested: ctx.cancelled() is now true; terminated in {cancel_grace:g}s "
                   "if still running")
        if cancelled_at is not None and terminated_at is None and now - cancelled_at > cancel_grace:
            joblog("still running after the grace period: terminating it", logging.WARNING)
            proc.terminate()
            terminated_at = now
        if terminated_at is not None and now - terminated_at > KILL_AFTER_TERMINATE and proc.poll() is None:
            proc.kill()
    reader.join(5.0)  # the last messages; a grandchild holding the pipe open must not block us
    while not messages.empty():
        handle(messages.get_nowait())
    with contextlib.suppress(OSError):
        proc.stdin.close()  # type: ignore[union-attr]
    reporter.close()
    outcome = _outcome(proc.returncode, result, error, cancelled_at is not None, stopping, paths, joblog)
    # metrics reported along the way (a loss curve's last value), then fit()'s final ones
    return replace(outcome, metrics={**reporter.state["metrics"], **outcome.metrics})


def _start(
    args: ChildArgs, paths: JobPaths
) -> tuple[subprocess.Popen[bytes], threading.Thread, queue.Queue[list[Any]]]:
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    env.pop(MULTIPROC_ENV, None)  # not a server worker: its metric files would outlive it, its gauges stale
    with paths.log.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labelzoo.training.worker", str(write_fd)],
            stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT, pass_fds=(write_fd,), env=env,
        )
    os.close(write_fd)
    _tell(proc, pickle.dumps(args))
    messages: queue.Queue[list[Any]] = queue.Queue()
    reader = threading.Thread(target=_read_messages, args=(read_fd, messages), daemon=True,
                              name=f"labelzoo-train-{paths.job_id}")
    reader.start()
    return proc, reader, messages


def _tell(proc: subprocess.Popen[bytes], data: bytes) -> None:
    stdin: BinaryIO | None = proc.stdin  # type: ignore[assignment]
    with contextlib.suppress(OSError, ValueError):  # the child may be gone already
        assert stdin is not None
        stdin.write(data)
        stdin.flush()


def _read_messages(fd: int, messages: queue.Queue[list[Any]]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        for line in pipe:
            with contextlib.suppress(ValueError):
                messages.put(json.loads(line))


def _outcome(
    exitcode: int | None, result: dict[str, Any] | None, error: str | None, cancelled: bool, stopping: bool,
    paths: JobPaths, joblog: JobLog,
) -> Outcome:
    if stopping:
        return Outcome("interrupted", "interrupted: the server stopped during training")
    if cancelled:
        joblog("cancelled")
        return Outcome("cancelled", "cancelled; the previous version keeps serving")
    if result is not None and exitcode == 0:
        if result["promote"]:
            fsync_tree(paths.staging)
        joblog(f"training finished: promote={result['promote']} metrics={result['metrics']}")
        return Outcome("succeeded", "", promote=result["promote"], metrics=result["metrics"],
                       summary=result["summary"], trained_on=_task_ids(result.get("trained_on")))
    if error is not None:
        joblog(f"training failed: {error}", logging.ERROR)
        return Outcome("failed", f"training failed: {error}; the previous version keeps serving "
                       f"(traceback in {paths.log})", error=error)
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        cause = f"training process killed by {name}{hint}"
    else:
        cause = f"training process exited with code {exitcode} without a result"
    joblog(cause, logging.ERROR)
    return Outcome("failed", f"{cause}; the previous version keeps serving", error=cause)
