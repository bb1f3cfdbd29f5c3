"""A small client for Label Studio's REST API, authenticated with a Personal Access Token.

A PAT is a long-lived JWT *refresh* token: it is exchanged for a 5-minute access token at
``POST /api/token/refresh/`` and that is sent as ``Authorization: Bearer``. The client refreshes before
the access token expires and once more on a 401, as the Label Studio SDK does.

Paths are spelled exactly as Label Studio routes them: some need a trailing slash and some must not
have one (``/api/ml/<id>`` vs ``/api/tasks/<id>/``), and there is no automatic redirect between them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import requests

ACCESS_TOKEN_REUSE_SECONDS = 240  # the access token lives 300 s; take a new one a minute early


def stored_name(name: str) -> str:
    """The name Label Studio stores an upload under (Django's ``get_valid_filename``), less its hash prefix."""
    return re.sub(r"(?u)[^-\w.]", "", name.strip().replace(" ", "_"))


class LabelStudioError(AssertionError):
    """An unexpected status from Label Studio; the message holds the request and the response body."""


class LabelStudioAPI:
    def __init__(self, url: str, pat: str, timeout: float = 120) -> None:
        self.url = url.rstrip("/")
        self.pat = pat
        self.timeout = timeout
        self.session = requests.Session()
        self._access: str | None = None
        self._access_at = 0.0

    # transport ---------------------------------------------------------------------------------
    def _refresh(self) -> None:
        response = requests.post(self.url + "/api/token/refresh/", json={"refresh": self.pat}, timeout=10)
        if response.status_code != 200:
            raise LabelStudioError(f"PAT refresh failed: {response.status_code} {response.text[:500]}")
        self._access = str(response.json()["access"])
        self._access_at = time.monotonic()

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200, 201), **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON body (None when empty). Raise on an unexpected status."""
        kwargs.setdefault("timeout", self.timeout)
        for attempt in range(2):
            if self._access is None or time.monotonic() - self._access_at > ACCESS_TOKEN_REUSE_SECONDS:
                self._refresh()
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._access}"}
            response = self.session.request(method, self.url + path, headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._access = None
                continue
            break
        if response.status_code not in tuple(expect):
            raise LabelStudioError(f"{method} {path} → {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=body, **kwargs)

    # projects and tasks ------------------------------------------------------------------------
    def create_project(self, title: str, label_config: str, **fields: Any) -> dict[str, Any]:
        return self.post("/api/projects/", {"title": title, "label_config": label_config, **fields})

    def project(self, project: int) -> dict[str, Any]:
        return self.get(f"/api/projects/{project}/")

    def update_project(self, project: int, **fields: Any) -> dict[str, Any]:
        return self.patch(f"/api/projects/{project}/", fields)

    def import_tasks(self, project: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Import JSON tasks (``[{"data": {...}}]``); returns the new task ids in order."""
        answer = self.post(f"/api/projects/{project}/import", list(tasks), params={"return_task_ids": "true"})
        return [int(i) for i in answer["task_ids"]]

    def upload_files(self, project: int, paths: Sequence[Path]) -> list[dict[str, Any]]:
        """Upload files as the import dialog does: one task per file, its data a ``/data/upload/…`` URL.

        Step 1 stores the files (``commit_to_project=false``), step 2 turns them into tasks with
        ``files_as_tasks_list=false`` (so a ``.txt`` file is one task, not one task per line).
        """
        before = {t["id"] for t in self.tasks(project, fields="task_only")}
        files = [(f"file{i}", (path.name, path.read_bytes())) for i, path in enumerate(paths)]
        uploaded = self.request("POST", f"/api/projects/{project}/import", files=files,
                                params={"commit_to_project": "false"})
        ids = [int(i) for i in uploaded["file_upload_ids"]]
        self.post(f"/api/projects/{project}/reimport", {"file_upload_ids": ids, "files_as_tasks_list": False})
        new = [t for t in self.tasks(project) if t["id"] not in before]
        # the Data Manager shows the stored file name, "<8 hex>-<original name>": put tasks in upload order
        ordered = [next(t for t in new if str(t.get("file_upload")).endswith(f"-{stored_name(p.name)}")) for p in paths]
        assert len(ordered) == len(new) == len(paths), new
        return ordered

    def tasks(self, project: int, query: dict[str, Any] | None = None, fields: str = "all") -> list[dict[str, Any]]:
        """The Data Manager's task list (what its table shows: ``predictions_score``, ``total_predictions``…).

        ``query`` is the Data Manager's ``{"filters": …, "ordering": […], "selectedItems": …}``.
        """
        params: dict[str, Any] = {"project": project, "fields": fields, "page_size": 1000}
        if query is not None:
            params["query"] = json.dumps(query)
        return list(self.get("/api/tasks/", params=params)["tasks"])

    def task(self, task: int) -> dict[str, Any]:
        """Open a task (what the labelling page loads): may make Label Studio ask the backend to predict."""
        return self.get(f"/api/tasks/{task}/")

    def annotate(self, task: int, result: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        """Submit an annotation; Label Studio posts ANNOTATION_CREATED to the backend's /webhook meanwhile."""
        return self.post(f"/api/tasks/{task}/annotations/", {"result": result, **fields})

    def predictions(self, project: int | None = None, task: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"project": project, "task": task}.items() if v is not None}
        return list(self.get("/api/predictions/", params=params))

    def model_versions(self, project: int) -> Any:
        """The settings page's "model version" dropdown: backend titles and stored prediction versions."""
        return self.get(f"/api/projects/{project}/model-versions/",
                        params={"extended": "true", "include_live_models": "true"})

    def export(self, project: int) -> list[dict[str, Any]]:
        return list(self.get(f"/api/projects/{project}/export", params={"exportType": "JSON"}))

    def webhooks(self, project: int) -> list[dict[str, Any]]:
        return list(self.get("/api/webhooks/", params={"project": project}))

    # ML backends -------------------------------------------------------------------------------
    def connect_backend(self, project: int, url: str, title: str, **fields: Any) -> dict[str, Any]:
        """"Connect Model" in the project settings: Label Studio checks /health and /setup first."""
        return self.post("/api/ml/", {"project": project, "url": url, "title": title, **fields})

    def backend(self, backend: int) -> dict[str, Any]:
        return self.get(f"/api/ml/{backend}")

    def retrieve_predictions(self, project: int, task_ids: Sequence[int] | None = None) -> Any:
        """The Data Manager action "Retrieve Predictions" on the selected tasks (all when None)."""
        selected = {"all": True, "excluded": []} if task_ids is None else {"all": False, "included": list(task_ids)}
        return self.post("/api/dm/actions/", {"selectedItems": selected},
                         params={"id": "retrieve_tasks_predictions", "project": project})

    def train(self, backend: int) -> Any:
        """"Start Training": Label Studio 1.23 posts START_TRAINING to the backend's /webhook."""
        return self.post(f"/api/ml/{backend}/train", {})

    def interactive(self, backend: int, task: int, context: dict[str, Any]) -> Any:
        """What the editor's smart tools call (the backend must be connected with ``is_interactive``)."""
        return self.post(f"/api/ml/{backend}/interactive-annotating", {"task": task, "context": context})
