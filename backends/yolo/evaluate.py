"""Score a model on the held-out images the way a user sees it: through the control's label mapping.

The current model and the newly trained one are measured with the same code on the same images, so a
base model whose classes map onto the config (``person`` → ``Person``) competes fairly with a
fine-tuned one, and a base model that maps nothing scores 0.

Instance kinds give COCO-style ``mAP50`` and ``mAP50-95`` (:class:`labelzoo.metrics.AveragePrecision`),
each comparing instances its own way (box IoU, rotated-box probabilistic IoU, mask IoU, keypoint OKS);
classification gives ``top1`` accuracy. A kind's ``metric`` names the one that decides promotion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from labelzoo.images import open_array
from labelzoo.labelconfig import ControlTag, build_label_map
from labelzoo.metrics import AveragePrecision

from .outputs import candidates

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

    from .config import YoloOptions
    from .dataset import Dataset, Sample
    from .weights import YoloModel

EVAL_CONF = 0.01  # low, as mAP integrates over every confidence level

#: ``compare(truth rows, result, kept, size)``: the IoU (truth × kept predictions) on one image of natural ``size``;
#: ``kept`` flags the result's instances that take part, a truth row is a label line's numbers
Compare = Callable[[list[np.ndarray], "Results", np.ndarray, tuple[int, int]], np.ndarray]


def predictions(model: YoloModel, samples: Sequence[Sample], options: YoloOptions) -> Iterator[tuple[Sample, Results]]:
    """Each sample with the model's result for its image, ``YOLO_BATCH`` images per forward pass."""
    for start in range(0, len(samples), options.chunk):
        chunk = samples[start : start + options.chunk]
        images = [open_array(s.image, max_pixels=options.max_pixels, bgr=True) for s in chunk]
        yield from zip(chunk, model.predict(images, conf=EVAL_CONF, options=options), strict=True)


def truth_rows(sample: Sample) -> list[np.ndarray]:
    """The numbers of each of the sample's label lines."""
    return [np.array(line.split(), dtype=np.float64) for line in sample.lines]


def mean_average_precision(
    model: YoloModel, control: ControlTag, dataset: Dataset, options: YoloOptions, *, compare: Compare,
    instances: str, class_agnostic: bool,
) -> dict[str, float]:
    """``mAP50`` and ``mAP50-95`` of the model's instances (its results' ``instances``: boxes or obb) on
    ``dataset.val``, compared by ``compare``, their classes mapped through the control's labels onto the
    dataset's (classes that map to none take no part); ``class_agnostic`` (pose) ignores classes."""
    labels = build_label_map(control, model.names)
    index = {key: i for i, key in enumerate(dataset.classes)}
    class_of = {cls: index[labels.get(name)] for cls, name in model.names.items() if labels.get(name) in index}
    scores = AveragePrecision()
    for sample, result in predictions(model, dataset.val, options):
        rows = truth_rows(sample)
        conf, cls = candidates(result, instances)
        if class_agnostic:
            keep = np.ones(len(conf), bool)
            pred_cls, gt_cls = np.zeros(len(conf), int), np.zeros(len(rows), int)
        else:
            keep = np.array([c in class_of for c in cls], bool)
            pred_cls = np.array([class_of[c] for c in cls[keep]], int)
            gt_cls = np.array([int(r[0]) for r in rows], int)
        scores.add(compare(rows, result, keep, sample.size), gt_cls, conf[keep], pred_cls)
    return scores.metrics()
