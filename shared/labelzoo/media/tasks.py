"""Every task's media for one object tag, fetched and decoded ahead of the model, handed out in task order.

:func:`per_task` yields ``(index, value)`` for each task of a batch, **in task order**, where ``value``
is what the model reads, or the :class:`~labelzoo.errors.LabelzooError` that stops that task alone:

* without ``decode``: the local file (a :class:`~pathlib.Path`) for media objects (``<Image>``,
  ``<Audio>``, ``<Video>``…), and the text for ``<Text>``/``<HyperText>``: inline, or downloaded and
  read as UTF-8 when the tag has ``valueType="url"``;
* with ``decode``: what ``decode(TaskMedia)`` makes of the fetched file, e.g.
  :func:`labelzoo.images.image_decoder` (a PIL image or an RGB/BGR array) or
  :func:`labelzoo.audio.open_stream` (an :class:`~labelzoo.audio.AudioStream`). Inline text is handed
  out as it is.

Downloads and decoding run in a thread pool while the caller works on earlier tasks, at most
``lookahead`` tasks ahead of the one last handed out, so memory stays bounded however long the batch:
the tasks ahead are both the prefetch and the buffer that puts completions back in task order. The
same URL in several tasks is downloaded once (the media cache). Values never handed out (the caller
stopped early) are closed when they have a ``close()``, so an audio stream's ffmpeg never lingers.

An error's message names the task and the field (``task 7's image 'image': 404 from …``), so a backend
turns it into ``Prediction.failed(error.message)`` and keeps no error list of its own. :func:`for_task`
reads one task the same way and raises its error; :func:`field_value` is the raw task-data value.

Tasks and the resolver are typed by what is used of them (:class:`Task`, :class:`MediaSource`): the
media layer sits below :mod:`labelzoo.backend`, which imports it.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from labelzoo.errors import LabelzooError, MediaError, TaskError

if TYPE_CHECKING:
    from labelzoo.labelconfig import ObjectTag
    from labelzoo.media.settings import MediaSettings

log = logging.getLogger("labelzoo.media")

T = TypeVar("T")

#: object tags whose value is the text itself, unless ``valueType="url"``
TEXT_TAGS = frozenset({"text", "hypertext"})


class Task(Protocol):
    """What is read of a task: :class:`labelzoo.Task` (the core's layers keep ``media`` below ``backend``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class MediaSource(Protocol):
    """What is used of the :class:`~labelzoo.media.MediaResolver`."""

    @property
    def settings(self) -> MediaSettings: ...
    def local_path(self, value: str, *, task_id: int | None = None) -> Path: ...
    def read_text(self, value: str, *, task_id: int | None = None, encoding: str = "utf-8") -> str: ...


@dataclass(frozen=True)
class TaskMedia:
    """One task's fetched media file: what a ``decode`` function receives."""

    task: Task
    obj: ObjectTag
    value: str
    """The task-data value as written (a URL, a Label Studio path, a ``data:`` URI): for messages."""
    path: Path
    """A local file with the media's bytes (in the media cache, or under a local root)."""
    where: str
    """How messages name this task's media: ``"task 7's image 'image'"``."""


Decoder = Callable[[TaskMedia], T]


def field_value(task: Task, obj: ObjectTag) -> Any:
    """The raw task-data value the object tag points at (``value="$image"`` → ``task.data["image"]``)."""
    key = obj.value_key
    if key is None:
        raise TaskError(f"<{obj.tag} name={obj.name!r}> has value={obj.value!r}, not a $variable of the task data")
    if key not in task.data:
        known = ", ".join(sorted(task.data)) or "none"
        raise TaskError(f"task {task.id} has no data field {key!r} for <{obj.tag} name={obj.name!r}> (fields: {known})")
    return task.data[key]


def describe(task: Task, obj: ObjectTag) -> str:
    """``"task 7's image 'image'"``: the task and the object tag (hence the field) in one phrase."""
    owner = f"task {task.id}'s" if task.id is not None else "a task's"
    return f"{owner} {obj.tag.lower()} {obj.name!r}"


@overload
def per_task(
    media: MediaSource, tasks: Sequence[Task], obj: ObjectTag, decode: None = None, *, lookahead: int | None = None
) -> Iterator[tuple[int, Path | str | LabelzooError]]: ...
@overload
def per_task(
    media: MediaSource, tasks: Sequence[Task], obj: ObjectTag, decode: Decoder[T], *, lookahead: int | None = None
) -> Iterator[tuple[int, T | str | LabelzooError]]: ...
def per_task(
    media: MediaSource,
    tasks: Sequence[Task],
    obj: ObjectTag,
    decode: Decoder[Any] | None = None,
    *,
    lookahead: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(index, value or error)`` for every task, in task order; see the module docstring.

    ``lookahead`` (default: twice ``MEDIA_PARALLEL_DOWNLOADS``) is how many tasks after the one handed out
    may be fetched and decoded already; downloads run on up to ``MEDIA_PARALLEL_DOWNLOADS`` threads.
    """
    if lookahead is None:
        lookahead = 2 * media.settings.max_parallel_downloads
    if lookahead < 1:
        raise ValueError(f"lookahead must be at least 1, got {lookahead}")
    if _is_inline(obj) or len(tasks) <= 1:  # nothing to overlap: no threads
        for index, task in enumerate(tasks):
            yield index, _load(media, task, obj, decode)
        return
    workers = min(media.settings.max_parallel_downloads, lookahead, len(tasks))
    pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="labelzoo-media")
    window: deque[Future[Any]] = deque()
    submitted = 0
    try:
        for index in range(len(tasks)):
            while submitted < len(tasks) and len(window) <= lookahead:  # this task and `lookahead` after it
                window.append(pool.submit(_load, media, tasks[submitted], obj, decode))
                submitted += 1
            yield index, window.popleft().result()
    finally:
        for future in window:
            if not future.cancel():
                future.add_done_callback(_close_unused)
        pool.shutdown(wait=False, cancel_futures=True)


@overload
def for_task(media: MediaSource, task: Task, obj: ObjectTag, decode: None = None) -> Path | str: ...
@overload
def for_task(media: MediaSource, task: Task, obj: ObjectTag, decode: Decoder[T]) -> T | str: ...
def for_task(media: MediaSource, task: Task, obj: ObjectTag, decode: Decoder[Any] | None = None) -> Any:
    """One task's value, as :func:`per_task` makes it, in the calling thread; raises its error."""
    value = _load(media, task, obj, decode)
    if isinstance(value, LabelzooError):
        raise value
    return value


def _is_inline(obj: ObjectTag) -> bool:
    return obj.tag.lower() in TEXT_TAGS and (obj.value_type or "").lower() != "url"


def _load(media: MediaSource, task: Task, obj: ObjectTag, decode: Decoder[Any] | None) -> Any:
    """The task's value or its error; never raises (a bug costs its task, not the batch)."""
    try:
        value = field_value(task, obj)
    except LabelzooError as exc:  # its message names the task and the field
        return exc
    where = describe(task, obj)
    if _is_inline(obj):
        if isinstance(value, str):
            return value
        return TaskError(f"{where}: field {obj.value_key!r} must hold a string, got {type(value).__name__}")
    if not isinstance(value, str) or not value.strip():
        return TaskError(f"{where}: field {obj.value_key!r} must hold a URL or file path, got {value!r:.80}")
    path: Path | None = None
    try:
        if decode is None and obj.tag.lower() in TEXT_TAGS:
            return media.read_text(value, task_id=task.id)
        path = media.local_path(value, task_id=task.id)
        return path if decode is None else decode(TaskMedia(task, obj, value, path, where))
    except LabelzooError as exc:
        return _naming(exc, where)
    except OSError as exc:
        return _caused(MediaError(f"{where}: cannot read {path or value!r}: {exc.strerror or exc}"), exc)
    except Exception as exc:
        log.exception("%s: unexpected error reading its media", where)
        return _caused(MediaError(f"{where}: unexpected error reading its media: {exc!r}"), exc)


def _naming(exc: LabelzooError, where: str) -> LabelzooError:
    """``exc`` itself when its message names the task's media already, else a copy saying ``where: …``."""
    if where in exc.message:
        return exc
    named = copy.copy(exc)  # the same class, status and code
    named.message = f"{where}: {exc.message}"
    named.args = (named.message,)
    return _caused(named, exc)


def _caused(error: LabelzooError, cause: BaseException) -> LabelzooError:
    error.__cause__ = cause
    return error


def _close_unused(future: Future[Any]) -> None:
    """Close a value decoded for a caller that stopped before taking it (an ffmpeg pipe, an image)."""
    if future.cancelled():
        return
    value = future.result()  # _load never raises
    close = getattr(value, "close", None)
    if callable(close) and not isinstance(value, LabelzooError):
        close()
