"""Mapping model class names onto a control's labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelzoo.labelconfig import ControlTag, build_label_map, label_or_first, parse_label_config

CONFIGS = Path(__file__).parent / "label_configs"


def control(labels: str, tag: str = "RectangleLabels", extra: str = "") -> ControlTag:
    xml = (
        f'<View><Image name="image" value="$image"/>'
        f'<{tag} name="label" toName="image" {extra}>{labels}</{tag}></View>'
    )
    return parse_label_config(xml).control("label")


def test_exact_label_values() -> None:
    m = build_label_map(control('<Label value="car"/><Label value="person"/>'), ["person", "car"])
    assert dict(m.mapping) == {"person": "person", "car": "car"}
    assert m.get("car") == "car" and m.get("bus") is None
    assert (m.unmapped_model_labels, m.unfed_config_labels, m.is_empty) == ((), (), False)


def test_predicted_values_take_priority_over_label_values() -> None:
    ctl = control('<Label value="Vehicle" predicted_values="car, truck"/><Label value="car"/>')
    m = build_label_map(ctl, ["car", "truck", "bus"])
    assert dict(m.mapping) == {"car": "Vehicle", "truck": "Vehicle"}  # a config label fed by several
    assert m.unmapped_model_labels == ("bus",)
    assert m.unfed_config_labels == ("car",)


def test_predicted_values_match_case_insensitively_after_exact() -> None:
    ctl = control(
        '<Label value="Big" predicted_values="Truck"/><Label value="Small" predicted_values="truck"/>'
    )
    # "truck" is claimed exactly by Small before Big's case-insensitive "Truck" is considered.
    assert dict(build_label_map(ctl, ["truck"]).mapping) == {"truck": "Small"}
    assert dict(build_label_map(ctl, ["TRUCK"]).mapping) == {"TRUCK": "Big"}


def test_a_model_label_maps_to_one_config_label_only() -> None:
    ctl = control(
        '<Label value="A" predicted_values="x"/><Label value="B" predicted_values="x"/><Label value="x"/>'
    )
    m = build_label_map(ctl, ["x"])
    assert dict(m.mapping) == {"x": "A"}  # first in document order
    assert m.unfed_config_labels == ("B", "x")


def test_alias_is_the_key_and_value_also_matches() -> None:
    ctl = control(
        '<Label value="Organization" alias="ORG"/><Label value="Person" alias="PER"/><Label value="Misc"/>',
        tag="Labels",
    )
    m = build_label_map(ctl, ["ORG", "Person", "misc", "loc"])
    assert dict(m.mapping) == {"ORG": "ORG", "Person": "PER", "misc": "Misc"}
    assert m.unmapped_model_labels == ("loc",)
    assert build_label_map(ctl, ["per"]).get("per") == "PER"  # loose match on the value, alias in results


def test_exact_match_beats_case_insensitive_match() -> None:
    ctl = control('<Label value="Car"/><Label value="car"/>')
    m = build_label_map(ctl, ["CAR", "car"])
    assert dict(m.mapping) == {"CAR": "Car", "car": "car"}


def test_loose_match_treats_separators_alike() -> None:
    ctl = control('<Label value="Traffic Light"/><Label value="stop-sign"/><Label value="fire_hydrant"/>')
    m = build_label_map(ctl, ["traffic_light", "Stop Sign", "FIRE-HYDRANT", "parking  meter"])
    assert dict(m.mapping) == {
        "traffic_light": "Traffic Light",
        "Stop Sign": "stop-sign",
        "FIRE-HYDRANT": "fire_hydrant",
    }
    assert m.unmapped_model_labels == ("parking  meter",)


def test_dict_of_names_as_ultralytics_gives_them() -> None:
    m = build_label_map(
        control('<Label value="person"/><Label value="car"/>'), {0: "person", 1: "bicycle", 2: "car"}
    )
    assert m.model_labels == ("person", "bicycle", "car")
    assert dict(m.mapping) == {"person": "person", "car": "car"}
    assert m.unmapped_model_labels == ("bicycle",)


def test_duplicate_model_labels_are_counted_once() -> None:
    m = build_label_map(control('<Label value="a"/>'), ["a", "b", "a", "b"])
    assert m.model_labels == ("a", "b") and m.unmapped_model_labels == ("b",)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        build_label_map(control('<Label value="a"/>'), "car")


def test_report_lists_mismatches() -> None:
    ctl = control('<Label value="Car" predicted_values="car"/><Label value="Scooter"/>')
    m = build_label_map(ctl, ["car", "truck", "bus"])
    assert m.report().splitlines() == [
        "RectangleLabels 'label': 1 of 3 model labels map to config labels (renamed: car -> Car)",
        "RectangleLabels 'label': model labels not in the config: truck, bus "
        '(add predicted_values="truck" to a <Label> to map one)',
        "RectangleLabels 'label': config labels the model cannot predict: Scooter",
    ]


def test_report_when_nothing_maps() -> None:
    m = build_label_map(control('<Choice value="Cat"/>', tag="Choices"), ["dog"])
    assert m.is_empty
    lines = m.report().splitlines()
    assert (
        lines[0]
        == "no label of the model matches any <Choice> of Choices 'label' — predictions for it will be empty"
    )
    assert 'add predicted_values="dog" to a <Choice>' in lines[2]


def test_report_for_a_control_without_labels() -> None:
    m = build_label_map(control(""), ["car"])
    assert m.report().splitlines()[0].startswith("RectangleLabels 'label' has no <Label> children")
    assert m.unfed_config_labels == () and m.unmapped_model_labels == ("car",)


def test_report_truncates_long_lists() -> None:
    m = build_label_map(control('<Label value="x"/>'), [f"class{i}" for i in range(80)])
    assert "class19, … and 60 more" in m.report()


def test_all_mapped_report_is_one_line() -> None:
    m = build_label_map(control('<Label value="car"/>'), ["car"])
    assert m.report() == "RectangleLabels 'label': 1 of 1 model labels map to config labels"


def test_dynamic_labels_pass_model_labels_through() -> None:
    ctl = control("", tag="Choices", extra='value="$options"')
    m = build_label_map(ctl, {0: "cat", 1: "dog"})
    assert m.dynamic and dict(m.mapping) == {"cat": "cat", "dog": "dog"}
    assert (m.unmapped_model_labels, m.unfed_config_labels) == ((), ())
    assert "labels come from task data" in m.report()


def test_a_single_class_model_takes_the_label_fed_by_its_name_else_the_first() -> None:
    assert label_or_first(control('<Label value="Music"/><Label value="speech"/>', "Labels"), "Speech") == "speech"
    assert label_or_first(control('<Label value="Talk" alias="T" predicted_values="Speech"/>'), "Speech") == "T"
    assert label_or_first(control('<Label value="Speaker 1"/><Label value="Speaker 2"/>'), "Speech") == "Speaker 1"
    assert label_or_first(control(""), "Speech") is None
    dynamic = control('<Label value="Music"/>', tag="Labels", extra='value="$options"')
    assert dynamic.dynamic_labels and label_or_first(dynamic, "Speech") == "Music"  # not "Speech" passed through
    assert label_or_first(control("", tag="Labels", extra='value="$options"'), "Speech") is None


def test_to_json() -> None:
    m = build_label_map(
        control('<Label value="Car" predicted_values="car"/><Label value="Bus"/>'), ["car", "van"]
    )
    data = m.to_json()
    assert data == {
        "control": "label",
        "type": "rectanglelabels",
        "dynamic": False,
        "mapping": {"car": "Car"},
        "unmapped_model_labels": ["van"],
        "unfed_config_labels": ["Bus"],
        "report": m.report(),
    }


def test_sample_object_detection_config_with_coco_names() -> None:
    config = parse_label_config((CONFIGS / "object_detection.xml").read_text(encoding="utf-8"))
    coco = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 7: "truck"}
    m = build_label_map(config.control("label"), coco)
    assert dict(m.mapping) == {"person": "Person", "car": "Car", "truck": "Truck"}
    assert m.unmapped_model_labels == ("bicycle", "motorcycle")
    assert m.unfed_config_labels == ("Scooter",)
