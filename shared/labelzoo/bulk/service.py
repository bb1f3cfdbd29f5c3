""":class:`BulkService`: start, run, resume and report bulk jobs for one backend.

A *project* job predicts every task of a Label Studio project that lacks a prediction of the model
version current when the job starts, and posts the predictions through Label Studio's API; a *refresh* job
does the same for the unlabelled tasks after a promotion (:meth:`BulkService.refresh_after_promotion`); an
*autolabel* job annotates the unannotated tasks the model is sure of and predicts the others
(:mod:`labelzoo.bulk.autolabel`; in the server or ``labelzoo predict``, never on RQ workers). It runs in a
thread of the server process (``POST /bulk``), in the foreground of ``labelzoo predict``, or chunk by
chunk on RQ workers when ``REDIS_URL`` is set. A *tasks* job is a ``/predict`` batch handed off at its
deadline (:mod:`labelzoo.prediction.deadline`): the server thread that computes it posts what comes after.
The service predicts through the prediction layer's :class:`~labelzoo.prediction.PredictionService` and asks
the training service (a :class:`~labelzoo.prediction.VersionSource`) which version is current.

Label Studio is the journal: a job reads the tasks right before predicting them and skips those that
already hold a prediction of the version, so a job resumed after a crash, or started twice, never
doubles a prediction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol

from labelzoo.backend import Task
from labelzoo.bulk import autolabel
from labelzoo.bulk.autolabel import AutoLabelOptions
from labelzoo.bulk.chunks import ChunkReport, PredictFn, post_items, run_chunk
from labelzoo.bulk.lsapi import BulkApi
from labelzoo.bulk.store import BulkJob, BulkStore, Chunk, ChunkCounts, job_json
from labelzoo.calibration import held_out_pairs
from labelzoo.errors import BadRequest, LabelzooError, NotFound
from labelzoo.labelconfig import parse_label_config_cached
from labelzoo.media import LabelStudioClient
from labelzoo.prediction import PredictionService, VersionSource, run_backend, to_json
from labelzoo.protocol import project_key
from labelzoo.registry import BackendSpec
from labelzoo.scoremap import IDENTITY, ScoreMap
from labelzoo.settings import Settings
from labelzoo.store import Database
from labelzoo.store.autolabels import AutoLabels
from labelzoo.store.procs import process_token

if TYPE_CHECKING:
    from labelzoo.bulk.rq import BulkDispatcher

log = logging.getLogger("labelzoo.bulk")

JOB_LOAD_WAIT = 600.0  # a job may wait this long for its model version to load
MIN_CALIBRATION_TASKS = 10  # held-out tasks a calibration job needs before it fits a map
POLL_SECONDS = 0.5  # how often an RQ job's chunks are checked
STOP_WAIT = 10.0  # how long close() waits for job threads to reach a chunk boundary
NO_CREDENTIALS = (
    "bulk jobs post predictions through Label Studio's API: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY "
    "(a Personal Access Token) on the backend"
)

Outcome = Literal["done", "stopped", "cancelled"]


class JobObserver(Protocol):
    """What ``labelzoo predict`` shows while its job runs."""

    def listing(self, seen: int, total: int) -> None: ...

    def planned(self, total: int, project_tasks: int | None) -> None: ...

    def chunk_done(self, report: ChunkReport) -> None: ...


class BulkService:
    def __init__(
        self, spec: BackendSpec, settings: Settings, *, db: Database, client: LabelStudioClient | None,
        predictions: PredictionService, versions: VersionSource,
    ) -> None:
        """``client`` reaches Label Studio's API (None without credentials: jobs are refused, saying why)."""
        self.spec = spec
        self.settings = settings
        self.predictions = predictions
        self.versions = versions
        self.store = BulkStore(db)
        self.autolabels = AutoLabels(db)
        self.api = None if client is None else BulkApi(
            client, rate_limit=self.settings.bulk_rate_limit, retries=self.settings.bulk_retries)
        self._dispatcher: BulkDispatcher | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # API of the server and the CLI -----------------------------------------------------------
    def start(self, project: Any, auto_label: AutoLabelOptions | None = None, *, calibrate: bool = False
              ) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """``POST /bulk``: a project, auto-label or calibration job in the background; the running one of that
        kind if there is one (False)."""
        key = project_key(project)
        self._require_api()
        kind = _kind(auto_label, calibrate)
        for job in self.store.list(key):
            if job.kind == kind and job.status in ("queued", "running"):
                return self.job(job.id), False
        executor = "rq" if self.settings.redis_url and kind == "project" else "thread"
        job = self.store.create(key, kind, executor, self.versions.current_version(key), runner=process_token(),
                                options=None if auto_label is None else auto_label.to_json())
        self._spawn(job.id)
        return self.job(job.id), True

    def calibrate_on_request(self, project: str) -> str | None:
        """"Start Training" on a backend that does not learn: a calibration job (the running one, if any); its id,
        or None when Label Studio's API cannot be reached (no credentials) or calibration is off."""
        if self.api is None or not self.settings.calibrate_task_scores:
            return None
        job, _ = self.start(project, calibrate=True)
        return str(job["id"])

    def refresh_after_promotion(self, project: str, version: str) -> dict[str, Any] | None:
        """A *refresh* job: the project's unlabelled tasks predicted with the version just promoted and posted, so
        that uncertainty sampling and the score column follow the new model (``REFRESH_AFTER_PROMOTION``). A
        running refresh of the project stops at its next chunk: the newer version replaces it. None when
        refreshing is off, Label Studio cannot be reached, or the project is pinned to another version."""
        key = project_key(project)
        if self.settings.refresh_limit == 0 or self.api is None:
            return None
        if self.versions.current_version(key) != version:
            log.info("project %s: %s was promoted but another version is pinned; nothing to refresh", key, version)
            return None
        for job in self.store.list(key):
            if job.kind == "refresh" and job.status in ("queued", "running"):
                self.store.cancel(job.id)
        executor = "rq" if self.settings.redis_url else "thread"
        job = self.store.create(key, "refresh", executor, version, runner=process_token())
        log.info("project %s: refreshing the unlabelled tasks' predictions with %s (bulk job %s)", key, version, job.id)
        self._spawn(job.id)
        return self.job(job.id)

    def run_here(self, project: Any, observer: JobObserver | None = None, stop: threading.Event | None = None,
                 auto_label: AutoLabelOptions | None = None, *, calibrate: bool = False) -> dict[str, Any]:
        """``labelzoo predict --project``: a project, auto-label or calibration job in this process, until it
        ends or ``stop`` is set."""
        key = project_key(project)
        self._require_api()
        self.reap()
        job = self.store.create(key, _kind(auto_label, calibrate), "cli",
                                self.versions.current_version(key), runner=process_token(),
                                options=None if auto_label is None else auto_label.to_json())
        if stop is not None:
            self._stop = stop
        self._run(job.id, observer)
        return self.job(job.id)

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"no bulk job {job_id!r}")
        return job_json(job, self.store.counts(job_id), self.store.chunk_errors(job_id))

    def jobs(self, project: Any = None) -> list[dict[str, Any]]:
        key = None if project is None else project_key(project)
        return [job_json(j, self.store.counts(j.id), self.store.chunk_errors(j.id)) for j in self.store.list(key)]

    def cancel(self, job_id: str) -> dict[str, Any]:
        if self.store.cancel(job_id) is None:
            raise NotFound(f"no bulk job {job_id!r}")
        return self.job(job_id)

    def undo(self, job_id: str, *, background: bool = False) -> dict[str, Any]:
        """Delete the annotations an auto-label job posted, but for those a person changed since."""
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"no bulk job {job_id!r}")
        if job.kind != "autolabel":
            raise BadRequest(f"bulk job {job_id} is a {job.kind} job: only auto-label jobs post annotations to undo")
        if job.status in ("queued", "running"):
            raise BadRequest(f"bulk job {job_id} is {job.status}: cancel it (POST /bulk/{job_id}/cancel) before "
                             "undoing it")
        api = self._require_api()

        def run() -> None:
            self.store.update_report(job_id, undo={"status": "running"})
            try:
                counts = autolabel.undo(api, self.autolabels, job_id)
            except LabelzooError as exc:
                self.store.update_report(job_id, undo={"status": "failed", "error": exc.message})
                return
            self.store.update_report(job_id, undo={"status": "done", **counts})
            log.info("bulk job %s undone: %s", job_id, counts)

        if background:
            thread = threading.Thread(target=run, name=f"labelzoo-undo-{job_id}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        else:
            run()
        return self.job(job_id)

    # lifecycle ---------------------------------------------------------------------------------
    def reap(self) -> None:
        """End the jobs of ``labelzoo predict`` processes that died, releasing their tasks."""
        for job in self.store.orphans():
            if job.executor == "cli" and job.status == "running":
                self.store.finish(job.id, "interrupted",
                                  "the labelzoo predict process stopped; run it again to go on where it stopped")

    def recover(self) -> None:
        """At server start: resume queued jobs and those whose server process died."""
        self.reap()
        for job in self.store.orphans():
            if job.executor == "cli":
                continue
            previous = job.runner if job.status == "running" else None
            if self.store.take(job.id, process_token(), previous=previous):
                log.info("resuming bulk job %s (project %s)", job.id, job.project)
                self._spawn(job.id)

    def close(self) -> None:
        """Stop job threads at their next chunk boundary; their jobs are resumed by the next server."""
        self._stop.set()
        for thread in self._threads:
            thread.join(STOP_WAIT)

    # the /predict hand-off -------------------------------------------------------------------------
    def hand_off(self, project: str, version: str, label_config: str,
                 chunks: Sequence[Sequence[int]]) -> Handoff | None:
        """A running *tasks* job for predictions computed after a /predict deadline; None without Label Studio."""
        if self.api is None:
            return None
        job = self.store.create(project, "tasks", "thread", version, label_config=label_config,
                                runner=process_token())
        planned = self.store.plan(job.id, project, chunks)
        job = self.store.get(job.id) or job
        return Handoff(self, self.api, job, {c.seq: c for c in planned})

    def reserve(self, project: str, version: str, task_ids: Sequence[int]) -> dict[int, str]:
        return self.store.reserve(project, version, task_ids)

    def release(self, project: str, version: str, task_ids: Sequence[int]) -> None:
        self.store.release(project, version, task_ids)

    # running a job -----------------------------------------------------------------------------
    def _require_api(self) -> BulkApi:
        if self.api is None:
            raise BadRequest(NO_CREDENTIALS)
        return self.api

    def _spawn(self, job_id: str) -> None:
        thread = threading.Thread(target=self._run, args=(job_id,), name=f"labelzoo-bulk-{job_id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, job_id: str, observer: JobObserver | None = None) -> None:
        job = self.store.get(job_id)
        assert job is not None
        try:
            if not job.planned:
                self._plan(job, None if observer is None else observer.listing)
            job = self.store.get(job_id)
            assert job is not None
            if observer is not None:
                observer.planned(job.total, job.project_tasks)
            outcome = self._run_rq(job) if job.executor == "rq" else self._run_local(job, observer)
        except Exception as exc:
            message = exc.message if isinstance(exc, LabelzooError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, LabelzooError):
                log.exception("bulk job %s failed", job_id)
            self.store.finish(job_id, "failed", f"failed: {message}; starting the job again goes on where it "
                              "stopped", error=message)
            return
        if outcome == "cancelled":
            self.store.finish(job_id, "cancelled", "cancelled")
        elif outcome == "stopped" and job.executor == "cli":
            self.store.finish(job_id, "interrupted", "interrupted; run the command again to go on where it stopped")
        elif outcome == "stopped":
            self.store.requeue(job_id, "the server stopped; the next one to start resumes this job")
        else:
            self.finish(job_id)

    def finish(self, job_id: str) -> None:
        counts = self.store.counts(job_id)
        job = self.store.get(job_id)
        if job is not None and job.kind == "autolabel":
            message = self._autolabel_message(job, counts)
        elif job is not None and job.kind == "calibrate":
            message = str((job.report or {}).get("summary"))
        else:
            message = (f"{counts['posted']} predictions posted to Label Studio, {counts['skipped']} tasks skipped "
                       f"(already predicted with this version, or deleted), {counts['failed']} failed")
        errors = self.store.chunk_errors(job_id)
        unfinished = counts["chunks_failed"] + counts["chunks"] - counts["chunks_done"]
        if unfinished:
            self.store.finish(job_id, "failed", f"{message}; {unfinished} chunks failed or did not run: starting "
                              "the job again predicts what is missing", error=errors[0] if errors else None)
        else:
            self.store.finish(job_id, "succeeded", message)

    def _autolabel_message(self, job: BulkJob, counts: dict[str, Any]) -> str:
        report = job.report or {}
        if (job.options or {}).get("dry_run"):
            return (f"dry run, nothing written: {report.get('summary')}; {report.get('tasks_to_label', 0)} "
                    "unannotated tasks would be auto-labelled or predicted")
        annotated = self.autolabels.counts(job.id).get("posted", 0)
        return (f"{annotated} tasks auto-labelled (task score >= {report.get('threshold'):.3f}), "
                f"{counts['posted'] - annotated} predictions posted for review, {counts['skipped']} tasks skipped "
                f"(annotated or predicted meanwhile, or deleted), {counts['failed']} failed")

    def _plan(self, job: BulkJob, on_page: Callable[[int, int], None] | None = None) -> None:
        """Read the label config and the project's tasks; claim those lacking the version, in chunks."""
        api = self._require_api()
        label_config = job.label_config or api.label_config(job.project)
        config = parse_label_config_cached(label_config, max_bytes=self.settings.label_config_max_bytes)
        assignments = self.predictions.assignments(config)  # fails early on a config it cannot fill
        self.store.set_label_config(job.id, label_config)
        controls = {a.control.name for a in assignments}
        if job.kind == "autolabel":
            self._plan_autolabel(replace(job, label_config=label_config), controls, on_page)
            return
        if job.kind == "calibrate":
            self._calibrate(replace(job, label_config=label_config), controls)
            return
        self.store.set_message(job.id, "listing the project's tasks")
        if job.kind == "refresh":
            missing, project_tasks = api.unlabelled(job.project, job.model_version, self.settings.refresh_limit,
                                                    on_page)
        else:
            missing, project_tasks = api.missing(job.project, job.model_version, on_page)
        size = self.settings.bulk_chunk_size
        self.store.plan(job.id, job.project, [missing[i:i + size] for i in range(0, len(missing), size)],
                        project_tasks=project_tasks)
        self.store.set_message(job.id, "predicting")

    def _plan_autolabel(self, job: BulkJob, controls: set[str], on_page: Callable[[int, int], None] | None) -> None:
        """Measure the version on the held-out human annotations of the ``controls`` it fills, settle the threshold,
        claim the unannotated tasks (none in a dry run)."""
        api = self._require_api()
        options = AutoLabelOptions.from_json(job.options)
        trained_on = self.versions.trained_on(job.project, job.model_version)
        if trained_on is None and options.target_precision is not None:
            raise BadRequest(f"{job.model_version} does not record which tasks it learnt from (it was promoted by "
                             "an earlier labelzoo), so its precision cannot be measured: give a threshold instead, "
                             "or train a new version")
        pairs: list[tuple[float, bool]] = []
        if trained_on is not None:
            self.store.set_message(job.id, "measuring the model on the held-out human annotations")
            held_out = autolabel.held_out_tasks(api.annotation_pages(job.project), trained_on, self.autolabels,
                                                job.project)
            backend, _ = self.predictions.context(job.project, job.label_config or "", version=job.model_version,
                                                  wait=JOB_LOAD_WAIT)
            pairs = held_out_pairs(held_out, self._predict_fn(job), backend.agrees, controls)
        estimate = autolabel.estimate(pairs, options)
        self.store.update_report(job.id, **estimate.to_json())
        log.info("auto-label job %s (project %s, %s): %s", job.id, job.project, job.model_version, estimate.describe())
        if estimate.threshold is None:
            raise BadRequest(estimate.describe())
        self.store.set_message(job.id, "listing the project's tasks")
        missing, project_tasks = api.unannotated(job.project, on_page)
        self.store.update_report(job.id, tasks_to_label=len(missing))
        size = self.settings.bulk_chunk_size
        chunks = [] if options.dry_run else [missing[i:i + size] for i in range(0, len(missing), size)]
        self.store.plan(job.id, job.project, chunks, project_tasks=project_tasks)
        self.store.set_message(job.id, "auto-labelling")

    def _calibrate(self, job: BulkJob, controls: set[str]) -> None:
        """Fit the project's task-score map of the version on the human annotations it did not learn from
        (:mod:`labelzoo.scoremap`) and store it; no chunks: nothing is posted to Label Studio."""
        trained_on = self.versions.trained_on(job.project, job.model_version)
        if trained_on is None:
            raise BadRequest(f"{job.model_version} does not record which tasks it learnt from (it was promoted by an "
                             "earlier labelzoo), so it cannot be measured on the others: train a new version")
        self.store.set_message(job.id, "predicting the human-annotated tasks the version did not learn from")
        held_out = autolabel.held_out_tasks(self._require_api().annotation_pages(job.project), trained_on,
                                            self.autolabels, job.project)
        backend, _ = self.predictions.context(job.project, job.label_config or "", version=job.model_version,
                                              wait=JOB_LOAD_WAIT)
        pairs = held_out_pairs(held_out, self._predict_fn(job, raw=True), backend.agrees, controls,
                                         shown_only=False)
        if held_out and not pairs:
            raise BadRequest(f"{job.model_version} scored none of the {len(held_out)} human-annotated tasks it did "
                             "not learn from (a backend that only answers prompts has nothing to calibrate)")
        if len(pairs) < MIN_CALIBRATION_TASKS:
            raise BadRequest(f"{len(pairs)} human-annotated tasks that {job.model_version} did not learn from were "
                             f"predicted with a score; calibrating needs {MIN_CALIBRATION_TASKS}: annotate more")
        scores = ScoreMap.fit(pairs)
        self.predictions.score_maps.put(job.project, job.model_version, scores)
        log.info("bulk job %s (project %s, %s): %s", job.id, job.project, job.model_version, scores.describe())
        self.store.update_report(job.id, score_map=scores.to_json(), summary=scores.describe())
        self.store.plan(job.id, job.project, [], project_tasks=0)

    def _predict_fn(self, job: BulkJob, *, raw: bool = False) -> PredictFn:
        """The job's predictions as Label Studio gets them; ``raw``: with the model's own task scores."""
        assert job.label_config is not None
        backend, ctx = self.predictions.context(job.project, job.label_config, version=job.model_version,
                                            wait=JOB_LOAD_WAIT)
        if raw:
            ctx = replace(ctx, task_scores=IDENTITY)
        gate = self.predictions.gate  # the process's compute slots, shared with /predict (prompts first)
        return lambda tasks: [to_json(p, ctx.model_version) for p in run_backend(backend, tasks, ctx, gate=gate)]

    def interruption(self, job_id: str) -> Outcome | None:
        """Why a job should stop at this chunk boundary, if it should."""
        if self._stop.is_set():
            return "stopped"
        if self.store.cancel_requested(job_id):
            return "cancelled"
        return None

    def _run_local(self, job: BulkJob, observer: JobObserver | None) -> Outcome:
        """Run the pending chunks here, ``BULK_PARALLEL`` at a time: one predicts while others wait on HTTP."""
        api = self._require_api()
        predict = self._predict_fn(job)
        pending = iter(self.store.pending_chunks(job.id))
        # what /predict answers of the version is left out; a tasks job posts what its own /predict left to it
        leave = None if job.kind == "tasks" else partial(self.store.reserved, job.project, job.model_version)
        running: dict[Future[ChunkReport], Chunk] = {}
        outcome: Outcome = "done"
        with ThreadPoolExecutor(max_workers=self.settings.bulk_parallel, thread_name_prefix="labelzoo-chunk") as pool:
            while True:
                while outcome == "done" and len(running) < self.settings.bulk_parallel:
                    if (why := self.interruption(job.id)) is not None:
                        outcome = why
                        break
                    chunk = next(pending, None)
                    if chunk is None:
                        break
                    if job.kind == "autolabel":
                        future = pool.submit(autolabel.run_autolabel_chunk, api, self.autolabels, predict, job.id,
                                             job.project, job.model_version, chunk.task_ids,
                                             float((job.report or {})["threshold"]))
                    else:
                        future = pool.submit(run_chunk, api, predict, job.project, job.model_version,
                                             chunk.task_ids, leave=leave)
                    running[future] = chunk
                if not running:
                    return outcome
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    chunk = running.pop(future)
                    report = future.result()  # a Label Studio failure ends the job (the chunks under way finish)
                    self.store.finish_chunk(job.id, chunk.seq, report.counts, error=report.error,
                                            worker=process_token())
                    if observer is not None:
                        observer.chunk_done(report)

    def _run_rq(self, job: BulkJob) -> Outcome:
        from labelzoo.bulk.rq import BulkDispatcher

        assert self.settings.redis_url
        if self._dispatcher is None:
            self._dispatcher = BulkDispatcher(self.settings.redis_url)
        pending = {chunk.seq: chunk for chunk in self.store.pending_chunks(job.id)}
        self._dispatcher.submit(job, list(pending.values()), self._rq_spec(job))
        self.store.set_message(job.id, f"{len(pending)} chunks queued for RQ workers ({self._dispatcher.queue.name})")
        while pending:
            if (why := self.interruption(job.id)) is not None:
                if why == "cancelled":
                    self._dispatcher.cancel(job.id, list(pending))
                return why  # when stopped, the chunks stay in Redis and the next server re-attaches to them
            for seq, state in self._dispatcher.observe(job.id, list(pending)).items():
                if state.state == "done":
                    assert state.report is not None
                    self.store.finish_chunk(job.id, seq, state.report.counts, error=state.report.error,
                                            worker=state.worker)
                elif state.state == "failed":
                    self.store.finish_chunk(job.id, seq, ChunkCounts(failed=len(pending[seq].task_ids)),
                                            error=state.error, failed=True)
                if state.state != "waiting":
                    del pending[seq]
            if pending:
                self._stop.wait(POLL_SECONDS)
        return "done"

    def _rq_spec(self, job: BulkJob) -> dict[str, Any]:
        """What a worker needs besides the chunk's task ids (see :func:`labelzoo.bulk.rq.rq_predict_chunk`)."""
        weights = self.versions.version_dir(job.project, job.model_version)
        model_dir = self.settings.model_dir.resolve()
        fitted = self.predictions.score_maps.get(job.project, job.model_version)
        return {
            "project": job.project,
            "model_version": job.model_version,
            "label_config": job.label_config,
            "params": self.predictions.params.get(job.project),
            "backend_name": self.spec.name,
            "backend_path": str(self.spec.path),
            "weights": None if weights is None else str(weights.resolve().relative_to(model_dir)),
            "task_scores": None if fitted is None else fitted.to_json(),  # else the version's own, if any
        }


def _kind(auto_label: AutoLabelOptions | None, calibrate: bool) -> str:
    """The kind of job a request for the project asks for."""
    return "calibrate" if calibrate else "project" if auto_label is None else "autolabel"


@dataclass
class Handoff:
    """Posts the predictions of a /predict batch that finished after its deadline, chunk by chunk."""

    service: BulkService
    api: BulkApi
    job: BulkJob
    chunks: dict[int, Chunk]

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def total(self) -> int:
        return self.job.total

    def wanted(self) -> bool:
        """False once the job is cancelled or the server stops: computing more would be wasted."""
        return self.service.interruption(self.job.id) is None

    def post(self, seq: int, tasks: Sequence[Task], items: Sequence[dict[str, Any]]) -> None:
        chunk = self.chunks.get(seq)
        if chunk is None:
            return  # another job holds these tasks
        mine = set(chunk.task_ids)
        pairs = [(t.id, item) for t, item in zip(tasks, items, strict=True) if t.id in mine]
        ids = [int(task_id) for task_id, _ in pairs if task_id is not None]
        try:
            report = post_items(self.api, self.job.project, ids, [item for _, item in pairs])
        except LabelzooError as exc:
            self.service.store.finish_chunk(self.job.id, seq, ChunkCounts(failed=len(ids)), error=exc.message,
                                            failed=True)
            return
        self.service.store.finish_chunk(self.job.id, seq, report.counts, error=report.error, worker=process_token())

    def close(self) -> None:
        """End the job; when the server is stopping it is requeued, and the next server finishes it."""
        why = self.service.interruption(self.job.id)
        if why == "stopped":
            self.service.store.requeue(self.job.id, "the server stopped; the next one to start resumes this job")
        elif why == "cancelled":
            self.service.store.finish(self.job.id, "cancelled", "cancelled")
        else:
            self.service.finish(self.job.id)
