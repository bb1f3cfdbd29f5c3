"""The schema of ``MODEL_DIR/labelzoo.sqlite3``: every table of every service, as ordered migrations.

One file holds all state so that one connection per thread serves a request (project parameters, the
current version and bulk claims in one place) and one backup copies everything. Migrations only ever
append: ``PRAGMA user_version`` counts those a file has had, so a file written by an older labelzoo is
brought up to date when it is opened. Files of labelzoo 0.1 (``projects.sqlite3`` and ``bulk.sqlite3`` beside
this one) are folded in by :mod:`labelzoo.store.legacy`.
"""

from __future__ import annotations

#: training: annotations, model versions and training jobs (labelzoo 0.1's ``labelzoo.sqlite3``)
TRAINING = """
    CREATE TABLE projects (
        project TEXT PRIMARY KEY,
        label_config TEXT,
        pin TEXT,                                 -- from /setup extra_params.model_version
        changes INTEGER NOT NULL DEFAULT 0,       -- new/changed annotations ever recorded
        trained_mark INTEGER NOT NULL DEFAULT 0   -- `changes` when the last job started
    );
    CREATE TABLE annotations (
        project TEXT NOT NULL,
        id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        task_data TEXT NOT NULL,
        result TEXT NOT NULL,
        was_cancelled INTEGER NOT NULL,
        ground_truth INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX annotations_task ON annotations (project, task_id);
    CREATE TABLE versions (
        seqno INTEGER PRIMARY KEY AUTOINCREMENT,  -- promotion order, across processes
        project TEXT NOT NULL,
        version TEXT NOT NULL,
        base TEXT NOT NULL,
        parent TEXT NOT NULL,
        generation INTEGER NOT NULL,
        job_id TEXT,
        examples INTEGER NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        summary TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (project, version)
    );
    CREATE INDEX versions_latest ON versions (project, base, seqno);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        executor TEXT NOT NULL,                   -- "local" (child of a server process) or "rq"
        progress REAL NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        metrics TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        parent_version TEXT,
        candidate TEXT,                           -- the version name this job's weights would get
        generation INTEGER,
        examples INTEGER,
        dispatched_at REAL,                       -- when an "rq" job was handed to Redis
        version TEXT,                             -- set once promoted
        error TEXT,
        log_path TEXT NOT NULL,
        runner TEXT,                              -- process token of the supervising process
        cancel_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_project ON jobs (project, created_at);
    CREATE INDEX jobs_status ON jobs (status, created_at);
    CREATE UNIQUE INDEX jobs_one_queued ON jobs (project) WHERE status = 'queued';
    CREATE UNIQUE INDEX jobs_one_running ON jobs (project) WHERE status = 'running';
    """

#: each project's ``extra_params`` from ``/setup`` (labelzoo 0.1's ``projects.sqlite3``)
PROJECT_PARAMS = "CREATE TABLE project_params (project TEXT PRIMARY KEY, params TEXT NOT NULL)"

#: bulk jobs, their chunks and task claims (labelzoo 0.1's ``bulk.sqlite3``, tables renamed ``bulk_*``)
BULK = """
    CREATE TABLE bulk_jobs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        kind TEXT NOT NULL,                       -- "project" (every task lacking the version) or "tasks" (a hand-off)
        executor TEXT NOT NULL,
        status TEXT NOT NULL,
        model_version TEXT NOT NULL,
        label_config TEXT,                        -- read from Label Studio when planning, or given
        planned INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,         -- tasks claimed when planned
        project_tasks INTEGER,                    -- tasks in the project when planned
        message TEXT NOT NULL DEFAULT '',
        error TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        runner TEXT,                              -- process token of the process running it
        cancel_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX bulk_jobs_project ON bulk_jobs (project, created_at);
    CREATE TABLE bulk_chunks (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        task_ids TEXT NOT NULL,                   -- JSON list
        status TEXT NOT NULL DEFAULT 'pending',   -- pending, done, failed
        posted INTEGER NOT NULL DEFAULT 0,        -- predictions stored in Label Studio
        skipped INTEGER NOT NULL DEFAULT 0,       -- already predicted with the version, or deleted
        failed INTEGER NOT NULL DEFAULT 0,        -- the backend failed on the task, or LS refused it
        error TEXT,
        worker TEXT,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE bulk_claims (
        project TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        PRIMARY KEY (project, task_id)
    );
    CREATE INDEX bulk_claims_job ON bulk_claims (job_id);
    """

#: what a version's folder held when it was promoted, and the versions whose files cannot load
#: (see :mod:`labelzoo.training.quarantine`)
QUARANTINE = """
    ALTER TABLE versions ADD COLUMN files TEXT;   -- JSON {path: [size, sha256]}, NULL for versions promoted before
    CREATE TABLE quarantine (
        project TEXT NOT NULL,
        version TEXT NOT NULL,
        reason TEXT NOT NULL,                     -- the load error and what is wrong with the files
        signature TEXT NOT NULL,                  -- the files' names, sizes and times then: a change lifts it
        created_at REAL NOT NULL,
        PRIMARY KEY (project, version)
    )
    """

#: the tasks a batch /predict answers with a version: a bulk job of that version then leaves them out, so that
#: Label Studio never stores two predictions of one version for a task (see ``BulkStore.reserve``)
PREDICT_RESERVATIONS = """
    CREATE TABLE bulk_reserved (
        project TEXT NOT NULL,
        version TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        reserved_at REAL NOT NULL,
        PRIMARY KEY (project, version, task_id)
    )
    """

#: which tasks each version learnt from (so auto-labelling measures precision on the others), and the
#: annotations auto-labelling jobs posted (see :mod:`labelzoo.store.autolabels`)
AUTO_LABELS = """
    ALTER TABLE versions ADD COLUMN trained_on TEXT;  -- JSON list of task ids, NULL for versions promoted before
    ALTER TABLE bulk_jobs ADD COLUMN options TEXT;     -- JSON: an auto-label job's threshold, target, dry run
    ALTER TABLE bulk_jobs ADD COLUMN report TEXT;      -- JSON: an auto-label job's estimate and its undo
    CREATE TABLE bulk_autolabels (
        job_id TEXT NOT NULL,
        project TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        unique_id TEXT NOT NULL UNIQUE,           -- the annotation's unique_id in Label Studio, set by the job
        annotation_id INTEGER,                    -- NULL until Label Studio has answered the POST
        result_hash TEXT NOT NULL,                -- of the result posted: a changed result is a person's
        score REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'posting',    -- posting | posted | undone | kept (changed by a person) | gone
        created_at REAL NOT NULL,
        PRIMARY KEY (job_id, task_id)
    );
    CREATE INDEX bulk_autolabels_task ON bulk_autolabels (project, task_id);
    """

#: task-score maps fitted on a project's human annotations (see :mod:`labelzoo.store.score_maps`)
SCORE_MAPS = """
    CREATE TABLE score_maps (
        project TEXT NOT NULL,
        version TEXT NOT NULL,
        map TEXT NOT NULL,          -- JSON: labelzoo.scoremap.ScoreMap
        fitted_at REAL NOT NULL,
        PRIMARY KEY (project, version)
    );
    """

MIGRATIONS: tuple[str, ...] = (TRAINING, PROJECT_PARAMS, BULK, QUARANTINE, PREDICT_RESERVATIONS, AUTO_LABELS,
                               SCORE_MAPS)
