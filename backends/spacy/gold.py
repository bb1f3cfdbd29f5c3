"""Labels annotations on Text, turned into spaCy reference docs; bad spans are reported and skipped.

A span is skipped, with a :class:`SpanIssue` naming the task and the span, when its offsets are not
integers inside the text, when its ``text`` differs from the task text at those offsets, when its label
is not in the control, or when it overlaps a span kept before it (spaCy's NER takes one label per
token). A span whose ends fall inside tokens is skipped too. Skipped spans with trustworthy offsets
leave their tokens *unknown* (spaCy's missing value) rather than "no entity", so a skipped span never
teaches the model that its words are not an entity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from labelzoo import LabelzooError, TrainingData
from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag, build_label_map
from labelzoo.media import MediaResolver
from labelzoo.results import read_spans
from labelzoo.taskdata import text_of

CharSpan = tuple[int, int, str]  # start, end (code points, end exclusive), label


@dataclass(frozen=True)
class SpanIssue:
    task_id: int | None
    start: Any
    end: Any
    label: str | None
    reason: str

    def __str__(self) -> str:
        return f"task {self.task_id}: span [{self.start}, {self.end}) {self.label!r} skipped: {self.reason}"


@dataclass
class AnnotatedText:
    """One task's text with its kept spans (config label keys) and the ranges whose labels are unknown."""

    task_id: int | None
    text: str
    spans: list[CharSpan] = field(default_factory=list)
    unknown: list[tuple[int, int]] = field(default_factory=list)


def add_spans(
    target: AnnotatedText, result: Sequence[Mapping[str, Any]], control: ControlTag, obj_name: str
) -> list[SpanIssue]:
    """Add the result's spans for ``control`` → ``obj_name`` to ``target``; the issues of those skipped."""
    issues = []
    for read in read_spans(result, control, obj_name):
        raw = read.item["value"]
        reason = read.problem(target.text)
        if reason is None and read.label is not None:
            target.spans.append((read.start, read.end, read.label))
            continue
        if reason is None:  # the offsets are fine, the label is not: its tokens are unknown, not "no entity"
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
            ))
            target.unknown.append((span[0], span[1]))
        else:
            kept.append(span)
    target.spans = kept
    return issues


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets without leading/trailing whitespace (annotators often select a trailing space)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def reference_doc(
    nlp: Language,
    annotated: AnnotatedText,
    names: Mapping[str, str],
    extra: Sequence[CharSpan] = (),
) -> tuple[Doc, list[SpanIssue]]:
    """The gold doc: annotated spans under their spaCy label (``names``: config key → spaCy label),
    ``extra`` spans (rehearsal pseudo-labels) where they touch no annotation, unknown tokens where a
    span was skipped, and "no entity" everywhere else."""
    doc = nlp.make_doc(annotated.text)
    issues: list[SpanIssue] = []
    ents: list[Span] = []
    unknown: set[int] = set()
    for start, end, key in annotated.spans:
        first, stop = _trim(annotated.text, start, end)
        span = doc.char_span(first, stop, label=names[key]) if first < stop else None
        if span is None:
            wide = doc.char_span(start, end, alignment_mode="expand")
            reason = "only whitespace" if first == stop else "does not fall on token boundaries"
            if wide is not None and first < stop:
                reason += f" (its tokens are {wide.text!r})"
                unknown.update(range(wide.start, wide.end))
            issues.append(SpanIssue(annotated.task_id, start, end, key, reason))
            continue
        ents.append(span)
    for start, end in annotated.unknown:
        wide = doc.char_span(start, end, alignment_mode="expand")
        if wide is not None:
            unknown.update(range(wide.start, wide.end))
    taken = {i for ent in ents for i in range(ent.start, ent.end)}
    for start, end, label in extra:
        span = doc.char_span(start, end, label=label)
        if span is not None and not taken.union(unknown).intersection(range(span.start, span.end)):
            ents.append(span)
            taken.update(range(span.start, span.end))
    doc.set_ents(ents, missing=_runs(doc, sorted(unknown - taken)), default="outside")
    return doc, issues


def _runs(doc: Doc, tokens: list[int]) -> list[Span]:
    """Consecutive token indices grouped into spans."""
    runs: list[Span] = []
    for i in tokens:
        if runs and runs[-1].end == i:
            runs[-1] = doc[runs[-1].start : i + 1]
        else:
            runs.append(doc[i : i + 1])
    return runs


def collect(data: TrainingData, media: MediaResolver) -> tuple[list[tuple[int, AnnotatedText]], list[SpanIssue | str]]:
    """Every annotated (task, Text object) with its spans, with its index in ``data.examples``, and the
    problems met on the way (skipped spans, tasks whose text could not be read)."""
    objects: dict[ObjectTag, list[ControlTag]] = defaultdict(list)
    for control, obj in data.config.pairs("Labels", "Text"):
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


class LabelNames(dict[str, str]):
    """Config label key → spaCy label; a key it does not list (dynamic labels) trains under its own name."""

    def __missing__(self, key: str) -> str:
        return key


def spacy_names(config: LabelConfig, model_labels: Iterable[str]) -> LabelNames:
    """Which spaCy label each config label trains: the model label that feeds it through the core's
    mapping (``predicted_values``, value, case-insensitive), else the key itself (a new label)."""
    names = LabelNames()
    for control, _ in config.pairs("Labels", "Text"):
        for model_label, key in build_label_map(control, sorted(model_labels)).mapping.items():
            names.setdefault(key, model_label)
        for key in control.label_keys:
            names.setdefault(key, key)
    return names
