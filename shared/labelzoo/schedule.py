"""How long a model trains on a project's annotations: passes by data size, and early stopping on held-out scores.

Projects range from ten annotated tasks to thousands, so a fixed number of passes (epochs) either barely
moves the model on a small project or wastes time on a large one. :func:`passes_for` aims at a fixed amount
of work instead (example updates, optimiser steps), within bounds::

    epochs = passes_for(1500, per_pass=len(examples), low=5, high=30)   # 40 texts: 30 passes; 1,000: 5

:class:`EarlyStopping` follows the held-out score pass by pass: it says when a pass is the best so far (keep
a copy of the weights then) and when training should stop, once ``patience`` passes in a row brought nothing
as good as the best, but never before ``min_passes``.

:func:`run_passes` is the loop around both for a model trained in place: one pass after another, the
held-out score after each, a copy of the best pass's weights, an early stop, the best weights back at the
end, and progress and cancellation between passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

W = TypeVar("W")  # a copy of the model's weights, whatever the library's form (bytes, a state dict…)


def passes_for(work: int, *, per_pass: int, low: int, high: int) -> int:
    """The passes that do about ``work`` units (updates, steps) when one pass does ``per_pass`` of them (at
    least 1 counts), kept within ``[low, high]``."""
    if not 1 <= low <= high:
        raise ValueError(f"the bounds must satisfy 1 <= low <= high, got {low} and {high}")
    return min(high, max(low, math.ceil(work / max(per_pass, 1))))


@dataclass
class EarlyStopping:
    """The best held-out score so far and the pass that reached it (higher is better); see the module docstring.

    A pass that ties the best counts as the best: it is more trained and no worse.
    """

    patience: int
    min_passes: int = 0
    best: float | None = None
    best_pass: int = 0

    def record(self, number: int, score: float) -> bool:
        """Note pass ``number``'s score; whether it is the best so far."""
        if self.best is not None and score < self.best:
            return False
        self.best, self.best_pass = score, number
        return True

    def should_stop(self, number: int) -> bool:
        """Whether to stop after pass ``number``: no pass as good as the best for ``patience`` passes, and at
        least ``min_passes`` done. Never before a score was recorded."""
        return self.best is not None and number >= self.min_passes and number - self.best_pass >= self.patience


@dataclass
class PassesRun:
    """What :func:`run_passes` did: the passes it ran, the best held-out score (None without a held-out set),
    and whether it was cancelled."""

    passes: int = 0
    best: float | None = None
    cancelled: bool = False


def run_passes(
    passes: int,
    one_pass: Callable[[], Mapping[str, float]],
    *,
    evaluate: Callable[[], float] | None,
    keep: Callable[[], W],
    restore: Callable[[W], None],
    stopping: EarlyStopping,
    report: Callable[..., None],
    cancelled: Callable[[], bool],
    score_name: str = "score",
) -> PassesRun:
    """Train up to ``passes`` passes: ``one_pass()`` trains once and gives that pass's metrics (its loss…).

    With ``evaluate`` (the held-out score, higher is better), ``stopping`` picks the best pass, whose weights
    ``keep()`` copies and ``restore(copy)`` puts back at the end, and may end training early; without it,
    every pass runs and the last one's weights stay. After each pass, ``report(fraction done, "pass n/N",
    **metrics)``, the score among the metrics as ``score_name``. ``cancelled()`` is asked before each pass: a
    cancelled run returns at once, restoring nothing (its model is not to be used).
    """
    run = PassesRun()
    best: list[W] = []
    for number in range(1, passes + 1):
        if cancelled():
            run.cancelled = True
            return run
        metrics = dict(one_pass())
        run.passes = number
        if evaluate is not None:
            metrics[score_name] = score = evaluate()
            if stopping.record(number, score):
                best[:] = [keep()]
        report(number / passes, f"pass {number}/{passes}", **metrics)
        if stopping.should_stop(number):
            break
    if best:
        restore(best[0])
    run.best = stopping.best
    return run
