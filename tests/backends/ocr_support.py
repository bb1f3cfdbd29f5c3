"""Shared by the OCR tests: pages of known text rendered with Debian's fonts, where each word landed, and the
character error rate of what was read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageDraw, ImageFont

from labelzoo.results import read_rectangles, read_textareas
from labelzoo.testing import backend_client

OCR_FOLDER = Path(__file__).resolve().parents[2] / "backends" / "ocr"
TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
#: fonts-dejavu-core and fonts-liberation2 (make system-deps): sans, serif and monospaced faces of two families
FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
]
FONTS = [Path(f) for f in FONT_FILES if Path(f).is_file()]
TEXT = [
    "Invoice 2041 was paid on 12 March, two days late.",
    "Please return the signed copy to Mrs. Baker by Friday.",
    "The river rose 3.5 metres after the storm (a record).",
    "Quiet wizards jog past my old brick factory at dawn.",
]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Page:
    image: Image.Image
    lines: list[list[tuple[str, Box]]]
    """Each line's words with the box of their ink: (left, top, right, bottom), right and bottom exclusive."""

    @property
    def words(self) -> list[tuple[str, Box]]:
        return [word for line in self.lines for word in line]


def needs_tesseract() -> None:
    """Skip unless tesserocr and Debian's English model are installed (`make system-deps`, the ocr extra)."""
    pytest.importorskip("tesserocr")
    if not (TESSDATA / "eng.traineddata").is_file():
        pytest.skip(f"no {TESSDATA}/eng.traineddata: install Debian's tesseract-ocr-eng (make system-deps)",
                    allow_module_level=True)


def render(text: list[str], font_file: Path, size: int, margin: int = 30) -> Page:
    """Black text on white, a word at a time so that each word's ink box is known exactly."""
    font = ImageFont.truetype(str(font_file), size)
    space, step = font.getlength(" "), round(size * 1.7)
    width = margin * 2 + max(round(font.getlength(line)) for line in text) + len(text[0])
    image = Image.new("RGB", (width, margin * 2 + step * len(text)), "white")
    draw = ImageDraw.Draw(image)
    lines = []
    for row, line in enumerate(text):
        x, y, words = float(margin), margin + row * step, []
        for word in line.split():
            draw.text((x, y), word, font=font, fill="black")
            left, top, right, bottom = draw.textbbox((x, y), word, font=font)
            words.append((word, (int(left), int(top), int(right), int(bottom))))
            x += font.getlength(word) + space
        lines.append(words)
    return Page(image, lines)


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def iou(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def served_regions(result: list[dict[str, Any]]) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    """(text, score, pixel box (left, top, right, bottom)) of each box in a served result, its text from the
    per-region TextArea that shares its id."""
    texts = {area.id: area.texts[0] for area in read_textareas(result, None) if "x" in area.item["value"]}
    out = []
    for box in read_rectangles(result, None):
        left, top, width, height = box.box()
        out.append((texts[box.id], box.item["score"], (left, top, left + width, top + height)))
    return out


@contextmanager
def ocr_client(media: Path, root: Path) -> Iterator[FlaskClient]:
    """The OCR backend in this process, reading local files under ``media``, its state under ``root``."""
    env = {"MODEL_DIR": str(root / "models"), "MEDIA_CACHE_DIR": str(root / "cache"), "MEDIA_LOCAL_ROOTS": str(media)}
    with backend_client(OCR_FOLDER, env) as served:
        yield served
