"""The built wheel on its own, as a new user installs it: no checkout, only ``pip install labelzoo[template]``.

In a fresh virtualenv, ``labelzoo backends`` lists the built-in backends, ``labelzoo new`` scaffolds a
backend whose own test passes, a backend pip-installed from its own package (an entry point in the
``labelzoo.backends`` group) is listed and serves by name, and neither ``[template]`` nor ``[spacy]`` pulls torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
PIP = ["-m", "pip", "--disable-pip-version-check"]

pytestmark = pytest.mark.slow

ACME_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-backend"
version = "1.0"
dependencies = ["labelzoo"]

[project.entry-points."labelzoo.backends"]
acme = "acme_backend.model"

[tool.setuptools]
packages = ["acme_backend"]
"""


def run(*cmd: str | Path, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh virtualenv with the wheel's ``[template]`` extra and pytest; returns (python, wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    run(sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "-w", root / "dist", REPO, cwd=root)
    (wheel,) = (root / "dist").glob("labelzoo-*.whl")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    python = root / "venv" / "bin" / "python"
    run(python, *PIP, "install", "--quiet", "-c", CONSTRAINTS, f"{wheel}[template]", "pytest", cwd=root)
    return python, wheel


def labelzoo(python: Path, *args: str, cwd: Path) -> str:
    return run(python.parent / "labelzoo", *args, cwd=cwd)


def test_the_wheel_lists_the_built_in_backends_and_scaffolds_one_whose_test_passes(
    venv: tuple[Path, Path], tmp_path: Path
) -> None:
    python, _ = venv
    listing = labelzoo(python, "backends", cwd=tmp_path)
    template = next(line for line in listing.splitlines() if line.startswith("template"))
    assert "<Choices> on <Text>" in template and "learns" in template
    assert {line.split()[0] for line in listing.splitlines() if line and not line[0].isspace()} == {
        "gliner", "grounding", "ocr", "sam", "sam2", "spacy", "template", "whisper", "yolo"}
    assert "pip install 'labelzoo[yolo]'" in listing  # not installed: the listing says how to get it

    labelzoo(python, "new", "my_backend", cwd=tmp_path)
    files = {p.name for p in (tmp_path / "my_backend").iterdir()}
    assert {"model.py", "test_my_backend.py", "README.md", "Dockerfile", "requirements.txt"} <= files
    assert "my_backend" in (tmp_path / "my_backend" / "README.md").read_text().splitlines()[0]
    tested = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "my_backend", cwd=tmp_path)
    assert "1 passed" in tested


def test_a_backend_installed_from_its_own_package_serves_by_name(venv: tuple[Path, Path], tmp_path: Path) -> None:
    python, _ = venv
    labelzoo(python, "new", "scaffold", cwd=tmp_path)
    package = tmp_path / "acme" / "acme_backend"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text((tmp_path / "scaffold" / "model.py").read_text())
    (tmp_path / "acme" / "pyproject.toml").write_text(ACME_PYPROJECT)
    run(python, *PIP, "install", "--quiet", "--no-deps", tmp_path / "acme", cwd=tmp_path)

    acme = next(line for line in labelzoo(python, "backends", cwd=tmp_path).splitlines() if line.startswith("acme"))
    assert "<Choices> on <Text>" in acme
    port = free_port()
    server = subprocess.Popen([python.parent / "labelzoo", "serve", "acme", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env={**os.environ, "MODEL_DIR": str(tmp_path / "models")},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                if health["ready"]:  # /health answers while the model still loads (UP, not ready)
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert health is not None, server.stdout.read().decode() if server.poll() is not None else "no answer"
        assert (health["backend"], health["model_class"], health["ready"]) == ("acme", "TextClassifier", True)
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.parametrize("extra", ["template", "spacy"])
def test_the_template_and_spacy_extras_pull_no_torch(venv: tuple[Path, Path], tmp_path: Path, extra: str) -> None:
    python, wheel = venv
    report = tmp_path / "report.json"
    run(python, *PIP, "install", "--quiet", "--dry-run", "--ignore-installed", "--report", report, "-c", CONSTRAINTS,
        f"{wheel}[{extra}]", cwd=tmp_path)
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "labelzoo" in names and (extra != "spacy" or "spacy" in names)
    assert not {n for n in names if n == "torch" or n.startswith(("nvidia-", "triton"))}, names
