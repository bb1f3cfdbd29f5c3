"""The images built and run with podman, as the image tests use them.

Builds use the Docker image format (podman drops ``HEALTHCHECK`` otherwise) and the host's network, as the
containers do: they listen on a free port of the host (``PORT``), since this kind of machine has no iptables
for podman's bridge network. Without systemd podman schedules no health checks; ``Container.check()`` runs
the image's one, as its timer would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.conftest import REPO, free_port

PODMAN = shutil.which("podman")
BASE_IMAGE = "labelzoo-base:local"
BUILD_TIMEOUT = 900


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert PODMAN, "podman is not installed"
    out = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


def build(dockerfile: str, tag: str, context: Path = REPO) -> float:
    """Builds ``dockerfile`` (relative to ``context``) as ``tag``; returns the seconds it took."""
    started = time.monotonic()
    podman("build", "--format", "docker", "--network", "host", "-f", str(context / dockerfile), "-t", tag,
           str(context), timeout=BUILD_TIMEOUT)
    return time.monotonic() - started


def build_backend(name: str) -> str:
    """The base image, then ``labelzoo-<name>`` from ``backends/<name>/Dockerfile``; returns the tag."""
    build("backends/base.Dockerfile", BASE_IMAGE)
    build(f"backends/{name}/Dockerfile", f"labelzoo-{name}")
    return f"labelzoo-{name}"


class Volume:
    def __init__(self) -> None:
        self.name = f"labelzoo-test-{uuid.uuid4().hex[:8]}"
        podman("volume", "create", self.name)

    def remove(self) -> None:
        podman("volume", "rm", "--force", self.name, check=False)


class Container:
    """``podman run -d`` of an image with ``volume`` on /data, listening on a free port of the host."""

    def __init__(self, image: str, volume: Volume, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = [f"--env={key}={value}" for key, value in {"PORT": str(self.port), **env}.items()]
        self.id = podman("run", "--detach", "--network", "host", f"--volume={volume.name}:/data", *settings,
                         image).stdout.strip()
        self.started = time.monotonic()

    def health(self) -> tuple[int, dict[str, Any]]:
        response = requests.get(self.url + "/health", timeout=5)
        return response.status_code, response.json()

    def wait_answering(self, timeout: float = 120) -> dict[str, Any]:
        """The first /health answer the server gives once its model has loaded or failed to."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _, body = self.health()
                if body["ready"] or body["model"]["state"] == "failed":
                    return body
            except requests.RequestException:
                assert self.inspect("{{.State.Running}}") == "true", f"the container exited:\n{self.logs()}"
            time.sleep(0.3)
        raise AssertionError(f"no answer from {self.url}/health after {timeout} s:\n{self.logs()}")

    def post(self, path: str, body: dict[str, Any], timeout: float = 30) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=timeout)

    def exec(self, *command: str, user: str | None = None) -> str:
        return podman("exec", *(["--user", user] if user else []), self.id, *command).stdout.strip()

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.id).stdout.strip()

    def check(self) -> str:
        """Runs the image's HEALTHCHECK once; the container's health status after it."""
        podman("healthcheck", "run", self.id, check=False)
        return self.inspect("{{.State.Health.Status}}")

    def wait_out_start_period(self) -> None:
        """Failed checks count only after the HEALTHCHECK's start period."""
        image = json.loads(podman("inspect", "--format", "{{json .Config.Healthcheck}}", self.id).stdout)
        left = image["StartPeriod"] / 1e9 - (time.monotonic() - self.started)
        time.sleep(max(left, 0) + 1)

    def logs(self) -> str:
        out = podman("logs", self.id, check=False)
        return out.stdout + out.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "10", self.id, check=False)


def wait_for_job(container: Container, project: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = requests.get(container.url + "/jobs", params={"project": project}, timeout=5).json()["jobs"]
        if jobs and jobs[0]["status"] in ("succeeded", "failed", "cancelled", "skipped"):
            return jobs[0]
        time.sleep(0.5)
    raise AssertionError(f"no training job ended in {timeout} s:\n{container.logs()}")
