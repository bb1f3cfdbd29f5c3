"""The SAM backend's parts without a model: the embedding cache, warm-up queue, prompts and mask outputs."""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from labelzoo import TaskError
from labelzoo.labelconfig import parse_label_config
from labelzoo.results import rle_to_mask
from tests.backends.sam_support import BRUSH_CONFIG, click, rect, sam_module

embeddings = sam_module("embeddings")
prompts = sam_module("prompts")
outputs = sam_module("outputs")
warmup = sam_module("warmup")

ENTRY_BYTES = 4 * 8 * 8 * 4  # a (1, 4, 8, 8) float32 embedding


def entry(tag: float) -> object:
    """A small embedding whose values identify it."""
    return embeddings.Embedding(torch.full((1, 4, 8, 8), float(tag)), (10, 20), (8, 16))


# --- the embedding cache -------------------------------------------------------------------------


def test_cache_counts_hits_and_misses_and_evicts_the_least_recently_used() -> None:
    cache = embeddings.EmbeddingCache(max_bytes=3 * ENTRY_BYTES)
    for i, key in enumerate("abc"):
        cache.get_or_compute(key, lambda i=i: entry(i))
    assert cache.get_or_compute("a", lambda: pytest.fail("a is cached")).features[0, 0, 0, 0] == 0
    cache.get_or_compute("d", lambda: entry(3))  # b is now the least recently used
    assert cache.keys() == ["c", "a", "d"]
    assert "b" not in cache
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.entries, stats.nbytes) == (1, 4, 1, 3, 3 * ENTRY_BYTES)
    cache.get_or_compute("b", lambda: entry(1))  # computed again after eviction
    assert cache.stats().misses == 5 and cache.keys() == ["a", "d", "b"]


def test_cache_keys_follow_the_file_content() -> None:
    data = b"\x89PNG fake image bytes"
    assert embeddings.content_key(data) == embeddings.content_key(bytes(bytearray(data)))
    assert embeddings.content_key(data) != embeddings.content_key(data + b"\0")


def test_cache_hands_back_but_does_not_keep_what_exceeds_its_size() -> None:
    cache = embeddings.EmbeddingCache(max_bytes=ENTRY_BYTES - 1)
    calls = []
    for _ in range(2):
        assert cache.get_or_compute("a", lambda: calls.append(1) or entry(1)).features.shape == (1, 4, 8, 8)
    assert len(calls) == 2 and cache.stats().entries == 0


def test_concurrent_requests_for_one_new_image_compute_it_once() -> None:
    cache = embeddings.EmbeddingCache(max_bytes=10 * ENTRY_BYTES)
    started, release = threading.Event(), threading.Event()
    calls = []

    def compute() -> object:
        calls.append(threading.get_ident())
        started.set()
        release.wait(10)
        return entry(7)

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(cache.get_or_compute, "img", compute)
        assert started.wait(10)
        others = [pool.submit(cache.get_or_compute, "img", compute) for _ in range(5)]
        release.set()
        results = [first.result(10)] + [f.result(10) for f in others]
    assert len(calls) == 1
    assert all(r is results[0] for r in results)
    assert (cache.stats().misses, cache.stats().hits) == (1, 5)


def test_a_failed_computation_reaches_every_waiter_and_is_retried_later() -> None:
    cache = embeddings.EmbeddingCache(max_bytes=10 * ENTRY_BYTES)
    started, release = threading.Event(), threading.Event()

    def broken() -> object:
        started.set()
        release.wait(10)
        raise TaskError("not an image")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get_or_compute, "img", broken)
        assert started.wait(10)
        second = pool.submit(cache.get_or_compute, "img", lambda: pytest.fail("joins the running computation"))
        release.set()
        for future in (first, second):
            with pytest.raises(TaskError, match="not an image"):
                future.result(10)
    assert "img" not in cache
    assert cache.get_or_compute("img", lambda: entry(1)).features[0, 0, 0, 0] == 1


def test_threads_hammering_a_small_cache_keep_it_consistent() -> None:
    cache = embeddings.EmbeddingCache(max_bytes=5 * ENTRY_BYTES)
    wrong = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.randrange(20)
            got = cache.get_or_compute(str(key), lambda key=key: entry(key))
            if got.features[0, 0, 0, 0] != key:
                wrong.append(key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    stats = cache.stats()
    assert wrong == []
    assert stats.hits + stats.misses == 8 * 300
    assert stats.entries == len(cache.keys()) <= 5
    assert stats.nbytes == stats.entries * ENTRY_BYTES
    assert stats.misses - stats.evictions == stats.entries


def test_the_warm_up_queue_caps_waiting_jobs_and_outlives_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    jobs = warmup.WarmUpQueue()
    gate, done = threading.Event(), []

    def boom() -> None:
        raise RuntimeError("decoder exploded")

    assert jobs.submit([lambda: gate.wait(10) and done.append("first"), boom, lambda: done.append("third")], 3) == 3
    assert jobs.submit([lambda: done.append("late")], limit=3) == 0  # three already waiting or running
    assert not jobs.wait_idle(0.05)
    gate.set()
    assert jobs.wait_idle(10)
    assert done == ["first", "third"] and "decoder exploded" in caplog.text
    assert jobs.submit([lambda: done.append("again")], limit=3) == 1
    assert jobs.wait_idle(10) and done[-1] == "again"


# --- prompts -------------------------------------------------------------------------------------


def test_keypoints_become_pixels_with_positive_and_negative_labels() -> None:
    prompt = prompts.read_prompt({"result": [click(25, 50), click(90, 10, positive=False, label="Dog")]})
    points, labels = prompt.pixel_points(200, 100)
    np.testing.assert_allclose(points, [[50, 50], [180, 10]])
    assert labels.tolist() == [1, 0]
    assert (prompt.to_name, prompt.from_name, prompt.label, prompt.box) == ("image", "click", "Dog", None)
    assert prompt.pixel_box(200, 100) is None


def test_clicks_on_the_border_stay_inside_the_image() -> None:
    points, _ = prompts.read_prompt({"result": [click(100, 100), click(-1, 0)]}).pixel_points(64, 48)
    np.testing.assert_allclose(points, [[64, 48], [0, 0]])


def test_a_rectangle_becomes_a_pixel_box() -> None:
    prompt = prompts.read_prompt({"result": [rect(10, 20, 30, 40, label="Dog")]})
    np.testing.assert_allclose(prompt.pixel_box(200, 100), [20, 20, 80, 60])
    assert prompt.pixel_points(200, 100) == (None, None)
    assert prompt.label == "Dog"


def test_a_rotated_rectangle_becomes_the_box_around_it() -> None:
    # Corner (100, 10) px, 40 × 10 px, turned 90° clockwise about that corner: it hangs down-left of it.
    prompt = prompts.read_prompt({"result": [rect(50, 10, 20, 10, rotation=90)]})
    np.testing.assert_allclose(prompt.pixel_box(200, 100), [90, 10, 100, 50], atol=1e-9)


def test_the_newest_of_several_rectangles_is_the_box_and_clicks_can_join_it() -> None:
    items = [rect(0, 0, 10, 10), {**rect(50, 50, 20, 20), "id": "r2"}, click(60, 60)]
    prompt = prompts.read_prompt({"result": items})
    np.testing.assert_allclose(prompt.pixel_box(100, 100), [50, 50, 70, 70])
    np.testing.assert_allclose(prompt.pixel_points(100, 100)[0], [[60, 60]])


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"result": None}, "must be a list"),
        ({"result": [{"type": "brushlabels", "to_name": "image", "value": {}}]}, "found region types: brushlabels"),
        ({"result": [click(1, 1), {**click(2, 2), "to_name": "other"}]}, "one image"),
        ({"result": [{**click(1, 1), "value": {"x": "1", "y": 2}}]}, "value.x='1'"),
        ({"result": [{**click(1, 1), "is_positive": "yes"}]}, "is_positive='yes'"),
        ({"result": [{**rect(1, 1, 2, 2), "value": {"x": 1, "y": 1, "width": 2}}]}, "value.height=None"),
    ],
)
def test_malformed_prompts_name_the_problem(context: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prompts.read_prompt(context)


# --- outputs -------------------------------------------------------------------------------------


def two_squares() -> np.ndarray:
    mask = np.zeros((50, 80), bool)
    mask[10:30, 10:30] = True  # 20 × 20 px
    mask[35:45, 60:70] = True  # 10 × 10 px
    return mask


def test_each_disjoint_part_gets_an_outline_through_its_boundary_pixel_centres() -> None:
    outlines = outputs.mask_outlines(two_squares(), tolerance_px=1.0)
    assert len(outlines) == 2
    expected = [
        {(10.5, 10.5), (29.5, 10.5), (29.5, 29.5), (10.5, 29.5)},
        {(60.5, 35.5), (69.5, 35.5), (69.5, 44.5), (60.5, 44.5)},
    ]
    assert [set(map(tuple, o.tolist())) for o in outlines] == expected  # largest part first


def test_polygon_output_has_one_region_per_part_in_percent() -> None:
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<PolygonLabels name="outline" toName="image"><Label value="Cat"/></PolygonLabels></View>'
    )
    (output,) = outputs.choose_outputs(config, config.object("image"), "Cat", logging.getLogger("t"))
    regions = outputs.mask_regions(output, "image", two_squares(), 0.8, tolerance_px=1.0)
    assert [r["type"] for r in regions] == ["polygonlabels", "polygonlabels"]
    first = regions[0]
    assert (first["from_name"], first["to_name"], first["original_width"], first["original_height"]) == (
        "outline",
        "image",
        80,
        50,
    )
    assert first["value"]["polygonlabels"] == ["Cat"] and first["score"] == 0.8
    pixels = {(round(x * 80 / 100, 6), round(y * 50 / 100, 6)) for x, y in first["value"]["points"]}
    assert pixels == {(10.5, 10.5), (29.5, 10.5), (29.5, 29.5), (10.5, 29.5)}
    assert regions[0]["id"] != regions[1]["id"]


def test_brush_output_holds_every_part_in_one_rle_mask() -> None:
    (output,) = outputs.choose_outputs(BRUSH_CONFIG, BRUSH_CONFIG.object("image"), "Dog", logging.getLogger("t"))
    (region,) = outputs.mask_regions(output, "image", two_squares(), 0.5, tolerance_px=1.0)
    assert (region["type"], region["from_name"], region["value"]["brushlabels"]) == ("brushlabels", "mask", ["Dog"])
    assert (region["original_width"], region["original_height"], region["value"]["format"]) == (80, 50, "rle")
    np.testing.assert_array_equal(rle_to_mask(region["value"]["rle"], 80, 50), two_squares())


def test_an_empty_mask_gives_no_region() -> None:
    (output,) = outputs.choose_outputs(BRUSH_CONFIG, BRUSH_CONFIG.object("image"), "Cat", logging.getLogger("t"))
    assert outputs.mask_regions(output, "image", np.zeros((5, 5), bool), 0.5, tolerance_px=1.0) == []


MIXED = parse_label_config(
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="mask" toName="image"><Label value="Cat" alias="C"/><Label value="Dog"/></BrushLabels>'
    '<PolygonLabels name="outline" toName="image"><Label value="Building"/></PolygonLabels>'
    '<PolygonLabels name="skipped" toName="image" model_skip="true"><Label value="Cat"/></PolygonLabels>'
    '<KeyPointLabels name="click" toName="image" smart="true"><Label value="Cat"/><Label value="Horse"/>'
    "</KeyPointLabels></View>"
)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Cat", [("mask", "C")]),  # the alias is what the brush control's results carry
        ("C", [("mask", "C")]),
        ("Building", [("outline", "Building")]),
        ("Horse", [("mask", "C"), ("outline", "Building")]),  # nobody has it: each control's first label
    ],
)
def test_the_mask_goes_to_the_controls_that_have_the_prompt_label(
    label: str, expected: list, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("labelzoo.test.sam")
    chosen = outputs.choose_outputs(MIXED, MIXED.object("image"), label, log)
    assert [(o.control.name, o.label) for o in chosen] == expected
    assert ("is in none of" in caplog.text) == (label == "Horse")


def test_a_config_without_brush_or_polygon_for_the_image_is_a_task_error() -> None:
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<KeyPointLabels name="click" toName="image"><Label value="Cat"/></KeyPointLabels></View>'
    )
    with pytest.raises(TaskError, match=r'<BrushLabels name="mask" toName="image">'):
        outputs.choose_outputs(config, config.object("image"), "Cat", logging.getLogger("t"))
