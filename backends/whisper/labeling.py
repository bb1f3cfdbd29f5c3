"""Which controls of a label config Whisper fills, and the Label Studio results for one transcript.

Per ``<Audio>`` (or ``<AudioPlus>``) object:

* ``<TextArea>`` (not per-region) ← the whole transcript;
* ``<Labels>`` ← one region per segment, labelled with the control's speech label (see
  :func:`speech_label`); with ``model_granularity="word"`` one region per word instead;
* ``<TextArea perRegion="true">`` ← each region's text, in an item sharing the region's id (honouring
  the TextArea's ``whenTagName`` and ``whenLabelValue``, see :mod:`labelzoo.labelconfig.objects`);
* ``<Choices>`` whose choices name languages (``en`` or ``English``) ← the detected language.

Controls with ``model_skip="true"`` are left alone, and so is a ``Choices`` without a language among
its choices. Regions and transcripts scoring below their control's threshold (:mod:`labelzoo.thresholds`)
are dropped; by default nothing is: an unsure transcript is still faster to correct than to type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labelzoo.labelconfig import ControlTag, LabelConfig, ObjectTag, label_or_first, object_controls
from labelzoo.results import audio_segment, choices, textarea, with_region_text
from labelzoo.thresholds import score_threshold

from .options import language_code
from .scores import segment_score, transcript_score, word_score
from .transcriber import Segment, Transcript

AUDIO_TAGS = ("Audio", "AudioPlus")
SPEECH = "Speech"  # the one class Whisper "detects"; map it with <Label value="Speech"/> or predicted_values
WORD_GRANULARITY = "word"


@dataclass(frozen=True)
class RegionControl:
    """A Labels control, the label its regions get, and the per-region TextAreas their text goes to."""

    control: ControlTag
    label: str
    words: bool  # model_granularity="word": one region per word
    texts: tuple[ControlTag, ...] = ()


@dataclass(frozen=True)
class AudioPlan:
    """What to fill for one audio object."""

    obj: ObjectTag
    transcripts: tuple[ControlTag, ...] = ()
    regions: tuple[RegionControl, ...] = ()
    region_texts: tuple[ControlTag, ...] = ()
    languages: tuple[tuple[ControlTag, Mapping[str, str]], ...] = field(default=())  # (control, code → key)
    thresholds: Mapping[str, float] = field(default_factory=dict)  # transcript and region control → threshold

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


def plan(
    config: LabelConfig, threshold: Callable[[ControlTag], float] = lambda control: score_threshold(control, 0.0)
) -> list[AudioPlan]:
    """One plan per audio object that has at least one control Whisper can fill; ``threshold`` gives each
    control's (the backend's rule; by default the control's own attribute, else 0)."""
    plans = []
    for found in object_controls(config, AUDIO_TAGS):
        regions = tuple(
            RegionControl(control, label, _per_word(control), found.region_texts_for(control, label))
            for control in found.of("Labels")
            if (label := speech_label(control)) is not None
        )
        languages = tuple((control, codes) for control in found.of("Choices") if (codes := language_choices(control)))
        thresholds = {c.name: threshold(c) for c in [*found.texts, *(r.control for r in regions)]}
        audio = AudioPlan(found.obj, found.texts, regions, found.region_texts, languages, thresholds)
        if not audio.empty:
            plans.append(audio)
    return plans


def speech_label(control: ControlTag) -> str | None:
    """The label a Labels control's regions get: the one fed by ``Speech`` (``<Label value="Speech"/>``,
    loosely, or ``predicted_values="Speech"``), else the control's first label; None without labels."""
    return label_or_first(control, SPEECH)


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
        if text and _kept(audio, control, score):
            items.append(textarea(control.name, to_name, text=text, score=score))
    for regions in audio.regions:
        pieces = _words(spoken) if regions.words else _segments(spoken)
        texts = [area.name for area in regions.texts]
        for start, end, piece_text, piece_score in pieces:
            if _kept(audio, regions.control, piece_score):
                region = audio_segment(
                    regions.control.name, to_name, start=start, end=end, labels=[regions.label], score=piece_score
                )
                items.extend(with_region_text(region, texts, text=piece_text.strip(), score=piece_score))
    for control, codes in audio.languages:
        key = codes.get(transcript.language or "")
        if key is not None:
            items.append(choices(control.name, to_name, choices=[key], score=transcript.language_probability))
    return items, score


def _segments(segments: Sequence[Segment]) -> list[tuple[float, float, str, float]]:
    return [(s["start"], s["end"], s["text"], segment_score(s)) for s in segments]


def _words(segments: Sequence[Segment]) -> list[tuple[float, float, str, float]]:
    return [(w["start"], w["end"], w["word"], word_score(w)) for s in segments for w in s.get("words", ())]


def _kept(audio: AudioPlan, control: ControlTag, score: float | None) -> bool:
    return score is None or score >= audio.thresholds[control.name]


def _per_word(control: ControlTag) -> bool:
    return (control.attr("model_granularity") or "").strip().lower() == WORD_GRANULARITY
