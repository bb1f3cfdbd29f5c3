"""labelzoo.embeddings: per-image encoder outputs cached by content, encoded once, warmed up in the background."""

from __future__ import annotations

import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelzoo import MediaError, Settings, Task, TaskError
from labelzoo.embeddings import ImageEmbeddings, content_key
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver

CONFIG = parse_label_config(
    '<View><Image name="image" value="$image"/><Image name="other" value="$other"/>'
    '<BrushLabels name="mask" toName="image,other"><Label value="A"/></BrushLabels></View>'
)
IMAGE, OTHER = CONFIG.object("image"), CONFIG.object("other")
ENTRY = 3 * 8  # what encode() below returns: three float64 means


class Encoder:
    """Counts its calls and records the pixels it saw; ``gate`` (when set) holds every call until opened."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.wait(10)
        with self._lock:
            self.seen.append(pixels)
        return pixels.reshape(-1, 3).mean(axis=0)


def png(path: Path, pixels: np.ndarray, orientation: int | None = None) -> Path:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif)
    path.write_bytes(buffer.getvalue())
    return path


def picture(seed: int, size: tuple[int, int] = (6, 4)) -> np.ndarray:
    width, height = size
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def media(tmp_path: Path) -> MediaResolver:
    env = {"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
           "MEDIA_LOCAL_ROOTS": str(tmp_path)}  # fmt: skip
    return MediaResolver(Settings.from_env(env).media)


def embeddings(encoder: Encoder, *, entries: int = 8, **kwargs: object) -> ImageEmbeddings[np.ndarray]:
    return ImageEmbeddings(encoder, max_bytes=entries * ENTRY, entry_nbytes=ENTRY, **kwargs)  # type: ignore[arg-type]


def test_content_keys_are_digests_of_the_bytes() -> None:
    assert content_key(b"abc") == content_key(bytes(bytearray(b"abc"))) != content_key(b"abd")
    assert len(content_key(b"")) == 32


def test_the_same_picture_anywhere_is_encoded_once_and_a_changed_file_again(tmp_path: Path, media) -> None:
    encoder = Encoder()
    cache = embeddings(encoder)
    first = png(tmp_path / "a.png", picture(1))
    (tmp_path / "copy.png").write_bytes(first.read_bytes())
    a = cache.get(Task(id=1, data={"image": str(first)}), IMAGE, media)
    b = cache.get(Task(id=2, data={"image": str(tmp_path / "copy.png")}), IMAGE, media)
    assert a is b and len(encoder.seen) == 1
    np.testing.assert_array_equal(encoder.seen[0], picture(1))  # RGB uint8 at the natural size
    png(first, picture(2))
    cache.get(Task(id=1, data={"image": str(first)}), IMAGE, media)
    assert len(encoder.seen) == 2 and (cache.stats().misses, cache.stats().hits) == (2, 1)


def test_images_are_encoded_as_label_studio_shows_them(tmp_path: Path, media) -> None:
    encoder = Encoder()
    stored = picture(3, size=(6, 4))
    path = png(tmp_path / "phone.png", stored, orientation=6)  # shown rotated 90° clockwise: 4 wide, 6 high
    embeddings(encoder).get(Task(id=1, data={"image": str(path)}), IMAGE, media)
    np.testing.assert_array_equal(encoder.seen[0], np.rot90(stored, k=-1))


def test_concurrent_requests_for_a_new_image_share_one_encoder_pass(tmp_path: Path, media) -> None:
    encoder = Encoder()
    encoder.gate = threading.Event()
    cache = embeddings(encoder)
    task = Task(id=1, data={"image": str(png(tmp_path / "a.png", picture(4)))})
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(cache.get, task, IMAGE, media) for _ in range(4)]
        threading.Timer(0.2, encoder.gate.set).start()
        values = [f.result(10) for f in futures]
    assert len(encoder.seen) == 1 and all(v is values[0] for v in values)


def test_warm_ups_queue_each_task_image_once_and_no_more_than_the_cache_holds(tmp_path: Path, media) -> None:
    encoder = Encoder()
    encoder.gate = threading.Event()
    cache = embeddings(encoder, entries=3, name="test-embeddings")
    assert cache.capacity == 3
    tasks = [
        Task(id=i, data={"image": str(png(tmp_path / f"{i}.png", picture(10 + i))),
                         "other": str(png(tmp_path / f"o{i}.png", picture(20 + i)))})
        for i in range(3)
    ]  # fmt: skip
    assert cache.warm(tasks[:1], [IMAGE, OTHER], media) == 2
    assert "test-embeddings-warmup" in {thread.name for thread in threading.enumerate()}
    assert cache.warm(tasks[:1], [IMAGE, OTHER], media) == 0  # waiting already
    assert cache.warm(tasks, [IMAGE], media) == 1  # task 0's image is queued; one more fits
    assert not cache.wait_idle(0.05)
    encoder.gate.set()
    assert cache.wait_idle(10)
    assert cache.stats().entries == 3 and len(encoder.seen) == 3
    cache.get(tasks[1], IMAGE, media)
    assert cache.stats().hits == 1  # warmed: the click does not encode


def test_a_warm_up_that_fails_only_logs_and_the_click_gets_the_error(
    tmp_path: Path, media, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bad.png").write_text("not an image")
    task = Task(id=5, data={"image": str(tmp_path / "bad.png")})
    cache = embeddings(Encoder())
    with caplog.at_level(logging.WARNING, "labelzoo.embeddings"):
        assert cache.warm([task], [IMAGE], media) == 1
        assert cache.wait_idle(10)
    assert "no warm-up: task 5's image 'image'" in caplog.text
    with pytest.raises(MediaError, match="task 5's image 'image' is not an image Pillow can read"):
        cache.get(task, IMAGE, media)


def test_oversized_images_and_value_lists_are_refused_before_encoding(tmp_path: Path, media) -> None:
    encoder = Encoder()
    cache = embeddings(encoder, max_pixels=20)
    with pytest.raises(MediaError, match="too large"):
        cache.get(Task(id=1, data={"image": str(png(tmp_path / "a.png", picture(5)))}), IMAGE, media)
    config = parse_label_config('<View><Image name="pages" valueList="$pages"/>'
                                '<BrushLabels name="m" toName="pages"/></View>')  # fmt: skip
    with pytest.raises(TaskError, match="uses valueList"):
        cache.get(Task(id=1, data={"pages": []}), config.object("pages"), media)
    assert encoder.seen == [] and cache.stats().entries == 0


def test_the_size_of_one_embedding_must_be_positive() -> None:
    with pytest.raises(ValueError, match="entry_nbytes"):
        ImageEmbeddings(Encoder(), max_bytes=10, entry_nbytes=0)
