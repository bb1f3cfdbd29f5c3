"""Refuse media URLs that point into private networks (SSRF protection).

Task data is written by whoever can import tasks into Label Studio, so a URL such as
``http://169.254.169.254/latest/meta-data/`` or ``http://10.0.0.5/admin`` must not make the backend
fetch it. Every hop of a download, redirects included, is checked here before any connection is made.
The host name is resolved and *every* address it resolves to must be public, unless the URL is on
Label Studio's own origin or the host is listed in ``MEDIA_ALLOWED_HOSTS``.

:func:`check_url_allowed` returns the addresses that passed, and the download connects to exactly those
(:meth:`labelzoo.media.http.Transport.send` with ``addresses=``): the name is not looked up a second
time, so a DNS server that answers a public address for the check and ``127.0.0.1`` for the connection
(DNS rebinding) gains nothing. When an HTTP(S) proxy applies to the URL (``HTTPS_PROXY`` and friends,
read by ``requests`` from the environment), the backend connects to the proxy and the *proxy* resolves
the name: the check still runs on the backend's own lookup, but rebinding has to be stopped by the
proxy's egress rules.

IPv6 addresses that carry an IPv4 address (IPv4-mapped and -compatible, SIIT-translated, 6to4, Teredo,
NAT64 64:ff9b::/96) are judged by the IPv4 address they carry, so ``2002:7f00:1::`` is loopback and
``2002:808:808::`` is public. The local-use NAT64 prefix 64:ff9b:1::/48 is refused outright: its
operator chooses where the IPv4 address sits, so it cannot be read back reliably. NAT64 behind a
network-specific prefix of the operator's own cannot be recognised at all; networks that have one
should block it on the network side.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from labelzoo.errors import MediaError
from labelzoo.media.http import IPAddress, origin_of, redact_url

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_UNSPECIFIED_AND_LOOPBACK = ipaddress.IPv6Network("::/127")  # "::" and "::1" are themselves, not IPv4


def check_url_allowed(
    url: str, *, label_studio_url: str | None, allowed_hosts: Iterable[str]
) -> tuple[IPAddress, ...]:
    """The addresses a request to ``url`` may connect to, in resolver order.

    Raises :class:`MediaError` (422) unless ``url`` is http(s) and every address of its host is public, or
    the URL is on Label Studio's origin, or the host is allowed by ``allowed_hosts``.
    """
    shown = redact_url(url)
    if _scheme(url) not in ("http", "https"):
        raise MediaError(f"refusing to fetch {shown!r}: only http and https URLs can be downloaded",
                         reason="refused")
    target = origin_of(url)
    if target is None:
        raise MediaError(f"refusing to fetch {shown!r}: the URL has no valid host and port", reason="invalid")
    _, host, port = target
    addresses = _resolve(host, port)
    names, networks = _parse_allowlist(allowed_hosts)
    if (label_studio_url and target == origin_of(label_studio_url)) or host in names:
        return addresses
    for address in addresses:
        reason = _refusal_reason(address)
        if reason is not None and not _is_allowed(address, networks):
            raise MediaError(
                f"refusing to fetch {shown}: host {_shown_host(host, address)} is {reason}. If it is your "
                "Label Studio, set LABEL_STUDIO_URL to this origin; if it is another trusted host, add it to "
                "MEDIA_ALLOWED_HOSTS (comma-separated names, IPs or CIDRs)",
                reason="refused"
            )
    return addresses


def _refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not public ("a loopback address", "a 6to4 address carrying …"), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return (
                "a local-use NAT64 address (64:ff9b:1::/48), whose embedded IPv4 address cannot be located "
                "reliably"
            )
        embedding = _embedded_ipv4(address)
        if embedding is not None:
            kind, carried = embedding
            for ipv4 in carried:
                reason = _non_public_kind(ipv4)
                if reason is not None:
                    return f"{kind} carrying {ipv4}, {reason}"
            return None
    return _non_public_kind(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """What kind of IPv4-carrying address ``address`` is ("a 6to4 address") and the IPv4 it carries, or None.

    Python's own ``is_private``/``is_global`` judge these by their IPv6 prefix (6to4 counts as global,
    NAT64 as reserved), which says nothing about where the packets end up. Teredo carries two addresses,
    its server's and its client's.
    """
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address", (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return "a 6to4 address", (address.sixtofour,)
    if address.teredo is not None:
        return "a Teredo address", address.teredo
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64_WELL_KNOWN:
        return "a NAT64 address", (low32,)
    if address in _IPV4_TRANSLATED:
        return "an IPv4-translated address", (low32,)
    if address in _IPV4_COMPATIBLE and address not in _UNSPECIFIED_AND_LOOPBACK:
        return "an IPv4-compatible address", (low32,)
    return None


def _non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is, judged as it stands, or None if it is public."""
    kinds = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a globally routable address"),
    )
    return next((kind for applies, kind in kinds if applies), None)


def _is_allowed(address: IPAddress, networks: list[IPNetwork]) -> bool:
    """Whether an allowed network holds ``address``, or every IPv4 address it carries."""
    if any(address in network for network in networks):
        return True
    embedding = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return embedding is not None and all(
        any(ipv4 in network for network in networks) for ipv4 in embedding[1]
    )


def _shown_host(host: str, address: IPAddress) -> str:
    """``host`` for a message, with the refused address when the host is a name (or an odd IP spelling)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    return host if literal == address else f"{host} ({address})"


def _scheme(url: str) -> str:
    """The URL's scheme, lower-cased ("" when it has none); unlike ``urlsplit`` never raises."""
    scheme, colon, _ = url.partition(":")
    return scheme.lower() if colon else ""


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


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address of ``host``, once each, in the order the system resolver gives them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError(f"cannot resolve host {host!r}: {exc}", reason="unreachable") from exc
    # An IPv6 link-local result keeps its zone ("fe80::1%eth0"): the connection needs it.
    return tuple(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))
