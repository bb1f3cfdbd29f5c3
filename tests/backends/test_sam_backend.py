"""The SAM backend end to end on a tiny random-weight SAM: real predictor path, cache, warm-up, threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from labelzoo import MediaError, Task, TaskError
from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import parse_label_config
from labelzoo.prediction.predictor import to_json
from labelzoo.results import rle_to_mask
from tests.backends.sam_support import (  # noqa: F401 - fixtures
    POLYGON_CONFIG,
    click,
    context,
    filled,
    image_task,
    make_backend_fixture,
    rect,
    reference_mask,
    scene,
    tiny_checkpoint_fixture,
    tiny_type_fixture,
    write_image,
)


def brush_mask(prediction, width: int, height: int) -> np.ndarray:
    (region,) = prediction.result
    assert region["type"] == "brushlabels"
    assert (region["original_width"], region["original_height"]) == (width, height)
    return rle_to_mask(region["value"]["rle"], width, height)


@pytest.fixture
def picture(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = scene(120, 80, seed=1)
    return write_image(tmp_path / "scene.png", pixels), pixels


def test_a_click_gives_the_best_of_three_masks_exactly_as_sam_predictor_does(make_backend, picture) -> None:
    path, pixels = picture
    backend = make_backend()
    ctx = context(backend.settings, prompt=[click(25, 50, label="Dog", size=(120, 80))])
    (prediction,) = backend.predict([image_task(path)], ctx)

    expected, score = reference_mask(pixels, points=np.array([[30.0, 40.0]]), labels=np.array([1]), multimask=True)
    assert 0 < expected.sum() < expected.size  # a real, partial mask
    np.testing.assert_array_equal(brush_mask(prediction, 120, 80), expected)
    region = prediction.result[0]
    assert (region["from_name"], region["to_name"], region["value"]["brushlabels"]) == ("mask", "image", ["Dog"])
    assert prediction.score == pytest.approx(min(max(score, 0.0), 1.0), abs=1e-6)
    assert region["score"] == prediction.score


@pytest.mark.parametrize(
    ("items", "points", "labels", "box"),
    [
        ([click(25, 50), click(75, 25, positive=False)], [[30, 40], [90, 20]], [1, 0], None),
        ([rect(10, 20, 50, 50)], None, None, [12, 16, 72, 56]),
        ([rect(10, 20, 50, 50), click(25, 50)], [[30, 40]], [1], [12, 16, 72, 56]),
    ],
    ids=["positive-and-negative-clicks", "box", "box-and-click"],
)
def test_several_clicks_or_a_box_give_one_mask_as_sam_predictor_does(
    make_backend, picture, items, points, labels, box
) -> None:
    path, pixels = picture
    backend = make_backend()
    (prediction,) = backend.predict([image_task(path)], context(backend.settings, prompt=items))
    expected, _ = reference_mask(
        pixels,
        points=None if points is None else np.array(points, float),
        labels=None if labels is None else np.array(labels),
        box=None if box is None else np.array(box, float),
        multimask=False,
    )
    np.testing.assert_array_equal(brush_mask(prediction, 120, 80), expected)


def test_percent_coordinates_refer_to_the_exif_rotated_image(make_backend, tmp_path: Path) -> None:
    stored = scene(120, 80, seed=2)  # stored 120 × 80; orientation 6 shows it 80 wide, 120 high
    path = write_image(tmp_path / "phone.png", stored, orientation=6)
    backend = make_backend()
    (prediction,) = backend.predict([image_task(path)], context(backend.settings, prompt=[click(25, 75)]))
    shown = np.ascontiguousarray(np.rot90(stored, k=-1))
    expected, _ = reference_mask(shown, points=np.array([[20.0, 90.0]]), labels=np.array([1]), multimask=True)
    np.testing.assert_array_equal(brush_mask(prediction, 80, 120), expected)


@pytest.mark.parametrize(("tolerance", "min_overlap"), [("0", 0.99), ("1.5", 0.9)])
def test_polygons_decode_back_to_every_part_of_the_mask(make_backend, picture, tolerance, min_overlap) -> None:
    path, pixels = picture
    backend = make_backend(SAM_POLYGON_TOLERANCE=tolerance)
    ctx = context(backend.settings, config=POLYGON_CONFIG, prompt=[click(25, 50, label="Tree")])
    (prediction,) = backend.predict([image_task(path)], ctx)
    expected, _ = reference_mask(pixels, points=np.array([[30.0, 40.0]]), labels=np.array([1]), multimask=True)
    solid = filled(expected)  # a polygon has no holes, and parts inside a hole lie within its outline
    _, _, stats, _ = cv2.connectedComponentsWithStats(solid.astype(np.uint8), connectivity=8)
    sizes = stats[1:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]]
    assert len(sizes) > 1  # several parts
    # One polygon per part that has an area (a one-pixel-wide line has no polygon).
    assert len(prediction.result) == int((sizes.min(axis=1) >= 2).sum())

    drawn = np.zeros((80, 120), np.uint8)
    for region in prediction.result:
        assert (region["type"], region["from_name"], region["value"]["polygonlabels"]) == (
            "polygonlabels",
            "outline",
            ["Tree"],
        )
        points = np.array(region["value"]["points"]) * (120 / 100, 80 / 100)
        # Outlines run through boundary pixel centres: undo the half-pixel shift to rasterise them.
        cv2.fillPoly(drawn, [np.round(points - 0.5).astype(np.int32)], 1)
    overlap = np.logical_and(drawn, solid).sum() / np.logical_or(drawn, solid).sum()
    assert overlap >= min_overlap


def test_ordinary_predictions_are_empty_and_warm_the_cache(make_backend, tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"img{i}.png", scene(100, 70, seed=10 + i)) for i in range(3)]
    tasks = [image_task(p, task_id=i) for i, p in enumerate(paths)]
    backend = make_backend()
    ctx = context(backend.settings)
    predictions = backend.predict(tasks, ctx)

    assert [(p.result, p.score, p.error) for p in predictions] == [([], None, None)] * 3
    assert to_json(predictions[0], "sam-test") == {"result": [], "model_version": "sam-test"}  # valid for LS
    assert backend.cache.wait_idle(30)
    stats = backend.cache.stats()
    assert (stats.misses, stats.entries) == (3, 3)

    (clicked,) = backend.predict([tasks[1]], context(backend.settings, prompt=[click(50, 50)]))
    assert clicked.result  # answered from the warm cache: no encoder pass
    assert (backend.cache.stats().misses, backend.cache.stats().hits) == (3, 1)


def test_a_batch_warms_no_more_images_than_the_cache_holds(make_backend, tmp_path: Path) -> None:
    backend = make_backend(SAM_CACHE_MB="0.125")  # 128 KiB: two 64 KiB embeddings
    assert backend.cache.capacity == 2
    tasks = [image_task(write_image(tmp_path / f"b{i}.png", scene(60, 40, seed=i)), i) for i in range(5)]
    backend.predict(tasks, context(backend.settings))
    assert backend.cache.wait_idle(30)
    assert backend.cache.stats().misses == 2


def test_warm_up_can_be_switched_off(make_backend, picture) -> None:
    backend = make_backend(SAM_WARMUP="false")
    (prediction,) = backend.predict([image_task(picture[0])], context(backend.settings))
    assert prediction.result == [] and backend.cache.wait_idle(5)
    assert backend.cache.stats().misses == 0


def test_a_click_on_a_new_image_encodes_it_once_however_many_ask(make_backend, picture) -> None:
    backend = make_backend()
    encoded = []
    embed = backend.segmenter.embed
    barrier = threading.Barrier(4)

    def counting_embed(pixels):
        encoded.append(1)
        return embed(pixels)

    backend.segmenter.embed = counting_embed

    def click_once(i: int) -> np.ndarray:
        barrier.wait(10)
        ctx = context(backend.settings, prompt=[click(25, 50)])
        return brush_mask(backend.predict([image_task(picture[0], task_id=i)], ctx)[0], 120, 80)

    with ThreadPoolExecutor(4) as pool:
        masks = list(pool.map(click_once, range(4)))
    assert len(encoded) == 1
    assert backend.cache.stats().misses == 1
    assert all(np.array_equal(m, masks[0]) for m in masks)


@pytest.mark.parametrize("cache_mb", ["64", "0.0625"], ids=["roomy-cache", "one-image-cache"])
def test_threads_clicking_on_different_images_never_mix_them_up(make_backend, tmp_path: Path, cache_mb: str) -> None:
    backend = make_backend(SAM_CACHE_MB=cache_mb)
    paths = [write_image(tmp_path / f"t{i}.png", scene(90, 60, seed=20 + i)) for i in range(4)]
    clicks = [click(30, 40), click(60, 50), click(45, 45, positive=True)]

    def answer(i: int, k: int) -> np.ndarray:
        ctx = context(backend.settings, prompt=[clicks[k]])
        return brush_mask(backend.predict([image_task(paths[i], task_id=i)], ctx)[0], 90, 60)

    expected = {(i, k): answer(i, k) for i in range(4) for k in range(3)}
    assert len({m.tobytes() for m in expected.values()}) > 4  # the images really give different masks
    jobs = [(i, k) for _ in range(3) for i in range(4) for k in range(3)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda job: answer(*job), jobs))
    assert all(np.array_equal(mask, expected[job]) for job, mask in zip(jobs, got, strict=True))


def test_bad_requests_are_per_task_errors_that_name_the_problem(make_backend, tmp_path: Path, picture) -> None:
    backend = make_backend()
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    prompt = [click(50, 50)]
    with pytest.raises(MediaError, match="task 1's image 'image' is not an image Pillow can read"):
        backend.predict([image_task(not_an_image)], context(backend.settings, prompt=prompt))
    with pytest.raises(MediaError, match="MEDIA_LOCAL_ROOTS"):
        backend.predict([Task(id=4, data={"image": "/etc/hostname"})], context(backend.settings, prompt=prompt))
    with pytest.raises(LabelConfigError, match="no object tag named 'photo'"):
        backend.predict(
            [image_task(picture[0])], context(backend.settings, prompt=[{**click(5, 5), "to_name": "photo"}])
        )
    with pytest.raises(TaskError, match="no data field 'image'"):
        backend.predict([Task(id=3, data={"img": "x"})], context(backend.settings, prompt=prompt))
    keypoints_only = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<KeyPointLabels name="click" toName="image" smart="true"><Label value="Cat"/></KeyPointLabels></View>'
    )
    with pytest.raises(TaskError, match="no <BrushLabels> or <PolygonLabels>"):
        backend.predict([image_task(picture[0])], context(backend.settings, config=keypoints_only, prompt=prompt))
    with pytest.raises(TaskError, match="keypoint or rectangle prompts"):
        backend.predict([image_task(picture[0])], context(backend.settings, prompt=[]))


def test_images_above_the_pixel_limit_are_refused_before_decoding(make_backend, picture) -> None:
    backend = make_backend(IMAGE_MAX_MEGAPIXELS="0.005")  # 5000 pixels; the picture has 120 x 80 = 9600
    with pytest.raises(MediaError, match="too large"):
        backend.predict([image_task(picture[0])], context(backend.settings, prompt=[click(50, 50)]))
    assert backend.cache.stats().entries == 0
