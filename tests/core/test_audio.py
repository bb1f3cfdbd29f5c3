"""labelzoo.audio: decoding the audio formats users upload, a window at a time, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from labelzoo import TaskError, audio
from tests.core.audio_support import ffmpeg, silence, tone

SR = 16_000


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * SR / len(samples))


def ffmpeg_children() -> list[int]:
    """ffmpeg processes this test process started that still exist."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, ppid = stat[stat.index("(") + 1 : stat.rindex(")")], int(stat[stat.rindex(")") + 2 :].split()[1])
        if name == "ffmpeg" and ppid == os.getpid():
            found.append(int(pid))
    return found


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".ogg", ".m4a", ".mp4"])
def test_every_common_format_decodes_to_16k_mono(tmp_path: Path, suffix: str) -> None:
    path = tone(tmp_path / f"tone{suffix}", 2.0, frequency=440.0, amplitude=0.25)  # stereo, 44.1 kHz
    samples = audio.decode(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / SR - 2.0) < 0.05
    assert dominant_frequency(samples) == pytest.approx(440.0, abs=2.0)
    rms = float(np.sqrt(np.mean(samples[SR // 4 : -SR // 4] ** 2)))
    assert rms == pytest.approx(0.25 / np.sqrt(2), rel=0.05)  # both channels alike: the downmix keeps the level


def test_the_audio_track_of_a_video_is_used(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=2", "-f", "lavfi", "-i", "sine=frequency=300:duration=2",
           "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(path))  # fmt: skip
    assert dominant_frequency(audio.decode(path)) == pytest.approx(300.0, abs=2.0)


def test_windows_tile_the_file_and_closing_early_ends_ffmpeg(tmp_path: Path) -> None:
    path = tone(tmp_path / "tone.wav", 2.0, rate=SR, channels=1)
    with audio.AudioStream(path) as stream:
        windows = list(stream.windows(0.3))
    assert [len(w) for w in windows] == [4800] * 6 + [3200]
    np.testing.assert_array_equal(np.concatenate(windows), audio.decode(path))
    long = silence(tmp_path / "long.flac", 180.0)
    with audio.AudioStream(long) as stream:
        assert len(next(stream.windows(10.0))) == 10 * SR
        assert ffmpeg_children()  # still decoding the rest
    assert ffmpeg_children() == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", b"", "audio file {url} is empty (0 bytes)"),
        ("notes.wav", b"this is not audio\n" * 100, "ffmpeg cannot decode audio file {url}: Invalid data found"),
        ("corrupt.mp3", bytes(range(256)) * 40, "ffmpeg cannot decode audio file {url}: "),
    ],
)
def test_unreadable_files_raise_a_task_error_naming_the_file(tmp_path: Path, name: str, content: bytes,
                                                             message: str) -> None:  # fmt: skip
    path = tmp_path / "cache-3f2a9c"  # as the media cache names files: the error uses the task's URL instead
    path.write_bytes(content)
    url = f"https://example.com/audio/{name}"
    with pytest.raises(TaskError) as caught:
        audio.decode(path, name=url)
    assert caught.value.message.startswith(message.format(url=url))
    assert str(path) not in caught.value.message


def test_a_file_without_audio_says_so(tmp_path: Path) -> None:
    path = tmp_path / "picture.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-c:v", "mpeg4", str(path))
    with pytest.raises(TaskError, match=r"^ffmpeg cannot decode audio file picture.mp4: it has no audio track$"):
        audio.decode(path)
