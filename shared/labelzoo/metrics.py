"""Metrics to validate a model on held-out tasks: exact-match span P/R/F1, and COCO-style AP of detections.

Spans. Any backend that finds spans in text (spaCy, GLiNER, a regex tagger) measures itself the same way: a
predicted span is right only when a gold span has the same ``start``, ``end`` and label. Per text,
:func:`count_spans` counts the right ones, the wrong ones and the gold spans missed; the counts of many
texts add up (``sum(counts, SpanCounts())``), and micro precision, recall and F1 come from the total::

    total = sum((count_spans(gold, found, unknown=skipped) for gold, found, skipped in texts), SpanCounts())
    total.f1

``unknown`` ranges are characters whose labels nobody knows, such as an annotated span that was skipped
because it was malformed: a prediction that touches one is neither right nor wrong and is not counted
(spaCy's scorer treats missing annotation the same way), so a skipped annotation never makes a good
prediction look wrong.

With nothing to count the scores are 1.0: no predictions means no wrong ones (precision), no gold spans
means none missed (recall), and a model that finds nothing in texts that have nothing scores F1 1.0.

Detections (boxes, rotated boxes, masks, keypoint instances): per image, the IoU (or any similarity in
[0, 1]) of every ground-truth instance with every prediction, from :func:`box_iou`, :func:`mask_iou` or the
model's own; :class:`AveragePrecision` matches each image's predictions one to one to the ground truth of
their class (:func:`match_by_iou`, at each of COCO's IoU thresholds 0.50, 0.55 … 0.95) and gives COCO's
``mAP50`` and ``mAP50-95`` over all images, the numbers Ultralytics' validator reports::

    scores = AveragePrecision()
    for truth, found in images:
        scores.add(box_iou(truth.boxes, found.boxes), truth.classes, found.confidences, found.classes)
    scores.metrics()  # {"mAP50": …, "mAP50-95": …}

A class with ground truth that the model never predicts has AP 0, so a model that finds nothing scores 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

Span = tuple[int, int, str]  # start, end (code points, end exclusive), label


@dataclass(frozen=True)
class SpanCounts:
    """Spans predicted right, predicted wrong and missed; add counts of several texts with ``+``."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def __add__(self, other: SpanCounts) -> SpanCounts:
        return SpanCounts(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
        )

    @property
    def precision(self) -> float:
        """The share of predicted spans that are right; 1.0 without predictions."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        """The share of gold spans predicted; 1.0 without gold spans."""
        gold = self.true_positives + self.false_negatives
        return self.true_positives / gold if gold else 1.0

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall; 1.0 when there is nothing to count."""
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / total if total else 1.0


def count_spans(
    gold: Iterable[Span], predicted: Iterable[Span], *, unknown: Iterable[tuple[int, int]] = ()
) -> SpanCounts:
    """The counts for one text: ``predicted`` against ``gold`` (each span counted once), leaving out the
    predictions that are not gold spans and overlap an ``unknown`` range ``(start, end)``."""
    gaps = list(unknown)
    wanted = set(gold)
    found = {
        span for span in predicted
        if span in wanted or not any(start < span[1] and span[0] < end for start, end in gaps)
    }  # fmt: skip
    right = len(found & wanted)
    return SpanCounts(right, len(found) - right, len(wanted) - right)


# --- detections: COCO-style average precision ------------------------------------------------------------------

#: COCO's IoU thresholds, 0.50 to 0.95 in steps of 0.05: mAP50 is AP at the first, mAP50-95 the mean over all
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """IoU of every ``(x1, y1, x2, y2)`` box of ``truth`` (N, 4) with every one of ``predicted`` (M, 4): (N, M).

    Boxes without area overlap nothing (IoU 0).
    """
    a, b = np.asarray(truth, np.float64).reshape(-1, 4), np.asarray(predicted, np.float64).reshape(-1, 4)
    low, high = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    return _ratio(inter, area_a[:, None] + area_b[None, :] - inter)


def mask_iou(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """IoU of every mask of ``truth`` (N, …) with every mask of ``predicted`` (M, …), all one shape: (N, M)."""
    a, b = _flat(truth), _flat(predicted)
    inter = a @ b.T
    return _ratio(inter, a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter)


def _flat(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    return (masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:]))) > 0).astype(np.float64)


def _ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_by_iou(
    iou: np.ndarray, truth_classes: np.ndarray, predicted_classes: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS
) -> np.ndarray:
    """Which predictions of one image are right: (predictions × thresholds) flags.

    ``iou`` is (truth × predictions). At each threshold, pairs of the same class whose IoU reaches it are
    matched greedily, highest IoU first, each ground truth and each prediction at most once.
    """
    truth_classes, predicted_classes = np.asarray(truth_classes), np.asarray(predicted_classes)
    right = np.zeros((len(predicted_classes), len(thresholds)), bool)
    if not iou.size:
        return right
    iou = iou * (truth_classes[:, None] == predicted_classes[None, :])
    for t, threshold in enumerate(thresholds):
        truth_idx, pred_idx = np.nonzero(iou >= threshold)
        order = np.argsort(-iou[truth_idx, pred_idx], kind="stable")
        used_truth: set[int] = set()
        used_pred: set[int] = set()
        for g, p in zip(truth_idx[order].tolist(), pred_idx[order].tolist(), strict=True):
            if g not in used_truth and p not in used_pred:
                used_truth.add(g)
                used_pred.add(p)
                right[p, t] = True
    return right


def average_precision(
    right: np.ndarray, confidences: np.ndarray, predicted_classes: np.ndarray, truth_classes: np.ndarray
) -> np.ndarray:
    """AP of each class that has ground truth (rows, in sorted class order) at each threshold (columns).

    ``right`` holds the flags of :func:`match_by_iou` for every prediction of every image, ``truth_classes``
    the class of every ground-truth instance. A class's predictions, most confident first, trace its
    precision-recall curve; its AP is the area under the precision envelope (the best precision at that
    recall or beyond), from precision 1 at recall 0 to 0 past the last prediction's recall, by the
    trapezoidal rule on 101 recall points (COCO's sampling, as Ultralytics computes it).
    """
    order = np.argsort(-np.asarray(confidences, np.float64), kind="stable")
    right, predicted_classes = np.asarray(right, bool)[order], np.asarray(predicted_classes)[order]
    classes, counts = np.unique(np.asarray(truth_classes), return_counts=True)
    ap = np.zeros((len(classes), right.shape[1]))
    for row, (cls, n_truth) in enumerate(zip(classes, counts, strict=True)):
        hits = right[predicted_classes == cls]
        if not len(hits):
            continue  # never predicted: AP 0
        found = np.cumsum(hits, axis=0)
        recall = found / n_truth
        precision = found / np.arange(1, len(hits) + 1)[:, None]
        for t in range(right.shape[1]):
            ap[row, t] = _envelope_area(recall[:, t], precision[:, t])
    return ap


def _envelope_area(recall: np.ndarray, precision: np.ndarray) -> float:
    recall = np.concatenate(([0.0], recall, [recall[-1], 1.0]))
    envelope = np.maximum.accumulate(np.concatenate(([1.0], precision, [0.0, 0.0]))[::-1])[::-1]
    sampled = np.interp(_RECALL_POINTS, recall, envelope)
    return float(np.sum((sampled[1:] + sampled[:-1]) * np.diff(_RECALL_POINTS)) / 2)


@dataclass
class AveragePrecision:
    """COCO-style mAP over many images; see the module docstring."""

    _right: list[np.ndarray] = field(default_factory=list)
    _confidences: list[np.ndarray] = field(default_factory=list)
    _predicted: list[np.ndarray] = field(default_factory=list)
    _truth: list[np.ndarray] = field(default_factory=list)

    def add(
        self, iou: np.ndarray, truth_classes: np.ndarray, confidences: np.ndarray, predicted_classes: np.ndarray
    ) -> None:
        """One image: ``iou`` (truth × predictions), the class of each ground truth and each prediction, and
        each prediction's confidence."""
        truth_classes, predicted_classes = np.asarray(truth_classes, int), np.asarray(predicted_classes, int)
        iou = np.asarray(iou, np.float64).reshape(len(truth_classes), len(predicted_classes))
        self._right.append(match_by_iou(iou, truth_classes, predicted_classes))
        self._confidences.append(np.asarray(confidences, np.float64).reshape(-1))
        self._predicted.append(predicted_classes)
        self._truth.append(truth_classes)

    def per_class(self) -> np.ndarray:
        """AP (classes with ground truth × IoU thresholds), as :func:`average_precision` gives it."""
        if not self._truth:
            return np.zeros((0, len(IOU_THRESHOLDS)))
        return average_precision(
            np.concatenate(self._right), np.concatenate(self._confidences), np.concatenate(self._predicted),
            np.concatenate(self._truth),
        )  # fmt: skip

    def metrics(self) -> dict[str, float]:
        """``mAP50`` and ``mAP50-95``, means over the classes with ground truth; 0 without any."""
        ap = self.per_class()
        if not ap.size:
            return {"mAP50": 0.0, "mAP50-95": 0.0}
        return {"mAP50": float(ap[:, 0].mean()), "mAP50-95": float(ap.mean())}
