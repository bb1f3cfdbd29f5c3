"""Turn a task field value into a local file, whatever shape Label Studio gave it (protocol §2, P12).

Shapes, in the order they are tried:

* ``data:`` URIs (base64 or percent-encoded) are decoded into the cache;
* ``s3://``, ``gs://``, ``azure-blob://``, ``azure-spi://`` go through Label Studio's
  ``/tasks/<id>/presign/?fileuri=<base64url>``, which streams the file or answers 303 to a presigned URL
  that is followed *without* credentials;
* ``/data/local-files/?d=<rel>`` (relative or absolute) is read straight from a local root when the file
  is there, otherwise downloaded from Label Studio;
* absolute paths that exist inside a local root are read in place;
* ``/data/upload/…``, ``upload/…`` and other Label Studio paths (with or without the sub-path of
  ``LABEL_STUDIO_URL``) are downloaded from Label Studio with credentials;
* ``http(s)://`` URLs are downloaded, with credentials only on Label Studio's origin;
* other local paths (and ``file:`` URLs) must lie inside a local root; anything else is refused.

Downloads stream into :class:`MediaCache` under connect/read timeouts and a size cap, follow at most
five redirects by hand, and pass every hop through :func:`check_url_allowed` before connecting; each hop
then connects to exactly the addresses that passed (DNS rebinding gains nothing, see
:mod:`labelzoo.media.netguard`). A hop on Label Studio's origin must be one of its media paths: task data
cannot make the backend read Label Studio's API with its token. All failures are :class:`MediaError` with
a message that names the URL (credentials redacted) and what to change, and counts in
``labelzoo_media_fetch_errors`` by the kind of value (``url``, ``label_studio``, ``cloud``, ``data_uri``,
``local``, ``invalid``) and the error's ``reason``.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, overload
from urllib.parse import unquote, unquote_to_bytes, urlencode, urljoin, urlsplit

import requests

from labelzoo.errors import LabelzooError, MediaError
from labelzoo.media.cache import MediaCache
from labelzoo.media.http import HttpOptions, Transport, UpstreamError, connection_reason, redact_url
from labelzoo.media.lsclient import LabelStudioClient
from labelzoo.media.netguard import check_url_allowed
from labelzoo.media.settings import MIB, MediaSettings
from labelzoo.media.tasks import Decoder, Task, for_task, per_task
from labelzoo.observability import core_metrics

if TYPE_CHECKING:
    from labelzoo.labelconfig import ObjectTag

T = TypeVar("T")

CLOUD_SCHEMES = frozenset({"s3", "gs", "azure-blob", "azure-spi"})
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_LABEL_STUDIO_PREFIXES = ("/data/", "/storage-data/", "/tasks/", "/projects/")
# What a download may fetch from Label Studio with the backend's credentials: its media, never its API.
_LABEL_STUDIO_MEDIA = re.compile(r"/(data/|storage-data/|(tasks|projects)/\d+/(presign|resolve)/?$)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_UPSTREAM_REASONS = {"upstream_timeout": "timeout", "upstream_unreachable": "unreachable"}


class MediaResolver:
    """Local files for task media. Thread-safe; one per process shares its cache and connections."""

    def __init__(self, settings: MediaSettings, client: LabelStudioClient | None = None) -> None:
        self.settings = settings
        self._owns_client = client is None and settings.label_studio_url is not None
        if client is None and settings.label_studio_url is not None:
            client = LabelStudioClient.from_settings(settings)
        self.client = client
        self._label_studio_url = client.base_url if client is not None else None
        # Without Label Studio there are no credentials to add: a bare transport does the downloads.
        self._send: Callable[..., requests.Response]
        self._transport: Transport | None = None
        if client is not None:
            self._send = client.send
        else:
            self._transport = Transport(
                HttpOptions(
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    verify=settings.verify_ssl,
                    pool_size=max(10, settings.max_parallel_downloads),
                )
            )
            self._send = self._transport.send
        try:
            self._cache = MediaCache(settings.cache_dir, settings.cache_max_bytes)
        except OSError as exc:
            raise LabelzooError(
                f"cannot create MEDIA_CACHE_DIR {settings.cache_dir}: {exc.strerror or exc}"
            ) from exc
        self._roots = tuple(Path(root).expanduser().resolve() for root in settings.local_roots)

    # public API -------------------------------------------------------------------------------
    def local_path(self, value: str, *, task_id: int | None = None) -> Path:
        """A local file holding the media a task field value points at."""
        with self._counting(value):
            if not isinstance(value, str) or not value.strip() or "\x00" in value:
                raise MediaError(f"task media must be a non-empty URL or path, got {_shown(value)}", reason="invalid")
            try:
                return self._resolve(value.strip(), task_id)
            except OSError as exc:  # local filesystem trouble (the cache's own is reported by _cached)
                raise MediaError(f"cannot read task media {_shown(value)}: {exc.strerror or exc}",
                                 reason="io") from exc

    def read_bytes(self, value: str, *, task_id: int | None = None) -> bytes:
        path = self.local_path(value, task_id=task_id)
        with self._counting(value):
            try:
                if path.stat().st_size > self.settings.max_file_bytes:
                    raise MediaError(self._too_large_message(str(path)), reason="too_large")
                return path.read_bytes()
            except OSError as exc:
                raise MediaError(
                    f"cannot read {path} (task media {_shown(value)}): {exc.strerror or exc}", reason="io"
                ) from exc

    def read_text(self, value: str, *, task_id: int | None = None, encoding: str = "utf-8") -> str:
        data = self.read_bytes(value, task_id=task_id)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise MediaError(
                f"task media {_shown(value)} is not {encoding} text ({exc.reason} at byte {exc.start})",
                reason="invalid"
            ) from exc

    def fetch_many(self, values: Sequence[tuple[str, int | None]]) -> list[Path | MediaError]:
        """Local files for ``(value, task_id)`` pairs, fetched in parallel; a failure is its MediaError."""
        done = dict(self.iter_fetch(values))
        return [done[index] for index in range(len(values))]

    def iter_fetch(self, values: Sequence[tuple[str, int | None]]) -> Iterator[tuple[int, Path | MediaError]]:
        """``(index, Path | MediaError)`` as each download completes, so callers can start on early ones."""
        if not values:
            return
        workers = min(self.settings.max_parallel_downloads, len(values))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labelzoo-media")
        try:
            futures = {
                pool.submit(self._fetch_one, value, task_id): i for i, (value, task_id) in enumerate(values)
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    @overload
    def per_task(
        self, tasks: Sequence[Task], obj: ObjectTag, decode: None = None, *, lookahead: int | None = None
    ) -> Iterator[tuple[int, Path | str | LabelzooError]]: ...
    @overload
    def per_task(
        self, tasks: Sequence[Task], obj: ObjectTag, decode: Decoder[T], *, lookahead: int | None = None
    ) -> Iterator[tuple[int, T | str | LabelzooError]]: ...
    def per_task(
        self, tasks: Sequence[Task], obj: ObjectTag, decode: Decoder[Any] | None = None, *, lookahead: int | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(index, value or error)`` for each task's ``obj``, in task order, prefetched and decoded ahead
        (:func:`labelzoo.media.tasks.per_task`)."""
        return per_task(self, tasks, obj, decode, lookahead=lookahead)

    @overload
    def for_task(self, task: Task, obj: ObjectTag, decode: None = None) -> Path | str: ...
    @overload
    def for_task(self, task: Task, obj: ObjectTag, decode: Decoder[T]) -> T | str: ...
    def for_task(self, task: Task, obj: ObjectTag, decode: Decoder[Any] | None = None) -> Any:
        """One task's value as :meth:`per_task` makes it; raises its error (for interactive requests)."""
        return for_task(self, task, obj, decode)

    def close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()
        if self._transport is not None:
            self._transport.close()

    @contextmanager
    def _counting(self, value: object) -> Iterator[None]:
        """Count a failure to fetch ``value`` in ``labelzoo_media_fetch_errors``; a bug counts as ``other``."""
        try:
            yield
        except MediaError as exc:
            core_metrics().media_fetch_errors.labels(self._kind(value), exc.reason).inc()
            raise
        except Exception:
            core_metrics().media_fetch_errors.labels(self._kind(value), "other").inc()
            raise

    def _kind(self, value: object) -> str:
        """The shape of a task's media value, as the ``kind`` label of the fetch errors shows it."""
        if not isinstance(value, str) or not value.strip():
            return "invalid"
        value = value.strip()
        match = _SCHEME.match(value)
        scheme = match.group(1).lower() if match else ""
        if scheme == "data":
            return "data_uri"
        if scheme in CLOUD_SCHEMES:
            return "cloud"
        if scheme in ("http", "https"):
            return "url"
        if scheme == "file":
            return "local"
        if scheme:
            return "invalid"  # a scheme nothing fetches
        return "local" if self._label_studio_path(value) is None else "label_studio"

    # shapes -----------------------------------------------------------------------------------
    def _resolve(self, value: str, task_id: int | None) -> Path:
        match = _SCHEME.match(value)
        scheme = match.group(1).lower() if match else ""
        if scheme == "data":
            return self._from_data_uri(value)
        if scheme in CLOUD_SCHEMES:
            return self._from_cloud(value, task_id)
        if scheme in ("http", "https"):
            return self._local_files_lookup(value) or self._download(value)
        if scheme == "file":
            return self._from_local_path(unquote(urlsplit(value).path), value)
        if scheme:
            raise MediaError(
                f"task media {_shown(value)} has the unsupported scheme {scheme!r}: use http(s) URLs, Label "
                "Studio paths (/data/upload/…, /data/local-files/?d=…), s3/gs/azure-blob URIs, data: URIs, "
                "or files under MEDIA_LOCAL_ROOTS",
                reason="invalid"
            )
        return self._from_relative(value)

    def _fetch_one(self, value: str, task_id: int | None) -> Path | MediaError:
        try:
            return self.local_path(value, task_id=task_id)
        except MediaError as exc:
            return exc
        except Exception as exc:  # a bug must cost one item, not the whole batch
            error = MediaError(f"unexpected error fetching task media {_shown(value)}: {exc!r}")
            error.__cause__ = exc
            return error

    def _from_relative(self, value: str) -> Path:
        if value.startswith("/"):
            in_root = self._existing_under_roots(value)
            if in_root is not None:
                return in_root
        ls_path = self._label_studio_path(value)
        if ls_path is None:
            return self._from_local_path(value, value)
        local = self._local_files_lookup(ls_path)
        if local is not None:
            return local
        if self.client is None:
            raise MediaError(
                f"task media {_shown(value)} is stored in Label Studio: set LABEL_STUDIO_URL (and "
                "LABEL_STUDIO_API_KEY) so the backend can download it",
                reason="not_configured"
            )
        return self._download(self.client.url_for(ls_path))

    def _from_cloud(self, uri: str, task_id: int | None) -> Path:
        if self.client is None:
            raise MediaError(
                f"task media {_shown(uri)} is in cloud storage connected to Label Studio: set "
                "LABEL_STUDIO_URL (and LABEL_STUDIO_API_KEY) so the backend can fetch it through Label Studio",
                reason="not_configured"
            )
        if task_id is None:
            raise MediaError(
                f"task media {_shown(uri)} is a cloud storage URI, which Label Studio only resolves for a "
                "given task, and no task id was given",
                reason="invalid"
            )
        fileuri = base64.urlsafe_b64encode(uri.encode("utf-8")).decode("ascii")
        url = self.client.url_for(f"/tasks/{int(task_id)}/presign/?{urlencode({'fileuri': fileuri})}")
        # Keyed by the URI, not the presign URL: the same object is cached once for all tasks.
        return self._download(url, key=uri, suffix=_suffix(urlsplit(uri).path))

    def _from_data_uri(self, value: str) -> Path:
        header, comma, payload = value[len("data:") :].partition(",")
        if not comma:
            raise MediaError(f"malformed data: URI {_shown(value)}: no ',' before the data", reason="invalid")
        mime, *params = header.split(";")
        raw = unquote_to_bytes(payload)
        if any(param.strip().lower() == "base64" for param in params):
            try:
                data = base64.b64decode(b"".join(raw.split()), validate=True)
            except binascii.Error as exc:
                raise MediaError(f"data: URI {_shown(value)} is not valid base64: {exc}", reason="invalid") from exc
        else:
            data = raw
        if len(data) > self.settings.max_file_bytes:
            raise MediaError(self._too_large_message("the data: URI"), reason="too_large")
        suffix = mimetypes.guess_extension(mime.strip().lower() or "text/plain") or ""
        return self._cached(value, suffix, lambda out: out.write(data))

    def _from_local_path(self, path_text: str, original: str) -> Path:
        if not self._roots:
            raise MediaError(
                f"task media {_shown(original)} is a local path, but no local folder is allowed: set "
                "MEDIA_LOCAL_ROOTS (or LOCAL_FILES_DOCUMENT_ROOT) to the folder that holds it",
                reason="not_configured"
            )
        roots = ", ".join(str(root) for root in self._roots)
        path = Path(path_text)
        if path.is_absolute():
            resolved = path.resolve()
            if not any(resolved.is_relative_to(root) for root in self._roots):
                raise MediaError(
                    f"refusing task media {_shown(original)}: it is outside the allowed local folders "
                    f"({roots}), symlinks followed; add its folder to MEDIA_LOCAL_ROOTS if it should be read",
                    reason="refused"
                )
            candidates = [resolved]
        else:
            candidates = [_inside(root, path_text, original) for root in self._roots]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise MediaError(f"task media {_shown(original)}: no such file under the local folders ({roots})",
                         reason="not_found")

    # Label Studio paths and local roots -------------------------------------------------------
    def _label_studio_path(self, value: str) -> str | None:
        """``value`` as a path on Label Studio (without its sub-path), or None if it is not one."""
        path = value
        if path.startswith("upload/"):
            path = "/data/" + path
        elif path.startswith("/upload/"):
            path = "/data" + path
        base_path = urlsplit(self.client.base_url).path if self.client is not None else ""
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path) :]
        return path if path.startswith(_LABEL_STUDIO_PREFIXES) else None

    def _local_files_lookup(self, url: str) -> Path | None:
        """The file a ``/data/local-files/?d=<rel>`` URL names, if it exists under a local root."""
        parts = urlsplit(url)
        if not self._roots or not _is_local_files(parts.path):
            return None
        relative = _query_value(parts.query, "d")
        if not relative:
            return None
        for root in self._roots:
            candidate = _inside(root, relative.lstrip("/"), url)
            if candidate.is_file():
                return candidate
        return None

    def _existing_under_roots(self, path_text: str) -> Path | None:
        resolved = Path(path_text).resolve()
        if any(resolved.is_relative_to(root) for root in self._roots) and resolved.is_file():
            return resolved
        return None

    # downloads --------------------------------------------------------------------------------
    def _download(self, url: str, *, key: str | None = None, suffix: str | None = None) -> Path:
        if suffix is None:
            parts = urlsplit(url)
            local_file = _query_value(parts.query, "d") if _is_local_files(parts.path) else None
            suffix = _suffix(local_file or parts.path)
        return self._cached(key or url, suffix, lambda out: self._fetch_into(url, out))

    def _cached(self, key: str, suffix: str, fill: Callable[[BinaryIO], object]) -> Path:
        try:
            return self._cache.get_or_create(key, suffix, fill)
        except OSError as exc:
            raise MediaError(
                f"cannot write to the media cache {self.settings.cache_dir}: {exc.strerror or exc} "
                "(check free space and permissions of MEDIA_CACHE_DIR)",
                reason="io"
            ) from exc

    def _fetch_into(self, url: str, out: BinaryIO) -> None:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            addresses = check_url_allowed(
                current, label_studio_url=self._label_studio_url, allowed_hosts=self.settings.allowed_hosts
            )
            # After a redirect the URL may be presigned: its query holds credentials, keep it out of messages.
            shown = redact_url(current if hop == 0 else current.split("?", 1)[0])
            self._check_label_studio_media(current, shown)
            try:
                response = self._send("GET", current, stream=True, allow_redirects=False, addresses=addresses)
            except UpstreamError as exc:
                reason = _UPSTREAM_REASONS.get(exc.code, "http_error")
                raise MediaError(exc.message.replace(redact_url(current), shown), reason=reason) from exc
            with response:
                if response.is_redirect:
                    target = urljoin(current, response.headers["Location"])
                    if self._is_login_page(target):
                        raise MediaError(
                            f"401 from {shown}: Label Studio redirected to its login page. "
                            + self._unauthorized(),
                            reason="denied"
                        )
                    current = target
                    continue
                if response.status_code >= 300:  # a redirect without Location, or an error
                    raise MediaError(
                        f"{response.status_code} from {shown}: {self._status_hint(response, current)}",
                        reason=_status_reason(response.status_code)
                    )
                self._copy_limited(response, out, shown)
                return
        raise MediaError(f"too many redirects (more than {MAX_REDIRECTS}) fetching {redact_url(url)}",
                         reason="http_error")

    def _check_label_studio_media(self, url: str, shown: str) -> None:
        """Refuse Label Studio URLs outside its media: task data must not read its API with our token."""
        if self.client is None or not self.client.is_label_studio_url(url):
            return
        path = urlsplit(url).path
        base_path = urlsplit(self.client.base_url).path
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path) :]
        segments = unquote(path).split("/")
        if ".." in segments or "." in segments or not _LABEL_STUDIO_MEDIA.match(path):
            raise MediaError(
                f"refusing to fetch {shown}: it is on Label Studio but not one of its media paths "
                "(/data/…, /storage-data/…, /tasks/<id>/presign/); the backend's token is only used for media",
                reason="refused"
            )

    def _copy_limited(self, response: requests.Response, out: BinaryIO, shown: str) -> None:
        """Stream the body to ``out``, enforcing MEDIA_MAX_FILE_MB from Content-Length and while reading."""
        limit = self.settings.max_file_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise MediaError(self._too_large_message(shown, int(declared)), reason="too_large")
        written = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise MediaError(self._too_large_message(shown), reason="too_large")
                out.write(chunk)
        except requests.RequestException as exc:
            raise MediaError(
                f"download of {shown} stopped after {written} bytes: {connection_reason(exc)} "
                "(a slow server? see MEDIA_TIMEOUT)",
                reason="interrupted"
            ) from exc

    def _status_hint(self, response: requests.Response, url: str) -> str:
        status = response.status_code
        path = urlsplit(url).path
        if self.client is not None and self.client.is_label_studio_url(url):
            if status == 401:
                return self._unauthorized()
            if status == 403 and _is_local_files(path):
                return (
                    "Label Studio refuses to serve this local file: start Label Studio with "
                    "LOCAL_FILES_SERVING_ENABLED=true and make sure the file is inside a Local Files storage "
                    "of the project, or mount the folder into the backend and set LOCAL_FILES_DOCUMENT_ROOT"
                )
            if status == 403:
                return "the user who owns LABEL_STUDIO_API_KEY has no access to this task's project"
            if status == 404 and "/presign" in path:
                return (
                    "Label Studio found no cloud storage of the task's project matching this URI (is the "
                    "storage still connected to the project?)"
                )
            if status == 404:
                return "file not found in Label Studio (was it deleted?)"
        elif status in (401, 403):
            return (
                "the media host refused access (credentials are only sent to LABEL_STUDIO_URL; a presigned "
                "URL may have expired)"
            )
        elif status == 404:
            return "file not found on the media host"
        return "the server failed" if status >= 500 else response.reason or "request refused"

    def _unauthorized(self) -> str:
        if self.client is None:
            return "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"
        return self.client.unauthorized_hint()

    def _is_login_page(self, url: str) -> bool:
        """Label Studio answers an unauthenticated page request with a redirect to its login form."""
        return (
            self.client is not None
            and self.client.is_label_studio_url(url)
            and "/user/login" in urlsplit(url).path
        )

    def _too_large_message(self, what: str, size: int | None = None) -> str:
        actual = f" ({_megabytes(size)})" if size is not None else ""
        return (
            f"{what} is larger than the {_megabytes(self.settings.max_file_bytes)} limit{actual}: raise "
            "MEDIA_MAX_FILE_MB if such files are expected"
        )


def _inside(root: Path, relative: str, original: str) -> Path:
    """``root / relative`` with symlinks resolved, refusing anything that ends up outside ``root``."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise MediaError(
            f"refusing task media {_shown(original)}: {relative!r} leads outside the local folder {root} "
            "('..' or a symlink pointing out); only files under LOCAL_FILES_DOCUMENT_ROOT / "
            "MEDIA_LOCAL_ROOTS are read",
            reason="refused"
        )
    return candidate


def _status_reason(status: int) -> str:
    """The ``reason`` of a fetch that got an HTTP error status (or a redirect without Location)."""
    if status == 404:
        return "not_found"
    return "denied" if status in (401, 403) else "http_error"


def _is_local_files(path: str) -> bool:
    return path.rstrip("/").endswith("/data/local-files")


def _query_value(query: str, name: str) -> str | None:
    """A query parameter, percent-decoded but with '+' kept: Label Studio quotes paths with %20."""
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if sep and key == name:
            return unquote(value)
    return None


def _suffix(path: str) -> str:
    return PurePosixPath(unquote(path)).suffix


def _megabytes(size: int) -> str:
    return f"{size / MIB:.0f} MB" if size >= MIB else f"{size} bytes"


def _shown(value: object) -> str:
    """``repr`` of a value for an error message, credentials redacted and shortened: data: URIs can be
    megabytes long."""
    text = repr(redact_url(value) if isinstance(value, str) else value)
    return text if len(text) <= 200 else f"{text[:120]}…({len(text)} characters)"
