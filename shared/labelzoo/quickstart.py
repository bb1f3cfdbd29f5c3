"""``labelzoo bootstrap``: the one-shot step of the docker-compose quickstarts.

It waits for Label Studio and the backend, creates a demo project with a label config the backend can
fill, connects the backend through Label Studio's API, and sets the project up so that the "Prediction
score" column and uncertainty sampling work at once. Label Studio matches both on the project's *model
version* setting, which it sets to the backend's **title** on connect (protocol §6), and refuses a
setting that names no backend and no stored prediction; so the backend is connected under the title of
the model version it reports, and the server renames it after each promoted version. Running it twice
changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from labelzoo.errors import LabelzooError
from labelzoo.media import LabelStudioClient

UNCERTAINTY_SAMPLING = "Uncertainty sampling"


@dataclass(frozen=True)
class DemoProject:
    project_id: int
    backend_id: int
    model_version: str
    url: str


def wait_until_up(url: str, *, timeout: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll ``url`` until it answers 200: services in a compose project start in any order."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        sleep(2)
    raise LabelzooError(f"{url} did not come up within {timeout:.0f} s (last: {last})")


def pick_label_config(backend_folder: Path) -> Path:
    """The backend's demo config: ``configs/quickstart.xml``, else its first example config."""
    for candidate in (backend_folder / "configs" / "quickstart.xml", backend_folder / "label_config.xml"):
        if candidate.is_file():
            return candidate
    examples = sorted((backend_folder / "configs").glob("*.xml"))
    if not examples:
        raise LabelzooError(f"{backend_folder} has no example label config (configs/*.xml or label_config.xml)")
    return examples[0]


def bootstrap(
    client: LabelStudioClient,
    *,
    backend_url: str,
    backend_name: str,
    label_config: str,
    interactive: bool,
    public_url: str,
) -> DemoProject:
    title = f"labelzoo {backend_name} demo"
    project = _find_project(client, title) or client.post_json(
        "/api/projects/", {"title": title, "label_config": label_config}
    )
    project_id = int(project["id"])
    version = _backend_version(backend_url, project_id, label_config)
    backend = _find_backend(client, project_id, backend_url) or client.post_json(
        "/api/ml/", {"url": backend_url, "project": project_id, "title": version, "is_interactive": interactive}
    )
    client.request(
        "PATCH",
        f"/api/projects/{project_id}/",
        json={"model_version": backend["title"], "show_collab_predictions": True, "sampling": UNCERTAINTY_SAMPLING},
    )
    return DemoProject(project_id, int(backend["id"]), version, f"{public_url.rstrip('/')}/projects/{project_id}")


def _find_project(client: LabelStudioClient, title: str) -> dict[str, Any] | None:
    body = client.get_json("/api/projects/", params={"title": title, "page_size": 100})
    projects = body.get("results", body) if isinstance(body, dict) else body
    return next((p for p in projects if p.get("title") == title), None)


def _find_backend(client: LabelStudioClient, project_id: int, url: str) -> dict[str, Any] | None:
    backends = client.get_json("/api/ml/", params={"project": project_id})
    return next((b for b in backends if b.get("url", "").rstrip("/") == url.rstrip("/")), None)


def _backend_version(backend_url: str, project_id: int, label_config: str) -> str:
    """Ask the backend itself, as Label Studio does: the version its predictions will carry."""
    response = requests.post(
        backend_url.rstrip("/") + "/setup",
        json={"project": f"{project_id}.0", "schema": label_config, "extra_params": None},
        timeout=30,
    )
    if response.status_code != 200:
        raise LabelzooError(f"the backend refused the demo label config: {response.text}")
    return str(response.json()["model_version"])
