"""Write the settings tables generated from the option declarations into the docs.

    python scripts/settings_docs.py          # rewrite docs/configuration.md and the backend READMEs
    python scripts/settings_docs.py --check  # exit 1, naming the files, when one is out of date

The tables sit between ``<!-- settings: <name> -->`` and ``<!-- end settings -->`` (see
``labelzoo.settings_docs``); everything else in the files is left as it is. Importing the backends needs
their dependencies (the dev virtualenv has them all).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelzoo.backend import Backend
from labelzoo.registry import load_backend
from labelzoo.settings_docs import render

REPO = Path(__file__).resolve().parents[1]


def builtin_backends() -> dict[str, type[Backend]]:
    """The repository's backends by folder name."""
    return {path.parent.name: load_backend(str(path.parent)).cls for path in sorted(REPO.glob("backends/*/model.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail if a file is out of date")
    args = parser.parse_args(argv)
    files = render(REPO, builtin_backends())
    stale = [path for path, text in files.items() if path.read_text(encoding="utf-8") != text]
    for path in stale:
        if args.check:
            print(f"out of date: {path.relative_to(REPO)}", file=sys.stderr)
        else:
            path.write_text(files[path], encoding="utf-8")
            print(f"updated {path.relative_to(REPO)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
