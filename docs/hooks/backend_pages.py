"""mkdocs hook: publish each ``backends/<name>/README.md`` as ``backends/<name>.md`` of the site.

The backend READMEs are the one source for what a backend labels, its settings and example configs;
the site shows them instead of keeping a second copy that would drift. Their relative links to files
that are not pages (``configs/detection.xml``, ``requirements.txt``, ``../../compose/yolo.yml``) point
into the backend folder of the repository, so on the site they become links to the file in the repository.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPO = Path(__file__).resolve().parents[2]
#: a markdown link whose target is relative and not a page or an anchor: ``[text](configs/x.xml)``
FILE_LINK = re.compile(r"(\]\()(?!https?://|#|/)([^)\s]+?)(\))")


def on_files(files: Files, config: Any) -> Files:
    for readme in sorted(REPO.glob("backends/*/README.md")):
        page = f"backends/{readme.parent.name}.md"
        if files.get_file_from_path(page) is None:
            files.append(File.generated(config, page, abs_src_path=str(readme)))
    return files


def on_page_markdown(markdown: str, page: Page, config: Any, files: Files) -> str:
    source = Path(page.file.abs_src_path or "")
    if source.name != "README.md" or source.parent.parent != REPO / "backends":
        return markdown
    folder = f"backends/{source.parent.name}"
    base = f"{config['repo_url'].rstrip('/')}/blob/main"

    def to_repository(match: re.Match[str]) -> str:
        path, _, anchor = match.group(2).partition("#")
        resolved = posixpath.normpath(posixpath.join(folder, path))
        return f"{match.group(1)}{base}/{resolved}{'#' + anchor if anchor else ''}{match.group(3)}"

    return FILE_LINK.sub(to_repository, markdown)
