"""Decode task images the way Label Studio shows them: EXIF-transposed, RGB, with a pixel-count guard.

Label Studio's editor draws images as the browser decodes them, with EXIF orientation applied, and
all image geometry is in percent of that *natural* size (protocol §5.2, P13). A model must therefore
see the transposed pixels, and results must be converted with the transposed size.

Every failure is a :class:`~labelzoo.errors.MediaError` naming the file and the problem, so one bad
image costs only its task: not an image, a truncated file, or more pixels than ``max_pixels`` (a
decompression bomb: a few kilobytes of PNG can claim 50 000 × 50 000 pixels).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labelzoo.errors import MediaError
from labelzoo.options import Option
from labelzoo.settings import Settings

if TYPE_CHECKING:
    from labelzoo.media.tasks import Decoder

#: the default limit: 100 megapixels (a 12 000 × 8 000 photo is 96 MP)
DEFAULT_MAX_PIXELS = 100_000_000
#: the option every image backend declares (``Options(MAX_MEGAPIXELS, ...)``)
MAX_MEGAPIXELS = Option(
    "IMAGE_MAX_MEGAPIXELS", float, DEFAULT_MAX_PIXELS / 1e6, above=0,
    doc="larger images are refused (a per-task error) before any pixel is decoded (decompression bombs)",
)


def max_pixels_setting(settings: Settings) -> int:
    """``IMAGE_MAX_MEGAPIXELS``: the largest image, in pixels, that image backends decode."""
    return int(MAX_MEGAPIXELS.read(settings.env) * 1_000_000)


def open_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, shown: str | None = None) -> Image.Image:
    """The image at ``path`` decoded to RGB at its natural (EXIF-transposed) size.

    ``shown`` is how the image is named in error messages (e.g. the task's URL), defaulting to the path.
    The size is checked from the header before any pixel is decoded.
    """
    what = shown or str(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and refuses at twice it; ``max_pixels`` decides here instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # above twice Pillow's MAX_IMAGE_PIXELS: never decoded
        raise MediaError(f"{what}: image is too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{what} is not an image Pillow can read (unknown or corrupt format)") from exc
    except ImportError as exc:  # an opener patched in by a library (Ultralytics' HEIF support) lacks its plugin
        raise MediaError(f"{what} is not an image Pillow can read (and no plugin for other formats: {exc})") from exc
    except OSError as exc:
        raise MediaError(f"cannot read image {what} (truncated or corrupt file?): {exc.strerror or exc}") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise MediaError(
                f"{what}: image is too large ({width}x{height} pixels; the limit is {max_pixels / 1e6:g} "
                "megapixels): raise IMAGE_MAX_MEGAPIXELS if such images are expected"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                transposed = ImageOps.exif_transpose(image)
                return transposed.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            # Truncated and corrupt files fail here: Pillow reads only the header in open().
            raise MediaError(f"cannot decode image {what} ({width}x{height}; truncated or corrupt?): {exc}") from exc


def open_array(
    path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, shown: str | None = None, bgr: bool = False
) -> np.ndarray:
    """:func:`open_image` as an (height, width, 3) uint8 array: RGB, or BGR (OpenCV's and Ultralytics' order)."""
    rgb = np.asarray(open_image(path, max_pixels=max_pixels, shown=shown))
    return np.ascontiguousarray(rgb[:, :, ::-1]) if bgr else rgb


def image_decoder(max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoder[Image.Image]:
    """For :meth:`MediaResolver.per_task`: each task's image as a PIL RGB image at its natural size."""
    return lambda item: open_image(item.path, max_pixels=max_pixels, shown=item.where)


def array_decoder(max_pixels: int = DEFAULT_MAX_PIXELS, *, bgr: bool = False) -> Decoder[np.ndarray]:
    """For :meth:`MediaResolver.per_task`: each task's image as an RGB (or ``bgr``) uint8 array."""
    return lambda item: open_array(item.path, max_pixels=max_pixels, shown=item.where, bgr=bgr)
