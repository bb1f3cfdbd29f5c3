"""Which packages the wheel holds; everything else about the project is in pyproject.toml.

The core is ``shared/labelzoo``; each built-in backend folder ``backends/<name>`` ships as the package
``labelzoo_backends.<name>`` (with its README, Dockerfile, requirements and example configs), registered in
the ``labelzoo.backends`` entry-point group of pyproject.toml. Built where ``backends/`` holds only some
backends, or none (the container images install the core first and each backend's folder after it), the wheel
holds those there are.
"""

from pathlib import Path

from setuptools import find_packages, setup

BACKENDS = sorted(p.parent.name for p in Path("backends").glob("*/model.py"))
BACKEND_DATA = ["*.xml", "configs/*.xml", "README.md", "requirements*.txt", "Dockerfile"]


def backend_packages(name: str) -> list[str]:
    """A backend's package, and the packages (folders with an ``__init__.py``) inside it, such as yolo's kinds."""
    root = Path("backends", name)
    inner = sorted({init.parent.relative_to(root) for init in root.rglob("__init__.py")})
    return [f"labelzoo_backends.{name}", *(".".join(("labelzoo_backends", name, *folder.parts)) for folder in inner)]


setup(
    package_dir={"": "shared", "labelzoo_backends": "backends"},
    packages=[*find_packages("shared", include=["labelzoo", "labelzoo.*"]),
              *(["labelzoo_backends"] if BACKENDS else []),
              *(package for name in BACKENDS for package in backend_packages(name))],
    package_data={f"labelzoo_backends.{name}": BACKEND_DATA for name in BACKENDS},
)
