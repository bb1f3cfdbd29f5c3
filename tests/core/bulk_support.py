"""Helpers for the bulk tests: a fake Label Studio project with text tasks, and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labelzoo.bulk.lsapi import BulkApi
from labelzoo.bulk.store import FINAL
from labelzoo.media import LabelStudioClient
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import wait_for

PROJECT = 7
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""


def texts(n: int) -> list[dict[str, str]]:
    """Task data the keyword backend answers: every other text names a cat, the others a dog."""
    return [{"text": f"task {i}: a {'cat' if i % 2 else 'dog'} sits"} for i in range(n)]


@pytest.fixture(name="fake_ls")
def fake_ls_fixture() -> Iterator[FakeLabelStudio]:
    """Import ``fake_ls_fixture`` into a test module to use the ``fake_ls`` fixture: project 7, no tasks."""
    with FakeLabelStudio() as ls:
        ls.add_project(PROJECT, CONFIG)
        yield ls


def ls_env(ls: FakeLabelStudio, **extra: str) -> dict[str, str]:
    """Environment for a runtime that talks to the fake Label Studio (no rate limit, quick retries)."""
    return {"LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.legacy_token, "BULK_RATE_LIMIT": "0", **extra}


def api_for(ls: FakeLabelStudio, sleeps: list[float] | None = None, retries: int = 3) -> BulkApi:
    """A BulkApi on the fake, recording its backoff sleeps instead of sleeping."""
    record = sleeps if sleeps is not None else []
    return BulkApi(LabelStudioClient(ls.url, ls.legacy_token), rate_limit=0, retries=retries, sleep=record.append)


def versions_per_task(ls: FakeLabelStudio, project: int = PROJECT) -> dict[int, list[str]]:
    return {t["id"]: [p["model_version"] for p in t["predictions"]] for t in ls.tasks.values()
            if t["project"] == project}


def wait_final(runtime: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until the runtime's bulk job ends; its JSON."""

    def ended() -> dict[str, Any] | None:
        job = runtime.bulk.job(job_id)
        return job if job["status"] in FINAL else None

    return wait_for(ended, timeout, f"bulk job {job_id} to end ({runtime.bulk.job(job_id)})")
