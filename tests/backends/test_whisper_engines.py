"""faster-whisper (CTranslate2) behind the backend: what ``/predict`` serves is what faster-whisper gives called
directly, in the result shapes openai-whisper's are, and a model that cannot load says why in /health.

The model is the real Whisper ``tiny.en`` (:data:`whisper_support.TINY_EN`, a CTranslate2 folder), on espeak-ng
speech, so the transcripts are real English checked against the sentences spoken. The reference is
``faster_whisper.WhisperModel(folder, device="cpu", compute_type="float32").transcribe(audio, ...)`` on the
same decoded audio with the options the backend is set to (greedy, temperature 0, one sample), put through the
mapping ``test_whisper_fidelity.py`` pins for openai-whisper. tiny.en is English-only: it detects no language,
so the language Choices stay empty on both engines, as the README says of English-only models.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import faster_whisper
import numpy as np
import pytest

from labelzoo import audio
from labelzoo.server.app import create_app
from tests.backends.test_whisper_fidelity import SEGMENTS, WORDS, expected, rounded, served
from tests.backends.whisper_support import (
    TINY_EN,
    WHISPER_BACKEND,
    openai_from_ct2,
    save,
    serve_files,
    silence,
    speech,
    word_error_rate,
    write_wav,
)

SR = 16_000
SAID = {
    "report.wav": "Please send the report before the end of the week.",
    "monday.ogg": "The results will be published on Monday.",
}
LONG = ("Can you repeat the last number, please?", "She bought three apples and a loaf of bread.")
FASTER = {"DEVICE": "cpu", "WHISPER_ENGINE": "faster-whisper", "WHISPER_COMPUTE_TYPE": "float32",
          "WHISPER_BEAM_SIZE": "1", "WHISPER_TEMPERATURE": "0"}  # fmt: skip
#: what FASTER means for faster_whisper's transcribe
DECODING = {"task": "transcribe", "beam_size": 1, "best_of": 1, "temperature": 0.0}
QUICKSTART = (WHISPER_BACKEND / "configs" / "quickstart.xml").read_text()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whisper-engines")
    for name, sentence in SAID.items():
        speech(folder / name, sentence)
    silence(folder / "silence.wav", 3.0)
    # 45 s of low noise with speech on both sides of Whisper's 30 s window
    samples = np.random.default_rng(0).uniform(-0.01, 0.01, 45 * SR).astype(np.float32)
    for sentence, at in zip(LONG, (3, 33), strict=True):
        spoken = audio.decode(speech(folder / "part.wav", sentence))
        samples[at * SR : at * SR + len(spoken)] += spoken
    write_wav(folder / "long.wav", samples)
    return folder


@pytest.fixture(scope="module")
def faster() -> faster_whisper.WhisperModel:
    return faster_whisper.WhisperModel(str(TINY_EN), device="cpu", compute_type="float32")


@pytest.fixture(scope="module")
def openai_checkpoint(media: Path) -> Path:
    """The same tiny.en weights for openai-whisper (:func:`openai_from_ct2`), as a checkpoint file."""
    return save(openai_from_ct2(), media / "tiny-en.pt")


@pytest.fixture
def serve(make_runtime: Any, media: Path) -> Any:
    def predict(model: Path, files: list[str], config: str, **env: str) -> list[dict[str, Any]]:
        return serve_files(make_runtime, media, model, files, config, **env)

    return predict


def direct(model: faster_whisper.WhisperModel, path: Path, *, words: bool) -> dict[str, Any]:
    """faster-whisper's transcribe on the decoded file, as a dict shaped like ``whisper.transcribe``'s."""
    segments, info = model.transcribe(audio.decode(path), word_timestamps=words, **DECODING)
    language = info.language if model.model.is_multilingual else None  # English-only: given, not detected
    return {"segments": [asdict(s) for s in segments], "language": language}


@pytest.mark.parametrize("config", [SEGMENTS, WORDS], ids=["segments", "words"])
def test_faster_whisper_serves_what_it_gives_called_directly(serve: Any, media: Path, faster: Any, config: str
                                                             ) -> None:  # fmt: skip
    files = ["report.wav", "monday.ogg", "long.wav", "silence.wav"] if config == SEGMENTS else ["report.wav"]
    results = serve(TINY_EN, files, config, **FASTER)
    for name, result in zip(files, results, strict=True):
        reference = direct(faster, media / name, words=config == WORDS)
        seconds = len(audio.decode(media / name)) / SR
        assert rounded(served(result, config)) == rounded(expected(reference, 0.0, seconds, config)), name
        heard = "".join(s["text"] for s in reference["segments"])
        said = SAID.get(name, " ".join(LONG) if name == "long.wav" else "")
        if said:  # real English, close to what was said: the comparison is not between two empty answers
            assert word_error_rate(heard, said) < 0.5, (name, heard)
        else:
            assert not heard.strip() and result["score"] == 0.0
        if name == "long.wav":
            assert {s["start"] >= 30.0 for s in reference["segments"]} == {False, True}  # two 30 s windows


def test_faster_whisper_transcribes_a_long_file_window_by_window(serve: Any, media: Path) -> None:
    """20-second windows over the 45-second file: each sentence lands in its window, on the file's time line (a
    segment may start where its window does: Whisper times it from the window's first frame)."""
    (result,) = serve(TINY_EN, ["long.wav"], SEGMENTS, WHISPER_WINDOW_SECONDS="20", **FASTER)
    regions = [i["value"] for i in result["result"] if i["from_name"] == "segment"]
    texts = [i["value"]["text"][0] for i in result["result"] if i["from_name"] == "segment_text"]
    first = [t for r, t in zip(regions, texts, strict=True) if r["end"] <= 20.0]  # said at 3 s: the first window
    second = [t for r, t in zip(regions, texts, strict=True) if r["start"] >= 20.0 and 33.0 < r["end"] < 40.0]
    assert word_error_rate(" ".join(first), LONG[0]) < 0.5 and word_error_rate(" ".join(second), LONG[1]) < 0.5
    assert all(0.0 <= r["start"] <= r["end"] <= 45.0 for r in regions)


def shape(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A served result without its numbers and texts: each item's type, names, keys and value keys."""
    return [(i["type"], i["from_name"], i["to_name"], sorted(i), sorted(i["value"]), len(i["value"].get("text", [])))
            for i in result["result"]]  # fmt: skip


@pytest.mark.parametrize("config", [QUICKSTART, WORDS], ids=["quickstart", "words"])
def test_both_engines_fill_the_same_controls_in_the_same_shapes(serve: Any, openai_checkpoint: Path,
                                                                config: str) -> None:  # fmt: skip
    """The same tiny.en weights in both engines."""
    files = ["report.wav", "silence.wav"]
    settings = {k: v for k, v in FASTER.items() if not k.startswith(("WHISPER_ENGINE", "WHISPER_COMPUTE"))}
    openai = serve(openai_checkpoint, files, config, **settings)
    faster = serve(TINY_EN, files, config, **FASTER)
    assert [shape(r) for r in openai] == [shape(r) for r in faster]
    assert shape(openai[0]) and not shape(openai[1])  # speech fills the controls, silence none


def health_of(make_runtime: Any, **env: str) -> dict[str, Any]:
    runtime = make_runtime(WHISPER_BACKEND, wait=False, DEVICE="cpu", **env)
    assert not runtime.models.wait_ready(60)
    response = create_app(runtime).test_client().get("/health")
    assert response.status_code == 503
    return response.get_json()


def test_a_missing_folder_or_a_compute_type_the_device_lacks_fails_the_load_visibly(make_runtime: Any,
                                                                                   tmp_path: Path) -> None:  # fmt: skip
    missing = health_of(make_runtime, WHISPER_ENGINE="faster-whisper", WHISPER_MODEL=str(tmp_path / "gone"))
    assert "nor a CTranslate2 folder (one holding model.bin and config.json)" in missing["reason"], missing
    half = health_of(make_runtime, WHISPER_MODEL=str(TINY_EN), WHISPER_COMPUTE_TYPE="float16")
    assert "faster-whisper cannot load" in half["reason"] and "WHISPER_COMPUTE_TYPE=float16" in half["reason"], half
    assert "float16 compute type" in half["reason"]  # CTranslate2's own words


@pytest.mark.parametrize("engine", ["faster-whisper", "openai"])
def test_silence_and_faint_noise_give_no_transcript_and_speech_after_silence_still_does(
    serve: Any, media: Path, openai_checkpoint: Path, engine: str
) -> None:
    """The speech gate (backends/whisper/speech.py), on the real tiny.en under both engines."""
    rng = np.random.default_rng(3)
    said = "Please send the report before the end of the week."
    spoken = audio.decode(media / "report.wav")
    after_silence = np.zeros(20 * SR + len(spoken), np.float32)
    after_silence[20 * SR :] = spoken
    write_wav(media / "silence20.wav", np.zeros(20 * SR, np.float32))
    write_wav(media / "hiss.wav", rng.normal(0, 0.003, 20 * SR).astype(np.float32))  # about -50 dBFS of noise
    write_wav(media / "after-silence.wav", after_silence)
    files = ["silence20.wav", "hiss.wav", "after-silence.wav"]
    model, settings = (TINY_EN, FASTER) if engine == "faster-whisper" else (openai_checkpoint, {
        "DEVICE": "cpu", "WHISPER_BEAM_SIZE": "1", "WHISPER_TEMPERATURE": "0"})
    results = serve(model, files, QUICKSTART, **settings)
    assert results[0]["result"] == [] and results[1]["result"] == []
    assert results[0]["score"] == results[1]["score"] == 0.0
    heard = [r["value"]["text"][0] for r in results[2]["result"] if r["from_name"] == "transcription"]
    assert heard and word_error_rate(heard[0], said) < 0.5, heard
    raw = serve(model, files[:2], QUICKSTART, **settings, WHISPER_VAD="false")  # the engine alone makes words up
    assert any(r["result"] for r in raw), raw
