"""Pull a project's annotations from Label Studio (START_TRAINING carries none, protocol §1.8 / P10)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from labelzoo.backend import TrainingExample
from labelzoo.media import UpstreamError
from labelzoo.training.events import records_from_export

if TYPE_CHECKING:
    from labelzoo.media import LabelStudioClient

#: an export of a big project takes a while to build: wait longer than for a media download
EXPORT_READ_TIMEOUT = 300.0
#: Label Studio checks a backend before it saves a change to it, calling the backend's /health (1 s) and /setup
#: (3 s), and answers 400 when either misses; a backend busy finishing a training can miss them. Setting the
#: same title again is harmless, so a rename is tried this often, after pauses of 1 s, 2 s…
RENAME_ATTEMPTS = 3
RENAME_PAUSE_S = 1.0


def fetch_annotations(client: LabelStudioClient, project: str) -> list[TrainingExample]:
    """Every annotation of the project's annotated tasks, through the JSON export (LS 1.23)."""
    tasks = client.get_json(
        f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "false"},
        read_timeout=EXPORT_READ_TIMEOUT,
    )
    return records_from_export(tasks, where="the Label Studio export")


def rename_backends_titled(client: LabelStudioClient, project: str, old_version: str, new_version: str) -> int:
    """Rename the project's ML backends titled ``old_version`` to ``new_version``; returns how many.

    Label Studio's "Prediction score" column and uncertainty sampling only count predictions whose
    ``model_version`` equals the project's model-version setting, which is a backend's *title* while a
    live backend is selected (protocol §6). Naming the backend after the model version (as ``labelzoo
    bootstrap`` does) makes them match; renaming it after each promotion keeps them matching, and Label
    Studio renames the project's setting along with the backend. Backends with other titles are left alone.
    """
    renamed = 0
    for backend in client.get_json("/api/ml/", params={"project": project}):
        if backend.get("title") == old_version:
            # Label Studio's PATCH needs url and project too (it answers 500 without them)
            body = {"title": new_version, "url": backend["url"], "project": int(project)}
            _patch(client, f"/api/ml/{backend['id']}", body)
            renamed += 1
    return renamed


def _patch(client: LabelStudioClient, path: str, body: dict[str, Any]) -> None:
    """PATCH ``body``, again after a 400 (Label Studio's check of the backend failed) or a timeout."""
    for attempt in range(1, RENAME_ATTEMPTS + 1):
        try:
            client.request("PATCH", path, json=body)
            return
        except UpstreamError as exc:
            if attempt == RENAME_ATTEMPTS or not (exc.upstream_status == 400 or exc.code == "upstream_timeout"):
                raise
            time.sleep(RENAME_PAUSE_S * attempt)
