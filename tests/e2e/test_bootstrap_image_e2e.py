"""The quickstart's one-shot step as `make up-spacy` runs it, but without Label Studio's image: the bootstrap
image (compose/bootstrap.Dockerfile) runs the command of compose/label-studio.yml against a real Label Studio
and the spaCy image, both with podman. The compose network's host names (``label-studio``, ``spacy``) become
this machine's addresses: the containers share the host's network (see tests/images/podman.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import REPO
from tests.images.podman import PODMAN, Container, Volume, build, build_backend, podman
from tests.test_packaging import interpolate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed: `make podman` installs it"),
]


@pytest.fixture
def spacy_container(label_studio) -> Iterator[Container]:
    volume = Volume()
    container = Container(build_backend("spacy"), volume, LABEL_STUDIO_URL=label_studio.url,
                          LABEL_STUDIO_API_KEY=label_studio.pat)
    try:
        yield container
    finally:
        container.remove()
        volume.remove()


def test_the_bootstrap_image_connects_the_backend_image_to_a_demo_project(label_studio, ls_api, spacy_container):
    build("compose/bootstrap.Dockerfile", "labelzoo-bootstrap")
    port = label_studio.url.rsplit(":", 1)[1]
    env = {"BACKEND": "spacy", "LABEL_STUDIO_PORT": port, "LABEL_STUDIO_USERNAME": "e2e@example.com"}
    service = yaml.safe_load(interpolate((REPO / "compose" / "label-studio.yml").read_text(), env))["services"]
    step = service["bootstrap"]
    command = [part.replace("http://spacy:9090", spacy_container.url) for part in step["command"]]
    assert command != step["command"], "the compose command no longer names the backend as http://spacy:9090"
    settings = {**step["environment"], "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.pat}

    out = podman("run", "--rm", "--network", "host", *(f"--env={k}={v}" for k, v in settings.items()),
                 "labelzoo-bootstrap", *command, timeout=300)
    assert "log in as e2e@example.com" in out.stdout, out.stdout + out.stderr
    assert podman("run", "--rm", "--network", "none", "labelzoo-bootstrap", "id", "-u").stdout.strip() == "1000"

    (project,) = [p for p in ls_api.get("/api/projects/", params={"page_size": 1000})["results"]
                  if p["title"] == "labelzoo spacy demo"]
    try:
        assert f"{label_studio.url.replace('127.0.0.1', 'localhost')}/projects/{project['id']}" in out.stdout
        (backend,) = ls_api.get("/api/ml/", params={"project": project["id"]})
        base = spacy_container.health()[1]["model"]["base_version"]
        assert (backend["url"], backend["state"], backend["title"]) == (spacy_container.url, "CO", base)
        assert ls_api.project(project["id"])["model_version"] == base
    finally:
        ls_api.request("DELETE", f"/api/projects/{project['id']}/", expect=(204,))
