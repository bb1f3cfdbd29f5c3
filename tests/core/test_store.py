"""The SQLite store: schema, WAL, which annotation trains, the counter that debounces training."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from labelzoo.store.db import Database
from labelzoo.store.schema import MIGRATIONS
from labelzoo.training.annotations import AnnotationStore
from labelzoo.training.events import records_from_export
from tests.core.training_support import annotation, created, make_settings, services_fixture, task  # noqa: F401


def test_database_is_wal_migrated_once_and_per_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.sqlite3")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    again = Database(tmp_path / "x.sqlite3")  # a second process would do the same: no error, no re-run
    assert again.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(db.conn))
    thread.start()
    thread.join()
    assert seen[0] is not db.conn
    db.close()
    again.close()


def test_latest_annotation_per_task_wins_ground_truth_first_cancelled_never(
    tmp_path: Path, services: Any
) -> None:
    service = services(make_settings(tmp_path))
    service.handle_event(created(1, 10, "cat", updated_at="2025-06-01T09:00:00Z"))
    service.handle_event(created(2, 10, "dog", updated_at="2025-06-02T09:00:00Z"))  # newer: wins
    service.handle_event(created(3, 11, "dog", updated_at="2025-06-01T09:00:00Z", ground_truth=True))
    service.handle_event(
        created(4, 11, "cat", updated_at="2025-06-03T09:00:00Z")
    )  # newer, but not ground truth
    service.handle_event(created(5, 12, "cat", updated_at="2025-06-04T09:00:00Z", cancelled=True))
    service.handle_event(created(6, 13, "cat", updated_at="2025-06-01T09:00:00Z"))
    service.handle_event(created(7, 13, "dog", updated_at="2025-06-05T09:00:00Z", cancelled=True))  # skipped
    examples = {
        e.task_id: (e.annotation_id, e.result[0]["value"]["choices"][0] if e.result else None)
        for e in service.annotations.examples("12")
    }
    assert examples == {10: (2, "dog"), 11: (3, "dog"), 13: (6, "cat")}
    assert service.annotations.counts("12") == {"annotations": 7, "cancelled": 2, "tasks": 4}


def test_changed_annotations_count_once_and_late_webhooks_never_win(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    assert service.handle_event(created(1, 10, "cat", updated_at="2025-06-02T00:00:00Z"))["pending"] == 1
    same = service.handle_event(
        {**created(1, 10, "cat", updated_at="2025-06-02T00:00:00Z"), "action": "ANNOTATION_UPDATED"}
    )
    assert (same["changed"], same["pending"]) == (0, 1)
    newer = service.handle_event(
        {**created(1, 10, "dog", updated_at="2025-06-03T00:00:00Z"), "action": "ANNOTATION_UPDATED"}
    )
    assert (newer["changed"], newer["pending"]) == (1, 2)
    late = service.handle_event(
        {**created(1, 10, "cat", updated_at="2025-06-01T00:00:00Z"), "action": "ANNOTATION_UPDATED"}
    )
    assert late["changed"] == 0
    assert service.annotations.examples("12")[0].result[0]["value"]["choices"] == ["dog"]
    skipped = service.handle_event(created(2, 11, cancelled=True))
    assert (skipped["changed"], skipped["pending"]) == (0, 2)  # a skipped task is not a training example


def test_export_replaces_the_project_annotations(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.sqlite3")
    store = AnnotationStore(db)
    export = [
        {**task(10), "annotations": [annotation(1, 10, "cat")]},
        {**task(11), "annotations": [annotation(2, 11, "dog"), annotation(3, 11, cancelled=True)]},
    ]
    with db.write() as conn:
        store.upsert(conn, "12", records_from_export([{**task(12), "annotations": [annotation(9, 12)]}]))
        assert store.replace(conn, "12", records_from_export(export)) == 2
    assert [e.annotation_id for e in store.examples("12")] == [1, 2]  # 9 was deleted in Label Studio
    assert store.counts("12")["annotations"] == 3
    db.close()
