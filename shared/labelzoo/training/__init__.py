"""Training: the annotation store, per-project model versions and background training jobs.

Layout of ``MODEL_DIR``::

    labelzoo.sqlite3                 all state (SQLite, WAL; see labelzoo.store): annotations, versions, jobs
    <project>/<version>/             a promoted version's weights (complete, never written in place)
    <project>/.staging-<job id>/     a training's output until promotion
    <project>/jobs/<job id>.log      the job's log: progress, the backend's output, tracebacks
    <project>/jobs/<job id>.json     the training set prepared for the job (deleted when it ends)

Version names: ``<base>-p<project>-v<generation>-<fingerprint>`` (see :mod:`labelzoo.training.versions`).
Jobs run in a child process of a server process, or on RQ workers when ``REDIS_URL`` is set
(:mod:`labelzoo.training.rq_queue`; workers need ``MODEL_DIR`` on a shared volume).
"""

from __future__ import annotations

from labelzoo.training.events import Event, parse_event, project_key
from labelzoo.training.jobs import JobRecord
from labelzoo.training.service import TrainingService
from labelzoo.training.versions import fingerprint, version_name

__all__ = [
    "Event",
    "JobRecord",
    "TrainingService",
    "fingerprint",
    "parse_event",
    "project_key",
    "version_name",
]
