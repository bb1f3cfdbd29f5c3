"""Annotation readers: one control's items of a Label Studio result list → small typed regions.

The inverse of the builders in :mod:`labelzoo.results.regions`::

    read_choices(result, control, to_name=None)       -> list[ChoicesRegion]
    read_spans(result, control, to_name=None)         -> list[SpanRegion]        Labels on Text / HyperText
    read_rectangles(result, control, to_name=None)    -> list[RectangleRegion]   with rotation
    read_polygons(result, control, to_name=None)      -> list[PolygonRegion]
    read_brushes(result, control, to_name=None, *, image_size=None) -> list[BrushRegion]   RLE → bool mask
    read_keypoints(result, control, to_name=None)     -> list[KeypointRegion]    with parentID
    read_textareas(result, control, to_name=None)     -> list[TextAreaRegion]
    label_key(control, label)                         -> str | None

Conventions:

* An item belongs to ``control`` when its ``from_name`` is the control's name and its ``to_name`` is
  ``to_name`` (default: any of the control's ``toName`` objects). ``control=None`` reads every item of
  the kind on ``to_name``, whichever control made it, with labels as written.
* Items of other kinds, items that are not dicts and items whose ``value`` lacks a field the kind
  needs (or holds one that is not a finite number) are skipped: annotations are user data, and one
  odd item must not stop training on the rest.
* ``labels`` are the control's label keys, resolved by :func:`label_key`; ``raw_labels`` are the
  strings as written (so ``raw_labels`` without ``labels`` means labels the control does not have).
* Geometry stays in percent of the image, as stored; the methods convert to pixels of a natural image
  size ``(width, height)``, by default the item's ``original_width`` and ``original_height``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from labelzoo.labelconfig import ControlTag, build_label_map
from labelzoo.results.errors import ResultError
from labelzoo.results.rle import rle_to_mask

Item = Mapping[str, Any]
Size = tuple[int, int]


# --- labels --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def label_key(control: ControlTag, label: str) -> str | None:
    """The control's label key for an annotated ``label``; ``None`` when the control has no such label.

    Tried in order: the key itself (``alias`` if set, else ``value``); a label's ``value`` (results of
    an aliased label may hold either); then the model-label rules of
    :func:`~labelzoo.labelconfig.build_label_map` (``predicted_values``, case and ``_``/``-`` insensitive),
    which catch annotations made before a label was renamed. Dynamic labels are kept as written.
    """
    if control.dynamic_labels or label in control.label_keys:
        return label
    by_value = next((tag.key for tag in control.labels if tag.value == label), None)
    return by_value if by_value is not None else build_label_map(control, [label]).get(label)


# --- what the readers return ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReadRegion:
    """What every read item has: its id, its labels and the item itself."""

    id: str | None
    labels: tuple[str, ...]
    """The control's label keys (choices, for a Choices control), in the item's order."""
    raw_labels: tuple[str, ...]
    """The item's label strings as written."""
    item: Item = field(repr=False, compare=False)

    @property
    def label(self) -> str | None:
        """The first label key, or ``None`` when the item has none the control knows."""
        return self.labels[0] if self.labels else None

    @property
    def original_size(self) -> Size | None:
        """``(original_width, original_height)`` from the item, when both are positive integers."""
        return _original_size(self.item)

    def _size(self, size: Sequence[int] | None) -> Size:
        if size is not None:
            width, height = size
            return int(width), int(height)
        found = self.original_size
        if found is None:
            raise ResultError(f"region {self.id!r} has no original_width/original_height; pass the natural image size")
        return found


@dataclass(frozen=True, kw_only=True)
class ChoicesRegion(ReadRegion):
    """A Choices item: its choices are ``labels``."""


@dataclass(frozen=True, kw_only=True)
class SpanRegion(ReadRegion):
    """A labelled text span. ``start``/``end`` are code-point offsets, ``end`` exclusive.

    They are ``None`` when the item holds no integer offsets; a HyperText span's XPath offsets are
    replaced by its ``globalOffsets`` when it has them.
    """

    start: int | None
    end: int | None
    text: str | None

    def problem(self, text: str) -> str | None:
        """Why this span does not fit the task's ``text`` (``None`` when it does)."""
        if self.start is None or self.end is None:
            return "start and end must be integer character offsets (HyperText XPath offsets are not supported)"
        if not 0 <= self.start < self.end <= len(text):
            return f"out of bounds: the text has {len(text)} characters"
        if self.text is not None and self.text != text[self.start : self.end]:
            return f"its text {self.text!r} differs from the task text there ({text[self.start : self.end]!r})"
        return None


@dataclass(frozen=True, kw_only=True)
class RectangleRegion(ReadRegion):
    """A box in percent: (x, y) its top-left corner, ``rotation`` degrees clockwise around that corner."""

    x: float
    y: float
    width: float
    height: float
    rotation: float

    def box(self, size: Sequence[int] | None = None) -> tuple[float, float, float, float]:
        """(x, y, w, h) in pixels of ``size`` (before rotation)."""
        image_w, image_h = self._size(size)
        return (self.x * image_w / 100, self.y * image_h / 100, self.width * image_w / 100, self.height * image_h / 100)

    def corners(self, size: Sequence[int] | None = None) -> np.ndarray:
        """Corners (4, 2) in pixels: top-left, top-right, bottom-right, bottom-left (as drawn, rotated)."""
        x, y, w, h = self.box(size)
        theta = math.radians(self.rotation)
        along = np.array([math.cos(theta), math.sin(theta)])
        down = np.array([-math.sin(theta), math.cos(theta)])
        top_left = np.array([x, y])
        return np.array([top_left, top_left + w * along, top_left + w * along + h * down, top_left + h * down])


@dataclass(frozen=True, kw_only=True)
class PolygonRegion(ReadRegion):
    """A polygon (or an open polyline, ``closed=False``); ``points`` (N, 2) in percent."""

    points: np.ndarray = field(compare=False)
    closed: bool

    def pixels(self, size: Sequence[int] | None = None) -> np.ndarray:
        """The points (N, 2) in pixels of ``size``."""
        return self.points * np.asarray(self._size(size), dtype=np.float64) / 100


@dataclass(frozen=True, kw_only=True)
class BrushRegion(ReadRegion):
    """A brush mask decoded from RLE: (height, width) bool at the size it was drawn on."""

    mask: np.ndarray = field(compare=False)

    def resized(self, size: Sequence[int]) -> np.ndarray:
        """The mask at ``size`` (width, height), nearest neighbour: each pixel takes the one under its centre."""
        width, height = (int(v) for v in size)
        rows, cols = self.mask.shape
        if (cols, rows) == (width, height):
            return self.mask
        ys = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(np.intp), rows - 1)
        xs = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(np.intp), cols - 1)
        return self.mask[np.ix_(ys, xs)]


@dataclass(frozen=True, kw_only=True)
class KeypointRegion(ReadRegion):
    """A point in percent; ``width`` its drawn size in percent of the image width."""

    x: float
    y: float
    width: float | None
    parent_id: str | None

    def point(self, size: Sequence[int] | None = None) -> tuple[float, float]:
        """(x, y) in pixels of ``size``."""
        image_w, image_h = self._size(size)
        return self.x * image_w / 100, self.y * image_h / 100


@dataclass(frozen=True, kw_only=True)
class TextAreaRegion(ReadRegion):
    """TextArea text; a per-region one shares its ``id`` with the region it describes."""

    texts: tuple[str, ...]


@dataclass(frozen=True)
class TrackKeyframe:
    """One keyframe of a read video track: 1-based ``frame``, the box in percent, and whether the track goes on."""

    frame: int
    x: float
    y: float
    width: float
    height: float
    enabled: bool


@dataclass(frozen=True, kw_only=True)
class VideoTrackRegion(ReadRegion):
    """A ``videorectangle`` track, its keyframes sorted by frame, read as the editor plays it: from an enabled
    keyframe to the next the box moves linearly; after a keyframe with ``enabled: false`` the object is gone
    until the next keyframe; after an enabled last keyframe it stays where it is to the end of the video."""

    keyframes: tuple[TrackKeyframe, ...]

    def box_at(self, frame: int) -> tuple[float, float, float, float] | None:
        """(x, y, w, h) in percent at 1-based ``frame``, or None when the object is not on it."""
        before = [k for k in self.keyframes if k.frame <= frame]
        if not before:
            return None
        last = before[-1]
        if last.frame == frame:
            return last.x, last.y, last.width, last.height
        if not last.enabled:
            return None
        after = next((k for k in self.keyframes if k.frame > frame), None)
        if after is None:
            return last.x, last.y, last.width, last.height
        t = (frame - last.frame) / (after.frame - last.frame)
        return tuple(a + (b - a) * t for a, b in zip((last.x, last.y, last.width, last.height),
                                                   (after.x, after.y, after.width, after.height), strict=True))

    def visible(self, frames: int) -> list[int]:
        """The 1-based frames (of a video of ``frames``) the object is on."""
        return [f for f in range(1, frames + 1) if self.box_at(f) is not None]


@dataclass(frozen=True, kw_only=True)
class TimelineRegion(ReadRegion):
    """A ``timelinelabels`` region: its labels over frame ranges, 1-based with both ends included."""

    ranges: tuple[tuple[int, int], ...]

    def frames(self) -> list[int]:
        """Every frame of its ranges, in order."""
        return sorted({frame for start, end in self.ranges for frame in range(start, end + 1)})


# --- readers -------------------------------------------------------------------------------------


def read_choices(result: Sequence[Any], control: ControlTag | None, to_name: str | None = None) -> list[ChoicesRegion]:
    return [
        ChoicesRegion(**_common(item, control, _label_list(item, value)))
        for item, value in _items(result, control, to_name, ("choices",))
    ]


def read_spans(result: Sequence[Any], control: ControlTag | None, to_name: str | None = None) -> list[SpanRegion]:
    """Labelled text spans (``labels`` on Text, ``hypertextlabels`` on HyperText)."""
    found = []
    for item, value in _items(result, control, to_name, ("labels", "hypertextlabels")):
        start, end = value.get("start"), value.get("end")
        offsets = value.get("globalOffsets")
        if not (_is_int(start) and _is_int(end)) and isinstance(offsets, Mapping):
            start, end = offsets.get("start"), offsets.get("end")
        text = value.get("text")
        found.append(
            SpanRegion(
                **_common(item, control, _label_list(item, value)),
                start=int(start) if _is_int(start) else None,
                end=int(end) if _is_int(end) else None,
                text=text if isinstance(text, str) else None,
            )
        )
    return found


def read_rectangles(
    result: Sequence[Any], control: ControlTag | None, to_name: str | None = None
) -> list[RectangleRegion]:
    found = []
    for item, value in _items(result, control, to_name, ("rectangle", "rectanglelabels")):
        unrotated = {**value, "rotation": value.get("rotation") or 0.0}  # a missing or null rotation is 0
        numbers = _numbers(unrotated, ("x", "y", "width", "height", "rotation"))
        if numbers is None:
            continue
        x, y, width, height, rotation = numbers
        found.append(
            RectangleRegion(
                **_common(item, control, _label_list(item, value)),
                x=x,
                y=y,
                width=width,
                height=height,
                rotation=rotation,
            )
        )
    return found


def read_polygons(result: Sequence[Any], control: ControlTag | None, to_name: str | None = None) -> list[PolygonRegion]:
    """Polygons with at least 3 points (2 for an open polyline)."""
    found = []
    for item, value in _items(result, control, to_name, ("polygon", "polygonlabels")):
        try:
            points = np.asarray(value.get("points"), dtype=np.float64)
        except (TypeError, ValueError):
            continue
        closed = value.get("closed") is not False
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < (3 if closed else 2):
            continue
        if not np.isfinite(points).all():
            continue
        found.append(PolygonRegion(**_common(item, control, _label_list(item, value)), points=points, closed=closed))
    return found


def read_brushes(
    result: Sequence[Any],
    control: ControlTag | None,
    to_name: str | None = None,
    *,
    image_size: Sequence[int] | None = None,
) -> list[BrushRegion]:
    """Brush masks in RLE format, decoded at the item's original size (else ``image_size``).

    Items whose RLE cannot be decoded at that size are skipped, like other malformed items.
    """
    found = []
    for item, value in _items(result, control, to_name, ("brush", "brushlabels")):
        if value.get("format", "rle") != "rle" or not value.get("rle"):
            continue
        size = _original_size(item) or (tuple(int(v) for v in image_size) if image_size is not None else None)
        if size is None:
            continue
        try:
            mask = rle_to_mask(value["rle"], *size)
        except ResultError:
            continue
        found.append(BrushRegion(**_common(item, control, _label_list(item, value)), mask=mask))
    return found


def read_keypoints(
    result: Sequence[Any], control: ControlTag | None, to_name: str | None = None
) -> list[KeypointRegion]:
    found = []
    for item, value in _items(result, control, to_name, ("keypoint", "keypointlabels")):
        numbers = _numbers(value, ("x", "y"))
        if numbers is None:
            continue
        width = _numbers(value, ("width",))
        parent = item.get("parentID")
        found.append(
            KeypointRegion(
                **_common(item, control, _label_list(item, value)),
                x=numbers[0],
                y=numbers[1],
                width=None if width is None else width[0],
                parent_id=parent if isinstance(parent, str) and parent else None,
            )
        )
    return found


def read_textareas(
    result: Sequence[Any], control: ControlTag | None, to_name: str | None = None
) -> list[TextAreaRegion]:
    found = []
    for item, value in _items(result, control, to_name, ("textarea",)):
        text = value.get("text")
        texts = [text] if isinstance(text, str) else text if isinstance(text, list) else None
        if texts is None:
            continue
        found.append(TextAreaRegion(**_common(item, control, []), texts=tuple(t for t in texts if isinstance(t, str))))
    return found


def read_video_rectangles(
    result: Sequence[Any], control: ControlTag | None, labels: ControlTag | None = None, to_name: str | None = None
) -> list[VideoTrackRegion]:
    """The tracks ``control`` (a VideoRectangle) made, their labels resolved by ``labels`` (the ``<Labels>`` on
    the same video, where a VideoRectangle takes them from). A keyframe without a whole-number ``frame`` >= 1 or
    finite box numbers is left out, and a track without keyframes too."""
    found = []
    for item, value in _items(result, control, to_name, ("videorectangle",)):
        keyframes = {}
        for raw in value.get("sequence") or ():
            frame = raw.get("frame") if isinstance(raw, Mapping) else None
            numbers = _numbers(raw, ("x", "y", "width", "height")) if isinstance(raw, Mapping) else None
            if isinstance(frame, int) and not isinstance(frame, bool) and frame >= 1 and numbers is not None:
                keyframes[frame] = TrackKeyframe(frame, *numbers, enabled=raw.get("enabled", True) is not False)
        if keyframes:
            found.append(VideoTrackRegion(**_common(item, labels, _label_list(item, value)),
                                          keyframes=tuple(keyframes[f] for f in sorted(keyframes))))
    return found


def read_timeline_labels(
    result: Sequence[Any], control: ControlTag | None, to_name: str | None = None
) -> list[TimelineRegion]:
    """The frame ranges ``control`` (a TimelineLabels) labelled. A range without whole-number ``start`` and
    ``end`` frames, 1 <= start <= end, is left out, and a region without ranges too."""
    found = []
    for item, value in _items(result, control, to_name, ("timelinelabels",)):
        ranges = []
        for raw in value.get("ranges") or ():
            start, end = (raw.get(key) if isinstance(raw, Mapping) else None for key in ("start", "end"))
            if _is_int(start) and _is_int(end) and 1 <= start <= end:
                ranges.append((int(start), int(end)))
        if ranges:
            found.append(TimelineRegion(**_common(item, control, _label_list(item, value)), ranges=tuple(ranges)))
    return found


# --- helpers -------------------------------------------------------------------------------------


def _items(
    result: Sequence[Any], control: ControlTag | None, to_name: str | None, types: Sequence[str]
) -> Iterable[tuple[Item, Mapping[str, Any]]]:
    """(item, value) of each item of one of ``types`` that ``control`` made on ``to_name``."""
    objects = (to_name,) if to_name is not None else control.to_names if control is not None else None
    for item in result if isinstance(result, Sequence) and not isinstance(result, str) else ():
        if not isinstance(item, Mapping) or item.get("type") not in types:
            continue
        if control is not None and item.get("from_name") != control.name:
            continue
        if objects is not None and item.get("to_name") not in objects:
            continue
        value = item.get("value")
        if isinstance(value, Mapping):
            yield item, value


def _label_list(item: Item, value: Mapping[str, Any]) -> list[Any]:
    """The labels of an item: under its type (``rectanglelabels``), else under ``labels``."""
    for key in (item.get("type"), "labels"):
        found = value.get(key) if isinstance(key, str) else None
        if isinstance(found, list):
            return found
    return []


def _common(item: Item, control: ControlTag | None, labels: list[Any]) -> dict[str, Any]:
    raw = tuple(label for label in labels if isinstance(label, str))
    keys = raw if control is None else tuple(k for k in (label_key(control, label) for label in raw) if k is not None)
    region_id = item.get("id")
    return {
        "id": str(region_id) if region_id is not None else None,
        "labels": tuple(dict.fromkeys(keys)),
        "raw_labels": raw,
        "item": item,
    }


def _numbers(value: Mapping[str, Any], keys: Sequence[str]) -> tuple[float, ...] | None:
    """The finite numbers under ``keys``, or ``None`` if one is missing or not a finite number."""
    numbers = []
    for key in keys:
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            return None
        numbers.append(float(number))
    return tuple(numbers)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _original_size(item: Item) -> Size | None:
    width, height = item.get("original_width"), item.get("original_height")
    if _is_int(width) and _is_int(height) and width > 0 and height > 0:
        return int(width), int(height)
    return None
