"""Tesseract OCR: pages of rendered text served over HTTP vs tesserocr called directly, and vs the CLI.

The pages are the OCR tests' (known text in six Debian fonts at three sizes). The server is ``labelzoo serve``
(gunicorn, one worker) reading them from a local folder; a served run is one ``POST /predict`` with every page,
answered with word boxes, their texts and scores as Label Studio receives them.

(a) served / direct: tesserocr on the same files, one engine, the words iterated with their confidences and
    boxes; target at most 1.15. Agreement: pages whose served words, scores and boxes equal the direct ones.
(b) pytesseract (one ``tesseract`` process per page, Debian's CLI), when it is installed: why the backend
    runs Tesseract in-process.
(c) a box the annotator draws (one line), served through the interactive route vs pytesseract on the crop.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from benchmarks import serving

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.backends.ocr_support import FONTS, OCR_FOLDER, TESSDATA, TEXT, render, served_regions  # noqa: E402

SIZES = (14, 20, 32)
REPEATS = 3
CONFIG = (OCR_FOLDER / "configs" / "words.xml").read_text()


def best(run: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return min(times), out


def direct(paths: list[Path]) -> list[list[tuple[str, float, tuple[int, ...]]]]:
    import tesserocr

    level = tesserocr.RIL.WORD
    pages = []
    with tesserocr.PyTessBaseAPI(path=str(TESSDATA), lang="eng") as api:
        for path in paths:
            api.SetImageFile(str(path))
            api.Recognize()
            pages.append([(r.GetUTF8Text(level).strip(), r.Confidence(level) / 100, r.BoundingBox(level))
                          for r in tesserocr.iterate_level(api.GetIterator(), level) if not r.Empty(level)])
    return pages


def same(served: list, expected: list) -> bool:
    """Served words equal the direct ones: texts, scores, and boxes to a millionth of a pixel."""
    return len(served) == len(expected) and all(
        text == want_text and score == want_score and all(abs(a - b) < 1e-6 for a, b in zip(box, want_box, strict=True))
        for (text, score, box), (want_text, want_score, want_box) in zip(served, expected, strict=True)
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for n, (font, size) in enumerate((font, size) for font in FONTS for size in SIZES):
            paths.append(folder / f"page-{n}.png")
            render(TEXT, font, size).image.save(paths[-1])
        env = {**os.environ, "MODEL_DIR": str(folder / "models"), "MEDIA_CACHE_DIR": str(folder / "cache"),
               "MEDIA_LOCAL_ROOTS": str(folder), "OMP_THREAD_LIMIT": "1"}
        proc, url = serving.start_server(OCR_FOLDER, env, folder / "server.log")
        try:
            tasks = [{"id": i + 1, "data": {"image": str(path)}} for i, path in enumerate(paths)]

            def serve() -> list[dict[str, Any]]:
                answer = requests.post(f"{url}/predict", json={"tasks": tasks, "label_config": CONFIG, "project": 1},
                                       timeout=600)
                answer.raise_for_status()
                return answer.json()["results"]

            served_s, served = best(serve)
            direct_s, expected = best(lambda: direct(paths))
            agree = sum(same(served_regions(s["result"]), e) for s, e in zip(served, expected, strict=True))
            print(f"(a) {len(paths)} pages: served {served_s:.2f} s, direct {direct_s:.2f} s, "
                  f"served/direct {served_s / direct_s:.2f} (target <= 1.15); agreement {agree}/{len(paths)}")
            cli(paths, direct_s)
            box(url, paths[0])
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def cli(paths: list[Path], direct_s: float) -> None:
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception as exc:  # not installed: nothing to compare with
        print(f"(b) pytesseract: not measured ({type(exc).__name__})")
        return
    cli_s, _ = best(lambda: [pytesseract.image_to_data(str(p), lang="eng", output_type="dict") for p in paths])
    print(f"(b) pytesseract (tesseract {pytesseract.get_tesseract_version()} CLI): {cli_s:.2f} s, "
          f"{cli_s / direct_s:.1f}x tesserocr")


def box(url: str, path: Path) -> None:
    from PIL import Image

    width, height = Image.open(path).size
    drawn = {"id": "b", "from_name": "bbox", "to_name": "image", "type": "rectanglelabels",
             "value": {"x": 2, "y": 10, "width": 96, "height": 25, "rotation": 0, "rectanglelabels": ["Text"]}}
    body = {"tasks": [{"id": 1, "data": {"image": str(path)}}], "label_config": CONFIG, "project": 1,
            "params": {"context": {"result": [drawn]}}}
    served_s, _ = best(lambda: requests.post(f"{url}/predict", json=body, timeout=60).raise_for_status())
    line = f"(c) a drawn box: served {served_s * 1000:.0f} ms"
    try:
        import pytesseract

        crop = Image.open(path).crop((int(width * 0.02), int(height * 0.1), int(width * 0.98), int(height * 0.35)))
        cli_s, _ = best(lambda: pytesseract.image_to_data(crop, config="--psm 6", output_type="dict"))
        line += f", pytesseract on the crop {cli_s * 1000:.0f} ms"
    except Exception as exc:
        line += f" (pytesseract not measured: {type(exc).__name__})"
    print(line)
