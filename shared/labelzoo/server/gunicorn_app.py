"""Serve a backend under gunicorn, configured from :class:`Settings` instead of a gunicorn.conf.

Each worker process builds its own runtime after the fork (no ``--preload``): model weights, CUDA
contexts and SQLite connections must not be shared across a fork. Versions, jobs and parameters live
in SQLite under ``MODEL_DIR``, so every worker sees the same state. Their Prometheus metrics meet in one
folder of files (:mod:`labelzoo.server.multiprocess`), so any worker's ``/metrics`` shows the whole server.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from labelzoo.server.memory import limit_malloc_arenas
from labelzoo.server.multiprocess import MetricsDir, child_exit, prepare_metrics_dir, remove
from labelzoo.settings import Settings

#: gunicorn's worker timeout must outlast Label Studio's 100 s predict timeout
WORKER_TIMEOUT_SECONDS = 300


def build_app(backend: str, settings: Settings) -> Any:
    from labelzoo.registry import load_backend
    from labelzoo.runtime import Runtime
    from labelzoo.server.app import create_app

    runtime = Runtime(load_backend(backend), settings)
    runtime.start()
    return create_app(runtime)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, backend: str, settings: Settings, metrics_dir: MetricsDir) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics_dir = metrics_dir
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "threads": s.threads,
            "worker_class": "gthread",
            "timeout": WORKER_TIMEOUT_SECONDS,
            "graceful_timeout": 30,
            "loglevel": s.log_level.lower(),
            "accesslog": "-",
            "errorlog": "-",
            "proc_name": f"labelzoo-{self.backend}",
            "on_starting": lambda server: server.log.info("metrics of all workers: files in %s", self.metrics_dir.path),
            "child_exit": child_exit,
            "on_exit": lambda server: remove(self.metrics_dir),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        logging.basicConfig(level=self.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return build_app(self.backend, self.settings)


def serve(backend: str, settings: Settings) -> None:
    limit_malloc_arenas()  # before any worker is forked or thread started
    metrics_dir = prepare_metrics_dir()  # likewise, and before prometheus_client is imported
    GunicornServer(backend, settings, metrics_dir).run()
