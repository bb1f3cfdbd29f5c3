"""Run a loaded Whisper model over a file: language detection, then transcription window by window.

Long files are transcribed in windows (``WHISPER_WINDOW_SECONDS``, ten minutes by default) with
Whisper's own 30-second sliding decode inside each, joined on the file's time line by
:func:`labelzoo.stitching.stitch_windows`: a window's last segment, which may be cut mid-word, is carried
whole into the next window unless it ended more than 30 seconds (or half a window) before the window's
end. Segment and word times are shifted by the window's start and clamped to the audio that window held
(:func:`shifted`). The language of a file longer than a window is detected once, on its first 30
seconds, and used for every window; a shorter file is left to ``transcribe``, which does the same.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.error import URLError

import numpy as np
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim

from labelzoo.audio import SAMPLE_RATE, AudioStream
from labelzoo.stitching import on_timeline, stitch_windows

from .options import Decoding, WhisperOptions

Segment = dict[str, Any]


@dataclass(frozen=True)
class Transcript:
    """What one file gave: segments (seconds from the file's start) and the detected language."""

    segments: list[Segment]
    language: str | None = None  # detected code, None when not detected (forced, or English-only model)
    language_probability: float | None = None


def load_model(options: WhisperOptions) -> whisper.Whisper:
    """The model named by ``WHISPER_MODEL``: official weights are downloaded on first use."""
    try:
        return whisper.load_model(options.model, device=options.device, download_root=str(options.download_root))
    except (URLError, ConnectionError, TimeoutError) as exc:
        raise RuntimeError(
            f"cannot download the Whisper {options.model!r} weights into {options.download_root} ({exc}); "
            "without internet, set WHISPER_MODEL to a checkpoint file on disk"
        ) from exc


class Transcriber:
    """A loaded model and the one lock around it.

    Whisper's decoder installs key/value-cache hooks on the shared model for the length of a decode,
    so two threads decoding at once would corrupt each other's caches: calls are serialised.
    """

    def __init__(self, model: whisper.Whisper, options: WhisperOptions) -> None:
        self.model = model
        self.options = options
        self._lock = threading.Lock()

    def transcribe(
        self, stream: AudioStream, decoding: Decoding, *, text: bool = True, words: bool = False, detect: bool = False
    ) -> Transcript:
        """Transcribe the audio (``text``), with word timings (``words``), and/or detect its language
        (``detect``). Without ``text`` only the first window is decoded."""
        window = round(self.options.window_seconds * SAMPLE_RATE)
        windows = stream.windows(self.options.window_seconds)
        with self._lock, closing(windows), torch.no_grad():
            first = next(windows)
            several = len(first) == window  # else the whole file is in `first`: transcribe detects the language
            detected = probability = None
            if self.model.is_multilingual and (detect or (decoding.language is None and several)):
                detected, probability = self.detect_language(first)
            if not text:
                return Transcript([], detected, probability)
            language = decoding.language or detected
            kwargs = decoding.transcribe_kwargs(fp16=self.options.fp16)

            def run(audio: np.ndarray) -> list[Segment]:
                result = self.model.transcribe(audio, language=language, word_timestamps=words, verbose=None, **kwargs)
                return list(result["segments"])

            segments = stitch_windows(
                itertools.chain([first], windows), run, window_samples=window, start=itemgetter("start"), place=shifted
            )
        return Transcript(segments, detected, probability)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The most likely language of the first 30 s and its probability, exactly as ``transcribe(audio)``
        computes it: on the log-mel of the whole of ``audio`` cut to 30 s, not of the first 30 s alone, since
        the log-mel's floor follows the loudest frame of what it was computed on."""
        mel = log_mel_spectrogram(audio, self.model.dims.n_mels, padding=N_SAMPLES)
        mel = pad_or_trim(mel, N_FRAMES).to(self.model.device)
        _, probs = self.model.detect_language(mel.half() if self.options.fp16 else mel)
        code = max(probs, key=probs.get)
        return code, float(probs[code])


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
