"""labelzoo.metrics, detections: box and mask IoU, one-to-one matching by IoU, COCO-style AP and mAP."""

from __future__ import annotations

import numpy as np
import pytest

from labelzoo.metrics import IOU_THRESHOLDS, AveragePrecision, average_precision, box_iou, mask_iou, match_by_iou

#: the AP of a perfect ranking: COCO's 101 recall points by the trapezoidal rule, the last step falling to 0
PERFECT = 0.995


def test_box_iou_of_every_pair() -> None:
    truth = [[0, 0, 10, 10], [20, 20, 30, 30]]
    found = [[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110], [3, 3, 3, 8]]  # the last has no area
    iou = box_iou(np.array(truth), np.array(found))
    assert iou.shape == (2, 4)
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0, 0.0])
    assert iou[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert box_iou(np.zeros((0, 4)), np.array(found)).shape == (0, 4)
    assert box_iou(np.array(truth), np.zeros((0, 4))).shape == (2, 0)


def test_mask_iou_of_every_pair() -> None:
    a = np.zeros((2, 4, 4), bool)
    a[0, :2] = True  # 8 pixels
    a[1, :, :1] = True  # 4 pixels
    b = np.zeros((1, 4, 4), bool)
    b[0, :1] = True  # 4 pixels, inside a[0], sharing one with a[1]
    assert mask_iou(a, b)[:, 0].tolist() == pytest.approx([4 / 8, 1 / 7])
    assert mask_iou(np.zeros((0, 4, 4)), b).shape == (0, 1)
    assert mask_iou(np.zeros((1, 4, 4)), np.zeros((1, 4, 4))).tolist() == [[0.0]]  # two empty masks: no overlap


def test_matching_is_one_to_one_within_a_class_best_iou_first() -> None:
    iou = np.array([[0.92, 0.8, 0.7], [0.85, 0.0, 0.6]])
    right = match_by_iou(iou, np.array([0, 0]), np.array([0, 0, 1]))
    assert right.shape == (3, len(IOU_THRESHOLDS))
    # truth 0 takes prediction 0 (0.92); truth 1 wanted that one too (0.85) and overlaps no other; prediction 1
    # overlaps only truth 0, which is taken; prediction 2 is of another class
    assert right[:, 0].tolist() == [True, False, False]
    assert right[0].tolist() == [t < 0.92 for t in IOU_THRESHOLDS]  # right up to its IoU, not above
    swapped = match_by_iou(np.array([[0.9, 0.8], [0.95, 0.0]]), np.array([0, 0]), np.array([0, 0]))
    assert swapped[:, 0].tolist() == [True, True]  # truth 1 takes prediction 0 first, truth 0 then prediction 1
    assert match_by_iou(np.zeros((0, 2)), np.zeros(0, int), np.array([0, 1])).tolist() == [[False] * 10] * 2


def test_a_perfect_ranking_and_a_missed_class() -> None:
    right = np.ones((2, 10), bool)
    ap = average_precision(right, np.array([0.9, 0.8]), np.array([0, 0]), np.array([0, 0, 1]))
    assert ap.shape == (2, 10)  # classes with ground truth: 0 and 1
    assert ap[0] == pytest.approx([PERFECT] * 10)
    assert ap[1].tolist() == [0.0] * 10  # never predicted
    # a class predicted but absent from the ground truth is no row
    assert average_precision(right, np.array([0.9, 0.8]), np.array([0, 2]), np.array([0])).shape == (1, 10)


def test_a_wrong_prediction_costs_more_when_it_is_more_confident() -> None:
    right = np.array([[True], [False], [True]])
    classes = np.zeros(3, int)
    wrong_last = average_precision(right, np.array([0.9, 0.1, 0.8]), classes, np.zeros(2, int))[0, 0]
    wrong_first = average_precision(right, np.array([0.9, 0.95, 0.8]), classes, np.zeros(2, int))[0, 0]
    assert wrong_last == pytest.approx(PERFECT)  # ranked after both right ones: recall 1 at precision 1
    assert 0.5 < wrong_first < wrong_last
    half = average_precision(np.array([[True]]), np.array([0.9]), np.zeros(1, int), np.zeros(2, int))[0, 0]
    assert half == pytest.approx(0.5, abs=0.01)  # half the ground truth found, at precision 1


def test_average_precision_over_images_is_the_mean_over_classes() -> None:
    scores = AveragePrecision()
    assert scores.metrics() == {"mAP50": 0.0, "mAP50-95": 0.0}  # no image
    box = np.array([[0, 0, 10, 10]])
    scores.add(box_iou(box, box), np.array([0]), np.array([0.9]), np.array([0]))
    scores.add(np.zeros((1, 0)), np.array([1]), np.zeros(0), np.zeros(0, int))  # class 1 missed
    shifted = np.array([[0, 0, 10, 13]])  # IoU 10/13 ≈ 0.77: right at 0.50–0.75, wrong above
    scores.add(box_iou(box, shifted), np.array([0]), np.array([0.8]), np.array([0]))
    ap = scores.per_class()
    assert ap.shape == (2, 10) and ap[1].tolist() == [0.0] * 10
    assert ap[0, 0] == pytest.approx(PERFECT)
    assert ap[0, 6] < ap[0, 5]  # at 0.80 only one of the two boxes is right
    metrics = scores.metrics()
    assert metrics["mAP50"] == pytest.approx(PERFECT / 2)
    assert metrics["mAP50-95"] == pytest.approx(ap.mean())


def test_predictions_without_ground_truth_or_nothing_predicted_score_zero() -> None:
    scores = AveragePrecision()
    scores.add(np.zeros((0, 2)), np.zeros(0, int), np.array([0.9, 0.8]), np.array([0, 1]))
    assert scores.metrics() == {"mAP50": 0.0, "mAP50-95": 0.0}
    scores.add(np.zeros((3, 0)), np.array([0, 0, 1]), np.zeros(0), np.zeros(0, int))
    assert scores.metrics() == {"mAP50": 0.0, "mAP50-95": 0.0}
