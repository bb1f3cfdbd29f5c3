"""Settings for fetching task media and talking to Label Studio.

:meth:`MediaSettings.from_env` is the only place in :mod:`labelzoo.media` that looks at environment
variables, and it receives them as a mapping: the server's ``Settings`` passes its snapshot down.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MIB = 1024 * 1024
GIB = 1024 * MIB

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "labelzoo-media"


@dataclass(frozen=True)
class MediaSettings:
    """How task media is fetched. Each field names the environment variable that sets it."""

    label_studio_url: str | None = None  # LABEL_STUDIO_URL, else LABEL_STUDIO_HOST; trailing "/" dropped
    api_key: str | None = field(default=None, repr=False)  # LABEL_STUDIO_API_KEY, else LABEL_STUDIO_ACCESS_TOKEN
    cache_dir: Path = field(default_factory=_default_cache_dir)  # MEDIA_CACHE_DIR
    cache_max_bytes: int = 2 * GIB  # MEDIA_CACHE_MAX_MB
    max_file_bytes: int = 512 * MIB  # MEDIA_MAX_FILE_MB
    connect_timeout: float = 5.0  # MEDIA_TIMEOUT="<read>" or "<connect>,<read>" (seconds)
    read_timeout: float = 30.0
    local_roots: tuple[Path, ...] = ()  # LOCAL_FILES_DOCUMENT_ROOT, then MEDIA_LOCAL_ROOTS
    allowed_hosts: tuple[str, ...] = ()  # MEDIA_ALLOWED_HOSTS: private hosts, IPs or CIDRs to allow
    verify_ssl: bool | str = True  # VERIFY_SSL: true/false, or the path of a CA bundle
    max_parallel_downloads: int = 8  # MEDIA_PARALLEL_DOWNLOADS

    def __post_init__(self) -> None:
        if self.label_studio_url is not None:
            object.__setattr__(self, "label_studio_url", _clean_label_studio_url(self.label_studio_url))
        for name in ("cache_max_bytes", "max_file_bytes", "max_parallel_downloads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MediaSettings.{name} must be positive, got {getattr(self, name)!r}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("MEDIA_TIMEOUT must be positive")
        for root in self.local_roots:
            if Path(root).resolve() == Path(root).resolve().parent:
                raise ValueError(
                    f"local media root {str(root)!r} is the filesystem root, which would let task data read "
                    "any file of the backend: set LOCAL_FILES_DOCUMENT_ROOT / MEDIA_LOCAL_ROOTS to the "
                    "folder that holds the media"
                )
        for host in self.allowed_hosts:
            if "/" in host:
                try:
                    ipaddress.ip_network(host, strict=False)
                except ValueError:
                    raise ValueError(f"MEDIA_ALLOWED_HOSTS entry {host!r} is not a valid CIDR") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MediaSettings:
        """Build settings from environment variables (empty values count as unset).

        ``LABEL_STUDIO_URL`` (fallback ``LABEL_STUDIO_HOST``): Label Studio's base URL as the backend
        reaches it, with its sub-path if any (``http://ls:8080``, ``https://example.com/ls``).
        ``LABEL_STUDIO_API_KEY`` (fallback ``LABEL_STUDIO_ACCESS_TOKEN``): a Personal Access Token or a
        legacy token.
        ``MEDIA_CACHE_DIR`` (default: ``<tmp>/labelzoo-media``), ``MEDIA_CACHE_MAX_MB`` (2048),
        ``MEDIA_MAX_FILE_MB`` (512): the download cache and the largest file fetched.
        ``MEDIA_TIMEOUT``: ``"30"`` (read timeout; connect timeout min(5, it)) or ``"5,30"`` (connect,read).
        ``LOCAL_FILES_DOCUMENT_ROOT``: the folder Label Studio serves local files from, mounted into the
        backend; ``MEDIA_LOCAL_ROOTS``: more readable folders, ``os.pathsep``-separated.
        ``MEDIA_ALLOWED_HOSTS``: comma-separated private hosts, IPs or CIDRs the backend may download from.
        ``VERIFY_SSL``: true/false, or the path of a CA bundle. ``MEDIA_PARALLEL_DOWNLOADS`` (8).
        Raises ``ValueError`` naming the variable when one is malformed.
        """

        def get(*names: str) -> str | None:
            for name in names:
                value = environ.get(name, "").strip()
                if value:
                    return value
            return None

        def megabytes(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                return int(float(raw) * MIB)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number of megabytes") from None

        defaults = cls()
        connect, read = _parse_timeout(get("MEDIA_TIMEOUT"), defaults.connect_timeout, defaults.read_timeout)
        roots = [get("LOCAL_FILES_DOCUMENT_ROOT")]
        roots += (get("MEDIA_LOCAL_ROOTS") or "").split(os.pathsep)
        parallel = get("MEDIA_PARALLEL_DOWNLOADS")
        try:
            max_parallel = defaults.max_parallel_downloads if parallel is None else int(parallel)
        except ValueError:
            raise ValueError(f"MEDIA_PARALLEL_DOWNLOADS={parallel!r} is not an integer") from None
        cache_dir = get("MEDIA_CACHE_DIR")
        return cls(
            label_studio_url=get("LABEL_STUDIO_URL", "LABEL_STUDIO_HOST"),
            api_key=get("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_ACCESS_TOKEN"),
            cache_dir=Path(cache_dir).expanduser() if cache_dir else defaults.cache_dir,
            cache_max_bytes=megabytes("MEDIA_CACHE_MAX_MB", defaults.cache_max_bytes),
            max_file_bytes=megabytes("MEDIA_MAX_FILE_MB", defaults.max_file_bytes),
            connect_timeout=connect,
            read_timeout=read,
            local_roots=tuple(Path(r.strip()).expanduser() for r in roots if r and r.strip()),
            allowed_hosts=tuple(
                h.strip() for h in (get("MEDIA_ALLOWED_HOSTS") or "").split(",") if h.strip()
            ),
            verify_ssl=_parse_verify(get("VERIFY_SSL")),
            max_parallel_downloads=max_parallel,
        )


def _clean_label_studio_url(url: str) -> str:
    cleaned = url.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"LABEL_STUDIO_URL={url!r} must be an http:// or https:// URL such as http://label-studio:8080"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"LABEL_STUDIO_URL={url!r} must not have a query or fragment")
    return cleaned


def _parse_timeout(raw: str | None, connect: float, read: float) -> tuple[float, float]:
    if raw is None:
        return connect, read
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        return min(connect, values[0]), values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ValueError(f'MEDIA_TIMEOUT={raw!r} must be seconds ("30") or connect,read seconds ("5,30")')


def _parse_verify(raw: str | None) -> bool | str:
    if raw is None or raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    return raw
