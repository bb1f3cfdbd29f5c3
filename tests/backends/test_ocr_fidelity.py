"""The OCR backend over HTTP gives what tesserocr gives when called directly on the same image with the same
settings (words, lines, boxes, confidences, the text in a drawn box), and Debian's English model reads pages
rendered in six fonts at three sizes with a character error rate of at most 2 %, every word's box on the
rendered word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests.backends.ocr_support import (
    FONTS,
    OCR_FOLDER,
    TESSDATA,
    TEXT,
    edit_distance,
    iou,
    needs_tesseract,
    ocr_client,
    render,
    served_regions,
)

needs_tesseract()
import tesserocr  # noqa: E402

WORDS = (OCR_FOLDER / "configs" / "words.xml").read_text()
LINES = (OCR_FOLDER / "configs" / "lines.xml").read_text()
SIZES = (14, 20, 32)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ocr-media")


@pytest.fixture(scope="module")
def client(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    with ocr_client(media, tmp_path_factory.mktemp("ocr-server")) as served:
        yield served


def predict(client: FlaskClient, config: str, paths: list[Path], context: dict | None = None) -> list[dict]:
    tasks = [{"id": i + 1, "data": {"image": str(path)}} for i, path in enumerate(paths)]
    body = {"tasks": tasks, "label_config": config, "project": 1, "params": {"context": context}}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["results"]


def direct(path: Path, level: int, psm: int, crop: tuple[int, int, int, int] | None = None) -> tuple[list, float]:
    """tesserocr on its own: (text, confidence, box) of each word or line, and the mean word confidence; of the
    ``crop`` (left, top, right, bottom) of the image when given."""
    with tesserocr.PyTessBaseAPI(path=str(TESSDATA), lang="eng", psm=psm) as api:
        if crop is None:
            api.SetImageFile(str(path))
        else:
            api.SetImage(Image.open(path).crop(crop))
        api.Recognize()
        found = [(r.GetUTF8Text(level).strip(), r.Confidence(level), r.BoundingBox(level))
                 for r in tesserocr.iterate_level(api.GetIterator(), level) if not r.Empty(level)]
        return [f for f in found if f[0]], api.MeanTextConf()


def assert_same(served: list, expected: list) -> None:
    assert [(text, score) for text, score, _ in served] == [(text, conf / 100) for text, conf, _ in expected]
    for (_, _, box), (_, _, want) in zip(served, expected, strict=True):
        assert box == pytest.approx(want, abs=1e-6)


def test_served_words_and_lines_are_tesserocrs_own(client: FlaskClient, media: Path) -> None:
    path = media / "page.png"
    render(TEXT, FONTS[0], 20).image.save(path)
    (words,) = predict(client, WORDS, [path])
    assert_same(served_regions(words["result"]), direct(path, tesserocr.RIL.WORD, 3)[0])
    assert words["score"] == min(item["score"] for item in words["result"])  # the least sure word

    (lines,) = predict(client, LINES, [path])
    expected, mean = direct(path, tesserocr.RIL.TEXTLINE, 3)
    assert_same(served_regions(lines["result"]), expected)
    (page,) = [item for item in lines["result"] if item["from_name"] == "page"]
    assert page["value"]["text"] == ["\n".join(text for text, _, _ in expected)] and page["score"] == mean / 100


def test_the_text_in_a_drawn_box_is_tesserocrs_reading_of_that_rectangle(client: FlaskClient, media: Path) -> None:
    page = render(TEXT, FONTS[3], 24)
    path = media / "box.png"
    page.image.save(path)
    width, height = page.image.size
    first = page.lines[1][0][1]  # the first word of the second line
    left, top, right, bottom = first[0] - 4, first[1] - 4, width - 10, first[3] + 6
    drawn = {"id": "drawn-1", "from_name": "bbox", "to_name": "image", "type": "rectanglelabels",
             "original_width": width, "original_height": height, "image_rotation": 0,
             "value": {"x": left * 100 / width, "y": top * 100 / height, "width": (right - left) * 100 / width,
                       "height": (bottom - top) * 100 / height, "rotation": 0, "rectanglelabels": ["Text"]}}
    (answer,) = predict(client, WORDS, [path], context={"result": [drawn]})
    region, text = answer["result"]
    assert region["id"] == text["id"] == "drawn-1" and region["value"]["rectanglelabels"] == ["Text"]
    lines, mean = direct(path, tesserocr.RIL.TEXTLINE, 6, crop=(left, top, right, bottom))
    assert text["value"]["text"] == ["\n".join(line for line, _, _ in lines)] == [TEXT[1]]
    assert answer["score"] == text["score"] == mean / 100


@pytest.mark.slow
def test_rendered_text_is_read_with_under_2_percent_cer_and_boxes_on_the_words(client: FlaskClient, media: Path):
    assert len(FONTS) >= 3, "install fonts-dejavu-core and fonts-liberation2 (make system-deps)"
    pages = [(font, size, render(TEXT, font, size)) for font in FONTS for size in SIZES]
    paths = []
    for n, (_, _, page) in enumerate(pages):
        paths.append(media / f"cer-{n}.png")
        page.image.save(paths[-1])
    errors = chars = 0
    report = []
    for (font, size, page), result in zip(pages, predict(client, WORDS, paths), strict=True):
        read = served_regions(result["result"])
        reference, hypothesis = " ".join(w for w, _ in page.words), " ".join(text for text, _, _ in read)
        errors, chars = errors + edit_distance(reference, hypothesis), chars + len(reference)
        report.append(f"{font.name} {size}px: {hypothesis!r}")
        for text, _, box in read:  # each box lies on the rendered word it reads
            best_iou, word = max((iou(tuple(round(v) for v in box), truth), word) for word, truth in page.words)
            assert best_iou >= 0.25, f"{font.name} {size}px: the box of {text!r} overlaps no rendered word"
            assert edit_distance(word, text) <= 1, f"{font.name} {size}px: {text!r} is on {word!r}"
        covered = [max(iou(tuple(round(v) for v in box), truth) for _, _, box in read) for _, truth in page.words]
        assert min(covered) > 0, f"{font.name} {size}px: a rendered word has no box"
    assert errors / chars <= 0.02, "\n".join(report)
