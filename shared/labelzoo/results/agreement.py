"""When a shown pre-label equals a human annotation: the project's documented notion of "the same annotation".

:func:`disagreement` compares two Label Studio ``result`` lists (the model's shown result and the human
annotation of the same task) and says why they differ, naming the region or control, or returns ``None``
when they agree; :func:`same_annotation` is its boolean form. Auto-labelling measures its held-out
precision with it: the share of tasks whose shown result equals the human one.

The rules:

* **Items.** A result must be a list of dicts. An item that is not a dict, has no ``type``, or (other
  than a ``relation``) has no dict ``value`` is itself a difference; so is a relation without
  ``from_id``/``to_id``; and so is a result nested too deeply for Python's recursion limit or holding an
  integer beyond a float's range where a number is read. Nothing raises on JSON-like input.
* **Regions.** Each side's items are grouped by ``id`` (an item without a string or integer id is a group
  of its own). A group is a *region* when it holds an item of a region type, i.e. any type except the
  whole-object ones (``choices``, ``textarea``, ``rating``, ``number``, ``datetime``, ``taxonomy``,
  ``pairwise``, ``ranker``) and ``relation``. Its *geometric item* is its first region item of a type
  other than ``labels``, else its first ``labels`` item (a ``labels`` item can be a second control's
  labels on an image region, carrying the region's x/y too). Groups without a region item are
  whole-object results, item by item.
* **Geometry** of the geometric item, in Label Studio's percent coordinates (IoU does not change when
  an axis is scaled, so percent and pixels give the same IoU):

  - ``rectangle``/``rectanglelabels``: the box's 4 corners, rotated as drawn (``rotation`` degrees
    clockwise around the top-left corner, applied in pixels of ``original_width``/``original_height``;
    a square image when those are missing or not whole numbers in 1..10⁶). ``ellipse``/``ellipselabels``:
    a 64-gon through the ellipse (centre ``x``/``y``, ``radiusX``/``radiusY``, ``rotation`` around the
    centre, likewise in pixels). Both are convex, so their IoU is exact (polygon clipping).
  - ``polygon``/``polygonlabels``: ``points`` (an open polyline counts as the polygon it would close),
    IoU of both rasterised onto a 512 × 512 grid over their joint bounding box (within about 1 %).
  - ``brush``/``brushlabels``: the RLE mask at its ``original_width`` × ``original_height``; pixel IoU,
    the human-side mask resized (nearest neighbour) to the shown one's size if they differ. Masks of
    more than 10⁸ pixels, without a valid image size, or in a format other than ``rle`` cannot be read.
  - ``keypoint``/``keypointlabels``: (x, y); they match when within :data:`POINT_TOLERANCE` percent on
    both axes (``parentID`` is ignored).
  - ``labels`` is a **text span** when its value has a string ``text``, or integer ``start`` and ``end``
    and no ``channel``: its (start, end) must be equal (``globalOffsets`` stand in for non-integer
    offsets). Otherwise it is a **time interval** (Audio): numeric ``start``/``end`` seconds on the
    same ``channel``, interval IoU. ``timeserieslabels`` with numeric ``start``/``end`` is an interval
    too (with other ``start``/``end``, such as date strings, it is compared exactly like the last
    rule).
  - ``hypertextlabels``/``paragraphlabels``: (``start``, ``end``, ``startOffset``, ``endOffset``) equal.
  - ``videorectangle``: its ``sequence`` equal after rounding every number to 2 decimals.
  - any other region type (``vector``, ``bitmask``, ``timelinelabels``, …): its value without the
    label list, equal after rounding numbers to 6 decimals.

  Geometry that cannot be read (missing or non-finite numbers, coordinates beyond ±10⁶ percent) is a
  difference. Areas (boxes, ellipses, polygons, masks) and time intervals match at IoU >= ``iou``
  (default :data:`AGREEMENT_IOU`, COCO's strict 0.75).
* **Attributes** of a region: every item of its group (the geometric one included) gives one
  (``from_name``, ``type``, payload). The payload is the value under the type's own key (``text`` for
  ``textarea``, ``selected`` for ``pairwise``), else under ``labels``; a list payload is a set (labels,
  choices, taxonomy paths), except ``textarea`` texts, kept in order with whitespace collapsed and
  stripped; other payloads (ratings, numbers, dates, rankings) are compared with numbers rounded to 6
  decimals. Only these payloads count: ``score``, ``origin``, ``readonly``, ``hidden``, ``meta``,
  ``model_version``, ids and every other key are ignored.
* **Matching.** Two regions match when they have the same ``to_name``, the same kind of geometry, equal
  attributes (as multisets) and their geometry overlaps as above. Regions are paired one to one
  greedily: the matching pairs are taken in order of decreasing overlap (IoU, or closeness for points),
  skipping a pair when one of its regions is paired already. Every region of both sides must be paired.
  Greedy pairing can miss a complete pairing in crowded scenes (several regions of each side
  overlapping several of the other); that counts as a difference.
* **Whole-object results** (``choices``, ``textarea``, … outside a region) are equal as multisets of
  (``from_name``, ``to_name``, ``type``, payload).
* **Relations**: each ``relation``'s (from region, to region, direction, labels as a set) must have a
  counterpart on the other side through the pairing; ``left`` is ``right`` with the ends swapped,
  ``bi`` has unordered ends, a missing direction is ``right``.

Two empty results agree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from labelzoo.results.readers import (
    BrushRegion,
    read_brushes,
    read_keypoints,
    read_polygons,
    read_rectangles,
    read_spans,
)

AGREEMENT_IOU = 0.75
"""The IoU at which two areas or time intervals are the same region: COCO's strict threshold."""
POINT_TOLERANCE = 1.0
"""Keypoints are the same point when within this many percent of the image's width and of its height."""

_WHOLE_OBJECT_TYPES = frozenset(
    {"choices", "textarea", "rating", "number", "datetime", "taxonomy", "pairwise", "ranker"}
)

Item = Mapping[str, Any]
Attribute = tuple[Hashable, str, Hashable]

_GRID = 512  # raster cells per axis for polygon IoU
_ELLIPSE_VERTICES = 64
_MAX_PERCENT = 1e6
_MAX_MASK_PIXELS = 10**8
_MAX_SIDE = 10**6  # pixels: a larger original_width or original_height is not an image size
_SQUARE = (100, 100)  # the image size assumed without one: rotation in percent, as if the image were square
_EPSILON = 1e-9  # an IoU computed as 0.7499999999 still reaches 0.75
_PAYLOAD_KEYS = {"textarea": "text", "pairwise": "selected"}
_OTHER_SIDE = {"shown": "human", "human": "shown"}


# --- public API ----------------------------------------------------------------------------------


def disagreement(
    shown: Sequence[Mapping[str, Any]], human: Sequence[Mapping[str, Any]], *, iou: float = AGREEMENT_IOU
) -> str | None:
    """Why the two results differ, in words a user can read (naming the region / control); None when they agree.

    The rules are those of this module's docstring; ``iou`` is the overlap at which two areas or time
    intervals count as the same region (a number in (0, 1], else ``ValueError``).
    """
    if isinstance(iou, bool) or not isinstance(iou, int | float) or not 0 < iou <= 1:
        raise ValueError(f"iou must be a number in (0, 1], got {iou!r}")
    try:
        return _disagreement(shown, human, float(iou))
    except RecursionError:
        return "a result is nested too deeply to compare"
    except OverflowError:  # an integer beyond a float's range, where a coordinate should be
        return "a result holds a number too large to compare"


def restricted(result: Iterable[Any], controls: Collection[str]) -> list[Mapping[str, Any]]:
    """The result items of ``controls`` (those a backend fills); a relation goes with them: it names no control."""
    return [r for r in result if isinstance(r, Mapping) and (r.get("from_name") in controls
                                                             or r.get("type") == "relation")]


def same_annotation(
    shown: Sequence[Mapping[str, Any]], human: Sequence[Mapping[str, Any]], *, iou: float = AGREEMENT_IOU
) -> bool:
    """Whether the two results agree: :func:`disagreement` finds no difference."""
    return disagreement(shown, human, iou=iou) is None


# --- one side, parsed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    kind: str
    """box, ellipse, polygon, mask, point, interval, span, video or exact."""
    shape: Any
    """(N, 2) percent points, a BrushRegion, (x, y), (start, end, channel) or a hashable value."""


@dataclass(frozen=True)
class _Region:
    id: str | None
    item: Item
    geometry: _Geometry
    attributes: Counter[Attribute]

    @property
    def to_name(self) -> Hashable:
        return _normal(self.item.get("to_name"))


@dataclass(frozen=True)
class _Relation:
    source: str
    target: str
    both_ways: bool
    labels: frozenset[Hashable]

    def key(self, rename: Callable[[str], Hashable]) -> Hashable:
        """What must correspond: the ends renamed by ``rename``, unordered for ``bi``, and the labels."""
        ends = (rename(self.source), rename(self.target))
        return (frozenset(ends) if self.both_ways else ends), self.labels

    def describe(self) -> str:
        labels = f" {_show(self.labels)}" if self.labels else ""
        ends = f"between {self.source!r} and" if self.both_ways else f"from {self.source!r} to"
        return f"relation{labels} {ends} {self.target!r}"


@dataclass(frozen=True)
class _Side:
    name: str
    regions: list[_Region]
    whole: Counter[tuple[Hashable, Hashable, str, Hashable]]
    relations: list[_Relation]


def _disagreement(shown: Any, human: Any, iou: float) -> str | None:
    a = _parse(shown, "shown")
    if isinstance(a, str):
        return a
    b = _parse(human, "human")
    if isinstance(b, str):
        return b
    whole = _whole_difference(a, b)
    if whole is not None:
        return whole
    pairs = _pair_regions(a.regions, b.regions, iou)
    unpaired = _unpaired_difference(a, b, pairs, iou)
    if unpaired is not None:
        return unpaired
    ids = {a.regions[i].id: b.regions[j].id for i, j in pairs.items() if a.regions[i].id is not None}
    return _relation_difference(a, b, ids)


def _parse(result: Any, name: str) -> _Side | str:
    """One side's regions, whole-object results and relations, or why it cannot be compared."""
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Sequence):
        return f"the {name} result is not a list of result items"
    groups: dict[Hashable, list[tuple[int, Item]]] = {}
    relations: list[_Relation] = []
    for index, item in enumerate(result):
        problem = _item_problem(item)
        if problem is not None:
            return f"{name} result[{index}] {problem}"
        if item["type"] == "relation":
            relations.append(_relation(item))
        else:
            groups.setdefault(_group_key(item, index), []).append((index, item))
    regions: list[_Region] = []
    whole: Counter[tuple[Hashable, Hashable, str, Hashable]] = Counter()
    for key, members in groups.items():
        geometric = _geometric_member(members)
        if geometric is None:
            whole.update(_whole_key(item) for _, item in members)
            continue
        index, item = geometric
        geometry = _geometry(item)
        if geometry is None:
            return f"{name} result[{index}] ({_what(item)}) has geometry that cannot be read"
        region_id = key if isinstance(key, str) else None
        regions.append(_Region(region_id, item, geometry, Counter(_attribute(member) for _, member in members)))
    return _Side(name, regions, whole, relations)


def _item_problem(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return f"is not a result item (a dict) but {type(item).__name__}"
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        return "has no type"
    if kind == "relation":
        if _reference(item.get("from_id")) is None or _reference(item.get("to_id")) is None:
            return "is a relation without from_id and to_id"
        return None
    if not isinstance(item.get("value"), Mapping):
        return f"({_what(item)}) has no value"
    return None


def _reference(value: Any) -> str | None:
    """A region id as a string: ids are strings, or integers in hand-written JSON."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _group_key(item: Item, index: int) -> Hashable:
    region_id = _reference(item.get("id"))
    return region_id if region_id is not None else ("no id", index)


def _geometric_member(members: list[tuple[int, Item]]) -> tuple[int, Item] | None:
    regional = [member for member in members if member[1]["type"] not in _WHOLE_OBJECT_TYPES]
    fallback = regional[0] if regional else None
    return next((member for member in regional if member[1]["type"] != "labels"), fallback)


def _relation(item: Item) -> _Relation:
    source, target = str(item["from_id"]), str(item["to_id"])  # a string or an integer: see _item_problem
    direction = item.get("direction")
    labels = item.get("labels")
    label_set = frozenset(_normal(label) for label in labels) if isinstance(labels, list) else frozenset()
    if direction == "left":
        source, target = target, source
    return _Relation(source, target, direction == "bi", label_set)


# --- attributes ----------------------------------------------------------------------------------


def _attribute(item: Item) -> Attribute:
    """(from_name, type, payload): what an item says about its region or object, beyond geometry."""
    kind: str = item["type"]
    value: Mapping[str, Any] = item["value"]
    key = _PAYLOAD_KEYS.get(kind, kind)
    raw = value[key] if key in value else value.get("labels")
    if kind == "textarea":
        payload: Hashable = _texts(raw)
    elif isinstance(raw, list):
        payload = frozenset(_normal(element) for element in raw)
    else:
        payload = _normal(raw)
    return _normal(item.get("from_name")), kind, payload


def _whole_key(item: Item) -> tuple[Hashable, Hashable, str, Hashable]:
    from_name, kind, payload = _attribute(item)
    return from_name, _normal(item.get("to_name")), kind, payload


def _texts(raw: Any) -> Hashable:
    texts = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else None
    if texts is None:
        return _normal(raw)
    return tuple(" ".join(text.split()) if isinstance(text, str) else _normal(text) for text in texts)


def _normal(value: Any, digits: int = 6) -> Hashable:
    """A hashable form of a JSON-like value: dicts by sorted key, lists as tuples, floats rounded."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return tuple(sorted(((str(k), _normal(v, digits)) for k, v in value.items()), key=lambda pair: pair[0]))
    if isinstance(value, list | tuple):
        return tuple(_normal(element, digits) for element in value)
    return repr(value)


# --- geometry ------------------------------------------------------------------------------------


def _geometry(item: Item) -> _Geometry | None:
    """The geometry of a region's geometric item, or ``None`` when it cannot be read."""
    reader = _GEOMETRY_READERS.get(item["type"], _exact)
    return reader(item)


def _box(item: Item) -> _Geometry | None:
    found = read_rectangles([item], None)
    if not found:
        return None
    size = _image_size(item) or _SQUARE
    return _area("box", found[0].corners(size) * 100 / np.asarray(size, dtype=np.float64))


def _ellipse(item: Item) -> _Geometry | None:
    value = item["value"]
    numbers = _floats({**value, "rotation": value.get("rotation") or 0.0}, ("x", "y", "radiusX", "radiusY", "rotation"))
    if numbers is None:
        return None
    x, y, radius_x, radius_y, rotation = numbers
    size = np.asarray(_image_size(item) or _SQUARE, dtype=np.float64)
    t = np.linspace(0.0, 2 * math.pi, _ELLIPSE_VERTICES, endpoint=False)
    local = np.stack((radius_x * np.cos(t), radius_y * np.sin(t)), axis=1) * size / 100  # pixels
    theta = math.radians(rotation)
    turned = local @ np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return _area("ellipse", turned * 100 / size + (x, y))


def _polygon(item: Item) -> _Geometry | None:
    found = read_polygons([item], None)
    return _area("polygon", found[0].points) if found else None


def _area(kind: str, points: np.ndarray) -> _Geometry | None:
    if not (np.isfinite(points).all() and np.abs(points).max() <= _MAX_PERCENT):
        return None
    return _Geometry(kind, points)


def _brush(item: Item) -> _Geometry | None:
    size, rle = _image_size(item), item["value"].get("rle")
    if size is None or size[0] * size[1] > _MAX_MASK_PIXELS:
        return None
    if not isinstance(rle, list) or not all(isinstance(v, int) for v in rle):  # the reader raises on nested lists
        return None
    found = read_brushes([item], None)
    return _Geometry("mask", found[0]) if found else None


def _keypoint(item: Item) -> _Geometry | None:
    found = read_keypoints([item], None)
    return _Geometry("point", (found[0].x, found[0].y)) if found else None


def _labels(item: Item) -> _Geometry | None:
    """A text span or an Audio interval: see the module docstring for the rule."""
    value = item["value"]
    integers = all(isinstance(value.get(key), int) and not isinstance(value.get(key), bool) for key in ("start", "end"))
    if isinstance(value.get("text"), str) or (integers and "channel" not in value):
        found = read_spans([item], None)
        if not found or found[0].start is None or found[0].end is None:
            return None
        return _Geometry("span", (found[0].start, found[0].end))
    return _interval(item)


def _interval(item: Item) -> _Geometry | None:
    value = item["value"]
    numbers = _floats(value, ("start", "end"))
    return None if numbers is None else _Geometry("interval", (*numbers, _normal(value.get("channel", 0))))


def _timeseries(item: Item) -> _Geometry | None:
    return _interval(item) or _exact(item)


def _offsets(item: Item) -> _Geometry:
    value = item["value"]
    return _Geometry("span", tuple(_normal(value.get(key)) for key in ("start", "end", "startOffset", "endOffset")))


def _video(item: Item) -> _Geometry | None:
    sequence = item["value"].get("sequence")
    return _Geometry("video", _normal(sequence, 2)) if isinstance(sequence, list) else None


def _exact(item: Item) -> _Geometry:
    kind = item["type"]
    label_keys = {kind, "labels"}
    return _Geometry("exact", _normal({k: v for k, v in item["value"].items() if k not in label_keys}))


_GEOMETRY_READERS: dict[str, Callable[[Item], _Geometry | None]] = {
    "rectangle": _box,
    "rectanglelabels": _box,
    "ellipse": _ellipse,
    "ellipselabels": _ellipse,
    "polygon": _polygon,
    "polygonlabels": _polygon,
    "brush": _brush,
    "brushlabels": _brush,
    "keypoint": _keypoint,
    "keypointlabels": _keypoint,
    "labels": _labels,
    "timeserieslabels": _timeseries,
    "hypertextlabels": _offsets,
    "paragraphlabels": _offsets,
    "videorectangle": _video,
}


def _floats(value: Mapping[str, Any], keys: Sequence[str]) -> tuple[float, ...] | None:
    numbers = [value.get(key) for key in keys]
    if all(isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
        return tuple(float(n) for n in numbers)
    return None


def _image_size(item: Item) -> tuple[int, int] | None:
    """``original_width`` × ``original_height`` when both are whole numbers in 1..10⁶, else unknown."""
    size = [item.get("original_width"), item.get("original_height")]
    if all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= _MAX_SIDE for n in size):
        return size[0], size[1]
    return None


# --- overlap -------------------------------------------------------------------------------------


def _overlap(a: _Geometry, b: _Geometry, iou: float) -> float | None:
    """How well two geometries of one kind overlap (higher is better), or ``None`` when not enough."""
    if a.kind == "point":
        dx, dy = abs(a.shape[0] - b.shape[0]), abs(a.shape[1] - b.shape[1])
        return None if max(dx, dy) > POINT_TOLERANCE else 1.0 - max(dx, dy) / 100
    measure = _MEASURES.get(a.kind)
    score = measure(a.shape, b.shape) if measure is not None else float(a.shape == b.shape)
    return score if score >= iou - _EPSILON else None


def _ratio(intersection: float, union: float, same: bool) -> float:
    """IoU; two empty shapes have IoU 1 when they are the same."""
    return intersection / union if union > 0 else float(same)


def _convex_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Exact IoU of two convex polygons, by clipping one with the other (Sutherland–Hodgman)."""
    if _apart(a, b):
        return 0.0
    first, second = _counterclockwise(a), _counterclockwise(b)
    intersection = _shoelace(_clip(first, second))
    union = _shoelace(first) + _shoelace(second) - intersection
    return _ratio(intersection, union, np.array_equal(a, b))


def _apart(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the bounding boxes of two polygons are disjoint (a shortcut: then they do not overlap)."""
    return bool((a.max(axis=0) < b.min(axis=0)).any() or (b.max(axis=0) < a.min(axis=0)).any())


def _counterclockwise(points: np.ndarray) -> np.ndarray:
    """The points in the order of positive shoelace area."""
    return points if _signed_area(points) >= 0 else points[::-1]


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _shoelace(points: np.ndarray) -> float:
    return abs(_signed_area(points)) if len(points) >= 3 else 0.0


def _clip(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """The part of ``subject`` inside the convex ``clip``; both in positive orientation."""
    output = [tuple(point) for point in subject]
    for p, q in zip(clip, np.roll(clip, -1, axis=0), strict=True):
        inputs, output = output, []
        for previous, current in zip(inputs[-1:] + inputs[:-1], inputs, strict=True):
            s_prev, s_cur = _side(p, q, previous), _side(p, q, current)
            if (s_cur >= 0) != (s_prev >= 0):
                t = s_prev / (s_prev - s_cur)
                output.append(
                    (previous[0] + t * (current[0] - previous[0]), previous[1] + t * (current[1] - previous[1]))
                )
            if s_cur >= 0:
                output.append(current)
        if not output:
            break
    return np.asarray(output, dtype=np.float64).reshape(-1, 2)


def _side(p: np.ndarray, q: np.ndarray, point: tuple[float, float]) -> float:
    """> 0 when ``point`` is left of the line p → q (inside a positively oriented polygon)."""
    return float((q[0] - p[0]) * (point[1] - p[1]) - (q[1] - p[1]) * (point[0] - p[0]))


def _raster_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two polygons (any shape) filled on a common grid over their joint bounding box."""
    if _apart(a, b):
        return 0.0
    low = np.minimum(a.min(axis=0), b.min(axis=0))
    extent = np.maximum(np.maximum(a.max(axis=0), b.max(axis=0)) - low, 1e-9)
    masks = []
    for points in (a, b):
        image = Image.new("1", (_GRID, _GRID))
        ImageDraw.Draw(image).polygon([tuple(p) for p in (points - low) / extent * (_GRID - 1)], fill=1)
        masks.append(np.asarray(image, dtype=bool))
    return _ratio(float((masks[0] & masks[1]).sum()), float((masks[0] | masks[1]).sum()), np.array_equal(a, b))


def _mask_iou(a: BrushRegion, b: BrushRegion) -> float:
    height, width = a.mask.shape
    other = b.resized((width, height))
    return _ratio(float((a.mask & other).sum()), float((a.mask | other).sum()), not a.mask.any() and not other.any())


def _interval_iou(a: tuple[float, float, Hashable], b: tuple[float, float, Hashable]) -> float:
    if a[2] != b[2]:  # another channel
        return 0.0
    (a_start, a_end), (b_start, b_end) = sorted(a[:2]), sorted(b[:2])
    intersection = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = (a_end - a_start) + (b_end - b_start) - intersection
    return _ratio(intersection, union, a == b)


_MEASURES: dict[str, Callable[[Any, Any], float]] = {
    "box": _convex_iou,
    "ellipse": _convex_iou,
    "polygon": _raster_iou,
    "mask": _mask_iou,
    "interval": _interval_iou,
}


# --- pairing and the differences ------------------------------------------------------------------


def _comparable(a: _Region, b: _Region) -> bool:
    """Same object and kind of geometry: whether overlapping makes them the same place."""
    return a.to_name == b.to_name and a.geometry.kind == b.geometry.kind


def _pair_regions(a: list[_Region], b: list[_Region], iou: float) -> dict[int, int]:
    """Greedy one-to-one pairing of matching regions, best overlap first: index in ``a`` → index in ``b``."""
    candidates = []
    for i, region in enumerate(a):
        for j, other in enumerate(b):
            if _comparable(region, other) and region.attributes == other.attributes:
                score = _overlap(region.geometry, other.geometry, iou)
                if score is not None:
                    candidates.append((-score, i, j))
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for _, i, j in sorted(candidates):
        if i not in pairs and j not in taken:
            pairs[i] = j
            taken.add(j)
    return pairs


def _unpaired_difference(a: _Side, b: _Side, pairs: dict[int, int], iou: float) -> str | None:
    for i, region in enumerate(a.regions):
        if i not in pairs:
            return _unpaired(region, a.name, b, iou)
    taken = set(pairs.values())
    for j, region in enumerate(b.regions):
        if j not in taken:
            return _unpaired(region, b.name, a, iou)
    return None


def _unpaired(region: _Region, side: str, other: _Side, iou: float) -> str:
    """Why ``region`` has no partner: a region there with other attributes, or nothing there."""
    head = f"the {side} {_describe(region)} has no match in the {other.name} result"
    there = [
        candidate
        for candidate in other.regions
        if _comparable(region, candidate) and _overlap(region.geometry, candidate.geometry, iou) is not None
    ]
    differing = next((candidate for candidate in there if candidate.attributes != region.attributes), None)
    if differing is not None:
        found = f"the {other.name} region {differing.id!r} there" if differing.id is not None else "the region there"
        return f"{head}: {found} has {_attribute_difference(differing, region)}"
    if there:
        return f"{head}: the {other.name} regions there are paired with other regions"
    return f"{head}: no region of the same kind on {region.to_name!r} {_criterion(region.geometry.kind, iou)}"


def _criterion(kind: str, iou: float) -> str:
    if kind == "point":
        return f"lies within {POINT_TOLERANCE:g}% of it on both axes"
    if kind in _MEASURES:
        return f"overlaps it with IoU >= {iou:g}"
    return "has the same offsets" if kind == "span" else "has the same geometry"


def _attribute_difference(region: _Region, reference: _Region) -> str:
    """The first control whose payloads differ, as '<control> (<type>) <region's> instead of <reference's>'."""
    keys = dict.fromkeys(attribute[:2] for attribute in (*region.attributes, *reference.attributes))
    for from_name, kind in keys:
        mine, theirs = (
            _payloads(region.attributes, (from_name, kind)),
            _payloads(reference.attributes, (from_name, kind)),
        )
        if mine != theirs:
            return f"{from_name!r} ({kind}) {_show(mine)} instead of {_show(theirs)}"
    return "other attributes"


def _whole_difference(a: _Side, b: _Side) -> str | None:
    keys = dict.fromkeys(key[:3] for key in (*a.whole, *b.whole))
    for from_name, to_name, kind in keys:
        mine, theirs = _payloads(a.whole, (from_name, to_name, kind)), _payloads(b.whole, (from_name, to_name, kind))
        if mine != theirs:
            return f"{from_name!r} ({kind}) on {to_name!r} differs: shown {_show(mine)}, human {_show(theirs)}"
    return None


def _payloads(counter: Counter[Any], prefix: tuple[Hashable, ...]) -> Counter[Hashable]:
    """The payloads (last element) of the counted tuples that start with ``prefix``."""
    found: Counter[Hashable] = Counter()
    for key, count in counter.items():
        if key[:-1] == prefix:
            found[key[-1]] += count
    return found


def _relation_difference(a: _Side, b: _Side, ids: Mapping[str, Hashable]) -> str | None:
    """A relation of one side with no counterpart on the other; shown ends are renamed through the pairing."""

    def paired(end: str) -> Hashable:
        return ids.get(end, ("unpaired", end))

    def unchanged(end: str) -> Hashable:
        return end

    mine = Counter(relation.key(paired) for relation in a.relations)
    theirs = Counter(relation.key(unchanged) for relation in b.relations)
    for side, rename, missing in ((a, paired, mine - theirs), (b, unchanged, theirs - mine)):
        for relation in side.relations:
            if relation.key(rename) in missing:
                other = _OTHER_SIDE[side.name]
                return f"the {side.name} {relation.describe()} has no counterpart in the {other} result"
    return None


# --- words ---------------------------------------------------------------------------------------


def _what(item: Item) -> str:
    return f"{item.get('type')} of {item.get('from_name')!r} on {item.get('to_name')!r}"


def _describe(region: _Region) -> str:
    """E.g. ``region 'r1' (rectanglelabels ['Car'] of 'label' on 'image')``."""
    payload = _attribute(region.item)[2]
    labels = f" {_show(payload)}" if isinstance(payload, frozenset) else ""
    name = f"region {region.id!r}" if region.id is not None else "region without id"
    item = region.item
    return f"{name} ({item['type']}{labels} of {item.get('from_name')!r} on {item.get('to_name')!r})"


def _show(payloads: Any) -> str:
    """A payload, or a multiset of them, in words: sets and lists as sorted lists, nothing as 'nothing'."""
    if isinstance(payloads, Counter):
        shown = sorted(_show(p) for p in payloads.elements())
        return ", ".join(shown) if shown else "nothing"
    if isinstance(payloads, frozenset):
        return repr(sorted(payloads, key=repr))
    if isinstance(payloads, tuple):
        return repr(list(payloads))
    return "nothing" if payloads is None else repr(payloads)
