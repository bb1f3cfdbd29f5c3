"""What every learning backend decides the same way: which tasks validate, and whether a new model is kept.

* :func:`split_held_out` puts a task on the held-out side when a hash of its id falls below the held-out
  fraction. The hash does not depend on the other tasks, so a task keeps its side as the project grows:
  the current model (trained on the training side of an earlier round) and the new one are both scored
  on tasks neither trained on. Backends must never train a model they may promote on held-out tasks.
* :func:`decide` promotes a new model unless it scores clearly worse than the current one on those
  held-out tasks, "clearly" meaning by more than the noise of the metric on that many tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def split_key(task_id: Any = None, content: Any = None, position: int = 0) -> str:
    """What the split hashes for one task: its id; without one, its content; without that, its position.

    Content (e.g. the task's data) must be JSON-serialisable to be used; position is the last resort,
    stable only while items keep their order.
    """
    if task_id is not None:
        return f"task:{task_id}"
    if content is not None:
        try:
            canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):
            canonical = None
        if canonical is not None:
            return f"content:{hashlib.sha256(canonical.encode()).hexdigest()}"
    return f"position:{position}"


def unit_hash(key: str) -> float:
    """A number in [0, 1) that depends only on ``key``, spread evenly over keys.

    Built from the key's CRC-32 ``c``: ``c % 100`` gives the hundredths and ``c // 100`` the part within, so
    ``unit_hash(key) < p / 100`` exactly when ``c % 100 < p``, the rule the spaCy backend split by before:
    its projects keep their held-out tasks across the upgrade.
    """
    c = zlib.crc32(key.encode())
    return (c % 100 + (c // 100) / _WITHIN) / 100


_WITHIN = (2**32 - 1) // 100 + 1  # c // 100 < _WITHIN for every 32-bit c


@dataclass(frozen=True)
class Split(Generic[T]):
    """Items to train on and items held out to validate, each in their original order."""

    train: list[T]
    held_out: list[T]

    @property
    def validated(self) -> bool:
        return bool(self.held_out)

    def held_out_tasks(self, task_id: Callable[[T], Any]) -> set[Any]:
        """The task ids of the held-out items that no training item shares: what ``FitResult.held_out`` names."""
        return {task_id(item) for item in self.held_out} - {task_id(item) for item in self.train}

    def __iter__(self) -> Iterator[list[T]]:
        """``train, held_out = split``."""
        return iter((self.train, self.held_out))


def split_held_out(
    items: Sequence[T],
    *,
    task_id: Callable[[T], Any],
    content: Callable[[T], Any] | None = None,
    fraction: float = 0.2,
    min_held_out: int = 1,
    min_train: int = 1,
) -> Split[T]:
    """Split ``items`` into training and held-out items by a hash of each one's task id (:func:`split_key`).

    An item is held out when its hash is below ``fraction``. A small project whose hashes give fewer
    than ``min_held_out`` items is topped up with the items hashed lowest after those (the ones a larger
    project would hold out first); hash luck never holds out more than twice the fraction, and at least
    ``min_train`` items always train. When ``items`` cannot spare ``min_held_out`` items that way, nothing
    is held out (``Split.validated`` is false): every item trains and no comparison is possible.
    Several items of one task (e.g. several Text objects) land on the same side.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction!r}")
    if min_held_out < 1 or min_train < 1:
        raise ValueError(f"min_held_out and min_train must be >= 1, got {min_held_out} and {min_train}")
    everything = Split(list(items), [])
    if fraction == 0.0:
        return everything
    hashes = [
        unit_hash(split_key(task_id(item), content(item) if content is not None else None, position))
        for position, item in enumerate(items)
    ]
    order = sorted(range(len(items)), key=lambda i: (hashes[i], i))
    wanted = sum(h < fraction for h in hashes)
    count = min(max(wanted, min_held_out), max(min_held_out, math.floor(2 * fraction * len(items))))
    count = min(count, len(items) - min_train)
    if count < min_held_out:
        return everything
    cut = hashes[order[count - 1]]  # everything hashed at or below the last one held out goes with it
    held = {i for i in range(len(items)) if hashes[i] <= cut}
    if len(items) - len(held) < min_train:
        return everything
    return Split(
        [item for i, item in enumerate(items) if i not in held],
        [item for i, item in enumerate(items) if i in held],
    )


@dataclass(frozen=True)
class Decision:
    """Whether to promote a new model, and why in words a user can read in the job log."""

    promote: bool
    reason: str
    new: float | None
    old: float | None
    margin: float

    def metrics(self, name: str) -> dict[str, float]:
        """The two scores as a fit's metrics: ``name`` (the new model's) and ``previous_<name>`` (the current
        one's), each left out when unknown."""
        scores = {name: self.new, f"previous_{name}": self.old}
        return {key: value for key, value in scores.items() if value is not None}


def noise_margin(old: float, new: float, n_held_out: int) -> float:
    """One standard error of a score in [0, 1] measured on ``n_held_out`` items.

    The score is treated as a proportion of items got right (exact for accuracy, a stand-in for F1 or
    mAP): ``sqrt(p (1 - p) / n)``, with ``p`` the two models' mean score smoothed as ``(p n + 1) / (n + 2)``
    so that perfect or zero scores on few items still leave room for the noise those few items carry.
    """
    n = max(n_held_out, 1)
    p = ((old + new) / 2 * n + 1) / (n + 2)
    return math.sqrt(p * (1 - p) / n)


def decide(
    new: float | None,
    old: float | None,
    *,
    n_held_out: int,
    margin: float | None = None,
    metric: str = "score",
) -> Decision:
    """Promote the new model unless it scores clearly worse than the current one on the held-out items.

    ``new`` and ``old`` are the same metric (higher is better) of the new and the current model on the
    same held-out items, the current model scored on held-out items only. The new model is promoted when
    ``new >= old - margin``: one that is equal within noise is promoted, so the project keeps learning
    from its new annotations, while one clearly worse is not. ``margin`` defaults to
    :func:`noise_margin` of the scores on ``n_held_out`` items (one standard error; for scores near 0.9
    about 0.14 on 8 items, 0.08 on 20, 0.01 on 1,000); pass a number for a fixed tolerance instead (0 for
    "never worse").

    Without a current model (``old`` is None) or without held-out items to compare on (``new`` is None or
    ``n_held_out`` is 0), the new model is promoted: there is nothing to keep instead.
    """
    if old is None:
        return Decision(True, "no current model to compare with: the new one is promoted", new, old, 0.0)
    if new is None or n_held_out <= 0:
        return Decision(True, "too few held-out items to compare on: the new model is promoted", new, old, 0.0)
    tolerance = noise_margin(old, new, n_held_out) if margin is None else float(margin)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"the margin must be a finite number >= 0, got {margin!r}")
    scores = f"{metric} {new:.3f} against the current model's {old:.3f} on {n_held_out} held-out items"
    if new >= old:
        return Decision(True, f"{scores}: no worse, promoted", new, old, tolerance)
    lower = f"{scores}: lower by {old - new:.3f}"
    if new >= old - tolerance:
        return Decision(True, f"{lower}, within the noise margin {tolerance:.3f}: promoted", new, old, tolerance)
    return Decision(
        False, f"{lower}, more than the noise margin {tolerance:.3f}: the current model is kept", new, old, tolerance
    )
