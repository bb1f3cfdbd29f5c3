"""Read an object tag's value out of a task: the raw field, inline text, or media behind a URL via the resolver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labelzoo.media.tasks import field_value

if TYPE_CHECKING:
    from labelzoo.backend import Task
    from labelzoo.labelconfig import ObjectTag
    from labelzoo.media import MediaResolver


def text_of(task: Task, obj: ObjectTag, media: MediaResolver) -> str:
    """The text of a Text/HyperText object: inline, or downloaded when ``valueType="url"``.

    One task's value as :meth:`MediaResolver.per_task` reads it for a batch; raises its error.
    """
    return str(media.for_task(task, obj))


def media_path(task: Task, obj: ObjectTag, media: MediaResolver) -> Path:
    """A local file for an Image/Audio/Video object's URL (as :meth:`MediaResolver.per_task` fetches it)."""
    return Path(media.for_task(task, obj))


__all__ = ["field_value", "media_path", "text_of"]
