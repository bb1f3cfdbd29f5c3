"""Ultralytics' environment defaults: set where missing, never over what the operator chose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labelzoo.ultralytics_env import DEFAULTS, quiet_ultralytics


def test_the_defaults_fill_only_what_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*DEFAULTS, "YOLO_CONFIG_DIR"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("YOLO_VERBOSE", "true")
    quiet_ultralytics(tmp_path / "ultralytics")
    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "false"
    assert os.environ["YOLO_VERBOSE"] == "true"  # the operator's
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path / "ultralytics")
