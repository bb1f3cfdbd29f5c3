"""mkdocs hook: publish each ``backends/<name>/README.md`` as ``backends/<name>.md`` of the site.

The backend READMEs are the one source for what a backend labels, its settings and example configs;
the site shows them instead of keeping a second copy that would drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]


def on_files(files: Files, config: Any) -> Files:
    for readme in sorted(REPO.glob("backends/*/README.md")):
        page = f"backends/{readme.parent.name}.md"
        if files.get_file_from_path(page) is None:
            files.append(File.generated(config, page, abs_src_path=str(readme)))
    return files
