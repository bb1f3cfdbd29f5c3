"""Interactive prompts: the smart regions Label Studio sends in ``params.context`` → clicks and a box.

When an annotator draws with a smart tool (auto-annotation on), the editor sends the *connected*
regions (protocol §1.6, §5.12): every smart region of one type, label and image drawn so far, so all
the positive and negative keypoints placed with a label, or all the smart rectangles. Keypoints
together describe one object; of several rectangles only the newest (the last) is the one just drawn,
so it is the box. :func:`read_image_prompt` turns them into an :class:`ImagePrompt`; coordinates stay in
percent of the natural image size and become pixels once the backend knows that size
(:meth:`ImagePrompt.pixel_points`, :meth:`ImagePrompt.pixel_box`). On a ``<Video>`` the editor sends the
``videorectangle`` tracks instead, keyframes and all: :func:`read_video_prompt` reads them into a
:class:`VideoPrompt`.

Unlike the annotation readers of :mod:`labelzoo.results`, which skip odd items, a malformed prompt is a
:class:`~labelzoo.errors.TaskError` naming the item and the field: the annotator is waiting for an
answer to exactly this click.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelzoo.errors import TaskError
from labelzoo.labelconfig import LabelConfig, ObjectTag
from labelzoo.results.geometry import rotated_box_corners
from labelzoo.results.readers import VideoTrackRegion, read_video_rectangles

POINT_TYPES = frozenset({"keypointlabels", "keypoint"})
BOX_TYPES = frozenset({"rectanglelabels", "rectangle"})
TRACK_TYPE = "videorectangle"
PIXEL_SLACK = 1e-6


@dataclass(frozen=True)
class Click:
    x: float
    """Percent of the image width."""
    y: float
    """Percent of the image height."""
    positive: bool
    """True: the object is here; False: background (a negative smart keypoint, drawn with Alt)."""


@dataclass(frozen=True)
class Box:
    """A Label Studio rectangle: top-left corner and size in percent, rotated clockwise about that corner."""

    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0


@dataclass(frozen=True)
class ImagePrompt:
    from_name: str
    """The prompt control (a ``KeyPointLabels`` or ``RectangleLabels``)."""
    to_name: str
    """The object tag the prompt is drawn on."""
    label: str | None
    """The label the annotator drew the prompt with, as written; the answer should carry it too."""
    clicks: tuple[Click, ...]
    box: Box | None
    region_id: str | None = None
    """The id of the newest region (the box or click just drawn), when the editor sent one: an answer about that
    region itself (the text read inside the box) reuses it, so the editor joins the answer to the annotator's
    region (protocol §5.1, P15)."""

    def image(self, config: LabelConfig) -> ObjectTag:
        """The ``<Image>`` of ``config`` the prompt is drawn on; a :class:`TaskError` if it is another object."""
        obj = config.object(self.to_name)
        if obj.tag != "Image":
            raise TaskError(
                f"this backend answers prompts on images, but the prompt is drawn on <{obj.tag} name={obj.name!r}>"
            )
        return obj

    def pixel_points(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """(N, 2) pixel x, y inside the image and (N,) point labels (1 object, 0 background); ``(None, None)``
        without clicks."""
        if not self.clicks:
            return None, None
        points = np.array([[c.x * width / 100.0, c.y * height / 100.0] for c in self.clicks])
        np.clip(points, 0.0, (width, height), out=points)
        return points, np.array([1 if c.positive else 0 for c in self.clicks])

    def pixel_box(self, width: int, height: int) -> np.ndarray | None:
        """(4,) pixel x0, y0, x1, y1: the box, or the axis-aligned bounds of a rotated one, inside the image."""
        if self.box is None:
            return None
        b = self.box
        x, y, w, h = b.x * width / 100.0, b.y * height / 100.0, b.width * width / 100.0, b.height * height / 100.0
        theta = math.radians(b.rotation)
        cos, sin = math.cos(theta), math.sin(theta)
        # Label Studio turns the box about its top-left corner; rotated_box_corners turns about the centre.
        center = (x + (w * cos - h * sin) / 2.0, y + (w * sin + h * cos) / 2.0)
        corners = rotated_box_corners(center, (w, h), b.rotation)
        low = np.clip(corners.min(axis=0), 0.0, (width, height))
        high = np.clip(corners.max(axis=0), 0.0, (width, height))
        return np.concatenate((low, high))


    def pixel_rect(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """(left, top, width, height) of the whole pixels :meth:`pixel_box` covers, for cropping; None without a
        box. A coordinate within a millionth of a pixel of a whole number counts as that number, so a box
        drawn on pixel edges does not grow by a pixel through the percent round trip."""
        box = self.pixel_box(width, height)
        if box is None:
            return None
        left, top = (math.floor(v + PIXEL_SLACK) for v in box[:2])
        right, bottom = (math.ceil(v - PIXEL_SLACK) for v in box[2:])
        return left, top, max(right - left, 0), max(bottom - top, 0)


def read_image_prompt(context: Mapping[str, Any]) -> ImagePrompt:
    """The keypoints and/or rectangle in ``params.context``; a :class:`TaskError` names what is missing or
    malformed."""
    items = context.get("result")
    if not isinstance(items, list):
        raise TaskError(
            f"params.context.result must be a list of smart regions, got {type(items).__name__}; "
            "draw a smart keypoint or smart rectangle with auto-annotation on"
        )
    regions = [item for item in items if isinstance(item, Mapping) and item.get("type") in POINT_TYPES | BOX_TYPES]
    if not regions:
        types = sorted({str(item.get("type")) for item in items if isinstance(item, Mapping)}) or ["none"]
        raise TaskError(
            "this backend needs keypoint or rectangle prompts in params.context.result "
            f'(found region types: {", ".join(types)}); use <KeyPointLabels smart="true"> or '
            '<RectangleLabels smart="true"> on the image'
        )
    to_names = {item.get("to_name") for item in regions}
    if len(to_names) != 1 or not all(isinstance(name, str) and name for name in to_names):
        raise TaskError(f"the prompt regions must all point at one image (to_name), got {sorted(map(str, to_names))}")
    clicks: list[Click] = []
    boxes: list[Box] = []
    for index, item in enumerate(regions):
        value = item.get("value")
        if not isinstance(value, Mapping):
            raise TaskError(f"prompt region {index} ({item['type']}) has no 'value' object")
        if item["type"] in POINT_TYPES:
            clicks.append(Click(_number(value, "x", index), _number(value, "y", index), _positive(item, index)))
        else:
            x, y, width, height = (_number(value, key, index) for key in ("x", "y", "width", "height"))
            boxes.append(Box(x, y, width, height, _number(value, "rotation", index, default=0.0)))
    newest = regions[-1]
    return ImagePrompt(
        from_name=str(newest.get("from_name") or ""),
        to_name=str(newest["to_name"]),
        label=_label(newest),
        clicks=tuple(clicks),
        box=boxes[-1] if boxes else None,
        region_id=newest["id"] if isinstance(newest.get("id"), str) and newest["id"] else None,
    )


@dataclass(frozen=True)
class VideoPrompt:
    """The tracks drawn on one video: each with its id, labels and keyframes (1-based frames, boxes in percent of
    the frame, :class:`~labelzoo.results.readers.VideoTrackRegion`)."""

    to_name: str
    tracks: tuple[VideoTrackRegion, ...]

    def video(self, config: LabelConfig) -> ObjectTag:
        """The ``<Video>`` of ``config`` the tracks are drawn on; a :class:`TaskError` if it is another object."""
        obj = config.object(self.to_name)
        if obj.tag != "Video":
            raise TaskError(f"the prompt tracks are drawn on <{obj.tag} name={obj.name!r}>, not on a <Video>")
        return obj


def is_video_prompt(context: Mapping[str, Any]) -> bool:
    """Whether ``params.context`` holds video tracks (else it is read as an image prompt)."""
    items = context.get("result")
    return isinstance(items, list) and any(isinstance(i, Mapping) and i.get("type") == TRACK_TYPE for i in items)


def read_video_prompt(context: Mapping[str, Any]) -> VideoPrompt:
    """The ``videorectangle`` tracks in ``params.context``; a :class:`TaskError` when there is none with a
    keyframe, or when they point at several videos."""
    items = [item for item in context.get("result") or () if isinstance(item, Mapping)]
    tracks = read_video_rectangles([item for item in items if item.get("type") == TRACK_TYPE], None)
    if not tracks:
        raise TaskError(
            "this backend needs a video track in params.context.result (a videorectangle region with at least one "
            'keyframe of whole-number frame and x, y, width, height); draw a box with <VideoRectangle smart="true">'
        )
    to_names = {track.item.get("to_name") for track in tracks}
    if len(to_names) != 1 or not all(isinstance(name, str) and name for name in to_names):
        raise TaskError(f"the prompt tracks must all be on one video (to_name), got {sorted(map(str, to_names))}")
    return VideoPrompt(to_name=str(to_names.pop()), tracks=tuple(tracks))


def _number(value: Mapping[str, Any], key: str, index: int, default: float | None = None) -> float:
    raw = value.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise TaskError(f"prompt region {index} has value.{key}={raw!r}; expected a number (percent)")
    return float(raw)


def _positive(item: Mapping[str, Any], index: int) -> bool:
    """``is_positive`` of a smart keypoint; a plain keypoint without it counts as positive."""
    flag = item.get("is_positive", True)
    if not isinstance(flag, bool):
        raise TaskError(f"prompt region {index} has is_positive={flag!r}; expected true or false")
    return flag


def _label(item: Mapping[str, Any]) -> str | None:
    value = item["value"]
    for key in (item["type"], "labels"):
        labels = value.get(key)
        if isinstance(labels, Sequence) and not isinstance(labels, str) and labels and isinstance(labels[0], str):
            return labels[0]
    return None
