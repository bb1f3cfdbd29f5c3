"""labelzoo.acceleration: exports built once by content, and the background switch that only takes an agreeing one."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from labelzoo.acceleration import EngineSwitch, Inconclusive, cached_build, content_key


def test_the_content_key_follows_the_bytes_not_the_path(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    a.write_bytes(b"weights")
    b.write_bytes(b"weights")
    c.write_bytes(b"other weights")
    assert content_key(a) == content_key(b) != content_key(c)
    assert len(content_key(a)) == 16


def test_a_folder_is_built_once_and_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(scratch: Path) -> None:
        builds.append(scratch)
        (scratch / "model.xml").write_text("network")

    folder, built = cached_build(tmp_path / "cache" / "key-openvino", build)
    assert built and (folder / "model.xml").read_text() == "network"
    assert cached_build(folder, build) == (folder, False) and len(builds) == 1

    def fail(scratch: Path) -> None:
        (scratch / "half-written").write_text("")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        cached_build(tmp_path / "cache" / "other", fail)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["key-openvino"]


def test_a_second_build_of_the_same_folder_waits_for_the_first_instead_of_building_again(tmp_path: Path) -> None:
    builds: list[str] = []
    started = threading.Event()

    def slow(scratch: Path) -> None:  # e.g. a model conversion in one server worker
        builds.append("slow")
        started.set()
        time.sleep(0.3)
        (scratch / "model.bin").write_text("first")

    def fast(scratch: Path) -> None:
        builds.append("fast")
        (scratch / "model.bin").write_text("second")

    folder = tmp_path / "cache" / "key-ctranslate2"
    first = threading.Thread(target=cached_build, args=(folder, slow))
    first.start()
    assert started.wait(5)
    assert cached_build(folder, fast) == (folder, False)  # waited, then found the first one's folder
    first.join()
    assert builds == ["slow"] and (folder / "model.bin").read_text() == "first"


def test_a_build_that_reconfigures_the_root_logger_leaves_it_as_it_was(tmp_path: Path) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def build(scratch: Path) -> None:  # what OpenVINO's converter does
        root.setLevel(logging.ERROR)
        root.addHandler(logging.StreamHandler())

    cached_build(tmp_path / "export", build)
    assert root.level == level and root.handlers == handlers


def settle(switch: EngineSwitch[str]) -> dict:
    deadline = time.monotonic() + 5
    while switch.status()["state"] == "preparing" and time.monotonic() < deadline:
        time.sleep(0.01)
    return switch.status()


def test_the_first_candidate_that_agrees_serves_and_the_refused_ones_are_named() -> None:
    served: list[tuple[str, str]] = []
    switch = EngineSwitch(
        "det.pt", "torch", [("fast", lambda: "bf16"), ("exact", lambda: "f32")],
        verify=lambda candidate: None if candidate == "f32" else "boxes moved",
        switch=lambda name, candidate: served.append((name, candidate)),
    ).start()  # fmt: skip
    status = settle(switch)
    assert served == [("exact", "f32")] and status["engine"] == "exact" and status["state"] == "switched"
    assert status["refused"] == ["fast: boxes moved"] and switch.reason is None


def test_when_every_candidate_fails_or_disagrees_the_original_stays_and_says_why() -> None:
    def broken() -> str:
        raise OSError("disk full")

    switch = EngineSwitch(
        "det.pt", "torch", [("fast", lambda: "bf16"), ("exact", broken)],
        verify=lambda candidate: "boxes moved", switch=lambda name, candidate: pytest.fail("switched"),
    ).start()  # fmt: skip
    status = settle(switch)
    assert status["engine"] == "torch" and status["state"] == "kept"
    assert switch.reason == "det.pt stays on torch: fast: boxes moved; exact: it failed: OSError: disk full"


def test_a_check_with_nothing_to_compare_waits_and_a_retry_switches() -> None:
    evidence: list[str] = []
    served: list[str] = []

    def verify(candidate: str) -> str | None:
        if not evidence:
            raise Inconclusive("nothing found on the check images")
        return None

    switch = EngineSwitch("det.pt", "torch", [("fast", lambda: "bf16")], verify=verify,
                          switch=lambda name, candidate: served.append(name)).start()  # fmt: skip
    status = settle(switch)
    assert status["state"] == "waiting" and status["waiting_for"] == "nothing found on the check images"
    assert status["engine"] == "torch" and served == [] and switch.reason is None
    evidence.append("an image the model found something on")
    assert switch.retry() is True
    assert settle(switch)["state"] == "switched" and served == ["fast"]
    assert switch.retry() is False  # nothing to retry once switched
