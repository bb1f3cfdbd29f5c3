"""Server settings, read once from the environment and passed down.

Nothing below this module reads ``os.environ``: the server, the runtime and the backends receive a
:class:`Settings` object. Backend-specific options (``YOLO_MODEL``, ``SPACY_MODEL``…) are read through
:meth:`Settings.option`, which looks at the snapshot taken here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labelzoo.media.settings import MediaSettings

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean: use true or false")


def parse_pins(raw: str) -> dict[str, str]:
    """``MODEL_VERSION_PIN="12=template-p12-v2-ab12cd,13=template-base"`` → ``{"12": ..., "13": ...}``."""
    pins: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        project, sep, version = item.partition("=")
        if not sep or not project.strip() or not version.strip():
            raise ValueError(f"MODEL_VERSION_PIN entry {item!r} is not of the form <project id>=<version>")
        pins[project.strip()] = version.strip()
    return pins


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, with the environment variable that sets each field."""

    host: str = "0.0.0.0"  # HOST is not read: Label Studio users often have it set for LS itself
    port: int = 9090  # PORT
    workers: int = 1  # WORKERS
    threads: int = 8  # THREADS
    model_dir: Path = Path("data/models")  # MODEL_DIR: versions, the SQLite store, job logs
    log_level: str = "INFO"  # LOG_LEVEL
    basic_auth_user: str | None = None  # BASIC_AUTH_USER
    basic_auth_pass: str | None = None  # BASIC_AUTH_PASS
    webhook_token: str | None = None  # WEBHOOK_TOKEN: shared secret header for /webhook when basic auth is on
    train_after_annotations: int = 10  # TRAIN_AFTER_ANNOTATIONS: auto-train after N new annotations (0: off)
    redis_url: str | None = None  # REDIS_URL: send training jobs to an RQ queue instead of in-process
    version_pins: Mapping[str, str] = field(default_factory=dict)  # MODEL_VERSION_PIN
    model_score_threshold: float = 0.5  # MODEL_SCORE_THRESHOLD
    model_root: Path | None = None  # MODEL_ROOT: where relative model paths are looked up
    allow_custom_model_path: bool = False  # ALLOW_CUSTOM_MODEL_PATH: let a label config choose weights
    device: str = "auto"  # DEVICE: auto, cpu, cuda, cuda:1, mps
    loaded_models: int = 4  # LOADED_MODELS: model versions kept in memory per process
    # PREDICT_DEADLINE: seconds a batch /predict computes before answering with what is done (Label Studio
    # gives up after 100 s and then stores nothing); the rest is posted through the API by a bulk job. 0: off
    predict_deadline: float = 80.0
    bulk_chunk_size: int = 256  # BULK_CHUNK_SIZE: tasks per bulk chunk (one fetch, one post, one RQ job)
    bulk_rate_limit: float = 10.0  # BULK_RATE_LIMIT: Label Studio API requests per second of a bulk job (0: no limit)
    bulk_retries: int = 5  # BULK_RETRIES: retries of a Label Studio call after a 429, a 5xx or a lost connection
    bulk_parallel: int = 2  # BULK_PARALLEL: chunks a bulk job handles at once per process (I/O overlaps predicting)
    media: MediaSettings = field(default_factory=MediaSettings)
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if environ is None else environ)

        read = cls(env=env)  # the typed option readers below give every variable the same error messages
        get, integer, number = read.option, read.int_option, read.float_option

        model_root = get("MODEL_ROOT")
        settings = cls(
            port=integer("PORT", 9090),
            workers=integer("WORKERS", 1),
            threads=integer("THREADS", 8),
            model_dir=Path(get("MODEL_DIR", "data/models") or "data/models"),
            log_level=(get("LOG_LEVEL", "INFO") or "INFO").upper(),
            basic_auth_user=get("BASIC_AUTH_USER"),
            basic_auth_pass=get("BASIC_AUTH_PASS"),
            webhook_token=get("WEBHOOK_TOKEN"),
            train_after_annotations=integer("TRAIN_AFTER_ANNOTATIONS", 10),
            redis_url=get("REDIS_URL"),
            version_pins=parse_pins(get("MODEL_VERSION_PIN", "") or ""),
            model_score_threshold=number("MODEL_SCORE_THRESHOLD", 0.5),
            model_root=Path(model_root) if model_root else None,
            allow_custom_model_path=read.bool_option("ALLOW_CUSTOM_MODEL_PATH"),
            device=get("DEVICE", "auto") or "auto",
            loaded_models=max(1, integer("LOADED_MODELS", 4)),
            predict_deadline=max(0.0, number("PREDICT_DEADLINE", 80.0)),
            bulk_chunk_size=max(1, integer("BULK_CHUNK_SIZE", 256)),
            bulk_rate_limit=max(0.0, number("BULK_RATE_LIMIT", 10.0)),
            bulk_retries=max(0, integer("BULK_RETRIES", 5)),
            bulk_parallel=max(1, integer("BULK_PARALLEL", 2)),
            media=MediaSettings.from_env(env),
            env=env,
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def basic_auth_enabled(self) -> bool:
        return bool(self.basic_auth_user and self.basic_auth_pass)

    def option(self, name: str, default: str | None = None) -> str | None:
        """A backend-specific option from the environment snapshot (empty counts as unset)."""
        value = self.env.get(name)
        return value if value not in (None, "") else default

    def bool_option(self, name: str, default: bool = False) -> bool:
        raw = self.option(name)
        return default if raw is None else parse_bool(name, raw)

    def float_option(self, name: str, default: float) -> float:
        raw = self.option(name)
        try:
            return default if raw is None else float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None

    def int_option(self, name: str, default: int) -> int:
        raw = self.option(name)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer") from None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)
