"""``labelzoo serve`` for a benchmark: one gunicorn worker on loopback, returned once its model is ready."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from tests.conftest import free_port


def start_server(backend: Path, env: Mapping[str, str], log: Path | None, *, port: int | None = None,
                 timeout: float = 120) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    """The server of the backend folder with exactly ``env``, its output in ``log`` (None: discarded), and its
    URL; a server that exits or is not ready within ``timeout`` seconds raises, with the log's end."""
    port = port or free_port()
    command = [sys.executable, "-m", "labelzoo.cli", "serve", str(backend), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    if log is None:
        proc = subprocess.Popen(command, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{url}/health", timeout=1).json().get("ready"):
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"the server was not ready within {timeout:g} s:\n{tail(log)}")


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children: its workers."""
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-4000:] if log is not None else "(output discarded)"
