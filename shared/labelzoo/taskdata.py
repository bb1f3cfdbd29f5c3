"""Read an object tag's value out of a task: inline text, or media behind a URL via the resolver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo.backend import Task
from labelzoo.errors import TaskError

if TYPE_CHECKING:
    from labelzoo.labelconfig import ObjectTag
    from labelzoo.media import MediaResolver


def field_value(task: Task, obj: ObjectTag) -> Any:
    """The raw task-data value the object tag points at (``value="$image"`` → ``task.data["image"]``)."""
    key = obj.value_key
    if key is None:
        raise TaskError(f"<{obj.tag} name={obj.name!r}> has value={obj.value!r}, not a $variable of the task data")
    if key not in task.data:
        known = ", ".join(sorted(task.data)) or "none"
        raise TaskError(f"task {task.id} has no data field {key!r} for <{obj.tag} name={obj.name!r}> (fields: {known})")
    return task.data[key]


def text_of(task: Task, obj: ObjectTag, media: MediaResolver) -> str:
    """The text of a Text/HyperText object: inline, or downloaded when ``valueType="url"``."""
    value = field_value(task, obj)
    if not isinstance(value, str):
        raise TaskError(f"task {task.id}: field {obj.value_key!r} must be a string, got {type(value).__name__}")
    if (obj.value_type or "").lower() == "url":
        return media.read_text(value, task_id=task.id)
    return value


def media_path(task: Task, obj: ObjectTag, media: MediaResolver) -> Path:
    """A local file for an Image/Audio/Video object's URL."""
    value = field_value(task, obj)
    if not isinstance(value, str) or not value:
        raise TaskError(f"task {task.id}: field {obj.value_key!r} must be a media URL, got {value!r}")
    return media.local_path(value, task_id=task.id)
