"""How long a model trains on a project's annotations: passes by data size, and early stopping on held-out scores.

Projects range from ten annotated tasks to thousands, so a fixed number of passes (epochs) either barely
moves the model on a small project or wastes time on a large one. :func:`passes_for` aims at a fixed amount
of work instead (example updates, optimiser steps), within bounds::

    epochs = passes_for(1500, per_pass=len(examples), low=5, high=30)   # 40 texts: 30 passes; 1,000: 5

:class:`EarlyStopping` follows the held-out score pass by pass: it says when a pass is the best so far (keep
a copy of the weights then) and when training should stop, once ``patience`` passes in a row brought nothing
as good as the best, but never before ``min_passes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
