"""prometheus-client's multiprocess mode under gunicorn: the workers' metrics in one folder, added up by a scrape.

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is imported, to decide whether values live
in memory or in a file per process; so :func:`prepare_metrics_dir` runs in gunicorn's master before any worker
forks, and before anything in the master imports prometheus_client (the workers build the app after the fork).

The folder must start empty: files left by an earlier run would add old counts and keep gauges of dead
processes alive. Unless the user set the variable, every start gets a fresh folder under the system's temp
dir, removed at exit. :func:`child_exit` drops a dead worker's live gauges; its counters and histograms go on
counting in the totals.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelzoo.observability import MULTIPROC_ENV

log = logging.getLogger("labelzoo.server")


@dataclass(frozen=True)
class MetricsDir:
    path: Path
    owned: bool  # made for this start: removed at exit


def prepare_metrics_dir() -> MetricsDir:
    """The folder for this server's metric files, set in the environment for the workers to inherit."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.glob("*.db")):
            log.warning("%s=%s holds metric files of an earlier run: empty it before each start, or leave the "
                        "variable unset for a fresh folder per start", MULTIPROC_ENV, path)
        return MetricsDir(path, owned=False)
    if "prometheus_client" in sys.modules:  # its values would stay in memory, each worker counting alone
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV} was set")
    path = Path(tempfile.mkdtemp(prefix="labelzoo-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return MetricsDir(path, owned=True)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master: a worker exited, so its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def remove(metrics_dir: MetricsDir) -> None:
    """At the master's exit: delete the folder if it was made for this start."""
    if metrics_dir.owned:
        shutil.rmtree(metrics_dir.path, ignore_errors=True)
