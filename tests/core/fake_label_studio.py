"""A fake Label Studio and a fake file host, served over real HTTP on 127.0.0.1, for tests.

Both run a small Flask app under werkzeug in a daemon thread on an ephemeral port and log every
request (method, path, query, headers) so tests can assert on what was sent. Use them as context
managers::

    with FakeLabelStudio() as ls, FakeFileHost() as s3:
        value = ls.add_upload(1, "cat.jpg", b"...")
        ...
        assert ls.requests_to("/data/upload/")[0].authorization == f"Token {ls.legacy_token}"

:class:`FakeLabelStudio` plays the parts of Label Studio a backend talks to (protocol §2): uploads,
local files, cloud presign/resolve, PAT refresh with short-lived access tokens, whoami and a paginated
project list. Its behaviour is set through plain attributes (see the constructor); further routes can
be added to ``app`` before :meth:`RecordingServer.start`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_S = TypeVar("_S", bound="RecordingServer")


def make_jwt(payload: dict[str, Any]) -> str:
    """An unsigned-looking JWT (the signature is fake: clients never verify it)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.ZmFrZS1zaWduYXR1cmU"


def jwt_claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # full path, sub-path prefix included
    query: str  # raw query string
    headers: dict[str, str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # lets responses without Content-Length use chunked encoding

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class RecordingServer:
    """A Flask app on 127.0.0.1:<ephemeral port> in a thread, recording every request it receives."""

    def __init__(self, name: str) -> None:
        self.app = Flask(name)
        self.requests: list[RecordedRequest] = []
        self.delays: dict[str, float] = {}  # path → seconds to wait before answering
        self.fail_next: dict[str, list[int]] = {}  # path → statuses to answer first (e.g. [503])
        # path → statuses to answer after the request was handled (its effect stays: a reply lost on the way)
        self.fail_after: dict[str, list[int]] = {}
        self.retry_after: str | None = None  # Retry-After header of the injected statuses, if set
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.app.before_request(self._before)
        self.app.after_request(self._after)

    # lifecycle
    def start(self: _S) -> _S:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        # A short poll interval: shutdown() waits up to one interval, and tests start many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.app.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers sleeping in a delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def url(self) -> str:
        return self.origin

    # request log
    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        with self._log_lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    def _before(self) -> Response | None:
        with self._log_lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    dict(request.headers.items()),
                )
            )
            pending = self.fail_next.get(request.path)
            status = pending.pop(0) if pending else None
        delay = self.delays.get(request.path)
        if delay:
            self._stopping.wait(delay)
        if status is not None:
            return self._injected(status)
        return None

    def _after(self, response: Response) -> Response:
        with self._log_lock:
            pending = self.fail_after.get(request.path)
            status = pending.pop(0) if pending else None
        return response if status is None else self._injected(status)

    def _injected(self, status: int) -> Response:
        response = Response(f"injected {status}", status=status)
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response

    @staticmethod
    def _file_response(data: bytes, chunked: bool) -> Response:
        if not chunked:
            return Response(data, mimetype="application/octet-stream")

        def body() -> Iterator[bytes]:
            for start in range(0, len(data), 4096):
                yield data[start : start + 4096]

        return Response(body(), mimetype="application/octet-stream")


class FakeFileHost(RecordingServer):
    """Any other host: serves ``files`` (path → bytes) and ``redirects`` (path → Location) at exact paths."""

    def __init__(self) -> None:
        super().__init__("fake-file-host")
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.chunked: set[str] = set()
        self.app.add_url_rule("/<path:path>", "serve", self._serve)

    def _serve(self, path: str) -> Any:
        full = "/" + path
        if full in self.redirects:
            return redirect(self.redirects[full], code=302)
        if full not in self.files:
            return Response("no such file", status=404)
        return self._file_response(self.files[full], full in self.chunked)


class FakeLabelStudio(RecordingServer):
    """Label Studio as a backend sees it.

    * ``prefix``: a sub-path deployment ("/ls"); every route lives under it.
    * Auth: ``Token <legacy_token>`` (if ``legacy_tokens_enabled``) or ``Bearer <access>`` for an access
      token issued by ``/api/token/refresh/`` for ``pat`` and not expired (``access_ttl`` seconds, float
      ``exp``). :meth:`revoke_access_tokens` makes issued access tokens stale. Unauthenticated requests
      get 401, or a 302 to the login page when ``login_redirect`` is set.
    * ``uploads`` ("<project>/<name>" → bytes) at ``/data/upload/…``; ``local_files`` (d → bytes) at
      ``/data/local-files/?d=`` (403 unless ``local_files_serving_enabled``); ``presign`` (cloud URI →
      Location, answered 303) and ``cloud_files`` (cloud URI → bytes, streamed) at
      ``/tasks/<id>/presign/?fileuri=<base64url>``. Paths in ``chunked`` are sent without
      Content-Length.
    * Projects and their tasks: ``projects`` (dicts with ``id`` and ``label_config``) at
      ``/api/projects/`` and ``/api/projects/<id>``; ``tasks`` (id → task, see :meth:`add_tasks`) in the
      Data Manager's list ``/api/tasks/?project=&page=&page_size=&fields=all&query=`` (``selectedItems``
      honoured, 404 past the last page); ``POST /api/projects/<id>/import/predictions`` stores
      predictions on the tasks (400 for a task id not in the project); ``/api/predictions/?project=``;
      ``POST /api/predictions/`` (one, answered with its id); ``POST /api/tasks/<id>/annotations/`` (409 for a
      ``unique_id`` seen before, as Label Studio); ``GET``, ``PATCH`` and ``DELETE /api/annotations/<id>/``.
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        legacy_token: str = "0123456789abcdef0123456789abcdef01234567",
        legacy_tokens_enabled: bool = True,
        access_ttl: float = 300.0,
        local_files_serving_enabled: bool = True,
        login_redirect: bool = False,
    ) -> None:
        super().__init__("fake-label-studio")
        self.prefix = prefix.rstrip("/")
        self.legacy_token = legacy_token
        self.legacy_tokens_enabled = legacy_tokens_enabled
        self.access_ttl = access_ttl
        self.local_files_serving_enabled = local_files_serving_enabled
        self.login_redirect = login_redirect
        self.pat = make_jwt(
            {"token_type": "refresh", "exp": int(time.time()) + 10**9, "jti": uuid.uuid4().hex}
        )
        self.uploads: dict[str, bytes] = {}
        self.local_files: dict[str, bytes] = {}
        self.presign: dict[str, str] = {}
        self.cloud_files: dict[str, bytes] = {}
        self.chunked: set[str] = set()
        self.projects: list[dict[str, Any]] = []
        self.tasks: dict[int, dict[str, Any]] = {}
        self._next_ids = {"task": 1, "prediction": 1, "annotation": 1000}
        self.unique_ids: set[str] = set()
        self.user = {"id": 1, "email": "ml@example.com", "username": "ml"}
        self._access_tokens: set[str] = set()
        p = self.prefix
        rules: list[tuple[str, Callable[..., Any], list[str]]] = [
            ("/api/token/refresh/", self._refresh, ["POST"]),
            ("/api/current-user/whoami", self._whoami, ["GET"]),
            ("/api/projects/", self._projects, ["GET"]),
            ("/api/projects/<int:project_id>", self._project, ["GET"]),
            ("/api/projects/<int:project_id>/import/predictions", self._import_predictions, ["POST"]),
            ("/api/tasks/", self._task_list, ["GET"]),
            ("/api/predictions/", self._predictions, ["GET"]),
            ("/api/predictions/", self._create_prediction, ["POST"]),
            ("/api/tasks/<int:task_id>/annotations/", self._create_annotation, ["POST"]),
            ("/api/annotations/<int:annotation_id>/", self._annotation, ["GET", "PATCH", "DELETE"]),
            ("/data/upload/<path:name>", self._upload, ["GET"]),
            ("/data/local-files/", self._local_files, ["GET"]),
            ("/tasks/<int:task_id>/presign/", self._presign, ["GET"]),
            ("/user/login/", self._login_page, ["GET"]),
        ]
        for rule, view, methods in rules:
            self.app.add_url_rule(p + rule, view.__name__, view, methods=methods)

    @property
    def url(self) -> str:
        """What LABEL_STUDIO_URL should be set to (with the sub-path)."""
        return self.origin + self.prefix

    def add_upload(self, project_id: int, name: str, data: bytes) -> str:
        """Store an upload; returns the task-data value Label Studio would write for it."""
        stored = f"{uuid.uuid4().hex[:8]}-{name}"
        self.uploads[f"{project_id}/{stored}"] = data
        return f"{self.prefix}/data/upload/{project_id}/{stored}"

    def add_project(self, project_id: int, label_config: str) -> None:
        self.projects.append({"id": project_id, "title": f"project {project_id}", "label_config": label_config})

    def add_tasks(self, project_id: int, datas: list[dict[str, Any]]) -> list[int]:
        """Create tasks with these data objects; returns their ids."""
        ids = []
        with self._log_lock:
            for data in datas:
                task_id = self._next_ids["task"]
                self._next_ids["task"] += 1
                self.tasks[task_id] = {"id": task_id, "project": project_id, "data": data, "annotations": [],
                                       "predictions": [], "meta": {}}
                ids.append(task_id)
        return ids

    def predictions_of(self, project_id: int) -> list[dict[str, Any]]:
        with self._log_lock:
            return [p for t in self.tasks.values() if t["project"] == project_id for p in t["predictions"]]

    def revoke_access_tokens(self) -> None:
        self._access_tokens.clear()

    @property
    def refresh_calls(self) -> int:
        return len(self.requests_to(self.prefix + "/api/token/refresh/"))

    # auth
    def _authenticated(self) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Token":
            return self.legacy_tokens_enabled and token == self.legacy_token
        if scheme == "Bearer" and token in self._access_tokens:
            return bool(jwt_claims(token)["exp"] > time.time())
        return False

    def _denied(self) -> Any:
        if self.login_redirect:
            return redirect(f"{self.prefix}/user/login/?next={request.path}", code=302)
        return jsonify(detail="Authentication credentials were not provided."), 401

    # views
    def _refresh(self) -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("refresh") != self.pat:
            return jsonify(detail="Token is invalid or expired", code="token_not_valid"), 401
        access = make_jwt(
            {"token_type": "access", "exp": time.time() + self.access_ttl, "jti": uuid.uuid4().hex}
        )
        self._access_tokens.add(access)
        return jsonify(access=access)

    def _whoami(self) -> Any:
        return jsonify(self.user) if self._authenticated() else self._denied()

    def _projects(self) -> Any:
        if not self._authenticated():
            return self._denied()
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", 30))
        start = (page - 1) * size
        if page > 1 and start >= len(self.projects):
            return jsonify(detail="Invalid page."), 404
        has_next = start + size < len(self.projects)
        return jsonify(
            count=len(self.projects),
            next=f"{self.url}/api/projects/?page={page + 1}" if has_next else None,
            previous=None,
            results=self.projects[start : start + size],
        )

    def _project(self, project_id: int) -> Any:
        if not self._authenticated():
            return self._denied()
        found = next((p for p in self.projects if p["id"] == project_id), None)
        return jsonify(found) if found else (jsonify(detail="Not found."), 404)

    def _task_list(self) -> Any:
        if not self._authenticated():
            return self._denied()
        project = int(request.args.get("project", 0))
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", 100))
        query = json.loads(request.args.get("query", "{}"))
        selected = query.get("selectedItems", {"all": True})
        with self._log_lock:
            tasks = [t for _, t in sorted(self.tasks.items()) if t["project"] == project]
            if not selected.get("all", True):
                included = set(selected.get("included", []))
                tasks = [t for t in tasks if t["id"] in included]
            start = (page - 1) * size
            if page > 1 and start >= len(tasks):
                return jsonify(detail="Invalid page."), 404
            chosen = [json.loads(json.dumps(t)) for t in tasks[start:start + size]]
        if request.args.get("fields") != "all":
            for task in chosen:
                del task["annotations"], task["predictions"]
        return jsonify(tasks=chosen, total=len(tasks), total_annotations=0, total_predictions=0)

    def _import_predictions(self, project_id: int) -> Any:
        if not self._authenticated():
            return self._denied()
        items = request.get_json()
        with self._log_lock:
            for item in items:
                task = self.tasks.get(item.get("task"))
                if task is None or task["project"] != project_id:
                    return jsonify(detail="Validation error", validation_errors={"non_field_errors": [
                        f"{item} contains invalid \"task\" field"]}), 400
            for item in items:
                prediction = {"id": self._next_ids["prediction"], "task": item["task"], "project": project_id,
                              "result": item.get("result"), "score": item.get("score"),
                              "model_version": item.get("model_version", "undefined")}
                self._next_ids["prediction"] += 1
                self.tasks[item["task"]]["predictions"].append(prediction)
        return jsonify(created=len(items)), 201

    def _predictions(self) -> Any:
        if not self._authenticated():
            return self._denied()
        return jsonify(self.predictions_of(int(request.args.get("project", 0))))

    def _create_prediction(self) -> Any:
        if not self._authenticated():
            return self._denied()
        item = request.get_json()
        with self._log_lock:
            task = self.tasks.get(item.get("task"))
            if task is None:
                return jsonify(detail="Invalid task"), 400
            prediction = {"id": self._next_ids["prediction"], "task": task["id"], "project": task["project"],
                          "result": item.get("result"), "score": item.get("score"),
                          "model_version": item.get("model_version", "undefined")}
            self._next_ids["prediction"] += 1
            task["predictions"].append(prediction)
        return jsonify(prediction), 201

    def _create_annotation(self, task_id: int) -> Any:
        if not self._authenticated():
            return self._denied()
        body = request.get_json()
        with self._log_lock:
            task = self.tasks.get(task_id)
            if task is None:
                return jsonify(detail="Not found."), 404
            unique = body.pop("unique_id", None)
            if unique is not None and unique in self.unique_ids:
                return jsonify(detail="Annotation with this unique id already exists"), 409
            if unique is not None:
                self.unique_ids.add(unique)
            annotation = {**body, "id": self._next_ids["annotation"], "task": task_id, "project": task["project"],
                          "completed_by": self.user["id"]}
            self._next_ids["annotation"] += 1
            task["annotations"].append(annotation)
        return jsonify(annotation), 201

    def find_annotation(self, annotation_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The task holding the annotation, and the annotation."""
        for task in self.tasks.values():
            for annotation in task["annotations"]:
                if annotation.get("id") == annotation_id:
                    return task, annotation
        return None

    def _annotation(self, annotation_id: int) -> Any:
        if not self._authenticated():
            return self._denied()
        with self._log_lock:
            found = self.find_annotation(annotation_id)
            if found is None:
                return jsonify(detail="Not found."), 404
            task, annotation = found
            if request.method == "DELETE":
                task["annotations"].remove(annotation)
                return "", 204
            if request.method == "PATCH":
                annotation.update(request.get_json())
            return jsonify(annotation)

    def _upload(self, name: str) -> Any:
        if not self._authenticated():
            return self._denied()
        if name not in self.uploads:
            return jsonify(detail="Not found."), 404
        return self._file_response(self.uploads[name], request.path in self.chunked)

    def _local_files(self) -> Any:
        if not self._authenticated():
            return self._denied()
        if not self.local_files_serving_enabled:
            return Response("Serving local files can be dangerous, so it's disabled by default.", status=403)
        # Decoded by hand like Label Studio: '+' stays a plus sign.
        raw = next((p[2:] for p in request.query_string.decode().split("&") if p.startswith("d=")), "")
        path = unquote(raw)
        if path not in self.local_files:
            return Response("not found", status=404)
        return self._file_response(self.local_files[path], request.path in self.chunked)

    def _presign(self, task_id: int) -> Any:
        if not self._authenticated():
            return self._denied()
        fileuri = request.args.get("fileuri", "")
        uri = base64.urlsafe_b64decode(fileuri + "=" * (-len(fileuri) % 4)).decode()
        if uri in self.presign:
            response = redirect(self.presign[uri], code=303)
            response.headers["Cache-Control"] = "max-age=3600"
            return response
        if uri in self.cloud_files:
            return self._file_response(self.cloud_files[uri], request.path in self.chunked)
        return jsonify(detail=f"no storage matches {uri} in task {task_id}'s project"), 404

    def _login_page(self) -> Any:
        return Response("<html><body>Log in to Label Studio</body></html>", mimetype="text/html")
