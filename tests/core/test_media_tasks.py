"""MediaResolver.per_task: each task's media in task order, fetched and decoded ahead, one error per task.

Downloads go to a real local file host (:class:`FakeFileHost`) on 127.0.0.1; local files sit under a
media root, as they do when Label Studio's files are mounted into the backend.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labelzoo import LabelzooError, MediaError, Task, TaskError
from labelzoo.audio import AudioStream, open_stream
from labelzoo.images import array_decoder, image_decoder
from labelzoo.labelconfig import ObjectTag, parse_label_config
from labelzoo.media import MediaResolver, MediaSettings, TaskMedia
from labelzoo.taskdata import media_path, text_of
from tests.core.fake_label_studio import FakeFileHost, FakeLabelStudio

CONFIG = parse_label_config(
    """<View>
      <Image name="image" value="$image"/><Audio name="audio" value="$audio"/>
      <Text name="text" value="$text"/><Text name="page" value="$page" valueType="url"/>
      <Choices name="c" toName="image,audio,text,page"><Choice value="x"/></Choices>
    </View>"""
)
IMAGE, AUDIO, TEXT, PAGE = (CONFIG.object(name) for name in ("image", "audio", "text", "page"))


@pytest.fixture
def host() -> Iterator[FakeFileHost]:
    with FakeFileHost() as server:
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
def media(tmp_path: Path, root: Path) -> Iterator[MediaResolver]:
    resolver = make(tmp_path, root)
    yield resolver
    resolver.close()


def make(tmp_path: Path, root: Path, **options: Any) -> MediaResolver:
    settings = MediaSettings(cache_dir=tmp_path / "cache", local_roots=(root,), allowed_hosts=("127.0.0.1",), **options)
    return MediaResolver(settings)


def tasks_for(field: str, values: list[Any]) -> list[Task]:
    return [Task(id=i + 1, data={field: value}) for i, value in enumerate(values)]


def png(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


# --- order and prefetch ---------------------------------------------------------------------------


def test_values_come_in_task_order_while_downloads_overlap(media: MediaResolver, host: FakeFileHost) -> None:
    delays = [0.6, 0.1, 0.4, 0.0, 0.3, 0.2]
    for i, delay in enumerate(delays):
        host.files[f"/f{i}.txt"] = f"file {i}".encode()
        host.delays[f"/f{i}.txt"] = delay
    tasks = tasks_for("image", [f"{host.url}/f{i}.txt" for i in range(len(delays))])
    started = time.monotonic()
    got = list(media.per_task(tasks, IMAGE))
    elapsed = time.monotonic() - started
    assert [index for index, _ in got] == list(range(len(delays)))
    assert [Path(value).read_text() for _, value in got] == [f"file {i}" for i in range(len(delays))]
    assert elapsed < sum(delays) - 0.5  # in parallel: the slowest one, not their sum


def test_the_same_url_in_many_tasks_is_downloaded_once(media: MediaResolver, host: FakeFileHost) -> None:
    host.files["/same.txt"] = b"shared"
    got = list(media.per_task(tasks_for("image", [f"{host.url}/same.txt"] * 5), IMAGE))
    assert {Path(value).read_bytes() for _, value in got} == {b"shared"}
    assert len(host.requests_to("/same.txt")) == 1


@pytest.mark.parametrize("lookahead", [1, 3])
def test_at_most_lookahead_tasks_are_loaded_ahead_of_the_consumer(
    media: MediaResolver, root: Path, lookahead: int
) -> None:
    for i in range(12):
        (root / f"{i}.bin").write_bytes(b"x")
    loaded: list[int] = []
    lock = threading.Lock()

    def decode(item: TaskMedia) -> int:
        with lock:
            loaded.append(int(item.task.id or 0))
        return int(item.task.id or 0)

    tasks = tasks_for("image", [f"{i}.bin" for i in range(12)])
    ahead = []
    for index, value in media.per_task(tasks, IMAGE, decode, lookahead=lookahead):
        assert value == index + 1
        time.sleep(0.05)  # the model at work: the workers could run far ahead if they were allowed to
        with lock:
            ahead.append(len(loaded) - (index + 1))
    assert sorted(loaded) == list(range(1, 13))
    assert max(ahead) == lookahead  # the prefetch fills the window, and never more


def test_values_not_taken_are_closed_when_the_caller_stops(media: MediaResolver, root: Path) -> None:
    for i in range(6):
        (root / f"{i}.bin").write_bytes(b"x")
    loaded: list[int] = []
    closed: list[int] = []

    class Resource:
        def __init__(self, number: int) -> None:
            self.number = number
            loaded.append(number)

        def close(self) -> None:
            closed.append(self.number)

    items = media.per_task(tasks_for("image", [f"{i}.bin" for i in range(6)]), IMAGE,
                           lambda item: Resource(int(item.task.id or 0)), lookahead=3)  # fmt: skip
    index, first = next(items)
    assert index == 0 and isinstance(first, Resource)
    time.sleep(0.2)  # the three tasks after it load meanwhile
    items.close()  # e.g. the backend hit an error and returned
    deadline = time.monotonic() + 5
    while len(closed) < len(loaded) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(loaded) == [1, 2, 3, 4]  # the one handed out and the three ahead: none further
    assert sorted(closed) == [2, 3, 4]  # the one handed out is the caller's to close


def test_values_still_loading_when_the_caller_stops_are_closed_once_loaded(media: MediaResolver, root: Path) -> None:
    for i in range(6):
        (root / f"{i}.bin").write_bytes(b"x")
    loaded: list[int] = []
    closed: list[int] = []

    class Slow:
        def __init__(self, number: int) -> None:
            time.sleep(0.0 if number == 1 else 0.3)
            self.number = number
            loaded.append(number)

        def close(self) -> None:
            closed.append(self.number)

    items = media.per_task(tasks_for("image", [f"{i}.bin" for i in range(6)]), IMAGE,
                           lambda item: Slow(int(item.task.id or 0)), lookahead=3)  # fmt: skip
    assert next(items)[0] == 0
    items.close()  # tasks 2 and 3 (at least) are still being decoded
    time.sleep(1.0)
    assert 1 in loaded and len(loaded) >= 3 and max(loaded) <= 4
    assert sorted(closed) == sorted(set(loaded) - {1})


def test_lookahead_must_be_positive(media: MediaResolver) -> None:
    with pytest.raises(ValueError, match="lookahead"):
        list(media.per_task(tasks_for("image", ["a.png", "b.png"]), IMAGE, lookahead=0))


def test_label_studio_media_is_fetched_with_each_tasks_id(tmp_path: Path, root: Path) -> None:
    with FakeLabelStudio() as ls:
        ls.cloud_files["s3://bucket/a.png"] = b"cloud bytes"
        upload = ls.add_upload(1, "b.png", b"upload bytes")
        media = MediaResolver(MediaSettings(label_studio_url=ls.url, api_key=ls.pat, cache_dir=tmp_path / "cache"))
        tasks = [Task(id=41, data={"image": "s3://bucket/a.png"}), Task(id=42, data={"image": upload})]
        got = [Path(value).read_bytes() for _, value in media.per_task(tasks, IMAGE)]
        assert got == [b"cloud bytes", b"upload bytes"]
        assert len(ls.requests_to("/tasks/41/presign/")) == 1  # cloud URIs resolve through their own task
        media.close()


# --- errors ---------------------------------------------------------------------------------------


def test_each_failure_is_its_tasks_error_naming_the_task_and_the_field(
    media: MediaResolver, root: Path, host: FakeFileHost
) -> None:
    (root / "good.png").write_bytes(png(Image.new("RGB", (8, 6), (10, 20, 30))))
    (root / "notes.png").write_text("not pixels")
    tasks = [
        Task(id=1, data={"image": "good.png"}),
        Task(id=2, data={"picture": "good.png"}),
        Task(id=3, data={"image": 42}),
        Task(id=4, data={"image": f"{host.url}/missing.png"}),
        Task(id=5, data={"image": "/etc/hostname"}),
        Task(id=6, data={"image": "notes.png"}),
        Task(id=7, data={"image": "good.png"}),
    ]
    got = dict(media.per_task(tasks, IMAGE, image_decoder()))
    assert list(got) == list(range(7))
    assert isinstance(got[0], Image.Image) and isinstance(got[6], Image.Image)
    errors = {i: value for i, value in got.items() if isinstance(value, LabelzooError)}
    assert set(errors) == {1, 2, 3, 4, 5}
    assert isinstance(errors[1], TaskError) and errors[1].message.startswith("task 2 has no data field 'image'")
    assert errors[2].message == "task 3's image 'image': field 'image' must hold a URL or file path, got 42"
    assert isinstance(errors[3], MediaError)
    assert errors[3].message.startswith(f"task 4's image 'image': 404 from {host.url}/missing.png")
    assert errors[4].message.startswith("task 5's image 'image': refusing task media '/etc/hostname'")
    assert errors[5].message.startswith("task 6's image 'image' is not an image Pillow can read")
    assert all(error.status == 422 for error in errors.values())


def test_an_unexpected_decoder_failure_costs_only_its_task(media: MediaResolver, root: Path) -> None:
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(b"x")

    def decode(item: TaskMedia) -> str:
        if item.value == "a.bin":
            raise KeyError("a bug")
        return item.value

    (first, error), (second, fine) = media.per_task(tasks_for("image", ["a.bin", "b.bin"]), IMAGE, decode)
    assert (first, second, fine) == (0, 1, "b.bin")
    assert isinstance(error, MediaError) and isinstance(error.__cause__, KeyError)
    assert error.message == "task 1's image 'image': unexpected error reading its media: KeyError('a bug')"


def test_for_task_raises_the_error_and_returns_the_value(media: MediaResolver, root: Path) -> None:
    (root / "a.bin").write_bytes(b"abc")
    assert media.for_task(Task(id=1, data={"image": "a.bin"}), IMAGE) == (root / "a.bin").resolve()
    with pytest.raises(MediaError, match=r"^task 2's image 'image': task media 'b.bin': no such file"):
        media.for_task(Task(id=2, data={"image": "b.bin"}), IMAGE)
    assert media_path(Task(id=1, data={"image": "a.bin"}), IMAGE, media) == (root / "a.bin").resolve()


# --- decoding -------------------------------------------------------------------------------------


def test_images_decode_upright_as_pil_rgb_or_bgr_arrays(tmp_path: Path, root: Path) -> None:
    stored = Image.new("RGB", (40, 20), (200, 100, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90°: 20 wide, 40 high
    (root / "rotated.jpg").write_bytes(png(stored, "JPEG", exif=exif, quality=100))
    Image.new("1", (300, 200)).save(root / "big.png")
    media = make(tmp_path, root)
    tasks = tasks_for("image", ["rotated.jpg", "big.png"])

    (_, pil), (_, too_big) = media.per_task(tasks, IMAGE, image_decoder(max_pixels=50_000))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (20, 40)
    assert isinstance(too_big, MediaError)
    assert too_big.message.startswith("task 2's image 'image': image is too large (300x200 pixels")
    assert "IMAGE_MAX_MEGAPIXELS" in too_big.message

    rgb = media.for_task(tasks[0], IMAGE, array_decoder())
    bgr = media.for_task(tasks[0], IMAGE, array_decoder(bgr=True))
    assert rgb.shape == bgr.shape == (40, 20, 3) and rgb.dtype == bgr.dtype == np.uint8
    np.testing.assert_allclose(rgb[20, 10], (200, 100, 50), atol=3)
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])
    assert bgr.flags.c_contiguous and bgr.flags.writeable


def test_audio_is_handed_out_as_a_stream_decoding_in_windows(media: MediaResolver, root: Path) -> None:
    import subprocess

    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
         str(root / "tone.wav")],
        check=True,
    )  # fmt: skip
    (root / "empty.wav").write_bytes(b"")
    (_, stream), (_, empty) = media.per_task(tasks_for("audio", ["tone.wav", "empty.wav"]), AUDIO, open_stream)
    assert isinstance(stream, AudioStream)
    with stream:
        windows = list(stream.windows(0.25))
    assert [len(w) for w in windows] == [4000] * 4
    assert isinstance(empty, TaskError)
    assert empty.message == "task 2's audio 'audio': audio file empty.wav is empty (0 bytes)"


def test_texts_are_inline_or_downloaded_like_text_of(media: MediaResolver, host: FakeFileHost) -> None:
    host.files["/letter.txt"] = "Dear Ada, ünïcode".encode()
    host.files["/latin1.txt"] = "caf\xe9".encode("latin-1")
    inline = [Task(id=1, data={"text": "hello"}), Task(id=2, data={"text": ["a", "list"]}), Task(id=3, data={})]
    got = [value for _, value in media.per_task(inline, TEXT)]
    assert got[0] == "hello"
    assert isinstance(got[1], TaskError)
    assert got[1].message == "task 2's text 'text': field 'text' must hold a string, got list"
    assert isinstance(got[2], TaskError) and "no data field 'text'" in got[2].message

    pages = tasks_for("page", [f"{host.url}/letter.txt", f"{host.url}/latin1.txt", f"{host.url}/gone.txt"])
    letter, latin1, gone = (value for _, value in media.per_task(pages, PAGE))
    assert letter == "Dear Ada, ünïcode" == text_of(pages[0], PAGE, media)
    assert isinstance(latin1, MediaError) and "is not utf-8 text" in latin1.message
    assert isinstance(gone, MediaError) and gone.message.startswith("task 3's text 'page': 404 from")
    with pytest.raises(MediaError, match="task 3's text 'page': 404"):
        text_of(pages[2], PAGE, media)


def test_objects_are_described_by_task_tag_and_name() -> None:
    from labelzoo.media.tasks import describe

    obj: ObjectTag = IMAGE
    assert describe(Task(id=9, data={}), obj) == "task 9's image 'image'"
    assert describe(Task(id=None, data={}), obj) == "a task's image 'image'"
