"""MediaSettings.from_env: every variable, its fallback and its error message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labelzoo.media import MediaSettings
from labelzoo.media.settings import GIB, MIB


def test_defaults_without_any_variable() -> None:
    settings = MediaSettings.from_env({})
    assert settings == MediaSettings()
    assert settings.label_studio_url is None and settings.api_key is None
    assert settings.cache_max_bytes == 2 * GIB and settings.max_file_bytes == 512 * MIB
    assert settings.local_roots == () and settings.allowed_hosts == () and settings.verify_ssl is True


def test_every_variable_is_read(tmp_path: Path) -> None:
    docs, extra = tmp_path / "docs", tmp_path / "extra"
    settings = MediaSettings.from_env(
        {
            "LABEL_STUDIO_URL": "http://ls:8080/sub/",
            "LABEL_STUDIO_API_KEY": "key",
            "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
            "MEDIA_CACHE_MAX_MB": "100",
            "MEDIA_MAX_FILE_MB": "1.5",
            "MEDIA_TIMEOUT": "2,60",
            "LOCAL_FILES_DOCUMENT_ROOT": str(docs),
            "MEDIA_LOCAL_ROOTS": f"{extra}{os.pathsep}",
            "MEDIA_ALLOWED_HOSTS": "minio, 10.0.0.0/8 ,",
            "VERIFY_SSL": "false",
            "MEDIA_PARALLEL_DOWNLOADS": "3",
        }
    )
    assert settings.label_studio_url == "http://ls:8080/sub"
    assert settings.api_key == "key"
    assert settings.cache_dir == tmp_path / "cache"
    assert settings.cache_max_bytes == 100 * MIB and settings.max_file_bytes == int(1.5 * MIB)
    assert (settings.connect_timeout, settings.read_timeout) == (2.0, 60.0)
    assert settings.local_roots == (docs, extra)
    assert settings.allowed_hosts == ("minio", "10.0.0.0/8")
    assert settings.verify_ssl is False
    assert settings.max_parallel_downloads == 3


def test_fallback_names_and_single_timeout() -> None:
    settings = MediaSettings.from_env(
        {
            "LABEL_STUDIO_URL": "",
            "LABEL_STUDIO_HOST": "https://ls.example.com",
            "LABEL_STUDIO_ACCESS_TOKEN": "legacy",
            "MEDIA_TIMEOUT": "3",
            "VERIFY_SSL": "/etc/ssl/ca.pem",
        }
    )
    assert settings.label_studio_url == "https://ls.example.com"
    assert settings.api_key == "legacy"
    assert (settings.connect_timeout, settings.read_timeout) == (3.0, 3.0)
    assert settings.verify_ssl == "/etc/ssl/ca.pem"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABEL_STUDIO_URL": "ls:8080"}, "LABEL_STUDIO_URL='ls:8080' must be an http:// or https:// URL"),
        ({"MEDIA_TIMEOUT": "soon"}, "MEDIA_TIMEOUT='soon'"),
        ({"MEDIA_TIMEOUT": "0"}, "MEDIA_TIMEOUT must be positive"),
        ({"MEDIA_CACHE_MAX_MB": "lots"}, "MEDIA_CACHE_MAX_MB='lots' is not a number"),
        ({"MEDIA_PARALLEL_DOWNLOADS": "x"}, "MEDIA_PARALLEL_DOWNLOADS='x' is not an integer"),
        ({"MEDIA_ALLOWED_HOSTS": "10.0.0.0/33"}, "MEDIA_ALLOWED_HOSTS entry '10.0.0.0/33'"),
        ({"LOCAL_FILES_DOCUMENT_ROOT": "/"}, "is the filesystem root"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        MediaSettings.from_env(env)
    assert message in str(caught.value)
