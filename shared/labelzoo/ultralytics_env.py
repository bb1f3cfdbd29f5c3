"""Ultralytics' environment defaults, for a backend that imports it only for a model part (SAM's vit_t).

Ultralytics reads a few environment variables when it is first imported, and by default probes the
network (a DNS lookup) and writes a settings file into the user's home. :func:`quiet_ultralytics` sets,
*only where the operator has not set them*: ``YOLO_OFFLINE=1`` (no connectivity probes, update checks or
telemetry), ``YOLO_AUTOINSTALL=false`` (never pip-install at run time), ``YOLO_VERBOSE=false`` and
``YOLO_CONFIG_DIR`` (its settings file in a folder of ours).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false"}


def quiet_ultralytics(config_dir: Path) -> None:
    """Set the defaults; call it before Ultralytics is first imported (later calls change nothing it read)."""
    for name, value in {**DEFAULTS, "YOLO_CONFIG_DIR": str(config_dir)}.items():
        os.environ.setdefault(name, value)
