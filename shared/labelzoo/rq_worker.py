"""``labelzoo worker``: an RQ worker process for training jobs and bulk chunks (``REDIS_URL``).

The worker's settings are read once when it starts; the jobs it runs (:func:`labelzoo.training.rq_queue.rq_train`,
:func:`labelzoo.bulk.rq.rq_predict_chunk`) take them from :func:`worker_settings`. Redis and RQ are imported only
here and in those job modules, so a server without ``REDIS_URL`` never needs them. Jobs, their arguments, meta
and results travel as JSON (RQ's ``JSONSerializer``), never pickles: whoever can write to Redis must not be
able to run code in a server or a worker.
"""

from __future__ import annotations

from collections.abc import Sequence

from labelzoo.settings import Settings

_worker_settings: Settings | None = None  # set by run_rq_worker; the work-horse inherits it


def worker_settings() -> Settings:
    """The settings of the ``labelzoo worker`` running the current RQ job (or the environment's)."""
    return _worker_settings or Settings.from_env()


def run_rq_worker(settings: Settings, queues: Sequence[str], burst: bool = False) -> bool:
    """Run an RQ worker on ``queues``; True if it did work (``burst``: stop when the queues are empty)."""
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    global _worker_settings
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: there is no queue to take jobs from")
    _worker_settings = settings
    redis = Redis.from_url(settings.redis_url)
    worker = Worker([Queue(name, connection=redis, serializer=JSONSerializer) for name in queues], connection=redis,
                    serializer=JSONSerializer)
    return worker.work(burst=burst, logging_level=settings.log_level)
