"""Segment Anything: a click or a box in Label Studio becomes a brush mask and/or polygons.

Interactive requests (``params.context`` holds smart keypoints or a smart rectangle) are answered with
the best of SAM's candidate masks, labelled like the prompt. The image encoder, SAM's heavy half, stays
off the click path: each image's embedding is computed once and kept in an LRU cache shared by all
annotators, and ordinary predictions (Label Studio asks for them when a task is opened) only warm that
cache in the background and answer with an empty prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from labelzoo import Backend, LabelzooError, MediaError, PredictContext, Prediction, Settings, Target, Task, TaskError
from labelzoo.images import max_pixels_setting, open_image
from labelzoo.labelconfig import ObjectTag
from labelzoo.media import MediaResolver
from labelzoo.taskdata import media_path

from .checkpoint import checkpoint_source, load_sam, model_type
from .embeddings import Embedding, EmbeddingCache, content_key
from .outputs import OUTPUT_TAGS, choose_outputs, mask_regions
from .prompts import read_prompt
from .segmenter import Segmenter
from .warmup import WarmUpQueue

log = logging.getLogger("labelzoo.sam")

MIB = 1024 * 1024


class SegmentAnything(Backend):
    targets = tuple(Target(tag, "Image") for tag in OUTPUT_TAGS)
    interactive = True
    batch_size = 1000  # a non-interactive batch only queues warm-ups
    description = "Segment Anything: smart keypoints and rectangles become masks; embeddings cached per image"

    segmenter: Segmenter
    cache: EmbeddingCache

    def __init__(self, settings: Settings, weights: Path | None = None) -> None:
        super().__init__(settings, weights)
        self.model_type = model_type(settings)
        self.cache_bytes = int(_float_option(settings, "SAM_CACHE_MB", 1024.0) * MIB)
        self.tolerance_px = _float_option(settings, "SAM_POLYGON_TOLERANCE", 1.5)
        self.warmup = settings.bool_option("SAM_WARMUP", True)
        self.max_pixels = max_pixels_setting(settings)
        self._warmups = WarmUpQueue()

    def load(self) -> None:
        self.segmenter = Segmenter(load_sam(self.settings))
        self.cache = EmbeddingCache(self.cache_bytes)
        log.info(
            "SAM embedding cache: %d MiB, %d images of %.1f MiB",
            self.cache_bytes // MIB,
            self.cache_capacity,
            self.segmenter.embedding_nbytes / MIB,
        )

    def base_version(self) -> str:
        source = checkpoint_source(self.settings)
        stem = Path(source.rsplit("/", 1)[-1]).stem
        official = stem.startswith(f"sam_{self.model_type}_")
        return f"sam-{self.model_type}" if official else f"sam-{self.model_type}-{stem}"

    @property
    def cache_capacity(self) -> int:
        """How many image embeddings fit in ``SAM_CACHE_MB``."""
        return self.cache_bytes // self.segmenter.embedding_nbytes

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        if ctx.prompt is not None:
            return [self._segment(task, ctx, ctx.prompt) for task in tasks]
        if self.warmup:
            self._queue_warmups(tasks, ctx)
        # Valid for Label Studio and cheap: the task counts as predicted for this model version.
        return [Prediction(result=[], score=None) for _ in tasks]

    # interactive --------------------------------------------------------------------------------
    def _segment(self, task: Task, ctx: PredictContext, context: Mapping[str, Any]) -> Prediction:
        prompt = read_prompt(context)
        obj = ctx.config.object(prompt.to_name)
        if obj.tag != "Image":
            raise TaskError(f"SAM segments images, but the prompt is drawn on <{obj.tag} name={obj.name!r}>")
        outputs = choose_outputs(ctx.config, obj, prompt.label, ctx.logger)
        embedding = self.embedding(task, obj, ctx.media)
        height, width = embedding.original_size
        points, point_labels = prompt.pixel_points(width, height)
        segment = self.segmenter.segment(
            embedding, points=points, point_labels=point_labels, box=prompt.pixel_box(width, height)
        )
        score = min(max(segment.score, 0.0), 1.0)
        result = [
            region
            for output in outputs
            for region in mask_regions(output, obj.name, segment.mask, score, tolerance_px=self.tolerance_px)
        ]
        return Prediction(result=result, score=score)

    # embeddings ---------------------------------------------------------------------------------
    def embedding(self, task: Task, obj: ObjectTag, media: MediaResolver) -> Embedding:
        """The cached embedding of the task's image, computed on a miss (once, however many callers)."""
        if obj.value_list:
            raise TaskError(f"<Image name={obj.name!r}> uses valueList (several images); SAM handles one image")
        path = media_path(task, obj, media)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"task {task.id}: cannot read the image {path}: {exc.strerror or exc}") from exc

        def encode() -> Embedding:
            # EXIF-transposed RGB: Label Studio's percent coordinates refer to the image as browsers show it.
            image = open_image(path, max_pixels=self.max_pixels, shown=f"task {task.id}'s image {obj.name!r}")
            return self.segmenter.embed(np.asarray(image))

        return self.cache.get_or_compute(content_key(data), encode)

    def _queue_warmups(self, tasks: Sequence[Task], ctx: PredictContext) -> None:
        """Encode the tasks' images in the background, no more at a time than the cache holds."""
        images = list({obj.name: obj for _, obj in ctx.config.pairs(OUTPUT_TAGS, "Image")}.values())
        jobs = [partial(self._warm, task, obj, ctx.media) for task in tasks for obj in images]
        queued = self._warmups.submit(jobs, limit=self.cache_capacity)
        if queued < len(jobs):
            log.info("warming %d of %d images: the cache holds %d", queued, len(jobs), self.cache_capacity)

    def _warm(self, task: Task, obj: ObjectTag, media: MediaResolver) -> None:
        try:
            self.embedding(task, obj, media)
        except LabelzooError as exc:  # a bad image fails its own click later, with the same message
            log.warning("task %s: no warm-up for %r: %s", task.id, obj.name, exc.message)

    def wait_for_warmups(self, timeout: float | None = None) -> bool:
        """Block until the queued warm-ups are done; False if some still run after ``timeout`` seconds."""
        return self._warmups.wait_idle(timeout)


def _float_option(settings: Settings, name: str, default: float) -> float:
    raw = settings.option(name)
    try:
        value = default if raw is None else float(raw)
    except ValueError:
        raise LabelzooError(f"{name}={raw!r} is not a number") from None
    if not value >= 0:  # also rejects NaN
        raise LabelzooError(f"{name}={raw!r} must be a number >= 0")
    return value
