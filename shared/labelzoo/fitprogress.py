"""Progress of a training job that trains its parts one after the other (a model per control, say).

:attr:`FitContext.report <labelzoo.backend.FitContext>` takes the progress of the whole job, from 0 to 1.
A backend that trains several parts in turn reports each part's own progress through a :class:`PartProgress`,
which maps it into that part's share of the job (so the job's progress only grows), puts the part's name
before the message and names its metrics ``<part>.<metric>``, the way the job's final metrics name them::

    for number, control in enumerate(controls):
        progress = PartProgress(ctx.report, control.name, number, len(controls))
        progress(0.5, "epoch 3/6", {"mAP50": 0.41})  # report(0.2375, "box: epoch 3/6", **{"box.mAP50": 0.41})

A part's own progress fills :attr:`PartProgress.share` of its slot (95 % by default): what the backend does
after the part's training, such as scoring it on held-out tasks, is reported at the part's 100 % and the
next part starts above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PartProgress:
    """Part ``number`` (from 0) of ``total``, named ``name``: ``progress(fraction, message, metrics)``."""

    report: Callable[..., None]  # FitContext.report: report(progress 0..1, message, **metrics)
    name: str
    number: int
    total: int
    share: float = 0.95

    def __call__(self, fraction: float, message: str, metrics: Mapping[str, float] | None = None) -> None:
        """Report the part's progress ``fraction`` (0..1) with a message and the metrics so far."""
        self.report(
            (self.number + self.share * fraction) / self.total,
            f"{self.name}: {message}",
            **{f"{self.name}.{key}": value for key, value in (metrics or {}).items()},
        )
