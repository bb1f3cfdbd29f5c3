"""Video files read with OpenCV: what a file says about itself, and its frames decoded one at a time.

Frame numbers are 1-based, as Label Studio's ``<Video>`` counts them. Frame rate and frame count come from the
file (its container's figures); the Video tag's ``frameRate`` should match them, since Label Studio times
keyframes by that attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from labelzoo.errors import MediaError


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    size: tuple[int, int]  # width, height


def video_info(path: Path) -> VideoInfo:
    """Frame rate, frame count and frame size of a video file; MediaError when it cannot be read as one."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(f"{path.name} cannot be read as a video")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if fps <= 0 or frames < 1 or min(size) < 1:
        raise MediaError(f"{path.name}: no frame rate, frames or frame size in the file (fps {fps}, {frames} frames)")
    return VideoInfo(fps, frames, size)


def read_frames(path: Path, frames: Iterable[int]) -> Iterator[tuple[int, Image.Image]]:
    """The video's 1-based ``frames`` as RGB images, decoded in order one at a time (bounded memory); frames past
    the file's last are left out."""
    import cv2

    wanted = sorted(set(frames))
    capture = cv2.VideoCapture(str(path))
    try:
        frame = 0
        for target in wanted:
            while frame < target:
                if not capture.grab():
                    return  # the file holds fewer frames than it said
                frame += 1
            ok, bgr = capture.retrieve()
            if ok:
                yield frame, Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
