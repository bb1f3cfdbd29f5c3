"""Parse Label Studio webhook bodies (and export-format tasks) into typed, validated records.

Payloads are untrusted: a wrong type raises :class:`~labelzoo.errors.BadRequest` naming the field.
Actions that carry no training signal (``TASKS_CREATED`` with thousands of tasks, ``PROJECT_UPDATED``,
``LABEL_LINK_*``…) are recognised from their ``action`` alone; the rest of their body is never walked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from labelzoo.backend import Task, TrainingExample
from labelzoo.errors import BadRequest
from labelzoo.protocol import project_key, short_repr

UPSERT_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})
#: LS sends ANNOTATIONS_DELETED; the singular is what the upstream SDK listened for, accepted too
DELETE_ACTIONS = frozenset({"ANNOTATIONS_DELETED", "ANNOTATION_DELETED"})
START_TRAINING = "START_TRAINING"

EventKind = Literal["upsert", "delete", "start_training", "ignored"]


@dataclass(frozen=True)
class Event:
    action: str
    kind: EventKind
    project: str | None
    label_config: str | None = None
    annotations: tuple[TrainingExample, ...] = ()
    deleted: tuple[int, ...] = ()


def parse_event(payload: Any) -> Event:
    """Turn a ``POST /webhook`` body into an :class:`Event`."""
    if not isinstance(payload, Mapping):
        raise BadRequest(f"the webhook body must be a JSON object, got {type(payload).__name__}")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest(f"'action' must be a non-empty string, got {short_repr(action)}")
    if action in UPSERT_ACTIONS:
        project, label_config = _project(payload)
        return Event(action, "upsert", project, label_config, annotations=tuple(_upserts(action, payload)))
    if action in DELETE_ACTIONS:
        project, label_config = _project(payload)
        return Event(action, "delete", project, label_config, deleted=tuple(_deleted_ids(payload)))
    if action == START_TRAINING:
        project, label_config = _project(payload)
        return Event(action, "start_training", project, label_config)
    return Event(action, "ignored", _lenient_project(payload.get("project")))


def records_from_export(tasks: Any, where: str = "export") -> list[TrainingExample]:
    """Annotations of Label Studio export-format tasks (``[{"id", "data", "annotations": [...]}]``)."""
    if not isinstance(tasks, list):
        raise BadRequest(f"{where} must be a list of tasks, got {type(tasks).__name__}")
    records = []
    for i, task in enumerate(tasks):
        task_id, data = _task(task, f"{where}[{i}]")
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise BadRequest(f"{where}[{i}].annotations must be a list")
        for j, annotation in enumerate(annotations):
            records.append(_annotation(annotation, task_id, data, f"{where}[{i}].annotations[{j}]"))
    return records


def canonical_time(value: Any, where: str) -> str:
    """Label Studio timestamps (``2025-06-01T09:00:00.123Z``) as sortable UTC ``...ffffffZ`` strings."""
    if value is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{where} must be an ISO 8601 timestamp, got {short_repr(value)}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    else:
        raise BadRequest(f"{where} must be an ISO 8601 timestamp string, got {short_repr(value)}")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _project(payload: Mapping[str, Any]) -> tuple[str, str | None]:
    project = payload.get("project")
    if project is None:  # some senders only put the id on the annotation
        annotation = payload.get("annotation")
        if isinstance(annotation, Mapping) and "project" in annotation:
            return project_key(annotation["project"]), None
        raise BadRequest("'project' is missing: expected the project object Label Studio sends")
    label_config = project.get("label_config") if isinstance(project, Mapping) else None
    if label_config is not None and not isinstance(label_config, str):
        raise BadRequest(f"project.label_config must be a string, got {type(label_config).__name__}")
    return project_key(project), label_config or None


def _lenient_project(value: Any) -> str | None:
    try:
        return project_key(value)
    except BadRequest:
        return None


def _upserts(action: str, payload: Mapping[str, Any]) -> list[TrainingExample]:
    annotation, task = payload.get("annotation"), payload.get("task")
    if action != "ANNOTATIONS_CREATED":
        if not isinstance(annotation, Mapping):
            raise BadRequest(f"annotation must be an object, got {type(annotation).__name__}")
        task_id, data = _task(task, "task")
        return [_annotation(annotation, task_id, data, "annotation")]
    if not isinstance(annotation, list):
        raise BadRequest(f"annotation must be a list in ANNOTATIONS_CREATED, got {type(annotation).__name__}")
    if not isinstance(task, list):
        raise BadRequest(f"task must be a list in ANNOTATIONS_CREATED, got {type(task).__name__}")
    tasks = [_task(t, f"task[{i}]") for i, t in enumerate(task)]
    by_id = dict(tasks)
    records = []
    for i, item in enumerate(annotation):
        where = f"annotation[{i}]"
        if not isinstance(item, Mapping):
            raise BadRequest(f"{where} must be an object, got {type(item).__name__}")
        task_ref = item.get("task")
        if task_ref is None and len(tasks) == len(annotation):
            task_id, data = tasks[i]
        elif isinstance(task_ref, int) and task_ref in by_id:
            task_id, data = task_ref, by_id[task_ref]
        else:
            raise BadRequest(f"{where}.task ({short_repr(task_ref)}) is not the id of a task in 'task'")
        records.append(_annotation(item, task_id, data, where))
    return records


def _deleted_ids(payload: Mapping[str, Any]) -> list[int]:
    items = payload.get("annotations")
    if items is None and isinstance(payload.get("annotation"), Mapping):
        items = [payload["annotation"]]
    if not isinstance(items, list):
        raise BadRequest(f'annotations must be a list like [{{"id": 5}}], got {type(items).__name__}')
    ids = []
    for i, item in enumerate(items):
        value = item.get("id") if isinstance(item, Mapping) else item
        ids.append(_int(value, f"annotations[{i}].id"))
    return ids


def _task(task: Any, where: str) -> tuple[int, Mapping[str, Any]]:
    if not isinstance(task, Mapping):
        raise BadRequest(f"{where} must be an object, got {type(task).__name__}")
    data = task.get("data")
    if not isinstance(data, Mapping):
        raise BadRequest(f"{where}.data must be an object, got {type(data).__name__}")
    return _int(task.get("id"), f"{where}.id"), data


def _annotation(obj: Any, task_id: int, task_data: Mapping[str, Any], where: str) -> TrainingExample:
    if not isinstance(obj, Mapping):
        raise BadRequest(f"{where} must be an object, got {type(obj).__name__}")
    declared = obj.get("task")
    if isinstance(declared, int) and not isinstance(declared, bool) and declared != task_id:
        raise BadRequest(f"{where}.task is {declared} but the task sent with it is {task_id}")
    result = obj.get("result")
    result = [] if result is None else result
    if not isinstance(result, list):
        raise BadRequest(f"{where}.result must be a list, got {type(result).__name__}")
    for k, item in enumerate(result):
        if not isinstance(item, Mapping):
            raise BadRequest(f"{where}.result[{k}] must be an object, got {type(item).__name__}")
    return TrainingExample(
        task=Task(id=task_id, data=task_data),
        result=result,
        annotation_id=_int(obj.get("id"), f"{where}.id"),
        was_cancelled=_bool(obj.get("was_cancelled"), f"{where}.was_cancelled"),
        ground_truth=_bool(obj.get("ground_truth"), f"{where}.ground_truth"),
        updated_at=canonical_time(obj.get("updated_at") or obj.get("created_at"), f"{where}.updated_at"),
    )


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{where} must be an integer, got {short_repr(value)}")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{where} must be true or false, got {short_repr(value)}")
    return value
