"""The Flask application factory: Label Studio's ML-backend protocol over one :class:`Runtime`.

Routes (see docs/protocol.md): ``GET /`` and ``/health`` (liveness, with readiness inside), ``GET /ready``
(503 until the model is loaded), ``POST /setup``, ``POST /predict``, ``POST /webhook``, legacy
``POST /train``, ``GET /versions``, ``GET /jobs``, ``GET /jobs/<id>``, ``POST /jobs/<id>/cancel``,
``POST /bulk``, ``GET /bulk``, ``GET /bulk/<id>``, ``POST /bulk/<id>/cancel`` (bulk pre-annotation, see
docs/bulk.md), ``POST /bulk/<id>/undo`` (an auto-label job's annotations, see docs/auto-labeling.md),
``GET /metrics``. Every error is a JSON body ``{"error": code, "message": text}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from labelzoo.bulk.autolabel import AutoLabelOptions
from labelzoo.errors import BadRequest, LabelzooError, Unauthorized
from labelzoo.prediction.gate import Busy
from labelzoo.protocol import PredictRequest, SetupRequest, require_object
from labelzoo.runtime import Runtime
from labelzoo.server.auth import is_allowed
from labelzoo.server.body import parse_json
from labelzoo.server.metrics import Metrics

log = logging.getLogger("labelzoo.server")

WORKER_HEADER = "X-Labelzoo-Worker"
MAX_BODY_BYTES = 512 * 1024 * 1024  # a 5,000-task /predict with annotations is tens of MB; this is a DoS cap


def _json_body() -> Any:
    return parse_json(request.get_data(cache=True))


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


def create_app(runtime: Runtime) -> Flask:
    """Build the app around a runtime. The caller starts the runtime (``runtime.start()``)."""
    app = Flask("labelzoo")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["labelzoo.runtime"] = runtime
    metrics = Metrics()
    settings = runtime.settings

    @app.before_request
    def _authenticate() -> Any:
        g.started = time.perf_counter()
        if not is_allowed(request, request.endpoint, settings):
            response, status = _error(401, Unauthorized.code, "authentication required: check BASIC_AUTH_USER/PASS")
            if request.endpoint != "webhook":
                response.headers["WWW-Authenticate"] = 'Basic realm="labelzoo"'
            return response, status
        return None

    @app.after_request
    def _observe(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        started = g.get("started", time.perf_counter())
        metrics.observe(route, request.method, response.status_code, time.perf_counter() - started)
        response.headers[WORKER_HEADER] = str(os.getpid())  # which gunicorn worker answered: for debugging
        return response

    @app.errorhandler(LabelzooError)
    def _labelzoo_error(exc: LabelzooError) -> tuple[Response, int]:
        level = logging.ERROR if exc.status >= 500 and not isinstance(exc, Busy) else logging.INFO
        log.log(level, "%s %s → %d: %s", request.method, request.path, exc.status, exc.message)
        response = jsonify(exc.to_json())
        if isinstance(exc, Busy):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response, exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc} (details in the backend's log)")

    def _health() -> tuple[Response, int]:
        state = runtime.health()
        return jsonify(state), 200 if state["status"] == "UP" else 503  # a failed load shows in Connect Model

    @app.get("/")
    def index() -> tuple[Response, int]:
        return _health()

    @app.get("/health")
    def health() -> tuple[Response, int]:
        return _health()

    @app.get("/ready")
    def ready() -> tuple[Response, int]:
        state = runtime.health()
        return jsonify(state), 200 if state["ready"] else 503

    @app.post("/setup")
    def setup() -> Response:
        return jsonify(runtime.prediction.setup(SetupRequest.from_json(_json_body())))

    @app.post("/predict")
    def predict() -> Response:
        req = PredictRequest.from_json(_json_body())
        with runtime.gate.admit():
            results = runtime.prediction.predict(req)
        deferred = sum("deferred_to" in item for item in results)  # a bulk job posts these through the API
        failed = sum("result" not in item for item in results) - deferred
        metrics.tasks.labels("ok").inc(len(results) - failed - deferred)
        metrics.tasks.labels("failed").inc(failed)
        metrics.tasks.labels("deferred").inc(deferred)
        return jsonify({"results": results, "model_version": results[0]["model_version"]})

    @app.post("/webhook")
    def webhook() -> tuple[Response, int]:
        return jsonify(runtime.training.handle_event(_json_body())), 201

    @app.post("/train")
    def train() -> tuple[Response, int]:
        body = require_object(_json_body())
        return jsonify(runtime.training.train_from_export(body)), 201

    @app.get("/versions")
    def versions() -> Response:
        project = request.args.get("project")
        return jsonify({"versions": runtime.versions(project)})

    @app.get("/jobs")
    def jobs() -> Response:
        return jsonify({"jobs": runtime.training.jobs(request.args.get("project"))})

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> Response:
        return jsonify(runtime.training.job(job_id))

    @app.post("/jobs/<job_id>/cancel")
    def cancel_job(job_id: str) -> Response:
        return jsonify(runtime.training.cancel(job_id))

    @app.post("/bulk")
    def bulk_start() -> tuple[Response, int]:
        body = require_object(_json_body())
        auto_label, calibrate = body.get("auto_label"), body.get("calibrate", False)
        if not isinstance(calibrate, bool) or (calibrate and auto_label is not None):
            raise BadRequest("'calibrate' must be true or false, and cannot go with 'auto_label'")
        options = None if auto_label is None else AutoLabelOptions.from_json(auto_label)
        job, created = runtime.bulk.start(body.get("project"), auto_label=options, calibrate=calibrate)
        return jsonify(job), 201 if created else 200

    @app.get("/bulk")
    def bulk_jobs() -> Response:
        return jsonify({"jobs": runtime.bulk.jobs(request.args.get("project"))})

    @app.get("/bulk/<job_id>")
    def bulk_job(job_id: str) -> Response:
        return jsonify(runtime.bulk.job(job_id))

    @app.post("/bulk/<job_id>/cancel")
    def bulk_cancel(job_id: str) -> Response:
        return jsonify(runtime.bulk.cancel(job_id))

    @app.post("/bulk/<job_id>/undo")
    def bulk_undo(job_id: str) -> tuple[Response, int]:
        return jsonify(runtime.bulk.undo(job_id, background=True)), 202

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), mimetype=metrics.content_type)

    return app
