"""labelzoo.metrics: exact-match precision, recall and F1 of labelled spans, micro-summed over texts, with
unknown ranges where predictions count neither way."""

from __future__ import annotations

import pytest

from labelzoo.metrics import SpanCounts, count_spans


def test_only_exact_spans_with_the_same_label_are_right() -> None:
    gold = [(0, 12, "Person"), (22, 28, "City"), (40, 46, "Org")]
    predicted = [(0, 12, "Person"), (22, 28, "Person"), (40, 45, "Org"), (50, 55, "City")]
    counts = count_spans(gold, predicted)
    assert counts == SpanCounts(true_positives=1, false_positives=3, false_negatives=2)
    assert counts.precision == pytest.approx(1 / 4) and counts.recall == pytest.approx(1 / 3)
    assert counts.f1 == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))


def test_counts_add_up_over_texts_into_micro_scores() -> None:
    texts = [
        ([(0, 4, "A")], [(0, 4, "A")]),
        ([(0, 4, "A"), (5, 9, "B")], [(0, 4, "A")]),
        ([], [(1, 2, "A"), (1, 2, "A")]),  # a span predicted twice counts once
    ]
    total = sum((count_spans(gold, found) for gold, found in texts), SpanCounts())
    assert total == SpanCounts(2, 1, 1)
    assert total.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_nothing_to_count_scores_one_and_finding_nothing_scores_zero() -> None:
    empty = count_spans([], [])
    assert (empty.precision, empty.recall, empty.f1) == (1.0, 1.0, 1.0)
    missed = count_spans([(0, 3, "A")], [])
    assert (missed.precision, missed.recall, missed.f1) == (1.0, 0.0, 0.0)
    invented = count_spans([], [(0, 3, "A")])
    assert (invented.precision, invented.recall, invented.f1) == (0.0, 1.0, 0.0)


def test_predictions_touching_unknown_ranges_count_neither_way() -> None:
    gold = [(0, 4, "A")]
    predicted = [(0, 4, "A"), (10, 14, "B"), (12, 20, "B"), (20, 24, "B"), (30, 34, "B")]
    counts = count_spans(gold, predicted, unknown=[(14, 20)])
    # (10, 14) ends where the unknown range starts and (20, 24) starts where it ends: both counted wrong;
    # (12, 20) overlaps it: left out
    assert counts == SpanCounts(1, 3, 0)
    # a gold span is right even where the caller also says its characters are unknown
    assert count_spans(gold, [(0, 4, "A")], unknown=[(0, 10)]) == SpanCounts(1, 0, 0)
    # but a gold span no prediction found is still missed
    assert count_spans(gold, [(0, 2, "A")], unknown=[(0, 2)]) == SpanCounts(0, 0, 1)
