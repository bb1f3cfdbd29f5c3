"""The composition root: the one place that builds a process's services and wires them together.

::

    server (HTTP) ──▶ PredictionService ──▶ ModelPool ──▶ Backend
         │                 ▲   │ hands tasks past the deadline to (Handoffs)
         ├──▶ TrainingService  └──────────▶ BulkService ──▶ PredictionService.context
         └──▶ BulkService          (VersionSource: TrainingService)

    below all of them: the store (one SQLite file), the media resolver, one Label Studio client

No service builds another: training and bulk are siblings that reach the prediction layer through narrow
interfaces (:class:`~labelzoo.prediction.VersionSource`, :class:`~labelzoo.prediction.deadline.Handoffs`).
The server, ``labelzoo predict`` and the tests all start a :class:`Runtime`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from labelzoo.bulk.service import BulkService
from labelzoo.media import MediaResolver, label_studio_client
from labelzoo.prediction import ModelPool, PredictionService
from labelzoo.prediction.gate import PredictGate
from labelzoo.registry import BackendSpec
from labelzoo.settings import Settings
from labelzoo.store import ProjectParams, ScoreMaps, open_writable_store, store_problem
from labelzoo.training import TrainingService

log = logging.getLogger("labelzoo.runtime")


class Runtime:
    """One backend's services in one process: build, :meth:`start`, serve, :meth:`close`."""

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.db = open_writable_store(settings.model_dir.resolve())  # a MODEL_DIR that cannot be written stops here
        self.client = label_studio_client(settings.media)
        api_client = self.client if self.client is not None and self.client.has_credentials else None
        self.media = MediaResolver(settings.media, client=self.client)
        self.params = ProjectParams(self.db)
        self.score_maps = ScoreMaps(self.db)
        self.models = ModelPool(spec.cls, settings)
        self.gate = PredictGate.for_threads(settings.threads, settings.predict_concurrency)
        self.training = TrainingService(settings, spec, base_version=self.models.base.base_version, db=self.db,
                                        client=api_client)
        self.prediction = PredictionService(spec.name, self.models, settings, media=self.media, params=self.params,
                                            score_maps=self.score_maps, versions=self.training, gate=self.gate)
        self.bulk = BulkService(spec, settings, db=self.db, client=api_client, predictions=self.prediction,
                                versions=self.training)
        self.prediction.handoffs = self.bulk
        self.training.on_promotion(self.bulk.refresh_after_promotion)
        self.training.on_start_without_fit(self.bulk.calibrate_on_request)
        self.label_studio: dict[str, Any] = {"configured": self.client is not None}

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for note in self.settings.upstream_notes:
            log.warning("%s", note)
        self.training.recover()
        self.models.start()
        self.bulk.recover()
        if self.client is not None:
            threading.Thread(target=self._check_label_studio, name="labelzoo-ls-check", daemon=True).start()

    def close(self) -> None:
        self.bulk.close()
        self.training.close()
        self.media.close()
        if self.client is not None:
            self.client.close()
        self.db.close()

    def _check_label_studio(self) -> None:
        assert self.client is not None
        result = self.client.check()
        self.label_studio = {"configured": True, "ok": result.ok, "token": result.kind, "message": result.message}
        (log.info if result.ok else log.warning)("Label Studio token check: %s", result.message)

    # status ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.prediction.ready

    def versions(self, project: str | None) -> list[dict[str, Any]]:
        """The project's versions (:meth:`TrainingService.versions <labelzoo.training.TrainingService.versions>`),
        each with ``loaded`` (in this worker) and, when loaded, ``model``: what its instance says of itself
        (the engine serving it, for instance)."""
        out = []
        for entry in self.training.versions(project):
            facts = self.prediction.version_health(entry["version"] if entry["trained"] else None)
            out.append({**entry, "loaded": facts is not None, **({"model": facts} if facts is not None else {})})
        return out

    def health(self) -> dict[str, Any]:
        """``status`` is ``UP`` while the model loads and once it is ready (Label Studio's Connect works
        meanwhile), ``FAILED`` with the ``reason`` once loading has failed or while ``MODEL_DIR`` cannot be
        written (webhooks and ``/setup`` then answer 503): the server then answers non-200."""
        model = self.prediction.model_health()
        store = store_problem(self.db)
        reasons = [f"the model failed to load: {model['error']}"] if model["state"] == "failed" else []
        reasons += [store] if store else []
        body = {
            "status": "FAILED" if reasons else "UP",
            "model_class": self.spec.cls.__name__,
            "backend": self.spec.name,
            "ready": self.ready,
            "model": model,
            "store": {"writable": store is None, "error": store},
            "label_studio": self.label_studio,
        }
        if reasons:
            body["reason"] = "; ".join(reasons)
        return body
