"""Fixtures for the image tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.images.podman import Container, Volume


@pytest.fixture
def started() -> Iterator[Any]:
    """``started(image, volume, **env)`` → a running Container; all are removed at the end, with their volumes."""
    made: list[Container | Volume] = []

    def start(image: str, volume: Volume | None = None, **env: str) -> tuple[Container, Volume]:
        if volume is None:
            volume = Volume()
            made.append(volume)
        container = Container(image, volume, **env)
        made.insert(0, container)
        return container, volume

    yield start
    for thing in made:
        thing.remove()
