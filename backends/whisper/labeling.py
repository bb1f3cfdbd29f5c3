"""Which controls of a label config Whisper fills, and the Label Studio results for one transcript.

Per ``<Audio>`` (or ``<AudioPlus>``) object:

* ``<TextArea>`` (not per-region) ← the whole transcript;
* ``<Labels>`` ← one region per segment, labelled with the control's speech label (see
  :func:`speech_label`); with ``model_granularity="word"`` one region per word instead;
* ``<TextArea perRegion="true">`` ← each region's text, in an item sharing the region's id (honouring
  the TextArea's ``whenTagName`` and ``whenLabelValue``);
* ``<Choices>`` whose choices name languages (``en`` or ``English``) ← the detected language.

Controls with ``model_skip="true"`` are left alone, and so is a ``Choices`` without a language among
its choices. A ``model_score_threshold`` on a Labels or TextArea control drops regions scoring lower;
by default nothing is dropped: an unsure transcript is still faster to correct than to type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag, build_label_map
from labelzoo.results import audio_segment, choices, textarea

from .scores import segment_score, transcript_score, word_score
from .transcriber import Segment, Transcript

AUDIO_TAGS = ("Audio", "AudioPlus")
SPEECH = "Speech"  # the one class Whisper "detects"; map it with <Label value="Speech"/> or predicted_values
WORD_GRANULARITY = "word"


@dataclass(frozen=True)
class RegionControl:
    """A Labels control and the label its regions get."""

    control: ControlTag
    label: str
    words: bool  # model_granularity="word": one region per word


@dataclass(frozen=True)
class AudioPlan:
    """What to fill for one audio object."""

    obj: ObjectTag
    transcripts: tuple[ControlTag, ...] = ()
    regions: tuple[RegionControl, ...] = ()
    region_texts: tuple[ControlTag, ...] = ()
    languages: tuple[tuple[ControlTag, Mapping[str, str]], ...] = field(default=())  # (control, code → key)

    @property
    def needs_text(self) -> bool:
        return bool(self.transcripts or self.regions)

    @property
    def needs_words(self) -> bool:
        return any(r.words for r in self.regions)

    @property
    def needs_language(self) -> bool:
        return bool(self.languages)

    @property
    def empty(self) -> bool:
        return not (self.needs_text or self.needs_language)


def plan(config: LabelConfig) -> list[AudioPlan]:
    """One plan per audio object that has at least one control Whisper can fill."""
    plans = []
    for obj in (o for o in config.objects.values() if o.tag in AUDIO_TAGS):
        controls = [c for c in config.controls_for(obj.name) if not c.model_skip]
        transcripts, regions, region_texts, languages = [], [], [], []
        for control in controls:
            if control.tag == "TextArea":
                (region_texts if control.per_region else transcripts).append(control)
            elif control.tag == "Labels":
                label = speech_label(control)
                if label is not None:
                    granularity = (control.attr("model_granularity") or "").strip().lower()
                    regions.append(RegionControl(control, label, words=granularity == WORD_GRANULARITY))
            elif control.tag == "Choices":
                codes = language_choices(control)
                if codes:
                    languages.append((control, codes))
        found = AudioPlan(obj, tuple(transcripts), tuple(regions), tuple(region_texts), tuple(languages))
        if not found.empty:
            plans.append(found)
    return plans


def speech_label(control: ControlTag) -> str | None:
    """The label a Labels control's regions get: the one fed by ``Speech`` (``<Label value="Speech"/>``,
    loosely, or ``predicted_values="Speech"``), else the control's first label; None without labels."""
    mapped = build_label_map(control, [SPEECH]).get(SPEECH)
    if mapped is not None and not control.dynamic_labels:
        return mapped
    return control.label_keys[0] if control.label_keys else None


def language_code(text: str | None) -> str | None:
    """``"en"``, ``"English"`` or ``"english"`` → ``"en"``; None if it names no language Whisper knows."""
    if not text:
        return None
    key = text.strip().lower()
    return key if key in LANGUAGES else TO_LANGUAGE_CODE.get(key)


def language_choices(control: ControlTag) -> dict[str, str]:
    """Language code → choice key, from each choice's value, alias and predicted_values (first wins)."""
    codes: dict[str, str] = {}
    for choice in control.labels:
        for text in (choice.value, choice.alias, *choice.predicted_values):
            code = language_code(text)
            if code is not None:
                codes.setdefault(code, choice.key)
    return codes


def results_for(audio: AudioPlan, transcript: Transcript) -> tuple[list[dict[str, Any]], float | None]:
    """Result items for one audio object and its score: the transcript's when text was asked for,
    else the language's probability."""
    to_name = audio.obj.name
    spoken = [s for s in transcript.segments if s["text"].strip()]
    score = transcript_score(spoken) if audio.needs_text else transcript.language_probability
    items: list[dict[str, Any]] = []
    text = "".join(s["text"] for s in spoken).strip()
    for control in audio.transcripts:
        if text and _kept(control, score):
            items.append(textarea(control.name, to_name, text=text, score=score))
    for regions in audio.regions:
        pieces = _words(spoken) if regions.words else _segments(spoken)
        for start, end, piece_text, piece_score in pieces:
            if not _kept(regions.control, piece_score):
                continue
            region = audio_segment(
                regions.control.name, to_name, start=start, end=end, labels=[regions.label], score=piece_score
            )
            items.append(region)
            items.extend(
                textarea(area.name, to_name, text=piece_text.strip(), score=piece_score, region=region)
                for area in audio.region_texts
                if piece_text.strip() and _describes(area, regions)
            )
    for control, codes in audio.languages:
        key = codes.get(transcript.language or "")
        if key is not None:
            items.append(choices(control.name, to_name, choices=[key], score=transcript.language_probability))
    return items, score


def _segments(segments: Sequence[Segment]) -> list[tuple[float, float, str, float]]:
    return [(s["start"], s["end"], s["text"], segment_score(s)) for s in segments]


def _words(segments: Sequence[Segment]) -> list[tuple[float, float, str, float]]:
    return [(w["start"], w["end"], w["word"], word_score(w)) for s in segments for w in s.get("words", ())]


def _kept(control: ControlTag, score: float | None) -> bool:
    threshold = control.score_threshold
    return threshold is None or score is None or score >= threshold


def _describes(area: ControlTag, regions: RegionControl) -> bool:
    """Whether a per-region TextArea applies to this Labels control's regions (``whenTagName``,
    ``whenLabelValue``), as the editor decides what to keep on submit."""
    tag_name = area.attr("whenTagName")
    if tag_name and tag_name.strip() != regions.control.name:
        return False
    label_values = area.attr("whenLabelValue")
    return not label_values or regions.label in {v.strip() for v in label_values.split(",")}
