"""Refuse media URLs that point into private networks (SSRF protection).

Task data is written by whoever can import tasks into Label Studio, so a URL such as
``http://169.254.169.254/latest/meta-data/`` or ``http://10.0.0.5/admin`` must not make the backend
fetch it. Every hop of a download, redirects included, is checked here before any connection is made.
The host name is resolved and *every* address it resolves to must be public, unless the URL is on
Label Studio's own origin or the host is listed in ``MEDIA_ALLOWED_HOSTS``.

Limitation: the check resolves the name itself and ``requests`` resolves it again when connecting, so a
DNS server that answers differently the second time (DNS rebinding) is not stopped by this module.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from labelzoo.errors import MediaError
from labelzoo.media.http import origin_of

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_url_allowed(url: str, *, label_studio_url: str | None, allowed_hosts: Iterable[str]) -> None:
    """Raise :class:`MediaError` unless ``url`` is http(s) and its host is public or explicitly allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise MediaError(f"refusing to fetch {url!r}: only http and https URLs can be downloaded")
    target = origin_of(url)
    if target is None:
        raise MediaError(f"refusing to fetch {url!r}: the URL has no valid host and port")
    if label_studio_url and target == origin_of(label_studio_url):
        return
    _, host, port = target
    names, networks = _parse_allowlist(allowed_hosts)
    if host in names:
        return
    for address in _resolve(host, port):
        if _is_internal(address) and not any(address in network for network in networks):
            shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
            raise MediaError(
                f"refusing to fetch {url}: host {shown} is a private, loopback, link-local or otherwise "
                "non-public address. If it is your Label Studio, set LABEL_STUDIO_URL to this origin; if it "
                "is another trusted host, add it to MEDIA_ALLOWED_HOSTS (comma-separated names, IPs or CIDRs)"
            )


def _parse_allowlist(entries: Iterable[str]) -> tuple[set[str], list[IPNetwork]]:
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip().lower().rstrip(".").strip("[]")
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            names.add(text)
    return names, networks


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError(f"cannot resolve host {host!r}: {exc}") from exc
    # IPv6 link-local results carry a zone ("fe80::1%eth0"), which ipaddress does not parse.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
