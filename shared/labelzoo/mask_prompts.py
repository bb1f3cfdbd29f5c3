"""Smart keypoints and rectangles on an image answered with a mask: the recipe every click-to-mask backend shares.

A backend brings its model's two halves: ``encode(pixels)``, the heavy image encoder run once per image, whose
embedding has ``nbytes`` and ``original_size`` (height, width), and ``segment(embedding, points=, point_labels=,
box=)``, the light decoder run on every click, whose answer has a bool ``mask`` at the natural size and a
``score``. :class:`MaskPrompts` does the rest the same way for each of them:

* embeddings are cached by image content within ``<PREFIX>_CACHE_MB`` (:class:`labelzoo.embeddings.ImageEmbeddings`);
* ordinary predictions (Label Studio asks for them when a task is opened) answer at once with an empty prediction
  and, unless ``<PREFIX>_WARMUP=false``, encode the tasks' images in the background;
* a prompt (:func:`labelzoo.prompts.read_image_prompt`) becomes the mask of the output controls that have its
  label (:func:`labelzoo.results.mask_outputs`): a brush region and/or polygons simplified to
  ``<PREFIX>_POLYGON_TOLERANCE`` pixels, scored by the model's score clamped to 0..1.

The settings are declared once here (:func:`mask_prompt_options`), under the backend's prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from labelzoo.backend import Backend, PredictContext, Prediction
from labelzoo.embeddings import MIB, ImageEmbeddings
from labelzoo.images import MAX_MEGAPIXELS, max_pixels_setting
from labelzoo.media.tasks import Task
from labelzoo.options import Option
from labelzoo.prompts import read_image_prompt
from labelzoo.results import MASK_TAGS, mask_outputs, mask_regions


class Embedding(Protocol):
    @property
    def nbytes(self) -> int: ...

    @property
    def original_size(self) -> tuple[int, int]: ...


class Segment(Protocol):
    mask: np.ndarray
    score: float


E = TypeVar("E", bound=Embedding)


def mask_prompt_options(prefix: str, *, embedding_mib: float) -> tuple[Option, ...]:
    """The settings of :class:`MaskPrompts` under ``prefix`` (``SAM``: ``SAM_CACHE_MB``, ...); ``embedding_mib`` is
    one embedding's size with the official models, for the docs."""
    return (
        Option(f"{prefix}_CACHE_MB", float, 1024.0, low=0,
               doc=f"memory for image embeddings ({embedding_mib:g} MiB each with the official models: "
               f"{int(1024 // embedding_mib)} images); on a GPU it is GPU memory"),
        Option(f"{prefix}_WARMUP", bool, True, doc="encode images when Label Studio asks for ordinary predictions; "
               "`false` leaves encoding to the first click"),
        MAX_MEGAPIXELS,
        Option(f"{prefix}_POLYGON_TOLERANCE", float, 1.5, low=0, doc="polygon simplification, in pixels of the "
               "natural image (0 keeps every boundary pixel)"),
    )  # fmt: skip


class MaskPrompts(Generic[E]):
    """Answers a backend's image prompts and warms its embeddings; ``cache`` is the embedding cache."""

    def __init__(self, backend: Backend, prefix: str, *, encode: Callable[[np.ndarray], E],
                 segment: Callable[..., Segment], entry_nbytes: int) -> None:  # fmt: skip
        key = prefix.lower()
        values = backend.options
        self.segment = segment
        self.warmup: bool = getattr(values, f"{key}_warmup")
        self.tolerance: float = getattr(values, f"{key}_polygon_tolerance")
        self.cache: ImageEmbeddings[E] = ImageEmbeddings(
            encode, max_bytes=int(getattr(values, f"{key}_cache_mb") * MIB), entry_nbytes=entry_nbytes,
            max_pixels=max_pixels_setting(backend.settings), name=key,
        )  # fmt: skip

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        """A mask for each task's prompt; without a prompt, empty predictions (valid for Label Studio: the task
        counts as predicted for this version) while the images are encoded in the background."""
        if ctx.prompt is not None:
            return [self.answer(task, ctx) for task in tasks]
        if self.warmup:
            images = {obj.name: obj for _, obj in ctx.config.pairs(MASK_TAGS, "Image")}
            self.cache.warm(tasks, list(images.values()), ctx.media)
        return [Prediction(result=[], score=None) for _ in tasks]

    def answer(self, task: Task, ctx: PredictContext) -> Prediction:
        prompt = read_image_prompt(ctx.prompt or {})
        obj = prompt.image(ctx.config)
        outputs = mask_outputs(ctx.config, obj, prompt.label, ctx.logger)
        embedding = self.cache.get(task, obj, ctx.media)
        height, width = embedding.original_size
        points, point_labels = prompt.pixel_points(width, height)
        found = self.segment(embedding, points=points, point_labels=point_labels, box=prompt.pixel_box(width, height))
        score = min(max(float(found.score), 0.0), 1.0)
        result: list[dict[str, Any]] = [
            region for output in outputs
            for region in mask_regions(output, obj.name, found.mask, score, tolerance_px=self.tolerance)
        ]  # fmt: skip
        return Prediction(result=result, score=score)
