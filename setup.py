"""Which packages the wheel holds; everything else about the project is in pyproject.toml.

The core is ``shared/labelzoo``; each built-in backend folder ``backends/<name>`` ships as the package
``labelzoo_backends.<name>`` (with its README, Dockerfile, requirements and example configs), registered in
the ``labelzoo.backends`` entry-point group of pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

BACKENDS = sorted(p.name for p in Path("backends").iterdir() if (p / "model.py").is_file())
BACKEND_DATA = ["*.xml", "configs/*.xml", "README.md", "requirements*.txt", "Dockerfile"]

setup(
    package_dir={"": "shared", "labelzoo_backends": "backends"},
    packages=[*find_packages("shared", include=["labelzoo", "labelzoo.*"]), "labelzoo_backends",
              *(f"labelzoo_backends.{name}" for name in BACKENDS)],
    package_data={f"labelzoo_backends.{name}": BACKEND_DATA for name in BACKENDS},
)
