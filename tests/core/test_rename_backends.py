"""After a promotion the project's backends titled after the old version are renamed after the new one.

Label Studio checks a backend (its /health within 1 s, its /setup within 3 s) before it saves a change to it
and answers 400 when the check fails, which a backend busy finishing a training can cause: the rename is tried
again then, and after a timeout, but not after other errors.
"""

from __future__ import annotations

from typing import Any

import pytest

from labelzoo.media import UpstreamError
from labelzoo.training import labelstudio
from labelzoo.training.labelstudio import RENAME_ATTEMPTS, rename_backends_titled


class StubClient:
    """Label Studio's /api/ml/ for one project; PATCH fails with the given errors first, in order."""

    def __init__(self, failures: list[UpstreamError]) -> None:
        self.backends = [{"id": 1, "title": "v1", "url": "http://b:9090"}, {"id": 2, "title": "mine", "url": "x"}]
        self.failures = failures
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def get_json(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        assert (path, params) == ("/api/ml/", {"project": "7"})
        return self.backends

    def request(self, method: str, path: str, *, json: dict[str, Any]) -> None:
        assert method == "PATCH"
        self.patches.append((path, json))
        if self.failures:
            raise self.failures.pop(0)


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labelstudio, "RENAME_PAUSE_S", 0.0)


CHECK_FAILED = UpstreamError("400 from PATCH /api/ml/1: health check failed", upstream_status=400)
TIMEOUT = UpstreamError("no response within 30 s", code="upstream_timeout")
BODY = {"title": "v2", "url": "http://b:9090", "project": 7}


def test_only_the_backends_titled_after_the_old_version_are_renamed() -> None:
    client = StubClient([])
    assert rename_backends_titled(client, "7", "v1", "v2") == 1  # type: ignore[arg-type]
    assert client.patches == [("/api/ml/1", BODY)]


@pytest.mark.parametrize("failure", [CHECK_FAILED, TIMEOUT], ids=["check-failed", "timeout"])
def test_a_failed_check_or_a_timeout_is_tried_again(failure: UpstreamError) -> None:
    client = StubClient([failure] * (RENAME_ATTEMPTS - 1))
    assert rename_backends_titled(client, "7", "v1", "v2") == 1  # type: ignore[arg-type]
    assert client.patches == [("/api/ml/1", BODY)] * RENAME_ATTEMPTS


def test_it_gives_up_after_the_last_attempt_and_at_once_on_other_errors() -> None:
    client = StubClient([CHECK_FAILED] * RENAME_ATTEMPTS)
    with pytest.raises(UpstreamError, match="health check failed"):
        rename_backends_titled(client, "7", "v1", "v2")  # type: ignore[arg-type]
    assert len(client.patches) == RENAME_ATTEMPTS
    forbidden = StubClient([UpstreamError("403 from PATCH /api/ml/1", upstream_status=403)])
    with pytest.raises(UpstreamError, match="403"):
        rename_backends_titled(forbidden, "7", "v1", "v2")  # type: ignore[arg-type]
    assert len(forbidden.patches) == 1
