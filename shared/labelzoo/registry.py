"""Find backends by name (``backends/<name>``) or by folder path, and import their ``model.py``.

A backend folder holds ``model.py`` defining one :class:`~labelzoo.backend.Backend` subclass. The folder
is imported as a package named ``labelzoo_backends.<name>``, so its modules may import each other with
relative imports (``from .geometry import ...``) and two backends never clash on module names.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labelzoo.backend import Backend
from labelzoo.errors import LabelzooError

PACKAGE = "labelzoo_backends"
MODEL_MODULE = "model"
REPO_BACKENDS = Path(__file__).resolve().parents[2] / "backends"


class BackendNotFound(LabelzooError):
    status = 404
    code = "backend_not_found"


@dataclass(frozen=True)
class BackendSpec:
    """A backend's folder and class; ``path`` is absolute so child processes find the same code."""

    name: str
    path: Path
    cls: type[Backend]


def search_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    dirs = [*extra, Path.cwd() / "backends", REPO_BACKENDS]
    unique: list[Path] = []
    for d in dirs:
        resolved = d.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def find_folder(spec: str, extra_dirs: Iterable[Path] = ()) -> Path:
    """``spec`` is a folder path (``./my_backend``) or a backend name (``yolo``)."""
    candidate = Path(spec).expanduser()
    if candidate.is_dir() and (candidate / f"{MODEL_MODULE}.py").is_file():
        return candidate.resolve()
    if candidate.is_dir():
        raise BackendNotFound(f"{candidate} is a folder but has no {MODEL_MODULE}.py defining a Backend subclass")
    for directory in search_dirs(extra_dirs):
        folder = directory / spec
        if (folder / f"{MODEL_MODULE}.py").is_file():
            return folder.resolve()
    known = ", ".join(sorted(name for name, _ in iter_backend_folders(extra_dirs))) or "none"
    raise BackendNotFound(f"no backend named {spec!r} (known: {known}); pass a folder path to use your own")


def iter_backend_folders(extra_dirs: Iterable[Path] = ()) -> Iterator[tuple[str, Path]]:
    seen: set[str] = set()
    for directory in search_dirs(extra_dirs):
        if not directory.is_dir():
            continue
        for folder in sorted(directory.iterdir()):
            if (folder / f"{MODEL_MODULE}.py").is_file() and folder.name not in seen:
                seen.add(folder.name)
                yield folder.name, folder


def _module_name(folder: Path) -> str:
    slug = re.sub(r"\W", "_", folder.name)
    return f"{PACKAGE}.{slug}"


def _import_folder(folder: Path) -> types.ModuleType:
    if PACKAGE not in sys.modules:
        root = types.ModuleType(PACKAGE)
        root.__path__ = []
        sys.modules[PACKAGE] = root
    package_name = _module_name(folder)
    existing = sys.modules.get(package_name)
    if existing is not None and list(getattr(existing, "__path__", [])) != [str(folder)]:
        raise LabelzooError(f"two backend folders named {folder.name!r} cannot be loaded in one process")
    if existing is None:
        package = types.ModuleType(package_name)
        package.__path__ = [str(folder)]
        package.__file__ = str(folder / "__init__.py")
        sys.modules[package_name] = package
    return importlib.import_module(f"{package_name}.{MODEL_MODULE}")


def load_backend(spec: str, extra_dirs: Iterable[Path] = ()) -> BackendSpec:
    folder = find_folder(spec, extra_dirs)
    module = _import_folder(folder)
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Backend)
        and obj is not Backend
        and not inspect.isabstract(obj)
        and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise LabelzooError(
            f"{folder / (MODEL_MODULE + '.py')} must define exactly one concrete Backend subclass (found: {names})"
        )
    return BackendSpec(name=folder.name, path=folder, cls=classes[0])
