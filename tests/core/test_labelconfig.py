"""Parsing label configs: the sample configs in label_configs/, attribute helpers, hostile input."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from labelzoo.errors import BadRequest, LabelConfigError
from labelzoo.labelconfig import (
    MAX_LABEL_CONFIG_BYTES,
    ControlTag,
    LabelConfig,
    canonical_tag,
    parse_label_config,
    parse_label_config_cached,
)

CONFIGS = Path(__file__).parent / "label_configs"

# file -> (objects {name: (tag, value, value_key)}, controls {name: (tag, to_names, label keys)})
EXPECTED: dict[str, tuple[dict[str, tuple[str, str, str | None]], dict[str, tuple]]] = {
    "object_detection.xml": (
        {"image": ("Image", "$image", "image")},
        {"label": ("RectangleLabels", ("image",), ("Car", "Truck", "Person", "Scooter"))},
    ),
    "obb.xml": (
        {"aerial": ("Image", "$image", "image")},
        {"obb": ("RectangleLabels", ("aerial",), ("plane", "ship", "tank"))},
    ),
    "polygon_segmentation.xml": (
        {"image": ("Image", "$image", "image")},
        {"label": ("PolygonLabels", ("image",), ("Airplane", "Car"))},
    ),
    "brush_segmentation.xml": (
        {"image": ("Image", "$image", "image")},
        {"tag": ("BrushLabels", ("image",), ("Sky", "Road", "Vegetation"))},
    ),
    "keypoints.xml": (
        {"img": ("Image", "$image", "image")},
        {
            "person_box": ("RectangleLabels", ("img",), ("person",)),
            "kp": ("KeyPointLabels", ("img",), ("nose", "left_eye", "right_eye", "left_shoulder")),
        },
    ),
    "image_classification.xml": (
        {"image": ("Image", "$image", "image")},
        {"choice": ("Choices", ("image",), ("Cat", "dog", "Other"))},
    ),
    "ner_text.xml": (
        {"text": ("Text", "$text", "text")},
        {"label": ("Labels", ("text",), ("Person", "ORG", "LOC", "MISC"))},
    ),
    "hypertext_ner.xml": (
        {"page": ("HyperText", "$html", "html")},
        {"ner": ("HyperTextLabels", ("page",), ("Title", "Price"))},
    ),
    "text_classification.xml": (
        {"review": ("Text", "$review", "review")},
        {
            "sentiment": ("Choices", ("review",), ("Positive", "Negative", "Neutral")),
            "topics": ("Choices", ("review",), ("Price", "Quality", "Delivery")),
        },
    ),
    "audio_transcription.xml": (
        {"audio": ("Audio", "$audio", "audio")},
        {"transcription": ("TextArea", ("audio",), ())},
    ),
    "speaker_segmentation.xml": (
        {"audio": ("Audio", "$url", "url")},
        {
            "speaker": ("Labels", ("audio",), ("Speaker 1", "Speaker 2")),
            "transcript": ("TextArea", ("audio",), ()),
        },
    ),
    "video_tracking.xml": (
        {"video": ("Video", "$video", "video")},
        {
            "videoLabels": ("Labels", ("video",), ("Man", "Woman", "Other")),
            "box": ("VideoRectangle", ("video",), ()),
        },
    ),
    "sam_smart.xml": (
        {"image": ("Image", "$image", "image")},
        {
            "tag2": ("KeyPointLabels", ("image",), ("Banana", "Orange")),
            "tag3": ("RectangleLabels", ("image",), ("Banana", "Orange")),
            "tag": ("BrushLabels", ("image",), ("Banana", "Orange")),
        },
    ),
    "nested_views.xml": (
        {"title": ("Header", "$title", "title"), "photo": ("Image", "$photo_url", "photo_url")},
        {
            "relevance": ("Choices", ("photo",), ("Relevant", "Irrelevant")),
            "quality": ("Rating", ("photo",), ()),
        },
    ),
    "multi_control_one_object.xml": (
        {"image": ("Image", "$image", "image")},
        {
            "boxes": ("RectangleLabels", ("image",), ("Defect", "Scratch")),
            "verdict": ("Choices", ("image",), ("Pass", "Fail")),
            "caption": ("TextArea", ("image",), ()),
            "count": ("Number", ("image",), ()),
            "note": ("TextArea", ("image",), ()),
        },
    ),
    "two_images.xml": (
        {
            "left": ("Image", "$left_image", "left_image"),
            "right": ("Image", "$right_image", "right_image"),
            "gallery": ("Image", "$images", "images"),
        },
        {
            "left_boxes": ("RectangleLabels", ("left",), ("Car",)),
            "right_boxes": ("RectangleLabels", ("right",), ("Car",)),
            "better": ("Pairwise", ("left", "right"), ()),
            "gallery_poly": ("PolygonLabels", ("gallery",), ("Car",)),
        },
    ),
    "dynamic_labels.xml": (
        {"text": ("Text", "$text", "text")},
        {
            "options": ("Choices", ("text",), ()),
            "entities": ("Labels", ("text",), ()),
            "taxonomy": ("Taxonomy", ("text",), ()),
        },
    ),
    "choices_nested_view.xml": (
        {"image": ("Image", "$image", "image")},
        {"weather": ("Choices", ("image",), ("Sunny", "Cloudy", "rain"))},
    ),
    "sample_task_comment.xml": (
        {"image": ("Image", "$image", "image")},
        {"caption": ("TextArea", ("image",), ())},
    ),
    "mixed_case.xml": (
        {"img": ("Image", "$url", "url")},
        {"box": ("RectangleLabels", ("img",), ("A", "B")), "cls": ("Choices", ("img",), ("yes",))},
    ),
    "unknown_tags.xml": (
        {"spec": ("SpectrogramView", "$wav", "wav")},
        {"events": ("Labels", ("spec",), ("Bird",))},
    ),
    "dialogue.xml": (
        {"dialogue": ("Paragraphs", "$dialogue", "dialogue")},
        {"ner": ("ParagraphLabels", ("dialogue",), ("Request", "Complaint"))},
    ),
    "time_series.xml": (
        {"ts": ("TimeSeries", "$csv_url", "csv_url")},
        {"events": ("TimeSeriesLabels", ("ts",), ("Run", "Walk"))},
    ),
    "chat.xml": (
        {"chat": ("Chat", "$messages", "messages")},
        {"chat": ("Chat", ("chat",), ()), "helpful": ("Choices", ("chat",), ("Helpful", "Not helpful"))},
    ),
}


def load(name: str) -> LabelConfig:
    return parse_label_config((CONFIGS / name).read_text(encoding="utf-8"))


# -- the sample configs ----------------------------------------------------------------------------


def test_every_sample_config_has_expectations() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_config_parses_to_exactly_the_expected_tags(name: str) -> None:
    config = load(name)
    objects, controls = EXPECTED[name]
    assert {n: (o.tag, o.value, o.value_key) for n, o in config.objects.items()} == objects
    assert list(config.objects) == list(objects)  # document order
    assert {n: (c.tag, c.to_names, c.label_keys) for n, c in config.controls.items()} == controls
    assert list(config.controls) == list(controls)
    for control in config.controls.values():
        assert control.objects == tuple(config.objects[n] for n in control.to_names)
        assert control.result_type == ("chatmessage" if control.tag == "Chat" else control.tag.lower())
    assert config.warnings == ()


def test_object_detection_attributes() -> None:
    config = load("object_detection.xml")
    control = config.control("label")
    assert control.model_path == "yolov8n.pt"
    assert control.score_threshold == 0.25
    assert control.smart is True  # Label Studio's default
    assert control.model_skip is False
    assert control.per_region is False
    assert control.dynamic_labels is False
    assert control.attrs["strokeWidth"] == "3"  # raw, original case
    assert control.attr("strokewidth") == control.attr("STROKEWIDTH") == "3"
    assert control.attr("missing") is None and control.attr("missing", "x") == "x"
    car, truck, person, scooter = control.labels
    assert (car.value, car.alias, car.key, car.background) == ("Car", None, "Car", "#FF0000")
    assert car.predicted_values == ("car", "automobile")
    assert truck.predicted_values == ("truck", "lorry")
    assert person.predicted_values == () and person.attrs["hotkey"] == "p"
    assert scooter.background == "#FFA500"
    image = config.object("image")
    assert (image.value_list, image.value_type) == (False, None)
    assert image.attrs == {"name": "image", "value": "$image", "zoom": "true", "zoomControl": "true",
                           "rotateControl": "false"}  # fmt: skip


def test_obb_and_keypoint_attributes() -> None:
    obb = load("obb.xml").control("obb")
    assert obb.bool_attr("model_obb", False) is True
    assert obb.score_threshold == 0.4  # from score_threshold
    assert obb.model_skip is False
    tank = obb.labels[2]
    assert (tank.value, tank.alias, tank.key) == ("storage-tank", "tank", "tank")

    config = load("keypoints.xml")
    assert config.control("person_box").model_skip is True
    kp = config.control("kp")
    assert kp.smart is False
    assert kp.float_attr("model_point_size") == 1.0
    assert [label.attr("model_index") for label in kp.labels] == ["0", "1", "2", "5"]
    assert kp.score_threshold is None


def test_choices_attributes() -> None:
    choice = load("image_classification.xml").control("choice")
    assert choice.choice_multiple is False
    assert choice.score_threshold == 0.5
    assert [(lb.value, lb.key) for lb in choice.labels] == [
        ("Cat", "Cat"),
        ("Dog", "dog"),
        ("Other", "Other"),
    ]
    assert choice.labels[2].predicted_values == ("bird", "horse")
    config = load("text_classification.xml")
    assert config.control("topics").choice_multiple is True
    assert config.control("sentiment").choice_multiple is False


def test_per_region_and_visible_when() -> None:
    config = load("speaker_segmentation.xml")
    assert config.control("transcript").per_region is True
    assert config.control("speaker").per_region is False
    note = load("multi_control_one_object.xml").control("note")
    assert note.per_region is True and note.attr("whenLabelValue") == "Defect"


def test_smart_and_smart_only() -> None:
    config = load("sam_smart.xml")
    tag2 = config.control("tag2")
    assert tag2.smart is True
    assert tag2.attrs["smartOnly"] == "true"
    assert tag2.attr("smartonly") == "true" and tag2.bool_attr("SMARTONLY", False) is True
    assert config.control("tag").smart is True  # default
    only = parse_label_config(
        '<View><Image name="i" value="$i"/>'
        '<KeyPointLabels name="k" toName="i" smart="false" smartonly="true"/></View>'
    )
    assert only.control("k").smart is True


def test_nested_views_header_object_and_layout_tags() -> None:
    config = load("nested_views.xml")
    title = config.object("title")
    assert (title.tag, title.value_key, title.attrs["size"]) == ("Header", "title", "4")
    assert config.controls_for("photo") == (config.control("relevance"), config.control("quality"))
    assert config.controls_for("title") == ()


def test_several_controls_on_one_object() -> None:
    config = load("multi_control_one_object.xml")
    assert [c.name for c in config.controls_for("image")] == ["boxes", "verdict", "caption", "count", "note"]
    assert [(c.name, o.name) for c, o in config.pairs("TextArea", "Image")] == [
        ("caption", "image"),
        ("note", "image"),
    ]
    assert config.control("caption").model_skip is True  # "yes"


def test_two_images_pairs_and_value_list() -> None:
    config = load("two_images.xml")
    assert [(c.name, o.name) for c, o in config.pairs("rectanglelabels", "IMAGE")] == [
        ("left_boxes", "left"),
        ("right_boxes", "right"),
    ]
    assert [(c.name, o.name) for c, o in config.pairs(["RectangleLabels", "PolygonLabels"], ("Image",))] == [
        ("left_boxes", "left"),
        ("right_boxes", "right"),
        ("gallery_poly", "gallery"),
    ]
    assert [o.name for o in config.control("better").objects] == ["left", "right"]
    gallery = config.object("gallery")
    assert (gallery.value_list, gallery.value, gallery.value_key) == (True, "$images", "images")
    control, obj = config.first_pair("PolygonLabels", "Image")
    assert (control.name, obj.name) == ("gallery_poly", "gallery")


def test_dynamic_labels() -> None:
    config = load("dynamic_labels.xml")
    assert all(c.dynamic_labels for c in config.controls.values())
    assert config.control("options").choice_multiple is True
    assert config.control("options").attr("value") == "$options"
    assert load("chat.xml").control("helpful").dynamic_labels is False


def test_labels_nested_in_views_inside_choices() -> None:
    weather = load("choices_nested_view.xml").control("weather")
    # <Choice/> without value and the <Choice> outside any control are dropped.
    assert [(lb.value, lb.key) for lb in weather.labels] == [
        ("Sunny", "Sunny"),
        ("Cloudy", "Cloudy"),
        ("Rain", "rain"),
    ]


def test_sample_task_from_json_comment() -> None:
    config = load("sample_task_comment.xml")
    assert config.sample_task is not None
    assert config.sample_task["data"] == {"image": "https://example.com/product.jpg"}
    assert config.sample_task["predictions"][0]["result"][0]["value"] == {"text": ["A red mug"]}
    assert load("object_detection.xml").sample_task is None
    bad = parse_label_config('<View><!-- {"data": broken} --><!-- {"no_data": 1} --><!-- [1] --></View>')
    assert bad.sample_task is None


def test_mixed_case_tags_are_canonical_and_attrs_keep_their_case() -> None:
    config = load("mixed_case.xml")
    assert config.object("img").tag == "Image"
    box = config.control("box")
    assert (box.tag, box.result_type) == ("RectangleLabels", "rectanglelabels")
    cls = config.control("cls")
    assert "toname" in cls.attrs and "toName" not in cls.attrs
    assert cls.attr("toName") == "img"
    assert [(c.name, o.name) for c, o in config.pairs("Choices", "Image")] == [("cls", "img")]
    assert canonical_tag("KEYPOINTLABELS") == "KeyPointLabels"
    assert canonical_tag("MyWidget") == "MyWidget"


def test_unknown_tags_filter_and_relations() -> None:
    config = load("unknown_tags.xml")
    assert config.object("spec").attrs["colormap"] == "magma"
    assert "filter" not in config.controls and "filter" not in config.objects
    assert config.pairs("Labels", "spectrogramview")[0][0].name == "events"


def test_chat_is_object_and_control() -> None:
    config = load("chat.xml")
    chat = config.control("chat")
    assert chat.objects == (config.object("chat"),)
    assert chat.dynamic_labels is False


# -- lookups and errors ---------------------------------------------------------------------------


def test_control_and_object_lookup_errors_list_the_names() -> None:
    config = load("two_images.xml")
    with pytest.raises(LabelConfigError, match=r"no control tag named 'nope'.*'left_boxes', 'right_boxes'"):
        config.control("nope")
    with pytest.raises(LabelConfigError, match=r"no object tag named 'nope'.*'left', 'right', 'gallery'"):
        config.object("nope")
    with pytest.raises(LabelConfigError, match="no object tag named 'nope'"):
        config.controls_for("nope")


def test_first_pair_error_names_the_tags_and_suggests_a_fix() -> None:
    config = load("ner_text.xml")
    with pytest.raises(LabelConfigError) as info:
        config.first_pair("rectanglelabels", "IMAGE")  # reported in canonical case
    message = str(info.value)
    assert message.startswith("no <RectangleLabels> connected to an <Image> in the label config; add e.g. ")
    assert '<Image name="image" value="$image"/>' in message
    assert '<RectangleLabels name="label" toName="image"><Label value="..."/></RectangleLabels>' in message
    assert "Labels 'label' -> Text 'text'" in message
    assert info.value.status == 400
    with pytest.raises(
        LabelConfigError, match=r"no <Choices> or <Taxonomy> connected to a <Text> or <HyperText>"
    ):
        config.first_pair(["Choices", "Taxonomy"], ["Text", "HyperText"])


def test_invalid_numbers_and_booleans_name_the_control() -> None:
    config = parse_label_config(
        '<View><Image name="img" value="$img"/>'
        '<RectangleLabels name="boxes" toName="img" model_score_threshold="high" smart="maybe"'
        ' score_threshold="inf"/>'
        "</View>"
    )
    control = config.control("boxes")
    with pytest.raises(
        LabelConfigError, match=r'<RectangleLabels name="boxes"> has model_score_threshold="high"'
    ):
        _ = control.score_threshold
    with pytest.raises(LabelConfigError, match=r'smart="maybe", which is not a boolean'):
        _ = control.smart
    with pytest.raises(LabelConfigError, match="not a number"):
        control.float_attr("score_threshold")
    assert control.float_attr("absent", 0.5) == 0.5
    assert control.bool_attr("absent", True) is True


def test_value_keys() -> None:
    config = parse_label_config(
        '<View><Text name="a" value="$data.text"/><Text name="b" value="Hello world"/>'
        '<Text name="c" value="$"/>'
        '<Image name="d" valueList="$imgs" value="$ignored" valueType="url"/></View>'
    )
    assert [config.object(n).value_key for n in "abcd"] == ["data.text", None, None, "imgs"]
    assert config.object("d").value_type == "url"


# -- warnings -------------------------------------------------------------------------------------


def test_to_name_pointing_nowhere_is_a_warning() -> None:
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<RectangleLabels name="boxes" toName="image, missing"><Label value="A"/></RectangleLabels>'
        '<Choices name="c" toName="ghost"><Choice value="x"/></Choices></View>'
    )
    assert config.control("boxes").to_names == ("image", "missing")
    assert [o.name for o in config.control("boxes").objects] == ["image"]
    assert config.control("c").objects == ()
    assert len(config.warnings) == 2
    assert '<RectangleLabels name="boxes"> has toName="image, missing", but \'missing\'' in config.warnings[0]
    assert "'ghost' names no object tag; objects: 'image'" in config.warnings[1]


def test_other_warnings() -> None:
    config = parse_label_config(
        '<Panel><Image name="image" value="$image"/><RectangleLabels toName="image"/><Choices name="c"/>'
        '<Labels name="l" toName="image"><Label value="A"/><Label value="A"/></Labels></Panel>'
    )
    assert config.warnings == (
        "the root tag is <Panel>; Label Studio expects <View>",
        '<RectangleLabels> is ignored: a control tag needs both name="..." and toName="<object name>"',
        '<Choices name="c"> is ignored: a control tag needs both name="..." and toName="<object name>"',
        '<Labels name="l"> lists labels more than once: A',
    )
    assert config.control("l").label_keys == ("A",)
    assert len(config.control("l").labels) == 2


@pytest.mark.parametrize(
    "xml",
    [
        '<View><Image name="x" value="$a"/><Image name="x" value="$b"/></View>',
        '<View><Image name="i" value="$a"/><Choices name="x" toName="i"/><TextArea name="x" toName="i"/>'
        "</View>",
        '<View><Image name="x" value="$a"/><Choices name="x" toName="x"/></View>',
    ],
)
def test_duplicate_names_are_errors(xml: str) -> None:
    with pytest.raises(LabelConfigError, match="the name 'x' is used by both"):
        parse_label_config(xml)


# -- hostile and broken input ---------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<View><Text name="t" value="&lol9;"/></View>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE View [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<View><Text name="t" value="&xxe;"/></View>"""
EXTERNAL_DTD = '<!DOCTYPE View SYSTEM "http://example.com/evil.dtd"><View/>'
PLAIN_DTD = "<!DOCTYPE View><View/>"
PARAMETER_ENTITY = '<!DOCTYPE View [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><View/>'


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PLAIN_DTD, PARAMETER_ENTITY])
def test_dtds_and_entities_are_refused(xml: str) -> None:
    with pytest.raises(LabelConfigError, match="must not declare entities/DTD"):
        parse_label_config(xml)


def test_oversized_config_is_refused() -> None:
    xml = "<View>" + " " * (MAX_LABEL_CONFIG_BYTES + 1) + "</View>"
    limit = rf"is {len(xml)} bytes; the limit is {MAX_LABEL_CONFIG_BYTES} bytes .*LABEL_CONFIG_MAX_MB"
    with pytest.raises(LabelConfigError, match=limit):
        parse_label_config(xml)
    with pytest.raises(LabelConfigError, match="the limit is 1000 bytes"):
        parse_label_config("<View>" + " " * 1000 + "</View>", max_bytes=1000)


def many_views(controls: int) -> str:
    """A legal config of ``controls`` small views, each a text with its choices (5 MB at 50,000)."""
    views = "".join(
        f'<View><Text name="t{i}" value="$t{i}"/><Choices name="c{i}" toName="t{i}">'
        f'<Choice value="yes"/><Choice value="no"/></Choices></View>'
        for i in range(controls)
    )
    return f"<View>{views}</View>"


def test_a_legal_config_of_many_megabytes_parses_and_a_hostile_one_of_that_size_is_refused_at_once() -> None:
    xml = many_views(50_000)
    assert len(xml) > 5_000_000
    started = time.perf_counter()
    config = parse_label_config(xml)
    assert time.perf_counter() - started < 60  # measured 3-4 s on 2 CPU cores; the bound only catches a blow-up
    assert len(config.controls) == 50_000 and config.control("c49999").label_keys == ("yes", "no")
    hostile = BILLION_LAUGHS.replace("<View>", "<View>" + " " * 5_000_000, 1)
    started = time.perf_counter()
    with pytest.raises(LabelConfigError, match="must not declare entities/DTD"):
        parse_label_config(hostile)
    assert time.perf_counter() - started < 5


def test_malformed_xml_reports_line_and_column() -> None:
    with pytest.raises(LabelConfigError) as info:
        parse_label_config('<View>\n  <Image name="i" value="$i">\n</View>')
    message = str(info.value)
    assert message.startswith("label config is not well-formed XML: mismatched tag")
    assert "(line 3, column 3)" in message and "near: </View>" in message
    assert isinstance(info.value, BadRequest) and info.value.code == "invalid_label_config"


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("", "label config is empty"),
        ("  \n ", "label config is empty"),
        (None, "must be an XML string, got NoneType"),
        (b"<View/>", "must be an XML string, got bytes"),
        ("just some text", "not well-formed XML: syntax error"),
        ('{"label_config": "<View/>"}', "not well-formed XML"),
        ("<View><Text></View>", "mismatched tag"),
        ("<View>&undefined;</View>", "undefined entity"),
        ("<View>\ud800</View>", "not valid Unicode at position 6"),
        ("<View>\x00</View>", "not well-formed XML: not well-formed"),
        ("<View/><View/>", "junk after document element"),
    ],
)
def test_unusable_input(xml: object, match: str) -> None:
    with pytest.raises(LabelConfigError, match=match):
        parse_label_config(xml)  # type: ignore[arg-type]


def test_deep_nesting_does_not_exhaust_recursion() -> None:
    depth = 20_000
    xml = "<View>" * depth + '<Image name="i" value="$i"/><Choices name="c" toName="i"/>' + "</View>" * depth
    config = parse_label_config(xml)
    assert list(config.controls) == ["c"]


# -- immutability, caching, fingerprint -----------------------------------------------------------


def test_parsed_config_is_immutable() -> None:
    config = load("object_detection.xml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.control("label").name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.controls["x"] = config.control("label")  # type: ignore[index]
    with pytest.raises(TypeError):
        config.control("label").attrs["model_path"] = "evil.pt"  # type: ignore[index]
    assert isinstance(hash(config.control("label")), int)


def test_cached_parse_returns_the_same_object() -> None:
    xml = (CONFIGS / "sam_smart.xml").read_text(encoding="utf-8")
    assert parse_label_config_cached(xml) is parse_label_config_cached(xml)
    with pytest.raises(LabelConfigError, match="got list"):
        parse_label_config_cached(["<View/>"])  # type: ignore[arg-type]


def test_fingerprint_ignores_formatting_and_tracks_meaning() -> None:
    base = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<RectangleLabels name="label" toName="image"><Label value="Car"/></RectangleLabels></View>'
    )
    reformatted = parse_label_config(
        "<!-- a comment -->\n<view>\n  <Header value='Boxes'/>\n  <IMAGE value='$image' name='image'/>\n"
        '  <rectanglelabels toName="image" name="label">\n    <label value="Car"></label>\n'
        "  </rectanglelabels>\n</view>"
    )
    relabelled = parse_label_config(base.xml.replace('"Car"', '"Bus"'))
    assert len(base.fingerprint) == 16
    assert base.fingerprint == reformatted.fingerprint
    assert base.fingerprint != relabelled.fingerprint
    assert base.fingerprint == parse_label_config(base.xml).fingerprint


def test_control_tag_is_constructible_directly() -> None:
    control = ControlTag(
        name="c", tag="Choices", to_names=(), objects=(), labels=(), attrs={"choice": "multiple"}
    )
    assert control.choice_multiple and control.label_keys == () and not control.dynamic_labels
