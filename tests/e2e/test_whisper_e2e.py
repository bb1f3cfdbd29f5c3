"""Whisper with a real Label Studio: uploaded wav/mp3 files (task data ``/data/upload/…``), a tiny Whisper whose
decoder learned two espeak-ng phrases (``whisper_support.trained_model``), the quickstart config (transcript,
one region per segment with its text, language), predictions retrieved through the Data Manager action; the
backend downloads the audio from Label Studio with the PAT."""

from __future__ import annotations

import pytest

pytest.importorskip("whisper")

from tests.backends.whisper_support import PHRASES, WHISPER_BACKEND, ffmpeg, save, speech, trained_model
from tests.e2e.project import check_predictions

CONFIG = (WHISPER_BACKEND / "configs" / "quickstart.xml").read_text()

pytestmark = pytest.mark.slow


def items(prediction: dict, from_name: str) -> list[dict]:
    return [item for item in prediction["result"] if item["from_name"] == from_name]


def test_whisper_transcribes_uploaded_audio(label_studio, ls_project, serve_for_ls, tmp_path):
    hello, fox = speech(tmp_path / "hello.wav", PHRASES[0]), speech(tmp_path / "fox.wav", PHRASES[1])
    checkpoint = save(trained_model({PHRASES[0]: hello, PHRASES[1]: fox}), tmp_path / "tiny-trained.pt")
    upload = tmp_path / "upload"
    upload.mkdir()
    files = [upload / "hello world.wav", upload / "fox.mp3", upload / "hello.mp3"]
    hello.rename(files[0])
    ffmpeg("-i", str(fox), str(files[1]))
    ffmpeg("-i", str(files[0]), str(files[2]))
    phrases = [PHRASES[0], PHRASES[1], PHRASES[0]]
    server = serve_for_ls(WHISPER_BACKEND, WHISPER_MODEL=str(checkpoint), DEVICE="cpu")

    project = ls_project(CONFIG, title="Whisper")
    tasks = project.upload(files)
    prefix = f"/data/upload/{project.id}/"
    assert all(t["data"]["audio"].startswith(prefix) for t in tasks), tasks
    ids = [t["id"] for t in tasks]
    backend = project.connect(server.url, "Whisper")
    version = backend["model_version"]
    assert version == "whisper-tiny-trained", backend

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    by_task = check_predictions(project.predictions(), ids, version, result_types={"textarea", "labels", "choices"})
    for task, phrase in zip(ids, phrases, strict=True):
        prediction = by_task[task]
        (transcript,) = items(prediction, "transcription")
        (region,) = items(prediction, "segment")
        (region_text,) = items(prediction, "segment_text")
        (language,) = items(prediction, "language")
        assert transcript["type"] == "textarea" and transcript["value"] == {"text": [phrase]}, prediction
        assert region["type"] == "labels" and region["value"]["labels"] == ["Speech"], region
        assert 0 <= region["value"]["start"] < region["value"]["end"] < 10, region
        assert region_text["type"] == "textarea" and region_text["id"] == region["id"], region_text
        assert region_text["value"]["text"] == [phrase], region_text
        assert language["value"] == {"choices": ["English"]}, language
        assert 0.5 < prediction["score"] <= 1, prediction

    # every file was downloaded from Label Studio's /data/upload with the PAT, none without it
    downloads = label_studio.requests_logged(rf'"GET {prefix}[^"]*" 200')
    fetched = {line.split('"GET ', 1)[1].split()[0] for line in downloads}
    assert fetched == {t["data"]["audio"] for t in tasks}, downloads
    assert not label_studio.requests_logged(rf'"GET {prefix}[^"]*" 40[13]')

    # opening a task that has its prediction shows it and asks for nothing new
    opened = project.open(ids[1])
    assert [p["model_version"] for p in opened["predictions"]] == [version]
    assert len(project.predictions()) == len(ids)
