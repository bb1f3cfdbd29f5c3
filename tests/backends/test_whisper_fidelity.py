"""What the Whisper backend's ``/predict`` returns is what ``whisper.transcribe`` gives, called directly on the files.

The reference is the library as a user calls it: ``whisper.load_model(checkpoint)``, then
``whisper.transcribe(model, path, ...)`` on the same file with the decoding options the backend is set to
(greedy, temperature 0, the language detected, fp16 off, word timestamps when a Labels control asks for
words), put through the mapping the README documents: the transcript is the joined text of the segments,
each segment (or word) a region from ``start`` to ``end`` seconds clamped to the file, its text stripped,
scored ``exp(avg_logprob) × (1 − no_speech_prob)`` (a word: its probability), the task scored by the
duration-weighted mean of its segments, and the language Choices the language ``transcribe`` detected, with
the probability its ``model.detect_language`` call gave. Served through the real runtime and ``/predict``.

The long clip (45 s) goes through Whisper's own 30-second sliding decode: it is shorter than the backend's
window (``WHISPER_WINDOW_SECONDS``, ten minutes), so the backend hands ``transcribe`` the whole file too.
Files longer than a window are transcribed window by window and then differ from one ``transcribe`` over the
whole file, as the README's "Media and long files" says; ``test_whisper_backend.py`` checks that each
window's regions are exactly ``transcribe``'s on that window's audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import whisper
from whisper.tokenizer import LANGUAGES

from tests.backends.whisper_support import (
    PHRASES,
    WHISPER_BACKEND,
    ffmpeg,
    phrase_model,
    random_model,
    save,
    serve_files,
    silence,
    speech,
    write_wav,
)

SR = whisper.audio.SAMPLE_RATE
SEGMENTS = """<View>
  <Audio name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio"/>
  <Labels name="segment" toName="audio"><Label value="Speech"/></Labels>
  <TextArea name="segment_text" toName="audio" perRegion="true"/>
  <Choices name="language" toName="audio"><Choice value="English"/><Choice value="French"/></Choices>
</View>"""
WORDS = (WHISPER_BACKEND / "configs" / "words.xml").read_text()
EVERY_LANGUAGE = f"""<View>
  <Audio name="audio" value="$audio"/>
  <Choices name="language" toName="audio">{"".join(f'<Choice value="{c}"/>' for c in LANGUAGES)}</Choices>
</View>"""
CHOICES = {"en": "English", "fr": "French"}  # SEGMENTS' language choices
SETTINGS = {"DEVICE": "cpu", "WHISPER_BEAM_SIZE": "1", "WHISPER_TEMPERATURE": "0", "WHISPER_LANGUAGE": "auto"}
#: what SETTINGS mean for whisper.transcribe (beam size 1 is greedy decoding: beam_size=None)
DECODING = {"task": "transcribe", "beam_size": None, "temperature": 0.0, "fp16": False}
SPEECH = ["hello.wav", "fox.ogg", "unheard.wav", "long.wav"]
SILENT = {"silence.wav"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whisper-fidelity")
    hello, fox = speech(folder / "hello.wav", PHRASES[0]), speech(folder / "fox.wav", PHRASES[1])
    ffmpeg("-i", str(fox), "-c:a", "libvorbis", str(folder / "fox.ogg"))
    speech(folder / "unheard.wav", "seven green bottles standing on the wall")  # not what the model learned
    silence(folder / "silence.wav", 3.0)
    # 45 s of low noise with speech across Whisper's 30 s window; the loudest speech is after 30 s, which sets
    # the log-mel floor of the whole file, so language detection must look at it as transcribe does
    samples = np.random.default_rng(0).uniform(-0.01, 0.01, 45 * SR).astype(np.float32)
    for path, at, gain in ((hello, 2, 1.0), (fox, 20, 1.0), (hello, 33, 1.5)):
        spoken = whisper.load_audio(str(path))
        samples[at * SR : at * SR + len(spoken)] += gain * spoken
    write_wav(folder / "long.wav", samples)
    return folder


@pytest.fixture(scope="module")
def trained(media: Path) -> Path:
    return phrase_model(media)


@pytest.fixture
def serve(make_runtime: Any, media: Path) -> Any:
    def predict(checkpoint: Path, files: list[str], config: str) -> list[dict[str, Any]]:
        return serve_files(make_runtime, media, checkpoint, files, config, **SETTINGS)

    return predict


# --- the library, called directly ----------------------------------------------------------------------------


@contextmanager
def detections(model: whisper.Whisper) -> Iterator[list[dict[str, float]]]:
    """The language probabilities of each ``model.detect_language`` call ``transcribe`` makes, unchanged."""
    seen: list[dict[str, float]] = []
    detect = model.detect_language

    def recording(*args: Any, **kwargs: Any) -> Any:
        tokens, probs = detect(*args, **kwargs)
        seen.append(probs)
        return tokens, probs

    model.detect_language = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del model.detect_language


def transcribe(model: whisper.Whisper, path: Path, *, words: bool) -> tuple[dict[str, Any], float]:
    """``whisper.transcribe`` on the file, and the probability of the language it detected."""
    with detections(model) as seen:
        result = whisper.transcribe(model, str(path), word_timestamps=words, verbose=None, **DECODING)
    (probs,) = seen  # transcribe detects once, on the first 30 s
    assert max(probs, key=probs.get) == result["language"]
    return result, float(probs[result["language"]])


def segment_score(segment: Mapping[str, Any]) -> float:
    """The README's segment score."""
    return min(1.0, math.exp(segment["avg_logprob"])) * (1.0 - segment["no_speech_prob"])


def expected(direct: dict[str, Any], language: float, seconds: float, config: str) -> dict[str, Any]:
    """What the README says ``/predict`` returns for a ``transcribe`` result: per control, one entry per item."""

    def at(time: float) -> float:
        return round(min(max(float(time), 0.0), seconds), 3)

    spoken = [s for s in direct["segments"] if s["text"].strip()]
    regions = [(at(s["start"]), max(at(s["start"]), at(s["end"])), s["text"].strip(), segment_score(s))
               for s in spoken]  # fmt: skip
    durations = [end - start for start, end, *_ in regions]
    scores = [score for *_, score in regions]
    task = (float(np.average(scores, weights=durations)) if sum(durations) else float(np.mean(scores))) if scores \
        else 0.0  # fmt: skip
    text = "".join(s["text"] for s in spoken).strip()
    if config == WORDS:
        pieces = [(at(w["start"]), max(at(w["start"]), at(w["end"])), w["word"].strip(), float(w["probability"]))
                  for s in spoken for w in s["words"]]  # fmt: skip
        return {"score": task, "word": [(a, b, ["Word"], p) for a, b, _, p in pieces],
                "word_text": [(t, p) for _, _, t, p in pieces if t]}
    choice = CHOICES.get(direct["language"])
    return {
        "score": task,
        "transcription": [(text, task)] if text else [],
        "segment": [(a, b, ["Speech"], p) for a, b, _, p in regions],
        "segment_text": [(t, p) for _, _, t, p in regions if t],
        "language": [([choice], language)] if choice else [],
    }


# --- what /predict served --------------------------------------------------------------------------------------


def served(result: dict[str, Any], config: str) -> dict[str, Any]:
    """The served items in the shape of :func:`expected`; each per-region text has its region's id."""
    view: dict[str, Any] = {"score": result["score"]}
    region_id = None
    for item in result["result"]:
        value, score = item["value"], item.get("score")
        if item["type"] == "labels":
            region_id = item["id"]
            entry: tuple[Any, ...] = (value["start"], value["end"], value["labels"], score)
        elif item["type"] == "choices":
            entry = (value["choices"], score)
        else:
            (text,) = value["text"]
            entry = (text, score)
            if "start" in value:  # per-region: follows its region, with its id and times
                assert item["id"] == region_id
        view.setdefault(item["from_name"], []).append(entry)
    names = ("word", "word_text") if config == WORDS else ("transcription", "segment", "segment_text", "language")
    return {"score": view["score"], **{name: view.get(name, []) for name in names}}


def rounded(view: dict[str, Any]) -> dict[str, Any]:
    """Scores to 12 decimals (the same formula in another order), everything else exact."""

    def fix(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 12)
        if isinstance(value, (list, tuple)):
            return type(value)(fix(v) for v in value)
        return value

    return {key: fix(value) for key, value in view.items()}


def check(results: list[dict[str, Any]], checkpoint: Path, media: Path, files: list[str], config: str
          ) -> list[dict[str, Any]]:  # fmt: skip
    """Each served result equals the direct call's, as the README maps it; the direct results. A file without
    speech is the one documented difference: the speech gate (``backends/whisper/speech.py``) keeps Whisper from
    transcribing it, where ``transcribe`` may make words up."""
    model = whisper.load_model(str(checkpoint), device="cpu")
    directs = []
    for name, result in zip(files, results, strict=True):
        path = media / name
        direct, language = transcribe(model, path, words=config == WORDS)
        if name in SILENT:
            assert result["result"] == [] and result["score"] == 0.0, name
            directs.append(direct)
            continue
        seconds = len(whisper.load_audio(str(path))) / SR
        assert rounded(served(result, config)) == rounded(expected(direct, language, seconds, config)), name
        directs.append(direct)
    return directs


# --- the tests ---------------------------------------------------------------------------------------------------


def test_transcripts_segments_and_language_are_what_transcribe_gives(serve: Any, media: Path, trained: Path
                                                                     ) -> None:  # fmt: skip
    files = [*SPEECH, "silence.wav"]
    directs = check(serve(trained, files, SEGMENTS), trained, media, files, SEGMENTS)
    by_file = dict(zip(files, directs, strict=True))
    assert all(by_file[name]["text"].strip() for name in SPEECH)  # real transcripts, not empty ones compared
    assert by_file["hello.wav"]["text"].strip() == PHRASES[0]
    assert {s["start"] >= 30.0 for s in by_file["long.wav"]["segments"]} == {False, True}  # two 30 s windows


def test_word_regions_are_transcribes_word_timestamps(serve: Any, media: Path, trained: Path) -> None:
    files = ["hello.wav", "long.wav"]
    directs = check(serve(trained, files, WORDS), trained, media, files, WORDS)
    assert [w["word"].strip() for s in directs[0]["segments"] for w in s["words"]] == PHRASES[0].split()
    assert any(s["start"] >= 30.0 and s["words"] for s in directs[1]["segments"])


def test_an_unsure_language_probability_is_the_one_transcribe_computes(serve: Any, media: Path,
                                                                       tmp_path: Path) -> None:
    """Random weights: the language is far from sure, so the probability shows any difference in what the
    detection looked at (the trained model says English with probability 1.0 whatever it is given)."""
    checkpoint = save(random_model(seed=0), tmp_path / "random.pt")
    files = ["long.wav", "hello.wav"]
    results = serve(checkpoint, files, EVERY_LANGUAGE)
    model = whisper.load_model(str(checkpoint), device="cpu")
    for name, result in zip(files, results, strict=True):
        direct, probability = transcribe(model, media / name, words=False)
        (item,) = result["result"]
        assert item["value"]["choices"] == [direct["language"]]
        assert item["score"] == result["score"] == probability < 0.99, name  # the same bits
