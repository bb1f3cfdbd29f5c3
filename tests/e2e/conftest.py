"""Fixtures for the end-to-end tests: one real Label Studio for the whole session, backends that reach it.

``label_studio``  the running Label Studio (skips every e2e test when ``.ls-venv`` is missing)
``ls_api``        its REST API, authenticated with the user's Personal Access Token
``ls_project``    ``ls_project(label_config, title=...)`` → a new :class:`LSProject`
``serve_for_ls``  ``serve_for_ls(backend_folder, **env)`` → a ``labelzoo serve`` (gunicorn) server with
                  ``LABEL_STUDIO_URL`` and the PAT as ``LABEL_STUDIO_API_KEY``, as a user would configure it
                  (``REFRESH_AFTER_PROMOTION`` off unless the test asks for it)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.e2e.label_studio import LS_VENV, LabelStudio, installed
from tests.e2e.ls_api import LabelStudioAPI
from tests.e2e.project import LSProject


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    if not installed():
        pytest.skip(f"Label Studio is not installed in {LS_VENV}: run `make ls-venv` (`make test` does it first)")
    ls = LabelStudio(tmp_path_factory.mktemp("label-studio")).start()
    try:
        yield ls
    finally:
        ls.stop()


@pytest.fixture
def ls_api(label_studio: LabelStudio) -> LabelStudioAPI:
    return label_studio.api()


@pytest.fixture
def ls_project(ls_api: LabelStudioAPI, request: pytest.FixtureRequest) -> Callable[..., LSProject]:
    def make(label_config: str, title: str | None = None, **fields: object) -> LSProject:
        return LSProject(ls_api, title or request.node.name[:50], label_config, **fields)

    return make


@pytest.fixture
def serve_for_ls(serve: Callable[..., Server], label_studio: LabelStudio) -> Callable[..., Server]:
    def start(backend: Path, **env: str) -> Server:
        # the refresh after a promotion posts predictions in the background: a test that counts Label Studio's
        # predictions right after its own Retrieve Predictions asks for it (test_refresh_e2e does)
        env.setdefault("REFRESH_AFTER_PROMOTION", "off")
        return serve(backend, LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=label_studio.pat, **env)

    return start
