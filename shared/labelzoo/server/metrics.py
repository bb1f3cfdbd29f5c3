"""Prometheus metrics of one app (requests, latency and errors by route, per-task prediction outcomes) and the
``/metrics`` page, which also shows the core's process-wide metrics (:mod:`labelzoo.observability`).

Under ``labelzoo serve`` every worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(:mod:`labelzoo.server.multiprocess`), and the page adds up the files of all workers: one scrape of any
worker tells the whole server. Without that variable the page shows this process's registries.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from labelzoo.observability import core_metrics, multiprocess_dir

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 100)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "labelzoo_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "labelzoo_http_request_seconds", "Request latency", ["route"], buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "labelzoo_http_errors", "Responses with status >= 400", ["route", "status"], registry=self.registry
        )
        self.tasks = Counter(
            "labelzoo_predicted_tasks", "Tasks predicted, by outcome", ["outcome"], registry=self.registry
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        """The ``/metrics`` page: every worker's values added up, or this process's alone."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry) + generate_latest(core_metrics().registry)
        merged = CollectorRegistry()
        merged.register(_WorkerFiles(path))
        return generate_latest(merged)


class _WorkerFiles:
    """prometheus-client's :class:`MultiProcessCollector`, minus the files not written yet.

    A process creates its file empty and sizes it a moment later; an empty file fails the whole scrape, and
    for good when the process died in between (prometheus/client_python#1199, open in 0.26).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        files = [f for f in glob.glob(os.path.join(self.path, "*.db")) if _written(f)]
        return MultiProcessCollector.merge(files, accumulate=True)


def _written(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed meanwhile: a dead worker's live gauges
        return False
