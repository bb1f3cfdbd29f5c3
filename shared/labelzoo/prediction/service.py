"""The prediction service: which controls a backend fills, the context of a request, ``/setup`` and ``/predict``.

Plain Python between the server and a backend: the server parses requests into :mod:`labelzoo.protocol`
types and calls this; bulk jobs call :meth:`PredictionService.context` to predict with the same model and
context a ``/predict`` would get.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from labelzoo.backend import Backend, PredictContext
from labelzoo.errors import BadRequest, LabelConfigError, NotReady, TaskError
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag, build_label_map, parse_label_config_cached
from labelzoo.labelconfig.attributes import attribute_warnings
from labelzoo.media import MediaResolver
from labelzoo.prediction.deadline import Handoffs, predict_in_time
from labelzoo.prediction.gate import PredictGate
from labelzoo.prediction.models import ModelPool
from labelzoo.prediction.predictor import run_backend, to_json
from labelzoo.protocol import PredictRequest, SetupRequest
from labelzoo.scoremap import IDENTITY, ScoreMap
from labelzoo.settings import Settings
from labelzoo.store import ProjectParams, ScoreMaps

log = logging.getLogger("labelzoo.prediction")

#: how long a /predict waits for a model that is still loading before answering 503
LOAD_WAIT_SECONDS = 60.0


class VersionSource(Protocol):
    """Which model version a project is on, and where its weights are (the training service answers)."""

    def base_version(self) -> str: ...

    def current_version(self, project: str) -> str: ...

    def version_warnings(self, project: str) -> list[str]: ...

    def version_dir(self, project: str, version: str) -> Path | None: ...

    def load_failed(self, project: str, version: str, error: Exception) -> None:
        """A trained version failed to load (quarantined if its files are to blame: then no longer current)."""

    def pin(self, project: str, version: str | None) -> None: ...

    def trained_on(self, project: str, version: str) -> frozenset[int] | None:
        """The tasks the version learnt from (its lineage's); None when that is not known."""


@dataclass(frozen=True)
class Assignment:
    """A control of the project's config that this backend fills, with the object it labels."""

    control: ControlTag
    obj: ObjectTag


class PredictionService:
    def __init__(
        self, backend_name: str, models: ModelPool, settings: Settings, *, media: MediaResolver,
        params: ProjectParams, score_maps: ScoreMaps, versions: VersionSource, handoffs: Handoffs | None = None,
        gate: PredictGate | None = None,
    ) -> None:
        self.backend_name = backend_name
        self.gate = gate  # the process's compute slots (None: calls are not bounded)
        self.backend_cls = models.backend_cls
        self.models = models
        self.settings = settings
        self.media = media
        self.params = params
        self.score_maps = score_maps
        self.versions = versions
        self.handoffs = handoffs
        # Label Studio calls /setup on every Data Manager load: report each config's mismatches once
        self._mismatches_logged: set[tuple[str, str]] = set()
        self._attributes_logged: set[tuple[str, str]] = set()

    @property
    def ready(self) -> bool:
        return self.models.base_state.state == "ready"

    def version_health(self, version: str | None) -> dict[str, Any] | None:
        """What the instance of trained ``version`` (None: the base model) says of itself
        (:meth:`Backend.health <labelzoo.backend.Backend.health>`), if this process has it loaded."""
        instance = self.models.loaded(version)
        return None if instance is None else dict(instance.health())

    def model_health(self) -> dict[str, Any]:
        state = self.models.base_state
        details = dict(self.models.base.health()) if state.state == "ready" else {}
        late = details.pop("notices", ())
        return {
            "state": state.state,
            "error": state.error,
            "load_seconds": None if state.seconds is None else round(state.seconds, 3),
            "base_version": self.models.base.base_version(),
            "loaded_versions": self.models.loaded_versions(),
            "notices": [*state.notices, *late],
            **({"details": details} if details else {}),
        }

    # label config ----------------------------------------------------------------------------
    def assignments(self, config: LabelConfig) -> list[Assignment]:
        """The controls to fill; a config with none this backend can fill is an error, naming what it fills."""
        if not any(self.backend_cls.serves(control.tag, obj.tag) for control in config.controls.values()
                   for obj in control.objects):
            wanted = ", ".join(str(t) for t in self.backend_cls.targets) or "nothing"
            raise LabelConfigError(
                f"the label config has no control the {self.backend_name!r} backend can fill: it labels {wanted}"
            )
        return [Assignment(control, obj) for control, obj in self.backend_cls.fills(config)]

    def label_report(self, config: LabelConfig) -> list[dict[str, Any]]:
        """Per control: which model labels map to which config labels, and what nobody maps."""
        report = []
        base = self.models.base
        for a in self.assignments(config):
            entry: dict[str, Any] = {"control": a.control.name, "tag": a.control.tag, "object": a.obj.name}
            state = self.models.base_state
            if state.state == "failed":
                entry["labels"] = f"the model failed to load: {state.error}"
            elif state.state != "ready":
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

    def attribute_warnings(self, config: LabelConfig) -> list[str]:
        """The model attributes of the filled controls that the backend does not honour, each logged once."""
        warnings = []
        for a in self.assignments(config):
            found = attribute_warnings(a.control, self.backend_cls.ignored_attribute)
            seen = (config.fingerprint, a.control.name)
            if found and seen not in self._attributes_logged:
                self._attributes_logged.add(seen)
                for warning in found:
                    log.warning("%s", warning)
            warnings.extend(found)
        return warnings

    # protocol --------------------------------------------------------------------------------
    def setup(self, req: SetupRequest) -> dict[str, Any]:
        config = parse_label_config_cached(req.label_config, max_bytes=self.settings.label_config_max_bytes)
        report = self.label_report(config)
        if "model_version" in req.extra_params:
            pinned = req.extra_params["model_version"]
            if pinned is not None and not isinstance(pinned, str):
                raise BadRequest("extra_params.model_version must be a version string or null")
            self.versions.pin(req.project, pinned or None)
        self.params.save(req.project, req.extra_params)
        warnings = self.versions.version_warnings(req.project) + list(config.warnings)
        warnings += self.attribute_warnings(config)
        state = self.models.base_state
        if state.state == "failed":
            warnings.insert(0, f"the model failed to load and predicts nothing: {state.error}")
        warnings[:0] = state.notices
        return {
            "model_version": self.versions.current_version(req.project),
            "labels": report,
            "warnings": warnings,
        }

    def context(
        self, project: str | None, label_config: str, *, version: str | None = None,
        prompt: dict[str, Any] | None = None, wait: float = LOAD_WAIT_SECONDS,
    ) -> tuple[Backend, PredictContext]:
        """The loaded model and the context to predict a project's tasks with.

        ``version`` defaults to the project's current one (falling back to an ancestor when that one turns out
        unloadable and is quarantined); without a project (offline runs), the base model.
        """
        config = parse_label_config_cached(label_config, max_bytes=self.settings.label_config_max_bytes)
        self.assignments(config)
        if not project:
            version = version or self.versions.base_version()
            backend = self.models.get(version, None, wait=wait)
        elif version is None:
            version, backend = self._current_model(project, wait)
        else:
            backend = self._model(project, version, wait)
        ctx = PredictContext(
            project=project or "",
            config=config,
            media=self.media,
            settings=self.settings,
            model_version=version,
            params=self.params.get(project) if project else {},
            prompt=prompt,
            task_scores=self.task_scores(project, version, backend),
        )
        return backend, ctx

    def task_scores(self, project: str | None, version: str, backend: Backend) -> ScoreMap:
        """The map of the version's task scores for the project: the one a calibration job fitted on the
        project's annotations, else the one stored with the version, else none (``CALIBRATE_TASK_SCORES``)."""
        if not self.settings.calibrate_task_scores:
            return IDENTITY
        fitted = self.score_maps.get(project, version) if project else None
        return fitted or backend.task_scores

    def _model(self, project: str, version: str, wait: float) -> Backend:
        weights = self.versions.version_dir(project, version)
        return self.models.get(version, weights, wait=wait,
                               on_failure=lambda exc: self.versions.load_failed(project, version, exc))

    def _current_model(self, project: str, wait: float) -> tuple[str, Backend]:
        """The project's current version and its model; a version quarantined by its failed load gives way."""
        version = self.versions.current_version(project)
        while True:
            try:
                return version, self._model(project, version, wait)
            except NotReady:
                fallback = self.versions.current_version(project)
                if fallback == version:
                    raise  # still loading, or failed for a reason that may pass: the next request tries again
                log.warning("project %s: model version %s is quarantined; predicting with %s", project, version,
                            fallback)
                version = fallback

    def predict(self, req: PredictRequest) -> list[dict[str, Any]]:
        started = time.monotonic()  # PREDICT_DEADLINE counts from here, model loading included
        backend, ctx = self.context(req.project, req.label_config, prompt=req.context)
        if not req.interactive:
            return predict_in_time(self.handoffs, backend, req.tasks, ctx, label_config=req.label_config,
                                   started=started, limit=self.settings.predict_deadline, gate=self.gate)
        items = [to_json(p, ctx.model_version) for p in run_backend(backend, req.tasks, ctx, gate=self.gate)]
        if "result" not in items[0]:
            raise TaskError(items[0]["error"])  # the editor shows results[0].result only (P4)
        return items
