"""What one control predicted for one image, the task score from all of them, and reading Ultralytics' results.

Every kind reads the candidates of its results, maps each model class through the control's label map
(unmapped classes are dropped), keeps those at or above the control's threshold and remembers the best
one below it (the *near miss*, which scores a task that got no region). Images reach the model already
EXIF-transposed, so ``result.orig_shape`` is the natural size every percentage refers to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labelzoo.labelconfig import LabelMap

if TYPE_CHECKING:  # Ultralytics is imported after weights.prepare_ultralytics() set its environment
    from ultralytics.engine.results import Results

Region = dict[str, Any]


@dataclass
class ControlOutput:
    """What one control predicted for one image: regions, the confidence of each decision, the near miss."""

    regions: list[Region] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    near_miss: float = 0.0

    def consider(self, score: float, threshold: float) -> bool:
        """True if a candidate of this confidence is kept; otherwise it may become the near miss."""
        if score >= threshold:
            return True
        self.near_miss = max(self.near_miss, score)
        return False

    def add(self, region: Region, score: float) -> None:
        """A region that is one decision, with that decision's confidence."""
        self.regions.append(region)
        self.scores.append(score)


def task_score(outputs: list[ControlOutput]) -> float:
    """The task-level score: the mean confidence of everything predicted; with nothing predicted, the near miss.

    So a task the model found nothing in scores below every task with a prediction (a near miss is below the
    threshold, a prediction above it), the closer it came the higher, and 0 if nothing came close.
    """
    scores = [s for output in outputs for s in output.scores]
    if scores:
        return float(sum(scores) / len(scores))
    return float(max((output.near_miss for output in outputs), default=0.0))


def image_size(result: Results) -> tuple[int, int]:
    """The natural (width, height) of the image a result is for."""
    height, width = result.orig_shape[:2]
    return int(width), int(height)


def numpy(value: Any) -> np.ndarray:
    return value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)


def candidates(result: Results, attribute: str = "boxes") -> tuple[np.ndarray, np.ndarray]:
    """(confidences, class ids) of the instances in ``result.boxes`` or ``result.obb``."""
    found = getattr(result, attribute)
    if found is None or len(found) == 0:
        return np.zeros(0), np.zeros(0, int)
    return numpy(found.conf), numpy(found.cls).astype(int)


def values(result: Results, attribute: str, name: str) -> np.ndarray:
    """One array of ``result.boxes`` or ``result.obb`` (``xyxy``, ``xywhr``…), one row per instance."""
    found = getattr(result, attribute)
    return numpy(getattr(found, name)) if found is not None and len(found) else np.zeros((0, 0))


def kept(
    result: Results, labels: LabelMap, threshold: float, out: ControlOutput, attribute: str = "boxes"
) -> Iterator[tuple[int, str, float]]:
    """(index, label key, confidence) of each instance whose class maps to a label and whose confidence reaches
    the threshold; those of a mapped class below it may become ``out``'s near miss."""
    confs, classes = candidates(result, attribute)
    for i, (conf, cls) in enumerate(zip(confs, classes, strict=True)):
        label = labels.get(result.names[cls])
        if label is not None and out.consider(float(conf), threshold):
            yield i, label, float(conf)
