"""The Whisper backend end to end: /setup and /predict through the runtime, real Whisper models.

The models are built here from tiny ``ModelDimensions``: one with random weights, and one whose decoder
learned two espeak-ng phrases (see ``whisper_support.trained_model``), so transcripts, timings,
languages and scores can be checked against what they must be.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import whisper

from labelzoo import Task, audio
from labelzoo.finished import listening
from labelzoo.server.app import create_app
from tests.backends.whisper_support import (
    PHRASES,
    WHISPER_BACKEND,
    ffmpeg,
    phrase_model,
    post_audio,
    random_model,
    save,
    silence,
    speech,
    whisper_module,
    write_wav,
)

scores = whisper_module("scores")
SR = 16_000
CONFIGS = WHISPER_BACKEND / "configs"
ALL_KINDS = """<View>
  <Audio name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio"/>
  <Labels name="segment" toName="audio"><Label value="Speech"/></Labels>
  <TextArea name="segment_text" toName="audio" perRegion="true"/>
  <Choices name="language" toName="audio"><Choice value="English"/><Choice value="French"/></Choices>
</View>"""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whisper-media")
    hello, fox = speech(folder / "hello.wav", PHRASES[0]), speech(folder / "fox.wav", PHRASES[1])
    for source, target in ((hello, "hello.mp3"), (hello, "hello.flac"), (fox, "fox.ogg"), (fox, "fox.m4a")):
        ffmpeg("-i", str(source), *(["-c:a", "aac"] if target.endswith("m4a") else []), str(folder / target))
    silence(folder / "silence.wav", 4.0)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "corrupt.mp3").write_bytes(b"this is not audio\n" * 100)
    return folder


@pytest.fixture(scope="module")
def trained(media: Path) -> Path:
    return phrase_model(media)


@pytest.fixture
def serve_whisper(make_runtime, media: Path):
    def start(checkpoint: Path, **env: str):
        runtime = make_runtime(WHISPER_BACKEND, WHISPER_MODEL=str(checkpoint), MEDIA_LOCAL_ROOTS=str(media), **env)
        return runtime, create_app(runtime).test_client()

    return start


def predict(client, files: list[str | None], media: Path, config: str = ALL_KINDS) -> list[dict[str, Any]]:
    return post_audio(client, files, media, config)


def items_of(result: dict[str, Any], from_name: str) -> list[dict[str, Any]]:
    return [item for item in result["result"] if item["from_name"] == from_name]


def duration(path: Path) -> float:
    return len(audio.decode(path)) / SR


def test_transcripts_regions_and_language_for_every_format(serve_whisper, media: Path, trained: Path,
                                                           monkeypatch) -> None:  # fmt: skip
    loads = []
    load_model = whisper.load_model
    monkeypatch.setattr(whisper, "load_model", lambda *a, **k: loads.append(a) or load_model(*a, **k))
    runtime, client = serve_whisper(trained)
    files = ["hello.wav", "fox.ogg", "hello.mp3", "fox.m4a", "hello.flac", "silence.wav"]
    results = predict(client, files, media)
    for name, result in zip(files[:-1], results, strict=False):
        phrase = PHRASES[0] if name.startswith("hello") else PHRASES[1]
        (transcript,) = items_of(result, "transcription")
        (region,) = items_of(result, "segment")
        (region_text,) = items_of(result, "segment_text")
        (language,) = items_of(result, "language")
        assert transcript["value"] == {"text": [phrase]}
        assert region["value"]["labels"] == ["Speech"] and region["value"]["start"] == 0.0
        assert abs(region["value"]["end"] - duration(media / name)) <= 0.03
        assert region_text["id"] == region["id"] and region_text["value"]["text"] == [phrase]
        assert language["value"] == {"choices": ["English"]} and language["score"] > 0.99
        assert result["score"] == transcript["score"]
        assert region["score"] == region_text["score"] == pytest.approx(result["score"], abs=1e-12)  # one segment
        assert 0.5 < result["score"] <= 1.0
    silent = results[-1]
    assert silent["result"] == []  # no speech: no transcript, no region, and no language to name
    assert silent["score"] == 0.0  # reviewed first under uncertainty sampling

    # the served score is Whisper's own numbers put through the documented formula
    model = runtime.models.base.transcriber.engine.model
    (direct,) = model.transcribe(audio.decode(media / "hello.wav"), language="en", temperature=0.0, fp16=False)[
        "segments"
    ]
    assert results[0]["score"] == pytest.approx(math.exp(direct["avg_logprob"]) * (1 - direct["no_speech_prob"]))

    predict(client, ["fox.wav", "hello.wav"], media)
    assert len(loads) == 1  # one load serves every task of every request


def test_unreadable_audio_fails_only_its_own_task(serve_whisper, media: Path, trained: Path) -> None:
    _, client = serve_whisper(trained)
    results = predict(client, ["corrupt.mp3", "empty.wav", "hello.wav", "missing.wav", None], media)
    assert re.match(r"ffmpeg cannot decode audio file \S+/corrupt\.mp3: \S", results[0]["error"])  # + ffmpeg's words
    assert results[1]["error"].endswith("empty.wav is empty (0 bytes)")
    assert items_of(results[2], "transcription")[0]["value"] == {"text": [PHRASES[0]]}
    assert "missing.wav" in results[3]["error"]
    assert "no data field 'audio'" in results[4]["error"]
    assert all("result" not in r for i, r in enumerate(results) if i != 2)  # Label Studio predicts them later


def test_project_extra_params_reach_whisper(serve_whisper, media: Path, trained: Path, monkeypatch) -> None:
    runtime, client = serve_whisper(trained)
    model = runtime.models.base.transcriber.engine.model
    calls = []
    transcribe = model.transcribe
    monkeypatch.setattr(model, "transcribe", lambda *a, **k: calls.append(k) or transcribe(*a, **k))
    setup = {"project": "3.1700000000", "schema": ALL_KINDS, "extra_params": None}
    assert client.post("/setup", json=setup).status_code == 200
    predict(client, ["hello.wav"], media)
    assert (calls[-1]["language"], calls[-1]["task"], calls[-1]["beam_size"]) == ("en", "transcribe", None)

    setup["extra_params"] = {"language": "French", "task": "translate", "beam_size": 2}
    assert client.post("/setup", json=setup).status_code == 200
    (result,) = predict(client, ["hello.wav"], media)
    assert (calls[-1]["language"], calls[-1]["task"], calls[-1]["beam_size"]) == ("fr", "translate", 2)
    assert items_of(result, "language")[0]["value"] == {"choices": ["English"]}  # still what it heard

    setup["extra_params"] = {"beam_size": 0}
    assert client.post("/setup", json=setup).status_code == 200
    count = len(calls)
    results = predict(client, ["hello.wav", "fox.wav"], media)
    assert all("extra_params.beam_size=0 must be a whole number" in r["error"] for r in results)
    assert len(calls) == count


def test_word_regions_from_word_timestamps(serve_whisper, media: Path, trained: Path) -> None:
    _, client = serve_whisper(trained)
    (result,) = predict(client, ["hello.wav"], media, config=(CONFIGS / "words.xml").read_text())
    words, texts = items_of(result, "word"), items_of(result, "word_text")
    assert [t["value"]["text"][0] for t in texts] == PHRASES[0].split()
    assert [w["id"] for w in words] == [t["id"] for t in texts]
    starts = [w["value"]["start"] for w in words]
    assert starts == sorted(starts) and all(w["value"]["start"] <= w["value"]["end"] for w in words)
    assert starts[0] >= 0.0 and words[-1]["value"]["end"] <= duration(media / "hello.wav") + 0.02
    assert all(0.0 <= w["score"] <= 1.0 and w["value"]["labels"] == ["Word"] for w in words)


def test_long_audio_is_transcribed_in_bounded_windows_with_exact_offsets(serve_whisper, media: Path, trained: Path,
                                                                         monkeypatch) -> None:  # fmt: skip
    samples = np.random.default_rng(0).uniform(-0.01, 0.01, 200 * SR).astype(np.float32)  # low-level noise
    for phrase, at in (("hello.wav", 5), ("fox.wav", 38), ("hello.wav", 100)):
        spoken = audio.decode(media / phrase)
        samples[at * SR : at * SR + len(spoken)] += spoken
    path = write_wav(media / "long.wav", samples)
    runtime, client = serve_whisper(trained, WHISPER_WINDOW_SECONDS="40", WHISPER_VAD="false")  # every window
    model = runtime.models.base.transcriber.engine.model
    calls: list[tuple[np.ndarray, list[dict]]] = []
    transcribe = model.transcribe

    def recorded(piece: np.ndarray, **kwargs: Any) -> dict:
        result = transcribe(piece, **kwargs)
        calls.append((piece.copy(), result["segments"]))
        return result

    monkeypatch.setattr(model, "transcribe", recorded)
    (result,) = predict(client, ["long.wav"], media, config=(CONFIGS / "segments.xml").read_text())

    decoded = audio.decode(path)
    offsets, carried = [0], 0
    for (piece, found), (following, _) in itertools.pairwise(calls):
        start = offsets[-1]
        candidates = {start + len(piece)} | {start + round(s["start"] * SR) for s in found}
        (offset,) = [c for c in candidates if np.array_equal(decoded[c : c + len(following)], following)]
        carried += offset < start + len(piece)
        offsets.append(offset)
    assert np.array_equal(decoded[offsets[-1] :], calls[-1][0])  # the windows reach the end of the file
    assert max(len(piece) for piece, _ in calls) <= 60 * SR  # a window and at most half a window carried
    assert carried > 0

    expected = []
    for k, (piece, found) in enumerate(calls):
        if k + 1 < len(calls) and offsets[k + 1] < offsets[k] + len(piece):
            found = found[:-1]  # its audio was carried into the next window
        limit = len(piece) / SR
        expected += [
            (round(offsets[k] / SR + min(s["start"], limit), 3), round(offsets[k] / SR + min(s["end"], limit), 3),
             s["text"].strip())
            for s in found if s["text"].strip()
        ]  # fmt: skip
    regions = [(r["value"]["start"], r["value"]["end"]) for r in items_of(result, "segment")]
    texts = [t["value"]["text"][0] for t in items_of(result, "segment_text")]
    assert [(a, b, t) for (a, b), t in zip(regions, texts, strict=True)] == expected
    assert regions and regions[-1][1] <= 200.0


def test_random_weights_serve_what_the_library_returns(serve_whisper, media: Path, tmp_path: Path) -> None:
    runtime, client = serve_whisper(save(random_model(seed=1), tmp_path / "random.pt"))
    (result,) = predict(client, ["fox.wav"], media, config=(CONFIGS / "segments.xml").read_text())
    transcriber = runtime.models.base.transcriber
    decoded = audio.decode(media / "fox.wav")
    language, _ = transcriber.engine.detect_language(decoded)
    direct = transcriber.engine.model.transcribe(decoded, language=language, temperature=0.0, fp16=False)["segments"]
    limit = len(decoded) / SR
    expected = [
        (round(min(s["start"], limit), 3), round(min(s["end"], limit), 3), s["text"].strip(), scores.segment_score(s))
        for s in direct if s["text"].strip()
    ]  # fmt: skip
    regions, texts = items_of(result, "segment"), items_of(result, "segment_text")
    served = [(r["value"]["start"], r["value"]["end"], t["value"]["text"][0], r["score"])
              for r, t in zip(regions, texts, strict=True)]  # fmt: skip
    assert served == expected


def test_each_task_is_reported_finished_as_soon_as_it_is_transcribed(serve_whisper, media: Path, trained: Path,
                                                                     monkeypatch) -> None:  # fmt: skip
    """What lets a /predict deadline inside a batch of 16 answer the clips transcribed so far."""
    runtime, _ = serve_whisper(trained)
    backend, ctx = runtime.prediction.context("3", ALL_KINDS)
    transcribed: list[int] = []
    transcribe = backend.transcriber.transcribe
    monkeypatch.setattr(backend.transcriber, "transcribe", lambda *a, **k: transcribed.append(1) or transcribe(*a, **k))
    names = ["hello.wav", "gone.wav", "fox.wav"]
    tasks = [Task(id=i, data={"audio": str(media / name)}) for i, name in enumerate(names, 1)]
    heard: list[tuple[int, int, Any]] = []
    with listening(lambda index, prediction: heard.append((index, len(transcribed), prediction))):
        predictions = backend.predict(tasks, ctx)
    assert [(index, calls) for index, calls, _ in heard] == [(0, 1), (1, 1), (2, 2)]  # not all at the end
    assert [prediction for *_, prediction in heard] == predictions
    assert "gone.wav" in (predictions[1].error or "")
    assert [i["value"] for i in predictions[2].result if i["from_name"] == "transcription"] == [{"text": [PHRASES[1]]}]


def test_a_segment_is_dropped_only_far_from_any_speech() -> None:
    spoken = whisper_module("speech").spoken
    segments = [{"start": 0.0, "end": 1.5}, {"start": 6.0, "end": 7.0}, {"start": 12.0, "end": 13.0}]
    assert spoken(segments, [(3.0, 5.0)]) == segments[:2]  # 1.5 s and 1 s away: kept; 7 s away: dropped
    assert spoken(segments, []) == []
