"""Prometheus metrics per app: requests, latency and errors by route, and per-task prediction outcomes.

Each gunicorn worker counts its own requests; scrape every worker or run one worker per container.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
        self.ready = Gauge("labelzoo_model_ready", "1 when the base model is loaded", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
