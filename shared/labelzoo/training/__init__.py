"""Training: the annotation store, per-project model versions and background training jobs.

Layout of ``MODEL_DIR``::

    labelzoo.sqlite3                 annotations, versions, jobs (SQLite, WAL)
    <project>/<version>/             a promoted version's weights (complete, never written in place)
    <project>/.staging-<job id>/     a training's output until promotion
    <project>/jobs/<job id>.log      the job's log: progress, the backend's output, tracebacks
    <project>/jobs/<job id>.json     the training set prepared for the job (deleted when it ends)

Version names: ``<base>-p<project>-v<generation>-<fingerprint>`` (see :mod:`labelzoo.training.versions`).
Jobs run in a child process of a server process, or on RQ workers when ``REDIS_URL`` is set
(:mod:`labelzoo.training.rq_queue`; workers need ``MODEL_DIR`` on a shared volume).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labelzoo.training.events import AnnotationRecord, Event, parse_event, project_key
from labelzoo.training.jobs import JobRecord
from labelzoo.training.labelstudio import client_from_settings
from labelzoo.training.service import TrainingService
from labelzoo.training.versions import fingerprint, version_name

if TYPE_CHECKING:
    from labelzoo.settings import Settings


def run_rq_worker(settings: Settings, burst: bool = False, queues: Sequence[str] | None = None) -> bool:
    """Run an RQ worker (``labelzoo worker``) on ``queues`` (default: training's); Redis and RQ are imported
    only when called."""
    from labelzoo.training.rq_queue import QUEUE_NAME
    from labelzoo.training.rq_queue import run_rq_worker as run

    return run(settings, burst=burst, queues=queues or (QUEUE_NAME,))


__all__ = [
    "AnnotationRecord",
    "Event",
    "JobRecord",
    "TrainingService",
    "client_from_settings",
    "fingerprint",
    "parse_event",
    "project_key",
    "run_rq_worker",
    "version_name",
]
