"""Segment Anything: a click or a box in Label Studio becomes a brush mask and/or polygons.

Interactive requests (``params.context`` holds smart keypoints or a smart rectangle) are answered with
the best of SAM's candidate masks, labelled like the prompt. The image encoder, SAM's heavy half, stays
off the click path: each image's embedding is computed once and kept in an LRU cache shared by all
annotators, and ordinary predictions (Label Studio asks for them when a task is opened) only warm that
cache in the background and answer with an empty prediction (:mod:`labelzoo.mask_prompts`).
"""

from __future__ import annotations

from collections.abc import Sequence

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.devices import DEVICE_TYPES
from labelzoo.embeddings import ImageEmbeddings
from labelzoo.labelconfig import ObjectTag
from labelzoo.mask_prompts import MaskPrompts, mask_prompt_options
from labelzoo.media import MediaResolver
from labelzoo.options import Options
from labelzoo.results import MASK_TAGS

from .checkpoint import CHECKPOINT, MODEL_TYPE, load_sam, model_version
from .segmenter import Embedding, Segmenter


class SegmentAnything(Backend):
    targets = tuple(Target(tag, "Image") for tag in MASK_TAGS)
    interactive = True
    batch_size = 1000  # a non-interactive batch only queues warm-ups
    description = "Segment Anything: smart keypoints and rectangles become masks; embeddings cached per image"

    segmenter: Segmenter
    prompts: MaskPrompts[Embedding]
    cache: ImageEmbeddings[Embedding]

    options = Options(MODEL_TYPE, CHECKPOINT, *mask_prompt_options("SAM", embedding_mib=4))
    device_types = DEVICE_TYPES

    def load(self) -> None:
        self.segmenter = Segmenter(load_sam(self.settings))
        self.prompts = MaskPrompts(
            self, "SAM",
            encode=lambda pixels: self.segmenter.embed(pixels),  # late-bound: the segmenter may be wrapped after load
            segment=lambda *args, **kwargs: self.segmenter.segment(*args, **kwargs),
            entry_nbytes=self.segmenter.embedding_nbytes,
        )  # fmt: skip
        self.cache = self.prompts.cache

    def base_version(self) -> str:
        return model_version(self.settings)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        return self.prompts.predict(tasks, ctx)

    def embedding(self, task: Task, obj: ObjectTag, media: MediaResolver) -> Embedding:
        """The cached embedding of the task's image, computed on a miss (once, however many callers)."""
        return self.cache.get(task, obj, media)
