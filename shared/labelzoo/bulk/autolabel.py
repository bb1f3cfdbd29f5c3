"""Auto-labelling: the model *annotates* the tasks it is sure of; the others get predictions for review.

A task is sure when its task score (the prediction's ``score``) is at or above a threshold. The threshold is
given, or chosen from a target precision measured on the project's own human annotations that the model
version did not learn from (:func:`labelzoo.calibration.held_out_pairs`,
:func:`labelzoo.calibration.choose_threshold`). "Right" means the shown result equals the human one on the
controls the backend fills, per :meth:`Backend.agrees` (by default :func:`labelzoo.results.same_annotation`).

Safe by construction: a task is read back right before it is annotated and left alone when it holds any
annotation (a person's, or this job's from an earlier try); each annotation carries a ``unique_id`` made from
the job and the task, so a retried POST cannot store a second one. The annotation is made from a prediction
of the version (``parent_prediction``, ``last_action: "prediction"``, ``bulk_created``), by the token's user.
Undo deletes the job's annotations that are still as posted; those a person changed are kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labelzoo.backend import Task
from labelzoo.bulk.chunks import ChunkReport, PredictFn, post_items
from labelzoo.bulk.lsapi import BulkApi, annotated, has_version, prediction_id
from labelzoo.bulk.store import ChunkCounts
from labelzoo.calibration import (
    CONFIDENCE,
    MIN_SUPPORT,
    Estimate,
    HeldOut,
    at_threshold,
    choose_threshold,
    task_score,
)
from labelzoo.errors import BadRequest
from labelzoo.store.autolabels import AutoLabels, Recogniser, result_hash

log = logging.getLogger("labelzoo.bulk")



@dataclass(frozen=True)
class AutoLabelOptions:
    threshold: float | None = None
    target_precision: float | None = None
    dry_run: bool = False
    min_support: int = MIN_SUPPORT
    confidence: float = CONFIDENCE

    @classmethod
    def from_json(cls, body: Any) -> AutoLabelOptions:
        """``{"threshold": t}`` or ``{"target_precision": p}``, with ``dry_run``, ``min_support`` and ``confidence``;
        :class:`BadRequest` naming the field that is wrong."""
        if not isinstance(body, Mapping):
            raise BadRequest("'auto_label' must be an object: {\"target_precision\": 0.95} or {\"threshold\": 0.9}")
        unknown = set(body) - {"threshold", "target_precision", "dry_run", "min_support", "confidence"}
        if unknown:
            raise BadRequest(f"'auto_label' has unknown fields {sorted(unknown)}: threshold, target_precision, "
                             "dry_run, min_support, confidence")
        threshold, target = body.get("threshold"), body.get("target_precision")
        if (threshold is None) == (target is None):
            raise BadRequest("'auto_label' takes exactly one of 'threshold' (a task score) and 'target_precision'")
        if threshold is not None and not _number_in(threshold, 0.0, 1.0, low_open=False):
            raise BadRequest(f"'auto_label.threshold' must be a number in [0, 1], got {threshold!r}")
        if target is not None and not _number_in(target, 0.0, 1.0, low_open=True):
            raise BadRequest(f"'auto_label.target_precision' must be a number in (0, 1], got {target!r}")
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise BadRequest(f"'auto_label.dry_run' must be true or false, got {dry_run!r}")
        support = body.get("min_support", MIN_SUPPORT)
        if isinstance(support, bool) or not isinstance(support, int) or support < 1:
            raise BadRequest(f"'auto_label.min_support' must be an integer >= 1, got {support!r}")
        confidence = body.get("confidence", CONFIDENCE)
        if not _number_in(confidence, 0.5, 1.0, low_open=False) or confidence == 1.0:
            raise BadRequest(f"'auto_label.confidence' must be a number in [0.5, 1), got {confidence!r}")
        return cls(None if threshold is None else float(threshold), None if target is None else float(target),
                   dry_run, support, float(confidence))

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target_precision": self.target_precision, "dry_run": self.dry_run,
                "min_support": self.min_support, "confidence": self.confidence}


def _number_in(value: Any, low: float, high: float, *, low_open: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return (value > low if low_open else value >= low) and value <= high


def sure(item: Mapping[str, Any], threshold: float) -> bool:
    """Whether a predicted item is auto-labelled: a result that says something, scoring at least ``threshold``."""
    return bool(item.get("result")) and task_score(item) >= threshold


def human_result(task: Mapping[str, Any], is_auto: Recogniser) -> Sequence[Mapping[str, Any]] | None:
    """The result of the task's human annotation: its ground truth, else its newest one that was not skipped and
    not made by auto-labelling; None without such an annotation."""
    task_id = int(task["id"])
    candidates = [a for a in task.get("annotations") or () if isinstance(a, Mapping)
                  and not a.get("was_cancelled") and isinstance(a.get("result"), list)
                  and not is_auto(task_id, a.get("id"), a["result"])]
    if not candidates:
        return None
    best = max(candidates, key=lambda a: (bool(a.get("ground_truth")), str(a.get("updated_at") or ""),
                                          a.get("id") or 0))
    return best["result"]


def held_out_tasks(pages: Iterable[Sequence[Mapping[str, Any]]], trained_on: Collection[int], labels: AutoLabels,
                   project: str) -> list[HeldOut]:
    """The tasks with a human annotation (not one auto-labelling made) that the version did not learn from."""
    found = []
    for page in pages:
        is_auto = labels.recogniser(project, (int(raw["id"]) for raw in page))
        for raw in page:
            task_id = int(raw["id"])
            if task_id in trained_on:
                continue
            human = human_result(raw, is_auto)
            if human is not None:
                found.append(HeldOut(Task.from_json(raw, where=f"task {task_id}"), human))
    return found


def estimate(pairs: Sequence[tuple[float, bool]], options: AutoLabelOptions) -> Estimate:
    if options.threshold is not None:
        return at_threshold(pairs, options.threshold)
    assert options.target_precision is not None
    return choose_threshold(pairs, options.target_precision, min_support=options.min_support,
                            confidence=options.confidence)


def run_autolabel_chunk(api: BulkApi, labels: AutoLabels, predict: PredictFn, job_id: str, project: str,
                        version: str, task_ids: Sequence[int], threshold: float) -> ChunkReport:
    """Annotate the chunk's sure tasks, post predictions for the others; tasks with an annotation are skipped."""
    tasks = [t for t in api.tasks_by_id(project, task_ids) if not annotated(t)]
    skipped = len(task_ids) - len(tasks)
    if not tasks:
        return ChunkReport(ChunkCounts(skipped=skipped))
    items = predict([Task.from_json(t, where=f"task {t.get('id')}") for t in tasks])
    pairs = list(zip(tasks, items, strict=True))
    certain = [(t, item) for t, item in pairs if sure(item, threshold)]
    fresh = [(t, item) for t, item in pairs if not sure(item, threshold) and not has_version(t, version)]
    report = post_items(api, project, [int(t["id"]) for t, _ in fresh], [item for _, item in fresh],
                        skipped=skipped + len(pairs) - len(certain) - len(fresh))
    made = sum(annotate(api, labels, job_id, project, version, t, item) for t, item in certain)
    counts = report.counts
    return ChunkReport(ChunkCounts(counts.posted + made, counts.skipped + len(certain) - made, counts.failed),
                       report.errors)


def annotate(api: BulkApi, labels: AutoLabels, job_id: str, project: str, version: str,
             task: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Post one task's annotation from its prediction of ``version``; False when a person got there first."""
    task_id = int(task["id"])
    row = labels.begin(job_id, project, task_id, item["result"], task_score(item))
    current = api.tasks_by_id(project, [task_id])
    if not current or annotated(current[0]):
        mine = _posted_annotation(current[0], row.result_hash) if current else None
        if mine is None:
            labels.forget(job_id, task_id)
            return False
        labels.posted(job_id, task_id, mine)  # posted by an earlier try whose answer was lost
        return True
    prediction = prediction_id(current[0], version) or api.create_prediction(project, task_id, item)
    body = {"result": item["result"], "unique_id": row.unique_id, "parent_prediction": prediction,
            "last_action": "prediction", "bulk_created": True, "was_cancelled": False, "ground_truth": False,
            "lead_time": 0, "project": int(project)}
    created = api.create_annotation(task_id, body)
    annotation_id = created.get("id") if created else _posted_annotation(
        (api.tasks_by_id(project, [task_id]) or [{}])[0], row.result_hash)
    if not isinstance(annotation_id, int):
        labels.forget(job_id, task_id)
        return False
    labels.posted(job_id, task_id, annotation_id)
    return True


def _posted_annotation(task: Mapping[str, Any], digest: str) -> int | None:
    """The id of the task's annotation made from a prediction in bulk with this result, if there is one."""
    for annotation in task.get("annotations") or ():
        if (isinstance(annotation, Mapping) and annotation.get("bulk_created")
                and isinstance(annotation.get("result"), list) and result_hash(annotation["result"]) == digest):
            return annotation.get("id")
    return None


def undo(api: BulkApi, labels: AutoLabels, job_id: str) -> dict[str, int]:
    """Delete the job's annotations that are as it posted them; keep those a person changed. Counts by outcome;
    safe to run again (it goes on with the annotations not undone yet)."""
    for row in labels.of_job(job_id):
        annotation_id = row.annotation_id
        if annotation_id is None:  # the job stopped before Label Studio's answer: look for it on the task
            task = api.tasks_by_id(row.project, [row.task_id])
            annotation_id = _posted_annotation(task[0], row.result_hash) if task else None
        annotation = None if annotation_id is None else api.annotation(annotation_id)
        if annotation is None or annotation_id is None:
            labels.ended(job_id, row.task_id, "gone")
        elif result_hash(annotation.get("result") or []) != row.result_hash:
            labels.ended(job_id, row.task_id, "kept")
        else:
            api.delete_annotation(annotation_id)
            labels.ended(job_id, row.task_id, "undone")
    counts = labels.counts(job_id)
    return {state: counts.get(state, 0) for state in ("undone", "kept", "gone", "posted")}
