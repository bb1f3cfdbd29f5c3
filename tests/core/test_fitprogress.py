"""labelzoo.fitprogress: each part of a training job reports into its own share of the job's progress."""

from __future__ import annotations

import pytest

from labelzoo.fitprogress import PartProgress


def test_parts_fill_their_share_in_turn_with_named_messages_and_metrics() -> None:
    reports: list[tuple[float, str, dict[str, float]]] = []

    def report(progress: float, message: str = "", **metrics: float) -> None:
        reports.append((progress, message, metrics))

    for number, name in enumerate(("box", "colour")):
        part = PartProgress(report, name, number, 2)
        part(0.0, "starting")
        part(0.5, "epoch 1/2", {"mAP50": 0.4})
        part(1.0, "scoring")
    assert [p for p, _, _ in reports] == pytest.approx([0.0, 0.2375, 0.475, 0.5, 0.7375, 0.975])
    assert [m for _, m, _ in reports][:2] == ["box: starting", "box: epoch 1/2"]
    assert reports[1][2] == {"box.mAP50": 0.4} and reports[4][2] == {"colour.mAP50": 0.4}
    assert reports[0][2] == {}


def test_the_share_of_a_part_can_be_all_of_its_slot() -> None:
    seen: list[float] = []
    PartProgress(lambda progress, message="", **metrics: seen.append(progress), "only", 0, 1, share=1.0)(1.0, "done")
    assert seen == [1.0]
