"""The runtime: one backend per process, its loaded versions, projects' parameters and training.

The server translates HTTP into calls on :class:`Runtime` and back; everything here is plain Python,
so the same runtime serves the Flask app, the bulk predictor and the tests.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from labelzoo.backend import Backend, PredictContext
from labelzoo.bulk.deadline import predict_in_time
from labelzoo.bulk.service import BulkService
from labelzoo.errors import BadRequest, LabelConfigError, TaskError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag, build_label_map, parse_label_config_cached
from labelzoo.media import MediaResolver
from labelzoo.registry import BackendSpec
from labelzoo.runtime.models import ModelPool
from labelzoo.runtime.predictor import run_backend, to_json
from labelzoo.runtime.project_params import ProjectParams
from labelzoo.server.payloads import PredictRequest, SetupRequest
from labelzoo.settings import Settings
from labelzoo.training import TrainingService

log = logging.getLogger("labelzoo.runtime")

#: how long a /predict waits for a model that is still loading before answering 503
LOAD_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Assignment:
    """A control of the project's config that this backend fills, with the object it labels."""

    control: ControlTag
    obj: ObjectTag


class Runtime:
    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        settings.model_dir.mkdir(parents=True, exist_ok=True)
        self.models = ModelPool(spec.cls, settings)
        self.media = MediaResolver(settings.media)
        self.params = ProjectParams(settings.model_dir / "projects.sqlite3")
        self.training = TrainingService(settings, spec, base_version=self.models.base.base_version)
        self.bulk = BulkService(self)
        self.label_studio: dict[str, Any] = {"configured": bool(settings.media.label_studio_url)}
        # Label Studio calls /setup on every Data Manager load: report each config's mismatches once
        self._mismatches_logged: set[tuple[str, str]] = set()

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.training.recover()
        self.models.start()
        self.bulk.recover()
        if self.media.client is not None:
            threading.Thread(target=self._check_label_studio, name="labelzoo-ls-check", daemon=True).start()

    def close(self) -> None:
        self.bulk.close()
        self.training.close()

    def _check_label_studio(self) -> None:
        client = self.media.client  # set whenever LABEL_STUDIO_URL is
        if client is None:
            return
        result = client.check()
        self.label_studio = {"configured": True, "ok": result.ok, "token": result.kind, "message": result.message}
        (log.info if result.ok else log.warning)("Label Studio token check: %s", result.message)

    # status ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.models.base_state.state == "ready"

    def health(self) -> dict[str, Any]:
        state = self.models.base_state
        return {
            "status": "UP",
            "model_class": self.spec.cls.__name__,
            "backend": self.spec.name,
            "ready": state.state == "ready",
            "model": {
                "state": state.state,
                "error": state.error,
                "load_seconds": None if state.seconds is None else round(state.seconds, 3),
                "base_version": self.models.base.base_version(),
                "loaded_versions": self.models.loaded_versions(),
            },
            "label_studio": self.label_studio,
        }

    # label config ----------------------------------------------------------------------------
    def assignments(self, config: LabelConfig) -> list[Assignment]:
        """The controls to fill; a config with none this backend can fill is an error, naming what it fills."""
        matching = [
            Assignment(control, obj)
            for control in config.controls.values()
            for obj in control.objects
            if self.spec.cls.serves(control.tag, obj.tag)
        ]
        if not matching:
            wanted = ", ".join(str(t) for t in self.spec.cls.targets) or "nothing"
            raise LabelConfigError(
                f"the label config has no control the {self.spec.name!r} backend can fill: it labels {wanted}"
            )
        return [a for a in matching if not a.control.model_skip]

    def label_report(self, config: LabelConfig) -> list[dict[str, Any]]:
        """Per control: which model labels map to which config labels, and what nobody maps."""
        report = []
        base = self.models.base
        for a in self.assignments(config):
            entry: dict[str, Any] = {"control": a.control.name, "tag": a.control.tag, "object": a.obj.name}
            if self.models.base_state.state != "ready":
                entry["labels"] = "model still loading"
            else:
                model_labels = base.model_labels(a.control, a.obj)
                if model_labels is not None:
                    mapping = build_label_map(a.control, model_labels)
                    entry.update(mapping.to_json())
                    mismatched = mapping.unmapped_model_labels or mapping.unfed_config_labels
                    seen = (config.fingerprint, a.control.name)
                    if mismatched and seen not in self._mismatches_logged:
                        self._mismatches_logged.add(seen)
                        log.warning("%s", mapping.report())
            report.append(entry)
        return report

    # protocol --------------------------------------------------------------------------------
    def setup(self, req: SetupRequest) -> dict[str, Any]:
        config = parse_label_config_cached(req.label_config)
        report = self.label_report(config)
        if "model_version" in req.extra_params:
            pinned = req.extra_params["model_version"]
            if pinned is not None and not isinstance(pinned, str):
                raise BadRequest("extra_params.model_version must be a version string or null")
            self.training.pin(req.project, pinned or None)
        self.params.save(req.project, req.extra_params)
        return {
            "model_version": self.training.current_version(req.project),
            "labels": report,
            "warnings": list(config.warnings),
        }

    def train_legacy(self, body: dict[str, Any]) -> dict[str, Any]:
        """Legacy ``POST /train``: export-format tasks with their annotations, then a training job."""
        label_config = body.get("label_config")
        if label_config is not None and not isinstance(label_config, str):
            raise BadRequest("'label_config' must be the label config XML")
        stored = self.training.record_tasks(body.get("project"), body.get("annotations"), label_config)
        return {"status": "ok", "stored": stored, "job": self.training.start_training(body.get("project"))}

    def context(
        self, project: str | None, label_config: str, *, version: str | None = None,
        prompt: dict[str, Any] | None = None, wait: float = LOAD_WAIT_SECONDS,
    ) -> tuple[Backend, PredictContext]:
        """The loaded model and the context to predict a project's tasks with.

        ``version`` defaults to the project's current one; without a project (offline runs), the base model.
        """
        config = parse_label_config_cached(label_config)
        self.assignments(config)
        if version is None:
            version = self.training.current_version(project) if project else self.training.base_version()
        weights = self.training.version_dir(project, version) if project else None
        backend = self.models.get(version, weights, wait=wait)
        ctx = PredictContext(
            project=project or "",
            config=config,
            media=self.media,
            settings=self.settings,
            model_version=version,
            params=self.params.get(project) if project else {},
            prompt=prompt,
        )
        return backend, ctx

    def predict(self, req: PredictRequest) -> list[dict[str, Any]]:
        started = time.monotonic()  # PREDICT_DEADLINE counts from here, model loading included
        backend, ctx = self.context(req.project, req.label_config, prompt=req.context)
        if not req.interactive:
            return predict_in_time(self.bulk, backend, req.tasks, ctx, label_config=req.label_config, started=started)
        items = [to_json(p, ctx.model_version) for p in run_backend(backend, req.tasks, ctx)]
        if "result" not in items[0]:
            raise TaskError(items[0]["error"])  # the editor shows results[0].result only (P4)
        return items
