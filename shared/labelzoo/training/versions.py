"""Model versions: names, folders under ``MODEL_DIR/<project>/`` and the rows that make them visible.

A version is visible only through its row in the ``versions`` table, and a row is written in the same
transaction as the ``os.rename`` that moves a finished staging folder into place: a crash leaves either
the old state (the staging folder, deleted at the next start) or the complete new version.

Version name format (stable across restarts, the same on every worker)::

    <base>-p<project>-v<generation>-<fingerprint>      e.g.  yolo11n-p12-v3-5f0c2a

``base`` is the backend's ``base_version()`` with characters outside ``[A-Za-z0-9._-]`` replaced by
``_``; ``generation`` counts training rounds from the base model (parent's generation + 1);
``fingerprint`` is the first 6 hex digits of the SHA-256 of the parent version and the sorted
``(annotation id, updated_at)`` pairs of the training examples. The same annotations trained from the
same parent therefore always give the same name. An untrained project's version is ``base`` itself.
When that name is taken by a quarantined version (retraining after its files broke), the fingerprint is
taken again with the quarantined name in place of the parent, until the name is free.

Which version a project is served (:meth:`VersionStore.resolve`): the pin, else the newest promoted
version, else ``base``; a quarantined one (:mod:`labelzoo.training.quarantine`) is passed over for its
nearest servable ancestor, following ``parent``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelzoo.errors import LabelzooError
from labelzoo.store.db import Database, iso
from labelzoo.training.quarantine import Quarantined, QuarantineStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_base(base: str) -> str:
    return _UNSAFE.sub("_", base).strip("._-") or "model"


def fingerprint(parent: str, examples: Iterable[tuple[int, str]]) -> str:
    digest = hashlib.sha256(parent.encode())
    for annotation_id, updated_at in sorted(examples):
        digest.update(f"\n{annotation_id} {updated_at}".encode())
    return digest.hexdigest()[:6]


def version_name(base: str, project: str, generation: int, fp: str) -> str:
    return f"{safe_base(base)}-p{project}-v{generation}-{fp}"


def is_version_folder(project: str, name: str) -> bool:
    return re.fullmatch(rf".+-p{re.escape(project)}-v\d+-[0-9a-f]{{6}}", name) is not None


@dataclass(frozen=True)
class VersionRecord:
    project: str
    version: str
    base: str
    parent: str
    generation: int
    job_id: str | None
    examples: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    created_at: float = 0.0
    files: Mapping[str, Sequence[int | str]] | None = None  # the manifest: path → (size, SHA-256)
    #: the Label Studio task ids whose annotations this version (or an ancestor whose models it kept) learnt
    #: from; None when not known (a version promoted before they were recorded, or one descended from it)
    trained_on: tuple[int, ...] | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> VersionRecord:
        return cls(
            project=row["project"], version=row["version"], base=row["base"], parent=row["parent"],
            generation=row["generation"], job_id=row["job_id"], examples=row["examples"],
            metrics=json.loads(row["metrics"]), summary=row["summary"], created_at=row["created_at"],
            files=json.loads(row["files"]) if row["files"] else None,
            trained_on=None if row["trained_on"] is None else tuple(json.loads(row["trained_on"])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "project": self.project,
            "base": self.base,
            "parent": self.parent,
            "generation": self.generation,
            "job": self.job_id,
            "examples": self.examples,
            "metrics": dict(self.metrics),
            "summary": self.summary,
            "created_at": iso(self.created_at),
            "trained_on_tasks": None if self.trained_on is None else len(self.trained_on),  # a count: kept small
        }


# The environment's pin (:pin) wins. The store's pin counts only if it names the base or a version of the
# same base model (a pin left over from another base model would load weights that do not fit); otherwise
# the newest promoted version. The second column says whether that version has a quarantine row.
_CURRENT = """
    WITH chosen (version) AS (SELECT COALESCE(
        :pin,
        (SELECT p.pin FROM projects p WHERE p.project = :project AND (p.pin = :base OR EXISTS (
            SELECT 1 FROM versions v WHERE v.project = :project AND v.version = p.pin AND v.base = :base))),
        (SELECT version FROM versions WHERE project = :project AND base = :base ORDER BY seqno DESC LIMIT 1),
        :base))
    SELECT c.version, q.version IS NOT NULL
    FROM chosen c LEFT JOIN quarantine q ON q.project = :project AND q.version = c.version
"""


@dataclass(frozen=True)
class Resolution:
    """The version a project is served, the one it would be without quarantines, and those passed over."""

    version: str
    wanted: str
    skipped: tuple[tuple[str, Quarantined], ...] = ()  # (version, why), from ``wanted`` up its ancestors


class VersionStore:
    def __init__(self, db: Database, model_dir: Path) -> None:
        self.db = db
        self.model_dir = model_dir
        self.quarantine = QuarantineStore(db)

    def project_dir(self, project: str) -> Path:
        return self.model_dir / project

    def path(self, project: str, version: str) -> Path:
        return self.project_dir(project) / version

    def resolve(self, project: str, base: str, pin: str | None = None) -> Resolution:
        """``pin`` (the environment's), else the store's pin, else newest promoted, else ``base``; a quarantined
        version gives way to its nearest servable ancestor.

        One indexed query and one ``stat`` when nothing is quarantined; no cache that could go stale.
        """
        wanted, flagged = self.db.conn.execute(_CURRENT, {"project": project, "base": base, "pin": pin}).fetchone()
        version, skipped = wanted, []
        while version != base:
            why = self.unservable(project, version, recorded=bool(flagged or skipped))
            if why is None:
                break
            skipped.append((version, why))
            record = self.get(project, version)
            version = record.parent if record is not None else base
        return Resolution(version, wanted, tuple(skipped))

    def unservable(self, project: str, version: str, *, recorded: bool = True) -> Quarantined | None:
        """Why the trained ``version`` cannot be served (folder missing, or quarantined); None if it can.

        ``recorded=False`` skips the look-up of a quarantine row (the caller knows there is none).
        """
        folder = self.path(project, version)
        if not folder.is_dir():
            return Quarantined(f"its folder {folder} is missing")
        return self.quarantine.active(project, version, folder) if recorded else None

    def get(self, project: str, version: str) -> VersionRecord | None:
        row = self.db.conn.execute(
            "SELECT * FROM versions WHERE project = ? AND version = ?", (project, version)
        ).fetchone()
        return VersionRecord.from_row(row) if row else None

    def list(self, project: str | None = None, base: str | None = None) -> list[VersionRecord]:
        """Newest first."""
        clauses = [(c, v) for c, v in (("project = ?", project), ("base = ?", base)) if v is not None]
        where = " AND ".join(c for c, _ in clauses) or "1"
        rows = self.db.conn.execute(
            f"SELECT * FROM versions WHERE {where} ORDER BY seqno DESC", [v for _, v in clauses]
        )
        return [VersionRecord.from_row(r) for r in rows]

    def pins(self) -> dict[str, str]:
        rows = self.db.conn.execute("SELECT project, pin FROM projects WHERE pin IS NOT NULL")
        return {r["project"]: r["pin"] for r in rows}

    def set_pin(self, project: str, version: str | None) -> None:
        conn = self.db.conn
        row = conn.execute("SELECT pin FROM projects WHERE project = ?", (project,)).fetchone()
        if row is not None and row[0] == version:
            return  # /setup repeats the pin before every prediction: no write when nothing changes
        with self.db.write() as conn:
            conn.execute("INSERT INTO projects (project) VALUES (?) ON CONFLICT DO NOTHING", (project,))
            conn.execute("UPDATE projects SET pin = ? WHERE project = ?", (version, project))

    def promote(
        self, staging: Path, record: VersionRecord, claim: Callable[[sqlite3.Connection], bool]
    ) -> Path | None:
        """Move ``staging`` to the version's folder and insert its row, in one transaction.

        ``claim`` runs first in that transaction (it closes the job record); when it returns False
        (another process finished the job already) nothing is touched and None is returned.
        """
        final = self.path(record.project, record.version)
        renamed = False
        try:
            with self.db.write() as conn:
                if not claim(conn):
                    return None
                if self.get(record.project, record.version) is not None:
                    raise LabelzooError(f"project {record.project} has a version {record.version} already")
                if final.exists():  # left by a crash between rename and commit: no row, not visible
                    shutil.rmtree(final)
                os.rename(staging, final)
                renamed = True
                conn.execute(
                    "INSERT INTO versions (project, version, base, parent, generation, job_id, examples, "
                    "metrics, summary, created_at, files, trained_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.project, record.version, record.base, record.parent, record.generation,
                     record.job_id, record.examples, json.dumps(dict(record.metrics)), record.summary,
                     time.time(), None if record.files is None else json.dumps(dict(record.files)),
                     None if record.trained_on is None else json.dumps(sorted(record.trained_on))),
                )
        except BaseException:
            if renamed and final.exists() and not staging.exists():
                os.rename(final, staging)
            raise
        fsync_dir(final.parent)
        return final

    def remove_orphans(self, project: str) -> list[Path]:
        """Delete version-named folders that have no row (a crash between rename and commit)."""
        folder = self.project_dir(project)
        removed = []
        with self.db.write() as conn:
            known = {r[0] for r in conn.execute("SELECT version FROM versions WHERE project = ?", (project,))}
            for child in folder.iterdir() if folder.is_dir() else ():
                if child.is_dir() and child.name not in known and is_version_folder(project, child.name):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child)
        return removed


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk, so a rename never exposes unwritten data."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and Windows) cannot fsync a directory
    finally:
        os.close(fd)
