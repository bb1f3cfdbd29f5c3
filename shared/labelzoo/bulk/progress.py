"""A dependency-free progress bar on stderr: redrawn in place on a terminal, a line every few seconds in logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """``update(n)`` after each piece of work; ``note`` adds a short status (e.g. ``"3 failed"``)."""

    def __init__(self, total: int, label: str = "", *, stream: TextIO | None = None, done: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.label = label
        self.done = done
        self.note = ""
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._clock = clock
        self._started = clock()
        self._counted_from = done  # work resumed from an earlier run does not count towards the rate
        self._drawn_at = float("-inf")
        self._interval = 0.2 if self._tty else 10.0

    def update(self, n: int = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        if self._clock() - self._drawn_at >= self._interval:
            self._draw()

    def close(self) -> None:
        self._draw()
        if self._tty:
            self._stream.write("\n")
        self._stream.flush()

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = (self.done - self._counted_from) / elapsed
        shown = f"{self.done}/{self.total}" if self.total else str(self.done)
        parts = [self.label] if self.label else []
        if self.total:
            filled = int(BAR_WIDTH * min(self.done, self.total) / self.total)
            parts.append(f"{100 * self.done / self.total:3.0f}% [{'#' * filled}{'.' * (BAR_WIDTH - filled)}]")
        parts.append(f"{shown} tasks, {rate:.1f}/s, {_duration(elapsed)}")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        if self.note:
            parts.append(self.note)
        return " ".join(parts)

    def _draw(self) -> None:
        self._drawn_at = self._clock()
        text = self.line()
        self._stream.write(f"\r{text}\x1b[K" if self._tty else text + "\n")
        self._stream.flush()
