"""A backend made by ``labelzoo new`` builds from the Dockerfile it was given, on the base image, and serves.

Its build context is a copy of what the Dockerfiles copy from a checkout, with the new backend beside the
built-in ones' base, so that nothing is added to this checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.core.test_learning_e2e import predict_body
from tests.images.podman import BASE_IMAGE, PODMAN, build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed: `make podman` installs it"),
]

CHECKOUT_FILES = ("pyproject.toml", "setup.py", "README.md", "constraints.txt", ".dockerignore",
                  "backends/base.Dockerfile")


def test_a_new_backends_dockerfile_builds_and_serves_it(tmp_path, started) -> None:
    context = tmp_path / "checkout"
    (context / "backends").mkdir(parents=True)
    for name in CHECKOUT_FILES:
        shutil.copy(REPO / name, context / name)
    shutil.copytree(REPO / "shared", context / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "labelzoo.cli", "new", "backends/reviews"], cwd=context, check=True,
                   capture_output=True, timeout=60)

    build("backends/base.Dockerfile", BASE_IMAGE, context)
    build("backends/reviews/Dockerfile", "labelzoo-reviews", context)
    container, _ = started("labelzoo-reviews")
    health = container.wait_answering()
    assert (health["status"], health["backend"]) == ("UP", "reviews"), health
    answer = container.post("/predict", predict_body(["A lovely film."]))
    assert answer.status_code == 200 and answer.json()["model_version"] == "template-tfidf", answer.text
