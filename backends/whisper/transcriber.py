"""Run a Whisper engine over a file: language detection, then transcription window by window.

Long files are transcribed in windows (``WHISPER_WINDOW_SECONDS``, ten minutes by default) with
Whisper's own 30-second sliding decode inside each, joined on the file's time line by
:func:`labelzoo.stitching.stitch_windows`: a window's last segment, which may be cut mid-word, is carried
whole into the next window unless it ended more than 30 seconds (or half a window) before the window's
end. Segment and word times are shifted by the window's start and clamped to the audio that window held
(:func:`shifted`). The language of a file longer than a window is detected once, on its first 30
seconds, and used for every window; a shorter file is left to ``transcribe``, which does the same.
Each window passes the speech gate first (:mod:`.speech`): silence is not transcribed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from labelzoo.audio import SAMPLE_RATE, AudioStream
from labelzoo.stitching import on_timeline, stitch_windows

from .engines import Engine, Segment
from .options import Decoding, WhisperOptions
from .speech import SpeechGate, spoken


@dataclass(frozen=True)
class Transcript:
    """What one file gave: segments (seconds from the file's start) and the detected language."""

    segments: list[Segment]
    language: str | None = None  # detected code, None when not detected (forced, or English-only model)
    language_probability: float | None = None


class Transcriber:
    """A loaded engine and the one lock around it.

    openai-whisper's decoder installs key/value-cache hooks on the shared model for the length of a decode,
    so two threads decoding at once would corrupt each other's caches: calls are serialised (for
    faster-whisper too, whose one CTranslate2 worker would serialise them anyway).
    """

    def __init__(self, engine: Engine, options: WhisperOptions) -> None:
        self.engine = engine
        self.options = options
        self.gate = None if options.vad_threshold is None else SpeechGate(options.vad_threshold)
        self._lock = threading.Lock()

    def transcribe(
        self, stream: AudioStream, decoding: Decoding, *, text: bool = True, words: bool = False, detect: bool = False
    ) -> Transcript:
        """Transcribe the audio (``text``), with word timings (``words``), and/or detect its language
        (``detect``). Without ``text`` only the first window is decoded."""
        window = round(self.options.window_seconds * SAMPLE_RATE)
        windows = stream.windows(self.options.window_seconds)
        with self._lock, closing(windows):
            first = next(windows)
            several = len(first) == window  # else the whole file is in `first`: transcribe detects the language
            detected = probability = None
            silent = self.gate is not None and not self.gate.regions(first)
            if self.engine.is_multilingual and not silent and (detect or (decoding.language is None and several)):
                detected, probability = self.engine.detect_language(first)  # silence has no language
            if not text:
                return Transcript([], detected, probability)
            language = decoding.language or detected

            def run(audio: np.ndarray) -> list[Segment]:
                speech = self.gate.regions(audio) if self.gate is not None else None
                if speech == []:
                    return []  # nothing but silence or noise: Whisper would make words up
                segments = self.engine.transcribe(audio, decoding, language=language, words=words)
                return segments if speech is None else spoken(segments, speech)

            segments = stitch_windows(
                itertools.chain([first], windows), run, window_samples=window, start=itemgetter("start"), place=shifted
            )
        return Transcript(segments, detected, probability)


def shifted(segment: Mapping[str, Any], offset: float, limit: float) -> Segment:
    """A segment on the file's time line: times clamped to ``[0, limit]`` of its window, then shifted by
    ``offset`` and rounded to milliseconds; only the fields the labels and scores use are kept."""

    def at(seconds: Any) -> float:
        return on_timeline(seconds, offset, limit)

    start = at(segment["start"])
    out: Segment = {
        "start": start,
        "end": max(start, at(segment["end"])),
        "text": str(segment.get("text", "")),
        "avg_logprob": float(segment.get("avg_logprob", float("nan"))),
        "no_speech_prob": float(segment.get("no_speech_prob", float("nan"))),
    }
    if "words" in segment:
        out["words"] = [
            {
                "word": str(w["word"]),
                "start": at(w["start"]),
                "end": max(at(w["start"]), at(w["end"])),
                "probability": float(w.get("probability", float("nan"))),
            }
            for w in segment["words"]
        ]
    return out
