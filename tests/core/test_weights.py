"""labelzoo.weights: weights named by a setting, as a local file or a URL downloaded once and checked."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labelzoo import LabelzooError, Settings
from labelzoo.weights import RemoteFile, download_once, is_url, weights_file
from tests.conftest import free_port

PAYLOAD = b"weights " * 1000


class Handler(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 with ``model.bin`` (PAYLOAD): (its URL, the paths requested)."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "model.bin").write_bytes(PAYLOAD)
    requests: list[str] = []
    handler = type("Counting", (Handler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.bin", requests
    server.shutdown()
    server.server_close()


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"MODEL_DIR": str(tmp_path / "models"), **env})


def fetch(source: str | RemoteFile, tmp_path: Path, **env: str) -> Path:
    return weights_file(source, settings(tmp_path, **env), setting="MY_WEIGHTS", what="my model's weights")


def test_urls_are_told_from_paths() -> None:
    assert is_url("https://example.org/a.pt") and is_url("http://h/a")
    assert not is_url("/models/a.pt") and not is_url("a.pt") and not is_url("file:///a.pt")


def test_local_paths_are_absolute_or_under_model_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "w.pt").write_bytes(b"x")
    assert fetch("sub/w.pt", tmp_path, MODEL_ROOT=str(tmp_path / "root")) == tmp_path / "root" / "sub" / "w.pt"
    assert fetch(str(tmp_path / "root" / "sub" / "w.pt"), tmp_path) == tmp_path / "root" / "sub" / "w.pt"
    monkeypatch.chdir(tmp_path / "root")
    assert fetch("sub/w.pt", tmp_path) == tmp_path / "root" / "sub" / "w.pt"  # no MODEL_ROOT: the working dir


def test_a_missing_local_file_names_the_setting_and_the_path_tried(tmp_path: Path) -> None:
    with pytest.raises(LabelzooError) as caught:
        fetch("gone.pt", tmp_path, MODEL_ROOT=str(tmp_path))
    assert caught.value.message == (
        f"MY_WEIGHTS 'gone.pt': no file at {tmp_path / 'gone.pt'}; set it to an existing my model's weights file "
        "or to a download URL"
    )


def test_a_url_is_downloaded_once_into_model_dir_checkpoints(tmp_path: Path, served) -> None:
    url, requests = served
    first = fetch(url, tmp_path)
    assert first == tmp_path / "models" / "checkpoints" / "model.bin" and first.read_bytes() == PAYLOAD
    assert fetch(url, tmp_path) == first
    assert requests == ["/model.bin"]
    assert [p.name for p in first.parent.iterdir()] == ["model.bin"]  # no temporary file left


def test_a_download_is_checked_against_the_known_size_and_hash(tmp_path: Path, served) -> None:
    url, _ = served
    good = RemoteFile(url, size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest().upper())
    assert download_once(good, tmp_path / "ok", setting="S", what="w").read_bytes() == PAYLOAD
    for remote, problem in [
        (RemoteFile(url, size=len(PAYLOAD) + 1), f"has {len(PAYLOAD)} bytes, not {len(PAYLOAD) + 1}"),
        (RemoteFile(url, sha256="00" * 32), f"has SHA-256 {hashlib.sha256(PAYLOAD).hexdigest()}, not {'00' * 32}"),
    ]:
        folder = tmp_path / "bad"
        with pytest.raises(LabelzooError) as caught:
            download_once(remote, folder, setting="S", what="w")
        assert f"the w downloaded from {url} {problem}" in caught.value.message
        assert f"put a good copy at {folder / 'model.bin'}" in caught.value.message
        assert list(folder.iterdir()) == []  # nothing that looks complete


def test_a_file_already_there_is_checked_against_the_known_size_only(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/model.bin"  # nothing listens: it must not be fetched again
    (tmp_path / "model.bin").write_bytes(PAYLOAD)
    kept = download_once(RemoteFile(url, size=len(PAYLOAD), sha256="00" * 32), tmp_path, setting="S", what="w")
    assert kept == tmp_path / "model.bin"
    with pytest.raises(LabelzooError, match=f"has {len(PAYLOAD)} bytes, but the w {url} has 5: .* delete it"):
        download_once(RemoteFile(url, size=5), tmp_path, setting="S", what="w")


def test_without_the_network_the_error_says_where_to_put_the_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/big.bin"
    with pytest.raises(LabelzooError) as caught:
        fetch(RemoteFile(url, size=10), tmp_path)
    message = caught.value.message
    assert message.startswith(f"cannot download the my model's weights {url}: URLError")
    assert f"put it at {tmp_path / 'models' / 'checkpoints' / 'big.bin'}, or set MY_WEIGHTS to a local file" in message
    assert list((tmp_path / "models" / "checkpoints").iterdir()) == []
