"""The controls of each object tag, by the part they play, and which regions a per-region TextArea describes."""

from __future__ import annotations

from labelzoo.labelconfig import object_controls, parse_label_config

CONFIG = parse_label_config("""<View>
  <Image name="page" value="$page"/>
  <Audio name="audio" value="$audio"/>
  <AudioPlus name="other" value="$other"/>
  <RectangleLabels name="lines" toName="page"><Label value="Line"/><Label value="Title"/></RectangleLabels>
  <TextArea name="ocr" toName="page" perRegion="true"/>
  <TextArea name="ocr_titles" toName="page" perRegion="true" whenTagName="lines" whenLabelValue="Title, Heading"/>
  <TextArea name="other_tag" toName="page" perRegion="true" whenTagName="words"/>
  <TextArea name="summary" toName="page"/>
  <Choices name="kind" toName="page"><Choice value="Letter"/></Choices>
  <TextArea name="transcript" toName="audio,other"/>
  <Labels name="segment" toName="audio"><Label value="Speech"/></Labels>
  <Choices name="skipped" toName="audio" model_skip="true"><Choice value="x"/></Choices>
</View>""")


def test_objects_of_the_tags_asked_for_in_document_order_without_skipped_controls() -> None:
    audio, other = object_controls(CONFIG, ("audio", "AUDIOPLUS"))
    assert (audio.obj.name, other.obj.name) == ("audio", "other")
    assert [c.name for c in audio.controls] == ["transcript", "segment"]  # "skipped" has model_skip
    assert [c.name for c in other.controls] == ["transcript"]
    assert [o.obj.name for o in object_controls(CONFIG, "Image")] == ["page"]
    assert object_controls(CONFIG, "Video") == []


def test_controls_by_the_part_they_play() -> None:
    (page,) = object_controls(CONFIG, "Image")
    assert [c.name for c in page.of("rectanglelabels")] == ["lines"]
    assert [c.name for c in page.of("Choices", "RectangleLabels")] == ["lines", "kind"]
    assert [c.name for c in page.texts] == ["summary"]
    assert [c.name for c in page.region_texts] == ["ocr", "ocr_titles", "other_tag"]


def test_a_per_region_textarea_describes_the_regions_its_when_attributes_name() -> None:
    (page,) = object_controls(CONFIG, "Image")
    lines = CONFIG.control("lines")
    assert [c.name for c in page.region_texts_for(lines, "Line")] == ["ocr"]
    assert [c.name for c in page.region_texts_for(lines, "Title")] == ["ocr", "ocr_titles"]
    (audio, _) = object_controls(CONFIG, ("Audio", "AudioPlus"))
    assert audio.region_texts_for(CONFIG.control("segment"), "Speech") == ()
