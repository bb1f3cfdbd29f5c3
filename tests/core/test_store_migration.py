"""A MODEL_DIR of labelzoo 0.1 (three SQLite files) is folded into the one store on first start, losing nothing."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelzoo.store import DB_NAME, open_store
from tests.conftest import FIXTURES, TEMPLATE_BACKEND
from tests.core.test_learning_e2e import CONFIG, predict_body

OLD_STORE = FIXTURES / "store-0.1"
VERSION = "template-tfidf-p3-v1-5e0515"
BULK_JOB = "0e1f4ade6469"


def old_model_dir(tmp_path: Path) -> Path:
    model_dir = tmp_path / "models"
    shutil.copytree(OLD_STORE, model_dir, ignore=shutil.ignore_patterns("README.md"))
    return model_dir


def test_a_populated_old_store_serves_on_after_the_upgrade(tmp_path: Path, make_client: Callable[..., Any]) -> None:
    model_dir = old_model_dir(tmp_path)
    client = make_client(TEMPLATE_BACKEND, MODEL_DIR=str(model_dir))

    assert not (model_dir / "projects.sqlite3").exists() and not (model_dir / "bulk.sqlite3").exists()
    assert (model_dir / "projects.sqlite3.migrated").is_file() and (model_dir / "bulk.sqlite3.migrated").is_file()
    runtime = client.application.extensions["labelzoo.runtime"]
    assert runtime.params.get("3") == {"threshold": 0.3}  # extra_params from projects.sqlite3
    setup = client.post("/setup", json={"project": 3, "schema": CONFIG, "extra_params": {"threshold": 0.3}})
    assert setup.get_json()["model_version"] == VERSION  # the promoted version is still the project's

    jobs = client.get("/jobs", query_string={"project": 3}).get_json()["jobs"]
    assert [(j["status"], j["version"]) for j in jobs] == [("succeeded", VERSION)]
    (bulk,) = client.get("/bulk", query_string={"project": 3}).get_json()["jobs"]
    assert (bulk["id"], bulk["status"], bulk["error"]) == (BULK_JOB, "failed", "LS went away")
    assert (bulk["total"], bulk["posted"]) == (3, 2)

    body = predict_body(["The meal was wonderful, really superb.", "The hotel was awful, really dreadful."])
    answer = client.post("/predict", json={**body, "project": "3"}).get_json()
    assert [item["model_version"] for item in answer["results"]] == [VERSION, VERSION]
    assert [item["result"][0]["value"]["choices"] for item in answer["results"]] == [["Positive"], ["Negative"]]


def test_the_fold_runs_once_and_a_second_opener_finds_it_done(tmp_path: Path) -> None:
    model_dir = old_model_dir(tmp_path)
    first, second = open_store(model_dir), open_store(model_dir)  # two workers starting together
    for db in (first, second):
        assert db.conn.execute("SELECT COUNT(*) FROM bulk_chunks").fetchone()[0] == 2
        assert db.conn.execute("SELECT COUNT(*) FROM project_params").fetchone()[0] == 1
    first.close()
    second.close()
    assert sorted(p.name for p in model_dir.glob("*.sqlite3*")) == [
        "bulk.sqlite3.migrated", DB_NAME, "projects.sqlite3.migrated"]
    # the originals are kept as they were, for a rollback to 0.1
    with sqlite3.connect(model_dir / "bulk.sqlite3.migrated") as old:
        assert old.execute("SELECT id FROM jobs").fetchall() == [(BULK_JOB,)]
