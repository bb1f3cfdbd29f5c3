"""Media downloads connect to the addresses the guard checked, never to a second lookup of the name.

A fake resolver (``socket.getaddrinfo``) answers names per lookup, so it can rebind: a public address when
the guard asks, ``127.0.0.1`` when asked again. A fake network (urllib3's ``create_connection``) records
every connection and lets only 127.0.0.1 through; anything else fails as unreachable, so no packet leaves
the machine. The servers are real, on 127.0.0.1, and count what reaches them.
"""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.util.connection

from labelzoo.errors import MediaError
from labelzoo.media import MediaResolver, MediaSettings
from labelzoo.media.http import HttpOptions, Transport, redact_url
from tests.core.fake_label_studio import FakeFileHost

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256))
PUBLIC = "93.184.215.14"

_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = urllib3.util.connection.create_connection


class FakeDns:
    """``answers[name]``: the addresses of each lookup in turn (the last repeats); IP literals pass through."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in self.answers:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        self.lookups.append(host)
        turns = self.answers[host]
        addresses = turns[min(self.lookups.count(host), len(turns)) - 1]
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in addresses
        ]


class FakeNetwork:
    """Only 127.0.0.1 is reachable; ``refused`` addresses refuse, every other one times out.

    Like urllib3's own ``create_connection`` it resolves the host it is given (a name when nothing is
    pinned, an IP when pinned) and tries each address in turn.
    """

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.refused: set[str] = set()

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address
        error: OSError = OSError("no address")
        for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = str(sockaddr[0])
            self.connections.append((ip, port))
            if ip == "127.0.0.1":
                return _real_create_connection((ip, port), *args, **kwargs)
            error = ConnectionRefusedError(111, "Connection refused") if ip in self.refused else TimeoutError()
        raise error


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    fake = FakeNetwork()
    monkeypatch.setattr(urllib3.util.connection, "create_connection", fake.create_connection)
    return fake


def fake_dns(monkeypatch: pytest.MonkeyPatch, **answers: list[list[str]]) -> FakeDns:
    """Install a :class:`FakeDns`; keyword names spell the dots of host names as "_" (``media_test``)."""
    dns = FakeDns({name.replace("_", "."): turns for name, turns in answers.items()})
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


@pytest.fixture
def host() -> Iterator[FakeFileHost]:
    with FakeFileHost() as server:
        server.files["/a.jpg"] = JPEG
        yield server


def resolver(tmp_path: Path, *allowed: str, **options: Any) -> MediaResolver:
    return MediaResolver(MediaSettings(cache_dir=tmp_path / "cache", allowed_hosts=allowed, **options))


def port_of(server: FakeFileHost) -> int:
    return int(server.url.rsplit(":", 1)[1])


def media_error(media: MediaResolver, url: str) -> str:
    with pytest.raises(MediaError) as caught:
        media.local_path(url)
    assert caught.value.status == 422
    return caught.value.message


# DNS rebinding --------------------------------------------------------------------------------------
def test_the_fake_resolver_rebinds_a_name_based_connection(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost
) -> None:
    """Control: without pinning, the second lookup sends a plain request to the local server."""
    dns = fake_dns(monkeypatch, rebind_test=[[PUBLIC], ["127.0.0.1"]])
    socket.getaddrinfo("rebind.test", 80)  # the guard's lookup
    assert requests.get(f"http://rebind.test:{port_of(host)}/a.jpg", timeout=5).content == JPEG
    assert dns.lookups == ["rebind.test"] * 2
    assert len(host.requests) == 1


def test_rebinding_to_loopback_does_not_reach_the_local_server(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    dns = fake_dns(monkeypatch, rebind_test=[[PUBLIC], ["127.0.0.1"]])
    url = f"http://rebind.test:{port_of(host)}/a.jpg"
    assert media_error(resolver(tmp_path), url).startswith(f"could not connect to {url}")
    assert host.requests == []
    assert dns.lookups == ["rebind.test"]  # looked up once, by the guard
    assert network.connections == [(PUBLIC, port_of(host))]  # the checked address, nothing else


def test_an_allowed_address_is_fetched_from_exactly_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    # Allowed by address, so the guard must resolve the name; a second lookup would answer PUBLIC.
    dns = fake_dns(monkeypatch, media_test=[["127.0.0.1"], [PUBLIC]])
    port = port_of(host)
    assert resolver(tmp_path, "127.0.0.0/8").read_bytes(f"http://media.test:{port}/a.jpg") == JPEG
    assert dns.lookups == ["media.test"]
    assert network.connections == [("127.0.0.1", port)]
    assert host.requests[0].headers["Host"] == f"media.test:{port}"  # the name, not the IP


def test_the_next_checked_address_is_tried_when_one_refuses(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    # "localhost" often resolves to ::1 first while the server listens on 127.0.0.1 only.
    fake_dns(monkeypatch, media_test=[["::1", "127.0.0.1"]])
    network.refused.add("::1")
    port = port_of(host)
    assert resolver(tmp_path, "media.test").read_bytes(f"http://media.test:{port}/a.jpg") == JPEG
    assert network.connections == [("::1", port), ("127.0.0.1", port)]


def test_every_redirect_hop_is_checked_and_pinned(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    port = port_of(host)
    host.redirects["/start.jpg"] = f"http://next.test:{port}/a.jpg"
    host.redirects["/evil.jpg"] = f"http://rebind.test:{port}/a.jpg"
    dns = fake_dns(
        monkeypatch, media_test=[["127.0.0.1"]], next_test=[["127.0.0.1"], [PUBLIC]], rebind_test=[["127.0.0.1"]]
    )
    media = resolver(tmp_path, "media.test", "next.test")
    assert media.read_bytes(f"http://media.test:{port}/start.jpg") == JPEG
    assert dns.lookups == ["media.test", "next.test"]
    assert network.connections == [("127.0.0.1", port)] * 2
    assert [r.headers["Host"] for r in host.requests] == [f"media.test:{port}", f"next.test:{port}"]
    message = media_error(media, f"http://media.test:{port}/evil.jpg")
    assert "host rebind.test (127.0.0.1) is a loopback address" in message
    assert [r.path for r in host.requests] == ["/start.jpg", "/a.jpg", "/evil.jpg"]


def test_a_proxy_gets_the_name_and_resolves_it_itself(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    """Documented limitation: through HTTP_PROXY the request is not pinned, the proxy resolves the name."""
    monkeypatch.setenv("HTTP_PROXY", host.url)  # the fake host plays the proxy: it serves /a.jpg too
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dns = fake_dns(monkeypatch, media_test=[[PUBLIC]])
    assert resolver(tmp_path).read_bytes("http://media.test/a.jpg") == JPEG
    assert dns.lookups == ["media.test"]  # the guard's own check; the proxy was handed the name
    assert network.connections == [("127.0.0.1", port_of(host))]
    assert host.requests[0].headers["Host"] == "media.test"


def test_a_pinned_request_cannot_follow_redirects() -> None:
    """requests would connect to a redirect's host by name: a pinned request must stop at each hop."""
    transport = Transport(HttpOptions())
    with pytest.raises(ValueError, match="allow_redirects=False"):
        transport.send("GET", "http://media.test/a.jpg", addresses=(ipaddress.ip_address(PUBLIC),))
    with pytest.raises(ValueError, match="needs addresses"):
        transport.send("GET", "http://media.test/a.jpg", addresses=(), allow_redirects=False)
    transport.close()


# https: the connection goes to the IP, TLS still speaks to the name ----------------------------------
class _TlsHandler(http.server.BaseHTTPRequestHandler):
    hosts: list[str]

    def do_GET(self) -> None:
        self.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)

    def log_message(self, *args: Any) -> None:
        pass


class TlsServer:
    """HTTPS on 127.0.0.1 with a certificate for ``media.test`` only (no IP in it), recording SNI names."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        handler = type("Handler", (_TlsHandler,), {"hosts": self.hosts})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02})

    def __enter__(self) -> TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=media.test",
         "-addext", "subjectAltName=DNS:media.test"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_pinned_to_the_ip_still_uses_the_name_for_sni_and_verification(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = certificate
    fake_dns(monkeypatch, media_test=[["127.0.0.1"], [PUBLIC]], other_test=[["127.0.0.1"]])
    with TlsServer(cert, key) as server:
        media = resolver(tmp_path, "127.0.0.1", verify_ssl=str(cert))
        assert media.read_bytes(f"https://media.test:{server.port}/a.jpg") == JPEG
        assert network.connections == [("127.0.0.1", server.port)]
        assert server.sni == ["media.test"]  # SNI is the name (a bare IP sends no SNI at all)
        assert server.hosts == [f"media.test:{server.port}"]
        # Same IP, another name: the certificate is checked against that name, so the handshake fails.
        message = media_error(media, f"https://other.test:{server.port}/a.jpg")
        assert message.startswith(f"TLS error talking to https://other.test:{server.port}/a.jpg")
        assert "certificate is not valid for 'other.test'" in message
        assert server.sni == ["media.test", "other.test"]


# credentials in messages ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://media.example/a.jpg?size=2&v=1", "https://media.example/a.jpg?size=2&v=1"),
        ("http://user:p%40ss@host:8080/a.jpg", "http://***@host:8080/a.jpg"),
        ("http://user@host/a.jpg", "http://***@host/a.jpg"),
        (
            "https://b.s3.amazonaws.com/a.jpg?X-Amz-Credential=AKIA%2F1&X-Amz-Date=20260101&X-Amz-Signature=f00",
            "https://b.s3.amazonaws.com/a.jpg?X-Amz-Credential=***&X-Amz-Date=20260101&X-Amz-Signature=***",
        ),
        (
            "https://acct.blob.core.windows.net/c/a.jpg?sv=2024&sig=abc#x",
            "https://acct.blob.core.windows.net/c/a.jpg?sv=2024&sig=***#x",
        ),
        ("/data/upload/1/a.jpg?token=t0k&api_key=k3y", "/data/upload/1/a.jpg?token=***&api_key=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_download_errors_never_show_credentials(
    monkeypatch: pytest.MonkeyPatch, network: FakeNetwork, host: FakeFileHost, tmp_path: Path
) -> None:
    fake_dns(monkeypatch, media_test=[["127.0.0.1"]])
    url = f"http://user:hunter2@media.test:{port_of(host)}/missing.jpg?token=abc123"
    message = media_error(resolver(tmp_path, "media.test"), url)
    assert message.startswith(f"404 from http://***@media.test:{port_of(host)}/missing.jpg?token=***:")
    assert "hunter2" not in message and "abc123" not in message
