"""All state in one SQLite file, ``MODEL_DIR/labelzoo.sqlite3``, shared by every process.

:func:`open_store` opens it (creating it, bringing its schema up to date and folding in the files of
labelzoo 0.1); the services keep their own tables in it: training (annotations, versions, jobs), bulk
(``bulk_*``), project parameters (:class:`ProjectParams`) and task-score maps (:class:`ScoreMaps`). A
server opens it with :func:`open_writable_store`, which refuses a ``MODEL_DIR`` that cannot be written, and
reports :func:`store_problem` in ``/health``.
"""

from __future__ import annotations

from pathlib import Path

from labelzoo.errors import StoreUnavailable
from labelzoo.store.db import Database, iso
from labelzoo.store.legacy import fold_in_legacy_files
from labelzoo.store.project_params import ProjectParams
from labelzoo.store.score_maps import ScoreMaps
from labelzoo.store.writable import check_dir

DB_NAME = "labelzoo.sqlite3"


def open_store(model_dir: Path) -> Database:
    """The store of ``model_dir``; earlier labelzoo's separate files are migrated into it on first open."""
    db = Database(model_dir / DB_NAME)
    fold_in_legacy_files(db, model_dir)
    return db


def open_writable_store(model_dir: Path) -> Database:
    """The store of a process that must write to it; :class:`StoreUnavailable` naming ``MODEL_DIR`` if it cannot.

    Checked before anything else starts, so that a read-only or full ``MODEL_DIR`` stops the start-up with
    a message naming it, instead of failing later on the first ``/setup`` or webhook.
    """
    check_dir(model_dir, create=True)
    db = open_store(model_dir)
    try:
        db.check_writable()
    except StoreUnavailable:
        db.close()
        raise
    return db


def store_problem(db: Database) -> str | None:
    """Why the store's ``MODEL_DIR`` cannot be written right now; None when it can (see ``/health``)."""
    try:
        check_dir(db.path.parent)
        db.check_writable()
    except StoreUnavailable as exc:
        return exc.message
    return None


__all__ = [
    "DB_NAME", "Database", "ProjectParams", "ScoreMaps", "iso", "open_store", "open_writable_store", "store_problem",
]
