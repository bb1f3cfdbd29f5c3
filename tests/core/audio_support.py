"""Audio files made on the spot with ffmpeg (Debian's ``ffmpeg`` package), for the audio decoding tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def tone(path: Path, seconds: float, *, frequency: float = 440.0, amplitude: float = 0.25, rate: int = 44100,
         channels: int = 2) -> Path:  # fmt: skip
    """A sine tone of peak ``amplitude`` on every channel (stereo 44.1 kHz by default), in ``path``'s format."""
    wave = f"{amplitude}*sin(2*PI*{frequency}*t)"
    source = f"aevalsrc={'|'.join([wave] * channels)}:s={rate}:d={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, *codec_args(path), str(path))
    return path


def silence(path: Path, seconds: float) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={seconds}", *codec_args(path), str(path))
    return path


def codec_args(path: Path) -> list[str]:
    """ffmpeg's encoder options for ``path``'s format, where its default for the extension is not wanted."""
    return {".m4a": ["-c:a", "aac"], ".mp4": ["-c:a", "aac"], ".ogg": ["-c:a", "libvorbis"]}.get(path.suffix, [])
