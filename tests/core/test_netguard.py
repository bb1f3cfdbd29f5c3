"""check_url_allowed: private addresses refused unless Label Studio's origin or explicitly allowed, IPv6
addresses that carry an IPv4 address judged by it, and the checked addresses returned for the connection.

Only literal IPs, "localhost" and a patched ``socket.getaddrinfo`` are used, so no DNS query leaves the
machine and nothing connects (connections: test_netguard_pinning.py).
"""

from __future__ import annotations

import socket

import pytest

from labelzoo.errors import MediaError
from labelzoo.media import check_url_allowed


def allowed(url: str, *hosts: str, label_studio_url: str | None = None) -> bool:
    try:
        check_url_allowed(url, label_studio_url=label_studio_url, allowed_hosts=hosts)
    except MediaError:
        return False
    return True


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/x.jpg",
        "http://172.16.5.4/x.jpg",
        "http://192.168.1.10:8080/x.jpg",
        "http://127.0.0.1/x.jpg",
        "http://127.1/x.jpg",  # resolves to 127.0.0.1
        "http://2130706433/x.jpg",  # 127.0.0.1 as one integer
        "http://localhost/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/x.jpg",
        "http://100.64.0.1/x.jpg",  # carrier-grade NAT
        "http://224.0.0.1/x.jpg",
        "http://255.255.255.255/x.jpg",
        "http://[::1]/x.jpg",
        "http://[fc00::1]/x.jpg",
        "http://[fe80::1]/x.jpg",
        "http://[::ffff:10.0.0.1]/x.jpg",
        "http://[::]/x.jpg",
    ],
)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    assert not allowed(url)


def test_public_addresses_are_allowed() -> None:
    assert allowed("https://93.184.215.14/a.jpg")
    assert allowed("http://[2606:4700:4700::1111]/a.jpg")


def test_refusal_names_host_and_setting() -> None:
    with pytest.raises(MediaError) as caught:
        check_url_allowed("http://10.0.0.1/x.jpg", label_studio_url=None, allowed_hosts=())
    assert "host 10.0.0.1" in caught.value.message
    assert "MEDIA_ALLOWED_HOSTS" in caught.value.message
    assert caught.value.status == 422


def test_allowed_hosts_by_ip_cidr_and_name() -> None:
    assert allowed("http://10.0.0.1/x.jpg", "10.0.0.1")
    assert allowed("http://10.1.2.3/x.jpg", "10.0.0.0/8")
    assert not allowed("http://10.1.2.3/x.jpg", "10.0.0.0/16")
    assert allowed("http://[fd00::5]/x.jpg", "fd00::/8")
    assert allowed("http://localhost:9000/x.jpg", "LOCALHOST")
    assert allowed("http://127.0.0.1:9000/x.jpg", "127.0.0.0/8")
    assert not allowed("http://127.0.0.2/x.jpg", "localhost")  # a name allows that name only


def test_label_studio_origin_is_always_allowed() -> None:
    ls = "http://127.0.0.1:8080/ls"
    assert allowed("http://127.0.0.1:8080/data/upload/1/a.jpg", label_studio_url=ls)
    assert not allowed("http://127.0.0.1:8081/data/upload/1/a.jpg", label_studio_url=ls)
    assert not allowed("https://127.0.0.1:8080/data/upload/1/a.jpg", label_studio_url=ls)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.jpg", "file:///etc/passwd", "javascript:alert(1)", "gopher://x/", "http:///a"],
)
def test_only_http_urls_with_a_host(url: str) -> None:
    assert not allowed(url, "0.0.0.0/0")


def test_a_name_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        assert host == "media.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(MediaError) as caught:
        check_url_allowed("https://media.example/a.jpg", label_studio_url=None, allowed_hosts=())
    assert "media.example (10.0.0.7)" in caught.value.message


def test_unresolvable_host_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(MediaError, match=r"cannot resolve host 'nowhere\.example'"):
        check_url_allowed("http://nowhere.example/a.jpg", label_studio_url=None, allowed_hosts=())


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::", "a 6to4 address carrying 127.0.0.1, a loopback address"),
        ("2002:a00:1::", "a 6to4 address carrying 10.0.0.1, a private address"),
        ("64:ff9b::7f00:1", "a NAT64 address carrying 127.0.0.1, a loopback address"),
        ("64:ff9b::a00:1", "a NAT64 address carrying 10.0.0.1, a private address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 address carrying 169.254.169.254, a link-local address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped address carrying 127.0.0.1, a loopback address"),
        ("::ffff:0:a00:1", "an IPv4-translated address carrying 10.0.0.1, a private address"),
        ("::7f00:1", "an IPv4-compatible address carrying 127.0.0.1, a loopback address"),
        # Teredo: server 10.0.0.1, client 8.8.8.8 (stored inverted as f7f7:f7f7)
        ("2001:0:a00:1::f7f7:f7f7", "a Teredo address carrying 10.0.0.1, a private address"),
        # Teredo: server 65.54.227.120, client 192.168.0.1 (3f57:fffe)
        ("2001:0:4136:e378::3f57:fffe", "a Teredo address carrying 192.168.0.1, a private address"),
    ],
)
def test_ipv6_carrying_a_non_public_ipv4_is_refused(address: str, reason: str) -> None:
    with pytest.raises(MediaError) as caught:
        check_url_allowed(f"http://[{address}]/x.jpg", label_studio_url=None, allowed_hosts=())
    assert f"host {address} is {reason}." in caught.value.message
    assert caught.value.status == 422


def test_local_use_nat64_is_refused_outright() -> None:
    # Where the IPv4 sits depends on the operator's prefix length: even a public-looking tail is refused.
    with pytest.raises(MediaError, match=r"local-use NAT64 address \(64:ff9b:1::/48\)"):
        check_url_allowed("http://[64:ff9b:1::808:808]/x.jpg", label_studio_url=None, allowed_hosts=())


@pytest.mark.parametrize(
    "address",
    [
        "2002:808:808::",  # 6to4 of 8.8.8.8 (Python calls 2002::/16 global anyway)
        "2002:0808:0808::1",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (Python calls 64:ff9b::/96 reserved)
        "::ffff:8.8.8.8",
        "2001:0:4136:e378::f7f7:f7f7",  # Teredo, server 65.54.227.120 and client 8.8.8.8 (Python: private)
    ],
)
def test_ipv6_carrying_a_public_ipv4_is_public(address: str) -> None:
    assert allowed(f"http://[{address}]/x.jpg")


def test_allowing_an_ipv4_network_covers_its_embeddings() -> None:
    assert allowed("http://[::ffff:10.0.0.1]/x.jpg", "10.0.0.0/8")
    assert allowed("http://[64:ff9b::a00:1]/x.jpg", "10.0.0.0/8")
    assert not allowed("http://[2002:7f00:1::]/x.jpg", "10.0.0.0/8")


def fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_checked_addresses_are_returned_once_each_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, {"media.example": ["93.184.215.14", "2606:2800:21f:cb07::1", "93.184.215.14"]})
    addresses = check_url_allowed("https://media.example/a.jpg", label_studio_url=None, allowed_hosts=())
    assert [str(a) for a in addresses] == ["93.184.215.14", "2606:2800:21f:cb07::1"]


def test_an_allowed_name_may_resolve_to_private_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, {"minio": ["10.0.0.9"], "ls": ["172.18.0.2"]})
    assert [
        str(a) for a in check_url_allowed("http://minio:9000/b/a.jpg", label_studio_url=None, allowed_hosts=("minio",))
    ] == ["10.0.0.9"]
    assert [
        str(a) for a in check_url_allowed("http://ls:8080/data/x", label_studio_url="http://ls:8080", allowed_hosts=())
    ] == ["172.18.0.2"]


def test_refusals_never_show_credentials() -> None:
    with pytest.raises(MediaError) as caught:
        check_url_allowed(
            "http://user:hunter2@10.0.0.1/a.jpg?access_token=abc123&size=2",
            label_studio_url=None,
            allowed_hosts=(),
        )
    message = caught.value.message
    assert "hunter2" not in message and "abc123" not in message
    assert "http://***@10.0.0.1/a.jpg?access_token=***&size=2" in message
