"""Annotated texts (:mod:`labelzoo.textspans`) turned into spaCy reference docs.

The core has kept the spans that fit each text and reported the others; here each span must also fall on
spaCy's token boundaries, or it is skipped too, with a :class:`~labelzoo.textspans.SpanIssue`. Skipped
spans with trustworthy offsets leave their tokens *unknown* (spaCy's missing value) rather than "no entity",
so a skipped span never teaches the model that its words are not an entity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from spacy.language import Language
from spacy.tokens import Doc, Span

from labelzoo.textspans import AnnotatedText, CharSpan, SpanIssue, trim_whitespace


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
        first, stop = trim_whitespace(annotated.text, start, end)
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
    doc.set_ents(ents, missing=[doc[i : i + 1] for i in sorted(unknown - taken)], default="outside")
    return doc, issues
