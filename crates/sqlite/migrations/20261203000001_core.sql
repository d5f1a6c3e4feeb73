-- Tasker's core schema on SQLite: the PostgreSQL schema (all of its
-- migrations up to the dynamic workflows) in SQLite's types, without the
-- `tasker.` schema. Uuids are TEXT (hyphenated lowercase), times INTEGER
-- microseconds since the Unix epoch, JSON is TEXT, text arrays are TEXT
-- holding a JSON array. Times are always written by the store (its clock is
-- the process's), so no column takes a time by default. State invariants
-- are CHECK constraints, as on PostgreSQL, so that a bug in the engine
-- cannot write an impossible row.

CREATE TABLE namespaces (
    name        TEXT PRIMARY KEY CHECK (
                    length(name) BETWEEN 1 AND 40
                    AND name GLOB '[a-z]*'
                    AND name NOT GLOB '*[^a-z0-9_]*'),
    -- The queue name its messages carry in queue_messages.queue.
    queue       TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE templates (
    id            TEXT PRIMARY KEY,
    namespace     TEXT NOT NULL REFERENCES namespaces (name),
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    definition    TEXT NOT NULL CHECK (json_valid(definition)),
    created_at    INTEGER NOT NULL,
    UNIQUE (namespace, name, version)
);

CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    namespace        TEXT NOT NULL REFERENCES namespaces (name),
    template_id      TEXT NOT NULL REFERENCES templates (id),
    state            TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed', 'cancelled')),
    context          TEXT NOT NULL CHECK (json_valid(context)),
    idempotency_key  TEXT,
    tags             TEXT NOT NULL DEFAULT '[]' CHECK (json_type(tags) = 'array'),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    -- Past it the task fails with `deadline_exceeded` (its template's
    -- `deadline`, or its own, from its creation).
    deadline_at      INTEGER,
    CHECK ((state = 'running') = (finished_at IS NULL))
);

-- An idempotency key names one task of its namespace (retention releases
-- the key of an old finished task by setting it to NULL).
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_namespace_id ON tasks (namespace, id DESC);
CREATE INDEX tasks_template_id ON tasks (template_id, id DESC);

CREATE TABLE steps (
    id                TEXT PRIMARY KEY,
    task_id           TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL CHECK (position >= 0),
    name              TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN
                        ('pending', 'ready', 'running', 'retrying', 'complete', 'failed',
                         'cancelled', 'resolved', 'skipped')),
    attempt           INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    lease_token       TEXT,
    lease_expires_at  INTEGER,
    -- The step's message in queue_messages while it is in flight.
    msg_id            INTEGER,
    retry_at          INTEGER,
    worker_id         TEXT,
    result            TEXT,
    error             TEXT,
    started_at        INTEGER,
    finished_at       INTEGER,
    -- NULL except on a complete or resolved decision step: the branches it
    -- chose (a JSON array of step names; NULL there too when a decision was
    -- resolved without a result: every branch runs).
    branches          TEXT CHECK (branches IS NULL OR json_type(branches) = 'array'),
    -- A fan-out step's own row: how many instances it got.
    fan_out_count     INTEGER CHECK (fan_out_count >= 0),
    -- A fan-out instance: the template step it runs (its position), its
    -- number among the instances and its items (JSON).
    fan_out_of        INTEGER CHECK (fan_out_of >= 0),
    fan_out_number    INTEGER CHECK (fan_out_number >= 0),
    items             TEXT,
    UNIQUE (task_id, position),
    -- Invariant 1: a step has a queue message exactly while it is in flight.
    CHECK ((state IN ('ready', 'running', 'retrying')) = (msg_id IS NOT NULL)),
    -- A running step always has a lease.
    CHECK (state <> 'running' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL AND attempt > 0)),
    CHECK (state <> 'retrying' OR retry_at IS NOT NULL),
    -- An instance names an earlier template step and carries its items.
    CHECK ((fan_out_of IS NULL) = (fan_out_number IS NULL)
       AND (fan_out_of IS NULL) = (items IS NULL)
       AND (fan_out_of IS NULL OR fan_out_of < position))
);

-- Append-only audit history of every task and step state change.
CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    step_id     TEXT,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    attempt     INTEGER,
    worker_id   TEXT,
    node_id     TEXT,
    reason      TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX transitions_task ON transitions (task_id, id);

CREATE TRIGGER transitions_append_only BEFORE UPDATE ON transitions
BEGIN
    SELECT RAISE(ABORT, 'transitions is append-only');
END;

-- Every namespace's queue in one table. A message is visible once `vt` (a
-- time in microseconds) has come; reading it hides it until the lease's
-- end and counts the read. AUTOINCREMENT: an id is never used twice, so a
-- step's msg_id cannot come to name another step's message.
CREATE TABLE queue_messages (
    msg_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT NOT NULL,
    vt           INTEGER NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    read_ct      INTEGER NOT NULL DEFAULT 0 CHECK (read_ct >= 0),
    -- {task_id, step_id, handler}
    message      TEXT NOT NULL CHECK (json_valid(message))
);
CREATE INDEX queue_messages_visible ON queue_messages (queue, vt);
