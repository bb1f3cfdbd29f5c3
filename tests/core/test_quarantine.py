"""A version whose files cannot load is quarantined: its project is served by the nearest servable ancestor,
``/setup`` and ``/versions`` say why, training goes on from that ancestor, and a failure that may pass (out
of memory) never sets good weights aside.

The HTTP tests train a real version with the stepper backend (its ``load()`` reads ``weights.json``),
truncate that file, and start a new runtime on the same ``MODEL_DIR``, as a restart would.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labelzoo.training.manifest import damage, manifest
from labelzoo.training.quarantine import blame_files
from labelzoo.training.versions import VersionRecord
from tests.core.training_support import (  # noqa: F401
    BASE,
    CONFIG,
    STEPPER,
    created,
    make_settings,
    services_fixture,
    start_training,
    wait_for,
)

PROJECT = "12.1718900000"  # Label Studio's "<id>.<created_at>" project key
PREDICT = {"tasks": [{"id": 1, "data": {"text": "a cat"}}], "project": PROJECT, "label_config": CONFIG}
SETUP = {"project": PROJECT, "schema": CONFIG, "extra_params": None}


def runtime_client(make_runtime: Callable[..., Any], **env: str) -> tuple[Any, Any]:
    from labelzoo.server.app import create_app

    runtime = make_runtime(STEPPER, **env)
    return runtime, create_app(runtime).test_client()


def train_over_http(client: Any, runtime: Any, *annotations: tuple[int, int, str]) -> dict[str, Any]:
    for ann_id, task_id, label in annotations:
        assert client.post("/webhook", json=created(ann_id, task_id, label)).status_code == 201
    answer = client.post("/webhook", json=start_training())
    assert answer.status_code == 201, answer.json
    job_id = answer.json["job"]
    return wait_for(lambda: (job := runtime.training.job(job_id))["status"] in ("succeeded", "failed", "skipped")
                    and job, 30, f"job {job_id}")


def versions(client: Any) -> dict[str, dict[str, Any]]:
    answer = client.get("/versions", query_string={"project": "12"})
    assert answer.status_code == 200, answer.json
    return {v["version"]: v for v in answer.json["versions"]}


def truncate(path: Path) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])
    return original


def test_a_truncated_version_is_quarantined_served_by_its_ancestor_and_trained_past(
    make_runtime: Callable[..., Any],
) -> None:
    first, client = runtime_client(make_runtime)
    v1 = train_over_http(client, first, (1, 10, "cat"), (2, 11, "dog"))
    assert v1["status"] == "succeeded", v1
    v1 = v1["version"]
    assert client.post("/predict", json=PREDICT).json["model_version"] == v1
    weights = first.training.version_dir("12", v1) / "weights.json"
    truncate(weights)

    restarted, client = runtime_client(make_runtime)  # a new process: v1 is loaded from disk on first use
    answer = client.post("/predict", json=PREDICT)
    assert answer.status_code == 200, answer.json  # not 503: the first request already gets the fallback
    assert answer.json["model_version"] == BASE and "result" in answer.json["results"][0]

    setup = client.post("/setup", json=SETUP).json
    assert setup["model_version"] == BASE
    assert re.search(rf"model version {v1} is quarantined: weights.json has \d+ bytes, training wrote \d+ "
                     r"\(JSONDecodeError: .*\); serving the base model instead", setup["warnings"][0]), setup
    listed = versions(client)
    assert listed[v1]["quarantined"]["reason"].startswith("weights.json has ") and listed[v1]["quarantined"]["since"]
    assert not listed[v1]["usable"] and not listed[v1]["current"] and listed[BASE]["current"]
    assert not listed[v1]["loaded"] and "model" not in listed[v1]  # its load failed: nothing of it is in memory
    assert listed[BASE]["loaded"] and listed[BASE]["model"] == {}  # the template says nothing more of itself
    assert restarted.health()["status"] == "UP"  # the base model is fine: only the project's version is set aside

    _, client = runtime_client(make_runtime)  # the quarantine is in the store: no failed load needed again
    assert client.post("/setup", json=SETUP).json["model_version"] == BASE
    assert versions(client)[v1]["quarantined"]

    job = train_over_http(client, restarted, (3, 12, "cat"))  # same parent (the base) as v1, other examples
    assert job["status"] == "succeeded" and job["parent_version"] == BASE, job
    weights_v2 = json.loads((restarted.training.version_dir("12", job["version"]) / "weights.json").read_text())
    assert weights_v2["parent"] is None  # fit() started from the base model, not from the broken files
    assert client.post("/predict", json=PREDICT).json["model_version"] == job["version"]
    assert client.post("/setup", json=SETUP).json["warnings"] == []
    assert versions(client)[job["version"]]["loaded"]


def test_retraining_on_the_same_annotations_gets_a_new_name_beside_the_quarantined_one(
    make_runtime: Callable[..., Any],
) -> None:
    first, client = runtime_client(make_runtime)
    v1 = train_over_http(client, first, (1, 10, "cat"))["version"]
    truncate(first.training.version_dir("12", v1) / "weights.json")
    runtime, client = runtime_client(make_runtime)
    assert client.post("/predict", json=PREDICT).json["model_version"] == BASE

    again = train_over_http(client, runtime)  # the same annotations from the same parent: v1's name is taken
    assert again["status"] == "succeeded", again
    assert again["version"] != v1 and re.fullmatch(r"stepper-base-p12-v1-[0-9a-f]{6}", again["version"])
    assert client.post("/predict", json=PREDICT).json["model_version"] == again["version"]
    assert versions(client)[v1]["quarantined"] and versions(client)[again["version"]]["current"]


def test_a_pin_to_a_quarantined_version_gets_its_ancestor_and_restored_files_lift_it(
    make_runtime: Callable[..., Any],
) -> None:
    first, client = runtime_client(make_runtime)
    v1 = train_over_http(client, first, (1, 10, "cat"))["version"]
    v2 = train_over_http(client, first, (2, 11, "dog"))["version"]
    original = truncate(first.training.version_dir("12", v1) / "weights.json")

    _, client = runtime_client(make_runtime)
    pinned = client.post("/setup", json={**SETUP, "extra_params": {"model_version": v1}}).json
    assert pinned["model_version"] == v1  # not loaded yet: nothing is known against it
    assert client.post("/predict", json=PREDICT).json["model_version"] == BASE
    pinned = client.post("/setup", json={**SETUP, "extra_params": {"model_version": v1}}).json
    assert pinned["model_version"] == BASE
    assert pinned["warnings"][0].startswith(f"model version {v1} (pinned by extra_params.model_version) is "
                                            "quarantined: weights.json has ")
    assert versions(client)[v1]["pinned"] == "extra_params"

    (first.training.version_dir("12", v1) / "weights.json").write_bytes(original)  # restored from a backup
    assert client.post("/setup", json={**SETUP, "extra_params": {"model_version": v1}}).json["warnings"] == []
    assert client.post("/predict", json=PREDICT).json["model_version"] == v1
    assert versions(client)[v1]["quarantined"] is None
    unpinned = client.post("/setup", json={**SETUP, "extra_params": {"model_version": None}}).json
    assert unpinned["model_version"] == v2


def test_a_quarantined_version_gives_way_to_its_nearest_servable_ancestor(
    make_runtime: Callable[..., Any],
) -> None:
    first, client = runtime_client(make_runtime)
    v1 = train_over_http(client, first, (1, 10, "cat"))["version"]
    v2 = train_over_http(client, first, (2, 11, "dog"))["version"]
    truncate(first.training.version_dir("12", v2) / "weights.json")

    _, client = runtime_client(make_runtime)
    assert client.post("/predict", json=PREDICT).json["model_version"] == v1
    setup = client.post("/setup", json=SETUP).json
    assert setup["model_version"] == v1
    assert setup["warnings"][0].startswith(f"model version {v2} is quarantined: ")
    assert setup["warnings"][0].endswith(f"serving its ancestor {v1} instead")

    shutil.rmtree(first.training.version_dir("12", v1))  # a folder deleted by hand: passed over while missing
    assert client.post("/predict", json=PREDICT).json["model_version"] == BASE
    warnings = client.post("/setup", json=SETUP).json["warnings"]
    assert warnings[1] == (f"its ancestor {v1} is quarantined too: its folder "
                           f"{first.training.model_dir / '12' / v1} is missing")
    assert versions(client)[v1]["quarantined"] == {
        "reason": f"its folder {first.training.model_dir / '12' / v1} is missing", "since": None}


def test_a_failure_that_may_pass_is_not_quarantined(make_runtime: Callable[..., Any]) -> None:
    first, client = runtime_client(make_runtime)
    v1 = train_over_http(client, first, (1, 10, "cat"))["version"]

    _, client = runtime_client(make_runtime, STEPPER_LOAD_OOM="true")  # this process is short of memory
    for _ in range(2):  # retried on each request, and still never blamed on the files
        answer = client.post("/predict", json=PREDICT)
        assert answer.status_code == 503 and "failed to load: MemoryError" in answer.json["message"], answer.json
    assert versions(client)[v1]["quarantined"] is None
    assert client.post("/setup", json=SETUP).json["model_version"] == v1

    _, client = runtime_client(make_runtime)  # memory to spare again: the same weights serve
    assert client.post("/predict", json=PREDICT).json["model_version"] == v1


# ---- which failures blame the files ------------------------------------------------------------------------


def test_the_manifest_finds_missing_truncated_and_changed_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "model.bin").write_bytes(b"w" * 100)
    (tmp_path / "sub" / "vocab.txt").write_text("cat dog")
    files = manifest(tmp_path)
    assert set(files) == {"model.bin", "sub/vocab.txt"} and damage(tmp_path, files) is None
    (tmp_path / "cache.tmp").write_text("written by load()")  # files added later do not count
    assert damage(tmp_path, files) is None
    (tmp_path / "model.bin").write_bytes(b"x" * 100)
    assert damage(tmp_path, files) == "model.bin is not what training wrote (its SHA-256 differs)"
    (tmp_path / "model.bin").write_bytes(b"w" * 40)
    assert damage(tmp_path, files) == "model.bin has 40 bytes, training wrote 100"
    (tmp_path / "sub" / "vocab.txt").unlink()
    assert damage(tmp_path, files) == "model.bin has 40 bytes, training wrote 100"
    (tmp_path / "model.bin").write_bytes(b"w" * 100)
    assert damage(tmp_path, files) == "sub/vocab.txt is missing"


def _raised(make: Callable[[], object]) -> BaseException:
    try:
        make()
    except BaseException as exc:  # the error is the subject of the test
        return exc
    raise AssertionError("did not raise")


def _wrapped(inner: BaseException) -> BaseException:
    """A backend's own error, raised from the decoder's."""
    try:
        try:
            raise inner
        except EOFError as exc:
            raise RuntimeError("could not load the checkpoint") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "blamed"),
    [
        (lambda folder: _raised(lambda: json.loads('{"w": [1, 2')), "a file cannot be decoded (JSONDecodeError)"),
        (lambda folder: _raised(lambda: pickle.loads(b"\x80\x04\x95")), "a file cannot be decoded"),
        (lambda folder: RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central "
                                     "directory"), "a file is damaged"),
        (lambda folder: _raised(lambda: (folder / "model.pt").read_bytes()), "/model.pt cannot be opened"),
        (lambda folder: _wrapped(EOFError("Ran out of input")), "a file cannot be decoded (EOFError)"),
        (lambda folder: _raised(lambda: Path("/nonexistent/base.pt").read_bytes()), None),  # not the version's
        (lambda folder: MemoryError("cannot allocate"), None),
        (lambda folder: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), None),
        (lambda folder: ModuleNotFoundError("No module named 'ultralytics'"), None),
        (lambda folder: KeyError("model.22.dfl.conv.weight"), None),
    ],
    ids=["json", "pickle", "torch-zip", "missing-file", "wrapped-eof", "file-elsewhere", "memory", "cuda-oom",
         "dependency", "bug"],
)
def test_without_a_manifest_the_error_decides(tmp_path: Path, error: Callable[[Path], BaseException],
                                               blamed: str | None) -> None:
    found = blame_files(error(tmp_path), tmp_path, None)
    assert found is None if blamed is None else found is not None and blamed in found, found


def test_with_a_manifest_broken_files_are_blamed_whatever_the_error(tmp_path: Path) -> None:
    (tmp_path / "weights.json").write_text('{"w": [1, 2, 3]}')
    files = manifest(tmp_path)
    oom = MemoryError("cannot allocate")
    assert blame_files(oom, tmp_path, files) is None  # intact files: out of memory is not their fault
    (tmp_path / "weights.json").write_text('{"w": [1')
    assert blame_files(oom, tmp_path, files) == "weights.json has 8 bytes, training wrote 16"


def test_a_version_promoted_before_manifests_is_judged_by_its_error(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    staging = service.model_dir / "12" / ".staging-x"
    staging.mkdir(parents=True)
    (staging / "weights.json").write_text("{")
    record = VersionRecord(project="12", version="stepper-base-p12-v1-aaaaaa", base=BASE, parent=BASE,
                           generation=1, job_id=None, examples=1)  # no files: as labelzoo before this change
    service.versions_store.promote(staging, record, claim=lambda conn: True)
    assert service.current_version("12") == record.version
    service.load_failed("12", record.version, MemoryError("cannot allocate"))
    assert service.current_version("12") == record.version
    service.load_failed("12", record.version, _raised(lambda: json.loads("{")))
    assert service.current_version("12") == BASE
    assert service.versions("12")[0]["quarantined"]["reason"].startswith("a file cannot be decoded (JSONDecodeError")
