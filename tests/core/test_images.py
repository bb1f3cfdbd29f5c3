"""labelzoo.images: images decoded as Label Studio shows them, and clear errors for what cannot be."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelzoo.errors import MediaError
from labelzoo.images import open_image


def save(path: Path, image: Image.Image, fmt: str, **params: object) -> Path:
    image.save(path, format=fmt, **params)
    return path


def test_exif_orientation_is_applied_and_the_result_is_rgb(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: the band ends up on top
    path = save(tmp_path / "rotated.jpg", Image.fromarray(pixels), "JPEG", exif=exif, quality=100)
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (20, 40)
    rgb = np.asarray(image)
    assert rgb[:8].mean() > 200 and rgb[12:].mean() < 50


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path: Path) -> None:
    path = save(tmp_path / "wide.png", Image.new("1", (3000, 2000)), "PNG")
    assert open_image(path, max_pixels=6_000_000).size == (3000, 2000)
    with pytest.raises(MediaError, match=r"too large \(3000x2000 pixels; the limit is 5 megapixels\)"):
        open_image(path, max_pixels=5_000_000, shown="task 7's image")
    bomb = save(tmp_path / "bomb.png", Image.new("1", (20_000, 10_000)), "PNG")  # 200 MP in 30 kB
    with pytest.raises(MediaError, match="too large to decode safely"):
        open_image(bomb, max_pixels=10**10)


def test_broken_files_name_the_problem(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(MediaError, match="truncated"):
        open_image(truncated)
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(MediaError, match="not an image"):
        open_image(text, shown="https://example.com/notes.png")
    with pytest.raises(MediaError, match="cannot read image"):
        open_image(tmp_path / "missing.png")


def test_the_pixel_limit_setting_is_read_in_megapixels_and_checked() -> None:
    import pytest

    from labelzoo.images import DEFAULT_MAX_PIXELS, max_pixels_setting
    from labelzoo.settings import Settings

    assert max_pixels_setting(Settings.from_env({})) == DEFAULT_MAX_PIXELS
    assert max_pixels_setting(Settings.from_env({"IMAGE_MAX_MEGAPIXELS": "0.005"})) == 5000
    for bad, words in (("huge", "is not a number"), ("0", "must be a number > 0"), ("nan", "must be a number > 0")):
        with pytest.raises(ValueError, match=f"IMAGE_MAX_MEGAPIXELS='{bad}' {words}"):
            max_pixels_setting(Settings.from_env({"IMAGE_MAX_MEGAPIXELS": bad}))
