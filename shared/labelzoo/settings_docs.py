"""The settings tables of the docs, generated from the option declarations (:mod:`labelzoo.options`).

``docs/configuration.md`` holds one generated table per group of the server's own settings
(``labelzoo.settings.CORE_OPTIONS``), and each backend's README one table of the backend's options, the
threshold default it declares and the devices it runs on. Each table sits between marker comments::

    <!-- settings: server (generated from the declarations by scripts/settings_docs.py) -->
    | variable | default | meaning |
    ...
    <!-- end settings -->

:func:`render` gives what each file should hold; ``python scripts/settings_docs.py`` writes it, and a test
fails when a committed file differs, so the tables are complete and current.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo.devices import describe_auto
from labelzoo.options import Option
from labelzoo.settings import CORE_OPTIONS

if TYPE_CHECKING:
    from labelzoo.backend import Backend

HEADER = "| variable | default | meaning |\n| --- | --- | --- |"
BACKEND_TABLE = "backend"  # the key of the table in a backend's README
#: a marked region: its opening comment (with the table's name), the table, the closing comment
_REGION = re.compile(
    r"(<!-- settings: (\w+)[^>]*-->\n)((?:(?!<!-- settings:).)*?\n)?(<!-- end settings -->)", re.DOTALL
)


def default_text(option: Option) -> str:
    """How the docs show an option's default: ``8``, ``true``, ``detect``, or what the backend computes."""
    if option.default_doc is not None:
        return option.default_doc
    value: Any = option.default
    if value is None:
        return "–"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"`{value}`"


def option_row(option: Option) -> str:
    meaning = option.doc
    if option.low is not None and option.high is not None:
        meaning += f" ({option.low:g}–{option.high:g})"
    if option.project is not None:
        meaning += f"; per project: `extra_params.{option.project}`"
    return _row(f"`{option.name}`", default_text(option), meaning)


def options_table(options: Iterable[Option], extra_rows: Iterable[str] = ()) -> str:
    return "\n".join([HEADER, *(option_row(o) for o in options), *extra_rows])


def backend_table(cls: type[Backend]) -> str:
    """The backend's declared options, then the common settings whose meaning it declares."""
    rows = []
    if cls.default_score_threshold is not None:
        rows.append(_row("`MODEL_SCORE_THRESHOLD`", f"`{cls.default_score_threshold:g}`",
                         "minimum score of a prediction for controls without `model_score_threshold`"))
    if cls.device_types:
        rows.append(_row("`DEVICE`", "`auto`", describe_auto(cls.device_types)))
    return options_table(cls.options, rows)


def core_tables() -> dict[str, str]:
    return {key: options_table(group) for key, group in CORE_OPTIONS.items()}


def splice(text: str, tables: Mapping[str, str], where: str) -> str:
    """``text`` with each marked region replaced by its table; every table must have its region."""
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        key = match.group(2)
        if key not in tables:
            raise ValueError(f"{where}: no generated table is named {key!r} (known: {', '.join(tables)})")
        seen.add(key)
        return match.group(1) + tables[key] + "\n" + match.group(4)

    spliced = _REGION.sub(replace, text)
    missing = sorted(set(tables) - seen)
    if missing:
        raise ValueError(f"{where} has no '<!-- settings: {missing[0]} -->' … '<!-- end settings -->' region")
    return spliced


def render(repo: Path, backends: Mapping[str, type[Backend]]) -> dict[Path, str]:
    """What ``docs/configuration.md`` and each backend README (``backends/<name>/README.md``) should hold.

    A backend that declares options must have a marked table in its README; one without may have one.
    """
    config = repo / "docs" / "configuration.md"
    files = {config: splice(config.read_text(encoding="utf-8"), core_tables(), str(config))}
    for name, cls in backends.items():
        readme = repo / "backends" / name / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        if len(cls.options) or _REGION.search(text):
            files[readme] = splice(text, {BACKEND_TABLE: backend_table(cls)}, str(readme))
    return files


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
