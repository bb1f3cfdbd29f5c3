"""Process-wide Prometheus metrics of the core: training and bulk jobs, model loads, media fetches, the predict gate.

The core counts where things happen (the training runner, the bulk store, the model pool, the media resolver,
the predict gate); the server's ``/metrics`` shows these with its HTTP metrics (:mod:`labelzoo.server.metrics`).
docs/configuration.md lists them all.

Under ``labelzoo serve`` ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers fork
(:mod:`labelzoo.server.multiprocess`): prometheus-client then keeps every value in a file per process, and a
scrape of any worker adds them all up. Each gauge says how: ``livesum`` (the sum over live workers),
``livemin`` (the lowest value) or ``liveall`` (one series per worker, with a ``pid`` label). Without that
variable (tests, ``labelzoo predict``) values live in memory, in :attr:`CoreMetrics.registry`.

prometheus-client reads the variable once, when it is imported, and ``import labelzoo`` reaches this module
(the media resolver counts here); so the metric objects, and prometheus-client itself, come on first use
(:func:`core_metrics`), which in a gunicorn worker is after the fork.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: the variable prometheus-client reads at import time to keep values in files shared by processes
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
MODEL_STATES = ("loading", "ready", "failed")


@dataclass(frozen=True)
class CoreMetrics:
    registry: CollectorRegistry
    training_jobs_started: Counter
    training_jobs_finished: Counter
    training_job_seconds: Histogram
    bulk_jobs_started: Counter
    bulk_jobs_finished: Counter
    bulk_job_seconds: Histogram
    bulk_tasks: Counter
    model_load_seconds: Histogram
    model_state: Gauge
    model_ready: Gauge
    media_fetch_errors: Counter
    predict_busy: Counter
    predict_admitted: Gauge
    predict_running: Gauge
    predict_waiting: Gauge


_lock = threading.Lock()
_made: CoreMetrics | None = None


def core_metrics() -> CoreMetrics:
    """This process's metric objects, made on the first call."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _make()
    return _made


def multiprocess_dir() -> str | None:
    """The folder of the processes' metric files, when values are shared by processes; else None."""
    return os.environ.get(MULTIPROC_ENV) or None


def set_base_model_state(state: str) -> None:
    """Record the state of this process's base model (one of :data:`MODEL_STATES`)."""
    metrics = core_metrics()
    for each in MODEL_STATES:
        metrics.model_state.labels(each).set(1 if each == state else 0)
    metrics.model_ready.set(1 if state == "ready" else 0)


def _make() -> CoreMetrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    return CoreMetrics(
        registry=registry,
        training_jobs_started=Counter(
            "labelzoo_training_jobs_started", "Training jobs started (one queued again after a stop counts again)",
            registry=registry,
        ),
        training_jobs_finished=Counter(
            "labelzoo_training_jobs_finished", "Training jobs that ran and ended, by outcome: promoted, rejected "
            "(finished, not promoted), failed, cancelled, skipped", ["outcome"], registry=registry,
        ),
        training_job_seconds=Histogram(
            "labelzoo_training_job_seconds", "Wall time of a training job from its start to its end, by outcome",
            ["outcome"], buckets=JOB_BUCKETS, registry=registry,
        ),
        bulk_jobs_started=Counter(
            "labelzoo_bulk_jobs_started", "Bulk jobs started, by kind: project (POST /bulk, labelzoo predict), "
            "tasks (a /predict batch handed off at its deadline) or refresh (after a promotion); a resumed job counts "
            "again", ["kind"],
            registry=registry,
        ),
        bulk_jobs_finished=Counter(
            "labelzoo_bulk_jobs_finished", "Bulk jobs that ended, by kind and outcome: succeeded, failed, "
            "cancelled, interrupted", ["kind", "outcome"], registry=registry,
        ),
        bulk_job_seconds=Histogram(
            "labelzoo_bulk_job_seconds", "Wall time of a bulk job from its first start to its end, by kind and "
            "outcome", ["kind", "outcome"], buckets=JOB_BUCKETS, registry=registry,
        ),
        bulk_tasks=Counter(
            "labelzoo_bulk_tasks", "Tasks of bulk jobs, by outcome: posted (a prediction posted to Label Studio), "
            "skipped (already predicted, or deleted), failed", ["outcome"], registry=registry,
        ),
        model_load_seconds=Histogram(
            "labelzoo_model_load_seconds", "Time to load a model, by kind (base or trained version) and outcome "
            "(ready or failed)", ["kind", "outcome"], buckets=LOAD_BUCKETS, registry=registry,
        ),
        model_state=Gauge(
            "labelzoo_model_state", "1 for the state of the base model in each worker: loading, ready or failed",
            ["state"], multiprocess_mode="liveall", registry=registry,
        ),
        model_ready=Gauge(
            "labelzoo_model_ready", "1 when the base model is loaded (in every live worker)",
            multiprocess_mode="livemin", registry=registry,
        ),
        media_fetch_errors=Counter(
            "labelzoo_media_fetch_errors", "Task media that could not be fetched, by kind of value and reason",
            ["kind", "reason"], registry=registry,
        ),
        predict_busy=Counter(
            "labelzoo_predict_busy", "/predict requests turned away with 503 busy (the worker held its most)",
            registry=registry,
        ),
        predict_admitted=Gauge(
            "labelzoo_predict_admitted", "/predict requests inside the workers now", multiprocess_mode="livesum",
            registry=registry,
        ),
        predict_running=Gauge(
            "labelzoo_predict_running", "Backend calls (predictions, bulk chunks) running now",
            multiprocess_mode="livesum", registry=registry,
        ),
        predict_waiting=Gauge(
            "labelzoo_predict_waiting", "Backend calls waiting for a compute slot (PREDICT_CONCURRENCY) now",
            multiprocess_mode="livesum", registry=registry,
        ),
    )
