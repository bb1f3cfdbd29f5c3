"""Find a backend by name or by folder, and import its ``model.py``.

A backend is a module defining one concrete :class:`~labelzoo.backend.Backend` subclass (``model.py`` of a
backend folder). ``labelzoo serve`` takes either

* a **name**: an entry point of the ``labelzoo.backends`` group. The built-in backends are registered by
  labelzoo itself (``yolo = "labelzoo_backends.yolo.model"``); a backend pip-installed from its own
  package registers the same way, and then serves by name. A folder ``./backends/<name>`` of the working
  directory is found by name too;
* a **folder** path (``./my_backend``) holding ``model.py``. It is imported as a package named
  ``labelzoo_local.<folder name>``, so its modules may import each other with relative imports
  (``from .geometry import ...``); a folder that is an installed backend's package is imported under its
  package name instead, so its modules are never loaded twice.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from labelzoo.backend import Backend
from labelzoo.errors import LabelzooError

ENTRY_POINT_GROUP = "labelzoo.backends"
LOCAL_PACKAGE = "labelzoo_local"
MODEL_MODULE = "model"


class BackendNotFound(LabelzooError):
    status = 404
    code = "backend_not_found"


@dataclass(frozen=True)
class BackendSpec:
    """A backend's name, folder and class. Another process finds it again by ``path`` (the same folder on this
    machine is imported under the same module name) or, where that folder does not exist, by ``name``."""

    name: str
    path: Path
    cls: type[Backend]


@dataclass(frozen=True)
class Found:
    """Where a backend is, before its code is imported: its module name, or its folder."""

    name: str
    folder: Path
    module: str | None  # set for installed backends (entry points); None for a plain folder


def installed() -> dict[str, EntryPoint]:
    """The backends registered in the ``labelzoo.backends`` entry-point group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def find(spec: str) -> Found:
    """``spec`` is a folder path (``./my_backend``) or a backend name (``yolo``); nothing is imported."""
    candidate = Path(spec).expanduser()
    if (candidate / f"{MODEL_MODULE}.py").is_file():
        folder = candidate.resolve()
        entry = _installed_entry(folder)
        return Found(entry.name, folder, entry.value) if entry else Found(folder.name, folder, None)
    entry = installed().get(spec)
    if entry is not None:
        return Found(spec, _module_folder(entry.value, spec), entry.value)
    if candidate.is_dir():
        raise BackendNotFound(f"{candidate} is a folder but has no {MODEL_MODULE}.py defining a Backend subclass")
    local = Path.cwd() / "backends" / spec
    if (local / f"{MODEL_MODULE}.py").is_file():
        return find(str(local))
    known = ", ".join(sorted(installed())) or "none"
    raise BackendNotFound(f"no backend named {spec!r} (installed: {known}); pass a folder path to use your own")


def find_folder(spec: str) -> Path:
    """The folder of a backend (its README, configs and Dockerfile), without importing its code."""
    return find(spec).folder


def iter_installed() -> Iterator[Found]:
    """Every installed backend, by name, without importing their code."""
    for name, entry in sorted(installed().items()):
        try:
            yield Found(name, _module_folder(entry.value, name), entry.value)
        except BackendNotFound:
            continue  # registered by a package that is gone or broken: `labelzoo backends` lists the others


def load_backend(spec: str) -> BackendSpec:
    found = find(spec)
    module = importlib.import_module(found.module) if found.module else _import_folder(found.folder)
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
            f"{module.__file__} must define exactly one concrete Backend subclass (found: {names})"
        )
    return BackendSpec(name=found.name, path=found.folder, cls=classes[0])


def _module_folder(module: str, name: str) -> Path:
    try:
        origin = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise BackendNotFound(f"backend {name!r} is registered as {module!r}, which cannot be found: {exc}") from exc
    if origin is None or origin.origin is None:
        raise BackendNotFound(f"backend {name!r} is registered as {module!r}, which is not installed")
    return Path(origin.origin).resolve().parent


def _installed_entry(folder: Path) -> EntryPoint | None:
    """The entry point of the installed backend whose package is ``folder``, if it is one."""
    for entry in installed().values():
        try:
            if _module_folder(entry.value, entry.name) == folder:
                return entry
        except BackendNotFound:
            continue
    return None


def _import_folder(folder: Path) -> types.ModuleType:
    if LOCAL_PACKAGE not in sys.modules:
        root = types.ModuleType(LOCAL_PACKAGE)
        root.__path__ = []
        sys.modules[LOCAL_PACKAGE] = root
    slug = re.sub(r"\W", "_", folder.name)
    package_name = f"{LOCAL_PACKAGE}.{slug}"
    existing = sys.modules.get(package_name)
    if existing is not None and list(getattr(existing, "__path__", [])) != [str(folder)]:
        raise LabelzooError(f"two backend folders named {folder.name!r} cannot be loaded in one process")
    if existing is None:
        package = types.ModuleType(package_name)
        package.__path__ = [str(folder)]
        package.__file__ = str(folder / "__init__.py")
        sys.modules[package_name] = package
    return importlib.import_module(f"{package_name}.{MODEL_MODULE}")
