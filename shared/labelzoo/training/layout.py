"""Where a job's files live under ``MODEL_DIR`` (the same layout on the server and on RQ workers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labelzoo.settings import Settings

STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class JobPaths:
    model_dir: Path
    project: str
    job_id: str

    @property
    def project_dir(self) -> Path:
        return self.model_dir / self.project

    @property
    def staging(self) -> Path:
        """Training writes here; promotion renames it to ``<project>/<version>/``."""
        return self.project_dir / f"{STAGING_PREFIX}{self.job_id}"

    @property
    def log(self) -> Path:
        return self.project_dir / "jobs" / f"{self.job_id}.log"

    @property
    def spec(self) -> Path:
        """The training set and parameters the server prepared for the worker (JSON)."""
        return self.project_dir / "jobs" / f"{self.job_id}.json"


@dataclass(frozen=True)
class ChildArgs:
    """What the training process receives (see :mod:`labelzoo.training.worker`)."""

    settings: Settings
    backend_path: str
    spec_path: str
    staging: str
    parent_dir: str | None
    sys_path: list[str]
