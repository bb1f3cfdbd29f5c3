"""A long recording through a model a window at a time: exact offsets, a cut last segment carried whole, bounds."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

import numpy as np
import pytest

from labelzoo.stitching import on_timeline, stitch_windows

SR = 16_000


def bursts_audio(bursts: list[tuple[float, float, float]], seconds: float, rate: int = SR) -> np.ndarray:
    audio = np.zeros(round(seconds * rate), dtype=np.float32)
    for start, end, level in bursts:
        audio[round(start * rate) : round(end * rate)] = level
    return audio


def fake_model(calls: list[int], rate: int = SR):
    """A stand-in for a speech model: one segment per burst of constant level, its text the level."""

    def run(audio: np.ndarray) -> list[dict]:
        calls.append(len(audio))
        edges = np.flatnonzero(np.diff(np.concatenate([[0.0], audio, [0.0]])))
        return [
            {"start": start / rate, "end": end / rate, "text": f" {audio[start]:.2f}"}
            for start, end in zip(edges[::2], edges[1::2], strict=True)
        ]

    return run


def place(segment: Mapping[str, Any], offset: float, limit: float) -> dict:
    return {**segment, "start": on_timeline(segment["start"], offset, limit),
            "end": on_timeline(segment["end"], offset, limit)}  # fmt: skip


def pieces(audio: np.ndarray, window: int):
    return (audio[i : i + window] for i in range(0, len(audio), window))


def stitch(audio: np.ndarray, window: int, calls: list[int], **options: Any) -> list[dict]:
    return stitch_windows(
        pieces(audio, window), fake_model(calls, options.get("sample_rate", SR)), window_samples=window,
        start=itemgetter("start"), place=place, **options,
    )  # fmt: skip


def test_windows_stitch_with_exact_offsets_and_carry_a_cut_segment_whole() -> None:
    bursts = [(1.0, 2.0, 0.1), (4.0, 5.5, 0.2), (9.0, 11.0, 0.3), (13.0, 14.0, 0.4), (19.5, 20.5, 0.5),
              (23.0, 24.0, 0.6)]  # fmt: skip
    audio = bursts_audio(bursts, 25.0)
    calls: list[int] = []
    window = 10 * SR
    found = stitch(audio, window, calls)
    assert [(s["start"], s["end"], s["text"]) for s in found] == [(a, b, f" {v:.2f}") for a, b, v in bursts]
    # the bursts cut at 10 s and 20 s were carried: windows 0–10 s, 9–20 s, 19.5–25 s
    assert calls == [10 * SR, 11 * SR, round(5.5 * SR)]
    assert max(calls) <= window + window // 2  # memory stays bounded: at most half a window is carried


def test_a_last_segment_far_from_the_window_end_is_not_carried() -> None:
    audio = bursts_audio([(1.0, 2.0, 0.1), (12.0, 13.0, 0.2)], 20.0)
    calls: list[int] = []
    found = stitch(audio, 10 * SR, calls)
    assert [(s["start"], s["end"]) for s in found] == [(1.0, 2.0), (12.0, 13.0)]
    assert calls == [10 * SR, 10 * SR]


def test_a_file_ending_on_a_window_boundary_transcribes_the_carried_tail() -> None:
    audio = bursts_audio([(1.0, 2.0, 0.1), (8.0, 10.0, 0.2)], 10.0)
    calls: list[int] = []
    found = stitch(audio, 10 * SR, calls)
    assert [(s["start"], s["end"]) for s in found] == [(1.0, 2.0), (8.0, 10.0)]
    assert calls == [10 * SR, 2 * SR]


def test_at_most_half_a_window_or_carry_seconds_is_carried() -> None:
    # a segment starting 6 s before the end of a 10 s window is kept cut: more than half a window
    calls: list[int] = []
    found = stitch(bursts_audio([(4.0, 12.0, 0.1)], 15.0), 10 * SR, calls)
    assert [(s["start"], s["end"]) for s in found] == [(4.0, 10.0), (10.0, 12.0)]
    assert calls == [10 * SR, 5 * SR]
    # carry_seconds bounds it below half a window: 3 s before the end of a 40 s window is too far with 2 s
    calls = []
    found = stitch(bursts_audio([(37.0, 42.0, 0.1)], 50.0), 40 * SR, calls, carry_seconds=2.0)
    assert [(s["start"], s["end"]) for s in found] == [(37.0, 40.0), (40.0, 42.0)]
    calls = []
    found = stitch(bursts_audio([(37.0, 42.0, 0.1)], 50.0), 40 * SR, calls, carry_seconds=4.0)
    assert [(s["start"], s["end"]) for s in found] == [(37.0, 42.0)]
    assert calls == [40 * SR, 13 * SR]


def test_the_sample_rate_sets_the_time_line() -> None:
    rate = 8_000
    calls: list[int] = []
    found = stitch(bursts_audio([(1.0, 2.0, 0.1), (9.0, 11.0, 0.2)], 12.0, rate), 10 * rate, calls, sample_rate=rate)
    assert [(s["start"], s["end"]) for s in found] == [(1.0, 2.0), (9.0, 11.0)]
    assert calls == [10 * rate, 3 * rate]


def test_no_audio_runs_nothing() -> None:
    calls: list[int] = []
    assert stitch(np.zeros(0, dtype=np.float32), 10 * SR, calls) == [] and calls == []


def test_a_time_on_the_file_time_line_is_clamped_to_its_window_then_shifted() -> None:
    assert on_timeline(1.23456, 600.0, 12.5) == 601.235
    assert on_timeline(31.0, 600.0, 12.5) == 612.5  # past the audio the window held
    assert on_timeline(-0.5, 10.0, 5.0) == 10.0
    assert on_timeline(np.float32(2.0), 0.0, 5.0) == pytest.approx(2.0)
