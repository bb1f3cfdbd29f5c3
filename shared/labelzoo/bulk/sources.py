"""Offline task sources: a Label Studio task file, or a folder of media files.

Each source task pairs the :class:`~labelzoo.backend.Task` the backend predicts with the record the
output file holds (the task as Label Studio imports it). A task file's records are its own objects; a
folder's are ``{"data": {<key>: <path or URL>}}`` with the key of the label config's first object.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelzoo.backend import Task
from labelzoo.errors import BadRequest, LabelConfigError
from labelzoo.labelconfig import LabelConfig, ObjectTag

#: the MIME family each media object tag reads; other tags take every file
MEDIA_KINDS = {"image": "image/", "audio": "audio/", "audioplus": "audio/", "video": "video/"}
TEXT_TAGS = {"text", "hypertext"}


@dataclass(frozen=True)
class SourceTask:
    task: Task
    record: dict[str, Any]


def load_task_file(path: Path) -> list[SourceTask]:
    """A JSON list of tasks: ``{"data": {...}, ...}`` objects, or bare data objects (Label Studio takes both)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"cannot read the task file {path}: {exc}") from None
    if not isinstance(items, list):
        raise BadRequest(f"{path} must hold a JSON list of tasks, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"{path}: task {i} must be a JSON object, got {type(item).__name__}")
        record = item if isinstance(item.get("data"), dict) else {"data": item}
        out.append(SourceTask(Task.from_json(record, where=f"{path.name}[{i}]"), record))
    return out


def first_object(config: LabelConfig) -> ObjectTag:
    for obj in config.objects.values():
        if obj.value_key:
            return obj
    raise LabelConfigError("the label config has no object tag with a $variable value (e.g. <Image value=\"$image\"/>)")


def scan_media_folder(folder: Path, config: LabelConfig, data_prefix: str | None = None) -> list[SourceTask]:
    """One task per file under ``folder`` (recursive, sorted, hidden files skipped) for the first object.

    The backend reads each file by its absolute path (the caller adds ``folder`` to the media roots). The
    record holds ``data_prefix + relative path`` when given (e.g. ``/data/local-files/?d=photos/``, for
    Label Studio's local-files storage), else the absolute path. ``<Text>`` without ``valueType="url"``
    gets the file's text inline.
    """
    obj = first_object(config)
    assert obj.value_key is not None
    tag = obj.tag.lower()
    inline_text = tag in TEXT_TAGS and (obj.value_type or "").lower() != "url"
    family = MEDIA_KINDS.get(tag)
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if family and not (mimetypes.guess_type(path.name)[0] or "").startswith(family):
            continue
        if inline_text:
            value = predicted = path.read_text(encoding="utf-8", errors="replace")
        else:
            predicted = str(path.resolve())
            value = data_prefix + relative.as_posix() if data_prefix else predicted
        out.append(SourceTask(Task(id=None, data={obj.value_key: predicted}), {"data": {obj.value_key: value}}))
    if not out:
        kind = f"{family}* " if family else ""
        raise BadRequest(f"{folder} holds no {kind}files for <{obj.tag} name={obj.name!r}>")
    return out


def fingerprint(tasks: Sequence[SourceTask], model_version: str) -> str:
    """Identifies a run's input, so a journal is only resumed by the same tasks and model version."""
    digest = hashlib.sha256(model_version.encode())
    for source in tasks:
        digest.update(json.dumps(source.task.data, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
