"""When a shown pre-label equals a human annotation: each kind of region, attributes, relations, odd input."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from labelzoo.results import (
    AGREEMENT_IOU,
    POINT_TOLERANCE,
    Keyframe,
    audio_segment,
    brush,
    choices,
    disagreement,
    keypoint,
    polygon,
    rectangle,
    relation,
    rotated_rectangle,
    same_annotation,
    span,
    textarea,
    video_rectangle,
)

IMAGE = (1000, 1000)
TEXT = "Alice met Bob in Paris."


def box(x: float, y: float = 100, *, w: float = 100, h: float = 100, label: str = "Car", rid: str = "r1") -> dict:
    return rectangle("label", "image", box=(x, y, w, h), image_size=IMAGE, labels=[label], region_id=rid)


def ellipse(x: float, radius_x: float, *, rotation: float = 0.0, rid: str = "e1") -> dict[str, Any]:
    value = {"x": x, "y": 50.0, "radiusX": radius_x, "radiusY": 10.0, "rotation": rotation, "ellipselabels": ["Cell"]}
    return {"id": rid, "from_name": "cells", "to_name": "image", "type": "ellipselabels", "value": value,
            "original_width": 800, "original_height": 400}  # fmt: skip


def square_mask(left: int) -> np.ndarray:
    mask = np.zeros((100, 120), bool)
    mask[30:70, left : left + 40] = True
    return mask


# --- agreement in general --------------------------------------------------------------------------


def test_empty_results_agree_and_an_extra_region_on_either_side_does_not() -> None:
    assert disagreement([], []) is None and same_annotation([], [])
    message = disagreement([box(100)], [])
    assert message is not None and "shown region 'r1' (rectanglelabels ['Car'] of 'label' on 'image')" in message
    message = disagreement([box(100)], [box(100, rid="h1"), box(500, rid="h2")])
    assert message is not None and "human region 'h2'" in message and not same_annotation([box(100)], [box(500)])


def test_model_only_keys_and_region_ids_do_not_matter() -> None:
    shown = [{**box(100, rid="model1"), "score": 0.42, "origin": "prediction", "readonly": True, "hidden": False,
              "meta": {"text": ["a note"]}, "model_version": "v3"}]  # fmt: skip
    human = [{**box(100, rid="human7"), "origin": "manual"}]
    assert disagreement(shown, human) is None


def test_the_iou_threshold_can_be_chosen_and_must_be_in_range() -> None:
    shown, human = [box(100)], [box(120)]  # IoU 80/120 = 0.67
    assert not same_annotation(shown, human) and same_annotation(shown, human, iou=0.6)
    for bad in (0, 1.5, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="iou"):
            disagreement([], [], iou=bad)  # type: ignore[arg-type]


# --- image regions -------------------------------------------------------------------------------


def test_box_shifted_below_and_above_the_iou_threshold() -> None:
    assert AGREEMENT_IOU == 0.75
    assert disagreement([box(100)], [box(110)]) is None  # IoU 90/110 = 0.82
    message = disagreement([box(100)], [box(115)])  # IoU 85/115 = 0.74
    assert message is not None and "'label'" in message and "IoU >= 0.75" in message


def test_box_iou_is_exact_at_the_threshold() -> None:
    # a shift d of a 100-wide box gives IoU (100 - d) / (100 + d); d = 100/7 gives 0.75 exactly
    assert same_annotation([box(100)], [box(100 + 100 / 7 - 0.01)])
    assert not same_annotation([box(100)], [box(100 + 100 / 7 + 0.05)])


def test_a_box_with_another_label_differs_and_the_message_names_the_control() -> None:
    message = disagreement([box(100, label="Car")], [box(100, label="Bus", rid="h1")])
    assert message is not None
    assert "human region 'h1' there has 'label' (rectanglelabels) ['Bus'] instead of ['Car']" in message


def test_rotation_matters_and_is_applied_in_pixels() -> None:
    def turned(angle: float, size: tuple[float, float] = (200, 100), image: tuple[int, int] = IMAGE) -> dict:
        return rotated_rectangle("label", "image", center=(500, 400), size=size, angle_deg=angle, image_size=image,
                                 labels=["Car"], region_id=f"a{angle}")  # fmt: skip

    assert same_annotation([turned(0)], [turned(5)])
    assert not same_annotation([turned(0)], [turned(30)])
    assert same_annotation([turned(30)], [turned(210)])  # turned half round: the same box, written otherwise
    # a square in pixels turned by 90° is itself, though the image (and so the percent space) is not square
    wide = (2000, 500)
    assert same_annotation([turned(0, (100, 100), wide)], [turned(90, (100, 100), wide)])
    assert not same_annotation([turned(0, (300, 100), wide)], [turned(90, (300, 100), wide)])


def test_polygons_agree_by_rasterised_iou_also_when_not_convex() -> None:
    ell = [(100, 100), (400, 100), (400, 200), (200, 200), (200, 400), (100, 400)]

    def shape(dx: float) -> list[dict]:
        points = [(x + dx, y) for x, y in ell]
        return [polygon("outline", "image", points=points, image_size=IMAGE, labels=["Road"], region_id=f"p{dx}")]

    assert disagreement(shape(0), shape(10)) is None
    message = disagreement(shape(0), shape(40))
    assert message is not None and "polygonlabels ['Road'] of 'outline'" in message


def test_ellipses_agree_when_they_overlap_enough() -> None:
    assert same_annotation([ellipse(50, 20)], [ellipse(51, 20)])
    assert not same_annotation([ellipse(50, 20)], [ellipse(50, 10)])  # half as wide: IoU 0.5
    assert same_annotation([ellipse(50, 20, rotation=0)], [ellipse(50, 20, rotation=180)])
    assert not same_annotation([ellipse(50, 20, rotation=0)], [ellipse(50, 20, rotation=90)])


def test_brush_masks_agree_by_pixel_iou() -> None:
    def paint(left: int) -> list[dict]:
        return [brush("paint", "image", mask=square_mask(left), labels=["Sky"], region_id=f"b{left}")]

    assert disagreement(paint(20), paint(24)) is None  # IoU 36/44 = 0.82
    message = disagreement(paint(20), paint(30))  # IoU 30/50 = 0.6
    assert message is not None and "brushlabels ['Sky'] of 'paint'" in message


def test_brush_masks_at_another_size_are_compared_resized() -> None:
    small = brush("paint", "image", mask=square_mask(20), labels=["Sky"])
    large = brush("paint", "image", mask=np.kron(square_mask(20), np.ones((2, 2), bool)), labels=["Sky"])
    assert same_annotation([small], [large])


def test_keypoints_within_and_outside_the_tolerance() -> None:
    def point(x: float, y: float) -> list[dict]:
        return [keypoint("points", "image", point=(x, y), image_size=IMAGE, labels=["Nose"], region_id=f"k{x}{y}")]

    assert POINT_TOLERANCE == 1.0
    assert same_annotation(point(500, 500), point(509, 491))  # 0.9 % on both axes
    assert not same_annotation(point(500, 500), point(515, 500))  # 1.5 % of the width
    message = disagreement(point(500, 500), point(500, 515))
    assert message is not None and "lies within 1% of it on both axes" in message


def test_regions_on_another_object_do_not_match() -> None:
    other = {**box(100), "to_name": "other_image"}
    assert not same_annotation([box(100)], [other])


# --- text and time -------------------------------------------------------------------------------


def entity(start: int, end: int, label: str = "PER", rid: str = "s1") -> dict:
    return span("ner", "text", text=TEXT, start=start, end=end, labels=[label], region_id=rid)


def test_text_spans_must_have_the_same_offsets() -> None:
    assert disagreement([entity(0, 5), entity(10, 13, rid="s2")], [entity(10, 13, rid="x"), entity(0, 5)]) is None
    message = disagreement([entity(0, 5)], [entity(0, 6)])
    assert message is not None and "labels ['PER'] of 'ner' on 'text'" in message and "same offsets" in message
    assert not same_annotation([entity(0, 5)], [entity(0, 5, label="LOC")])


def test_hypertext_spans_compare_their_xpaths_and_offsets() -> None:
    def html(end_offset: int) -> list[dict]:
        value = {"start": "/p[1]/text()[1]", "end": "/p[1]/text()[1]", "startOffset": 0, "endOffset": end_offset,
                 "text": "Alice", "hypertextlabels": ["PER"]}  # fmt: skip
        return [{"id": "h", "from_name": "ner", "to_name": "html", "type": "hypertextlabels", "value": value}]

    assert same_annotation(html(5), html(5)) and not same_annotation(html(5), html(6))


def test_audio_segments_agree_by_interval_iou_on_the_same_channel() -> None:
    def segment(start: float, end: float, channel: int = 0) -> dict:
        return audio_segment("speech", "audio", start=start, end=end, labels=["Speech"], channel=channel)

    assert same_annotation([segment(1.0, 3.0)], [segment(1.2, 3.1)])  # IoU 1.8 / 2.1 = 0.86
    assert not same_annotation([segment(1.0, 3.0)], [segment(1.6, 3.0)])  # IoU 0.7
    assert not same_annotation([segment(1.0, 3.0)], [segment(1.0, 3.0, channel=1)])
    # whole seconds, as the editor's JavaScript writes 1.0: still an interval (it has a channel), not a text span
    whole = {**segment(1.0, 3.0), "value": {"start": 1, "end": 3, "channel": 0, "labels": ["Speech"]}}
    assert same_annotation([whole], [segment(1.0, 3.05)])


def test_a_per_region_transcript_must_match_too() -> None:
    def spoken(text: str, rid: str) -> list[dict]:
        segment = audio_segment("speech", "audio", start=0.0, end=2.0, labels=["Speech"], region_id=rid)
        return [segment, textarea("transcript", "audio", text=text, region=segment)]

    assert same_annotation(spoken("Hello there.", "a"), spoken(" Hello\n there. ", "b"))
    message = disagreement(spoken("Hello there.", "a"), spoken("Hello, there.", "b"))
    assert message is not None and "'transcript' (textarea) ['Hello, there.'] instead of ['Hello there.']" in message


def test_video_tracks_compare_their_keyframes_rounded() -> None:
    def track(x: float) -> list[dict]:
        keyframes = [Keyframe(1, (x, 10, 50, 50)), Keyframe(10, (x + 20, 10, 50, 50))]
        return [video_rectangle("box", "video", keyframes=keyframes, frame_size=(640, 480), fps=25, frames_count=100,
                                labels=["Car"], region_id=f"v{x}")]  # fmt: skip

    assert same_annotation(track(101), track(101.001))  # x 15.78125 % and 15.78141 %: equal at 2 decimals
    assert not same_annotation(track(101), track(102))


# --- whole-object results --------------------------------------------------------------------------


def test_choices_are_a_set_and_a_different_choice_is_named() -> None:
    def chosen(*values: str) -> list[dict]:
        return [choices("sentiment", "text", choices=list(values))]

    assert disagreement(chosen("Happy", "Excited"), chosen("Excited", "Happy")) is None
    message = disagreement(chosen("Happy"), chosen("Sad"))
    assert message == "'sentiment' (choices) on 'text' differs: shown ['Happy'], human ['Sad']"
    message = disagreement(chosen("Happy"), [])
    assert message == "'sentiment' (choices) on 'text' differs: shown ['Happy'], human nothing"


def test_textarea_whitespace_is_collapsed_but_the_words_and_their_order_count() -> None:
    def written(*texts: str) -> list[dict]:
        return [textarea("caption", "image", text=list(texts))]

    assert same_annotation(written("  a red\tcar \n"), written("a red car"))
    assert not same_annotation(written("a red car"), written("a red cat"))
    assert not same_annotation(written("one", "two"), written("two", "one"))


def test_ratings_numbers_and_taxonomy_paths() -> None:
    def item(kind: str, payload: Any) -> list[dict]:
        return [{"id": "x", "from_name": kind, "to_name": "text", "type": kind, "value": {kind: payload}}]

    assert same_annotation(item("rating", 4), item("rating", 4.0))
    assert not same_annotation(item("rating", 4), item("rating", 3))
    assert same_annotation(item("number", 0.1 + 0.2), item("number", 0.3))
    assert same_annotation(item("taxonomy", [["A", "B"], ["C"]]), item("taxonomy", [["C"], ["A", "B"]]))
    assert not same_annotation(item("taxonomy", [["A", "B"]]), item("taxonomy", [["A"]]))


# --- per-region attributes (OCR) -------------------------------------------------------------------


def ocr(text: str, rid: str, *, x: float = 100) -> list[dict]:
    region = box(x, label="Line", rid=rid)
    return [region, textarea("transcription", "image", text=text, region=region)]


def test_ocr_boxes_agree_with_the_same_text_in_another_order_of_regions() -> None:
    shown = [*ocr("INVOICE", "m1"), *ocr("Total: 42", "m2", x=500)]
    human = [*ocr("Total:  42", "h2", x=505), *ocr("INVOICE", "h1", x=102)]
    assert disagreement(shown, human) is None


def test_an_ocr_box_with_other_text_differs_and_names_the_text_control() -> None:
    message = disagreement(ocr("INVOICE", "m1"), ocr("INV0ICE", "h1"))
    assert message == (
        "the shown region 'm1' (rectanglelabels ['Line'] of 'label' on 'image') has no match in the human result: "
        "the human region 'h1' there has 'transcription' (textarea) ['INV0ICE'] instead of ['INVOICE']"
    )
    assert not same_annotation(ocr("INVOICE", "m1"), ocr("INVOICE", "h1")[:1])  # the human gave no text


def test_regions_pair_one_to_one_by_best_overlap() -> None:
    shown = [box(100, rid="a"), box(108, rid="b")]
    assert same_annotation(shown, [box(104, rid="c"), box(112, rid="d")])
    assert not same_annotation(shown, [box(104, rid="c")])  # one human box cannot stand for both


# --- relations -----------------------------------------------------------------------------------


def test_relations_correspond_through_the_region_pairing() -> None:
    people = [entity(0, 5, rid="m1"), entity(10, 13, rid="m2")]
    human = [entity(0, 5, rid="h1"), entity(10, 13, rid="h2")]
    shown = [*people, relation("m1", "m2", labels=["knows"])]
    assert same_annotation(shown, [*human, relation("h1", "h2", labels=["knows"])])
    assert same_annotation(shown, [*human, relation("h2", "h1", labels=["knows"], direction="left")])
    assert not same_annotation(shown, [*human, relation("h2", "h1", labels=["knows"])])
    assert not same_annotation(shown, [*human, relation("h1", "h2", labels=["likes"])])
    bi = [*people, relation("m2", "m1", direction="bi")]
    assert same_annotation(bi, [*human, relation("h1", "h2", direction="bi")])


def test_a_relation_on_one_side_only_differs() -> None:
    people = [entity(0, 5, rid="m1"), entity(10, 13, rid="m2")]
    human = [entity(0, 5, rid="h1"), entity(10, 13, rid="h2")]
    message = disagreement([*people, relation("m1", "m2", labels=["knows"])], human)
    assert message == "the shown relation ['knows'] from 'm1' to 'm2' has no counterpart in the human result"
    message = disagreement(people, [*human, relation("h1", "h2")])
    assert message == "the human relation from 'h1' to 'h2' has no counterpart in the shown result"


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, "the shown result is not a list of result items"),
        ("[]", "the shown result is not a list of result items"),
        ({"result": []}, "the shown result is not a list of result items"),
        ([42], "shown result[0] is not a result item (a dict) but int"),
        ([{"from_name": "a", "value": {}}], "shown result[0] has no type"),
        ([{"type": "choices", "from_name": "c", "to_name": "t"}],
         "shown result[0] (choices of 'c' on 't') has no value"),
        ([{"type": "relation", "from_id": "a"}], "shown result[0] is a relation without from_id and to_id"),
        ([{**box(100), "value": {"x": "left", "y": 1, "width": 2, "height": 3}}],
         "shown result[0] (rectanglelabels of 'label' on 'image') has geometry that cannot be read"),
    ],
)  # fmt: skip
def test_malformed_input_is_a_difference(result: Any, expected: str) -> None:
    assert disagreement(result, []) == expected
    assert disagreement([], result) == expected.replace("shown", "human")


ODD_VALUES: list[Any] = [
    None, True, 3, -1.5, math.nan, math.inf, 10**400, "", "x", [], {}, [None], [[1, 2], [3]], {"a": [1, {"b": None}]},
]  # fmt: skip


def odd_items() -> list[dict]:
    """Well-formed items of every kind with one value field, its labels or its image size replaced by something odd."""
    template = [
        box(100), ellipse(50, 20), entity(0, 5), *ocr("text", "o1"), choices("c", "text", choices=["A"]),
        polygon("outline", "image", points=[(1, 1), (50, 1), (50, 50)], image_size=IMAGE, labels=["Road"]),
        brush("paint", "image", mask=square_mask(20), labels=["Sky"]),
        keypoint("points", "image", point=(5, 5), image_size=IMAGE),
        audio_segment("speech", "audio", start=0.0, end=1.0, labels=["Speech"]),
        video_rectangle("box", "video", keyframes=[Keyframe(1, (1, 1, 5, 5))], frame_size=(64, 48), fps=25,
                        frames_count=10),
        {"id": "t", "from_name": "ts", "to_name": "series", "type": "timeserieslabels",
         "value": {"start": 1, "end": 2, "timeserieslabels": ["Up"]}},
        {"id": "v", "from_name": "vec", "to_name": "image", "type": "vectorlabels", "value": {"vertices": [1, 2]}},
    ]  # fmt: skip
    odd = []
    for item in template:
        for key in [*item["value"], "labels", "original_width"]:
            for value in ODD_VALUES:
                changed = copy.deepcopy(item)
                (changed if key == "original_width" else changed["value"])[key] = value
                odd.append(changed)
    return odd


def test_odd_json_never_raises() -> None:
    items = odd_items()
    outcomes = set()
    for i, item in enumerate(items):
        for shown, human in (([item], [item]), ([item], [items[i - 1]]), ([items[i - 1]], [item])):
            outcome = disagreement(shown, human)
            assert outcome is None or isinstance(outcome, str)
            outcomes.add(outcome is None)
    assert outcomes == {True, False}
    assert disagreement([{**box(100), "value": {**box(100)["value"], "x": 10**400}}], []) == (
        "a result holds a number too large to compare"
    )


def test_huge_brush_sizes_are_unreadable_rather_than_a_memory_error() -> None:
    huge = {**brush("paint", "image", mask=square_mask(20)), "original_width": 10**6, "original_height": 10**6}
    message = disagreement([huge], [huge])
    assert message is not None and "geometry that cannot be read" in message


def test_deeply_nested_values_are_reported_not_raised() -> None:
    nested: Any = "deep"
    for _ in range(5000):
        nested = [nested]
    item = {"id": "x", "from_name": "n", "to_name": "t", "type": "number", "value": {"number": nested}}
    assert disagreement([item], [item]) == "a result is nested too deeply to compare"
