"""Segment Anything 2: a click or a box on an image becomes a mask; a box on a video frame becomes a track.

Interactive requests (``params.context``) are answered by the ``sam2`` package's own predictors on one model:

* on an ``<Image>``, smart keypoints and rectangles become a brush mask and/or polygons, labelled like the
  prompt (:mod:`.segmenter`). Each image's features are computed once and kept in an LRU cache shared by all
  annotators; ordinary predictions (Label Studio asks for them when a task is opened) only warm that cache in
  the background and answer with an empty prediction (:mod:`labelzoo.mask_prompts`);
* on a ``<Video>``, a ``<VideoRectangle smart="true">`` track is carried on through the next frames
  (:mod:`.tracker`), and answered as the same track (same id and labels) with the new keyframes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.devices import DEVICE_TYPES
from labelzoo.embeddings import MIB, ImageEmbeddings
from labelzoo.mask_prompts import MaskPrompts, mask_prompt_options
from labelzoo.options import Option, Options
from labelzoo.prompts import is_video_prompt, read_video_prompt
from labelzoo.results import MASK_TAGS, video_rectangle
from labelzoo.video import video_info

from .checkpoint import CHECKPOINT, CONFIG, MODEL, load_sam2, model_version
from .segmenter import Embedding, ImageSegmenter
from .tracker import CachingVideoPredictor, FrameFeatures, VideoTracker


class SegmentAnything2(Backend):
    targets = (*(Target(tag, "Image") for tag in MASK_TAGS), Target("VideoRectangle", "Video"))
    interactive = True
    batch_size = 1000  # a non-interactive batch only queues warm-ups
    description = "Segment Anything 2: smart keypoints and rectangles become masks, a box on a video frame a track"

    options = Options(
        MODEL, CONFIG, CHECKPOINT, *mask_prompt_options("SAM2", embedding_mib=16),
        Option("SAM2_VIDEO_FRAMES", int, 30, low=1, high=1000, doc="frames a video track is carried on past its "
               "last keyframe per request (each frame of the window held in memory: 12 MiB with the official models)"),
        Option("SAM2_VIDEO_CACHE_MB", float, 1024.0, low=0, doc="memory for video frames' image features, kept across "
               "requests (16 MiB a frame with the official models: 64 frames); on a GPU it is GPU memory"),
    )  # fmt: skip
    device_types = DEVICE_TYPES

    segmenter: ImageSegmenter
    tracker: VideoTracker
    prompts: MaskPrompts[Embedding]
    cache: ImageEmbeddings[Embedding]

    def load(self) -> None:
        model = load_sam2(self.settings, CachingVideoPredictor)
        model.features = FrameFeatures(int(self.options.sam2_video_cache_mb * MIB))
        self.segmenter = ImageSegmenter(model)
        self.tracker = VideoTracker(model, frames=self.options.sam2_video_frames,
                                    seconds=self.settings.predict_deadline or math.inf)  # 0: off
        self.prompts = MaskPrompts(
            self, "SAM2",
            encode=lambda pixels: self.segmenter.embed(pixels),  # late-bound: the segmenter may be wrapped after load
            segment=lambda *args, **kwargs: self.segmenter.segment(*args, **kwargs),
            entry_nbytes=self.segmenter.embedding_nbytes(),
        )  # fmt: skip
        self.cache = self.prompts.cache

    def base_version(self) -> str:
        return model_version(self.settings)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        if ctx.prompt is not None and is_video_prompt(ctx.prompt):
            return [self._track(task, ctx) for task in tasks]
        return self.prompts.predict(tasks, ctx)

    def _track(self, task: Task, ctx: PredictContext) -> Prediction:
        prompt = read_video_prompt(ctx.prompt or {})
        obj = prompt.video(ctx.config)
        path = ctx.media.for_task(task, obj)
        info = video_info(path)
        keyframes = self.tracker.track(path, info, prompt)
        result = [
            video_rectangle(str(track.item.get("from_name") or ""), obj.name, keyframes=keyframes[n],
                            frame_size=info.size, fps=info.fps, frames_count=info.frames,
                            labels=list(track.raw_labels) or None, region_id=track.id)
            for n, track in enumerate(prompt.tracks)
        ]  # fmt: skip
        return Prediction(result=result, score=None)
