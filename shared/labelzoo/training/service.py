""":class:`TrainingService`: what the server calls for webhooks, versions, pins and jobs.

Nothing here caches state in the process: every answer is read from ``MODEL_DIR/labelzoo.sqlite3``
(one small indexed query for :meth:`TrainingService.current_version`), so all gunicorn workers serve
a new version as soon as it is promoted.

Pins: ``MODEL_VERSION_PIN`` (environment, ``Settings.version_pins``) wins over a pin set through
``/setup`` ``extra_params.model_version``. The environment is the operator's override (roll back a
bad version without touching Label Studio, which re-sends its extra_params on every /setup); an
unknown version there stops the server at start-up. A pin freezes what is served: training goes on
from the pinned version, and the versions it produces are listed but not served until unpinned.

Quarantine (:mod:`labelzoo.training.quarantine`): a version whose files cannot load is passed over, pinned
or not, for its nearest servable ancestor (or the base model); ``/setup`` warns, ``/versions`` marks it,
and training goes on from the version served.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelzoo.errors import BadRequest, LabelzooError, NotFound
from labelzoo.media import LabelStudioClient
from labelzoo.registry import BackendSpec
from labelzoo.settings import Settings
from labelzoo.store import Database, open_store
from labelzoo.training.annotations import AnnotationStore
from labelzoo.training.events import parse_event, project_key, records_from_export
from labelzoo.training.jobs import JobRecord, JobStore
from labelzoo.training.layout import STAGING_PREFIX
from labelzoo.training.quarantine import blame_files
from labelzoo.training.runner import Runner
from labelzoo.training.supervisor import KILL_AFTER_TERMINATE
from labelzoo.training.versions import Resolution, VersionStore

log = logging.getLogger("labelzoo.training")

CANCEL_GRACE_SECONDS = 30.0
_PIN_SOURCES = {"env": "MODEL_VERSION_PIN", "extra_params": "extra_params.model_version"}


class TrainingService:
    """One per server process. ``base_version`` gives the untrained model's version string."""

    def __init__(
        self,
        settings: Settings,
        backend: BackendSpec,
        base_version: Callable[[], str] | str | None = None,
        *,
        db: Database | None = None,
        client: LabelStudioClient | None = None,
        cancel_grace: float = CANCEL_GRACE_SECONDS,
    ) -> None:
        """``db`` is the shared store (opened here when None); ``client`` reaches Label Studio's API (None
        without credentials: training then uses the annotations received through webhooks)."""
        self.settings = settings
        self.backend = backend
        self.model_dir = settings.model_dir.resolve()
        if base_version is None:
            base_version = backend.cls(settings).base_version()
        self._base = base_version if callable(base_version) else (lambda: str(base_version))
        self._env_pins = _env_pins(settings)
        self._owns_db = db is None
        self.db = open_store(self.model_dir) if db is None else db
        self.annotations = AnnotationStore(self.db)
        self.versions_store = VersionStore(self.db, self.model_dir)
        self.jobs_store = JobStore(self.db, self.model_dir)
        self._calibrate: Callable[[str], str | None] = lambda project: None
        rq = None
        if settings.redis_url:
            from labelzoo.training.rq_queue import RQDispatcher

            rq = RQDispatcher(settings.redis_url)
        self.runner = Runner(
            settings=settings, backend=backend, db=self.db, annotations=self.annotations,
            versions=self.versions_store, jobs=self.jobs_store, base=self.base_version,
            current=self.current_version, rq=rq, client=client, cancel_grace=cancel_grace,
        )

    def base_version(self) -> str:
        return self._base()

    def on_promotion(self, listener: Callable[[str, str], object]) -> None:
        """Tell ``listener(project, version)`` of every version this process promotes, once it serves."""
        self.runner.on_promoted = listener

    def on_start_without_fit(self, calibrate: Callable[[str], str | None]) -> None:
        """What "Start Training" does for a backend that does not learn: ``calibrate(project)`` starts a job that
        measures the current version on the project's annotations, and names it (None: none could start)."""
        self._calibrate = calibrate

    # lifecycle ---------------------------------------------------------------------------------
    def recover(self) -> None:
        """At server start: check env pins, fail jobs whose process died, delete leftovers, start runner."""
        self._check_env_pins()
        self.runner.reap()
        for folder in sorted(self.model_dir.iterdir()):
            if not (folder.is_dir() and folder.name.isdigit()):
                continue
            # under the write lock no job can be claimed meanwhile (another worker starting up), so a
            # staging folder of a job that is not running cannot be one that is about to be used
            with self.db.write():
                running = {job.id for job in self.jobs_store.running()}
                for staging in folder.glob(f"{STAGING_PREFIX}*"):
                    if staging.name[len(STAGING_PREFIX):] not in running:
                        log.warning("deleting %s: left by a training that did not finish", staging)
                        shutil.rmtree(staging, ignore_errors=True)
                for spec in (folder / "jobs").glob("*.json"):
                    if spec.stem not in running:
                        spec.unlink(missing_ok=True)
            for orphan in self.versions_store.remove_orphans(folder.name):
                log.warning("deleted %s: a version folder without a database row (crash?)", orphan)
        self.runner.wake()

    def close(self) -> None:
        self.runner.stop(timeout=KILL_AFTER_TERMINATE + 5)
        if self._owns_db:
            self.db.close()

    # webhooks ----------------------------------------------------------------------------------
    def handle_event(self, payload: Any) -> dict[str, Any]:
        """Record a webhook event and answer at once; training, if due, is queued for the runner."""
        event = parse_event(payload)
        answer: dict[str, Any] = {
            "status": "ok", "action": event.action, "project": event.project, "job": None
        }
        if event.kind == "ignored" or event.project is None:
            return {**answer, "ignored": True}
        project = event.project
        if event.kind == "start_training":
            with self.db.write() as conn:
                self.annotations.touch_project(conn, project, event.label_config)
            job = self.start_training(project, reason="start_training")
            return {**answer, "job": job["id"], "job_status": job["status"]}
        with self.db.write() as conn:
            self.annotations.touch_project(conn, project, event.label_config)
            if event.kind == "upsert":
                answer["changed"] = self.annotations.upsert(conn, project, event.annotations)
            else:
                answer["deleted"] = self.annotations.delete(conn, project, event.deleted)
            pending = self.annotations.pending(conn, project)
            job = self._queue_if_due(conn, project, pending)
        if job is not None:
            self.runner.wake()
        return {**answer, "job": job.id if job else None, "pending": pending,
                "train_after": self.settings.train_after_annotations}

    def record_tasks(self, project: Any, tasks: Any, label_config: str | None = None) -> int:
        """Store export-format tasks with their annotations (legacy ``POST /train``); returns new/changed."""
        project = project_key(project)
        records = records_from_export(tasks, where="annotations")
        with self.db.write() as conn:
            self.annotations.touch_project(conn, project, label_config)
            return self.annotations.upsert(conn, project, records)

    def train_from_export(self, body: dict[str, Any]) -> dict[str, Any]:
        """Legacy ``POST /train``: export-format tasks with their annotations, then a training job."""
        label_config = body.get("label_config")
        if label_config is not None and not isinstance(label_config, str):
            raise BadRequest("'label_config' must be the label config XML")
        stored = self.record_tasks(body.get("project"), body.get("annotations"), label_config)
        return {"status": "ok", "stored": stored, "job": self.start_training(body.get("project"))}

    def _queue_if_due(self, conn: Any, project: str, pending: int) -> JobRecord | None:
        threshold = self.settings.train_after_annotations
        if threshold <= 0 or pending < threshold or not self.backend.cls.can_fit():
            return None
        if self.jobs_store.queued(conn, project) is not None:
            return None  # the queued job will see these annotations too
        return self.jobs_store.create(conn, project, "annotations", self.runner.executor)

    # training ----------------------------------------------------------------------------------
    def start_training(self, project: str, reason: str = "start_training") -> dict[str, Any]:
        """Queue a job (or return the one already queued for the project)."""
        project = project_key(project)
        if not self.backend.cls.can_fit():
            calibration = self._calibrate(project) if reason == "start_training" else None
            also = (f"; calibrating its task scores on the project's annotations instead (bulk job {calibration})"
                    if calibration else "")
            with self.db.write() as conn:
                job = self.jobs_store.create(
                    conn, project, reason, self.runner.executor, status="skipped",
                    message=f"the {self.backend.name!r} backend does not learn from annotations (no fit()){also}",
                )
            return job.to_json()
        with self.db.write() as conn:
            queued = self.jobs_store.queued(conn, project)
            job = queued or self.jobs_store.create(conn, project, reason, self.runner.executor)
        self.runner.wake()
        return job.to_json()

    def jobs(self, project: str | None = None) -> list[dict[str, Any]]:
        key = None if project is None else project_key(project)
        return [j.to_json() for j in self.jobs_store.list(key)]

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs_store.get(job_id)
        if job is None:
            raise NotFound(f"no training job {job_id!r}")
        return job.to_json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.jobs_store.cancel(job_id)
        if job is None:
            raise NotFound(f"no training job {job_id!r}")
        return job.to_json()

    # versions ----------------------------------------------------------------------------------
    def current_version(self, project: str) -> str:
        """Pinned (environment, then extra_params), else newest promoted, else the base version; a
        quarantined one gives way to its nearest servable ancestor."""
        return self.resolve(project).version

    def resolve(self, project: str) -> Resolution:
        key = project_key(project)
        return self.versions_store.resolve(key, self._base(), self._env_pins.get(key))

    def version_warnings(self, project: str) -> list[str]:
        """For ``/setup``: the versions passed over because they cannot be served, and why."""
        key = project_key(project)
        resolution = self.resolve(key)
        if not resolution.skipped:
            return []
        served = "the base model" if resolution.version == self._base() else f"its ancestor {resolution.version}"
        source = self._pinned_by(key, resolution.wanted, self.versions_store.pins())
        pinned = f" (pinned by {_PIN_SOURCES[source]})" if source else ""
        (first, why), *others = resolution.skipped
        warnings = [f"model version {first}{pinned} is quarantined: {why.reason}; serving {served} instead"]
        warnings += [f"its ancestor {version} is quarantined too: {why.reason}" for version, why in others]
        return warnings

    def load_failed(self, project: str, version: str, error: Exception) -> None:
        """A trained version failed to load: quarantine it if its files are to blame, else leave it to a retry."""
        key = project_key(project)
        record = self.versions_store.get(key, version)
        if record is None:
            return
        folder = self.versions_store.path(key, version)
        finding = blame_files(error, folder, record.files)
        if finding is None:
            log.warning("model version %s failed to load (%s: %s), but not because of its files: not quarantined, "
                        "the next request loads it again", version, type(error).__name__, error)
            return
        cause = f"{type(error).__name__}: {error}"
        reason = f"{finding} ({cause[:300]})"  # shown in /setup's warnings: torch's messages run long
        self.versions_store.quarantine.add(key, version, reason, folder)
        log.error("quarantined model version %s of project %s: %s; project %s is served by %s", version, key,
                  reason, key, self.current_version(key))

    def version_dir(self, project: str, version: str) -> Path | None:
        """The version's weights folder; None for the base version."""
        key = project_key(project)
        if version == self._base():
            return None
        if self.versions_store.get(key, version) is None:
            raise NotFound(f"project {key} has no model version {version!r}")
        path = self.versions_store.path(key, version)
        if not path.is_dir():
            raise NotFound(f"the folder of model version {version} is missing: {path}")
        return path

    def trained_on(self, project: str, version: str) -> frozenset[int] | None:
        """The Label Studio task ids ``version`` learnt from: none for the base version; None when not known
        (a version promoted before they were recorded, one descended from it, or no such version)."""
        key = project_key(project)
        if version == self._base():
            return frozenset()
        record = self.versions_store.get(key, version)
        return None if record is None or record.trained_on is None else frozenset(record.trained_on)

    def pin(self, project: str, version: str | None) -> None:
        """Serve ``version`` for the project (from /setup extra_params.model_version); None unpins."""
        key = project_key(project)
        if version:
            self._check_known(key, version, "extra_params.model_version")
        self.versions_store.set_pin(key, version or None)

    def versions(self, project: str | None = None) -> list[dict[str, Any]]:
        """Trained versions, newest first, then the base version; each marked current, pinned, quarantined."""
        key = None if project is None else project_key(project)
        base = self._base()
        db_pins = self.versions_store.pins()
        current: dict[str, str] = {}
        out = []
        for record in self.versions_store.list(key):
            if record.project not in current:
                current[record.project] = self.current_version(record.project)
            why = self.versions_store.unservable(record.project, record.version)
            out.append({
                **record.to_json(),
                "trained": True,
                "usable": record.base == base and why is None,
                "quarantined": None if why is None else why.to_json(),
                "current": current[record.project] == record.version,
                "pinned": self._pinned_by(record.project, record.version, db_pins),
            })
        out.append({
            "version": base, "project": key, "base": base, "trained": False, "usable": True, "quarantined": None,
            "current": key is not None and self.current_version(key) == base,
            "pinned": self._pinned_by(key, base, db_pins) if key else None,
        })
        return out

    def _pinned_by(self, project: str, version: str, db_pins: dict[str, str]) -> str | None:
        if self._env_pins.get(project) == version:
            return "env"
        if db_pins.get(project) == version and project not in self._env_pins:
            return "extra_params"
        return None

    def _known(self, project: str) -> list[str]:
        return [self._base(), *(r.version for r in self.versions_store.list(project, base=self._base()))]

    def _check_known(self, project: str, version: str, source: str) -> None:
        known = self._known(project)
        if version not in known:
            raise BadRequest(
                f"{source}: project {project} has no model version {version!r}; "
                f"known versions: {', '.join(known)}"
            )

    def _check_env_pins(self) -> None:
        for project, version in self._env_pins.items():
            try:
                self._check_known(project, version, "MODEL_VERSION_PIN")
            except BadRequest as exc:
                raise LabelzooError(exc.message, code="bad_version_pin") from None


def _env_pins(settings: Settings) -> dict[str, str]:
    try:
        return {project_key(k): v for k, v in settings.version_pins.items()}
    except BadRequest as exc:
        raise ValueError(f"MODEL_VERSION_PIN: {exc.message}") from None
