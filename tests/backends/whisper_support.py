"""Test material for the Whisper backend, made on the spot: audio files and small Whisper models.

No weights are downloaded. :func:`random_model` is a real :class:`whisper.model.Whisper` with tiny
dimensions and random weights; :func:`trained_model` is the same network whose decoder has learned,
in a few seconds, to transcribe two espeak-ng phrases and to say nothing over silence, so tests can
assert real transcripts through the real code path.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim
from whisper.model import ModelDimensions, Whisper
from whisper.tokenizer import get_tokenizer

from labelzoo.registry import load_backend
from tests.core.audio_support import codec_args, ffmpeg, silence, tone  # noqa: F401 - used by the Whisper tests

REPO = Path(__file__).resolve().parents[2]
WHISPER_BACKEND = REPO / "backends" / "whisper"
PHRASES = ("hello world, this is a test", "the quick brown fox")
TINY = ModelDimensions(
    n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
    n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2,
)  # fmt: skip
TIME_STEP = 0.02  # seconds per Whisper timestamp token


def whisper_module(name: str) -> Any:
    """A module of the Whisper backend folder, imported as the server imports it."""
    load_backend(str(WHISPER_BACKEND))
    return importlib.import_module(f"labelzoo_backends.whisper.{name}")


# --- audio -----------------------------------------------------------------------------------------


def speech(path: Path, text: str) -> Path:
    """``text`` spoken by espeak-ng, converted to ``path``'s format by its extension."""
    wav = path.with_name(path.stem + ".espeak.wav")
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
    if path.suffix == ".wav":
        wav.rename(path)
    else:
        ffmpeg("-i", str(wav), *codec_args(path), str(path))
        wav.unlink()
    return path


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16 kHz mono 16-bit PCM from float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1",
         "-i", "pipe:0", str(path)],
        input=pcm.tobytes(), check=True,
    )  # fmt: skip
    return path


# --- models ----------------------------------------------------------------------------------------


def random_model(seed: int = 0) -> Whisper:
    """A tiny Whisper with random weights (``n_audio_ctx`` stays 1500: Whisper's 30 s window)."""
    torch.manual_seed(seed)
    model = Whisper(TINY)
    # Whisper leaves the decoder's positional embedding uninitialised (torch.empty): it may hold NaN.
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    return model.eval()


def save(model: Whisper, path: Path) -> Path:
    """A checkpoint ``whisper.load_model(path)`` reads, like the official ones."""
    torch.save({"dims": model.dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


def trained_model(clips: dict[str, Path], *, steps: int = 60, seed: int = 0) -> Whisper:
    """:func:`random_model` whose decoder learned ``clips`` (phrase → audio file) and silence.

    The encoder stays random (its features are computed once); the decoder learns, from the
    30-second inputs exactly as ``transcribe`` and language detection build them, to answer English
    and then ``<|0.00|> phrase <|end|>`` for each clip, and an empty segment for silence.
    """
    model = random_model(seed)
    tokenizer = get_tokenizer(True, language="en", task="transcribe")
    sot, english = tokenizer.sot_sequence[0], tokenizer.sot_sequence[1]
    inputs, sequences = [], []
    audios = [(whisper.load_audio(str(path)), f" {phrase}") for phrase, path in clips.items()]
    audios.append((np.zeros(3 * SAMPLE_RATE, dtype=np.float32), ""))
    for audio, text in audios:
        mel = log_mel_spectrogram(audio, TINY.n_mels, padding=N_SAMPLES)
        decoded = pad_or_trim(mel[:, : mel.shape[-1] - N_FRAMES], N_FRAMES)  # what transcribe decodes
        detected = pad_or_trim(mel, N_FRAMES)  # what language detection looks at
        end = tokenizer.timestamp_begin + round(len(audio) / SAMPLE_RATE / TIME_STEP)
        spoken = [*tokenizer.encode(text), end] if text else []
        inputs += [decoded, detected]
        sequences += [
            [*tokenizer.sot_sequence, tokenizer.timestamp_begin, *spoken, tokenizer.eot],
            [sot, english if text else tokenizer.no_speech],
        ]
    with torch.no_grad():
        features = model.encoder(torch.stack(inputs))
    length = max(map(len, sequences))
    tokens = torch.full((len(sequences), length), tokenizer.eot)
    targets = torch.full((len(sequences), length), -100)
    for i, sequence in enumerate(sequences):
        tokens[i, : len(sequence)] = torch.tensor(sequence)
        targets[i, : len(sequence) - 1] = torch.tensor(sequence[1:])
    optimizer = torch.optim.AdamW(model.decoder.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these small steps gain little from threads, and lose much on a busy machine
    try:
        for _ in range(steps):
            logits = model.decoder(tokens, features)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
