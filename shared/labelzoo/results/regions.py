"""Result builders: model outputs in natural units in, Label Studio result items (plain dicts) out.

The formats are those of protocol §5. Every region builder takes ``from_name`` (the control tag's
``name``) and ``to_name`` (the object tag's ``name``) as its first two positional arguments; all
other arguments are keyword-only::

    rectangle(from_name, to_name, *, box, image_size, labels=None, rotation=0.0, score=None, region_id=None)
    rotated_rectangle(from_name, to_name, *, center, size, angle_deg, image_size, labels=None, score=None,
                      region_id=None)
    polygon(from_name, to_name, *, points, image_size, labels=None, score=None, closed=True, region_id=None)
    keypoint(from_name, to_name, *, point, image_size, labels=None, score=None, width=0.5, region_id=None,
             parent_id=None)
    brush(from_name, to_name, *, mask, labels=None, score=None, image_size=None, region_id=None)
    span(from_name, to_name, *, text, start, end, labels, score=None, region_id=None)
    textarea(from_name, to_name, *, text, score=None, region_id=None, region=None)
    choices(from_name, to_name, *, choices, score=None, region_id=None)
    audio_segment(from_name, to_name, *, start, end, labels, score=None, channel=0, region_id=None)
    audio_segment_with_text(label_from, text_from, to_name, *, start, end, labels, text, score=None,
                            channel=0, region_id=None)
    with_region_text(region, text_from, *, text, score=None)
    video_rectangle(from_name, to_name, *, keyframes, frame_size, fps, frames_count, labels=None,
                    score=None, region_id=None)
    timeline_labels(from_name, to_name, *, ranges, labels, score=None, region_id=None)
    relation(from_id, to_id, *, labels=(), direction="right")
    prediction(result, *, score, model_version)
    validate_result(result)

Conventions:

* Image geometry comes in pixels of the natural (EXIF-transposed) image, top-left origin, and goes out
  in percent of ``image_size`` = (width, height), clamped to 0..100 (the SDK's validation rejects
  values above 100). Image regions carry ``original_width``, ``original_height`` and
  ``image_rotation: 0``.
* ``labels`` given → type ``<tag>labels`` with the labels under that key (e.g. ``rectanglelabels``);
  ``labels=None`` → the unlabelled control type (``rectangle``). Text spans and audio segments have
  no unlabelled control, so their ``labels`` is required.
* Every region gets a fresh :func:`new_region_id` unless ``region_id`` is given. ``score`` is kept
  when it is a finite number and left out otherwise. ``origin`` is never set.
* numpy scalars and arrays are accepted wherever numbers are; the output holds plain Python types.
* Invalid input raises :class:`~labelzoo.results.errors.ResultError` (a ``ValueError``).

Deviations from the first sketch of this API, with reasons: ``brush`` takes an optional
``image_size`` to catch masks that are not at the natural image size; ``audio_segment`` requires
``labels`` (Label Studio has no unlabelled audio region type); ``audio_segment_with_text`` also
takes ``channel`` and ``region_id``.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from labelzoo.results.errors import ResultError
from labelzoo.results.geometry import rotated_box_corners
from labelzoo.results.jsonsafe import json_safe
from labelzoo.results.rle import mask_to_rle

Region = dict[str, Any]
Pair = Sequence[float] | np.ndarray
Labels = Sequence[str] | None

# The editor's enum of result types (§5.1); anything else breaks task opening (P7).
RESULT_TYPES = frozenset(
    {
        "labels",
        "hypertextlabels",
        "paragraphlabels",
        "rectangle",
        "keypoint",
        "polygon",
        "brush",
        "bitmask",
        "ellipse",
        "magicwand",
        "rectanglelabels",
        "keypointlabels",
        "polygonlabels",
        "vector",
        "vectorlabels",
        "brushlabels",
        "bitmasklabels",
        "ellipselabels",
        "timeserieslabels",
        "timelinelabels",
        "choices",
        "datetime",
        "number",
        "taxonomy",
        "textarea",
        "rating",
        "pairwise",
        "videorectangle",
        "ranker",
        "relation",
    }
)
ORIGINS = frozenset({"manual", "prediction", "prediction-changed"})
RELATION_DIRECTIONS = frozenset({"right", "left", "bi"})

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 10
_ID_SPACE = len(_ID_ALPHABET) ** _ID_LENGTH
_ID_MULTIPLIER = 0x9E3779B97F4A7C15  # coprime with 62**10 (odd, not a multiple of 31)
_id_counter = itertools.count(secrets.randbelow(_ID_SPACE))


def _restart_id_counter() -> None:
    """Give a forked worker its own random start, so workers forked from one parent never share ids."""
    global _id_counter
    _id_counter = itertools.count(secrets.randbelow(_ID_SPACE))


os.register_at_fork(after_in_child=_restart_id_counter)


def new_region_id() -> str:
    """A 10-character alphanumeric region id, like the editor's own.

    Ids are a counter (started at a random point) multiplied by a constant coprime with 62**10: a
    bijection, so no two ids of one process repeat until 62**10 have been made, while ids of
    different processes look random and collide with negligible probability. Uniqueness across
    processes matters for interactive calls, whose regions join one annotation.
    """
    n = next(_id_counter) * _ID_MULTIPLIER % _ID_SPACE
    chars = []
    for _ in range(_ID_LENGTH):
        n, digit = divmod(n, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[digit])
    return "".join(chars)


# --- image regions -----------------------------------------------------------------------------


def rectangle(
    from_name: str,
    to_name: str,
    *,
    box: Pair,
    image_size: Pair,
    labels: Labels = None,
    rotation: float = 0.0,
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """An axis-aligned or rotated box; ``box`` = (x, y, w, h) in pixels, (x, y) the top-left corner.

    ``rotation`` is in degrees, clockwise on screen, around the top-left corner (§5.3). An unrotated
    box is clipped to the image. A rotated one is written exactly, in whichever of its four spellings
    (:func:`_rotated_percent`) Label Studio accepts: its prediction check wants x, y, width and height at
    most 100 (x and y may be negative).
    """
    width, height = _image_size(image_size)
    angle = _angle(rotation)
    if angle == 0.0:
        value = {**_box_percent(box, width, height), "rotation": angle}
    else:
        value = _rotated_percent(box, angle, width, height)
    return _image_region("rectangle", from_name, to_name, value, labels, (width, height), score, region_id)


def rotated_rectangle(
    from_name: str,
    to_name: str,
    *,
    center: Pair,
    size: Pair,
    angle_deg: float,
    image_size: Pair,
    labels: Labels = None,
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """A centre-based oriented box (e.g. YOLO OBB ``xywhr`` with r in degrees) as a rotated rectangle.

    ``center`` and ``size`` are in pixels, ``angle_deg`` clockwise on screen (image y points down).
    Label Studio rotates around the top-left corner instead of the centre, so the corner is moved to
    where the box's top-left corner lands after rotating around the centre.
    """
    cx, cy = _numbers(center, 2, "center")
    w, h = _numbers(size, 2, "size")
    angle = _number(angle_deg, "angle_deg")
    corner_x, corner_y = rotated_box_corners((cx, cy), (w, h), angle)[0]
    return rectangle(
        from_name,
        to_name,
        box=(corner_x, corner_y, w, h),
        image_size=image_size,
        labels=labels,
        rotation=angle,
        score=score,
        region_id=region_id,
    )


def polygon(
    from_name: str,
    to_name: str,
    *,
    points: Sequence[Pair] | np.ndarray,
    image_size: Pair,
    labels: Labels = None,
    score: float | None = None,
    closed: bool = True,
    region_id: str | None = None,
) -> Region:
    """A polygon from (N, 2) pixel points; at least 3 when ``closed``, 2 for an open polyline."""
    width, height = _image_size(image_size)
    pts = _array(points, "points")
    minimum = 3 if closed else 2
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < minimum:
        raise ResultError(f"points must be {minimum} or more (x, y) pairs, got an array of shape {pts.shape}")
    percent = np.clip(pts * 100.0 / (width, height), 0.0, 100.0)  # the arithmetic of _percent
    value = {"points": percent.tolist(), "closed": bool(closed)}
    return _image_region("polygon", from_name, to_name, value, labels, (width, height), score, region_id)


def keypoint(
    from_name: str,
    to_name: str,
    *,
    point: Pair,
    image_size: Pair,
    labels: Labels = None,
    score: float | None = None,
    width: float = 0.5,
    region_id: str | None = None,
    parent_id: str | None = None,
) -> Region:
    """A point at pixel (x, y). ``width`` is the drawn size in percent of the image width.

    The value has ``width`` and no ``height``: that is how the editor tells a keypoint from a
    rectangle or an ellipse (§5.5, P13). ``parent_id`` groups points under a region (``parentID``).
    """
    image_w, image_h = _image_size(image_size)
    x, y = _numbers(point, 2, "point")
    size = _number(width, "width")
    if size <= 0:
        raise ResultError(f"keypoint width must be > 0 (percent of the image width), got {size}")
    value = {"x": _percent(x, image_w), "y": _percent(y, image_h), "width": size}
    item = _image_region("keypoint", from_name, to_name, value, labels, (image_w, image_h), score, region_id)
    if parent_id is not None:
        item["parentID"] = _name(parent_id, "parent_id")
    return item


def brush(
    from_name: str,
    to_name: str,
    *,
    mask: np.ndarray,
    labels: Labels = None,
    score: float | None = None,
    image_size: Pair | None = None,
    region_id: str | None = None,
) -> Region:
    """A brush mask from an (H, W) bool/integer array at the natural image size, as RLE (§5.6).

    ``image_size`` (W, H), when given, must match the mask's shape: the editor draws the RLE into a
    canvas of the natural size, so a mask at the model's input size would come out garbled.
    """
    rle = mask_to_rle(mask)  # validates the mask: 2-D, bool or integer, not empty
    height, width = np.shape(mask)
    if image_size is not None and _image_size(image_size) != (width, height):
        image_w, image_h = _image_size(image_size)
        raise ResultError(
            f"mask is {width}x{height} but the image is {image_w}x{image_h}; resize the mask to the "
            "natural image size (nearest-neighbour) first"
        )
    value = {"format": "rle", "rle": rle}
    return _image_region("brush", from_name, to_name, value, labels, (width, height), score, region_id)


# --- text, classification, audio, video ----------------------------------------------------------


def span(
    from_name: str,
    to_name: str,
    *,
    text: str,
    start: int,
    end: int,
    labels: Sequence[str],
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled text span ``text[start:end]``; offsets are Python ``str`` (code point) indices.

    ``text`` must be exactly the task's text field: offsets count code points, ``\\r\\n`` as two (§5.7).
    """
    if not isinstance(text, str):
        raise ResultError(f"text must be a str, got {type(text).__name__}")
    first, stop = _index(start, "start"), _index(end, "end")
    if not 0 <= first < stop <= len(text):
        raise ResultError(
            f"span start={first}, end={stop} must satisfy 0 <= start < end <= len(text) = {len(text)}"
        )
    value = {"start": first, "end": stop, "text": text[first:stop], "labels": _labels(labels)}
    return _region("labels", from_name, to_name, value, score=score, region_id=region_id)


def textarea(
    from_name: str,
    to_name: str,
    *,
    text: str | Sequence[str],
    score: float | None = None,
    region_id: str | None = None,
    region: Mapping[str, Any] | None = None,
) -> Region:
    """Text for a TextArea; ``value.text`` is always a list of strings (§5.8).

    With ``region`` (another result item, e.g. from :func:`span` or :func:`audio_segment`) this is a
    per-region TextArea (``perRegion="true"``): it takes the region's ``id``, the region's geometry
    (its value without the label list) and image size fields, as the editor's own serializer does.
    Put it after the region in the result list (P15).
    """
    texts = [text] if isinstance(text, str) else _strings(text, "text")
    if region is None:
        return _region("textarea", from_name, to_name, {"text": texts}, score=score, region_id=region_id)
    if (
        not isinstance(region, Mapping)
        or not region.get("id")
        or not isinstance(region.get("value"), Mapping)
    ):
        raise ResultError("region must be a result item with an id and a value, e.g. one returned by span()")
    if region_id is not None and region_id != region["id"]:
        raise ResultError(f"region_id {region_id!r} differs from the region's id {region['id']!r}")
    if region.get("to_name") != to_name:
        raise ResultError(
            f"a per-region textarea must use its region's to_name {region.get('to_name')!r}, not {to_name!r}"
        )
    label_keys = {region.get("type"), "labels"}
    value = {key: item for key, item in region["value"].items() if key not in label_keys}
    value["text"] = texts
    top = {
        key: region[key] for key in ("original_width", "original_height", "image_rotation") if key in region
    }
    return _region("textarea", from_name, to_name, value, score=score, region_id=region["id"], top=top)


def choices(
    from_name: str,
    to_name: str,
    *,
    choices: Sequence[str],
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """A classification: one or more choice values (several only with ``choice="multiple"``)."""
    value = {"choices": _labels(choices, "choices")}
    return _region("choices", from_name, to_name, value, score=score, region_id=region_id)


def audio_segment(
    from_name: str,
    to_name: str,
    *,
    start: float,
    end: float,
    labels: Sequence[str],
    score: float | None = None,
    channel: int = 0,
    region_id: str | None = None,
) -> Region:
    """A labelled audio segment; ``start`` and ``end`` in seconds from the start of the file (§5.10)."""
    first, last = _number(start, "start"), _number(end, "end")
    if not 0 <= first <= last:
        raise ResultError(f"audio segment needs 0 <= start <= end (seconds), got start={first}, end={last}")
    track = _index(channel, "channel")
    if track < 0:
        raise ResultError(f"channel must be >= 0, got {track}")
    value = {"start": first, "end": last, "channel": track, "labels": _labels(labels)}
    return _region("labels", from_name, to_name, value, score=score, region_id=region_id)


def audio_segment_with_text(
    label_from: str,
    text_from: str,
    to_name: str,
    *,
    start: float,
    end: float,
    labels: Sequence[str],
    text: str | Sequence[str],
    score: float | None = None,
    channel: int = 0,
    region_id: str | None = None,
) -> list[Region]:
    """A segment with its transcript (Whisper with timestamps): ``[labels item, textarea item]``.

    Both share one id and the labels item comes first, so the editor builds the region from it (P15).
    """
    segment = audio_segment(
        label_from,
        to_name,
        start=start,
        end=end,
        labels=labels,
        score=score,
        channel=channel,
        region_id=region_id,
    )
    return [segment, textarea(text_from, to_name, text=text, region=segment)]


def with_region_text(
    region: Region, text_from: Iterable[str], *, text: str, score: float | None = None
) -> list[Region]:
    """``region`` and its text in each per-region TextArea named in ``text_from``: ``[region, textarea, ...]``.

    Any region (an audio segment, a box an OCR model read, a span) followed by one :func:`textarea` per
    name, sharing its id, with ``score``; the region comes first (P15). A blank ``text`` gives ``[region]``
    alone: an empty text box would only hide that the model heard or read nothing there.
    """
    if not isinstance(region, Mapping):
        raise ResultError(f"region must be a result item, got {type(region).__name__}")
    if not text.strip():
        return [region]
    to_name = region.get("to_name")
    return [region, *(textarea(name, to_name, text=text, score=score, region=region) for name in text_from)]


@dataclass(frozen=True)
class Keyframe:
    """One keyframe of a video track: ``frame`` is 1-based, ``box`` = (x, y, w, h) pixels (top-left).

    ``enabled=False`` ends the track's lifespan after this keyframe (a gap or the end of the track).
    """

    frame: int
    box: Pair
    enabled: bool = True


def video_rectangle(
    from_name: str,
    to_name: str,
    *,
    keyframes: Sequence[Keyframe],
    frame_size: Pair,
    fps: float,
    frames_count: int,
    labels: Labels = None,
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """A tracked box over video frames (§5.11). Keyframes are sorted by frame; ``time = frame / fps``.

    ``frames_count`` and ``fps`` describe the whole video (``duration = frames_count / fps``); labels go
    in ``value.labels``, since the VideoRectangle control takes them from a separate Labels tag.
    """
    width, height = _image_size(frame_size, "frame_size")
    rate = _number(fps, "fps")
    count = _index(frames_count, "frames_count")
    if rate <= 0 or count < 1:
        raise ResultError(f"fps must be > 0 and frames_count >= 1, got fps={rate}, frames_count={count}")
    if not keyframes:
        raise ResultError("a video track needs at least one keyframe")
    by_frame: dict[int, Keyframe] = {}
    for keyframe in keyframes:
        frame = _index(keyframe.frame, "keyframe frame")
        if not 1 <= frame <= count:
            raise ResultError(f"keyframe frame {frame} is outside 1..{count} (frames are 1-based)")
        if frame in by_frame:
            raise ResultError(f"two keyframes for frame {frame}")
        by_frame[frame] = keyframe
    sequence = []
    for frame, keyframe in sorted(by_frame.items()):
        box = _box_percent(keyframe.box, width, height, what=f"box of keyframe {frame}")
        sequence.append(
            {"frame": frame, "enabled": bool(keyframe.enabled), "rotation": 0, **box, "time": frame / rate}
        )
    value: dict[str, Any] = {"framesCount": count, "duration": count / rate, "sequence": sequence}
    if labels is not None:
        value["labels"] = _labels(labels)
    return _region("videorectangle", from_name, to_name, value, score=score, region_id=region_id)


def timeline_labels(
    from_name: str,
    to_name: str,
    *,
    ranges: Sequence[tuple[int, int]],
    labels: Labels,
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """Frame ranges of a video (or audio) labelled on the timeline: ``(start, end)`` frames, 1-based and both
    included, as the Video tag counts them."""
    if not ranges:
        raise ResultError("a timeline region needs at least one range")
    out = []
    for start, end in ranges:
        first, last = _index(start, "range start"), _index(end, "range end")
        if not 1 <= first <= last:
            raise ResultError(f"a timeline range needs 1 <= start <= end, got {first}..{last}")
        out.append({"start": first, "end": last})
    value = {"ranges": out, "timelinelabels": _labels(labels)}
    return _region("timelinelabels", from_name, to_name, value, score=score, region_id=region_id)


def relation(from_id: str, to_id: str, *, labels: Sequence[str] = (), direction: str = "right") -> Region:
    """A relation arrow between two regions, by id; ``direction`` is ``right``, ``left`` or ``bi``."""
    source, target = _name(from_id, "from_id"), _name(to_id, "to_id")
    if source == target:
        raise ResultError(f"a relation needs two different regions, got {source!r} twice")
    if direction not in RELATION_DIRECTIONS:
        raise ResultError(f"relation direction must be one of right, left, bi; got {direction!r}")
    return {
        "type": "relation",
        "from_id": source,
        "to_id": target,
        "direction": direction,
        "labels": _labels(labels, "labels", allow_empty=True),
    }


def prediction(
    result: Sequence[Mapping[str, Any]], *, score: float | None, model_version: str
) -> dict[str, Any]:
    """One task's prediction ``{"result": [...], "score": s, "model_version": v}``, made JSON safe.

    ``model_version`` must equal the version ``/setup`` reports (P6). ``score`` drives uncertainty
    sampling (P17); ``None`` or a non-finite score leaves it out. ``result`` is checked with
    :func:`validate_result`.
    """
    if not isinstance(model_version, str) or not model_version.strip():
        raise ResultError(f"model_version must be a non-empty string, got {model_version!r}")
    out: dict[str, Any] = {"result": validate_result(result)}
    task_score = _score(score)
    if task_score is not None:
        out["score"] = task_score
    out["model_version"] = model_version
    return cast(dict[str, Any], json_safe(out))


def validate_result(result: Any) -> list[Mapping[str, Any]]:
    """Reject a prediction ``result`` that would break task opening in Label Studio (P7).

    It must be a list (or tuple) of dicts, each with a ``type`` from the editor's enum, the keys that
    type needs (``from_name``, ``to_name`` and ``value``; ``from_id`` and ``to_id`` for relations) and
    no ``origin`` outside ``manual``/``prediction``/``prediction-changed``. Returns it as a list.
    """
    if not isinstance(result, list | tuple):
        raise ResultError(f"a prediction result must be a list of result items, got {type(result).__name__}")
    for i, item in enumerate(result):
        if not isinstance(item, Mapping):
            raise ResultError(f"result[{i}] must be a dict, got {type(item).__name__}")
        kind = item.get("type")
        if kind not in RESULT_TYPES:
            raise ResultError(f"result[{i}] has type {kind!r}, which the Label Studio editor does not know")
        required = ("from_id", "to_id") if kind == "relation" else ("from_name", "to_name", "value")
        missing = [key for key in required if key not in item]
        if missing:
            raise ResultError(f"result[{i}] ({kind}) lacks {', '.join(missing)}")
        if "origin" in item and item["origin"] not in ORIGINS:
            raise ResultError(f"result[{i}] has origin {item['origin']!r}; use 'prediction' or leave it out")
    return list(result)


# --- helpers -------------------------------------------------------------------------------------


def _region(
    type_: str,
    from_name: str,
    to_name: str,
    value: dict[str, Any],
    *,
    score: float | None,
    region_id: str | None,
    top: Mapping[str, Any] | None = None,
) -> Region:
    item: Region = {
        "id": new_region_id() if region_id is None else _name(region_id, "region_id"),
        "from_name": _name(from_name, "from_name"),
        "to_name": _name(to_name, "to_name"),
        "type": type_,
        **(top or {}),
        "value": value,
    }
    region_score = _score(score)
    if region_score is not None:
        item["score"] = region_score
    return item


def _image_region(
    kind: str,
    from_name: str,
    to_name: str,
    value: dict[str, Any],
    labels: Labels,
    image_size: tuple[int, int],
    score: float | None,
    region_id: str | None,
) -> Region:
    """An image region of control ``kind``: ``<kind>labels`` with labels, plain ``<kind>`` without."""
    type_ = kind if labels is None else f"{kind}labels"
    if labels is not None:
        value[type_] = _labels(labels)
    top = {"original_width": image_size[0], "original_height": image_size[1], "image_rotation": 0}
    return _region(type_, from_name, to_name, value, score=score, region_id=region_id, top=top)


def _box_percent(box: Pair, width: int, height: int, *, what: str = "box") -> dict[str, float]:
    """A pixel (x, y, w, h) box in percent, intersected with the image."""
    x, y, w, h = _numbers(box, 4, what)
    if w < 0 or h < 0:
        raise ResultError(f"{what} width and height must be >= 0, got {(x, y, w, h)}")
    left, top = _percent(x, width), _percent(y, height)
    return {"x": left, "y": top, "width": _percent(x + w, width) - left, "height": _percent(y + h, height) - top}


def _rotated_percent(box: Pair, angle: float, width: int, height: int) -> dict[str, float]:
    """A rotated pixel box (x, y, w, h, anchored at its top-left corner) in percent, unchanged in place.

    The same box can be anchored at any of its corners, the rotation turned by 90° for each corner further
    round and width and height swapped on the odd ones. The first spelling that lies inside 0..100 is taken,
    else the first that Label Studio accepts (a corner outside the image is fine); only a box with a side
    longer than the image in both directions has its values capped at 100, which changes it.
    """
    x, y, w, h = _numbers(box, 4, "box")
    if w < 0 or h < 0:
        raise ResultError(f"box width and height must be >= 0, got {(x, y, w, h)}")
    theta = math.radians(angle)
    along, across = (math.cos(theta), math.sin(theta)), (-math.sin(theta), math.cos(theta))
    corners = [(x, y), (x + w * along[0], y + w * along[1]),
               (x + w * along[0] + h * across[0], y + w * along[1] + h * across[1]),
               (x + h * across[0], y + h * across[1])]  # fmt: skip
    spellings = []
    for k, (cx, cy) in enumerate(corners):
        side_w, side_h = (w, h) if k % 2 == 0 else (h, w)
        spellings.append({"x": cx * 100.0 / width, "y": cy * 100.0 / height, "width": side_w * 100.0 / width,
                          "height": side_h * 100.0 / height, "rotation": (angle + 90.0 * k) % 360.0})
    inside = [s for s in spellings if all(0.0 <= s[key] <= 100.0 for key in ("x", "y", "width", "height"))]
    accepted = [s for s in spellings if all(s[key] <= 100.0 for key in ("x", "y", "width", "height"))]
    if inside or accepted:
        return (inside or accepted)[0]
    return {key: min(value, 100.0) if key != "rotation" else value for key, value in spellings[0].items()}


def _percent(value: float, total: int) -> float:
    return min(max(value * 100.0 / total, 0.0), 100.0)


def _angle(degrees: float) -> float:
    """Degrees normalised to [0, 360)."""
    angle = _number(degrees, "rotation") % 360.0
    return 0.0 if angle >= 360.0 else angle  # a tiny negative angle rounds up to 360.0


def _image_size(size: Pair, what: str = "image_size") -> tuple[int, int]:
    width, height = _numbers(size, 2, what)
    if not (width >= 1 and height >= 1 and width.is_integer() and height.is_integer()):
        raise ResultError(f"{what} must be (width, height) in whole pixels >= 1, got {(width, height)}")
    return int(width), int(height)


def _array(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ResultError(f"{what} must be numeric, got {values!r:.80}") from exc
    if not np.isfinite(arr).all():
        raise ResultError(f"{what} must be finite numbers (found NaN or infinity): {values!r:.80}")
    return arr


def _numbers(values: Any, n: int, what: str) -> tuple[float, ...]:
    arr = _array(values, what)
    if arr.shape != (n,):
        raise ResultError(f"{what} must be {n} numbers, got {values!r:.80}")
    return tuple(float(v) for v in arr)


def _number(value: Any, what: str) -> float:
    arr = _array(value, what)
    if arr.shape != ():
        raise ResultError(f"{what} must be a single number, got {value!r:.80}")
    return float(arr)


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ResultError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError as exc:
        raise ResultError(f"{what} must be an integer, got {value!r}") from exc


def _score(score: float | None) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError) as exc:
        raise ResultError(f"score must be a number, got {score!r:.80}") from exc
    return value if math.isfinite(value) else None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ResultError(f"{what} must be a non-empty string, got {value!r}")
    return str(value)


def _strings(values: Any, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise ResultError(f"{what} must be a list of strings, got {values!r:.80}")
    items = list(values)
    if not items or not all(isinstance(item, str) for item in items):
        raise ResultError(f"{what} must be a non-empty list of strings, got {values!r:.80}")
    return [str(item) for item in items]


def _labels(labels: Any, what: str = "labels", *, allow_empty: bool = False) -> list[str]:
    if isinstance(labels, str):
        raise ResultError(f"{what} must be a list of strings, not the string {labels!r}; pass [{labels!r}]")
    if allow_empty and isinstance(labels, Sequence) and len(labels) == 0:
        return []
    return _strings(labels, what)
