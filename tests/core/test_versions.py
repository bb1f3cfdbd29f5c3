"""Model versions: deterministic names, atomic promotion, pins, listing, and every process seeing them."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from labelzoo.errors import BadRequest, LabelzooError
from labelzoo.training import TrainingService, fingerprint, version_name
from labelzoo.training.supervisor import Outcome
from labelzoo.training.versions import VersionRecord
from tests.core.training_support import (  # noqa: F401 - services_fixture
    BASE,
    created,
    make_settings,
    python,
    services_fixture,
    train,
    wait_job,
)

NAME = re.compile(r"stepper-base-p12-v(\d+)-[0-9a-f]{6}")


def fake_version(service: TrainingService, version: str, parent: str = BASE, project: str = "12") -> Path:
    """Promote a hand-made staging folder (no training), as the runner would."""
    staging = service.model_dir / project / f".staging-{version}"
    staging.mkdir(parents=True)
    (staging / "weights.json").write_text(json.dumps({"version": version}))
    record = VersionRecord(
        project=project, version=version, base=BASE, parent=parent, generation=1, job_id=None, examples=1
    )
    final = service.versions_store.promote(staging, record, claim=lambda conn: True)
    assert final is not None
    return final


def test_names_are_deterministic_and_documented() -> None:
    fp = fingerprint("yolo11n", [(2, "2025-06-02T00:00:00.000000Z"), (1, "2025-06-01T00:00:00.000000Z")])
    assert fp == fingerprint(
        "yolo11n", [(1, "2025-06-01T00:00:00.000000Z"), (2, "2025-06-02T00:00:00.000000Z")]
    )
    assert fp != fingerprint(
        "yolo11n-p12-v1-abcdef", [(1, "2025-06-01T00:00:00.000000Z"), (2, "2025-06-02T00:00:00.000000Z")]
    )
    assert fp != fingerprint(
        "yolo11n", [(1, "2025-06-01T00:00:00.000000Z"), (2, "2025-06-03T00:00:00.000000Z")]
    )
    assert re.fullmatch(r"yolo11n-p12-v3-[0-9a-f]{6}", version_name("yolo11n", "12", 3, fp))
    assert version_name("org/model v2", "7", 1, "abcdef") == "org_model_v2-p7-v1-abcdef"


def test_training_names_versions_from_parent_and_annotations(tmp_path: Path, services: Any) -> None:
    one = services(make_settings(tmp_path / "a"))
    two = services(make_settings(tmp_path / "b"))
    first = train(one, (1, 10, "cat"), (2, 11, "dog"))
    again = train(two, (1, 10, "cat"), (2, 11, "dog"))  # another server, same data: same name
    assert first["status"] == again["status"] == "succeeded", (first, again)
    assert first["version"] == again["version"]
    assert NAME.fullmatch(first["version"]).group(1) == "1"
    assert one.current_version("12.1718900000") == first["version"]
    weights = json.loads((one.version_dir("12", first["version"]) / "weights.json").read_text())
    assert weights["examples"] == [1, 2] and weights["parent"] is None

    second = train(one, (3, 12, "cat"))
    assert NAME.fullmatch(second["version"]).group(1) == "2"
    assert second["parent_version"] == first["version"]
    weights = json.loads((one.version_dir("12", second["version"]) / "weights.json").read_text())
    assert weights["parent"]["examples"] == [1, 2]  # fit() started from the previous version's weights
    assert [v["version"] for v in one.versions("12")] == [second["version"], first["version"], BASE]

    unchanged = wait_job(one, one.handle_event({"action": "START_TRAINING", "project": {"id": 12}})["job"])
    # retrained from v2 on the same annotations: a new name (the parent differs), never a clash
    assert unchanged["status"] == "succeeded" and unchanged["version"] not in (
        first["version"],
        second["version"],
    )


def test_promotion_is_atomic(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    v1 = fake_version(service, "stepper-base-p12-v1-aaaaaa")
    assert (
        service.current_version("12") == v1.name
        and not (v1.parent / ".staging-stepper-base-p12-v1-aaaaaa").exists()
    )

    # the closing of the job fails: the folder goes back to staging and no row appears
    staging = service.model_dir / "12" / ".staging-x"
    staging.mkdir()
    record = VersionRecord(
        project="12",
        version="stepper-base-p12-v2-bbbbbb",
        base=BASE,
        parent=v1.name,
        generation=2,
        job_id=None,
        examples=1,
    )

    def broken(conn: object) -> bool:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        service.versions_store.promote(staging, record, claim=broken)
    assert staging.is_dir() and not (staging.parent / record.version).exists()
    assert service.current_version("12") == v1.name

    # a job another process finished already: nothing moves
    assert service.versions_store.promote(staging, record, claim=lambda conn: False) is None
    assert staging.is_dir()
    # an existing version is never overwritten
    with pytest.raises(LabelzooError, match="already"):
        service.versions_store.promote(
            staging, VersionRecord(**{**record.__dict__, "version": v1.name}), claim=lambda conn: True
        )
    assert json.loads((v1 / "weights.json").read_text()) == {"version": v1.name}


def test_recover_deletes_half_written_versions(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    v1 = fake_version(service, "stepper-base-p12-v1-aaaaaa")
    crashed_in_rename = v1.parent / "stepper-base-p12-v2-cccccc"  # renamed, but its row was never committed
    crashed_in_rename.mkdir()
    crashed_in_training = v1.parent / ".staging-0123456789ab"
    (crashed_in_training / "sub").mkdir(parents=True)
    unrelated = v1.parent / "notes"
    unrelated.mkdir()
    service.recover()
    assert not crashed_in_rename.exists() and not crashed_in_training.exists()
    assert unrelated.exists() and v1.exists()
    assert service.current_version("12") == v1.name
    assert [v["version"] for v in service.versions("12")] == [v1.name, BASE]


def test_a_version_records_the_tasks_it_learnt_from_less_those_it_held_out(tmp_path: Path, services: Any) -> None:
    first = services(make_settings(tmp_path, STEPPER_HELD_OUT="12,13"))
    v1 = train(first, (1, 10, "cat"), (2, 11, "dog"), (3, 12, "cat"), (4, 13, "dog"))["version"]
    assert first.versions_store.get("12", v1).trained_on == (10, 11)
    assert first.trained_on("12", v1) == frozenset({10, 11})
    first.close()

    # the next version holds out a task v1 learnt from: it still counts, v2 keeps or fine-tunes v1's model
    second = services(make_settings(tmp_path, STEPPER_HELD_OUT="10,14"))
    job = train(second, (5, 14, "cat"))
    v2 = job["version"]
    assert job["parent_version"] == v1 and job["examples"] == 5
    assert second.trained_on("12", v2) == frozenset({10, 11, 12, 13})  # {11, 12, 13} of its own, 10 from v1
    assert second.trained_on("12.1718900000", v1) == frozenset({10, 11})
    listed = {v["version"]: v for v in second.versions("12")}
    assert (listed[v2]["trained_on_tasks"], listed[v1]["trained_on_tasks"]) == (4, 2)  # a count, not the list

    assert second.trained_on("12", BASE) == frozenset()  # the base model learnt from no task of the project
    assert second.trained_on("12", "stepper-base-p12-v9-ffffff") is None  # no such version: unknown
    assert second.trained_on("13", v1) is None  # another project's


def test_without_held_out_tasks_a_version_learnt_from_every_example(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    v1 = train(service, (1, 10, "cat"), (2, 11, "dog"))["version"]
    assert service.trained_on("12", v1) == frozenset({10, 11})


def test_what_a_version_of_unknown_training_set_learnt_from_stays_unknown(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    old = fake_version(service, "stepper-base-p12-v1-aaaaaa")  # promoted before trained_on was recorded: NULL
    assert service.versions_store.get("12", old.name).trained_on is None
    assert service.trained_on("12", old.name) is None
    job = train(service, (1, 10, "cat"), (2, 11, "dog"))
    assert job["status"] == "succeeded" and job["parent_version"] == old.name
    assert service.trained_on("12", job["version"]) is None  # not {10, 11}: what its parent learnt is unknown
    listed = {v["version"]: v for v in service.versions("12")}
    assert listed[job["version"]]["trained_on_tasks"] is None and listed[old.name]["trained_on_tasks"] is None


def test_an_outcome_carries_the_tasks_trained_on_through_json() -> None:
    outcome = Outcome("succeeded", "", promote=True, metrics={"f1": 0.5}, summary="ok", trained_on=(3, 7))
    assert Outcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome
    stored_before = {k: v for k, v in outcome.to_json().items() if k != "trained_on"}  # from an older worker
    assert Outcome.from_json(stored_before).trained_on is None  # unknown, not "learnt from nothing"
    assert Outcome.from_json(Outcome("failed", "boom").to_json()).trained_on is None


def test_pins_from_extra_params_and_environment(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    assert service.current_version("12") == BASE and service.version_dir("12", BASE) is None
    v1 = fake_version(service, "stepper-base-p12-v1-aaaaaa")
    v2 = fake_version(service, "stepper-base-p12-v2-bbbbbb", parent=v1.name)
    assert service.current_version("12") == v2.name

    with pytest.raises(BadRequest, match=f"known versions: {BASE}, {v2.name}, {v1.name}"):
        service.pin("12", "stepper-base-p12-v9-ffffff")
    service.pin("12.1718900000", v1.name)
    assert service.current_version("12") == v1.name
    assert service.version_dir("12", v1.name) == v1
    listed = {v["version"]: v for v in service.versions("12")}
    assert listed[v1.name]["current"] and listed[v1.name]["pinned"] == "extra_params"
    assert not listed[v2.name]["current"] and listed[v2.name]["pinned"] is None
    service.pin("12", BASE)  # roll back to the untrained model
    assert service.current_version("12") == BASE
    service.pin("12", None)
    assert service.current_version("12") == v2.name
    assert service.current_version("13") == BASE  # other projects are untouched

    service.pin("12", v2.name)
    env = services(make_settings(tmp_path, pins={"12": v1.name}))
    env.recover()
    assert env.current_version("12") == v1.name  # the environment wins over extra_params
    assert {v["version"]: v["pinned"] for v in env.versions("12")}[v1.name] == "env"
    assert service.current_version("12") == v2.name

    with pytest.raises(LabelzooError, match="MODEL_VERSION_PIN: project 12 has no model version 'nope'"):
        services(make_settings(tmp_path, pins={"12": "nope"})).recover()


def test_another_process_sees_a_promotion_without_restart(tmp_path: Path, services: Any) -> None:
    settings = make_settings(tmp_path)
    service = services(settings)
    code = f"""
import sys
from pathlib import Path
from tests.core.training_support import backend, make_settings
from labelzoo.training import TrainingService
service = TrainingService(make_settings(Path({str(tmp_path)!r})), backend())
for line in sys.stdin:
    print(service.current_version(line.strip()), flush=True)
"""
    other = python(code, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert other.stdin is not None and other.stdout is not None

    def ask() -> str:
        other.stdin.write("12\n")
        other.stdin.flush()
        return other.stdout.readline().strip()

    try:
        assert ask() == BASE
        job = train(service, (1, 10, "cat"))
        assert ask() == job["version"] != BASE
        service.pin("12", BASE)
        assert ask() == BASE
    finally:
        other.stdin.close()
        other.wait(10)


def test_current_version_is_one_cheap_query(tmp_path: Path, services: Any) -> None:
    service = services(make_settings(tmp_path))
    for i in range(1, 30):
        fake_version(service, f"stepper-base-p12-v{i}-{i:06x}")
    service.handle_event(created(1, 1))
    started = time.perf_counter()
    for _ in range(1000):
        service.current_version("12")
    per_call = (time.perf_counter() - started) / 1000
    assert per_call < 0.001, per_call
