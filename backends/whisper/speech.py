"""Where a window of audio holds speech, by voice activity detection, so silence is never transcribed.

Whisper transcribes silence and faint noise into something ("you", "Thank you."): 20 s of digital silence
gives "you" from ``whisper.transcribe`` itself, whose own no-speech rule keeps a segment unless it is both
likely silent and unlikely text. So before a window is transcribed, the Silero voice activity detector
that faster-whisper ships (``faster_whisper.vad``, MIT, an ONNX model run on the CPU, ~1 ms per second of
audio) finds its speech: a window without any is not transcribed, and a segment more than
:data:`MARGIN_S` from any speech is dropped (Whisper's timestamps drift by a second or so, so a segment is
only judged by where it cannot be). The audio given to Whisper is not cut, so timestamps and the text of
kept segments stay exactly what the engine gives. ``WHISPER_VAD=false`` switches the gate off, for the
engine's raw output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelzoo.audio import SAMPLE_RATE

from .engines import Segment

#: padding the detector adds around each stretch of speech, so a soft word at its edge keeps its segment
PAD_MS = 400
#: how far from any detected speech a segment may lie and still be kept, in seconds
MARGIN_S = 2.0


@dataclass(frozen=True)
class SpeechGate:
    """Voice activity detection at ``threshold`` (Silero's speech probability, 0..1)."""

    threshold: float

    def regions(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """The stretches of speech in 16 kHz float audio, as (start, end) seconds."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(threshold=self.threshold, speech_pad_ms=PAD_MS)
        found = get_speech_timestamps(np.ascontiguousarray(audio, dtype=np.float32), options)
        return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in found]


def spoken(segments: Sequence[Segment], speech: Sequence[tuple[float, float]]) -> list[Segment]:
    """The segments within :data:`MARGIN_S` of some stretch of speech (times in the same window)."""
    return [s for s in segments
            if any(s["start"] < end + MARGIN_S and start - MARGIN_S < s["end"] for start, end in speech)]
