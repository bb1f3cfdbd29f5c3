"""Server settings, read once from the environment and passed down.

Nothing below this module reads ``os.environ``: the server, the runtime and the backends receive a
:class:`Settings` object. The server's own variables are declared below (:class:`~labelzoo.options.Option`,
grouped as the configuration guide's tables are); backends declare theirs on their class and read them from
the snapshot taken here (``Settings.env``), checked when the backend is constructed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labelzoo.devices import check_device_setting
from labelzoo.media.settings import MediaSettings
from labelzoo.options import Option, OptionError, Options
from labelzoo.upstream import resolve_aliases


def _refresh_scope(value: str) -> str:
    key = value.strip().lower()
    if key in ("all", "off") or (key.isdigit() and int(key) >= 1):
        return key
    raise ValueError("must be all, off or a whole number of tasks >= 1")


def _refresh_limit(scope: str) -> int | None:
    """``REFRESH_AFTER_PROMOTION`` as :attr:`Settings.refresh_limit`."""
    return None if scope == "all" else 0 if scope == "off" else int(scope)


SERVER_OPTIONS = Options(
    Option("PORT", int, 9090, low=1, high=65535, doc="port to listen on"),
    Option("WORKERS", int, 1, low=1, doc="gunicorn worker processes; each loads the model once"),
    Option("THREADS", int, 8, low=1, doc="threads per worker; at most `THREADS - 2` `/predict` requests are let in "
           "at once (more get 503 with `Retry-After`), so `/health` and `/setup` always find a thread"),
    Option("PREDICT_CONCURRENCY", int, 1, low=1,
           doc="backend calls a worker runs at once (interactive prompts first); a CPU-bound model already uses "
           "every core, so more only helps a backend that waits on something else (a GPU, a remote API)"),
    Option("LOG_LEVEL", str, "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
           doc="`DEBUG`, `INFO`, `WARNING`, `ERROR`"),
    Option("MODEL_DIR", Path, Path("data/models"),
           doc="model versions (`<project>/<version>/`), the SQLite store, job logs"),
    Option("LOADED_MODELS", int, 4, low=1,
           doc="model versions kept in memory per worker (least recently used unloaded)"),
    Option("DEVICE", str, "auto", check=check_device_setting,
           doc="`auto` (CUDA, then Apple's MPS, then the CPU, among what the backend runs on), `cpu`, `cuda`, "
           "`cuda:1`, `mps`; half precision on CUDA"),
    Option("MODEL_ROOT", Path, None,
           doc="folder where relative model paths (`model_path`, `YOLO_MODEL_*`, checkpoints) are looked up"),
    Option("ALLOW_CUSTOM_MODEL_PATH", bool, False, doc="let a label config choose weights with `model_path`"),
    Option("LABEL_CONFIG_MAX_MB", float, 16.0, low=0.001,
           doc="largest label config accepted; hostile XML (entities, DTDs) is refused at any size. A config of "
           "many megabytes takes about 0.7 s per MB to parse the first time (then it is cached)"),
    Option("MODEL_SCORE_THRESHOLD", float, None, low=0, high=1, default_doc="the backend's",
           doc="minimum score of a prediction for controls without `model_score_threshold`; unset: each "
           "backend's default, see Score thresholds below"),
)
SECURITY_OPTIONS = Options(
    Option("BASIC_AUTH_USER", doc="HTTP basic auth on every route but the probes `/`, `/health` and `/ready` (with "
           "`BASIC_AUTH_PASS`); set the same in Label Studio's model settings. Needs `WEBHOOK_TOKEN` unless "
           "`TRAIN_AFTER_ANNOTATIONS=0` (start-up says so)"),
    Option("BASIC_AUTH_PASS", doc="the basic-auth password"),
    Option("WEBHOOK_TOKEN", doc="`/webhook` needs this token in an `X-Webhook-Token` header (add it to the "
           "backend's webhook in **Settings → Webhooks**) or basic-auth credentials; Label Studio's annotation "
           "webhooks send no credentials of their own"),
)
TRAINING_OPTIONS = Options(
    Option("TRAIN_AFTER_ANNOTATIONS", int, 10, low=0,
           doc="train after this many new or changed annotations; `0`: only on \"Start Training\""),
    Option("REDIS_URL", doc="queue training (and bulk-prediction chunks) on Redis; `labelzoo worker <backend>` "
           "processes (sharing `MODEL_DIR`) run the jobs"),
    Option("CALIBRATE_TASK_SCORES", bool, True,
           doc="when a version is trained, fit a map from its task scores to the probability that the shown "
           "pre-label is right, on the tasks it held out, and serve mapped task scores (region scores stay the "
           "model's own; see Task scores in docs/active-learning.md). `false`: serve raw task scores"),
    Option("MODEL_VERSION_PIN", doc="`12=<version>,13=<version>`: serve that version for the project (rollback); "
           "wins over `extra_params`"),
)
BULK_OPTIONS = Options(
    Option("PREDICT_DEADLINE", float, 80.0, low=0,
           doc="seconds a batch `/predict` computes before answering with what is done (Label Studio gives up "
           "after 100 s and then stores nothing); the rest is posted through Label Studio's API by a bulk job "
           "when `LABEL_STUDIO_API_KEY` is set. `0`: off"),
    Option("BULK_CHUNK_SIZE", int, 256, low=1, doc="tasks per bulk chunk (one fetch, one post, one RQ job)"),
    Option("BULK_RATE_LIMIT", float, 10.0, low=0,
           doc="Label Studio API requests per second of a bulk job, per process (`0`: no limit)"),
    Option("BULK_RETRIES", int, 5, low=0,
           doc="retries of a Label Studio call after a 429, a 5xx, a timeout or a lost connection"),
    Option("BULK_PARALLEL", int, 2, low=1,
           doc="chunks a bulk job handles at once per process (I/O overlaps predicting)"),
    Option("REFRESH_AFTER_PROMOTION", str, "all", check=_refresh_scope,
           allowed="all, off or a whole number of tasks >= 1",
           doc="after a new version is promoted, a bulk job predicts the project's unlabelled tasks with it and "
           "posts the predictions, so uncertainty sampling and the score column follow the current model: `all`, "
           "`off`, or a number N: the N unlabelled tasks the last model was least sure of (the ones uncertainty "
           "sampling hands out first) and those it never predicted. Needs `LABEL_STUDIO_API_KEY`"),
)
#: the server's own variables by the name of their table in docs/configuration.md (media: MediaSettings)
CORE_OPTIONS: Mapping[str, Options] = {
    "server": SERVER_OPTIONS,
    "security": SECURITY_OPTIONS,
    "training": TRAINING_OPTIONS,
    "bulk": BULK_OPTIONS,
}
_ALL = Options(*(option for group in CORE_OPTIONS.values() for option in group))


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
    predict_concurrency: int = 1  # PREDICT_CONCURRENCY: backend calls at once per worker
    model_dir: Path = Path("data/models")  # MODEL_DIR: versions, the SQLite store, job logs
    log_level: str = "INFO"  # LOG_LEVEL
    basic_auth_user: str | None = None  # BASIC_AUTH_USER
    basic_auth_pass: str | None = field(default=None, repr=False)  # BASIC_AUTH_PASS
    webhook_token: str | None = field(default=None, repr=False)  # WEBHOOK_TOKEN: shared secret header for /webhook
    train_after_annotations: int = 10  # TRAIN_AFTER_ANNOTATIONS: auto-train after N new annotations (0: off)
    redis_url: str | None = field(default=None, repr=False)  # REDIS_URL (may hold a password): jobs go to RQ
    calibrate_task_scores: bool = True  # CALIBRATE_TASK_SCORES: fit and serve each version's score map
    version_pins: Mapping[str, str] = field(default_factory=dict)  # MODEL_VERSION_PIN
    model_score_threshold: float | None = None  # MODEL_SCORE_THRESHOLD; None: each backend's default
    label_config_max_bytes: int = 16 << 20  # LABEL_CONFIG_MAX_MB
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
    # REFRESH_AFTER_PROMOTION: unlabelled tasks predicted again after a promotion; None: all of them, 0: off,
    # N: the N the previous model was least sure of
    refresh_limit: int | None = None
    media: MediaSettings = field(default_factory=MediaSettings)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # every variable, secrets included
    #: label-studio-ml-backend settings found in the environment: read as aliases, or not used (logged at start)
    upstream_notes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings from ``environ`` (default: the process environment); a bad value raises an
        :class:`~labelzoo.options.OptionError` (a ``ValueError``) naming the variable."""
        env, upstream_notes = resolve_aliases(os.environ if environ is None else environ)
        v = _ALL.read(env)
        settings = cls(
            port=v.port,
            workers=v.workers,
            threads=v.threads,
            predict_concurrency=v.predict_concurrency,
            model_dir=v.model_dir,
            log_level=v.log_level,
            basic_auth_user=v.basic_auth_user,
            basic_auth_pass=v.basic_auth_pass,
            webhook_token=v.webhook_token,
            train_after_annotations=v.train_after_annotations,
            redis_url=v.redis_url,
            calibrate_task_scores=v.calibrate_task_scores,
            version_pins=parse_pins(v.model_version_pin or ""),
            model_score_threshold=v.model_score_threshold,
            label_config_max_bytes=int(v.label_config_max_mb * 2**20),
            model_root=v.model_root,
            allow_custom_model_path=v.allow_custom_model_path,
            device=v.device,
            loaded_models=v.loaded_models,
            predict_deadline=v.predict_deadline,
            bulk_chunk_size=v.bulk_chunk_size,
            bulk_rate_limit=v.bulk_rate_limit,
            bulk_retries=v.bulk_retries,
            bulk_parallel=v.bulk_parallel,
            refresh_limit=_refresh_limit(v.refresh_after_promotion),
            media=MediaSettings.from_env(env),
            env=env,
            upstream_notes=tuple(upstream_notes),
        )
        settings = replace(settings, **overrides) if overrides else settings
        settings.check_auth()
        return settings

    def check_auth(self) -> None:
        """An OptionError for an authentication set-up that would leave a route open by accident.

        Label Studio's annotation webhooks carry no credentials unless the user adds a header to the webhook
        (``docs/protocol.md``), so with basic auth on, online learning needs ``WEBHOOK_TOKEN``; without it,
        ``/webhook`` would have to be either open to anyone or silently refuse every annotation.
        """
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            given, missing = ("BASIC_AUTH_USER", "BASIC_AUTH_PASS") if self.basic_auth_user else (
                "BASIC_AUTH_PASS", "BASIC_AUTH_USER")
            raise OptionError(f"{given} is set but {missing} is not: basic auth needs both (or neither, for no auth)")
        if self.basic_auth_enabled and not self.webhook_token and self.train_after_annotations > 0:
            raise OptionError(
                "basic auth is on (BASIC_AUTH_USER/PASS) but WEBHOOK_TOKEN is not set, and Label Studio's annotation "
                "webhooks carry no credentials: set WEBHOOK_TOKEN=<a long random secret> and add the header "
                "X-Webhook-Token: <that secret> to the backend's webhook in Label Studio (project Settings → "
                "Webhooks), or set TRAIN_AFTER_ANNOTATIONS=0 to train only on Start Training, which sends basic auth"
            )

    @property
    def basic_auth_enabled(self) -> bool:
        return bool(self.basic_auth_user and self.basic_auth_pass)

    def model_path(self, value: str | Path) -> Path:
        """Where a model file setting points (a checkpoint, a pipeline folder): ``~`` expanded, and a relative
        path looked up under ``MODEL_ROOT`` when that is set (else taken as it is, from the working directory)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.model_root is None else self.model_root / path

    def option(self, name: str, default: str | None = None) -> str | None:
        """An undeclared option from the environment snapshot (empty counts as unset); backends declare
        theirs instead (:mod:`labelzoo.options`)."""
        value = self.env.get(name)
        return value if value not in (None, "") else default

    def bool_option(self, name: str, default: bool = False) -> bool:
        return bool(Option(name, bool, default).read(self.env))

    def float_option(self, name: str, default: float) -> float:
        return float(Option(name, float, default).read(self.env))

    def int_option(self, name: str, default: int) -> int:
        return int(Option(name, int, default).read(self.env))

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)
