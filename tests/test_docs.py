"""The documentation site builds without warnings, and documents every setting the code reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: how settings are read: declared Options, MediaSettings.from_env's helpers, undeclared settings.option
SETTING_READ = re.compile(r"\b(?:Option|get|integer|number|megabytes|option|bool_option|float_option|int_option)\("
                          r"\s*\"([A-Z][A-Z0-9_]{2,})\"")
NOT_SETTINGS = {"PYTHONPATH"}


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in [*REPO.glob("shared/labelzoo/**/*.py"), *REPO.glob("backends/*/*.py")]:
        names.update(SETTING_READ.findall(path.read_text()))
    return names - NOT_SETTINGS


def test_every_setting_the_code_reads_is_documented():
    documented = (REPO / "docs" / "configuration.md").read_text()
    documented += "".join(p.read_text() for p in REPO.glob("backends/*/README.md"))
    names = settings_read_by_the_code()
    assert {"PORT", "MODEL_DIR", "LABEL_STUDIO_API_KEY", "MEDIA_CACHE_MAX_MB"} <= names  # the scan works
    missing = sorted(n for n in names if f"`{n}`" not in documented)
    assert not missing, f"settings read by the code but not documented: {missing}"


def test_docs_site_builds_without_warnings(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # no -q: it hides the warnings that --strict counts (a quiet strict build passes with broken links)
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert (tmp_path / "site" / "backends" / "template" / "index.html").is_file()
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert 'id="labelzoo.backend.Backend.predict"' in reference  # the API reference, from the docstrings


def test_the_settings_tables_are_generated_from_the_declarations():
    from labelzoo.registry import load_backend
    from labelzoo.settings_docs import render

    backends = {p.parent.name: load_backend(str(p.parent)).cls for p in sorted(REPO.glob("backends/*/model.py"))}
    files = render(REPO, backends)
    assert REPO / "docs" / "configuration.md" in files and REPO / "backends" / "yolo" / "README.md" in files
    stale = sorted(str(path.relative_to(REPO)) for path, text in files.items() if path.read_text() != text)
    assert not stale, f"settings tables out of date in {stale}: run python scripts/settings_docs.py"
