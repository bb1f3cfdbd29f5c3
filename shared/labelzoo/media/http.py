"""HTTP transport shared by the Label Studio client and the media resolver.

One :class:`Transport` wraps a ``requests.Session`` with timeouts, TLS verification and a bounded retry
on connection failures and 502/503/504. Transport failures become :class:`UpstreamError` with a message
naming the URL, so callers never see a raw ``requests`` exception.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from labelzoo.errors import LabelzooError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


def connection_reason(exc: BaseException) -> str:
    """The useful part of a ``requests`` connection error ("Connection refused")."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip() if found else text


class Transport:
    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=options.pool_size, pool_maxsize=options.pool_size)
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
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; any HTTP status is returned as a response.

        ``read_timeout`` replaces the transport's for this request (a slow export, say).

        Retries (when ``retry``, by default for idempotent methods) on connection failures and on
        502/503/504, with exponential backoff. Timeouts are not retried: a slow server would only make the
        caller wait several times as long.
        """
        if retry is None:
            retry = method.upper() in IDEMPOTENT_METHODS
        attempts_left = 1 + (self.options.retries if retry else 0)
        delay = self.options.backoff
        while True:
            attempts_left -= 1
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=headers,
                    stream=stream,
                    allow_redirects=allow_redirects,
                    timeout=(self.options.connect_timeout, read_timeout or self.options.read_timeout),
                    verify=self.options.verify,
                    **kwargs,
                )
            except requests.ConnectTimeout as exc:
                raise UpstreamError(
                    f"could not connect to {url} within {self.options.connect_timeout:g} s "
                    "(is the host reachable from the backend? timeouts: MEDIA_TIMEOUT)",
                    code="upstream_timeout",
                ) from exc
            except requests.Timeout as exc:
                raise UpstreamError(
                    f"no response from {url} within {read_timeout or self.options.read_timeout:g} s: the server is "
                    "slow or stuck (raise MEDIA_TIMEOUT if it is just slow)",
                    code="upstream_timeout",
                ) from exc
            except requests.exceptions.SSLError as exc:
                raise UpstreamError(
                    f"TLS error talking to {url}: {exc}. For a self-signed certificate set VERIFY_SSL to the "
                    "path of its CA bundle (or VERIFY_SSL=false)",
                    code="upstream_unreachable",
                ) from exc
            except requests.ConnectionError as exc:
                if attempts_left > 0:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise UpstreamError(
                    f"cannot connect to {url}: {connection_reason(exc)}", code="upstream_unreachable"
                ) from exc
            except requests.RequestException as exc:
                raise UpstreamError(f"request to {url} failed: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempts_left > 0:
                response.close()
                time.sleep(delay)
                delay *= 2
                continue
            return response

    def close(self) -> None:
        self._session.close()
