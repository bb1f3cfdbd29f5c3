"""The Label Studio calls of a bulk job: rate-limited, retried, and never posting a prediction twice.

Endpoints (Label Studio 1.23):

* ``GET /api/projects/<id>``: the label config;
* ``GET /api/tasks/?project=<id>&fields=all&resolve_uri=false&page=<p>&page_size=<s>``: the Data
  Manager's task list, ``{"tasks": [...], "total": n}``, each task with its ``predictions``; a page past
  the end answers 404. ``query={"selectedItems": {"all": false, "included": [ids]}}`` selects tasks by id;
* ``POST /api/projects/<id>/import/predictions`` with ``[{"task", "result", "score", "model_version"}]``:
  answers ``{"created": n}``. One task id that is not in the project fails the whole request (400);
* auto-labelling: ``POST /api/predictions/`` (one prediction, answered with its id), ``POST
  /api/tasks/<id>/annotations/`` (``unique_id`` set: a second POST with it fails as a duplicate),
  ``GET`` and ``DELETE /api/annotations/<id>/`` (404 once deleted).

Every call waits its turn under a requests-per-second limit shared by the job's threads, and is
retried after a 429 (honouring ``Retry-After``), a 5xx, a timeout or a lost connection. A POST that
failed that way may still have been stored, so before posting again the tasks are read back and those
that now hold a prediction of the version are left out: retries cannot create duplicates.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from labelzoo.media import LabelStudioClient
from labelzoo.media.http import UpstreamError

log = logging.getLogger("labelzoo.bulk")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # a Retry-After longer than this is capped: the job would look hung
LIST_PAGE_SIZE = 500

#: listing a big project or storing a thousand predictions takes Label Studio a while: longer than media
API_READ_TIMEOUT = 300.0


class RateLimiter:
    """Spaces calls at least ``1 / rate`` seconds apart, across threads; ``rate <= 0`` means no limit."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if it gave one."""

    def __init__(self, error: UpstreamError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class PostOutcome:
    created: int  # predictions Label Studio stored
    already: int  # left out: the task got a prediction of this version meanwhile (or is gone)


def has_version(task: Mapping[str, Any], version: str) -> bool:
    """Whether a Data Manager task holds a prediction of exactly ``version``."""
    return any(p.get("model_version") == version for p in task.get("predictions") or ())


def annotated(task: Mapping[str, Any]) -> bool:
    """Whether a Data Manager task holds an annotation (a skipped one included: an annotator has seen it)."""
    counts = (task.get("total_annotations"), task.get("cancelled_annotations"))
    return (bool(task.get("is_labeled")) or bool(task.get("annotations"))
            or any(isinstance(n, int) and n > 0 for n in counts))


def prediction_id(task: Mapping[str, Any], version: str) -> int | None:
    """The id of a Data Manager task's prediction of ``version``, if it has one."""
    for prediction in task.get("predictions") or ():
        if isinstance(prediction, Mapping) and prediction.get("model_version") == version:
            pid = prediction.get("id")
            if isinstance(pid, int):
                return pid
    return None


def _latest_score(task: Mapping[str, Any]) -> float:
    """The score of the task's newest prediction; -1 when it has none, or no score."""
    predictions = [p for p in task.get("predictions") or () if isinstance(p, Mapping)]
    if not predictions:
        return -1.0
    newest = max(predictions, key=lambda p: (str(p.get("created_at") or ""), p.get("id") or 0))
    score = newest.get("score")
    return float(score) if isinstance(score, int | float) else -1.0


class BulkApi:
    def __init__(self, client: LabelStudioClient, *, rate_limit: float, retries: int, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.limiter = RateLimiter(rate_limit, sleep=sleep)

    # reads -------------------------------------------------------------------------------------
    def label_config(self, project: str) -> str:
        data = self._retrying(lambda: self._call("GET", f"/api/projects/{project}"))
        config = data.get("label_config") if isinstance(data, dict) else None
        if not isinstance(config, str) or not config.strip():
            raise UpstreamError(f"Label Studio project {project} has no label config")
        return config

    def missing(self, project: str, version: str, on_page: Callable[[int, int], None] | None = None,
                page_size: int = LIST_PAGE_SIZE) -> tuple[list[int], int]:
        """Ids of the project's tasks without a prediction of ``version`` (id order), and the task count.

        Pages through the whole task list; ``on_page(tasks seen, tasks in the project)`` after each page.
        """
        return self._task_ids(project, lambda t: not has_version(t, version), on_page, page_size)

    def unlabelled(self, project: str, version: str, limit: int | None = None,
                   on_page: Callable[[int, int], None] | None = None,
                   page_size: int = LIST_PAGE_SIZE) -> tuple[list[int], int]:
        """Ids of the project's tasks without an annotation or a prediction of ``version`` (id order), and the
        task count; with ``limit``, only the ``limit`` whose latest prediction scored lowest, tasks never
        predicted (or predicted without a score) first: those uncertainty sampling hands out first."""
        found: list[tuple[float, int]] = []
        total = 0
        for tasks, seen in self._pages(project, on_page, page_size):
            total = seen
            found.extend((_latest_score(t), int(t["id"])) for t in tasks
                         if not annotated(t) and not has_version(t, version))
        if limit is not None:
            found = sorted(found)[:limit]
        return sorted(task_id for _, task_id in found), total

    def annotation_pages(self, project: str, on_page: Callable[[int, int], None] | None = None,
                         page_size: int = LIST_PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Each page of the project's tasks, with their full annotations and predictions."""
        for tasks, _ in self._pages(project, on_page, page_size):
            yield tasks

    def unannotated(self, project: str, on_page: Callable[[int, int], None] | None = None,
                    page_size: int = LIST_PAGE_SIZE) -> tuple[list[int], int]:
        """Ids of the project's tasks without any annotation, a skipped one included (id order), and the task
        count."""
        return self._task_ids(project, lambda t: not annotated(t), on_page, page_size)

    def _task_ids(self, project: str, keep: Callable[[Mapping[str, Any]], bool],
                  on_page: Callable[[int, int], None] | None, page_size: int) -> tuple[list[int], int]:
        """Ids of the project's tasks that ``keep`` takes, in the task list's (id) order, and the task count."""
        found: list[int] = []
        total = 0
        for tasks, seen in self._pages(project, on_page, page_size):
            total = seen
            found.extend(int(t["id"]) for t in tasks if keep(t))
        return found, total

    def _pages(self, project: str, on_page: Callable[[int, int], None] | None, page_size: int
               ) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Each page of the project's Data Manager tasks (predictions included) with the task count so far."""
        seen = total = 0
        for page in itertools.count(1):
            params = {"project": project, "fields": "all", "resolve_uri": "false", "page": page,
                      "page_size": page_size}
            try:
                data = self._retrying(lambda p=params: self._call("GET", "/api/tasks/", params=p))
            except UpstreamError as exc:
                if exc.upstream_status == 404 and page > 1:
                    break  # Django REST's answer to a page past the end
                raise
            tasks = _tasks_of(data)
            total = data["total"] if isinstance(data.get("total"), int) else seen + len(tasks)
            seen += len(tasks)
            yield tasks, max(total, seen)
            if on_page is not None:
                on_page(seen, total)
            if len(tasks) < page_size:
                break

    def tasks_by_id(self, project: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The tasks with these ids that still exist, with their predictions."""
        if not ids:
            return []
        query = json.dumps({"selectedItems": {"all": False, "included": list(ids)}})
        params = {"project": project, "fields": "all", "resolve_uri": "false", "page": 1,
                  "page_size": len(ids), "query": query}
        return _tasks_of(self._retrying(lambda: self._call("GET", "/api/tasks/", params=params)))

    # writes ------------------------------------------------------------------------------------
    def post_predictions(self, project: str, items: Sequence[Mapping[str, Any]]) -> PostOutcome:
        """Store predictions (import format, one ``model_version`` for all) without ever doubling one."""
        pending = list(items)
        if not pending:
            return PostOutcome(0, 0)
        version = str(pending[0]["model_version"])
        path = f"/api/projects/{project}/import/predictions"
        for attempt in range(self.retries + 1):
            try:
                data = self._call("POST", path, payload=pending)
                created = data.get("created") if isinstance(data, dict) else None
                return PostOutcome(created if isinstance(created, int) else len(pending), len(items) - len(pending))
            except _Transient as exc:
                if attempt == self.retries:
                    raise exc.error from None
                self._pause(attempt, exc)
            except UpstreamError as exc:
                if exc.upstream_status != 400:
                    raise
                # one task deleted since it was read fails the whole import: drop the gone ones, once
                remaining = self._still_missing(project, pending, version)
                if len(remaining) == len(pending):
                    raise
                pending = remaining
                continue
            pending = self._still_missing(project, pending, version)
            if not pending:
                return PostOutcome(0, len(items))
        raise AssertionError("unreachable")

    def create_prediction(self, project: str, task_id: int, item: Mapping[str, Any]) -> int:
        """Store one prediction (``result``, ``score``, ``model_version``); its id. After a failure worth retrying
        the task is read back first: a prediction of the version stored meanwhile (the lost answer's) is used."""
        body = {"task": task_id, **{k: item[k] for k in ("result", "score", "model_version") if k in item}}
        for attempt in range(self.retries + 1):
            try:
                return int(self._call("POST", "/api/predictions/", payload=body)["id"])
            except _Transient as exc:
                if attempt == self.retries:
                    raise exc.error from None
                self._pause(attempt, exc)
            stored = self.tasks_by_id(project, [task_id])
            found = prediction_id(stored[0], str(item["model_version"])) if stored else None
            if found is not None:
                return found
        raise AssertionError("unreachable")

    def create_annotation(self, task_id: int, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Store one annotation; None when Label Studio already holds one with this ``unique_id``."""
        try:
            data = self._retrying(lambda: self._call("POST", f"/api/tasks/{task_id}/annotations/", payload=body))
        except UpstreamError as exc:
            if exc.upstream_status in (400, 409) and "unique" in exc.message.lower():
                return None
            raise
        return data if isinstance(data, dict) else {}

    def annotation(self, annotation_id: int) -> dict[str, Any] | None:
        """One annotation; None once it is deleted."""
        try:
            data = self._retrying(lambda: self._call("GET", f"/api/annotations/{annotation_id}/"))
        except UpstreamError as exc:
            if exc.upstream_status == 404:
                return None
            raise
        return data if isinstance(data, dict) else None

    def delete_annotation(self, annotation_id: int) -> bool:
        """Delete one annotation; False when it was gone already."""
        try:
            self._retrying(lambda: self._call("DELETE", f"/api/annotations/{annotation_id}/"))
        except UpstreamError as exc:
            if exc.upstream_status == 404:
                return False
            raise
        return True

    def _still_missing(self, project: str, items: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
        """The items whose task still exists and still lacks a prediction of ``version``."""
        tasks = self.tasks_by_id(project, [int(i["task"]) for i in items])
        missing = {t["id"] for t in tasks if not has_version(t, version)}
        return [i for i in items if i["task"] in missing]

    # plumbing ----------------------------------------------------------------------------------
    def _retrying(self, call: Callable[[], Any]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except _Transient as exc:
                if attempt == self.retries:
                    raise exc.error from None
                self._pause(attempt, exc)
        raise AssertionError("unreachable")

    def _pause(self, attempt: int, exc: _Transient) -> None:
        delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2**attempt
        log.warning("Label Studio: %s; retrying in %.1f s (%d/%d)", exc.error.message, delay, attempt + 1,
                    self.retries)
        self._sleep(min(delay, MAX_RETRY_AFTER))

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              payload: Any = None) -> Any:
        """One request after the rate limiter: JSON back, ``_Transient`` or ``UpstreamError`` on failure."""
        self.limiter.wait()
        url = self.client.url_for(path)
        try:
            response = self.client.send(method, url, params=params, json=payload, retry=False,
                                        read_timeout=API_READ_TIMEOUT)
        except UpstreamError as exc:
            if exc.code in ("upstream_unreachable", "upstream_timeout"):
                raise _Transient(exc) from None
            raise
        with response:
            status = response.status_code
            if status == 204:
                return {}
            if status < 400:
                try:
                    return response.json()
                except ValueError:
                    raise UpstreamError(f"{method} {url} answered {status} without JSON") from None
            error = UpstreamError(f"{status} from {method} {url}: {_detail(self.client, response)}",
                                  upstream_status=status)
            if status in TRANSIENT_STATUSES:
                raise _Transient(error, _retry_after(response))
            raise error


def _tasks_of(data: Any) -> list[dict[str, Any]]:
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        raise UpstreamError("Label Studio's task list did not answer a 'tasks' list: is LABEL_STUDIO_URL Label Studio?")
    return tasks


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff


def _detail(client: LabelStudioClient, response: requests.Response) -> str:
    if response.status_code == 401:
        return client.unauthorized_hint()
    text = " ".join(response.text[:300].split())
    return text or response.reason or "no details"
