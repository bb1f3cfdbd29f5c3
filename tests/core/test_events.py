"""Webhook payloads: every action shape Label Studio sends, defensive parsing, fast answers."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from labelzoo.errors import BadRequest
from labelzoo.training import parse_event, project_key
from tests.core.training_support import (  # noqa: F401 - services_fixture
    annotation,
    created,
    make_settings,
    project,
    services_fixture,
    start_training,
    task,
)


def test_project_key_accepts_the_three_forms_label_studio_uses() -> None:
    assert project_key("12") == "12"
    assert project_key("12.1718900000") == "12"
    assert project_key({"id": 12, "title": "Cats"}) == "12"
    assert project_key(12) == "12"
    for garbage in ("", "abc", "-1", "1e3", None, True, 1.5, [], {"title": "no id"}, "١٢"):
        with pytest.raises(BadRequest, match="project must be a Label Studio project id"):
            project_key(garbage)


def test_annotation_created_and_updated() -> None:
    for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        event = parse_event(
            {**created(55, 101, "dog", updated_at="2025-06-01T09:00:00.5+02:00"), "action": action}
        )
        assert (event.kind, event.project, event.label_config) == ("upsert", "12", project()["label_config"])
        (record,) = event.annotations
        assert (record.id, record.task_id, record.was_cancelled, record.ground_truth) == (
            55,
            101,
            False,
            False,
        )
        assert record.task_data == {"text": "text of task 101"}
        assert record.result[0]["value"] == {"choices": ["dog"]}
        assert record.updated_at == "2025-06-01T07:00:00.500000Z"  # canonical UTC, sortable as text


def test_annotations_created_plural_pairs_annotations_with_their_tasks() -> None:
    payload = {
        "action": "ANNOTATIONS_CREATED",
        "annotation": [annotation(1, 11, "cat"), annotation(2, 10, "dog"), annotation(3, 11, "dog")],
        "task": [task(10), task(11)],
        "project": project(),
    }
    event = parse_event(payload)
    assert [(r.id, r.task_id, r.task_data["text"]) for r in event.annotations] == [
        (1, 11, "text of task 11"),
        (2, 10, "text of task 10"),
        (3, 11, "text of task 11"),
    ]


def test_deletions_plural_and_singular() -> None:
    plural = parse_event(
        {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 5}, {"id": 6}], "project": project()}
    )
    assert (plural.kind, plural.deleted) == ("delete", (5, 6))
    singular = parse_event({"action": "ANNOTATION_DELETED", "annotation": {"id": 7}, "project": project()})
    assert singular.deleted == (7,)


def test_start_training_carries_only_the_project() -> None:
    event = parse_event(start_training(12))
    assert (event.kind, event.project, event.annotations) == ("start_training", "12", ())


@pytest.mark.parametrize(
    "action", ["TASKS_CREATED", "TASKS_DELETED", "PROJECT_UPDATED", "LABEL_LINK_CREATED", "SOMETHING_NEW"]
)
def test_other_actions_are_acknowledged_and_ignored(action: str) -> None:
    event = parse_event({"action": action, "tasks": "not even a list", "project": {"id": 3}})
    assert (event.kind, event.project) == ("ignored", "3")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "webhook body must be a JSON object"),
        ({"annotation": {}}, "'action'"),
        ({"action": 5}, "'action'"),
        ({**created(1, 2), "annotation": "x"}, "annotation must be an object"),
        (
            {**created(1, 2), "annotation": {**annotation(1, 2), "id": "1"}},
            "annotation.id must be an integer",
        ),
        (
            {**created(1, 2), "annotation": {**annotation(1, 2), "result": {}}},
            "annotation.result must be a list",
        ),
        ({**created(1, 2), "annotation": {**annotation(1, 2), "result": [1]}}, r"annotation.result\[0\]"),
        (
            {**created(1, 2), "annotation": {**annotation(1, 2), "was_cancelled": "no"}},
            "annotation.was_cancelled",
        ),
        (
            {**created(1, 2), "annotation": {**annotation(1, 2), "updated_at": "yesterday"}},
            "annotation.updated_at",
        ),
        ({**created(1, 2), "annotation": {**annotation(1, 2), "task": 3}}, "annotation.task is 3"),
        ({**created(1, 2), "task": {"id": 2}}, "task.data must be an object"),
        ({**created(1, 2), "task": {"id": None, "data": {}}}, "task.id must be an integer"),
        ({**created(1, 2), "project": {"id": "twelve"}}, "project must be"),
        (
            {**created(1, 2), "project": {"id": 12, "label_config": 5}},
            "project.label_config must be a string",
        ),
        (
            {
                "action": "ANNOTATIONS_CREATED",
                "annotation": annotation(1, 2),
                "task": [task(2)],
                "project": project(),
            },
            "annotation must be a list",
        ),
        (
            {
                "action": "ANNOTATIONS_CREATED",
                "annotation": [annotation(1, 9)],
                "task": [task(2), task(3)],
                "project": project(),
            },
            r"annotation\[0\].task \(9\) is not the id of a task",
        ),
        (
            {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": "5"}], "project": project()},
            r"annotations\[0\].id must be an integer",
        ),
        (
            {"action": "ANNOTATIONS_DELETED", "annotations": {"id": 5}, "project": project()},
            "annotations must be a list",
        ),
        ({"action": "START_TRAINING"}, "'project' is missing"),
    ],
)
def test_malformed_payloads_raise_bad_request_naming_the_field(payload: Any, field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        parse_event(payload)


def test_service_stores_and_deletes_annotations(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    answer = service.handle_event(created(1, 10, "cat"))
    assert answer == {
        "status": "ok",
        "action": "ANNOTATION_CREATED",
        "project": "12",
        "job": None,
        "changed": 1,
        "pending": 1,
        "train_after": 0,
    }
    service.handle_event(
        {
            "action": "ANNOTATIONS_CREATED",
            "annotation": [annotation(2, 11), annotation(3, 12)],
            "task": [task(11), task(12)],
            "project": project(),
        }
    )
    assert [e.annotation_id for e in service.annotations.examples("12")] == [1, 2, 3]
    answer = service.handle_event(
        {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 2}, {"id": 99}], "project": project()}
    )
    assert answer["deleted"] == 1
    assert [e.annotation_id for e in service.annotations.examples("12")] == [1, 3]
    assert service.annotations.label_config("12") == project()["label_config"]


def test_unknown_and_bulk_task_events_are_fast_and_not_stored(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    tasks = [
        {"id": i, "data": {"text": "x" * 200}, "annotations": [], "predictions": []} for i in range(10_000)
    ]
    started = time.perf_counter()
    answer = service.handle_event({"action": "TASKS_CREATED", "tasks": tasks, "project": project()})
    elapsed = time.perf_counter() - started
    assert answer == {
        "status": "ok",
        "action": "TASKS_CREATED",
        "project": "12",
        "job": None,
        "ignored": True,
    }
    assert elapsed < 0.05, elapsed
    assert service.db.conn.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 0
    assert service.annotations.counts("12")["annotations"] == 0


def test_annotation_webhooks_answer_well_under_50ms(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path, train_after=1000))
    timings = []
    for i in range(30):
        started = time.perf_counter()
        service.handle_event(created(i, i))
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.05, timings
    assert service.handle_event(created(99, 99))["pending"] == 31
