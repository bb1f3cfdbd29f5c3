"""Bulk chunks on RQ workers (``REDIS_URL``): one RQ job per chunk on the ``labelzoo-bulk`` queue.

The server plans the job (lists the project's tasks, claims those lacking the version, splits them into
chunks in its SQLite store) and enqueues each chunk as ``rq_predict_chunk``; workers on any machine
take chunks as they free up, so a job spreads over every worker listening. A worker reads the chunk's
tasks from Label Studio, predicts them and posts the predictions itself, then returns its counts; the
server copies them into the job record and ends the job when every chunk is back. RQ job ids are
``labelzoo-bulk-<job>-<seq>``, so a server that restarts re-attaches to chunks already in Redis.

Workers never open the server's SQLite file. They need ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``,
the backend (its folder, or its name when the folder path differs on the worker) and, for a trained
version, ``MODEL_DIR`` on a shared volume (the chunk names the weights relative to it). Start them with
``labelzoo worker <backend>`` (both queues) or ``labelzoo worker <backend> --queue bulk``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from redis import Redis
from rq import Queue, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from labelzoo.bulk.chunks import ChunkReport, run_chunk
from labelzoo.bulk.lsapi import BulkApi
from labelzoo.bulk.store import BulkJob, Chunk

log = logging.getLogger("labelzoo.bulk")

QUEUE_NAME = "labelzoo-bulk"
KEEP_RESULTS = 7 * 24 * 3600
CHUNK_TIMEOUT = 3600  # seconds one chunk may run on a worker
_WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED, JobStatus.STARTED}


def rq_job_id(job_id: str, seq: int) -> str:
    return f"labelzoo-bulk-{job_id}-{seq}"


@dataclass(frozen=True)
class ChunkState:
    state: Literal["waiting", "done", "failed"]
    report: ChunkReport | None = None
    worker: str | None = None
    error: str | None = None


class BulkDispatcher:
    """The server's side: enqueue a job's chunks, observe them, cancel those not started."""

    def __init__(self, redis_url: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)

    def submit(self, job: BulkJob, chunks: Sequence[Chunk], spec: Mapping[str, Any]) -> None:
        """Enqueue the chunks that are not in Redis yet (a restarted server finds the others there)."""
        jobs = [
            Queue.prepare_data(
                "labelzoo.bulk.rq.rq_predict_chunk", args=({**spec, "task_ids": chunk.task_ids},),
                job_id=rq_job_id(job.id, chunk.seq), timeout=CHUNK_TIMEOUT, result_ttl=KEEP_RESULTS,
                failure_ttl=KEEP_RESULTS, description=f"labelzoo bulk job {job.id} chunk {chunk.seq}",
            )
            for chunk in chunks
            if not Job.exists(rq_job_id(job.id, chunk.seq), connection=self.redis)
        ]
        if jobs:
            self.queue.enqueue_many(jobs)

    def observe(self, job_id: str, seqs: Sequence[int]) -> dict[int, ChunkState]:
        ids = [rq_job_id(job_id, s) for s in seqs]
        fetched = Job.fetch_many(ids, connection=self.redis, serializer=JSONSerializer)
        states: dict[int, ChunkState] = {}
        for seq, rq_job in zip(seqs, fetched, strict=True):
            if rq_job is None:
                states[seq] = ChunkState("failed", error="the chunk's RQ job is gone from Redis (expired?)")
                continue
            status = rq_job.get_status()
            if status in _WAITING:
                states[seq] = ChunkState("waiting")
            elif status == JobStatus.FINISHED:
                value = rq_job.return_value()
                states[seq] = ChunkState("done", ChunkReport.from_json(value["report"]), worker=value["worker"])
            else:
                result = rq_job.latest_result()
                lines = (result.exc_string or "").strip().splitlines() if result is not None else []
                states[seq] = ChunkState("failed", error=f"RQ worker: {lines[-1] if lines else status.value}")
        return states

    def cancel(self, job_id: str, seqs: Sequence[int]) -> None:
        for seq in seqs:
            try:
                rq_job = Job.fetch(rq_job_id(job_id, seq), connection=self.redis, serializer=JSONSerializer)
                if rq_job.get_status() in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                    rq_job.cancel()
            except (NoSuchJobError, InvalidJobOperation):
                pass


def rq_predict_chunk(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The RQ job: predict one chunk with this worker's settings and post it to Label Studio."""
    from labelzoo.backend import PredictContext
    from labelzoo.labelconfig import parse_label_config_cached
    from labelzoo.media import MediaResolver, label_studio_client
    from labelzoo.prediction import ModelPool, run_backend, to_json
    from labelzoo.registry import load_backend
    from labelzoo.rq_worker import worker_settings
    from labelzoo.scoremap import IDENTITY, ScoreMap

    settings = worker_settings()
    client = label_studio_client(settings.media)
    if client is None or not client.has_credentials:
        raise RuntimeError("this RQ worker has no LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY: it cannot run bulk jobs")
    backend_path = spec["backend_path"]
    backend = load_backend(backend_path if (Path(backend_path) / "model.py").is_file() else spec["backend_name"])
    weights = settings.model_dir.resolve() / spec["weights"] if spec["weights"] else None
    version = spec["model_version"]
    model = ModelPool(backend.cls, settings, capacity=1)
    if weights is None:
        model.start()
    instance = model.get(version, weights, wait=600)
    fitted = spec.get("task_scores")  # the project's map, fitted by a calibration job
    scores = ScoreMap.from_json(fitted, f"the task-score map of {version}") if fitted else instance.task_scores
    ctx = PredictContext(project=spec["project"], config=parse_label_config_cached(
                             spec["label_config"], max_bytes=settings.label_config_max_bytes),
                         media=MediaResolver(settings.media, client=client), settings=settings, model_version=version,
                         params=spec["params"], task_scores=scores if settings.calibrate_task_scores else IDENTITY)
    api = BulkApi(client, rate_limit=settings.bulk_rate_limit, retries=settings.bulk_retries)
    try:
        report = run_chunk(api, lambda tasks: [to_json(p, version) for p in run_backend(instance, tasks, ctx)],
                           spec["project"], version, spec["task_ids"])
    finally:
        client.close()
    current = get_current_job()
    worker = current.worker_name if current is not None and current.worker_name else f"pid {os.getpid()}"
    return {"report": report.to_json(), "worker": f"{socket.gethostname()}:{worker}"}
