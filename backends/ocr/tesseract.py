"""Tesseract through tesserocr: where the language data is, one engine per thread, a page read at two levels.

tesserocr drives Tesseract's C++ API in-process, so the language model is loaded once per engine and each
image costs only its recognition (no process start, no image written to a temporary file as the CLI wrappers
do). An engine (``PyTessBaseAPI``) is not thread-safe, so each server thread gets its own, made on its first
image; tesserocr releases the GIL while Tesseract works, so threads read images in parallel.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tesserocr
from PIL import Image

from labelzoo.options import OptionError

#: where Debian/Ubuntu (tesseract-ocr-* 5.x, then 4.x), Fedora and source builds keep the traineddata files
TESSDATA_DIRS = (
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
    Path("/usr/local/share/tessdata"),
)
LANGUAGE = re.compile(r"[A-Za-z0-9_-]+")
#: the granularities a region can have, and Tesseract's level for each
LEVELS = {"word": tesserocr.RIL.WORD, "line": tesserocr.RIL.TEXTLINE}

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Piece:
    """A word or a line Tesseract read: ``box`` is (left, top, right, bottom) in pixels, right and bottom
    exclusive; ``confidence`` is Tesseract's, 0..100."""

    text: str
    confidence: float
    box: Box


@dataclass(frozen=True)
class Reading:
    """What one recognition of an image (or of a rectangle of it) found, at both levels."""

    pieces: Mapping[str, tuple[Piece, ...]]
    """``"word"`` and ``"line"``: the pieces in reading order."""
    confidence: float
    """Tesseract's mean word confidence (0..100; 0 when it read nothing)."""

    @property
    def text(self) -> str:
        """The lines, one per line of text."""
        return "\n".join(line.text for line in self.pieces["line"])


def find_tessdata(configured: Path | None, env: Mapping[str, str]) -> Path:
    """The traineddata folder: ``OCR_TESSDATA``, else ``TESSDATA_PREFIX``, else the first usual place that has
    any; an :class:`OptionError` says how to install the data when none is found."""
    if configured is not None:
        if not configured.is_dir():
            raise OptionError(f"OCR_TESSDATA={str(configured)!r} is not a folder (it should hold *.traineddata)")
        return configured
    prefix = env.get("TESSDATA_PREFIX", "").strip()
    candidates = [Path(prefix), Path(prefix) / "tessdata"] if prefix else list(TESSDATA_DIRS)
    for folder in candidates:
        if any(folder.glob("*.traineddata")):
            return folder
    raise OptionError(
        f"no Tesseract language data in {', '.join(map(str, candidates))}: install Debian's tesseract-ocr-eng "
        "(`make system-deps`, or apt-get install tesseract-ocr-eng), or set OCR_TESSDATA to a folder of "
        "*.traineddata files"
    )


def installed_languages(tessdata: Path) -> list[str]:
    return sorted(p.stem for p in tessdata.glob("*.traineddata") if p.stem != "osd")


def check_languages(languages: str, tessdata: Path) -> str:
    """``OCR_LANGUAGES`` (Tesseract's ``eng+deu``) once every one of them is found installed in ``tessdata``."""
    names = languages.split("+")
    bad = [name for name in names if not LANGUAGE.fullmatch(name)]
    missing = [name for name in names if name not in bad and not (tessdata / f"{name}.traineddata").is_file()]
    if bad or missing:
        what = f"{', '.join(bad)} {'is not a name' if len(bad) == 1 else 'are not names'}" if bad else ""
        if missing:
            debian = " ".join(f"tesseract-ocr-{name.lower().replace('_', '-')}" for name in missing)
            what += ("; " if what else "") + f"no {', '.join(missing)}.traineddata in {tessdata} (Debian: {debian})"
        raise OptionError(
            f"OCR_LANGUAGES={languages!r}: {what}; installed: {', '.join(installed_languages(tessdata))}"
        )
    return languages


def tesseract_version() -> str:
    """The version of the Tesseract library tesserocr runs, e.g. ``5.5.4``."""
    return tesserocr.tesseract_version().split()[1]


class Tesseract:
    """Reads images with ``languages`` (``eng+deu``) from ``tessdata``; one engine per calling thread."""

    def __init__(self, tessdata: Path, languages: str) -> None:
        self.tessdata = tessdata
        self.languages = languages
        self._local = threading.local()

    def _engine(self) -> tesserocr.PyTessBaseAPI:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = tesserocr.PyTessBaseAPI(path=str(self.tessdata), lang=self.languages)
            self._local.engine = engine
        return engine

    def read(self, image: Image.Image, *, psm: int) -> Reading:
        """Recognise ``image`` with page segmentation mode ``psm``."""
        engine = self._engine()
        engine.SetPageSegMode(psm)
        engine.SetImage(image)
        engine.Recognize()
        pieces = {name: tuple(_pieces(engine, level)) for name, level in LEVELS.items()}
        confidence = float(engine.MeanTextConf()) if pieces["word"] else 0.0
        engine.Clear()
        return Reading(pieces, confidence)


def _pieces(engine: tesserocr.PyTessBaseAPI, level: int) -> list[Piece]:
    iterator = engine.GetIterator()
    if iterator is None:  # nothing recognised
        return []
    found = []
    for item in tesserocr.iterate_level(iterator, level):
        if item.Empty(level):  # GetUTF8Text raises on an empty page
            continue
        text = (item.GetUTF8Text(level) or "").strip()
        box = item.BoundingBox(level)
        if text and box is not None:
            found.append(Piece(text, float(item.Confidence(level)), tuple(box)))
    return found
