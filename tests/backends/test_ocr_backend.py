"""The OCR backend over HTTP: what each control gets, thresholds, granularity, interactive boxes, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from labelzoo import Settings
from labelzoo.options import OptionError
from labelzoo.testing import backend_class
from tests.backends.ocr_support import FONTS, OCR_FOLDER, TEXT, needs_tesseract, ocr_client, render

needs_tesseract()

WORDS = (OCR_FOLDER / "configs" / "words.xml").read_text()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ocr-media")
    render(TEXT[:2], FONTS[0], 22).image.save(folder / "page.png")
    Image.new("RGB", (200, 80), "white").save(folder / "blank.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


@pytest.fixture(scope="module")
def client(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    with ocr_client(media, tmp_path_factory.mktemp("ocr-server")) as served:
        yield served


def post(client: FlaskClient, config: str, names: list[str], media: Path, context: dict | None = None):
    tasks = [{"id": i + 1, "data": {"image": str(media / name)}} for i, name in enumerate(names)]
    return client.post("/predict", json={"tasks": tasks, "label_config": config, "project": 1,
                                         "params": {"context": context}})


def results(client: FlaskClient, config: str, names: list[str], media: Path, context: dict | None = None) -> list:
    answer = post(client, config, names, media, context)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["results"]


def config(region: str, text: str = '<TextArea name="text" toName="image" perRegion="true"/>') -> str:
    return f'<View><Image name="image" value="$image"/>{region}{text}</View>'


def test_words_become_labelled_boxes_each_followed_by_its_text(client: FlaskClient, media: Path) -> None:
    (page,) = results(client, WORDS, ["page.png"], media)
    boxes, texts = page["result"][0::2], page["result"][1::2]
    assert [b["type"] for b in boxes] == ["rectanglelabels"] * len(" ".join(TEXT[:2]).split())
    assert all(b["value"]["rectanglelabels"] == ["Text"] for b in boxes)
    assert all(t["type"] == "textarea" and t["id"] == b["id"] and t["score"] == b["score"]
               for b, t in zip(boxes, texts, strict=True))
    assert " ".join(t["value"]["text"][0] for t in texts) == " ".join(TEXT[:2])
    assert page["score"] == min(b["score"] for b in boxes) and 0.5 < page["score"] < 1


def test_lines_unlabelled_rectangles_and_the_whole_text(client: FlaskClient, media: Path) -> None:
    lines = config('<Rectangle name="box" toName="image" model_granularity="line"/>',
                   '<TextArea name="text" toName="image" perRegion="true"/><TextArea name="all" toName="image"/>')
    (page,) = results(client, lines, ["page.png"], media)
    kinds = [(item["type"], item["from_name"]) for item in page["result"]]
    assert kinds == [("rectangle", "box"), ("textarea", "text")] * 2 + [("textarea", "all")]
    assert [page["result"][i]["value"]["text"] for i in (1, 3)] == [[TEXT[0]], [TEXT[1]]]
    assert page["result"][-1]["value"]["text"] == ["\n".join(TEXT[:2])]


def test_a_threshold_leaves_out_unsure_words(client: FlaskClient, media: Path) -> None:
    (everything,) = results(client, WORDS, ["page.png"], media)
    scores = sorted(item["score"] for item in everything["result"][0::2])
    middle = scores[len(scores) // 2]
    strict = WORDS.replace('strokeWidth="2"', f'strokeWidth="2" model_score_threshold="{middle}"')
    (kept,) = results(client, strict, ["page.png"], media)
    assert sorted(item["score"] for item in kept["result"][0::2]) == [s for s in scores if s >= middle]


def test_a_blank_page_is_an_empty_prediction_and_a_broken_image_fails_only_its_task(
    client: FlaskClient, media: Path
) -> None:
    blank, broken, page = results(client, WORDS, ["blank.png", "broken.png", "page.png"], media)
    assert blank["result"] == [] and "score" not in blank and "error" not in blank
    assert broken["error"].startswith("task 2's image") and "result" not in broken
    assert page["result"]


def test_a_drawn_box_comes_back_under_its_id_with_the_text_inside(client: FlaskClient, media: Path) -> None:
    drawn = {"id": "mine", "from_name": "box", "to_name": "image", "type": "rectangle",
             "value": {"x": 0, "y": 0, "width": 100, "height": 50, "rotation": 0}}
    (answer,) = results(client, config('<Rectangle name="box" toName="image" smart="true"/>'), ["page.png"], media,
                        context={"result": [drawn]})
    region, text = answer["result"]
    assert (region["id"], region["type"], text["id"], text["from_name"]) == ("mine", "rectangle", "mine", "text")
    assert region["value"]["width"] == 100 and text["value"]["text"] == [TEXT[0]]


@pytest.mark.parametrize(("prompt", "layout", "message"), [
    ({"type": "keypointlabels", "value": {"x": 5, "y": 5, "keypointlabels": ["Text"]}}, WORDS, "draw one"),
    ({"type": "rectangle", "value": {"x": 5, "y": 5, "width": 9, "height": 9}},
     config('<Rectangle name="bbox" toName="image"/>', ""), 'TextArea perRegion="true"'),
])
def test_a_prompt_it_cannot_answer_says_what_to_do(
    client: FlaskClient, media: Path, prompt: dict, layout: str, message: str
) -> None:
    context = {"result": [{"id": "p", "from_name": "bbox", "to_name": "image", **prompt}]}
    answer = post(client, layout, ["page.png"], media, context=context)
    assert answer.status_code == 422 and message in answer.get_json()["message"]


def test_a_bad_granularity_fails_the_tasks_naming_the_control(client: FlaskClient, media: Path) -> None:
    (page,) = results(client, config('<Rectangle name="box" toName="image" model_granularity="page"/>'), ["page.png"],
                      media)
    assert '<Rectangle name="box"> has model_granularity="page"; use "word" or "line"' in page["error"]


def test_a_language_without_its_traineddata_stops_the_start_naming_the_package(tmp_path: Path) -> None:
    ocr = backend_class(OCR_FOLDER)
    with pytest.raises(OptionError, match=r"no xyz\.traineddata .*tesseract-ocr-xyz.*installed: eng"):
        ocr(Settings.from_env({"MODEL_DIR": str(tmp_path), "OCR_LANGUAGES": "eng+xyz"}))
    with pytest.raises(OptionError, match="OCR_TESSDATA"):
        ocr(Settings.from_env({"MODEL_DIR": str(tmp_path), "OCR_TESSDATA": str(tmp_path / "none")}))
    assert ocr(Settings.from_env({"MODEL_DIR": str(tmp_path), "OCR_LANGUAGES": "eng,"})).languages == "eng"
