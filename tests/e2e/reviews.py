"""Tiny, clearly separable review texts for the template backend's end-to-end tests."""

from __future__ import annotations

from typing import Any

GOOD = ("great", "wonderful", "excellent")
BAD = ("awful", "terrible", "dreadful")
THINGS = ("film", "hotel", "meal", "book")


def review(i: int) -> tuple[str, str]:
    """The i-th review and its sentiment: even i negative, odd i positive; every word recurs often."""
    positive = i % 2 == 1
    words = GOOD if positive else BAD
    text = f"The {THINGS[i % len(THINGS)]} was {words[i % 3]}, really {words[(i + 1) % 3]}."
    return text, "Positive" if positive else "Negative"


def sentiment(choice: str) -> list[dict[str, Any]]:
    """An annotation result choosing ``choice`` in the template's label config."""
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]


def chosen(prediction: dict[str, Any]) -> str:
    return str(prediction["result"][0]["value"]["choices"][0])
