"""MediaResolver against a real local fake Label Studio and a second host playing S3 / the internet.

Everything runs on 127.0.0.1. Addresses such as 10.0.0.1 appear only in URLs the guard must refuse
before any connection; a patched ``Session.send`` proves nothing was sent.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labelzoo.errors import MediaError
from labelzoo.media import LabelStudioClient, MediaResolver, MediaSettings
from tests.core.fake_label_studio import FakeFileHost, FakeLabelStudio, make_jwt
from tests.core.test_lsclient import free_port

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


@pytest.fixture
def ls() -> Iterator[FakeLabelStudio]:
    with FakeLabelStudio() as server:
        yield server


@pytest.fixture
def host() -> Iterator[FakeFileHost]:
    with FakeFileHost() as server:
        yield server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def make(
    cache_dir: Path, ls: FakeLabelStudio | None = None, key: str | None = None, **options: Any
) -> MediaResolver:
    settings = MediaSettings(
        label_studio_url=ls.url if ls else None, api_key=key, cache_dir=cache_dir, **options
    )
    return MediaResolver(settings)


def media_error(resolver: MediaResolver, value: str, task_id: int | None = None) -> str:
    with pytest.raises(MediaError) as caught:
        resolver.local_path(value, task_id=task_id)
    assert caught.value.status == 422
    return caught.value.message


def cached_files(cache_dir: Path) -> list[str]:
    return sorted(os.listdir(cache_dir))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request was sent")

    monkeypatch.setattr(requests.Session, "send", refuse)


# uploads and authentication ---------------------------------------------------------------------
def test_upload_with_pat_uses_bearer_access_token(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(3, "cat.jpg", JPEG)
    resolver = make(cache_dir, ls, ls.pat)
    path = resolver.local_path(value, task_id=1)
    assert path.read_bytes() == JPEG and path.suffix == ".jpg" and path.parent == cache_dir
    assert resolver.read_bytes(ls.add_upload(3, "dog.jpg", b"dog")) == b"dog"
    assert ls.refresh_calls == 1
    auth = {r.authorization for r in ls.requests_to("/data/upload/")}
    assert len(auth) == 1 and str(auth.pop()).startswith("Bearer ")


def test_stale_access_token_is_refreshed_once_mid_batch(ls: FakeLabelStudio, cache_dir: Path) -> None:
    resolver = make(cache_dir, ls, ls.pat)
    resolver.local_path(ls.add_upload(1, "a.jpg", b"a"))
    ls.revoke_access_tokens()  # e.g. Label Studio restarted with a new signing key
    ls.clear_log()
    assert resolver.read_bytes(ls.add_upload(1, "b.jpg", b"b")) == b"b"
    assert ls.refresh_calls == 1
    assert [r.path.startswith("/data/upload/") for r in ls.requests] == [True, False, True]


def test_upload_with_legacy_token_and_short_forms(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(3, "notes.txt", "héllo".encode())
    resolver = make(cache_dir, ls, ls.legacy_token)
    assert resolver.read_text(value) == "héllo"
    assert resolver.read_text(value.removeprefix("/data/")) == "héllo"  # "upload/3/…" without /data
    assert resolver.read_text(ls.url + value) == "héllo"  # absolute URL on the Label Studio host
    assert {r.authorization for r in ls.requests_to("/data/upload/")} == {f"Token {ls.legacy_token}"}


def test_sub_path_deployment(cache_dir: Path) -> None:
    with FakeLabelStudio(prefix="/ls") as ls:
        value = ls.add_upload(1, "a.png", b"png")
        assert value.startswith("/ls/data/upload/")
        resolver = make(cache_dir, ls, ls.pat)
        assert resolver.read_bytes(value) == b"png"
        assert resolver.read_bytes(value.removeprefix("/ls")) == b"png"  # cached: same URL
        assert len(ls.requests_to("/ls/data/upload/")) == 1


def test_cache_hit_does_not_download_again(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(1, "a.jpg", JPEG)
    first = make(cache_dir, ls, ls.legacy_token).local_path(value)
    assert make(cache_dir, ls, ls.legacy_token).local_path(value) == first  # another process, same cache
    assert len(ls.requests_to("/data/upload/")) == 1


def test_credentials_never_go_to_another_host(
    ls: FakeLabelStudio, host: FakeFileHost, cache_dir: Path
) -> None:
    host.files["/pics/a.jpg"] = JPEG
    resolver = make(cache_dir, ls, ls.legacy_token, allowed_hosts=("127.0.0.1",))
    assert resolver.read_bytes(host.url + "/pics/a.jpg") == JPEG
    assert host.requests[0].authorization is None
    assert ls.requests == []


def test_login_redirect_is_reported_as_401(cache_dir: Path) -> None:
    with FakeLabelStudio(login_redirect=True) as ls:
        value = ls.add_upload(1, "a.jpg", JPEG)
        message = media_error(make(cache_dir, ls), value)
        assert message.startswith(f"401 from {ls.url}{value}: Label Studio redirected to its login page")
        assert ls.requests_to("/user/login/") == []
    assert cached_files(cache_dir) == []


@pytest.mark.parametrize(
    ("key", "kind_hint"), [("wrong-legacy-key", "legacy token"), (None, "it is not set")]
)
def test_401_message(ls: FakeLabelStudio, cache_dir: Path, key: str | None, kind_hint: str) -> None:
    value = ls.add_upload(1, "a.jpg", JPEG)
    message = media_error(make(cache_dir, ls, key), value)
    assert message.startswith(
        f"401 from {ls.url}{value}: LABEL_STUDIO_API_KEY is missing or not a valid token"
    )
    assert kind_hint in message and "Personal Access Token" in message


def test_rejected_pat(ls: FakeLabelStudio, cache_dir: Path) -> None:
    bad_pat = make_jwt({"token_type": "refresh", "exp": 4102444800, "jti": "gone"})
    message = media_error(make(cache_dir, ls, bad_pat), ls.add_upload(1, "a.jpg", JPEG))
    assert message.startswith(f"LABEL_STUDIO_API_KEY was rejected by {ls.url}/api/token/refresh/ (401)")


def test_403_and_404_messages(ls: FakeLabelStudio, cache_dir: Path) -> None:
    resolver = make(cache_dir, ls, ls.legacy_token)
    missing = "/data/upload/1/deleted.jpg"
    assert media_error(resolver, missing) == (
        f"404 from {ls.url}{missing}: file not found in Label Studio (was it deleted?)"
    )
    value = ls.add_upload(1, "a.jpg", JPEG)
    ls.fail_next[value] = [403]
    assert "has no access to this task's project" in media_error(resolver, value)


def test_label_studio_api_is_not_media(ls: FakeLabelStudio, cache_dir: Path) -> None:
    resolver = make(cache_dir, ls, ls.legacy_token)
    for value in (
        f"{ls.url}/api/current-user/whoami",
        "/data/../api/current-user/whoami",
        "/data/%2E%2E/api/current-user/whoami",
        "/tasks/1/",
    ):
        assert "not one of its media paths" in media_error(resolver, value)
    assert ls.requests == []


def test_relative_url_without_label_studio_url(cache_dir: Path, no_network: None) -> None:
    message = media_error(make(cache_dir), "/data/upload/1/a.jpg")
    assert message == (
        "task media '/data/upload/1/a.jpg' is stored in Label Studio: set LABEL_STUDIO_URL (and "
        "LABEL_STUDIO_API_KEY) so the backend can download it"
    )


# local files --------------------------------------------------------------------------------------
def test_local_files_through_label_studio(ls: FakeLabelStudio, cache_dir: Path) -> None:
    ls.local_files["photos/cat 1+2.jpg"] = JPEG
    resolver = make(cache_dir, ls, ls.pat)
    path = resolver.local_path("/data/local-files/?d=photos/cat%201%2B2.jpg")
    assert path.read_bytes() == JPEG and path.suffix == ".jpg"
    assert str(ls.requests_to("/data/local-files/")[0].authorization).startswith("Bearer ")


def test_local_files_served_from_a_local_root(ls: FakeLabelStudio, tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "docs"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "cat 1.jpg").write_bytes(JPEG)
    resolver = make(cache_dir, ls, ls.pat, local_roots=(root,))
    for value in (
        "/data/local-files/?d=photos/cat%201.jpg",
        f"{ls.url}/data/local-files/?d=photos%2Fcat%201.jpg",
    ):
        assert resolver.local_path(value) == (root / "photos" / "cat 1.jpg").resolve()
    assert ls.requests == []
    ls.local_files["photos/dog.jpg"] = b"dog"  # not on the local disk: Label Studio serves it
    assert resolver.read_bytes("/data/local-files/?d=photos/dog.jpg") == b"dog"


def test_local_files_escape_is_refused(tmp_path: Path, cache_dir: Path, no_network: None) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    resolver = make(cache_dir, local_roots=(root,))
    for value in ("/data/local-files/?d=../secret.txt", "/data/local-files/?d=%2E%2E/secret.txt"):
        assert "leads outside the local folder" in media_error(resolver, value)
    assert "leads outside" in media_error(resolver, "/data/local-files/?d=link.txt")


def test_local_files_forbidden_by_label_studio(cache_dir: Path) -> None:
    with FakeLabelStudio(local_files_serving_enabled=False) as ls:
        message = media_error(make(cache_dir, ls, ls.pat), "/data/local-files/?d=a.jpg")
    assert message.startswith(f"403 from {ls.url}/data/local-files/?d=a.jpg:")
    assert "LOCAL_FILES_SERVING_ENABLED=true" in message and "LOCAL_FILES_DOCUMENT_ROOT" in message


def test_plain_local_paths_only_inside_roots(tmp_path: Path, cache_dir: Path, no_network: None) -> None:
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "outside.wav").write_bytes(b"RIFF")
    (root / "out.wav").symlink_to(tmp_path / "outside.wav")
    resolver = make(cache_dir, local_roots=(root,))
    inside = (root / "sub" / "a.wav").resolve()
    assert resolver.local_path(str(root / "sub" / "a.wav")) == inside
    assert resolver.local_path("sub/a.wav") == inside
    assert resolver.local_path(f"file://{root}/sub/a.wav") == inside
    assert "outside the allowed local folders" in media_error(resolver, str(tmp_path / "outside.wav"))
    assert "outside the allowed local folders" in media_error(resolver, str(root / "out.wav"))
    assert "outside the allowed local folders" in media_error(resolver, f"{root}/sub/../../outside.wav")
    assert "leads outside" in media_error(resolver, "../outside.wav")
    assert "no such file" in media_error(resolver, "sub/missing.wav")
    assert "MEDIA_LOCAL_ROOTS" in media_error(make(cache_dir), str(root / "sub" / "a.wav"))
    assert "File name too long" in media_error(resolver, f"{root}/{'x' * 5000}.wav")


# cloud storage --------------------------------------------------------------------------------------
def test_presigned_redirect_is_followed_without_credentials(
    ls: FakeLabelStudio, host: FakeFileHost, cache_dir: Path
) -> None:
    uri = "s3://bucket/dir/cat.jpg"
    ls.presign[uri] = f"{host.url}/bucket/dir/cat.jpg?X-Amz-Signature=secret"
    host.files["/bucket/dir/cat.jpg"] = JPEG
    resolver = make(cache_dir, ls, ls.pat, allowed_hosts=("127.0.0.1",))
    path = resolver.local_path(uri, task_id=7)
    assert path.read_bytes() == JPEG and path.suffix == ".jpg"
    presign = ls.requests_to("/tasks/7/presign/")[0]
    assert str(presign.authorization).startswith("Bearer ")
    fileuri = base64.urlsafe_b64encode(uri.encode()).decode()
    assert presign.query == "fileuri=" + fileuri.replace("=", "%3D")
    assert host.requests[0].authorization is None
    assert resolver.local_path(uri, task_id=8) == path  # cached by URI, whatever the task
    assert len(ls.requests_to("/tasks/")) == 1


def test_presigned_url_errors_hide_the_signature(
    ls: FakeLabelStudio, host: FakeFileHost, cache_dir: Path
) -> None:
    ls.presign["s3://bucket/expired.jpg"] = f"{host.url}/bucket/expired.jpg?X-Amz-Signature=secret"
    host.fail_next["/bucket/expired.jpg"] = [403]
    message = media_error(
        make(cache_dir, ls, ls.pat, allowed_hosts=("127.0.0.1",)), "s3://bucket/expired.jpg", 1
    )
    assert message.startswith(f"403 from {host.url}/bucket/expired.jpg: the media host refused access")
    assert "secret" not in message


def test_cloud_file_streamed_by_label_studio(ls: FakeLabelStudio, cache_dir: Path) -> None:
    ls.cloud_files["gs://bucket/a.mp3"] = b"ID3"
    assert make(cache_dir, ls, ls.pat).local_path("gs://bucket/a.mp3", task_id=2).read_bytes() == b"ID3"


def test_cloud_uri_errors(ls: FakeLabelStudio, cache_dir: Path) -> None:
    resolver = make(cache_dir, ls, ls.pat)
    assert "no task id was given" in media_error(resolver, "azure-blob://c/a.jpg")
    message = media_error(resolver, "s3://bucket/unknown.jpg", task_id=4)
    assert message.startswith(f"404 from {ls.url}/tasks/4/presign/?fileuri=")
    assert "no cloud storage of the task's project" in message
    assert "LABEL_STUDIO_URL" in media_error(make(cache_dir), "s3://bucket/a.jpg", task_id=4)


# limits and failures ------------------------------------------------------------------------------
def test_slow_response_times_out(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(1, "slow.jpg", JPEG)
    ls.delays[value] = 5
    resolver = make(cache_dir, ls, ls.legacy_token, read_timeout=0.3)
    started = time.monotonic()
    message = media_error(resolver, value)
    assert time.monotonic() - started < 2
    assert message.startswith(f"no response from {ls.url}{value} within 0.3 s")
    assert "MEDIA_TIMEOUT" in message


def test_oversized_file_with_content_length(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(1, "big.jpg", bytes(5000))
    message = media_error(make(cache_dir, ls, ls.legacy_token, max_file_bytes=1000), value)
    assert message == (
        f"{ls.url}{value} is larger than the 1000 bytes limit (5000 bytes): raise MEDIA_MAX_FILE_MB if such "
        "files are expected"
    )
    assert cached_files(cache_dir) == []


def test_oversized_chunked_file_leaves_no_partial_file(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(1, "big.jpg", bytes(50_000))
    ls.chunked.add(value)
    check = requests.get(ls.url + value, headers={"Authorization": f"Token {ls.legacy_token}"}, timeout=5)
    assert "Content-Length" not in check.headers and len(check.content) == 50_000
    message = media_error(make(cache_dir, ls, ls.legacy_token, max_file_bytes=10_000), value)
    assert "larger than the 10000 bytes limit" in message
    assert cached_files(cache_dir) == []


def test_connection_refused_names_url_and_setting(cache_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = LabelStudioClient(url, "key", retries=1, backoff=0.01)
    resolver = MediaResolver(MediaSettings(label_studio_url=url, cache_dir=cache_dir), client=client)
    message = media_error(resolver, "/data/upload/1/a.jpg")
    assert message.startswith(f"cannot connect to {url}/data/upload/1/a.jpg: Connection refused")
    assert f"Check LABEL_STUDIO_URL ({url})" in message and "host.docker.internal" in message


def test_private_addresses_are_refused_before_connecting(cache_dir: Path, no_network: None) -> None:
    resolver = make(cache_dir)
    for url in ("http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/a"):
        assert "MEDIA_ALLOWED_HOSTS" in media_error(resolver, url)
    assert "host 10.0.0.1 is a private" in media_error(resolver, "http://10.0.0.1/x.jpg")


def test_redirect_into_a_private_network_is_refused(host: FakeFileHost, cache_dir: Path) -> None:
    host.redirects["/innocent.jpg"] = "http://10.0.0.1/admin"
    resolver = make(cache_dir, allowed_hosts=("127.0.0.1",))
    assert "host 10.0.0.1 is a private" in media_error(resolver, host.url + "/innocent.jpg")
    assert [r.path for r in host.requests] == ["/innocent.jpg"]
    host.redirects["/loop"] = "/loop"
    assert "too many redirects" in media_error(resolver, host.url + "/loop")
    assert len(host.requests_to("/loop")) == 6
    host.fail_next["/not-modified.jpg"] = [304]  # a 3xx without Location is not a file
    assert media_error(resolver, host.url + "/not-modified.jpg").startswith("304 from")


def test_loopback_host_needs_allowing(host: FakeFileHost, cache_dir: Path) -> None:
    host.files["/a.jpg"] = JPEG
    assert "MEDIA_ALLOWED_HOSTS" in media_error(make(cache_dir), host.url + "/a.jpg")
    assert host.requests == []


@pytest.mark.parametrize(
    "value", ["ftp://example.com/a.jpg", "javascript:alert(1)", "file:///etc/passwd", "", "   ", "a\x00b"]
)
def test_unsupported_values(value: str, cache_dir: Path, no_network: None) -> None:
    media_error(make(cache_dir), value)


# data: URIs -----------------------------------------------------------------------------------------
def test_data_uris(cache_dir: Path, no_network: None) -> None:
    resolver = make(cache_dir)
    encoded = base64.b64encode(JPEG).decode()
    path = resolver.local_path(f"data:image/jpeg;base64,{encoded}")
    assert path.read_bytes() == JPEG and path.suffix == ".jpg"
    assert resolver.read_text("data:text/plain;charset=utf-8,h%C3%A9llo%20world") == "héllo world"
    assert resolver.read_text("data:,plain") == "plain"
    assert "not valid base64" in media_error(resolver, "data:image/png;base64,@@@")
    assert "no ','" in media_error(resolver, "data:image/png;base64")
    assert "larger than" in media_error(make(cache_dir, max_file_bytes=10), f"data:;base64,{encoded}")


def test_read_text_rejects_undecodable_bytes(cache_dir: Path) -> None:
    with pytest.raises(MediaError, match="is not utf-8 text"):
        make(cache_dir).read_text("data:application/octet-stream;base64,//79")


# batches and concurrency -------------------------------------------------------------------------
def test_fetch_many_keeps_order_and_isolates_failures(ls: FakeLabelStudio, cache_dir: Path) -> None:
    good = ls.add_upload(1, "a.jpg", JPEG)
    other = ls.add_upload(1, "b.png", b"png")
    values: list[tuple[str, int | None]] = [
        (good, 1),
        ("/data/upload/1/missing.jpg", 2),
        (other, 3),
        ("ftp://example.com/x", 4),
        ("s3://bucket/x.jpg", None),
    ]
    results = make(cache_dir, ls, ls.legacy_token, max_parallel_downloads=3).fetch_many(values)
    assert [type(r).__name__ for r in results] == [
        "PosixPath",
        "MediaError",
        "PosixPath",
        "MediaError",
        "MediaError",
    ]
    assert isinstance(results[0], Path) and results[0].read_bytes() == JPEG
    assert isinstance(results[1], MediaError) and "was it deleted?" in results[1].message


def test_iter_fetch_yields_each_item_as_it_completes(ls: FakeLabelStudio, cache_dir: Path) -> None:
    slow = ls.add_upload(1, "slow.jpg", b"slow")
    fast = ls.add_upload(1, "fast.jpg", b"fast")
    ls.delays[slow] = 0.4
    resolver = make(cache_dir, ls, ls.legacy_token)
    order = [index for index, _ in resolver.iter_fetch([(slow, 1), (fast, 2)])]
    assert order == [1, 0]
    assert list(resolver.iter_fetch([])) == []


def test_concurrent_fetches_of_one_url_download_once(ls: FakeLabelStudio, cache_dir: Path) -> None:
    value = ls.add_upload(1, "shared.jpg", JPEG)
    ls.delays[value] = 0.2
    resolver = make(cache_dir, ls, ls.pat)
    results: list[Path] = []
    barrier = threading.Barrier(8)

    def fetch() -> None:
        barrier.wait()
        results.append(resolver.local_path(value))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert len(ls.requests_to("/data/upload/")) == 1
    assert ls.refresh_calls == 1
