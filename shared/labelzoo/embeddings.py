"""Image embeddings of an interactive backend: cached by image content, encoded once, warmed up ahead of clicks.

Interactive image models (SAM, SAM 2 and their kin) are a heavy image encoder, run once per image,
and a light decoder, run on every click against the encoder's output, the *embedding*.
:class:`ImageEmbeddings` keeps the encoder off the click path:

* embeddings stay in a :class:`~labelzoo.caching.LruCache` bounded by their bytes, least recently used
  out first, keyed by a digest of the image file (:func:`content_key`): the same picture under two URLs
  or in two tasks shares one embedding, a changed file never gets a stale one, and two annotators on two
  images never evict each other on every click (upstream's predictors keep one image);
* concurrent clicks on an image nobody has encoded yet share one encoder pass;
* :meth:`ImageEmbeddings.warm` encodes the images of tasks being opened on a background thread (a
  :class:`~labelzoo.caching.WarmUpQueue`), no more at a time than the cache holds, so the first click
  is fast. Backends call it for ordinary predictions, which Label Studio asks for when a task is
  opened, and answer those with an empty prediction.

Images are decoded as Label Studio shows them (EXIF-transposed RGB, :func:`labelzoo.images.open_array`),
since prompts are in percent of that natural size, and only on a cache miss.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, Protocol, TypeVar

import numpy as np

from labelzoo.caching import CacheStats, LruCache, WarmUpQueue
from labelzoo.errors import LabelzooError, TaskError
from labelzoo.images import DEFAULT_MAX_PIXELS, open_array
from labelzoo.labelconfig import ObjectTag
from labelzoo.media import MediaResolver, TaskMedia
from labelzoo.media.tasks import Task

log = logging.getLogger("labelzoo.embeddings")
MIB = 1024 * 1024


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


E = TypeVar("E", bound=Sized)


def content_key(data: bytes) -> str:
    """The cache key of an image file: a digest of its bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ImageEmbeddings(Generic[E]):
    """``encode(pixels)`` of each task image, cached by content; values size themselves with ``nbytes``.

    ``encode`` takes (height, width, 3) uint8 RGB pixels at the natural size. ``max_bytes`` bounds the
    cache, ``entry_nbytes`` is the size of one embedding (what the warm-up limit is computed from), and
    images above ``max_pixels`` are refused before decoding. ``name`` names the warm-up thread.
    """

    def __init__(
        self,
        encode: Callable[[np.ndarray], E],
        *,
        max_bytes: int,
        entry_nbytes: int,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        name: str = "embeddings",
    ) -> None:
        if entry_nbytes <= 0:
            raise ValueError(f"entry_nbytes must be positive, got {entry_nbytes}")
        self.encode = encode
        self.max_pixels = max_pixels
        self.capacity = max_bytes // entry_nbytes
        """How many embeddings fit in ``max_bytes``."""
        self.lru: LruCache[str, E] = LruCache(max_bytes=max_bytes, nbytes=lambda embedding: embedding.nbytes)
        self._warmups = WarmUpQueue(name=f"{name}-warmup")
        log.info("%s embedding cache: %d MiB, %d images of %.1f MiB", name, max_bytes // MIB, self.capacity,
                 entry_nbytes / MIB)

    def get(self, task: Task, obj: ObjectTag, media: MediaResolver) -> E:
        """The embedding of the task's image for ``obj``, encoded on a miss (once, however many callers).

        Raises the task's :class:`~labelzoo.errors.LabelzooError` (no such field, a download or decoding
        failure, an image above ``max_pixels``), naming the task and the field.
        """
        if obj.value_list:
            raise TaskError(
                f"<Image name={obj.name!r}> uses valueList (several images); embeddings are made of one image per task"
            )
        key, image = media.for_task(task, obj, _keyed)
        return self.lru.get_or_compute(key, partial(self._encode_file, image))

    def warm(self, tasks: Sequence[Task], images: Sequence[ObjectTag], media: MediaResolver) -> int:
        """Queue the encoding of the tasks' ``images`` in the background; returns how many were queued.

        A task and image queued already (opened again before its warm-up ran) is not queued twice, and no
        more wait than the cache holds: the rest would only push out the first ones.
        """
        jobs = {
            (id(task) if task.id is None else task.id, obj.name): partial(self._warm_one, task, obj, media)
            for task in tasks
            for obj in images
        }
        queued = self._warmups.submit(jobs, limit=self.capacity)
        if queued < len(jobs):
            log.info(
                "warming %d of %d images (queued already, or the cache holds %d)", queued, len(jobs), self.capacity
            )
        return queued

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the queued warm-ups are done; False if some still run after ``timeout`` seconds."""
        return self._warmups.wait_idle(timeout)

    def stats(self) -> CacheStats:
        return self.lru.stats()

    def _encode_file(self, image: TaskMedia) -> E:
        return self.encode(open_array(image.path, max_pixels=self.max_pixels, shown=image.where))

    def _warm_one(self, task: Task, obj: ObjectTag, media: MediaResolver) -> None:
        try:
            self.get(task, obj, media)
        except LabelzooError as exc:  # a bad image fails its own click later, with the same message
            log.warning("no warm-up: %s", exc.message)


def _keyed(image: TaskMedia) -> tuple[str, TaskMedia]:
    """The image file's content key and the file, decoded only on a cache miss."""
    return content_key(image.path.read_bytes()), image
