"""Shared fixtures: a runtime around a backend folder, a Flask client, a gunicorn server on a real port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "core" / "fixtures"
KEYWORD_BACKEND = FIXTURES / "keyword_backend"
TEMPLATE_BACKEND = REPO / "backends" / "template"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a server under test: its own MODEL_DIR and media cache, no LS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "BASIC_AUTH", "REDIS"))}
    env.update(
        MODEL_DIR=str(tmp_path / "models"),
        MEDIA_CACHE_DIR=str(tmp_path / "media-cache"),
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., object]]:
    from labelzoo.registry import load_backend
    from labelzoo.runtime import Runtime
    from labelzoo.settings import Settings

    made = []

    def make(backend: Path = KEYWORD_BACKEND, *, wait: bool = True, **env: str) -> Runtime:
        runtime = Runtime(load_backend(str(backend)), Settings.from_env(base_env(tmp_path, **env)))
        runtime.start()
        made.append(runtime)
        if wait:
            assert runtime.models.wait_ready(60), runtime.health()
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def make_client(make_runtime: Callable[..., object]) -> Callable[..., object]:
    from labelzoo.server.app import create_app

    def make(backend: Path = KEYWORD_BACKEND, **kwargs: object) -> object:
        return create_app(make_runtime(backend, **kwargs)).test_client()

    return make


class Server:
    """``labelzoo serve`` in a subprocess (gunicorn), talking HTTP on a real port."""

    def __init__(self, backend: Path, tmp_path: Path, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = base_env(tmp_path, **env)
        cmd = [sys.executable, "-m", "labelzoo.cli", "serve", str(backend), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(workers)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).json().get("ready"):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(backend: Path = KEYWORD_BACKEND, *, wait: bool = True, workers: int = 1, **env: str) -> Server:
        server = Server(backend, tmp_path, workers=workers, **env)
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def square_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A YOLOv8n trained once per test run to find the red squares of ``tests.backends.video_support``."""
    import tests.backends.yolo_support  # noqa: F401 - Ultralytics' offline environment, before it is imported
    from tests.backends.video_support import train_square_detector

    return train_square_detector(tmp_path_factory.mktemp("squares"))


@pytest.fixture(scope="session")
def colour_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A YOLOv8n-cls trained once per test run to tell the red squares of ``tests.backends.video_support`` from
    blue ones."""
    import tests.backends.yolo_support  # noqa: F401 - Ultralytics' offline environment, before it is imported
    from tests.backends.video_support import train_colour_classifier

    return train_colour_classifier(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="session")
def tiny_gliner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight GLiNER saved once per test run (``tests.backends.gliner_support``)."""
    from tests.backends.gliner_support import build_gliner

    return build_gliner(tmp_path_factory.mktemp("gliner"))


@pytest.fixture(scope="session")
def tiny_owl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight OWLv2 saved once per test run (``tests.backends.grounding_support``)."""
    from tests.backends.grounding_support import build_owl

    return build_owl(tmp_path_factory.mktemp("owl"))


@pytest.fixture(scope="session")
def tiny_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight Grounding DINO saved once per test run (``tests.backends.grounding_support``)."""
    from tests.backends.grounding_support import build_dino

    return build_dino(tmp_path_factory.mktemp("dino"))
