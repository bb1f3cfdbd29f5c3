"""The two engines that run a Whisper network over one window of decoded audio, behind one interface.

* :class:`OpenAIEngine`: ``openai-whisper`` (PyTorch), official names and ``.pt`` checkpoints.
* :class:`FasterWhisperEngine`: ``faster-whisper`` (CTranslate2), CTranslate2 folders, and the same names and
  checkpoints converted to CTranslate2 once (:mod:`.conversion`).

Both take the same float32 16 kHz array (decoded by ffmpeg, :mod:`labelzoo.audio`) and give segments in
openai-whisper's shape (``start``, ``end``, ``text``, ``avg_logprob``, ``no_speech_prob`` and, with word
timestamps, ``words`` of ``word``, ``start``, ``end``, ``probability``), so windowing, labels and scores do
not know which engine ran. Neither is safe to call from two threads at once: the transcriber serialises calls.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol
from urllib.error import URLError

import faster_whisper
import faster_whisper.transcribe
import numpy as np
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim

from .checkpoints import checkpoint_file, download_failed
from .conversion import ct2_folder
from .options import FASTER_WHISPER, Decoding, WhisperOptions

Segment = dict[str, Any]
SEGMENT_FIELDS = ("start", "end", "text", "avg_logprob", "no_speech_prob")


class Engine(Protocol):
    is_multilingual: bool

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The most likely language of the first 30 s and its probability, as ``transcribe`` would detect it."""
        ...

    def transcribe(self, audio: np.ndarray, decoding: Decoding, *, language: str | None, words: bool
                   ) -> list[Segment]:  # fmt: skip
        """The segments of ``audio`` (seconds from its start), decoded with Whisper's 30-second sliding window."""
        ...


def load_engine(options: WhisperOptions) -> Engine:
    """The engine ``WHISPER_ENGINE`` names, with the model ``WHISPER_MODEL`` names loaded."""
    return FasterWhisperEngine(options) if options.engine == FASTER_WHISPER else OpenAIEngine(options)


class OpenAIEngine:
    """openai-whisper's ``transcribe`` and ``detect_language`` on a loaded :class:`whisper.Whisper`."""

    def __init__(self, options: WhisperOptions) -> None:
        self.options = options
        source = options.model if options.model in whisper.available_models() else str(
            checkpoint_file(options.model, options.download_root))  # fmt: skip
        try:
            self.model = whisper.load_model(source, device=options.device,
                                            download_root=str(options.download_root))  # fmt: skip
        except (URLError, ConnectionError, TimeoutError) as exc:
            raise download_failed(options.model, options.download_root, exc) from exc
        self.is_multilingual = bool(self.model.is_multilingual)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """Exactly as ``transcribe(audio)`` computes it: on the log-mel of the whole of ``audio`` cut to 30 s,
        not of the first 30 s alone, since the log-mel's floor follows the loudest frame of what it was
        computed on."""
        mel = log_mel_spectrogram(audio, self.model.dims.n_mels, padding=N_SAMPLES)
        mel = pad_or_trim(mel, N_FRAMES).to(self.model.device)
        with torch.no_grad():
            _, probs = self.model.detect_language(mel.half() if self.options.fp16 else mel)
        code = max(probs, key=probs.get)
        return code, float(probs[code])

    def transcribe(self, audio: np.ndarray, decoding: Decoding, *, language: str | None, words: bool
                   ) -> list[Segment]:  # fmt: skip
        kwargs = decoding.transcribe_kwargs(fp16=self.options.fp16)
        with torch.no_grad():
            result = self.model.transcribe(audio, language=language, word_timestamps=words, verbose=None, **kwargs)
        return list(result["segments"])


def faster_whisper_kwargs(decoding: Decoding) -> dict[str, Any]:
    """``faster_whisper.WhisperModel.transcribe``'s arguments for openai-whisper's decoding: greedy is a beam of
    1 there, and a fallback temperature draws one sample (``best_of=1``) as openai-whisper's ``transcribe``
    does, not faster-whisper's default of five."""
    temperature: float | list[float] = (
        decoding.temperature[0] if len(decoding.temperature) == 1 else list(decoding.temperature)
    )
    return {"task": decoding.task, "beam_size": decoding.beam_size or 1, "best_of": 1, "temperature": temperature}


class FasterWhisperEngine:
    """faster-whisper's ``WhisperModel`` on the device, in ``WHISPER_COMPUTE_TYPE``, from a CTranslate2 folder (never
    from the Hugging Face Hub: names and checkpoints are openai-whisper's, converted)."""

    def __init__(self, options: WhisperOptions) -> None:
        device, _, index = options.device.partition(":")
        folder = ct2_folder(options)
        try:
            self.model = faster_whisper.WhisperModel(
                str(folder), device=device, device_index=int(index or 0), compute_type=options.compute_type
            )
        except ValueError as exc:  # CTranslate2's words for a compute type the device cannot run, e.g. float16
            raise RuntimeError(
                f"faster-whisper cannot load {options.model!r} on {options.device} with "
                f"WHISPER_COMPUTE_TYPE={options.compute_type} ({exc})"
            ) from exc
        self.is_multilingual = bool(self.model.model.is_multilingual)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """On the features of the whole of ``audio``, of which faster-whisper's detection keeps the first 30 s,
        as its ``transcribe(audio)`` does."""
        code, probability, _ = self.model.detect_language(features=self.model.feature_extractor(audio))
        return code, float(probability)

    def transcribe(self, audio: np.ndarray, decoding: Decoding, *, language: str | None, words: bool
                   ) -> list[Segment]:  # fmt: skip
        segments, _ = self.model.transcribe(audio, language=language, word_timestamps=words,
                                            **faster_whisper_kwargs(decoding))  # fmt: skip
        return [as_segment(segment) for segment in segments]  # decodes now: segments is a generator


def as_segment(segment: faster_whisper.transcribe.Segment) -> Segment:
    """A faster-whisper segment in openai-whisper's shape (only the fields the labels and scores read)."""
    out: Segment = {name: getattr(segment, name) for name in SEGMENT_FIELDS}
    if segment.words is not None:
        out["words"] = [asdict(word) for word in segment.words]
    return out
