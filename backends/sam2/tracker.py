"""A track's keyframes on a video → SAM 2 follows the object on through the next frames.

The annotator draws a box on a frame (and may correct it on later ones): every keyframe of the track is a box
prompt of the object on its frame, and ``SAM2VideoPredictor.propagate_in_video`` carries the object's mask on
from the first of them. Each frame after the track's last keyframe, up to ``SAM2_VIDEO_FRAMES`` of them, gets a
keyframe with the box around the mask there (:func:`labelzoo.results.mask_box`); a frame whose mask is empty ends
the lifespan of the keyframe before it (``enabled: false``), and the track goes on where the object comes back.
The annotator's own keyframes are kept as they are. A track whose last keyframe ends its lifespan is not tracked.
Tracking stops at the request's time (``PREDICT_DEADLINE``, Label Studio waits 100 s) and answers the frames
tracked by then: asked again, SAM 2 goes on from the last of them.

Only a window of the video is decoded: from the earliest keyframe used (the last one's, and those within
``SAM2_VIDEO_FRAMES`` frames before it) to ``SAM2_VIDEO_FRAMES`` frames after the latest. The predictor reads a
folder of numbered frames; they are written there losslessly (PNG data: its loader picks files by the ``.jpg``
name and PIL reads them by content), so it sees the decoded pixels themselves. It holds the window in memory as
float32 at its input size: 12 MiB a frame for the official models.

The image encoder's output for each frame is kept across requests (:class:`FrameFeatures`, by the video's
content and the frame, least recently used out first within ``SAM2_VIDEO_CACHE_MB``): asked again after a
correction, SAM 2 encodes only the frames it has not seen. The predictor looks the features up itself
(:class:`CachingVideoPredictor`, the package's ``SAM2VideoPredictor`` with that one lookup added); what it
computes from them is unchanged. A frame's features are its feature pyramid (16 MiB with the official models);
the position encodings, the same for every frame, are kept once.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sam2.sam2_video_predictor import SAM2VideoPredictor

from labelzoo.acceleration import content_key
from labelzoo.caching import LruCache
from labelzoo.errors import MediaError
from labelzoo.prompts import VideoPrompt
from labelzoo.results import Keyframe, TrackKeyframe, VideoTrackRegion, mask_box
from labelzoo.video import VideoInfo, read_frames

Box = tuple[float, float, float, float]  # x, y, width, height in pixels


@dataclass(frozen=True)
class Window:
    """The 1-based frames ``first`` to ``last`` of the video, decoded for one request."""

    first: int
    last: int

    def index(self, frame: int) -> int:
        return frame - self.first


FrameKey = tuple[str, int]  # the video's content key, a 1-based frame


class FrameFeatures:
    """Frames' feature pyramids by :data:`FrameKey`, within ``max_bytes``; the position encodings once."""

    def __init__(self, max_bytes: int) -> None:
        self.lru: LruCache[FrameKey, list[torch.Tensor]] = LruCache(
            max_bytes=max_bytes, nbytes=lambda pyramid: sum(t.element_size() * t.nelement() for t in pyramid))
        self.positions: list[torch.Tensor] | None = None

    def get(self, key: FrameKey, encode: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The backbone output of a frame, as ``encode()`` (the model's ``forward_image``) gives it."""

        def compute() -> list[torch.Tensor]:
            out = encode()
            if self.positions is None:
                self.positions = list(out["vision_pos_enc"])
            return list(out["backbone_fpn"])

        pyramid = self.lru.get_or_compute(key, compute)
        assert self.positions is not None
        return {"vision_features": pyramid[-1], "vision_pos_enc": list(self.positions), "backbone_fpn": list(pyramid)}


class CachingVideoPredictor(SAM2VideoPredictor):
    """``SAM2VideoPredictor`` taking a frame's image features from :attr:`features` while :attr:`frame_keys` names
    the frames of the state being tracked (set by :class:`VideoTracker`, one video at a time)."""

    features: FrameFeatures | None = None
    frame_keys: Sequence[FrameKey] = ()

    def _get_image_feature(self, inference_state: dict[str, Any], frame_idx: int, batch_size: int) -> Any:
        if self.features is not None and frame_idx < len(self.frame_keys) and (
            frame_idx not in inference_state["cached_features"]
        ):
            image = inference_state["images"][frame_idx].to(inference_state["device"]).float().unsqueeze(0)
            backbone_out = self.features.get(self.frame_keys[frame_idx], lambda: self.forward_image(image))
            inference_state["cached_features"] = {frame_idx: (image, backbone_out)}
        return super()._get_image_feature(inference_state, frame_idx, batch_size)


class VideoTracker:
    def __init__(self, predictor: torch.nn.Module, frames: int, seconds: float) -> None:
        self.predictor = predictor
        self.frames = frames
        self.seconds = seconds  # a request's time: tracking stops there, and answers the frames tracked so far
        # propagation reads and writes the predictor's per-video state only, but its memory use is the window's:
        # one video at a time
        self._lock = threading.Lock()

    def track(self, path: Path, info: VideoInfo, prompt: VideoPrompt) -> dict[int, list[Keyframe]]:
        """The keyframes of each track of ``prompt`` (by its position there): its own, then the tracked ones."""
        width, height = info.size
        prompts = {n: self._prompts(track, info.frames) for n, track in enumerate(prompt.tracks)}
        out = {n: [_pixels(k, width, height) for k in track.keyframes] for n, track in enumerate(prompt.tracks)}
        tracked = {n: keyframes for n, keyframes in prompts.items() if keyframes}
        if not tracked:
            return out
        window = Window(min(k.frame for ks in tracked.values() for k in ks),
                        min(info.frames, max(ks[-1].frame for ks in tracked.values()) + self.frames))  # fmt: skip
        stop = time.monotonic() + self.seconds
        with self._lock, tempfile.TemporaryDirectory(prefix="labelzoo-sam2-") as folder:
            _write_frames(path, window, Path(folder))
            video = content_key(path)
            self.predictor.frame_keys = [(video, frame) for frame in range(window.first, window.last + 1)]
            try:
                boxes = self._propagate(Path(folder), window, tracked, width, height, stop)
            finally:
                self.predictor.frame_keys = ()
        for n, by_frame in boxes.items():
            if by_frame and by_frame.get(min(by_frame)) is None:  # gone right after the annotator's last box
                out[n][-1] = replace(out[n][-1], enabled=False)
            out[n].extend(_tracked_keyframes(by_frame))
        return out

    def _prompts(self, track: VideoTrackRegion, frames: int) -> list[TrackKeyframe]:
        """The keyframes that prompt SAM 2 for a track: none when its last one ends it or lies past the video's
        end; else that one and those within ``SAM2_VIDEO_FRAMES`` frames before it."""
        last = track.keyframes[-1]
        if not last.enabled or last.frame >= frames:
            return []
        return [k for k in track.keyframes if k.frame >= last.frame - self.frames]

    def _propagate(self, folder: Path, window: Window, tracked: dict[int, list[TrackKeyframe]], width: int,
                   height: int, stop: float) -> dict[int, dict[int, Box | None]]:  # fmt: skip
        """For each tracked track, the box (None: not seen) on every frame after its last keyframe, up to the
        window's end or the frame being tracked at ``stop`` (``time.monotonic()``)."""
        predictor = self.predictor
        state = predictor.init_state(video_path=str(folder), offload_video_to_cpu=True)
        try:
            for n, keyframes in tracked.items():
                for k in keyframes:
                    box = np.array([k.x * width / 100, k.y * height / 100, (k.x + k.width) * width / 100,
                                    (k.y + k.height) * height / 100], dtype=np.float32)  # fmt: skip
                    predictor.add_new_points_or_box(state, frame_idx=window.index(k.frame), obj_id=n, box=box)
            found: dict[int, dict[int, Box | None]] = {n: {} for n in tracked}
            for index, obj_ids, logits in predictor.propagate_in_video(state):
                frame = window.first + index
                for row, n in enumerate(obj_ids):
                    if frame > tracked[n][-1].frame:
                        found[n][frame] = mask_box((logits[row, 0] > 0).cpu().numpy())
                if time.monotonic() >= stop:
                    break
        finally:
            predictor.reset_state(state)
        return found


def _write_frames(path: Path, window: Window, folder: Path) -> None:
    written = 0
    for frame, image in read_frames(path, range(window.first, window.last + 1)):
        image.save(folder / f"{window.index(frame):05d}.jpg", format="PNG")
        written += 1
    if not written:
        raise MediaError(f"{path.name} has no frame {window.first}, where the track's keyframes are")


def _pixels(keyframe: TrackKeyframe, width: int, height: int) -> Keyframe:
    box = (keyframe.x * width / 100, keyframe.y * height / 100, keyframe.width * width / 100,
           keyframe.height * height / 100)  # fmt: skip
    return Keyframe(frame=keyframe.frame, box=box, enabled=keyframe.enabled)


def _tracked_keyframes(boxes: dict[int, Box | None]) -> list[Keyframe]:
    """One keyframe per frame the object was seen on; the one before a frame it is not seen on ends its lifespan.
    The last one of the window keeps it: asked again, SAM 2 goes on from there."""
    out = []
    for frame, box in sorted(boxes.items()):
        if box is None:
            continue
        following = boxes.get(frame + 1, ...)  # ...: past the window, where the track simply stops
        out.append(Keyframe(frame=frame, box=box, enabled=following is not None))
    return out
