"""The Label Studio calls of bulk jobs, against a fake Label Studio: paging, retries, rate limit, no duplicates."""

from __future__ import annotations

import pytest

from labelzoo.bulk.chunks import run_chunk
from labelzoo.bulk.lsapi import RateLimiter
from labelzoo.media.http import UpstreamError
from tests.core.bulk_support import (  # noqa: F401 - fake_ls_fixture
    PROJECT,
    api_for,
    fake_ls_fixture,
    texts,
    versions_per_task,
)
from tests.core.fake_label_studio import FakeLabelStudio

IMPORT = f"/api/projects/{PROJECT}/import/predictions"


def prediction(task_id: int, version: str) -> dict[str, object]:
    return {"task": task_id, "result": [], "score": 0.5, "model_version": version}


def test_missing_pages_through_every_task_and_matches_versions_exactly(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(25))
    fake_ls.add_tasks(PROJECT + 1, texts(3))  # another project's tasks are not listed
    api = api_for(fake_ls)
    # Label Studio's own filter matches versions by substring: "m-1-extra" must not count as "m-1"
    api.post_predictions(str(PROJECT), [prediction(ids[0], "m-1"), prediction(ids[1], "m-1-extra"),
                                        prediction(ids[2], "m-0")])
    pages: list[tuple[int, int]] = []
    missing, total = api.missing(str(PROJECT), "m-1", lambda seen, n: pages.append((seen, n)), page_size=10)
    assert missing == ids[1:] and total == 25
    assert pages == [(10, 25), (20, 25), (25, 25)]
    listed = fake_ls.requests_to("/api/tasks/")
    assert all("fields=all" in r.query and "resolve_uri=false" in r.query for r in listed)


def test_a_project_whose_size_is_a_multiple_of_the_page_ends_on_the_404(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(20))
    missing, total = api_for(fake_ls).missing(str(PROJECT), "m-1", page_size=10)
    assert (missing, total) == (ids, 20)
    assert len(fake_ls.requests_to("/api/tasks/")) == 3  # the third page answers 404: past the end


def test_tasks_by_id_reads_only_the_chosen_tasks_that_still_exist(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(6))
    tasks = api_for(fake_ls).tasks_by_id(str(PROJECT), [ids[1], ids[4], 999])
    assert [t["id"] for t in tasks] == [ids[1], ids[4]]
    query = fake_ls.requests_to("/api/tasks/")[-1].query
    assert "selectedItems" in query and "predictions" in tasks[0]


def test_429_and_5xx_are_retried_with_backoff_and_retry_after(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(3))
    fake_ls.fail_next["/api/tasks/"] = [429, 502, 503]
    sleeps: list[float] = []
    missing, _ = api_for(fake_ls, sleeps).missing(str(PROJECT), "m-1")
    assert missing == ids
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff
    fake_ls.retry_after = "7"
    fake_ls.fail_next["/api/tasks/"] = [429]
    sleeps.clear()
    api_for(fake_ls, sleeps).missing(str(PROJECT), "m-1")
    assert sleeps == [7.0]  # the server's Retry-After wins


def test_retries_run_out_with_an_error_naming_the_status(fake_ls: FakeLabelStudio) -> None:
    fake_ls.add_tasks(PROJECT, texts(2))
    fake_ls.fail_next["/api/tasks/"] = [502] * 3
    with pytest.raises(UpstreamError) as caught:
        api_for(fake_ls, retries=2).missing(str(PROJECT), "m-1")
    assert caught.value.upstream_status == 502 and "/api/tasks/" in caught.value.message


def test_a_client_error_is_not_retried(fake_ls: FakeLabelStudio) -> None:
    api = api_for(fake_ls)
    api.client = type(api.client)(fake_ls.url, "wrong-token")
    sleeps: list[float] = []
    api._sleep = sleeps.append
    with pytest.raises(UpstreamError) as caught:
        api.label_config(str(PROJECT))
    assert caught.value.upstream_status == 401 and "legacy token" in caught.value.message and sleeps == []


def test_a_post_whose_reply_was_lost_is_not_posted_twice(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(4))
    fake_ls.fail_after[IMPORT] = [502]  # stored, but the answer never arrives
    outcome = api_for(fake_ls).post_predictions(str(PROJECT), [prediction(i, "m-1") for i in ids])
    assert versions_per_task(fake_ls) == {i: ["m-1"] for i in ids}
    assert (outcome.created, outcome.already) == (0, 4)
    assert len(fake_ls.requests_to(IMPORT)) == 1  # the read-back found them all: nothing posted again


def test_a_post_retried_after_429_posts_only_what_is_still_missing(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(4))
    api = api_for(fake_ls)
    fake_ls.fail_next[IMPORT] = [429]
    api.post_predictions(str(PROJECT), [prediction(ids[0], "m-1")])  # meanwhile, another writer stored task 0
    fake_ls.fail_next[IMPORT] = [503]
    outcome = api.post_predictions(str(PROJECT), [prediction(i, "m-1") for i in ids])
    assert (outcome.created, outcome.already) == (3, 1)
    assert versions_per_task(fake_ls) == {i: ["m-1"] for i in ids}


def test_a_task_deleted_meanwhile_does_not_sink_the_chunk(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(3))
    del fake_ls.tasks[ids[1]]
    outcome = api_for(fake_ls).post_predictions(str(PROJECT), [prediction(i, "m-1") for i in ids])
    assert (outcome.created, outcome.already) == (2, 1)
    assert versions_per_task(fake_ls) == {ids[0]: ["m-1"], ids[2]: ["m-1"]}


def test_run_chunk_skips_predicted_tasks_and_counts_failures(fake_ls: FakeLabelStudio) -> None:
    ids = fake_ls.add_tasks(PROJECT, texts(4))
    api = api_for(fake_ls)
    api.post_predictions(str(PROJECT), [prediction(ids[0], "m-1")])
    seen: list[int] = []

    def predict(tasks: list) -> list[dict[str, object]]:
        seen.extend(t.id for t in tasks)
        return [{"model_version": "m-1", "error": "boom"} if t.id == ids[2] else
                {"result": [], "score": 0.4, "model_version": "m-1"} for t in tasks]

    report = run_chunk(api, predict, str(PROJECT), "m-1", [*ids, 12345])
    assert seen == ids[1:]
    assert (report.counts.posted, report.counts.skipped, report.counts.failed) == (2, 2, 1)
    assert report.errors == [f"task {ids[2]}: boom"]
    assert versions_per_task(fake_ls) == {ids[0]: ["m-1"], ids[1]: ["m-1"], ids[2]: [], ids[3]: ["m-1"]}


def test_the_rate_limiter_spaces_calls_across_callers() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert sleeps == [0.25, 0.5]  # the 2nd and 3rd call wait for their slot
    now[0] += 10  # idle time is not banked as a burst beyond one call
    sleeps.clear()
    limiter.wait()
    limiter.wait()
    assert sleeps == [0.25]
    unlimited = RateLimiter(0, clock=lambda: now[0], sleep=sleep)
    sleeps.clear()
    unlimited.wait()
    unlimited.wait()
    assert sleeps == []
