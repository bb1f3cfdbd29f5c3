"""LabelStudioClient against a real local fake Label Studio (PAT refresh, legacy tokens, errors)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from labelzoo.media import LabelStudioClient, UpstreamError
from labelzoo.media.lsclient import WHOAMI_PATH, token_kind
from tests.core.fake_label_studio import FakeFileHost, FakeLabelStudio, jwt_claims, make_jwt


@pytest.fixture
def ls() -> Iterator[FakeLabelStudio]:
    with FakeLabelStudio() as server:
        yield server


def client_for(ls: FakeLabelStudio, key: str | None, **options: float) -> LabelStudioClient:
    options.setdefault("backoff", 0.01)
    return LabelStudioClient(ls.url, key, **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_token_kind_detection() -> None:
    assert token_kind(make_jwt({"token_type": "refresh", "exp": 4102444800})) == "pat"
    assert token_kind(make_jwt({"token_type": "access"})) == "legacy"
    assert token_kind("a.b.c") == "legacy"
    assert token_kind("0123456789abcdef0123456789abcdef01234567") == "legacy"
    assert token_kind("") == "none"
    assert token_kind(None) == "none"


def test_pat_is_refreshed_once_and_sent_as_bearer_access_token(ls: FakeLabelStudio) -> None:
    client = client_for(ls, ls.pat)
    for _ in range(3):
        assert client.get_json(WHOAMI_PATH)["email"] == "ml@example.com"
    assert ls.refresh_calls == 1
    sent = [r.authorization for r in ls.requests_to("/api/current-user/whoami")]
    assert len(sent) == 3 and len(set(sent)) == 1
    scheme, _, token = str(sent[0]).partition(" ")
    assert scheme == "Bearer" and token != ls.pat and jwt_claims(token)["token_type"] == "access"


def test_access_token_is_renewed_before_it_expires(ls: FakeLabelStudio) -> None:
    ls.access_ttl = 30.4  # the client renews 30 s early: this token is good for 0.4 s in its eyes
    client = client_for(ls, ls.pat)
    client.get_json(WHOAMI_PATH)
    client.get_json(WHOAMI_PATH)
    assert ls.refresh_calls == 1
    time.sleep(0.5)
    client.get_json(WHOAMI_PATH)
    assert ls.refresh_calls == 2
    first, second, third = (r.authorization for r in ls.requests_to("/api/current-user/whoami"))
    assert first == second != third


def test_stale_access_token_gets_exactly_one_refresh_and_retry(ls: FakeLabelStudio) -> None:
    client = client_for(ls, ls.pat)
    client.get_json(WHOAMI_PATH)
    ls.revoke_access_tokens()
    ls.clear_log()
    assert client.get_json(WHOAMI_PATH)["username"] == "ml"
    assert ls.refresh_calls == 1
    stale, fresh = (r.authorization for r in ls.requests_to("/api/current-user/whoami"))
    assert stale != fresh


def test_persistent_401_is_reported_not_retried_forever(ls: FakeLabelStudio) -> None:
    ls.access_ttl = -1  # every access token is born expired: Label Studio answers 401 to all
    client = client_for(ls, ls.pat, refresh_margin=0)
    with pytest.raises(UpstreamError) as caught:
        client.get_json(WHOAMI_PATH)
    assert caught.value.upstream_status == 401
    assert len(ls.requests_to("/api/current-user/whoami")) == 2
    assert f"401 from GET {ls.url}/api/current-user/whoami: LABEL_STUDIO_API_KEY" in caught.value.message


def test_concurrent_first_requests_refresh_once(ls: FakeLabelStudio) -> None:
    client = client_for(ls, ls.pat)
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        client.get_json(WHOAMI_PATH)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ls.refresh_calls == 1
    assert len(ls.requests_to("/api/current-user/whoami")) == 8


def test_rejected_pat_gives_an_actionable_error(ls: FakeLabelStudio) -> None:
    other_pat = make_jwt({"token_type": "refresh", "exp": 4102444800, "jti": "revoked"})
    client = client_for(ls, other_pat)
    expected = (
        f"LABEL_STUDIO_API_KEY was rejected by {ls.url}/api/token/refresh/ (401): create a new Personal "
        "Access Token in Label Studio → Account & Settings"
    )
    with pytest.raises(UpstreamError) as caught:
        client.get_json(WHOAMI_PATH)
    assert caught.value.message == expected
    result = client.check()
    assert (result.ok, result.kind, result.message) == (False, "pat", expected)
    assert ls.requests_to("/api/current-user/whoami") == []
    assert ls.refresh_calls == 1  # the rejection is remembered for a while, not retried per request


def test_legacy_token_is_sent_as_token(ls: FakeLabelStudio) -> None:
    client = client_for(ls, ls.legacy_token)
    result = client.check()
    assert result.ok and result.kind == "legacy"
    assert result.message == f"authenticated to {ls.url} with a legacy token (user id 1)"
    assert ls.requests_to("/api/current-user/whoami")[0].authorization == f"Token {ls.legacy_token}"
    assert ls.refresh_calls == 0


def test_disabled_legacy_token_points_to_personal_access_tokens() -> None:
    with FakeLabelStudio(legacy_tokens_enabled=False) as ls:
        result = client_for(ls, ls.legacy_token).check()
    assert not result.ok and result.kind == "legacy"
    assert "legacy token" in result.message and "Personal Access Token" in result.message


def test_check_without_a_key_sends_nothing(ls: FakeLabelStudio) -> None:
    result = client_for(ls, None).check()
    assert (result.ok, result.kind) == (False, "none")
    assert "LABEL_STUDIO_API_KEY is not set" in result.message
    assert ls.requests == []


def test_auth_headers_only_for_the_label_studio_origin() -> None:
    client = LabelStudioClient("http://127.0.0.1:8080", "legacy-key")
    assert client.auth_headers_for("http://127.0.0.1:8080/data/upload/1/a.jpg") == {
        "Authorization": "Token legacy-key"
    }
    for other in (
        "http://127.0.0.1:8081/data/upload/1/a.jpg",
        "https://127.0.0.1:8080/data/upload/1/a.jpg",
        "http://localhost:8080/data/upload/1/a.jpg",
        "http://127.0.0.1:8080.evil.example/x",
        "http://evil.example/?u=http://127.0.0.1:8080/",
        "s3://bucket/key.jpg",
    ):
        assert client.auth_headers_for(other) == {}, other
    default_port = LabelStudioClient("https://ls.example", "legacy-key")
    assert default_port.auth_headers_for("https://LS.example:443/data/upload/1/a.jpg") != {}


def test_credentials_are_not_sent_to_another_host(ls: FakeLabelStudio) -> None:
    with FakeFileHost() as other:
        other.files["/a.jpg"] = b"jpeg"
        client = client_for(ls, ls.pat)
        response = client.send("GET", other.url + "/a.jpg")
        assert response.content == b"jpeg"
        assert other.requests[0].authorization is None
    assert ls.refresh_calls == 0


def test_sub_path_deployment_keeps_its_prefix() -> None:
    with FakeLabelStudio(prefix="/ls") as ls:
        client = client_for(ls, ls.pat)
        assert client.url_for("/api/projects/") == f"{ls.origin}/ls/api/projects/"
        assert client.url_for("api/projects/") == f"{ls.origin}/ls/api/projects/"
        assert client.url_for("/ls/data/upload/1/a.jpg") == f"{ls.origin}/ls/data/upload/1/a.jpg"
        assert client.check().ok
        assert ls.refresh_calls == 1


def test_retries_502_503_504_then_succeeds(ls: FakeLabelStudio) -> None:
    ls.fail_next["/api/current-user/whoami"] = [503, 502]
    client = client_for(ls, ls.legacy_token, retries=2)
    assert client.get_json(WHOAMI_PATH)["id"] == 1
    assert len(ls.requests_to("/api/current-user/whoami")) == 3


def test_retries_are_bounded(ls: FakeLabelStudio) -> None:
    ls.fail_next["/api/current-user/whoami"] = [504, 504, 504, 504]
    client = client_for(ls, ls.legacy_token, retries=2)
    with pytest.raises(UpstreamError) as caught:
        client.get_json(WHOAMI_PATH)
    assert caught.value.upstream_status == 504
    assert len(ls.requests_to("/api/current-user/whoami")) == 3


def test_not_found_names_url_and_status(ls: FakeLabelStudio) -> None:
    client = client_for(ls, ls.legacy_token)
    with pytest.raises(UpstreamError) as caught:
        client.get_json("/api/nothing-here/")
    assert caught.value.upstream_status == 404
    assert caught.value.message.startswith(
        f"404 from GET {ls.url}/api/nothing-here/: not found in Label Studio"
    )


def test_unreachable_label_studio_is_reported_by_check() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = LabelStudioClient(url, "legacy-key", retries=1, backoff=0.01)
    result = client.check()
    assert not result.ok and result.kind == "legacy"
    assert f"cannot connect to {url}/api/current-user/whoami" in result.message
    assert "Connection refused" in result.message
    assert f"Check LABEL_STUDIO_URL ({url})" in result.message and "Docker" in result.message


def test_slow_label_studio_times_out_within_the_read_timeout(ls: FakeLabelStudio) -> None:
    ls.delays["/api/current-user/whoami"] = 5
    client = client_for(ls, ls.legacy_token, read_timeout=0.3)
    started = time.monotonic()
    result = client.check()
    assert time.monotonic() - started < 2
    assert not result.ok and "within 0.3 s" in result.message


def test_paginate_walks_every_page(ls: FakeLabelStudio) -> None:
    ls.projects = [{"id": i} for i in range(1, 251)]
    client = client_for(ls, ls.legacy_token)
    assert [p["id"] for p in client.paginate("/api/projects/", page_size=100)] == list(range(1, 251))
    assert len(ls.requests_to("/api/projects/")) == 3
    ls.projects = ls.projects[:200]
    ls.clear_log()
    assert len(list(client.paginate("/api/projects/", page_size=100))) == 200
    assert len(ls.requests_to("/api/projects/")) == 2  # stops on next=null, no request past the end


def test_post_json_errors_carry_the_fix(ls: FakeLabelStudio) -> None:
    client = client_for(ls, "wrong-legacy-key")
    with pytest.raises(UpstreamError) as caught:
        client.post_json("/api/token/refresh/", {"refresh": "x"})
    assert caught.value.upstream_status == 401
    assert "legacy token" in caught.value.message
