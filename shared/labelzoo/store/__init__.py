"""All state in one SQLite file, ``MODEL_DIR/labelzoo.sqlite3``, shared by every process.

:func:`open_store` opens it (creating it, bringing its schema up to date and folding in the files of
labelzoo 0.1); the services keep their own tables in it: training (annotations, versions, jobs), bulk
(``bulk_*``) and project parameters (:class:`ProjectParams`).
"""

from __future__ import annotations

from pathlib import Path

from labelzoo.store.db import Database, iso
from labelzoo.store.legacy import fold_in_legacy_files
from labelzoo.store.project_params import ProjectParams

DB_NAME = "labelzoo.sqlite3"


def open_store(model_dir: Path) -> Database:
    """The store of ``model_dir``; earlier labelzoo's separate files are migrated into it on first open."""
    db = Database(model_dir / DB_NAME)
    fold_in_legacy_files(db, model_dir)
    return db


__all__ = ["DB_NAME", "Database", "ProjectParams", "iso", "open_store"]
