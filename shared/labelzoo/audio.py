"""Decode any audio file Label Studio users upload to 16 kHz mono float32, a window at a time.

One ``ffmpeg`` process per file writes 16-bit PCM to a pipe and the reader takes a window of samples
at a time, so a file of several hours never sits in memory whole: at most one window (plus what the
model carries over) is decoded at once. ffmpeg reads wav, mp3, flac, ogg/opus, m4a/aac and the
audio track of mp4/webm videos. A file it cannot read becomes a :class:`TaskError` that quotes
ffmpeg's complaint, so the task fails alone with a message a user can act on.

Decoding in a separate process also keeps a file that crashes the decoder from taking the worker down.
Its cost is ffmpeg's start-up, about 60 ms per file on a 2-core machine (it links some 200 libraries).
With :func:`open_stream` as the decoder of :meth:`MediaResolver.per_task`, the next tasks' ffmpeg
processes start (and fill their pipes) while the model works on the current one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labelzoo.errors import TaskError

if TYPE_CHECKING:
    from labelzoo.media.tasks import TaskMedia

SAMPLE_RATE = 16_000  # what speech models (Whisper, wav2vec 2.0) expect
_BYTES_PER_SAMPLE = 2  # s16le
_COMPLAINT_CHARS = 400
_CONTEXT_ADDRESS = re.compile(r" @ 0x[0-9a-f]+\]")  # "[mp3 @ 0x55fa…]" → "[mp3]"


def ffmpeg_program() -> str:
    """The ffmpeg executable; raises a clear error when it is not installed."""
    program = shutil.which("ffmpeg")
    if program is None:
        raise RuntimeError("the ffmpeg program is not installed: apt-get install ffmpeg (or brew install ffmpeg)")
    return program


class AudioStream:
    """A file being decoded by ffmpeg from the moment it is opened; read it with :meth:`windows`.

    ``name`` is how errors call the file (the task's URL rather than a cache path). A missing or empty
    file raises :class:`TaskError` at once; one ffmpeg cannot decode raises it from :meth:`windows`.
    Always :meth:`close` it (or use ``with``): that stops ffmpeg if the file was not read to the end.
    """

    def __init__(self, path: Path, *, name: str | None = None) -> None:
        self.path = path
        self.name = name or path.name
        if not path.is_file():
            raise TaskError(f"audio file {self.name} does not exist")
        if path.stat().st_size == 0:
            raise TaskError(f"audio file {self.name} is empty (0 bytes)")
        command = [
            ffmpeg_program(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-map", "0:a:0", "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-",
        ]  # fmt: skip
        # stderr goes to a file, not a pipe, so ffmpeg never blocks on it; closed in close()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errors)

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def windows(self, window_seconds: float) -> Iterator[np.ndarray]:
        """Consecutive pieces of the audio, ``window_seconds`` long each (the last may be shorter)."""
        assert self._proc.stdout is not None
        window_bytes = max(1, round(window_seconds * SAMPLE_RATE)) * _BYTES_PER_SAMPLE
        total = 0
        while True:
            data = self._proc.stdout.read(window_bytes)
            if len(data) < window_bytes:  # the end: check how ffmpeg ended before handing out the tail
                self._check_exit(self._proc.wait())
            total += len(data) // _BYTES_PER_SAMPLE
            if total == 0:
                raise TaskError(f"audio file {self.name} holds no audio samples")
            if data:
                yield _to_float(data)
            if len(data) < window_bytes:
                return

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc.wait()
        self._errors.close()

    def _check_exit(self, code: int) -> None:
        if code == 0:
            return
        self._errors.seek(0)
        text = self._errors.read().decode("utf-8", errors="replace").replace(str(self.path), self.name)
        text = _CONTEXT_ADDRESS.sub("]", text)
        lines = [line.strip().removeprefix(f"{self.name}: ") for line in text.splitlines() if line.strip()]
        complaint = "; ".join(lines)[-_COMPLAINT_CHARS:] or f"exit status {code}"
        if "matches no streams" in complaint:
            complaint = "it has no audio track"
        raise TaskError(f"ffmpeg cannot decode audio file {self.name}: {complaint}")


def open_stream(item: TaskMedia) -> AudioStream:
    """For :meth:`MediaResolver.per_task`: the task's audio being decoded, named by its URL in errors.

    The caller closes it (``with stream:``); a stream never handed out is closed by ``per_task``.
    """
    return AudioStream(item.path, name=item.value)


def decode(path: Path, *, name: str | None = None) -> np.ndarray:
    """The whole file at once (for short clips and tests): 16 kHz mono float32 in [-1, 1)."""
    with AudioStream(path, name=name) as stream:
        return np.concatenate(list(stream.windows(600.0)))


def _to_float(data: bytes) -> np.ndarray:
    usable = len(data) - len(data) % _BYTES_PER_SAMPLE
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
