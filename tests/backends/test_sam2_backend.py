"""The SAM 2 backend on a tiny random-weight SAM 2: clicks and boxes on images give exactly the masks the ``sam2``
package's own predictors give on the same weights and settings; a video track is carried on as its video
predictor carries it; bad prompts and settings are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelzoo import LabelzooError, Task, TaskError
from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import parse_label_config
from labelzoo.results import rle_to_mask
from tests.backends.sam2_support import (  # noqa: F401 - fixtures
    SAM2_FOLDER,
    decoded_frames,
    image_reference,
    make_sam2_fixture,
    moving_square,
    sam2_settings,
    tiny_sam2_fixture,
    track,
    tracking_sam2_fixture,
    video_boxes,
    write_video,
)
from tests.backends.sam_support import click, context, filled, image_task, rect, scene, write_image

pytest.importorskip("sam2")

BRUSH = parse_label_config((SAM2_FOLDER / "configs" / "smart_brush.xml").read_text())
POLYGON = parse_label_config((SAM2_FOLDER / "configs" / "smart_polygon.xml").read_text())
VIDEO = parse_label_config((SAM2_FOLDER / "configs" / "video_tracking.xml").read_text())


@pytest.fixture(scope="module")
def reference(tiny_sam2):
    """``SAM2ImagePredictor`` on ``build_sam2`` of the tiny model: the library called directly."""
    return image_reference(*tiny_sam2)


@pytest.fixture
def picture(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = scene(120, 80, seed=1)
    return write_image(tmp_path / "scene.png", pixels), pixels


def brush_mask(prediction, width: int, height: int) -> np.ndarray:
    (region,) = prediction.result
    assert region["type"] == "brushlabels"
    return rle_to_mask(region["value"]["rle"], width, height)


def test_a_click_gives_the_best_of_three_masks_exactly_as_sam2_image_predictor_does(make_sam2, picture,
                                                                                      reference) -> None:
    path, pixels = picture
    backend = make_sam2()
    (prediction,) = backend.predict([image_task(path)], context(backend.settings, BRUSH, [click(25, 50, label="Dog")]))

    expected, score = reference(pixels, point_coords=np.array([[30.0, 40.0]]), point_labels=np.array([1]),
                                multimask_output=True)
    assert 0 < expected.sum() < expected.size  # a real, partial mask
    np.testing.assert_array_equal(brush_mask(prediction, 120, 80), expected)
    region = prediction.result[0]
    assert (region["from_name"], region["to_name"], region["value"]["brushlabels"]) == ("mask", "image", ["Dog"])
    assert prediction.score == pytest.approx(min(max(score, 0.0), 1.0), abs=1e-6)


@pytest.mark.parametrize(
    ("items", "prompt"),
    [
        ([click(25, 50), click(75, 25, positive=False)],
         {"point_coords": np.array([[30.0, 40.0], [90.0, 20.0]]), "point_labels": np.array([1, 0])}),
        ([rect(10, 20, 50, 50)], {"box": np.array([12.0, 16.0, 72.0, 56.0])}),
        ([rect(10, 20, 50, 50), click(25, 50)], {"point_coords": np.array([[30.0, 40.0]]),
                                                 "point_labels": np.array([1]),
                                                 "box": np.array([12.0, 16.0, 72.0, 56.0])}),
    ],
    ids=["positive-and-negative-clicks", "box", "box-and-click"],
)
def test_several_clicks_or_a_box_give_one_mask_as_sam2_image_predictor_does(make_sam2, picture, reference, items,
                                                                            prompt) -> None:
    path, pixels = picture
    backend = make_sam2()
    (prediction,) = backend.predict([image_task(path)], context(backend.settings, BRUSH, items))
    expected, _ = reference(pixels, multimask_output=False, **prompt)
    np.testing.assert_array_equal(brush_mask(prediction, 120, 80), expected)


def test_polygons_are_traced_from_the_same_mask(make_sam2, picture, reference) -> None:
    path, pixels = picture
    backend = make_sam2(SAM2_POLYGON_TOLERANCE="0")
    (prediction,) = backend.predict([image_task(path)],
                                    context(backend.settings, POLYGON, [click(25, 50, label="Tree")]))
    expected, _ = reference(pixels, point_coords=np.array([[30.0, 40.0]]), point_labels=np.array([1]),
                            multimask_output=True)
    assert prediction.result and all(r["type"] == "polygonlabels" for r in prediction.result)
    assert {tuple(r["value"]["polygonlabels"]) for r in prediction.result} == {("Tree",)}
    import cv2

    drawn = np.zeros(expected.shape, np.uint8)
    for region in prediction.result:
        points = np.array(region["value"]["points"]) * np.array([120, 80]) / 100 - 0.5  # through pixel centres
        cv2.fillPoly(drawn, [np.round(points).astype(np.int32)], 1)
    solid = filled(expected)  # a polygon has no holes
    inside = np.logical_and(drawn, solid).sum()
    assert inside / drawn.sum() >= 0.99  # the outlines hold the mask's pixels...
    assert inside / solid.sum() >= 0.9  # ...and nearly all of them (a one-pixel-wide sliver has no polygon)


def test_ordinary_predictions_are_empty_and_warm_the_cache(make_sam2, picture) -> None:
    path, _ = picture
    backend = make_sam2()
    (prediction,) = backend.predict([image_task(path)], context(backend.settings, BRUSH))
    assert (prediction.result, prediction.score) == ([], None)
    assert backend.cache.wait_idle(30)
    assert backend.cache.stats().entries == 1
    backend.predict([image_task(path)], context(backend.settings, BRUSH, [click(25, 50)]))
    assert backend.cache.stats().misses == 1  # the click used the warmed features


def test_the_version_names_the_official_model_or_the_checkpoint_file(tmp_path: Path, tiny_sam2) -> None:
    from labelzoo.registry import load_backend

    cls = load_backend(str(SAM2_FOLDER)).cls
    assert cls(sam2_settings(tmp_path)).base_version() == "sam2.1-hiera-tiny"
    assert cls(sam2_settings(tmp_path, SAM2_MODEL="sam2-hiera-large")).base_version() == "sam2-hiera-large"
    assert cls(sam2_settings(tmp_path, SAM2_CHECKPOINT=str(tiny_sam2[1]))).base_version() == "sam2-tiny_sam2"


def test_a_bad_model_name_is_refused_naming_the_choices(tmp_path: Path) -> None:
    from labelzoo.options import OptionError
    from labelzoo.registry import load_backend

    with pytest.raises(OptionError, match=r"SAM2_MODEL.*sam2\.1-hiera-tiny"):
        load_backend(str(SAM2_FOLDER)).cls(sam2_settings(tmp_path, SAM2_MODEL="huge"))


def test_a_config_that_builds_nothing_and_a_checkpoint_that_does_not_fit_are_clear_errors(make_sam2, tmp_path,
                                                                                          tiny_sam2) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("# @package _global_\nmodel:\n  _target_: sam2.modeling.sam2_base.NoSuchModel\n")
    with pytest.raises(LabelzooError, match=r"SAM2_CONFIG=.*broken\.yaml.* does not build"):
        make_sam2(SAM2_CONFIG=str(broken))
    import torch

    other = tmp_path / "other.pt"
    torch.save({"model": {"image_encoder.nothing": torch.zeros(1)}}, other)
    with pytest.raises(LabelzooError, match=r"does not fit the SAM 2 config"):
        make_sam2(SAM2_CHECKPOINT=str(other))
    # the package's own configs still compose afterwards
    from hydra import compose

    assert compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml").model.image_size == 1024


def test_an_image_prompt_on_a_video_config_and_a_video_prompt_without_keyframes_are_task_errors(make_sam2,
                                                                                                 tmp_path) -> None:
    backend = make_sam2()
    task = Task(id=1, data={"video": str(tmp_path / "v.mp4")})
    with pytest.raises(TaskError, match="video track"):
        backend.predict([task], context(backend.settings, VIDEO, [{**track([]), "value": {"sequence": []}}]))
    with pytest.raises(LabelConfigError, match="no object tag named 'image'"):
        backend.predict([task], context(backend.settings, VIDEO, [click(10, 10)]))


# --- video -----------------------------------------------------------------------------------------


def percent_keyframe(frame: int, box: tuple[float, float, float, float], size=(160, 120)) -> dict:
    x, y, w, h = box
    return {"frame": frame, "x": x * 100 / size[0], "y": y * 100 / size[1], "width": w * 100 / size[0],
            "height": h * 100 / size[1]}  # fmt: skip


@pytest.fixture(scope="module")
def video_reference(tiny_sam2):
    """``build_sam2_video_predictor`` on the tiny model, called directly."""
    return video_boxes(*tiny_sam2)


def test_a_box_is_carried_on_through_the_next_frames_as_the_video_predictor_carries_it(make_sam2, tmp_path,
                                                                                        video_reference) -> None:
    frames, boxes = moving_square(frames=12)
    path = write_video(tmp_path / "square.mp4", frames)
    backend = make_sam2(SAM2_VIDEO_FRAMES="4")
    keyframes = [percent_keyframe(1, boxes[0]), percent_keyframe(3, boxes[2])]
    (prediction,) = backend.predict([Task(id=7, data={"video": str(path)})],
                                    context(backend.settings, VIDEO, [track(keyframes, region_id="abc")]))

    (region,) = prediction.result
    assert (region["id"], region["from_name"], region["to_name"], region["type"]) == ("abc", "box", "video",
                                                                                     "videorectangle")
    value = region["value"]
    assert value["labels"] == ["Player"]
    assert (value["framesCount"], value["duration"]) == (12, pytest.approx(12 / 25))
    sequence = value["sequence"]
    assert [k["frame"] for k in sequence] == [1, 3, 4, 5, 6, 7]  # the annotator's two, then 4 frames past frame 3
    for mine, theirs in zip(sequence[:2], keyframes, strict=True):  # the annotator's keyframes unchanged
        assert {key: mine[key] for key in ("x", "y", "width", "height")} == pytest.approx(
            {key: theirs[key] for key in ("x", "y", "width", "height")})

    # the library on the same decoded frames (1..7: frame 1 to 4 past the last keyframe), both boxes as prompts
    decoded = decoded_frames(path)[:7]
    prompts = {0: [10, 40, 40, 70], 2: [18, 40, 48, 70]}
    expected = video_reference(decoded, prompts, tmp_path / "frames")
    for keyframe in sequence[2:]:
        box = expected[keyframe["frame"] - 1]
        assert box is not None  # the tiny model's masks are partial, never empty here
        x, y, w, h = box
        assert (keyframe["x"], keyframe["y"], keyframe["width"], keyframe["height"]) == pytest.approx(
            (x * 100 / 160, y * 100 / 120, w * 100 / 160, h * 100 / 120))
        assert keyframe["time"] == pytest.approx(keyframe["frame"] / 25)
    assert all(k["enabled"] for k in sequence)  # seen on every frame; the window's last keeps its lifespan


def test_a_track_whose_last_keyframe_ends_it_is_answered_as_it_is(make_sam2, tmp_path) -> None:
    frames, boxes = moving_square(frames=6)
    path = write_video(tmp_path / "square.mp4", frames)
    backend = make_sam2()
    ended = [percent_keyframe(1, boxes[0]), {**percent_keyframe(2, boxes[1]), "enabled": False}]
    (prediction,) = backend.predict([Task(id=1, data={"video": str(path)})],
                                    context(backend.settings, VIDEO, [track(ended)]))
    sequence = prediction.result[0]["value"]["sequence"]
    assert [(k["frame"], k["enabled"]) for k in sequence] == [(1, True), (2, False)]


class VanishingObject:
    """A stand-in for the video predictor: the object is seen on the frames of ``seen`` (window indices)."""

    def __init__(self, seen: set[int]) -> None:
        self.seen = seen

    def init_state(self, video_path: str, **_) -> dict:
        return {"frames": len(list(Path(video_path).glob("*.jpg"))), "prompts": []}

    def add_new_points_or_box(self, state: dict, frame_idx: int, obj_id: int, box: np.ndarray) -> None:
        state["prompts"].append(frame_idx)

    def propagate_in_video(self, state: dict):
        import torch

        for i in range(min(state["prompts"]), state["frames"]):
            logits = torch.full((1, 1, 120, 160), -1.0)
            if i in self.seen:
                logits[0, 0, 40:70, 10:40] = 1.0
            yield i, [0], logits

    def reset_state(self, state: dict) -> None:
        state.clear()


def test_where_the_object_is_not_seen_the_keyframe_before_ends_its_lifespan(tmp_path) -> None:
    from labelzoo.prompts import read_video_prompt
    from labelzoo.video import video_info
    from tests.backends.sam2_support import sam2_module

    frames, boxes = moving_square(frames=10)
    path = write_video(tmp_path / "square.mp4", frames)
    prompt = read_video_prompt({"result": [track([percent_keyframe(2, boxes[1])])]})
    tracker = sam2_module("tracker").VideoTracker(VanishingObject(seen={0, 3, 4, 6}), frames=6, seconds=60)
    (keyframes,) = tracker.track(path, video_info(path), prompt).values()
    # window = frames 2..8; gone on 3 (right after the annotator's box), back on 5-6, gone on 7, back on 8
    assert [(k.frame, k.enabled) for k in keyframes] == [(2, False), (5, True), (6, False), (8, True)]
    assert keyframes[1].box == (10.0, 40.0, 30.0, 30.0)


def test_tracking_stops_at_the_requests_time_and_answers_the_frames_tracked_by_then(tmp_path, monkeypatch) -> None:
    from labelzoo.prompts import read_video_prompt
    from labelzoo.video import video_info
    from tests.backends.sam2_support import sam2_module

    tracker_module = sam2_module("tracker")
    ticks = iter(range(1000))
    monkeypatch.setattr(tracker_module.time, "monotonic", lambda: next(ticks))  # one second per look at the clock
    frames, boxes = moving_square(frames=10)
    path = write_video(tmp_path / "square.mp4", frames)
    prompt = read_video_prompt({"result": [track([percent_keyframe(1, boxes[0])])]})
    tracker = tracker_module.VideoTracker(VanishingObject(seen=set(range(10))), frames=8, seconds=3)
    (keyframes,) = tracker.track(path, video_info(path), prompt).values()
    # the clock: 0 when the request starts (stop at 3), then 1 after frame 1 (the prompt), 2 after 2, 3 after 3
    assert [(k.frame, k.enabled) for k in keyframes] == [(1, True), (2, True), (3, True)]


@pytest.mark.slow
def test_a_trained_sam2_follows_a_boxed_object_through_39_frames(make_sam2, tmp_path, tracking_sam2) -> None:
    """The done-when of video tracking: a box on frame 1 of a synthetic video the model never saw, carried on
    by the backend through the other 39 frames; each tracked box within IoU 0.8 of the object's, and the
    predictor's masks within mask IoU 0.8 of the object's on every frame."""
    from tests.backends.sam2_support import write_lossless_video
    from tests.backends.sam2_tracking import build_video_predictor, mask_to_box, synthetic_video

    frames, masks = synthetic_video(seed=1002, distractor=False)  # 40 frames, 160 x 120
    path = write_lossless_video(tmp_path / "shape.avi", list(frames))
    config, checkpoint = tracking_sam2
    backend = make_sam2(SAM2_CONFIG=str(config), SAM2_CHECKPOINT=str(checkpoint), SAM2_VIDEO_FRAMES="39")
    x0, y0, x1, y1 = (float(v) for v in mask_to_box(masks[0]))
    first = percent_keyframe(1, (x0, y0, x1 + 1 - x0, y1 + 1 - y0))
    (prediction,) = backend.predict([Task(id=1, data={"video": str(path)})],
                                    context(backend.settings, VIDEO, [track([first])]))
    sequence = prediction.result[0]["value"]["sequence"]
    assert [k["frame"] for k in sequence] == list(range(1, 41))

    def box_iou(keyframe: dict, mask: np.ndarray) -> float:
        bx0, by0, bx1, by1 = mask_to_box(mask)
        truth = (bx0 / 1.6, by0 / 1.2, (bx1 + 1 - bx0) / 1.6, (by1 + 1 - by0) / 1.2)
        from tests.backends.video_support import iou

        return iou(keyframe, truth)

    box_ious = [box_iou(k, masks[k["frame"] - 1]) for k in sequence[1:]]
    assert min(box_ious) >= 0.8, box_ious

    predictor = build_video_predictor(config, checkpoint)  # the library on the same frames: its masks
    folder = tmp_path / "frames"
    folder.mkdir()
    from PIL import Image

    for i, pixels in enumerate(frames):
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", format="PNG")
    state = predictor.init_state(video_path=str(folder), offload_video_to_cpu=True)
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=np.array([x0, y0, x1 + 1, y1 + 1], np.float32))
    mask_ious = []
    for index, _, logits in predictor.propagate_in_video(state):
        if index:
            mask = (logits[0, 0] > 0).numpy()
            mask_ious.append((mask & masks[index]).sum() / (mask | masks[index]).sum())
    assert len(mask_ious) == 39 and min(mask_ious) >= 0.8, mask_ious


def test_a_second_request_on_the_same_video_reuses_the_frames_features(make_sam2, tmp_path, video_reference) -> None:
    """After a correction, SAM 2 encodes only the frames it has not seen; the answer is still the library's."""
    frames, boxes = moving_square(frames=12)
    path = write_video(tmp_path / "square.mp4", frames)
    backend = make_sam2(SAM2_VIDEO_FRAMES="4")
    task = Task(id=7, data={"video": str(path)})
    features = backend.tracker.predictor.features
    backend.predict([task], context(backend.settings, VIDEO, [track([percent_keyframe(1, boxes[0])])]))
    assert (features.lru.stats().misses, features.lru.stats().entries) == (5, 5)  # frames 1-5 encoded

    keyframes = [percent_keyframe(1, boxes[0]), percent_keyframe(3, boxes[2])]  # a box corrected on frame 3
    (prediction,) = backend.predict([task], context(backend.settings, VIDEO, [track(keyframes)]))
    stats = features.lru.stats()
    assert stats.misses == 7 and stats.hits >= 5  # frames 6 and 7 are new; 1-5 come from the first request
    expected = video_reference(decoded_frames(path)[:7], {0: [10, 40, 40, 70], 2: [18, 40, 48, 70]},
                               tmp_path / "frames")
    sequence = prediction.result[0]["value"]["sequence"]
    assert [k["frame"] for k in sequence] == [1, 3, 4, 5, 6, 7]
    for keyframe in sequence[2:]:
        x, y, w, h = expected[keyframe["frame"] - 1]
        assert (keyframe["x"], keyframe["y"], keyframe["width"], keyframe["height"]) == pytest.approx(
            (x * 100 / 160, y * 100 / 120, w * 100 / 160, h * 100 / 120))


def test_another_video_or_a_changed_file_never_gets_cached_features(make_sam2, tmp_path) -> None:
    _, boxes = moving_square(frames=6)
    backend = make_sam2(SAM2_VIDEO_FRAMES="2")
    prompt = [track([percent_keyframe(1, boxes[0])])]
    features = backend.tracker.predictor.features
    for n, seed in enumerate((0, 0, 1)):  # the same content twice under two names, then other content
        path = write_video(tmp_path / f"v{n}.mp4", moving_square(frames=6, seed=seed)[0])
        backend.predict([Task(id=n, data={"video": str(path)})], context(backend.settings, VIDEO, prompt))
    assert (features.lru.stats().misses, features.lru.stats().hits) == (6, 3)


def test_keyframes_past_the_frames_the_file_holds_are_a_media_error(make_sam2, tmp_path) -> None:
    from labelzoo import MediaError
    from labelzoo.prompts import read_video_prompt
    from labelzoo.video import VideoInfo

    frames, boxes = moving_square(frames=6)
    path = write_video(tmp_path / "short.mp4", frames)
    tracker = make_sam2().tracker

    said = VideoInfo(fps=25.0, frames=60, size=(160, 120))  # a container that claims more frames than it holds
    prompt = read_video_prompt({"result": [track([percent_keyframe(20, boxes[0])])]})
    with pytest.raises(MediaError, match="has no frame 20"):
        tracker.track(path, said, prompt)
