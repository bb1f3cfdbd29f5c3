"""HTTP transport shared by the Label Studio client and the media resolver.

One :class:`Transport` wraps a ``requests.Session`` with timeouts, TLS verification and a bounded retry
on connection failures and 502/503/504. Transport failures become :class:`UpstreamError` with a message
naming the URL (credentials redacted, :func:`redact_url`), so callers never see a raw ``requests``
exception.

A request can be *pinned* to addresses checked beforehand (``Transport.send(..., addresses=...)``, used for
media by :mod:`labelzoo.media.netguard`): it connects to those IPs instead of resolving the host again,
while the Host header, TLS SNI and certificate verification keep using the URL's host name.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import NewConnectionError

from labelzoo.errors import LabelzooError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
# Query parameters whose value is a credential: tokens, presigned-URL signatures (X-Amz-Signature, sig), keys.
_SECRET_WORDS = frozenset(
    {"token", "signature", "sig", "secret", "password", "passwd", "pwd", "key", "apikey", "credential", "auth"}
)
# The address the current thread's request connects to (set by Transport.send around that one request):
# requests has no per-request channel from Session.request into its adapter's connection pools.
_PINNED: ContextVar[IPAddress | None] = ContextVar("labelzoo_pinned_address", default=None)


class UpstreamError(LabelzooError):
    """Label Studio or a media host failed or could not be reached.

    ``code`` is ``upstream_unreachable`` (no connection), ``upstream_timeout`` or ``upstream_error``
    (an HTTP error status, kept in ``upstream_status``).
    """

    status = 502
    code = "upstream_error"

    def __init__(self, message: str, *, code: str | None = None, upstream_status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.upstream_status = upstream_status


@dataclass(frozen=True)
class HttpOptions:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify: bool | str = True
    retries: int = 2  # extra attempts after the first, for retryable failures only
    backoff: float = 0.5  # seconds before the first retry, doubled for each further one
    pool_size: int = 10  # connections kept per host: at least the number of parallel downloads


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` with the default port filled in, or None for a URL without a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


def redact_url(url: str) -> str:
    """``url`` fit for messages and logs: ``user:password@`` and secret-looking query values become ``***``.

    A URL without credentials comes back unchanged, character for character.
    """
    url = _USERINFO.sub(r"\1***@", url)
    head, question, rest = url.partition("?")
    if not question:
        return url
    query, hash_mark, fragment = rest.partition("#")
    return head + question + "&".join(_redact_param(param) for param in query.split("&")) + hash_mark + fragment


def _redact_param(param: str) -> str:
    name, equals, value = param.partition("=")
    words = set(re.split(r"[^a-z0-9]+", unquote_plus(name).lower()))
    return f"{name}=***" if equals and value and words & _SECRET_WORDS else param


def connection_reason(exc: BaseException) -> str:
    """The useful part of a ``requests`` connection error ("Connection refused")."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip() if found else _underlying_reason(exc)


def _underlying_reason(exc: BaseException) -> str:
    """What went wrong below ``requests``, without the path and query urllib3 writes into its text."""
    inner = exc.args[0] if exc.args else exc
    return str(getattr(inner, "reason", inner))


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether a request failed before any connection existed, so nothing was sent and another address may
    be tried."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    inner = exc.args[0] if exc.args else None
    return isinstance(getattr(inner, "reason", None), NewConnectionError)


@contextmanager
def _pinned_to(address: IPAddress) -> Iterator[None]:
    token = _PINNED.set(address)
    try:
        yield
    finally:
        _PINNED.reset(token)


class PinningAdapter(HTTPAdapter):
    """An :class:`HTTPAdapter` that connects to the address pinned for the current request, if any.

    The pool it picks is created for the IP (``HTTPConnectionPool(host=<ip>)``), with
    ``server_hostname=<name>`` for https: urllib3 sends the name as SNI and verifies the certificate against
    it (``ssl`` keeps ``check_hostname`` on; ``assert_hostname`` would only move that check into urllib3).
    Pools are keyed by IP and name, so kept-alive connections are reused only for the same pin. A request
    that goes through a proxy is not pinned: the proxy resolves the name.
    """

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: dict[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        address = _pinned_address(request, proxies)
        if address is None:
            return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = str(address)
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """Keep the Host header the URL's name: urllib3 would otherwise send the pool's IP."""
        if _pinned_address(request, kwargs.get("proxies")) is not None:
            request.headers["Host"] = _host_header(str(request.url))


def _pinned_address(request: requests.PreparedRequest, proxies: dict[str, str] | None) -> IPAddress | None:
    address = _PINNED.get()
    if address is None or select_proxy(str(request.url), proxies):
        return None
    return address


def _host_header(url: str) -> str:
    """The Host header http.client would send for ``url``: its host, and its port unless the default one."""
    parts = urlsplit(url)
    scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{shown}:{port}"


class Transport:
    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self._session = requests.Session()
        adapter = PinningAdapter(pool_connections=options.pool_size, pool_maxsize=options.pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: bool | None = None,
        read_timeout: float | None = None,
        addresses: tuple[IPAddress, ...] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; any HTTP status is returned as a response.

        ``read_timeout`` replaces the transport's for this request (a slow export, say).

        ``addresses`` pins the request: it connects to these IPs, in order until one accepts the
        connection, instead of resolving the URL's host (see :class:`PinningAdapter`). A pinned request
        cannot follow redirects: the next hop needs its own check.

        Retries (when ``retry``, by default for idempotent methods) on connection failures and on
        502/503/504, with exponential backoff. Timeouts are not retried: a slow server would only make the
        caller wait several times as long.
        """
        if addresses is not None and (allow_redirects or not addresses):
            raise ValueError("a pinned request needs addresses and allow_redirects=False")
        shown = redact_url(url)
        if retry is None:
            retry = method.upper() in IDEMPOTENT_METHODS
        attempts_left = 1 + (self.options.retries if retry else 0)
        delay = self.options.backoff
        while True:
            attempts_left -= 1
            try:
                response = self._request(
                    method,
                    url,
                    addresses,
                    headers=headers,
                    stream=stream,
                    allow_redirects=allow_redirects,
                    timeout=(self.options.connect_timeout, read_timeout or self.options.read_timeout),
                    verify=self.options.verify,
                    **kwargs,
                )
            except requests.ConnectTimeout as exc:
                raise UpstreamError(
                    f"could not connect to {shown} within {self.options.connect_timeout:g} s "
                    "(is the host reachable from the backend? timeouts: MEDIA_TIMEOUT)",
                    code="upstream_timeout",
                ) from exc
            except requests.Timeout as exc:
                raise UpstreamError(
                    f"no response from {shown} within {read_timeout or self.options.read_timeout:g} s: the "
                    "server is slow or stuck (raise MEDIA_TIMEOUT if it is just slow)",
                    code="upstream_timeout",
                ) from exc
            except requests.exceptions.SSLError as exc:
                raise UpstreamError(
                    f"TLS error talking to {shown}: {_underlying_reason(exc)}. For a self-signed certificate "
                    "set VERIFY_SSL to the path of its CA bundle (or VERIFY_SSL=false)",
                    code="upstream_unreachable",
                ) from exc
            except requests.ConnectionError as exc:
                if attempts_left > 0:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise UpstreamError(
                    f"cannot connect to {shown}: {connection_reason(exc)}", code="upstream_unreachable"
                ) from exc
            except requests.RequestException as exc:
                raise UpstreamError(f"request to {shown} failed: {_underlying_reason(exc)}") from exc
            if response.status_code in RETRY_STATUSES and attempts_left > 0:
                response.close()
                time.sleep(delay)
                delay *= 2
                continue
            return response

    def _request(
        self, method: str, url: str, addresses: tuple[IPAddress, ...] | None, **kwargs: Any
    ) -> requests.Response:
        """One attempt: by name, or to each pinned address in turn until one accepts the connection."""
        if addresses is None:
            return self._session.request(method, url, **kwargs)
        *others, last = addresses
        for address in others:
            try:
                with _pinned_to(address):
                    return self._session.request(method, url, **kwargs)
            except requests.ConnectionError as exc:
                if not _never_connected(exc):
                    raise
        with _pinned_to(last):
            return self._session.request(method, url, **kwargs)

    def close(self) -> None:
        self._session.close()
