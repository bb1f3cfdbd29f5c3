"""A ``MODEL_DIR`` that cannot be written: start-up stops naming it; one that stops being writable later
turns the routes that write into 503s naming it (never a 201 for annotations that were not stored), fails
``/health``, and leaves the routes that only read working.

The tests run as root here, and root writes through ``chmod``. So the store is made unwritable the way
SQLite itself refuses writes: ``PRAGMA query_only`` gives the real engine's "attempt to write a readonly
database" (SQLITE_READONLY, what a read-only mount gives), ``PRAGMA max_page_count`` its "database or disk
is full" (SQLITE_FULL), and a folder in place of the database file its "unable to open database file"
(SQLITE_CANTOPEN). Each goes through the same code as the real fault: the statement fails inside SQLite and
labelzoo's connection maps it. A folder below a regular file is a MODEL_DIR the OS refuses to create or write
to. The ``chmod`` variants run too where the tests are not root.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from labelzoo.errors import StoreUnavailable
from labelzoo.registry import load_backend
from labelzoo.runtime import Runtime
from labelzoo.settings import Settings
from labelzoo.store import DB_NAME
from tests.conftest import KEYWORD_BACKEND, base_env
from tests.core.training_support import created

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="positive"/><Choice value="negative"/></Choices></View>"""
PREDICT = {"tasks": [{"id": 1, "data": {"text": "positive"}}], "project": "12", "label_config": CONFIG}
ROOT = os.geteuid() == 0


def annotations(runtime: Runtime) -> int:
    return runtime.db.conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]


def assert_names_model_dir(answer: Any, model_dir: Path, what: str) -> None:
    assert answer.status_code == 503, answer.json
    assert answer.json["error"] == "store_unavailable", answer.json
    message = answer.json["message"]
    assert f"MODEL_DIR {model_dir} cannot be written" in message and what in message, message


@contextmanager
def read_only(runtime: Runtime) -> Iterator[None]:
    """This thread's store connection (the test client serves requests on it) refuses every write."""
    runtime.db.conn.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        runtime.db.conn.execute("PRAGMA query_only = OFF")


def test_a_store_that_turns_read_only_fails_writes_and_health_but_serves_reads(
    make_runtime: Callable[..., Any],
) -> None:
    from labelzoo.server.app import create_app

    runtime = make_runtime()
    client = create_app(runtime).test_client()
    model_dir = runtime.settings.model_dir.resolve()
    setup = {"project": "12", "schema": CONFIG, "extra_params": {"threshold": 0.5}}
    assert client.post("/setup", json=setup).status_code == 200

    with read_only(runtime):
        webhook = client.post("/webhook", json=created(1, 10, "positive"))
        assert_names_model_dir(webhook, model_dir, "it is read-only")
        assert "nothing was saved" in webhook.json["message"]
        changed = client.post("/setup", json={**setup, "extra_params": {"threshold": 0.7}})
        assert_names_model_dir(changed, model_dir, "attempt to write a readonly database")
        health = client.get("/health")
        assert health.status_code == 503 and health.json["status"] == "FAILED", health.json
        assert f"MODEL_DIR {model_dir} cannot be written" in health.json["reason"]
        assert health.json["store"]["writable"] is False
        assert client.get("/ready").status_code == 200  # the model is loaded: predictions still work
        predicted = client.post("/predict", json=PREDICT)
        assert predicted.status_code == 200 and predicted.json["results"][0]["result"], predicted.json
        assert client.get("/versions", query_string={"project": "12"}).status_code == 200
        assert client.post("/setup", json=setup).status_code == 200  # unchanged extra_params: nothing to write

    assert annotations(runtime) == 0  # the 503 told the truth: nothing was stored
    health = client.get("/health")
    assert health.status_code == 200 and health.json["store"] == {"writable": True, "error": None}
    assert client.post("/webhook", json=created(1, 10, "positive")).status_code == 201
    assert annotations(runtime) == 1


def test_a_full_disk_fails_a_webhook_with_503(make_runtime: Callable[..., Any]) -> None:
    from labelzoo.server.app import create_app

    runtime = make_runtime()
    client = create_app(runtime).test_client()
    conn = runtime.db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # no page more: SQLite answers as on a full disk
    big = created(1, 10, "positive")
    big["task"]["data"]["text"] = "positive " * 20_000
    answer = client.post("/webhook", json=big)
    assert_names_model_dir(answer, runtime.settings.model_dir.resolve(), "its disk is full")
    assert annotations(runtime) == 0
    conn.execute("PRAGMA max_page_count = 1073741823")  # space again: no transaction was left open
    assert client.post("/webhook", json=big).status_code == 201


# ---- start-up ------------------------------------------------------------------------------------------


def start(tmp_path: Path, model_dir: Path) -> Runtime:
    return Runtime(load_backend(str(KEYWORD_BACKEND)), Settings.from_env(base_env(tmp_path, MODEL_DIR=str(model_dir))))


def test_a_store_that_cannot_be_opened_stops_start_up_naming_model_dir(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    (model_dir / DB_NAME).mkdir(parents=True)  # SQLite: "unable to open database file", as in an empty read-only dir
    with pytest.raises(StoreUnavailable, match=rf"MODEL_DIR {model_dir} cannot be written: the store cannot be "
                                               r"opened \(SQLite: 'unable to open database file'"):
        start(tmp_path, model_dir)


def test_a_model_dir_that_cannot_be_created_stops_start_up_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    model_dir = tmp_path / "file" / "models"
    with pytest.raises(StoreUnavailable, match=rf"MODEL_DIR {model_dir} cannot be written \(\[Errno 20\]"):
        start(tmp_path, model_dir)


def test_a_read_only_store_with_data_stops_start_up_naming_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_dir = tmp_path / "models"
    start(tmp_path, model_dir).close()  # a store with its schema, as a previous run left it
    real_connect = sqlite3.connect

    def refusing_writes(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(sqlite3, "connect", refusing_writes)
    with pytest.raises(StoreUnavailable, match=rf"MODEL_DIR {model_dir} cannot be written: it is read-only"):
        start(tmp_path, model_dir)


@pytest.mark.skipif(ROOT, reason="root writes to a folder whatever its mode")
@pytest.mark.parametrize("empty", [True, False], ids=["empty", "with-store"])
def test_a_read_only_model_dir_stops_start_up_naming_it(tmp_path: Path, empty: bool) -> None:
    model_dir = tmp_path / "models"
    if empty:
        model_dir.mkdir()
    else:
        start(tmp_path, model_dir).close()
    model_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreUnavailable, match=rf"MODEL_DIR {model_dir} cannot be written \(\[Errno 13\]"):
            start(tmp_path, model_dir)
    finally:
        model_dir.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("command", [["worker", "template"], ["serve", "template"]])
def test_the_commands_refuse_a_model_dir_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str],
) -> None:
    from labelzoo.cli import main

    (tmp_path / "file").write_text("not a folder")
    model_dir = tmp_path / "file" / "models"
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: the check comes first
    assert main(command) == 2
    assert f"labelzoo: MODEL_DIR {model_dir} cannot be written" in capsys.readouterr().err
