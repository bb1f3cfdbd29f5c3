"""The per-process training runner: a thread that claims queued jobs and sees each one through.

Every server process runs one (started lazily, so a gunicorn worker forked after the service was built
gets its own). The thread wakes when this process queues a job and otherwise polls the store once a
second, which is how it picks up jobs queued by other processes. For each job it claims:

1. prepare: pull the project's annotations from Label Studio (START_TRAINING), snapshot the training
   set, name the candidate version, write the spec file; or end the job ``skipped``. The parent is the
   version the project is served, so a quarantined version is never trained from;
2. run: in-process mode supervises a child process here (one local training at a time per
   ``MODEL_DIR``); RQ mode hands the job to Redis and returns at once;
3. finish: promote the staging folder with its manifest (each file's size and SHA-256, what a failed load
   is later checked against), or delete it; close the job record.

It also reaps jobs whose supervising process died, and polls Redis for dispatched RQ jobs.

Every job it claims counts in ``labelzoo_training_jobs_started``; every one that ends, here or when this
process observes the end of an RQ job, in ``labelzoo_training_jobs_finished`` and
``labelzoo_training_job_seconds`` by outcome (:func:`_count_end`), once the end is committed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo.observability import core_metrics
from labelzoo.registry import BackendSpec
from labelzoo.settings import Settings
from labelzoo.store.db import Database
from labelzoo.store.procs import process_token, token_alive
from labelzoo.training.annotations import AnnotationStore
from labelzoo.training.jobs import JobRecord, JobStore
from labelzoo.training.labelstudio import fetch_annotations, rename_backends_titled
from labelzoo.training.manifest import manifest
from labelzoo.training.supervisor import JobLog, Outcome, Reporter, supervise
from labelzoo.training.versions import VersionRecord, VersionStore, fingerprint, version_name

if TYPE_CHECKING:
    from labelzoo.media import LabelStudioClient
    from labelzoo.training.rq_queue import RQDispatcher

log = logging.getLogger("labelzoo.training")

POLL_SECONDS = 1.0
REAP_EVERY = 5.0
DIED = "worker died (killed?) during training; the previous version keeps serving"


class _DbReporter(Reporter):
    def __init__(self, jobs: JobStore, job_id: str) -> None:
        super().__init__()
        self.jobs = jobs
        self.job_id = job_id

    def _write(self, state: Mapping[str, Any]) -> None:
        fields: dict[str, Any] = {"message": state["message"], "metrics": state["metrics"]}
        if state["progress"] is not None:
            fields["progress"] = state["progress"]
        self.jobs.update(self.job_id, **fields)

    def _check_cancel(self) -> bool:
        return self.jobs.cancel_requested(self.job_id)


@dataclass(frozen=True)
class _Plan:
    parent_dir: Path | None  # the parent version's folder; None for the base model


class Runner:
    def __init__(
        self,
        *,
        settings: Settings,
        backend: BackendSpec,
        db: Database,
        annotations: AnnotationStore,
        versions: VersionStore,
        jobs: JobStore,
        base: Callable[[], str],
        current: Callable[[str], str],
        rq: RQDispatcher | None,
        client: LabelStudioClient | None,
        cancel_grace: float,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.db = db
        self.annotations = annotations
        self.versions = versions
        self.jobs = jobs
        self.base = base
        self.current = current
        self.rq = rq
        self.client = client
        self.cancel_grace = cancel_grace
        self.executor = "rq" if rq is not None else "local"
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._token = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: told ``(project, version)`` after each promotion this process makes (the bulk service's refresh)
        self.on_promoted: Callable[[str, str], object] | None = None

    # thread ----------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid, self._token = os.getpid(), process_token()
            self._wake, self._stop = threading.Event(), threading.Event()
            self._thread = threading.Thread(target=self._loop, name="labelzoo-training", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self.ensure_started()
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Stop the thread; a training it supervises is ended and its job queued again."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        reaped_at = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - reaped_at >= REAP_EVERY:
                    reaped_at = time.monotonic()
                    self.reap()
                if self.rq is not None:
                    self.track_rq()
                while not self._stop.is_set() and (job := self._claim()) is not None:
                    self._run(job)
            except Exception:  # a broken database or Redis must not kill the thread for good
                log.exception("training runner: unexpected error; retrying in %ss", POLL_SECONDS)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    # one job ---------------------------------------------------------------------------------
    def _claim(self) -> JobRecord | None:
        return self.jobs.claim(
            self._token,
            one_local_at_a_time=self.executor == "local",
            on_claim=lambda conn, job: self.annotations.mark_started(conn, job.project),
        )

    def _run(self, job: JobRecord) -> None:
        core_metrics().training_jobs_started.inc()
        paths = self.jobs.paths(job.project, job.id)
        joblog = JobLog(paths.log, job.id)
        try:
            plan = self._prepare(job, joblog)
            if plan is None:
                return
            if self.jobs.cancel_requested(job.id):
                self._end(job, "cancelled", "cancelled before training started")
                return
            if self.rq is not None:
                self.rq.submit(job.id, job.project, self.backend.name, self.backend.path)
                self.jobs.update(job.id, dispatched_at=time.time(),
                                 message="waiting for a training worker (RQ queue labelzoo-training)")
                joblog("handed to the RQ queue labelzoo-training")
                return
            outcome = supervise(
                self.settings, str(self.backend.path), paths, plan.parent_dir, _DbReporter(self.jobs, job.id),
                cancel_grace=self.cancel_grace, stop=self._stop,
            )
            self.finish(job.id, outcome)
        except Exception as exc:
            joblog(f"internal error:\n{traceback.format_exc()}", logging.ERROR)
            self._end(job, "failed", f"internal error: {exc}; the previous version keeps serving",
                      error=f"{type(exc).__name__}: {exc}")

    def _prepare(self, job: JobRecord, joblog: JobLog) -> _Plan | None:
        """Snapshot the training set and write the spec; None when the job ended here."""
        project = job.project
        joblog(f"job {job.id} started on project {project} ({job.reason})")
        if job.reason == "start_training" and (failure := self._pull(project, joblog)) is not None:
            self._end(job, "failed", f"could not pull the project's annotations from Label Studio ({failure}); "
                      "nothing was trained and the previous version keeps serving", error=failure)
            return None
        with self.db.write() as conn:
            examples = self.annotations.examples(project)
            self.annotations.mark_started(conn, project)
        label_config = self.annotations.label_config(project)
        if not examples:
            self._end(job, "skipped", "no annotations to train on (cancelled annotations do not count)")
            return None
        if not label_config:
            self._end(job, "failed", f"no label config known for project {project}: it arrives with the "
                      "project object of webhook events; save the project in Label Studio or annotate a task",
                      error="no label config")
            return None
        parent = self.current(project)
        parent_record = self.versions.get(project, parent)
        generation = parent_record.generation + 1 if parent_record else 1
        marks = [(e.annotation_id, e.updated_at) for e in examples]
        candidate = version_name(self.base(), project, generation, fingerprint(parent, marks))
        while self.versions.get(project, candidate) is not None and self.versions.unservable(project, candidate):
            # retraining a version whose files broke: the same name is taken, so derive a new one from it
            candidate = version_name(self.base(), project, generation, fingerprint(candidate, marks))
        if self.versions.get(project, candidate) is not None:
            self._end(job, "skipped", f"version {candidate} was already trained from {parent} on these "
                      "annotations")
            return None
        paths = self.jobs.paths(project, job.id)
        spec = {
            "job_id": job.id, "project": project, "reason": job.reason, "label_config": label_config,
            "parent_version": parent, "parent_dir": f"{project}/{parent}" if parent_record else None,
            "candidate": candidate, "examples": [e.to_json() for e in examples],
        }
        tmp = paths.spec.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, paths.spec)
        self.jobs.update(
            job.id, parent_version=parent, candidate=candidate, generation=generation, examples=len(examples),
            message=f"training on {len(examples)} examples from {parent}",
        )
        joblog(f"training set: {len(examples)} examples; parent {parent}; candidate version {candidate}")
        return _Plan(self.versions.path(project, parent) if parent_record else None)

    def _pull(self, project: str, joblog: JobLog) -> str | None:
        """Replace the project's stored annotations by Label Studio's export; the failure, if it failed.

        "Start Training" asks for a model of the project as Label Studio has it: a training on whatever the
        webhooks happened to deliver would look like one, so a failed export fails the job instead.
        """
        if self.client is None:
            joblog("LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are not both set: training on the annotations "
                   "received through webhooks")
            return None
        try:
            records = fetch_annotations(self.client, project)
        except Exception as exc:
            joblog(f"could not pull annotations from Label Studio ({exc})", logging.WARNING)
            return str(exc)
        with self.db.write() as conn:
            changed = self.annotations.replace(conn, project, records)
        joblog(f"pulled {len(records)} annotations from Label Studio ({changed} new or changed)")
        return None

    def finish(self, job_id: str, outcome: Outcome) -> None:
        """Apply a training outcome: promote, or record why not. Safe to call from several processes."""
        job = self.jobs.get(job_id)
        if job is None or job.status != "running":
            return
        paths = self.jobs.paths(job.project, job.id)
        joblog = JobLog(paths.log, job.id)
        metrics = {**job.metrics, **outcome.metrics}
        if outcome.status == "interrupted":
            if self.jobs.requeue(job.id, "queued again: the server stopped during training") == "cancelled":
                _count_end(job, "cancelled")
            joblog("queued again: the server stopped during training", logging.WARNING)
        elif outcome.status == "succeeded" and outcome.promote and job.candidate and job.parent_version:
            message = f"promoted {job.candidate}" + (f": {outcome.summary}" if outcome.summary else "")
            record = VersionRecord(
                project=job.project, version=job.candidate, base=self.base(), parent=job.parent_version,
                generation=job.generation or 1, job_id=job.id, examples=job.examples or 0, metrics=metrics,
                summary=outcome.summary, files=manifest(paths.staging),
                trained_on=self._trained_on(job.project, job.parent_version, outcome.trained_on),
            )
            promoted = self.versions.promote(
                paths.staging, record,
                claim=lambda conn: self.jobs.finish(conn, job.id, "succeeded", message, version=job.candidate,
                                                    metrics=metrics),
            )
            if promoted is not None:
                _count_end(job, "promoted")
                joblog(message)
                self._rename_label_studio_backends(job.project, job.parent_version, job.candidate, joblog)
                self._announce(job.project, job.candidate, joblog)
        elif outcome.status == "succeeded":
            self._end(job, "succeeded", "succeeded, not promoted: "
                      + (outcome.summary or "the backend chose to keep the current version"), metrics=metrics)
        else:
            self._end(job, outcome.status, outcome.message, error=outcome.error, metrics=metrics)
        self._clean(job)

    def _trained_on(self, project: str, parent: str, learnt: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """What a new version learnt from: its own training set and its parent's, whose models it may keep or
        fine-tune. The base version learnt from no task; unknown (None) for the parent or the training stays
        unknown."""
        record = self.versions.get(project, parent)
        inherited = () if record is None else record.trained_on  # no row: the base version
        if inherited is None or learnt is None:
            return None
        return tuple(sorted({*inherited, *learnt}))

    def _rename_label_studio_backends(self, project: str, old: str, new: str, joblog: JobLog) -> None:
        """Keep a backend titled after the model version titled after it (see ``rename_backends_titled``)."""
        if self.client is None:
            return
        try:
            renamed = rename_backends_titled(self.client, project, old, new)
        except Exception as exc:  # the version is promoted either way; this only keeps Label Studio's view in step
            joblog(f"could not rename the Label Studio backend titled {old!r} ({exc})", logging.WARNING)
        else:
            if renamed:
                joblog(f"renamed {renamed} Label Studio backend(s) from {old!r} to {new!r}")

    def _announce(self, project: str, version: str, joblog: JobLog) -> None:
        if self.on_promoted is None:
            return
        try:
            self.on_promoted(project, version)
        except Exception as exc:  # the version is promoted either way
            log.exception("after promoting %s", version)
            joblog(f"could not start refreshing the project's predictions ({exc})", logging.WARNING)

    def _end(
        self, job: JobRecord, status: str, message: str, *, error: str | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        with self.db.write() as conn:
            ended = self.jobs.finish(conn, job.id, status, message, error=error, metrics=metrics)
        if ended:
            _count_end(job, "rejected" if status == "succeeded" else status)  # promotions end in finish()
            level = logging.ERROR if status == "failed" else logging.INFO
            JobLog(self.jobs.paths(job.project, job.id).log, job.id)(f"{status}: {message}", level)
        self._clean(job)

    def _clean(self, job: JobRecord) -> None:
        paths = self.jobs.paths(job.project, job.id)
        shutil.rmtree(paths.staging, ignore_errors=True)
        paths.spec.unlink(missing_ok=True)

    # other processes' jobs ---------------------------------------------------------------------
    def reap(self) -> None:
        """Fail running jobs whose supervising process is gone (this host only)."""
        for job in self.jobs.running():
            if job.executor == "rq" and job.dispatched_at is not None:
                continue  # a worker elsewhere runs it; Redis tells how it went
            if job.runner is not None and token_alive(job.runner) is False:
                self._end(job, "failed", DIED, error="worker died")

    def track_rq(self) -> None:
        assert self.rq is not None
        for job in self.jobs.running("rq"):
            if job.dispatched_at is None:
                continue
            if job.cancel_requested:
                self.rq.cancel(job.id)
            seen = self.rq.observe(job.id)
            if seen.state == "done" and seen.outcome is not None:
                self.finish(job.id, seen.outcome)
            elif seen.state == "running" and seen.meta:
                state = seen.meta.get("labelzoo") or {}
                fields: dict[str, Any] = {"message": state.get("message") or "training on an RQ worker",
                                          "metrics": state.get("metrics") or {}}
                if state.get("progress") is not None:
                    fields["progress"] = state["progress"]
                self.jobs.update(job.id, **fields)


def _count_end(job: JobRecord, outcome: str) -> None:
    """Count a job that ran and ended: promoted, rejected (succeeded, not promoted), failed, cancelled, skipped."""
    metrics = core_metrics()
    metrics.training_jobs_finished.labels(outcome).inc()
    if job.started_at is not None:
        metrics.training_job_seconds.labels(outcome).observe(max(0.0, time.time() - job.started_at))
