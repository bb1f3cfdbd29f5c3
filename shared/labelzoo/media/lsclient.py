"""An authenticated client for Label Studio's HTTP API and media URLs.

Two kinds of ``LABEL_STUDIO_API_KEY`` exist (protocol §2.2):

* a **Personal Access Token** (PAT) is a long-lived JWT *refresh* token. It is exchanged at
  ``POST /api/token/refresh/`` for a short-lived access token, sent as ``Authorization: Bearer``. The
  access token is renewed shortly before its ``exp`` and once more if Label Studio answers 401;
* a **legacy token** is sent as ``Authorization: Token <key>``. Label Studio ≥ 1.20 disables legacy
  tokens by default for new organisations, which is why error messages point users to PATs.

Credentials are only ever attached to URLs on Label Studio's own origin (scheme, host and port of
``LABEL_STUDIO_URL``). One client is meant to be shared by all threads of a process.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import requests

from labelzoo.media.http import HttpOptions, Transport, UpstreamError, origin_of, redact_url

if TYPE_CHECKING:
    from labelzoo.media.settings import MediaSettings

TokenKind = Literal["pat", "legacy", "none"]

REFRESH_PATH = "/api/token/refresh/"
WHOAMI_PATH = "/api/current-user/whoami"
_PAT_HELP = "create a new Personal Access Token in Label Studio → Account & Settings"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
# A rejected PAT is not retried for this long: a batch of tasks would otherwise hammer the refresh endpoint.
_REFRESH_FAILURE_TTL = 30.0


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of :meth:`LabelStudioClient.check`, shown in ``/health``."""

    ok: bool
    kind: TokenKind
    message: str


def jwt_payload(token: str) -> dict[str, Any] | None:
    """The (unverified) payload of a JWT, or None if ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        payload = json.loads(raw)
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


def token_kind(api_key: str | None) -> TokenKind:
    if not api_key:
        return "none"
    payload = jwt_payload(api_key)
    return "pat" if payload is not None and payload.get("token_type") == "refresh" else "legacy"


class LabelStudioClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        verify: bool | str = True,
        retries: int = 2,
        backoff: float = 0.5,
        pool_size: int = 10,
        refresh_margin: float = 30.0,
    ) -> None:
        base = base_url.strip().rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"LABEL_STUDIO_URL={base_url!r} must be an http:// or https:// URL")
        self.base_url = base
        self._shown_base = redact_url(base)  # for messages: no user:password@
        self._origin_url = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path  # a sub-path deployment such as "/ls", or ""
        self._origin = origin_of(base)
        self._api_key = api_key or None
        self.token_kind: TokenKind = token_kind(self._api_key)
        self._refresh_margin = refresh_margin
        self._transport = Transport(
            HttpOptions(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                verify=verify,
                retries=retries,
                backoff=backoff,
                pool_size=max(pool_size, 10),
            )
        )
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_expires: float | None = None
        self._refresh_failure: tuple[float, str, int] | None = None  # (retry after, message, status)

    @classmethod
    def from_settings(cls, settings: MediaSettings) -> LabelStudioClient:
        if not settings.label_studio_url:
            raise ValueError("LABEL_STUDIO_URL is not set: the backend cannot reach Label Studio")
        return cls(
            settings.label_studio_url,
            settings.api_key,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            verify=settings.verify_ssl,
            pool_size=settings.max_parallel_downloads,
        )

    @property
    def has_credentials(self) -> bool:
        """Whether an API key is set: the API (exports, posting predictions) needs one, media may not."""
        return self._api_key is not None

    # URLs -------------------------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> str:
        """An absolute URL. Paths are joined to LABEL_STUDIO_URL, keeping its sub-path exactly once."""
        if re.match(r"https?://", path_or_url, re.IGNORECASE):
            return path_or_url
        path = path_or_url if path_or_url.startswith("/") else "/" + path_or_url
        if self._base_path and (path == self._base_path or path.startswith(self._base_path + "/")):
            return self._origin_url + path
        return self.base_url + path

    def is_label_studio_url(self, url: str) -> bool:
        return self._origin is not None and origin_of(url) == self._origin

    def auth_headers_for(self, url: str) -> dict[str, str]:
        """``{"Authorization": ...}`` for a URL on Label Studio's origin; ``{}`` for any other host.

        With a PAT this may first renew the access token, raising :class:`UpstreamError` if Label Studio
        rejects the PAT.
        """
        if not self.is_label_studio_url(url):
            return {}
        if self.token_kind == "legacy":
            return {"Authorization": f"Token {self._api_key}"}
        if self.token_kind == "pat":
            return {"Authorization": f"Bearer {self._current_access()}"}
        return {}

    def unauthorized_hint(self) -> str:
        """What to fix after Label Studio answered 401 to this client's credentials."""
        problem = "LABEL_STUDIO_API_KEY is missing or not a valid token"
        if self.token_kind == "none":
            return f"{problem}: it is not set; set it to a Personal Access Token (Account & Settings)"
        if self.token_kind == "legacy":
            return (
                f"{problem}. It looks like a legacy token, which Label Studio ≥ 1.20 disables by default: "
                "use a Personal Access Token, or enable legacy tokens in the organization settings"
            )
        return f"{problem}: {_PAT_HELP}"

    # requests ---------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request to an absolute URL, any status returned as a response.

        Credentials are added for Label Studio's origin only. With a PAT, a 401 renews the access token
        and retries once. Transport failures raise :class:`UpstreamError`.
        """
        merged = {**(headers or {}), **self.auth_headers_for(url)}
        options = {"stream": stream, "allow_redirects": allow_redirects, "retry": retry, **kwargs}
        response = self._send(method, url, headers=merged, **options)
        sent = merged.get("Authorization", "")
        if response.status_code == 401 and sent.startswith("Bearer "):
            response.close()
            self._renew_after_401(sent.removeprefix("Bearer "))
            merged.update(self.auth_headers_for(url))
            response = self._send(method, url, headers=merged, **options)
        return response

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """:meth:`send` to a path or URL; an HTTP error status raises :class:`UpstreamError`."""
        url = self.url_for(path_or_url)
        response = self.send(method, url, **kwargs)
        if response.status_code >= 400:
            message = f"{response.status_code} from {method.upper()} {redact_url(url)}: {self._status_hint(response)}"
            response.close()
            raise UpstreamError(message, upstream_status=response.status_code)
        return response

    def get(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path_or_url, **kwargs)

    def post(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path_or_url, **kwargs)

    def get_json(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, read_timeout: float | None = None
    ) -> Any:
        return _json_of(self.get(path_or_url, params=params, read_timeout=read_timeout))

    def post_json(self, path_or_url: str, payload: Any) -> Any:
        return _json_of(self.post(path_or_url, json=payload))

    def paginate(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int = 100,
        items_key: str = "results",
    ) -> Iterator[Any]:
        """Every item of a paginated list endpoint, fetching ``page=1, 2, …`` lazily.

        Pages are ``{items_key: [...], "next": ...}`` dicts (``items_key="tasks"`` for ``/api/tasks/``).
        Stops at a short page, a null ``next``, or the 404 Django REST framework answers past the end.
        An endpoint that answers a bare list is not paginated: its list is yielded once.
        """
        page = 1
        while True:
            query = {**(params or {}), "page": page, "page_size": page_size}
            try:
                data = self.get_json(path_or_url, params=query)
            except UpstreamError as exc:
                if exc.upstream_status == 404 and page > 1:
                    return
                raise
            if isinstance(data, list):
                yield from data
                return
            items = data.get(items_key) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise UpstreamError(
                    f"{redact_url(self.url_for(path_or_url))} did not answer a page with a {items_key!r} list"
                )
            yield from items
            if len(items) < page_size or ("next" in data and not data["next"]):
                return
            page += 1

    def check(self) -> TokenCheck:
        """Try the token once against ``/api/current-user/whoami``; never raises."""
        kind = self.token_kind
        if kind == "none":
            return TokenCheck(
                False,
                kind,
                f"LABEL_STUDIO_API_KEY is not set: media stored in Label Studio ({self._shown_base}) cannot be "
                "downloaded. Set it to a Personal Access Token (Label Studio → Account & Settings)",
            )
        try:
            me = self.get_json(WHOAMI_PATH)
        except UpstreamError as exc:
            return TokenCheck(False, kind, exc.message)
        user = me.get("id") if isinstance(me, dict) else None
        label = "a Personal Access Token" if kind == "pat" else "a legacy token"
        return TokenCheck(True, kind, f"authenticated to {self._shown_base} with {label} (user id {user})")

    def close(self) -> None:
        self._transport.close()

    # internals --------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._transport.send(method, url, **kwargs)
        except UpstreamError as exc:
            if exc.code != "upstream_unreachable" or not self.is_label_studio_url(url):
                raise
            raise UpstreamError(f"{exc.message}. {self._connect_hint()}", code=exc.code) from exc

    def _connect_hint(self) -> str:
        hint = f"Check LABEL_STUDIO_URL ({self._shown_base})"
        if self._origin is not None and self._origin[1] in _LOCAL_HOSTS:
            hint += (
                ": inside a Docker container 'localhost' is the container itself, use an address the "
                "container can reach (e.g. http://host.docker.internal:8080 or the compose service name)"
            )
        return hint

    def _status_hint(self, response: requests.Response) -> str:
        status = response.status_code
        if status == 401:
            return self.unauthorized_hint()
        if status == 403:
            return "the user who owns LABEL_STUDIO_API_KEY has no permission for this resource"
        if status == 404:
            return (
                "not found in Label Studio (a wrong id, or LABEL_STUDIO_URL names the wrong server/sub-path)"
            )
        if status >= 500:
            return "Label Studio failed; its logs say why"
        return _snippet(response)

    def _current_access(self) -> str:
        with self._lock:
            expired = (
                self._access_expires is not None
                and time.time() >= self._access_expires - self._refresh_margin
            )
            if self._access is None or expired:
                self._refresh_locked()
            assert self._access is not None
            return self._access

    def _renew_after_401(self, stale: str) -> None:
        with self._lock:
            if self._access == stale:  # not already renewed by another thread meanwhile
                self._refresh_locked()

    def _refresh_locked(self) -> None:
        if self._refresh_failure is not None and time.monotonic() < self._refresh_failure[0]:
            _, message, status = self._refresh_failure
            raise UpstreamError(message, upstream_status=status)
        url = self.url_for(REFRESH_PATH)
        response = self._send("POST", url, json={"refresh": self._api_key}, retry=True)
        with response:
            status = response.status_code
            if status != 200:
                if status == 404:
                    message = (
                        f"LABEL_STUDIO_API_KEY looks like a Personal Access Token but {redact_url(url)} does not exist "
                        "(404): Label Studio older than 1.20 has no PATs, use its legacy access token instead"
                    )
                else:
                    message = f"LABEL_STUDIO_API_KEY was rejected by {redact_url(url)} ({status}): {_PAT_HELP}"
                if status < 500:
                    self._refresh_failure = (time.monotonic() + _REFRESH_FAILURE_TTL, message, status)
                raise UpstreamError(message, upstream_status=status)
            data = _json_of(response)
        access = data.get("access") if isinstance(data, dict) else None
        if not isinstance(access, str) or not access:
            raise UpstreamError(
                f"{redact_url(url)} answered without an 'access' token: is LABEL_STUDIO_URL Label Studio?"
            )
        exp = (jwt_payload(access) or {}).get("exp")
        self._access = access
        self._access_expires = float(exp) if isinstance(exp, (int, float)) else None
        self._refresh_failure = None


def _json_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        content_type = response.headers.get("Content-Type", "no content type")
        raise UpstreamError(
            f"expected JSON from {redact_url(str(response.url))} but got {content_type}: {_snippet(response)} "
            "(does LABEL_STUDIO_URL point at Label Studio?)"
        ) from None


def _snippet(response: requests.Response) -> str:
    text = " ".join(response.text[:200].split())
    return text or response.reason or "no details"


def label_studio_client(settings: MediaSettings, *, api: bool = False) -> LabelStudioClient | None:
    """The one way a process gets its Label Studio client: None when ``LABEL_STUDIO_URL`` is not set, and with
    ``api`` (exports, posting predictions) also when ``LABEL_STUDIO_API_KEY`` is not.

    A process builds one and hands it to everything that talks to Label Studio (media downloads, training's
    export, bulk posts); calls that need longer than ``MEDIA_TIMEOUT`` pass their own ``read_timeout``.
    """
    if not settings.label_studio_url or (api and not settings.api_key):
        return None
    return LabelStudioClient.from_settings(settings)
