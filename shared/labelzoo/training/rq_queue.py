"""Training on RQ workers (``REDIS_URL``): machines with GPUs run the jobs the servers prepare.

Division of work, so that no worker ever opens the server's SQLite file (SQLite's WAL mode does not
work across machines over a network file system):

* the **server** claims the job in SQLite, writes the training set to ``MODEL_DIR/<project>/jobs/<id>.json``
  and enqueues :func:`rq_train` on the ``labelzoo-training`` queue;
* the **worker** (``labelzoo worker``, :mod:`labelzoo.rq_worker`) trains into
  ``MODEL_DIR/<project>/.staging-<id>/`` exactly like the in-process runner does (a child process per
  job), reports progress in the RQ job's ``meta`` and returns an :class:`~labelzoo.training.worker.Outcome`;
* the server polls the RQ job, copies progress into the job record, and promotes the staging folder
  when the job finishes. If no server runs at that moment, the next one to start does it.

Servers and workers must therefore see the same ``MODEL_DIR`` contents (a shared volume, e.g. NFS or a
cloud file share mounted at the same or another path: paths in Redis are relative to ``MODEL_DIR``).
Cancelling a running job sets a Redis key the worker polls; the training gets ``ctx.cancelled()`` and
is terminated after the grace period.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from redis import Redis
from rq import Queue, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from labelzoo.rq_worker import worker_settings
from labelzoo.training.layout import JobPaths
from labelzoo.training.supervisor import Outcome, Reporter, supervise

log = logging.getLogger("labelzoo.training")

QUEUE_NAME = "labelzoo-training"
KEEP_RESULTS = 7 * 24 * 3600  # a server that was down for days still finds the outcome
CANCEL_KEY = "labelzoo:cancel:{}"
CANCEL_GRACE = 30.0
_WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED}

@dataclass(frozen=True)
class Observation:
    """What Redis says about a dispatched job."""

    state: Literal["waiting", "running", "done"]
    meta: Mapping[str, Any] | None = None
    outcome: Outcome | None = None


class RQDispatcher:
    """The server's side: enqueue prepared jobs, observe them, ask them to stop."""

    def __init__(self, redis_url: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)

    def submit(self, job_id: str, project: str, backend_name: str, backend_path: Path) -> None:
        self.queue.enqueue(
            "labelzoo.training.rq_queue.rq_train",
            job_id, project, backend_name, str(backend_path),
            job_id=job_id, job_timeout=-1, result_ttl=KEEP_RESULTS, failure_ttl=KEEP_RESULTS,
            description=f"labelzoo training job {job_id} (project {project})",
        )

    def observe(self, job_id: str) -> Observation:
        try:
            job = Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
        except NoSuchJobError:
            return Observation("done", outcome=_failed("the RQ job is gone from Redis (expired or deleted)"))
        status = job.get_status()
        if status in _WAITING:
            return Observation("waiting")
        if status == JobStatus.STARTED:
            return Observation("running", meta=job.get_meta())
        if status == JobStatus.FINISHED:
            value = job.return_value()
            if isinstance(value, Mapping):
                return Observation("done", outcome=Outcome.from_json(value))
            return Observation("done", outcome=_failed("the RQ job finished without a training outcome"))
        if status == JobStatus.CANCELED:
            return Observation("done", outcome=Outcome("cancelled", "cancelled before a worker started it"))
        result = job.latest_result()
        reason = (result.exc_string or "").strip().splitlines()[-1:] if result is not None else []
        return Observation("done", outcome=_failed(f"the RQ worker failed ({status.value}): "
                                                   f"{reason[0] if reason else 'no details'}"))

    def cancel(self, job_id: str) -> None:
        self.redis.set(CANCEL_KEY.format(job_id), 1, ex=KEEP_RESULTS)
        try:
            job = Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
            if job.get_status() in _WAITING:
                job.cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass


def _failed(cause: str) -> Outcome:
    return Outcome("failed", f"{cause}; the previous version keeps serving", error=cause)


class _RQReporter(Reporter):
    """The worker's side: progress in the RQ job's meta, cancellation through a Redis key."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def _write(self, state: Mapping[str, Any]) -> None:
        self.job.meta["labelzoo"] = dict(state)
        self.job.save_meta()

    def _check_cancel(self) -> bool:
        return bool(self.job.connection.exists(CANCEL_KEY.format(self.job.id)))


def rq_train(job_id: str, project: str, backend_name: str, backend_path: str) -> dict[str, Any]:
    """The RQ job: train the prepared job with this worker's settings and return its outcome."""
    settings = worker_settings()
    job = get_current_job()
    if job is None:
        raise RuntimeError("rq_train runs inside an RQ worker")
    paths = JobPaths(settings.model_dir.resolve(), project, job_id)
    spec = json.loads(paths.spec.read_text(encoding="utf-8"))
    parent = settings.model_dir.resolve() / spec["parent_dir"] if spec["parent_dir"] else None
    backend = backend_path if (Path(backend_path) / "model.py").is_file() else backend_name
    outcome = supervise(settings, backend, paths, parent, _RQReporter(job), cancel_grace=CANCEL_GRACE)
    return outcome.to_json()
