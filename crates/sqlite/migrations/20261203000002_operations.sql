-- Tasker's operational records on SQLite: workers, nodes, leadership
-- leases, schedules and their fires, and what the maintenance sweeps last
-- did. They mirror the PostgreSQL tables of the same names in SQLite's
-- types: uuids TEXT (hyphenated lowercase), times INTEGER microseconds
-- since the Unix epoch, JSON TEXT, text arrays TEXT holding a JSON array,
-- booleans INTEGER 0 or 1. Times are always written by the store (its
-- clock is the process's), so no column takes a time by default.

-- Workers that registered: what they run and when they were last heard
-- from (register, poll or heartbeat).
CREATE TABLE workers (
    id             TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    namespaces     TEXT NOT NULL CHECK (json_type(namespaces) = 'array'),
    handlers       TEXT NOT NULL CHECK (json_type(handlers) = 'array'),
    concurrency    INTEGER NOT NULL CHECK (concurrency > 0),
    version        TEXT,
    node_id        TEXT,
    registered_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL
);

-- The nodes: each node writes its row at start, refreshes
-- last_heartbeat_at on an interval and deletes the row when it stops
-- gracefully. On SQLite there is one node, but the cluster view reads the
-- same records as on PostgreSQL.
CREATE TABLE nodes (
    id                 TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    version            TEXT NOT NULL,
    address            TEXT NOT NULL,
    pid                INTEGER NOT NULL CHECK (pid >= 0),
    started_at         INTEGER NOT NULL,
    last_heartbeat_at  INTEGER NOT NULL
);

-- Leases of leader-only duty sets, one row per set (e.g. 'maintenance').
-- A node holds a set while expires_at is in the future; term grows with
-- every new tenure (another holder, or the same holder again after its
-- lease ran out), so a term names one tenure.
CREATE TABLE leadership (
    name         TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    holder       TEXT NOT NULL CHECK (length(holder) BETWEEN 1 AND 128),
    term         INTEGER NOT NULL CHECK (term > 0),
    acquired_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    CHECK (expires_at >= acquired_at)
);

-- Schedules: each starts tasks of a template with a fixed context, on a
-- cron expression read in a time zone or at a fixed interval. The leader
-- fires a schedule when next_run_at (next_fire_at plus its jitter) has
-- come; a paused schedule has neither.
CREATE TABLE schedules (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 512),
    namespace         TEXT NOT NULL REFERENCES namespaces (name),
    template          TEXT NOT NULL,
    version           TEXT,
    context           TEXT NOT NULL CHECK (json_type(context) = 'object'),
    cron              TEXT,
    time_zone         TEXT,
    interval_text     TEXT,
    jitter            TEXT,
    overlap           TEXT NOT NULL CHECK (overlap IN ('skip', 'allow', 'buffer_one', 'cancel_previous')),
    catch_up          TEXT NOT NULL CHECK (catch_up IN ('run_once', 'skip')),
    paused            INTEGER NOT NULL CHECK (paused IN (0, 1)),
    anchor_at         INTEGER NOT NULL,
    next_fire_at      INTEGER,
    next_run_at       INTEGER,
    last_task_id      TEXT,
    buffered_fire_at  INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((cron IS NULL) <> (interval_text IS NULL)),
    CHECK ((next_fire_at IS NULL) = (next_run_at IS NULL))
);

-- The scheduler's question: which schedules are due, and when is the next.
CREATE INDEX schedules_next_run ON schedules (next_run_at) WHERE NOT paused;
CREATE INDEX schedules_buffered ON schedules (id) WHERE buffered_fire_at IS NOT NULL;

-- Every fire of a schedule, at most one per fire time: the fire row and
-- the task it starts commit in one transaction, so a time that has a row
-- never runs again.
CREATE TABLE schedule_fires (
    schedule_id  TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_time    INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('scheduled', 'manual', 'backfill')),
    outcome      TEXT NOT NULL CHECK (outcome IN ('started', 'skipped_overlap', 'buffered', 'missed', 'failed')),
    task_id      TEXT,
    message      TEXT,
    node_id      TEXT,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, fire_time),
    CHECK ((outcome = 'started') = (task_id IS NOT NULL))
);

-- What the leader's sweeps last did, one row per sweep: when it last ran,
-- what it found in that run (a JSON object of counts), and what it found
-- in total since the row was created.
CREATE TABLE maintenance_sweeps (
    name         TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    last_run_at  INTEGER NOT NULL,
    node_id      TEXT NOT NULL,
    last_counts  TEXT NOT NULL DEFAULT '{}' CHECK (json_type(last_counts) = 'object'),
    totals       TEXT NOT NULL DEFAULT '{}' CHECK (json_type(totals) = 'object')
);
