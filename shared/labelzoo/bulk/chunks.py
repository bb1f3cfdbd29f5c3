"""One chunk of a bulk job: read its tasks from Label Studio, predict those still lacking the version, post.

The same code runs in a server thread, in ``labelzoo predict`` and on RQ workers. Reading the tasks
right before predicting them is the dedup check: a task that got a prediction of the version since
the job was planned (or was deleted) is skipped, not predicted again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labelzoo.backend import Task
from labelzoo.bulk.lsapi import BulkApi, has_version
from labelzoo.bulk.store import ChunkCounts

#: predict a batch of tasks into /predict items (``to_json``): one per task, ``result`` or ``error``
PredictFn = Callable[[Sequence[Task]], list[dict[str, Any]]]

MAX_ERRORS = 3  # task errors kept per chunk for the job's status


class ChunkReport:
    """Counts of one chunk and the first few task errors, for the job record."""

    def __init__(self, counts: ChunkCounts, errors: Sequence[str] = ()) -> None:
        self.counts = counts
        self.errors = list(errors)[:MAX_ERRORS]

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None

    def to_json(self) -> dict[str, Any]:
        return {"posted": self.counts.posted, "skipped": self.counts.skipped, "failed": self.counts.failed,
                "errors": self.errors}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChunkReport:
        return cls(ChunkCounts(int(data["posted"]), int(data["skipped"]), int(data["failed"])), data["errors"])


def import_item(task_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    """A /predict item as a row of ``POST /api/projects/<id>/import/predictions``."""
    return {"task": task_id, "result": item["result"], "score": item.get("score"),
            "model_version": item["model_version"]}


def post_items(api: BulkApi, project: str, task_ids: Sequence[int], items: Sequence[Mapping[str, Any]],
               *, skipped: int = 0) -> ChunkReport:
    """Post the predicted items (one per task id); items without ``result`` count as failed."""
    rows = [import_item(task_id, item) for task_id, item in zip(task_ids, items, strict=True) if "result" in item]
    errors = [f"task {task_id}: {item.get('error')}" for task_id, item in zip(task_ids, items, strict=True)
              if "result" not in item]
    outcome = api.post_predictions(project, rows)
    refused = len(rows) - outcome.already - outcome.created
    if refused > 0:  # Label Studio 1.23 drops predictions its config check rejects, and only logs why
        errors.append(f"Label Studio stored {outcome.created} of {len(rows) - outcome.already} predictions "
                      "(it drops those that do not fit the label config; its log says why)")
    counts = ChunkCounts(posted=outcome.created, skipped=skipped + outcome.already,
                         failed=len(items) - len(rows) + max(0, refused))
    return ChunkReport(counts, errors)


def run_chunk(api: BulkApi, predict: PredictFn, project: str, version: str, task_ids: Sequence[int], *,
              leave: Callable[[Sequence[int]], set[int]] | None = None) -> ChunkReport:
    """Predict and post the tasks of one chunk that still lack a prediction of ``version``, but for those
    ``leave`` names (the tasks a /predict of the version answers: Label Studio stores its answer)."""
    tasks = [t for t in api.tasks_by_id(project, task_ids) if not has_version(t, version)]
    if leave is not None and tasks:
        taken = leave([int(t["id"]) for t in tasks])
        tasks = [t for t in tasks if int(t["id"]) not in taken]
    skipped = len(task_ids) - len(tasks)
    if not tasks:
        return ChunkReport(ChunkCounts(skipped=skipped))
    items = predict([Task.from_json(t, where=f"task {t.get('id')}") for t in tasks])
    return post_items(api, project, [int(t["id"]) for t in tasks], items, skipped=skipped)
