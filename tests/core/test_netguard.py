"""check_url_allowed: private addresses refused unless Label Studio's origin or explicitly allowed.

Only literal IPs and "localhost" are used, so no DNS query leaves the machine and nothing connects.
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
