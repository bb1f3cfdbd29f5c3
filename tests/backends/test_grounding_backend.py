"""The grounding backend: the queries come from the label config (values, ``predicted_values``, a project's prompts),
the boxes and scores are exactly the transformers processor's for OWLv2 and Grounding DINO, the threshold is the
core's, masks come from SAM given each box, and bad input is refused saying why."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("segment_anything")

from PIL import Image

from labelzoo.results import rle_to_mask
from tests.backends.sam_support import sam_module, tiny_checkpoint_fixture, tiny_type_fixture  # noqa: F401
from tests.conftest import REPO

GROUNDING = REPO / "backends" / "grounding"
BOXES = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image" model_score_threshold="{threshold}">
    <Label value="Cat"/>
    <Label value="Vehicle" predicted_values="car,red square"/>
  </RectangleLabels>
</View>"""
QUERIES = ["Cat", "car", "red square"]  # what the model is asked, in order
LABEL_OF = {"Cat": "Cat", "car": "Vehicle", "red square": "Vehicle"}


def boxes(threshold: float) -> str:
    return BOXES.replace("{threshold}", str(threshold))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grounding-media")
    rng = np.random.default_rng(3)
    for n, (height, width) in enumerate([(48, 80), (90, 60), (60, 90)]):
        Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8")).save(folder / f"image{n}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def post(client: Any, config: str, names: list[str], media: Path, **extra: Any) -> list[dict[str, Any]]:
    tasks = [{"id": i + 1, "data": {"image": str(media / name)}} for i, name in enumerate(names)]
    response = client.post("/predict", json={"tasks": tasks, "label_config": config, "project": "5.1700000000",
                                             **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


@pytest.fixture
def serve(make_client: Callable[..., Any], media: Path) -> Callable[..., Any]:
    def make(model: Path, **env: str) -> Any:
        return make_client(GROUNDING, GROUNDING_MODEL=str(model), MEDIA_LOCAL_ROOTS=str(media), DEVICE="cpu", **env)

    return make


Found = list[tuple[tuple[float, ...], float, str]]


def direct(model: Path, image: Path, queries: list[str], threshold: float) -> Found:
    """The model card's recipe, one image at a time: (x0, y0, x1, y1) in pixels, score, and query."""
    import torch
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(model, local_files_only=True)
    detector = AutoModelForZeroShotObjectDetection.from_pretrained(model, local_files_only=True).eval()
    picture = Image.open(image).convert("RGB")
    size = [(picture.height, picture.width)]
    if detector.config.model_type == "owlv2":
        inputs = processor(text=[queries], images=picture, return_tensors="pt")
        with torch.inference_mode():
            outputs = detector(**inputs)
        (found,) = processor.post_process_grounded_object_detection(outputs, threshold=threshold, target_sizes=size,
                                                                    text_labels=[queries])
        labels = found["text_labels"]
    else:
        inputs = processor(images=picture, text=". ".join(queries) + ".", return_tensors="pt")
        with torch.inference_mode():
            outputs = detector(**inputs)
        (found,) = processor.post_process_grounded_object_detection(outputs, inputs.input_ids, threshold=threshold,
                                                                    text_threshold=0.25, target_sizes=size)
        labels = found["text_labels"]
    return sorted(((tuple(float(v) for v in box), float(score), label)
                   for box, score, label in zip(found["boxes"], found["scores"], labels, strict=True)),
                  key=lambda d: -d[1])


def as_pixels(region: dict[str, Any]) -> tuple[float, float, float, float]:
    value, width, height = region["value"], region["original_width"], region["original_height"]
    x, y = value["x"] * width / 100, value["y"] * height / 100
    return x, y, x + value["width"] * width / 100, y + value["height"] * height / 100


def clipped(box: tuple[float, ...], width: int, height: int) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    return (min(max(x0, 0), width), min(max(y0, 0), height), min(max(x1, 0), width), min(max(y1, 0), height))


def test_owl_boxes_and_scores_equal_the_processor_called_directly(serve: Callable[..., Any], tiny_owl: Path,
                                                                  media: Path) -> None:
    client = serve(tiny_owl, GROUNDING_BATCH="2")
    names = ["image0.png", "image1.png", "image2.png"]
    served = post(client, boxes(0.45), names, media)
    found_any = False
    for name, prediction in zip(names, served, strict=True):
        expected = direct(tiny_owl, media / name, QUERIES, 0.45)
        found_any |= bool(expected)
        width, height = Image.open(media / name).size
        got = [(as_pixels(r), r["score"], r["value"]["rectanglelabels"]) for r in prediction["result"]]
        want = [(clipped(box, width, height), score, [LABEL_OF[label]]) for box, score, label in expected]
        assert len(got) == len(want)
        for (box, score, labels), (want_box, want_score, want_labels) in zip(got, want, strict=True):
            assert box == pytest.approx(want_box, abs=1e-3) and score == pytest.approx(want_score, abs=1e-5)
            assert labels == want_labels
        scores = [r["score"] for r in prediction["result"]]
        assert prediction.get("score") == (pytest.approx(min(scores)) if scores else None)
    assert found_any, "the random model finds something at 0.45 on these images"


def test_grounding_dino_boxes_equal_the_processor_and_labels_name_a_query_of_its_phrase(
    serve: Callable[..., Any], tiny_dino: Path, media: Path
) -> None:
    client = serve(tiny_dino)
    names = ["image0.png", "image1.png", "image2.png", "image0.png"]  # two sizes in one batch
    served = post(client, boxes(0.3), names, media)
    shown = 0
    for name, prediction in zip(names, served, strict=True):
        expected = direct(tiny_dino, media / name, QUERIES, 0.3)
        width, height = Image.open(media / name).size
        library = [(clipped(box, width, height), score, phrase) for box, score, phrase in expected]
        for region in prediction["result"]:
            box, score = as_pixels(region), region["score"]
            match = [phrase for want_box, want_score, phrase in library
                     if box == pytest.approx(want_box, abs=1e-3) and score == pytest.approx(want_score, abs=1e-5)]
            assert match, f"{box} {score} is not one of the processor's boxes"
            (label,) = region["value"]["rectanglelabels"]
            queries = [q for q, lab in LABEL_OF.items() if lab == label]
            words = set(re.findall(r"\w+", match[0]))
            assert any(set(q.lower().split()) & words for q in queries), (label, match)
            shown += 1
        assert len(prediction["result"]) <= len(library)
    assert shown, "the random model finds something at 0.3"


def test_the_threshold_is_the_controls_then_the_settings(serve: Callable[..., Any], tiny_owl: Path,
                                                         media: Path) -> None:
    client = serve(tiny_owl)
    loose = post(client, boxes(0.2), ["image0.png"], media)[0]["result"]
    strict = post(client, boxes(0.6), ["image0.png"], media)[0]["result"]
    assert len(loose) > len(strict) and all(r["score"] >= 0.6 for r in strict)
    plain = boxes(0).replace(' model_score_threshold="0"', "")
    assert all(r["score"] >= 0.3 for r in post(client, plain, ["image0.png"], media)[0]["result"])  # the default
    everything = serve(tiny_owl, MODEL_SCORE_THRESHOLD="0.0")
    assert len(post(everything, plain, ["image0.png"], media)[0]["result"]) >= len(loose)


def test_a_projects_prompts_replace_a_labels_own(serve: Callable[..., Any], tiny_owl: Path, media: Path) -> None:
    client = serve(tiny_owl)
    client.post("/setup", json={"project": "5", "schema": boxes(0.0),
                                "extra_params": {"grounding_prompts": {"Cat": "dog"}}})
    served = post(client, boxes(0.45), ["image0.png"], media)[0]["result"]
    expected = direct(tiny_owl, media / "image0.png", ["dog", "car", "red square"], 0.45)
    assert [r["value"]["rectanglelabels"] for r in served] == [
        ["Cat" if label == "dog" else "Vehicle"] for _, _, label in expected]
    client.post("/setup", json={"project": "5", "schema": boxes(0.0), "extra_params": {"grounding_prompts": ["x"]}})
    (failed,) = post(client, boxes(0.45), ["image0.png"], media)
    assert "grounding_prompts must map labels to prompts" in failed["error"]


def test_a_bad_image_fails_its_own_task(serve: Callable[..., Any], tiny_owl: Path, media: Path) -> None:
    good, bad = post(serve(tiny_owl), boxes(0.45), ["image0.png", "broken.png"], media)
    assert "error" not in good and good["result"] and "not an image" in bad["error"]


def test_masks_are_sams_inside_each_box(serve: Callable[..., Any], tiny_owl: Path, media: Path, tiny_type: str,
                                        tiny_checkpoint: Path) -> None:
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image"><Label value="Cat"/></RectangleLabels>
      <BrushLabels name="mask" toName="image"><Label value="Cat"/></BrushLabels></View>"""
    client = serve(tiny_owl, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=str(tiny_checkpoint), MODEL_SCORE_THRESHOLD="0.4")
    (prediction,) = post(client, config, ["image2.png"], media)
    rectangles = [r for r in prediction["result"] if r["type"] == "rectanglelabels"]
    brushes = [r for r in prediction["result"] if r["type"] == "brushlabels"]
    assert rectangles and brushes
    import torch

    sam = sam_module("checkpoint").builders()[tiny_type]()
    sam.load_state_dict(torch.load(tiny_checkpoint, weights_only=True))
    segmenter = sam_module("segmenter").Segmenter(sam)
    embedding = segmenter.embed(np.asarray(Image.open(media / "image2.png").convert("RGB")))
    wanted = []
    for box, score, _ in direct(tiny_owl, media / "image2.png", ["Cat"], 0.4):
        mask = segmenter.segment(embedding, box=np.asarray(box)).mask
        if mask.any():
            wanted.append((mask, score))
    assert len(brushes) == len(wanted)
    for brush, (mask, score) in zip(brushes, wanted, strict=True):
        assert brush["value"]["brushlabels"] == ["Cat"] and brush["score"] == pytest.approx(score, abs=1e-5)
        shown = rle_to_mask(brush["value"]["rle"], brush["original_width"], brush["original_height"])
        assert np.array_equal(shown, mask)


def test_a_model_that_cannot_load_fails_health_with_the_reason(make_client: Callable[..., Any], tmp_path: Path) -> None:
    from tests.core.training_support import wait_for

    client = make_client(GROUNDING, wait=False, GROUNDING_MODEL=str(tmp_path / "nowhere"), HF_HUB_OFFLINE="1")
    health = wait_for(lambda: (h := client.get("/health").get_json())["model"]["state"] == "failed" and h, 60,
                      "the load to fail")
    assert "cannot load processor" in health["model"]["error"] and "GROUNDING_MODEL" in health["model"]["error"]
