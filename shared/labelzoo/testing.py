"""Helpers for a backend's own tests: load its class from its folder, or talk to it over HTTP in-process.

::

    from labelzoo.testing import backend_class, backend_client

    Model = backend_class(Path(__file__).parent)          # the folder's Backend subclass
    with backend_client(Path(__file__).parent, {"MODEL_DIR": str(tmp_path)}) as client:
        client.post("/predict", json={...})                # Flask's test client, the real server
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flask.testing import FlaskClient

from labelzoo.backend import Backend
from labelzoo.errors import LabelzooError
from labelzoo.registry import load_backend
from labelzoo.runtime import Runtime
from labelzoo.server.app import create_app
from labelzoo.settings import Settings


def backend_class(folder: Path | str) -> type[Backend]:
    """The :class:`~labelzoo.Backend` subclass defined in ``folder/model.py``."""
    return load_backend(str(folder)).cls


@contextmanager
def backend_client(folder: Path | str, env: Mapping[str, str], *, ready_within: float = 60.0) -> Iterator[FlaskClient]:
    """The server around the backend in ``folder``, with settings from ``env`` only (not this process's
    environment), its model loaded; closed on exit."""
    runtime = Runtime(load_backend(str(folder)), Settings.from_env(dict(env)))
    runtime.start()
    try:
        if not runtime.models.wait_ready(ready_within):
            raise LabelzooError(f"the backend in {folder} did not load within {ready_within:g} s: {runtime.health()}")
        yield create_app(runtime).test_client()
    finally:
        runtime.close()
