"""The OCR backend's settings."""

from __future__ import annotations

import re
from pathlib import Path

from labelzoo.images import MAX_MEGAPIXELS
from labelzoo.options import Option, Options

GRANULARITIES = ("word", "line")


def language_list(raw: str) -> str:
    """``eng+deu`` (Tesseract's spelling), ``eng,deu`` or ``eng deu`` → ``eng+deu``; that each one is installed is
    checked at start-up, against the traineddata folder."""
    names = [name for name in re.split(r"[+,\s]+", raw) if name]
    if not names:
        raise ValueError("names no language; write Tesseract's names joined by +, e.g. eng+deu")
    return "+".join(names)


OPTIONS = Options(
    Option("OCR_LANGUAGES", str, "eng", check=language_list, doc="Tesseract's languages joined by `+` (`eng+deu`); "
           "each needs its `<name>.traineddata` (Debian: `tesseract-ocr-<name>`), checked at start-up"),
    Option("OCR_TESSDATA", Path, None,
           default_doc="`TESSDATA_PREFIX`, else Debian's `/usr/share/tesseract-ocr/5/tessdata`",
           doc="the folder of `*.traineddata` files (a relative path is looked up under `MODEL_ROOT`)"),
    Option("OCR_GRANULARITY", str, "word", choices=GRANULARITIES, doc="one region per `word` or per `line`, unless "
           'a control says `model_granularity="line"` (or `"word"`)'),
    Option("OCR_PSM", int, 3, low=3, high=13, doc="Tesseract's page segmentation mode for whole images: 3 automatic, "
           "4 one column, 6 one block, 11 sparse text (forms, labels); `tesseract --help-psm` lists them"),
    Option("OCR_BOX_PSM", int, 6, low=3, high=13, doc="the page segmentation mode for a box the annotator draws: "
           "6 a block of one or more lines, 7 one line, 8 one word"),
    MAX_MEGAPIXELS,
)
