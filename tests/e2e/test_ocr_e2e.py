"""Tesseract OCR with a real Label Studio: uploaded pages of rendered text, word boxes with their text retrieved
through the Data Manager action and stored, an annotation made from them accepted, and the text inside a box
drawn with the smart tool read through the interactive endpoint."""

from __future__ import annotations

import pytest

from tests.backends.ocr_support import FONTS, OCR_FOLDER, TEXT, needs_tesseract, render
from tests.e2e.project import check_predictions

needs_tesseract()

CONFIG = (OCR_FOLDER / "configs" / "words.xml").read_text()

pytestmark = pytest.mark.slow


def test_ocr_preannotates_uploaded_pages_and_reads_a_drawn_box(label_studio, ls_project, serve_for_ls, tmp_path):
    pages = [render(TEXT[:2], FONTS[0], 22), render(TEXT[2:], FONTS[1], 26)]
    paths = []
    for i, page in enumerate(pages):
        paths.append(tmp_path / f"page {i}.png")
        page.image.save(paths[-1])
    server = serve_for_ls(OCR_FOLDER)

    project = ls_project(CONFIG, title="OCR")
    tasks = project.upload(paths)
    ids = [t["id"] for t in tasks]
    backend = project.connect(server.url, "OCR", is_interactive=True)
    version = backend["model_version"]
    assert version.startswith("tesseract-5.") and version.endswith("-eng"), version

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    by_task = check_predictions(project.predictions(), ids, version, result_types={"rectanglelabels", "textarea"})
    for task, page, text in zip(ids, pages, (TEXT[:2], TEXT[2:]), strict=True):
        result = by_task[task]["result"]
        boxes = [item for item in result if item["type"] == "rectanglelabels"]
        texts = {item["id"]: item["value"]["text"][0] for item in result if item["type"] == "textarea"}
        assert " ".join(texts[box["id"]] for box in boxes) == " ".join(text)  # each word's text on its box
        assert all((b["original_width"], b["original_height"]) == page.image.size for b in boxes)
        assert by_task[task]["score"] == pytest.approx(min(b["score"] for b in boxes))

    stored = project.annotate(ids[0], by_task[ids[0]]["result"])  # accepting the prediction as it is
    assert {item["type"] for item in stored["result"]} == {"rectanglelabels", "textarea"}, stored

    width, height = pages[1].image.size
    (_, top, _, bottom) = pages[1].lines[1][0][1]
    drawn = {"id": "drawn1", "from_name": "bbox", "to_name": "image", "type": "rectanglelabels", "origin": "manual",
             "original_width": width, "original_height": height, "image_rotation": 0,
             "value": {"x": 1.0, "y": (top - 5) * 100 / height, "width": 98.0,
                       "height": (bottom - top + 10) * 100 / height, "rotation": 0, "rectanglelabels": ["Text"]}}
    answer = project.interactive(ids[1], {"result": [drawn]})
    assert "errors" not in answer, answer
    region, text = answer["data"]["result"]
    assert region["id"] == text["id"] == "drawn1" and text["from_name"] == "transcription"
    assert text["value"]["text"] == [TEXT[3]]
    assert len(project.predictions()) == 2  # interactive answers are not stored
    for task in tasks:
        assert label_studio.requests_logged(rf'"GET {task["data"]["image"]} [^"]*" 200'), task
