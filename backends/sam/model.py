"""Segment Anything: a click or a box in Label Studio becomes a brush mask and/or polygons.

Interactive requests (``params.context`` holds smart keypoints or a smart rectangle) are answered with
the best of SAM's candidate masks, labelled like the prompt. The image encoder, SAM's heavy half, stays
off the click path: each image's embedding is computed once and kept in an LRU cache shared by all
annotators (:class:`labelzoo.embeddings.ImageEmbeddings`), and ordinary predictions (Label Studio asks
for them when a task is opened) only warm that cache in the background and answer with an empty
prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.devices import DEVICE_TYPES
from labelzoo.embeddings import MIB, ImageEmbeddings
from labelzoo.images import MAX_MEGAPIXELS, max_pixels_setting
from labelzoo.labelconfig import ObjectTag
from labelzoo.media import MediaResolver
from labelzoo.options import Option, Options
from labelzoo.prompts import read_image_prompt
from labelzoo.results import MASK_TAGS, mask_outputs, mask_regions

from .checkpoint import CHECKPOINT, MODEL_TYPE, load_sam, model_version
from .segmenter import Embedding, Segmenter


class SegmentAnything(Backend):
    targets = tuple(Target(tag, "Image") for tag in MASK_TAGS)
    interactive = True
    batch_size = 1000  # a non-interactive batch only queues warm-ups
    description = "Segment Anything: smart keypoints and rectangles become masks; embeddings cached per image"

    segmenter: Segmenter
    cache: ImageEmbeddings[Embedding]

    options = Options(
        MODEL_TYPE,
        CHECKPOINT,
        Option("SAM_CACHE_MB", float, 1024.0, low=0, doc="memory for image embeddings (4 MiB each with the official "
               "models: 256 images); on a GPU it is GPU memory"),
        Option("SAM_WARMUP", bool, True, doc="encode images when Label Studio asks for ordinary predictions; "
               "`false` leaves encoding to the first click"),
        MAX_MEGAPIXELS,
        Option("SAM_POLYGON_TOLERANCE", float, 1.5, low=0, doc="polygon simplification, in pixels of the natural "
               "image (0 keeps every boundary pixel)"),
    )
    device_types = DEVICE_TYPES

    def load(self) -> None:
        self.segmenter = Segmenter(load_sam(self.settings))
        self.cache = ImageEmbeddings(
            lambda pixels: self.segmenter.embed(pixels),  # late-bound: segmenter.embed may be wrapped after load
            max_bytes=int(self.options.sam_cache_mb * MIB),
            entry_nbytes=self.segmenter.embedding_nbytes,
            max_pixels=max_pixels_setting(self.settings),
            name="sam",
        )

    def base_version(self) -> str:
        return model_version(self.settings)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        if ctx.prompt is not None:
            return [self._segment(task, ctx, ctx.prompt) for task in tasks]
        if self.options.sam_warmup:
            images = {obj.name: obj for _, obj in ctx.config.pairs(MASK_TAGS, "Image")}
            self.cache.warm(tasks, list(images.values()), ctx.media)
        # Valid for Label Studio and cheap: the task counts as predicted for this model version.
        return [Prediction(result=[], score=None) for _ in tasks]

    def _segment(self, task: Task, ctx: PredictContext, context: Mapping[str, Any]) -> Prediction:
        prompt = read_image_prompt(context)
        obj = prompt.image(ctx.config)
        outputs = mask_outputs(ctx.config, obj, prompt.label, ctx.logger)
        embedding = self.embedding(task, obj, ctx.media)
        height, width = embedding.original_size
        points, point_labels = prompt.pixel_points(width, height)
        segment = self.segmenter.segment(
            embedding, points=points, point_labels=point_labels, box=prompt.pixel_box(width, height)
        )
        score = min(max(segment.score, 0.0), 1.0)
        tolerance = self.options.sam_polygon_tolerance
        result = [
            region for output in outputs
            for region in mask_regions(output, obj.name, segment.mask, score, tolerance_px=tolerance)
        ]
        return Prediction(result=result, score=score)

    def embedding(self, task: Task, obj: ObjectTag, media: MediaResolver) -> Embedding:
        """The cached embedding of the task's image, computed on a miss (once, however many callers)."""
        return self.cache.get(task, obj, media)
