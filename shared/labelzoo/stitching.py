"""A long recording through a model a window at a time, the timed segments it finds joined on the file's time line.

:func:`stitch_windows` runs the model on consecutive windows of a file's samples (such as
:meth:`labelzoo.audio.AudioStream.windows` hands out), so memory stays bounded whatever the file's length.
Where a window ends, the last segment found in it may be cut mid-word: unless it started more than
``carry_seconds`` (at most half a window) before the window's end, it is dropped and its audio carried into
the next window, where it is found whole, as Whisper does between its own 30-second windows. So a window
decodes at most ``carry_seconds`` of audio twice, and holds at most one and a half windows of samples.

Each window's segments are put on the file's time line by the caller's ``place(segment, offset, limit)``:
times shifted by the window's start (``offset`` seconds) and clamped to the ``limit`` seconds of audio that
window held; :func:`on_timeline` does that for one time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from labelzoo.audio import SAMPLE_RATE

S = TypeVar("S")  # a segment as the model reports it, times in seconds from its window's start
U = TypeVar("U")  # a segment on the file's time line

CARRY_SECONDS = 30.0


def stitch_windows(
    pieces: Iterable[np.ndarray],
    run: Callable[[np.ndarray], Sequence[S]],
    *,
    window_samples: int,
    start: Callable[[S], float],
    place: Callable[[S, float, float], U],
    sample_rate: int = SAMPLE_RATE,
    carry_seconds: float = CARRY_SECONDS,
) -> list[U]:
    """Run ``run`` on consecutive ``pieces`` of a file (each ``window_samples`` long but the last) and join the
    segments it returns, placed by ``place``; ``start`` reads a segment's start in seconds. See the module
    docstring for the carry."""
    carry_limit = min(carry_seconds, window_samples / sample_rate / 2)
    segments: list[U] = []
    pending = np.zeros(0, dtype=np.float32)
    offset = 0  # samples of the file before `pending`
    for piece in pieces:
        audio = np.concatenate([pending, piece]) if pending.size else piece
        found = list(run(audio))
        cut = len(audio)
        if len(piece) == window_samples and found:  # not the last window: maybe carry its last segment
            duration = len(audio) / sample_rate
            last_start = start(found[-1])
            if 0.0 < last_start < duration and duration - last_start <= carry_limit:
                found = found[:-1]
                cut = round(last_start * sample_rate)
        segments.extend(place(s, offset / sample_rate, len(audio) / sample_rate) for s in found)
        pending = audio[cut:]
        offset += cut
    if pending.size:  # the file ended exactly at a window's end, after a carry
        segments.extend(place(s, offset / sample_rate, len(pending) / sample_rate) for s in run(pending))
    return segments


def on_timeline(seconds: Any, offset: float, limit: float) -> float:
    """A time of a window (seconds from its start) on the file's time line: clamped to ``[0, limit]``, shifted
    by ``offset`` and rounded to milliseconds."""
    return round(offset + min(max(float(seconds), 0.0), limit), 3)
