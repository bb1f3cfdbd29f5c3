"""Labelled text spans read from annotations for training: each text with the spans that fit it, and each span
that does not reported by task and skipped.

A span model learns from ``<Labels>`` results on ``<Text>``, and annotations are user data: offsets that
are not integers or fall outside the text, a ``text`` that is not what the task holds there (the task was
edited after annotating), a label the control does not have, two spans over the same characters.
:func:`annotated_texts` reads every annotated text of a training set into an :class:`AnnotatedText`, keeping
the spans that fit and giving a :class:`SpanIssue` for each one skipped, with the reason, so the job log
says which task to fix. Spans are kept as annotated (``(start, end, label key)``, code points, end
exclusive): :func:`trim_whitespace` takes off the spaces annotators often select along with a word.

A skipped span whose offsets can be trusted (its label is wrong, or it overlaps a span kept before it)
leaves its range in ``unknown``: nobody said what those characters are, so a model must neither learn
that they are no entity nor be scored wrong there (:func:`labelzoo.metrics.count_spans` takes them as
``unknown``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labelzoo.backend import TrainingData
from labelzoo.errors import LabelzooError
from labelzoo.labelconfig import ControlTag, ObjectTag
from labelzoo.media import MediaResolver
from labelzoo.results.readers import read_spans
from labelzoo.taskdata import text_of

CharSpan = tuple[int, int, str]  # start, end (code points, end exclusive), label key


@dataclass(frozen=True)
class SpanIssue:
    """An annotated span left out of training, and why (``start``/``end`` as annotated, whatever their type)."""

    task_id: int | None
    start: Any
    end: Any
    label: str | None
    reason: str

    def __str__(self) -> str:
        return f"task {self.task_id}: span [{self.start}, {self.end}) {self.label!r} skipped: {self.reason}"


@dataclass
class AnnotatedText:
    """One task's text with its kept spans (label keys, sorted, none overlapping) and the ranges whose labels
    are unknown."""

    task_id: int | None
    text: str
    spans: list[CharSpan] = field(default_factory=list)
    unknown: list[tuple[int, int]] = field(default_factory=list)


def add_spans(
    target: AnnotatedText, result: Sequence[Mapping[str, Any]], control: ControlTag, obj_name: str
) -> list[SpanIssue]:
    """Add the result's spans for ``control`` → ``obj_name`` to ``target``; the issues of those skipped.

    A span overlapping one kept before it (by start, longest first) is skipped: one label per character.
    """
    issues = []
    for read in read_spans(result, control, obj_name):
        raw = read.item["value"]
        reason = read.problem(target.text)
        if reason is None and read.label is not None:
            target.spans.append((read.start, read.end, read.label))
            continue
        if reason is None:  # the offsets are fine, the label is not: its characters are unknown, not "no entity"
            reason = f"label {raw.get('labels')!r} is not in <{control.tag} name={control.name!r}>"
            target.unknown.append((read.start, read.end))
        shown = read.raw_labels[0] if read.raw_labels else None
        issues.append(SpanIssue(target.task_id, raw.get("start"), raw.get("end"), shown, reason))
    target.spans.sort(key=lambda s: (s[0], -s[1]))
    kept: list[CharSpan] = []
    for span in target.spans:
        if kept and span[0] < kept[-1][1]:
            before = kept[-1]
            issues.append(SpanIssue(
                target.task_id, span[0], span[1], span[2],
                f"overlaps [{before[0]}, {before[1]}) {before[2]!r}; one label per character",
            ))  # fmt: skip
            target.unknown.append((span[0], span[1]))
        else:
            kept.append(span)
    target.spans = kept
    return issues


def trim_whitespace(text: str, start: int, end: int) -> tuple[int, int]:
    """``start, end`` without the whitespace at either end of ``text[start:end]`` (``start == end`` if it is all
    whitespace)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def annotated_texts(
    data: TrainingData,
    media: MediaResolver,
    control_tags: str | Iterable[str] = "Labels",
    object_tags: str | Iterable[str] = "Text",
) -> tuple[list[tuple[int, AnnotatedText]], list[SpanIssue | str]]:
    """Every annotated (task, object) of ``data`` with the spans of its controls (those without ``model_skip``),
    each with its index in ``data.examples``, and the problems met on the way: skipped spans, and tasks whose
    text could not be read (a message naming the task)."""
    objects: dict[ObjectTag, list[ControlTag]] = defaultdict(list)
    for control, obj in data.config.pairs(control_tags, object_tags):
        if not control.model_skip:
            objects[obj].append(control)
    corpus: list[tuple[int, AnnotatedText]] = []
    problems: list[SpanIssue | str] = []
    for index, example in enumerate(data.examples):
        for obj, controls in objects.items():
            try:
                text = text_of(example.task, obj, media)
            except LabelzooError as exc:
                problems.append(f"task {example.task.id}: not used for training: {exc.message}")
                continue
            annotated = AnnotatedText(example.task.id, text)
            for control in controls:
                problems.extend(add_spans(annotated, example.result, control, obj.name))
            corpus.append((index, annotated))
    return corpus, problems
