"""labelzoo.textspans: annotated Labels spans on Text read for training; every bad span reported by task and
skipped, the others kept, characters of skipped spans with trustworthy offsets left unknown."""

from __future__ import annotations

from pathlib import Path

from labelzoo import Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.textspans import AnnotatedText, SpanIssue, add_spans, annotated_texts, trim_whitespace

CONFIG = parse_label_config("""<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Person"/><Label value="City"/><Label value="Firm" alias="ORG"/>
  </Labels>
  <Labels name="other" toName="text"><Label value="Mood"/></Labels>
</View>""")
TEXT = "Anna Schmidt moved to Berlin.\r\nShe met Tom Baker at Globex."


def item(start: object, end: object, label: str, text: str | None = None, from_name: str = "label",
         to_name: str = "text") -> dict:
    value: dict = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"from_name": from_name, "to_name": to_name, "type": "labels", "value": value}


def test_every_bad_span_is_reported_and_skipped_and_good_ones_kept() -> None:
    annotated = AnnotatedText(7, TEXT)
    result = [
        item(0, 12, "Person", "Anna Schmidt"),
        item(22, 500, "City"),  # past the end
        item("22", 28, "City"),  # not an integer
        item(22, 28, "City", "Berlim"),  # its text is not the task's text there
        item(39, 48, "Animal"),  # not a label of the control
        item(5, 20, "Person"),  # overlaps Anna Schmidt
        item(39, 48, "Person", "Tom Baker"),
        item(52, 58, "Firm"),  # by value while the config aliases it: stored as the alias
        item(0, 4, "Mood", from_name="other"),  # another control: not this one's business
    ]
    issues = add_spans(annotated, result, CONFIG.control("label"), "text")
    assert annotated.spans == [(0, 12, "Person"), (39, 48, "Person"), (52, 58, "ORG")]
    reasons = {(issue.start, issue.end): issue.reason for issue in issues}
    assert reasons.keys() == {(22, 500), ("22", 28), (22, 28), (39, 48), (5, 20)}
    assert "out of bounds: the text has 59 characters" in reasons[(22, 500)]
    assert "integer character offsets" in reasons[("22", 28)]
    assert "'Berlim' differs from the task text there ('Berlin')" in reasons[(22, 28)]
    assert "'Animal'" in reasons[(39, 48)] and "not in <Labels name='label'>" in reasons[(39, 48)]
    assert "overlaps [0, 12) 'Person'" in reasons[(5, 20)]
    assert all(str(issue).startswith("task 7: span [") for issue in issues)
    # spans with offsets that can be trusted leave their tokens unknown rather than "no entity"
    assert sorted(annotated.unknown) == [(5, 20), (39, 48)]


def test_of_overlapping_spans_the_earliest_and_then_longest_is_kept() -> None:
    annotated = AnnotatedText(2, TEXT)
    issues = add_spans(annotated, [item(5, 12, "Person"), item(0, 4, "Person"), item(0, 12, "Person")],
                       CONFIG.control("label"), "text")
    assert annotated.spans == [(0, 12, "Person")]
    assert [(i.start, i.end, i.label) for i in issues] == [(0, 4, "Person"), (5, 12, "Person")]
    assert str(issues[0]) == ("task 2: span [0, 4) 'Person' skipped: overlaps [0, 12) 'Person'; "
                              "one label per character")
    assert annotated.unknown == [(0, 4), (5, 12)]


def test_whitespace_is_trimmed_from_both_ends_only() -> None:
    text = " \tNew York \r\n"
    assert trim_whitespace(text, 0, len(text)) == (2, 10)
    assert text[2:10] == "New York"
    assert trim_whitespace(text, 10, 13) == (13, 13)  # only whitespace: empty
    assert trim_whitespace(text, 2, 5) == (2, 5)


def test_annotated_texts_reads_every_text_object_and_reports_unreadable_tasks(tmp_path: Path) -> None:
    config = parse_label_config("""<View>
      <Text name="title" value="$title"/><Text name="body" value="$body"/>
      <Labels name="who" toName="title,body"><Label value="Person"/></Labels>
      <Labels name="skipped" toName="body" model_skip="true"><Label value="Mood"/></Labels>
      <Choices name="topic" toName="body"><Choice value="news"/></Choices>
    </View>""")
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path / "m"), "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    examples = [
        TrainingExample(task=Task(id=1, data={"title": "Anna Schmidt", "body": "Tom Baker wrote."}), result=[
            item(0, 12, "Person", to_name="title", from_name="who"),
            item(0, 9, "Person", to_name="body", from_name="who"),
            item(10, 15, "Mood", to_name="body", from_name="skipped"),
            item(0, 99, "Person", to_name="body", from_name="who"),
        ]),
        TrainingExample(task=Task(id=2, data={"title": "Hello"}), result=[]),  # no body field
    ]
    corpus, problems = annotated_texts(TrainingData(project="1", config=config, examples=examples),
                                       MediaResolver(settings.media))
    assert [(index, text.task_id, text.text, text.spans) for index, text in corpus] == [
        (0, 1, "Anna Schmidt", [(0, 12, "Person")]),
        (0, 1, "Tom Baker wrote.", [(0, 9, "Person")]),  # the model_skip control is not read
        (1, 2, "Hello", []),
    ]
    issue, unreadable = problems
    assert isinstance(issue, SpanIssue) and (issue.task_id, issue.start, issue.end) == (1, 0, 99)
    assert "out of bounds" in issue.reason
    assert isinstance(unreadable, str) and unreadable.startswith("task 2: not used for training: ")
    assert "'body'" in unreadable
