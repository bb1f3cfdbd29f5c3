"""Auto-labelling jobs against a fake Label Studio: the estimate on held-out human annotations, the dry run, the
real run (annotations above the threshold, predictions below, never a task with an annotation), retries, the
annotations' marks, undo, and the training side never learning from the model's own annotations.

The keyword backend answers "cat" or "dog" from the text with the score a text names ("score=0.93"); its base
version learnt from no task, so every human annotation is held out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from labelzoo.bulk.autolabel import AutoLabelOptions, run_autolabel_chunk
from labelzoo.calibration import choose_threshold, wilson_interval
from labelzoo.errors import BadRequest
from labelzoo.store.autolabels import AutoLabels, result_hash, unique_id
from tests.conftest import KEYWORD_BACKEND
from tests.core.bulk_support import CONFIG, PROJECT, fake_ls_fixture, ls_env, versions_per_task, wait_final  # noqa: F401
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.training_support import services_fixture, wait_for  # noqa: F401 - services

VERSION = "keyword-1"


def choice(label: str) -> list[dict[str, Any]]:
    return [{"id": "h1", "from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def human(ls: FakeLabelStudio, task_id: int, label: str, **extra: Any) -> None:
    ls.tasks[task_id]["annotations"].append({"id": task_id, "task": task_id, "result": choice(label),
                                             "was_cancelled": False, "ground_truth": False, **extra})


def held_out_project(ls: FakeLabelStudio) -> tuple[list[int], list[int]]:
    """40 annotated tasks (scores 0.60-0.99: right above 0.8, wrong below) and 10 unannotated ones."""
    datas, truths = [], []
    for i in range(40):
        score = 0.60 + i * 0.01
        animal = "cat" if i % 2 else "dog"
        right = score >= 0.8
        datas.append({"text": f"a {animal} sits score={score:.2f}"})
        truths.append(animal if right else ("dog" if animal == "cat" else "cat"))
    annotated = ls.add_tasks(PROJECT, datas)
    for task_id, truth in zip(annotated, truths, strict=True):
        human(ls, task_id, truth)
    scores = [0.95, 0.85, 0.81, 0.79, 0.5, 0.99, 0.3, 0.9, 0.8, 0.7]
    fresh = ls.add_tasks(PROJECT, [{"text": f"a {'cat' if i % 2 else 'dog'} sits score={s:.2f}"}
                                   for i, s in enumerate(scores)])
    return annotated, fresh


def auto_annotations(ls: FakeLabelStudio) -> dict[int, dict[str, Any]]:
    return {t["id"]: a for t in ls.tasks.values() for a in t["annotations"] if a.get("bulk_created")}


def test_the_threshold_is_the_lowest_whose_held_out_precision_reaches_the_target() -> None:
    pairs = [(0.99, True)] * 30 + [(0.9, True)] * 15 + [(0.9, False)] + [(0.8, False)] * 10 + [(0.7, True)] * 5
    chosen = choose_threshold(pairs, 0.95, confidence=0.5)  # the measured precision itself must reach the target
    assert (chosen.threshold, chosen.support, chosen.held_out) == (0.9, 46, 61)
    assert chosen.precision == pytest.approx(45 / 46) and chosen.coverage == pytest.approx(46 / 61)
    assert chosen.interval == wilson_interval(45, 46) and chosen.interval[0] < 45 / 46 < chosen.interval[1]
    assert choose_threshold(pairs, 0.99, confidence=0.5).threshold == 0.99  # 30 of 30 right
    assert choose_threshold(pairs, 0.99, min_support=31, confidence=0.5).threshold is None  # too few to tell
    # with 90 % confidence (the default), 30 right of 30 does not show 0.95, nor 45 of 46: they show 0.9
    assert choose_threshold(pairs, 0.95).threshold is None
    assert "no task-score threshold reaches precision 0.95 with 90% confidence" in choose_threshold(
        pairs, 0.95).describe()
    assert choose_threshold(pairs, 0.9).threshold == 0.9
    assert wilson_interval(32, 32, 1.2816)[0] > 0.95 > wilson_interval(31, 31, 1.2816)[0]


def test_options_are_checked_and_the_error_names_the_field() -> None:
    assert AutoLabelOptions.from_json({"target_precision": 0.95}).target_precision == 0.95
    for body, field in [({}, "exactly one"), ({"threshold": 0.9, "target_precision": 0.9}, "exactly one"),
                        ({"threshold": 1.5}, "auto_label.threshold"), ({"target_precision": 0}, "target_precision"),
                        ({"threshold": 0.9, "dry_run": "yes"}, "dry_run"), ({"threshold": 0.9, "min": 1}, "unknown"),
                        ({"threshold": 0.9, "min_support": 0}, "min_support"), ([], "must be an object"),
                        ({"target_precision": 0.9, "confidence": 1}, "confidence")]:
        with pytest.raises(BadRequest, match=field):
            AutoLabelOptions.from_json(body)


def test_a_dry_run_reports_the_estimate_and_writes_nothing(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    held_out_project(fake_ls)
    before = {i: (list(t["annotations"]), list(t["predictions"])) for i, t in fake_ls.tasks.items()}
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    job, created = runtime.bulk.start(PROJECT, AutoLabelOptions(target_precision=0.9, dry_run=True))
    done = wait_final(runtime, job["id"])
    assert created and done["status"] == "succeeded", done
    report = done["auto_label"]
    # every held-out task from 0.80 up is right, none below: 20 of 20 shows 0.9 with 90 % confidence, 20 of 21 not
    assert report["threshold"] == pytest.approx(0.8)
    assert (report["expected_precision"], report["held_out_tasks"], report["held_out_above"]) == (1.0, 40, 20)
    assert report["coverage"] == 0.5 and report["tasks_to_label"] == 10 and report["dry_run"] is True
    assert "dry run, nothing written" in done["message"]
    assert {i: (t["annotations"], t["predictions"]) for i, t in fake_ls.tasks.items()} == before
    assert not fake_ls.requests_to(fake_ls.prefix + "/api/predictions/") or all(
        r.method == "GET" for r in fake_ls.requests_to(fake_ls.prefix + "/api/predictions/"))


def test_the_run_annotates_the_sure_tasks_and_predicts_the_others(fake_ls: FakeLabelStudio, make_runtime: Any
                                                                  ) -> None:
    annotated, fresh = held_out_project(fake_ls)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_CHUNK_SIZE="3"))
    job, _ = runtime.bulk.start(PROJECT, AutoLabelOptions(target_precision=0.9))
    done = wait_final(runtime, job["id"])
    assert done["status"] == "succeeded", done
    auto = auto_annotations(fake_ls)
    sure = {task for task, score in zip(fresh, [0.95, 0.85, 0.81, 0.79, 0.5, 0.99, 0.3, 0.9, 0.8, 0.7], strict=True)
            if score >= 0.8}
    assert set(auto) == sure and "6 tasks auto-labelled" in done["message"], done["message"]
    assert all(len(fake_ls.tasks[t]["annotations"]) == 1 for t in annotated)  # people's tasks untouched
    assert all(versions_per_task(fake_ls)[t] == [] for t in annotated)
    for task in fresh:  # every unannotated task got one prediction of the version, the sure ones' annotation's
        (prediction,) = fake_ls.tasks[task]["predictions"]
        assert prediction["model_version"] == VERSION
        if task in sure:
            annotation = auto[task]
            assert annotation["parent_prediction"] == prediction["id"] and annotation["last_action"] == "prediction"
            assert annotation["result"] == prediction["result"] and annotation["completed_by"] == fake_ls.user["id"]
            assert unique_id(job["id"], task) in fake_ls.unique_ids
    # the same job's annotations are never trained on: the training side sees them as the model's own
    labels = runtime.bulk.autolabels
    some = next(iter(sure))
    assert labels.is_auto(str(PROJECT), some, auto[some]["id"], auto[some]["result"])
    assert not labels.is_auto(str(PROJECT), some, auto[some]["id"], choice("cat") + choice("dog"))
    assert not labels.is_auto(str(PROJECT), annotated[0], annotated[0], fake_ls.tasks[annotated[0]]["annotations"][0][
        "result"])


def test_a_task_annotated_by_a_person_meanwhile_is_left_alone(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    _, fresh = held_out_project(fake_ls)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    job = runtime.bulk.store.create(str(PROJECT), "autolabel", "thread", VERSION,
                                    options=AutoLabelOptions(threshold=0.8).to_json())
    runtime.bulk.store.update_report(job.id, threshold=0.8)

    human(fake_ls, fresh[0], "cat")  # after the job listed the task, before its chunk ran
    fake_ls.tasks[fresh[1]]["annotations"].append({"id": 9, "task": fresh[1], "result": [], "was_cancelled": True})
    predict = runtime.bulk._predict_fn(replace(runtime.bulk.store.get(job.id), label_config=CONFIG))
    report = run_autolabel_chunk(runtime.bulk.api, runtime.bulk.autolabels, predict, job.id, str(PROJECT), VERSION,
                                 fresh[:3], 0.8)
    assert report.counts.skipped == 2 and len(fake_ls.tasks[fresh[0]]["annotations"]) == 1
    assert set(auto_annotations(fake_ls)) == {fresh[2]}
    again = run_autolabel_chunk(runtime.bulk.api, runtime.bulk.autolabels, predict, job.id, str(PROJECT), VERSION,
                                fresh[2:3], 0.8)  # a chunk run twice (a resumed job) annotates nothing twice
    assert again.counts.skipped == 1 and len(fake_ls.tasks[fresh[2]]["annotations"]) == 1


def test_a_lost_answer_is_not_posted_twice(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    _, fresh = held_out_project(fake_ls)
    path = fake_ls.prefix + f"/api/tasks/{fresh[0]}/annotations/"
    fake_ls.fail_after[path] = [502]  # stored, but the answer is a 502: the retry meets the unique_id
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_RETRIES="2"))
    job, _ = runtime.bulk.start(PROJECT, AutoLabelOptions(threshold=0.9))
    assert wait_final(runtime, job["id"])["status"] == "succeeded"
    assert len(fake_ls.tasks[fresh[0]]["annotations"]) == 1
    (row,) = [r for r in runtime.bulk.autolabels.of_job(job["id"]) if r.task_id == fresh[0]]
    assert row.annotation_id == fake_ls.tasks[fresh[0]]["annotations"][0]["id"] and row.state == "posted"


def test_a_lost_prediction_answer_is_read_back_not_posted_twice(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    _, fresh = held_out_project(fake_ls)
    fake_ls.fail_after[fake_ls.prefix + "/api/predictions/"] = [502]  # the first sure task's prediction: stored
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls, BULK_RETRIES="2"))
    job, _ = runtime.bulk.start(PROJECT, AutoLabelOptions(threshold=0.9))
    assert wait_final(runtime, job["id"])["status"] == "succeeded"
    assert all(len(fake_ls.tasks[task]["predictions"]) == 1 for task in fresh)
    for task, annotation in auto_annotations(fake_ls).items():
        assert annotation["parent_prediction"] == fake_ls.tasks[task]["predictions"][0]["id"]


def test_no_threshold_reaching_the_target_fails_before_writing(fake_ls: FakeLabelStudio, make_runtime: Any) -> None:
    held_out_project(fake_ls)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    job, _ = runtime.bulk.start(PROJECT, AutoLabelOptions(target_precision=0.95, min_support=25))
    done = wait_final(runtime, job["id"])
    assert done["status"] == "failed" and "no task-score threshold reaches precision 0.95" in done["message"]
    assert not auto_annotations(fake_ls) and not any(versions_per_task(fake_ls).values())


def test_undo_deletes_the_runs_annotations_but_keeps_those_a_person_changed(
    fake_ls: FakeLabelStudio, make_runtime: Any
) -> None:
    held_out_project(fake_ls)
    runtime = make_runtime(KEYWORD_BACKEND, **ls_env(fake_ls))
    job, _ = runtime.bulk.start(PROJECT, AutoLabelOptions(threshold=0.8))
    assert wait_final(runtime, job["id"])["status"] == "succeeded"
    auto = auto_annotations(fake_ls)
    changed, gone = sorted(auto)[:2]
    auto[changed]["result"] = choice("cat")  # a reviewer fixed this one
    assert result_hash(auto[changed]["result"]) != runtime.bulk.autolabels.get(job["id"], changed).result_hash
    fake_ls.tasks[gone]["annotations"].clear()  # and deleted this one in Label Studio
    undone = runtime.bulk.undo(job["id"])["auto_label"]["undo"]
    assert undone == {"status": "done", "undone": len(auto) - 2, "kept": 1, "gone": 1, "posted": 0}
    assert set(auto_annotations(fake_ls)) == {changed}
    assert not runtime.bulk.autolabels.is_auto(str(PROJECT), changed, auto[changed]["id"], auto[changed]["result"])
    assert runtime.bulk.undo(job["id"])["auto_label"]["undo"]["undone"] == len(auto) - 2  # again: nothing more
    with pytest.raises(BadRequest, match="only auto-label jobs"):
        plain, _ = runtime.bulk.start(PROJECT)
        wait_final(runtime, plain["id"])
        runtime.bulk.undo(plain["id"])


def test_post_bulk_takes_the_auto_label_options_and_undo(fake_ls: FakeLabelStudio, make_client: Any) -> None:
    held_out_project(fake_ls)
    client = make_client(KEYWORD_BACKEND, **ls_env(fake_ls))
    bad = client.post("/bulk", json={"project": PROJECT, "auto_label": {"threshold": "high"}})
    assert bad.status_code == 400 and "auto_label.threshold" in bad.get_json()["message"]
    started = client.post("/bulk", json={"project": PROJECT, "auto_label": {"threshold": 0.8}})
    assert started.status_code == 201 and started.get_json()["kind"] == "autolabel"
    job_id = started.get_json()["id"]
    wait_for(lambda: client.get(f"/bulk/{job_id}").get_json()["status"] == "succeeded", 60, "the job to end")
    assert client.post(f"/bulk/{job_id}/undo").status_code == 202
    wait_for(lambda: client.get(f"/bulk/{job_id}").get_json()["auto_label"].get("undo", {}).get("status") == "done",
             60, "the undo to end")
    assert not auto_annotations(fake_ls)
    assert client.post("/bulk/nope/undo").status_code == 404


def labelzoo_predict(fake_ls: FakeLabelStudio, tmp_path: Any, *args: str) -> Any:
    import subprocess
    import sys

    from tests.conftest import base_env

    env = base_env(tmp_path, LABEL_STUDIO_API_KEY=fake_ls.legacy_token)
    return subprocess.run([sys.executable, "-m", "labelzoo.cli", "predict", str(KEYWORD_BACKEND), *args,
                           "--label-studio-url", fake_ls.url, "--rate-limit", "0"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_command_line_dry_runs_labels_and_undoes(fake_ls: FakeLabelStudio, tmp_path: Any) -> None:
    held_out_project(fake_ls)
    project = ["--project", str(PROJECT)]
    dry = labelzoo_predict(fake_ls, tmp_path, *project, "--target-precision", "0.9", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing written: threshold 0.800: precision 1.000" in dry.stderr and not auto_annotations(fake_ls)
    run = labelzoo_predict(fake_ls, tmp_path, *project, "--target-precision", "0.9", "--confidence", "0.6")
    assert run.returncode == 0 and "tasks auto-labelled" in run.stderr, run.stderr
    job_id = run.stderr.split("bulk job ")[1].split()[0]
    assert auto_annotations(fake_ls)
    undo = labelzoo_predict(fake_ls, tmp_path, "--undo", job_id)
    assert undo.returncode == 0 and "annotations deleted, 0 kept" in undo.stderr, undo.stderr
    assert not auto_annotations(fake_ls)
    bad = labelzoo_predict(fake_ls, tmp_path, "--dry-run", *project)
    assert bad.returncode != 0 and "--dry-run, --min-support and --confidence go with" in bad.stderr
    worse = labelzoo_predict(fake_ls, tmp_path, *project, "--target-precision", "2")
    assert worse.returncode != 0 and "--target-precision must be a number in (0, 1]" in worse.stderr


def test_the_webhook_of_an_auto_annotation_is_not_learnt_from_until_a_person_changes_it(
    tmp_path: Any, services: Any
) -> None:
    from tests.core.training_support import created, make_settings

    service = services(make_settings(tmp_path, train_after=0))
    event = created(501, 41)
    result = event["annotation"]["result"]
    AutoLabels(service.db).begin("job1", "12", 41, result, 0.97)  # the job writes this before it posts
    assert service.handle_event(event)["changed"] == 0  # Label Studio's webhook, during the job's POST
    assert service.annotations.examples("12") == []
    assert service.handle_event(created(502, 42))["changed"] == 1  # a person's annotation of another task
    changed = created(501, 41, label="dog")  # a reviewer corrected the auto annotation: now it is theirs
    changed["action"] = "ANNOTATION_UPDATED"
    assert service.handle_event(changed)["changed"] == 1
    assert sorted(e.annotation_id for e in service.annotations.examples("12")) == [501, 502]


def test_held_out_tasks_shown_nothing_or_not_predicted_are_no_evidence_for_a_threshold() -> None:
    from labelzoo.backend import Task
    from labelzoo.calibration import HeldOut, held_out_pairs
    from labelzoo.results import same_annotation

    choice = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    other = [{**choice[0], "value": {"choices": ["Negative"]}}]
    held = [HeldOut(Task(id=i, data={"text": "x"}), human) for i, human in enumerate([choice, other, [], choice])]
    answers = [{"result": choice, "score": 0.9}, {"result": choice, "score": 0.8},
               {"result": [], "score": 0.99},  # right as shown (nothing), but never auto-labelled: left out
               {"error": "boom"}]
    pairs = held_out_pairs(held, lambda tasks: answers[: len(tasks)], same_annotation, {"sentiment"})
    assert pairs == [(0.9, True), (0.8, False)]
