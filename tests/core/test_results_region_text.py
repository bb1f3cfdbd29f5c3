"""A region followed by its text in each per-region TextArea, sharing its id (OCR boxes, speech segments)."""

from __future__ import annotations

import pytest

from labelzoo.results import ResultError, audio_segment, rectangle, with_region_text


def test_each_text_control_gets_the_region_text_with_its_id_and_score() -> None:
    segment = audio_segment("segment", "audio", start=1.0, end=2.5, labels=["Speech"], score=0.8)
    region, first, second = with_region_text(segment, ["text", "notes"], text="Hello there.", score=0.8)
    assert region is segment  # the region comes first (P15)
    assert [(i["from_name"], i["type"], i["id"]) for i in (first, second)] == [
        ("text", "textarea", segment["id"]), ("notes", "textarea", segment["id"]),
    ]  # fmt: skip
    assert first["value"] == {"start": 1.0, "end": 2.5, "channel": 0, "text": ["Hello there."]}
    assert first["score"] == second["score"] == 0.8 and first["to_name"] == "audio"


def test_image_regions_keep_their_size_fields_and_a_missing_score_is_left_out() -> None:
    box = rectangle("lines", "page", box=(10, 20, 30, 40), image_size=(100, 200), labels=["Line"])
    _, text = with_region_text(box, ["ocr"], text="INVOICE")
    assert (text["original_width"], text["original_height"], text["id"]) == (100, 200, box["id"])
    assert "score" not in text and text["value"]["text"] == ["INVOICE"]


def test_blank_text_gives_the_region_alone() -> None:
    segment = audio_segment("segment", "audio", start=0.0, end=1.0, labels=["Speech"])
    assert with_region_text(segment, ["text"], text="  ") == [segment]
    assert with_region_text(segment, [], text="words") == [segment]
    with pytest.raises(ResultError, match="must be a result item"):
        with_region_text("not a region", ["text"], text="x")  # type: ignore[arg-type]
