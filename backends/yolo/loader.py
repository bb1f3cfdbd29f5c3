"""Stream a batch's images into the model in chunks while the next ones download and decode.

Downloads run in the media resolver's thread pool (:meth:`MediaResolver.iter_fetch`); one decoder thread
turns finished files into EXIF-transposed BGR arrays and queues them. The caller takes chunks of
``chunk`` images and runs the model on one while the next is being prepared. The queue is bounded, so
at most about two chunks of decoded images are in memory, whatever the size of the request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from labelzoo.errors import LabelzooError, MediaError
from labelzoo.images import open_image
from labelzoo.media import MediaResolver

_DONE = object()


@dataclass(frozen=True)
class LoadedImage:
    index: int  # position in the request
    bgr: np.ndarray  # natural (EXIF-transposed) size, channels in OpenCV/Ultralytics order


@dataclass
class Chunk:
    images: list[LoadedImage] = field(default_factory=list)
    errors: list[tuple[int, LabelzooError]] = field(default_factory=list)


def decode(path_or_error: object, shown: str, max_pixels: int) -> np.ndarray:
    """A fetched file (or the MediaError of its download) → BGR array; raises MediaError."""
    if isinstance(path_or_error, LabelzooError):
        raise path_or_error
    image = open_image(path_or_error, max_pixels=max_pixels, shown=shown)  # type: ignore[arg-type]
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def iter_chunks(
    values: Sequence[tuple[str, int | None]], media: MediaResolver, *, chunk: int, max_pixels: int
) -> Iterator[Chunk]:
    """Chunks of decoded images (in completion order) and per-image errors for ``(url, task_id)`` values."""
    ready: queue.Queue[object] = queue.Queue(maxsize=chunk)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for index, fetched in media.iter_fetch(values):
                try:
                    item: object = LoadedImage(index, decode(fetched, values[index][0][:200], max_pixels))
                except LabelzooError as exc:
                    item = (index, exc)
                except Exception as exc:  # an unexpected decoder failure costs one image, not the batch
                    item = (index, MediaError(f"cannot decode {values[index][0][:200]!r}: {exc!r}"))
                if not put(item):
                    return
        finally:
            put(_DONE)

    worker = threading.Thread(target=produce, name="yolo-image-loader", daemon=True)
    worker.start()
    current = Chunk()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                break
            if isinstance(item, LoadedImage):
                current.images.append(item)
            else:
                current.errors.append(item)  # type: ignore[arg-type]
            if len(current.images) >= chunk:
                yield current
                current = Chunk()
        if current.images or current.errors:
            yield current
    finally:
        stop.set()
        worker.join(timeout=5)
