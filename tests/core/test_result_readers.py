"""Result readers: every builder's region reads back to what was built, and odd annotations are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from labelzoo.labelconfig import parse_label_config
from labelzoo.results import (
    ResultError,
    brush,
    choices,
    keypoint,
    label_key,
    polygon,
    read_brushes,
    read_choices,
    read_keypoints,
    read_polygons,
    read_rectangles,
    read_spans,
    read_textareas,
    rectangle,
    rotated_box_corners,
    rotated_rectangle,
    span,
    textarea,
)

CONFIG = parse_label_config("""<View>
  <Image name="image" value="$image"/><Image name="other" value="$other"/>
  <RectangleLabels name="box" toName="image,other">
    <Label value="Car" alias="C"/><Label value="Bus" predicted_values="coach"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <BrushLabels name="paint" toName="image"><Label value="Sky"/></BrushLabels>
  <KeyPointLabels name="points" toName="image"><Label value="Nose"/><Label value="Tail"/></KeyPointLabels>
  <Choices name="weather" toName="image" choice="multiple"><Choice value="Sunny"/><Choice value="Rainy"/></Choices>
  <TextArea name="caption" toName="image"/>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="Person"/><Label value="Place" alias="LOC"/></Labels>
  <Labels name="tags" toName="text" value="$tags"/>
</View>""")
SIZE = (200, 100)
TEXT = "Ada went to Paris."


def control(name: str) -> object:
    return CONFIG.control(name)


# --- round trips ---------------------------------------------------------------------------------


def test_a_rectangle_reads_back_in_percent_and_in_pixels() -> None:
    item = rectangle("box", "image", box=(20, 10, 60, 30), image_size=SIZE, labels=["C"], region_id="r1")
    (read,) = read_rectangles([item], control("box"))
    assert (read.id, read.labels, read.label, read.raw_labels) == ("r1", ("C",), "C", ("C",))
    assert (read.x, read.y, read.width, read.height, read.rotation) == (10.0, 10.0, 30.0, 30.0, 0.0)
    assert read.original_size == SIZE
    assert read.box() == pytest.approx((20, 10, 60, 30))
    np.testing.assert_allclose(read.corners(), [[20, 10], [80, 10], [80, 40], [20, 40]])
    assert read.box((400, 200)) == pytest.approx((40, 20, 120, 60))  # another natural size


def test_a_rotated_rectangle_reads_back_to_the_same_corners() -> None:
    item = rotated_rectangle("box", "image", center=(100, 50), size=(60, 20), angle_deg=30, image_size=SIZE,
                             labels=["Bus"])
    (read,) = read_rectangles([item], control("box"))
    assert read.rotation == pytest.approx(30.0)
    np.testing.assert_allclose(read.corners(), rotated_box_corners((100, 50), (60, 20), 30), atol=1e-9)


def test_a_polygon_reads_back_to_its_pixels() -> None:
    points = np.array([[10.0, 10.0], [190.0, 20.0], [100.0, 90.0]])
    item = polygon("poly", "image", points=points, image_size=SIZE, labels=["Road"])
    (read,) = read_polygons([item], control("poly"))
    assert read.closed and read.label == "Road"
    np.testing.assert_allclose(read.pixels(), points)
    line = polygon("poly", "image", points=points[:2], image_size=SIZE, labels=["Road"], closed=False)
    (open_line,) = read_polygons([line], control("poly"))
    assert not open_line.closed and len(open_line.points) == 2


def test_a_brush_reads_back_to_its_mask_and_resizes_by_nearest_neighbour() -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    item = brush("paint", "image", mask=mask, labels=["Sky"])
    (read,) = read_brushes([item], control("paint"))
    assert read.mask.dtype == bool and np.array_equal(read.mask, mask) and read.label == "Sky"
    assert np.array_equal(read.resized((6, 4)), mask)
    assert np.array_equal(read.resized((12, 8)), np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1))
    assert np.array_equal(read.resized((3, 2)), mask[1::2, 1::2])  # the pixel under each new centre


def test_keypoints_read_back_with_their_parent() -> None:
    box = rectangle("box", "image", box=(0, 0, 100, 100), image_size=SIZE, labels=["Car"], region_id="car")
    nose = keypoint("points", "image", point=(50, 25), image_size=SIZE, labels=["Nose"], width=1.5, parent_id="car")
    tail = keypoint("points", "image", point=(10, 90), image_size=SIZE, labels=["Tail"])
    read = read_keypoints([box, nose, tail], control("points"))
    assert [(k.label, k.parent_id, k.width) for k in read] == [("Nose", "car", 1.5), ("Tail", None, 0.5)]
    assert read[0].point() == pytest.approx((50, 25)) and read[1].point((400, 200)) == pytest.approx((20, 180))


def test_choices_read_back_as_label_keys() -> None:
    item = choices("weather", "image", choices=["Sunny", "Rainy"])
    (read,) = read_choices([item], control("weather"))
    assert read.labels == ("Sunny", "Rainy") and read.label == "Sunny"


def test_spans_read_back_with_offsets_text_and_keys() -> None:
    item = span("ner", "text", text=TEXT, start=12, end=17, labels=["LOC"], region_id="s1")
    (read,) = read_spans([item], control("ner"))
    assert (read.id, read.start, read.end, read.text, read.labels) == ("s1", 12, 17, "Paris", ("LOC",))
    assert read.problem(TEXT) is None
    assert read.problem("Ada went to Parma.") == "its text 'Paris' differs from the task text there ('Parma')"
    assert read.problem("Ada") == "out of bounds: the text has 3 characters"


def test_hypertext_spans_read_their_global_offsets() -> None:
    item = {"from_name": "ner", "to_name": "text", "type": "hypertextlabels",
            "value": {"start": "/p[1]/text()[1]", "end": "/p[1]/text()[1]", "startOffset": 0, "endOffset": 3,
                      "globalOffsets": {"start": 0, "end": 3}, "text": "Ada", "hypertextlabels": ["Person"]}}
    (read,) = read_spans([item], control("ner"))
    assert (read.start, read.end, read.label) == (0, 3, "Person") and read.problem(TEXT) is None
    without = {**item, "value": {k: v for k, v in item["value"].items() if k != "globalOffsets"}}
    (xpath_only,) = read_spans([without], control("ner"))
    assert xpath_only.start is None and "integer character offsets" in xpath_only.problem(TEXT)


def test_textareas_read_back_as_lists_of_text_including_per_region_ones() -> None:
    region = rectangle("box", "image", box=(0, 0, 10, 10), image_size=SIZE, labels=["Car"])
    per_region = textarea("caption", "image", text=["a red car", "parked"], region=region)
    whole = textarea("caption", "image", text="a street")
    read = read_textareas([region, per_region, whole], control("caption"))
    assert [(r.texts, r.id == region["id"]) for r in read] == [(("a red car", "parked"), True), (("a street",), False)]


# --- labels --------------------------------------------------------------------------------------


def test_labels_resolve_to_the_control_keys() -> None:
    box = control("box")
    assert label_key(box, "C") == "C"  # the key (alias)
    assert label_key(box, "Car") == "C"  # the value of an aliased label
    assert label_key(box, "coach") == "Bus"  # predicted_values, as for model labels
    assert label_key(box, "bus") == "Bus"  # case-insensitive as a last resort
    assert label_key(box, "Tram") is None
    assert label_key(control("tags"), "anything") == "anything"  # dynamic labels are kept as written


def test_unknown_labels_leave_the_region_without_labels_but_keep_what_was_written() -> None:
    item = rectangle("box", "image", box=(0, 0, 10, 10), image_size=SIZE, labels=["Tram", "Car", "Car"])
    (read,) = read_rectangles([item], control("box"))
    assert read.labels == ("C",) and read.raw_labels == ("Tram", "Car", "Car")
    (unknown,) = read_rectangles([rectangle("box", "image", box=(0, 0, 1, 1), image_size=SIZE, labels=["Tram"])],
                                 control("box"))
    assert unknown.labels == () and unknown.label is None and unknown.raw_labels == ("Tram",)
    (any_control,) = read_rectangles([item], None)  # no control: labels as written
    assert any_control.labels == ("Tram", "Car")


# --- edge cases ----------------------------------------------------------------------------------


def test_other_controls_and_other_objects_are_left_out() -> None:
    mine = rectangle("box", "image", box=(0, 0, 10, 10), image_size=SIZE, labels=["Car"])
    on_other = rectangle("box", "other", box=(0, 0, 10, 10), image_size=SIZE, labels=["Bus"])
    theirs = polygon("poly", "image", points=[[0, 0], [5, 0], [0, 5]], image_size=SIZE, labels=["Road"])
    foreign = rectangle("cars", "image", box=(0, 0, 10, 10), image_size=SIZE, labels=["Car"])
    result = [mine, on_other, theirs, foreign, {"type": "relation", "from_id": "a", "to_id": "b"}]
    assert [r.label for r in read_rectangles(result, control("box"))] == ["C", "Bus"]  # both of its objects
    assert [r.label for r in read_rectangles(result, control("box"), "other")] == ["Bus"]
    assert [r.raw_labels for r in read_rectangles(result, None, "image")] == [("Car",), ("Car",)]
    assert read_polygons(result, control("box")) == [] and read_spans(result, control("ner")) == []


@pytest.mark.parametrize(
    "value",
    [
        {"y": 1, "width": 2, "height": 3},  # no x
        {"x": "1", "y": 1, "width": 2, "height": 3},  # a string
        {"x": True, "y": 1, "width": 2, "height": 3},  # a bool is no number
        {"x": float("nan"), "y": 1, "width": 2, "height": 3},
        {"x": 1, "y": 1, "width": 2, "height": 3, "rotation": "left"},
    ],
)
def test_rectangles_with_missing_or_bad_numbers_are_skipped(value: dict) -> None:
    item = {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "value": value}
    assert read_rectangles([item], control("box")) == []


def test_malformed_items_are_skipped_and_the_rest_read() -> None:
    good = rectangle("box", "image", box=(0, 0, 10, 10), image_size=SIZE, labels=["Car"])
    result = [None, "rectangle", {"type": "rectanglelabels", "from_name": "box", "to_name": "image"}, good,
              {"type": "rectanglelabels", "from_name": "box", "to_name": "image", "value": []}]
    assert len(read_rectangles(result, control("box"))) == 1
    assert read_rectangles(None, control("box")) == [] and read_rectangles("box", control("box")) == []
    null_rotation = {**good, "value": {**good["value"], "rotation": None}}
    assert read_rectangles([null_rotation], control("box"))[0].rotation == 0.0
    unlabelled = {**good, "value": {k: v for k, v in good["value"].items() if k != "rectanglelabels"}}
    assert read_rectangles([unlabelled], control("box"))[0].labels == ()


def test_bad_polygons_brushes_keypoints_and_spans_are_skipped() -> None:
    def item(name: str, type_: str, value: dict, **top: object) -> dict:
        return {"from_name": name, "to_name": "text" if name == "ner" else "image", "type": type_, "value": value,
                **top}

    assert read_polygons([item("poly", "polygonlabels", {"points": [[1, 2], [3, 4]]}),
                          item("poly", "polygonlabels", {"points": [[1, 2], [3, "x"], [5, 6]]}),
                          item("poly", "polygonlabels", {"points": None})], control("poly")) == []
    mask = brush("paint", "image", mask=np.ones((2, 2), bool), labels=["Sky"])
    unsized = {k: v for k, v in mask.items() if k not in ("original_width", "original_height")}
    assert read_brushes([unsized], control("paint")) == []  # no size to decode at
    assert read_brushes([unsized], control("paint"), image_size=(2, 2))[0].mask.all()
    too_small = {**mask, "original_width": 1, "original_height": 1}  # more values than pixels
    png = {**mask, "value": {**mask["value"], "format": "png"}}
    assert read_brushes([too_small, png], control("paint")) == []
    assert read_keypoints([item("points", "keypointlabels", {"x": 1, "keypointlabels": ["Nose"]})],
                          control("points")) == []
    (odd,) = read_spans([item("ner", "labels", {"start": "3", "end": 5, "labels": "Person"})], control("ner"))
    assert odd.start is None and odd.labels == () and odd.problem(TEXT) is not None
    assert read_textareas([item("caption", "textarea", {"text": 5})], control("caption")) == []


def test_pixel_conversions_need_a_size_when_the_item_has_none() -> None:
    item = {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "value": {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["Car"]}}
    (read,) = read_rectangles([item], control("box"))
    with pytest.raises(ResultError, match="pass the natural image size"):
        read.box()
    assert read.box((100, 100)) == pytest.approx((10, 10, 50, 50))


VIDEO = parse_label_config("""<View>
  <Labels name="videoLabels" toName="video"><Label value="Car" predicted_values="car"/></Labels>
  <Video name="video" value="$video"/>
  <VideoRectangle name="track" toName="video"/>
</View>""")


def test_a_video_track_reads_back_as_the_editor_plays_it() -> None:
    from labelzoo.results import Keyframe, read_video_rectangles, video_rectangle

    pixels = [Keyframe(1, (10, 20, 40, 30)), Keyframe(11, (30, 40, 40, 30), enabled=False),
              Keyframe(21, (50, 20, 60, 30)), Keyframe(31, (70, 20, 60, 30))]
    item = video_rectangle("track", "video", keyframes=pixels, frame_size=(200, 100), fps=10, frames_count=40,
                           labels=["car"])
    other = {**item, "from_name": "another"}
    (track,) = read_video_rectangles([item, other], VIDEO.control("track"), VIDEO.control("videoLabels"))
    assert track.label == "Car" and [k.frame for k in track.keyframes] == [1, 11, 21, 31]
    assert track.box_at(1) == pytest.approx((5.0, 20.0, 20.0, 30.0))  # percent of the 200 x 100 frame
    assert track.box_at(6) == pytest.approx((10.0, 30.0, 20.0, 30.0))  # half way to the next keyframe
    assert track.box_at(11) == pytest.approx((15.0, 40.0, 20.0, 30.0))  # drawn on its keyframe, then gone
    assert track.box_at(12) is None and track.box_at(20) is None
    assert track.box_at(26) == pytest.approx((30.0, 20.0, 30.0, 30.0))
    assert track.box_at(40) == pytest.approx((35.0, 20.0, 30.0, 30.0))  # an open end stays to the last frame
    assert track.box_at(0) is None
    assert track.visible(40) == [*range(1, 12), *range(21, 41)]


def test_bad_video_keyframes_are_left_out() -> None:
    from labelzoo.results import read_video_rectangles

    box = {"x": 1, "y": 2, "width": 3, "height": 4}
    sequence = [{"frame": 0, **box}, {"frame": 2.5, **box}, {"frame": 3, **box, "x": "a"}, {"frame": 4, **box}]
    item = {"from_name": "track", "to_name": "video", "type": "videorectangle",
            "value": {"labels": ["Car"], "sequence": sequence}}
    (track,) = read_video_rectangles([item, {**item, "value": {"sequence": []}}], VIDEO.control("track"),
                                     VIDEO.control("videoLabels"))
    assert [k.frame for k in track.keyframes] == [4] and track.box_at(9) == (1, 2, 3, 4)


def test_timeline_ranges_read_back_with_their_labels_and_bad_ranges_are_left_out() -> None:
    from labelzoo.results import read_timeline_labels, timeline_labels

    config = parse_label_config("""<View><Video name="video" value="$video"/>
      <TimelineLabels name="scene" toName="video"><Label value="Goal" alias="G"/><Label value="Foul"/></TimelineLabels>
    </View>""")
    item = timeline_labels("scene", "video", ranges=[(3, 5), (9, 9)], labels=["G"])
    broken = {**item, "value": {"ranges": [{"start": 0, "end": 2}, {"start": 6, "end": 4}, {"start": True, "end": 8},
                                           {"start": 7, "end": 8}], "timelinelabels": ["Foul"]}}
    empty = {**item, "value": {"ranges": [{"start": 4}], "timelinelabels": ["Foul"]}}
    goal, foul = read_timeline_labels([item, broken, empty, {**item, "from_name": "other"}], config.control("scene"))
    assert (goal.label, goal.ranges, goal.frames()) == ("G", ((3, 5), (9, 9)), [3, 4, 5, 9])  # the alias is the key
    assert (foul.label, foul.ranges) == ("Foul", ((7, 8),))


def test_a_mask_box_covers_its_pixels_on_their_edges() -> None:
    from labelzoo.results import mask_box

    mask = np.zeros((6, 8), bool)
    assert mask_box(mask) is None
    mask[1:3, 2:5] = True
    mask[4, 6] = True
    assert mask_box(mask) == (2.0, 1.0, 5.0, 4.0)  # x 2..6 and y 1..4 inclusive: 5 wide, 4 high
