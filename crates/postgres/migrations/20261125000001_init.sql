-- Tasker schema. Queue messages live in PGMQ (schema pgmq, one queue per
-- namespace); everything else lives here. State invariants are CHECK
-- constraints so that a bug in the engine cannot write an impossible row.

CREATE SCHEMA IF NOT EXISTS tasker;

CREATE TABLE tasker.namespaces (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    queue       text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE tasker.templates (
    id            uuid PRIMARY KEY,
    namespace     text NOT NULL REFERENCES tasker.namespaces (name),
    name          text NOT NULL,
    version       text NOT NULL,
    content_hash  text NOT NULL,
    definition    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (namespace, name, version)
);

-- Hot table: updated on every finalization. fillfactor leaves room for HOT
-- updates; no index covers a column that changes (state, finished_at).
CREATE TABLE tasker.tasks (
    id               uuid PRIMARY KEY,
    namespace        text NOT NULL REFERENCES tasker.namespaces (name),
    template_id      uuid NOT NULL REFERENCES tasker.templates (id),
    state            text NOT NULL CHECK (state IN ('running', 'complete', 'failed', 'cancelled')),
    context          jsonb NOT NULL,
    idempotency_key  text,
    tags             text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    CHECK ((state = 'running') = (finished_at IS NULL))
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX tasks_idempotency_key ON tasker.tasks (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_namespace_id ON tasker.tasks (namespace, id DESC);
CREATE INDEX tasks_template_id ON tasker.tasks (template_id, id DESC);

-- Hottest table: every claim, heartbeat and result updates a row in place.
CREATE TABLE tasker.steps (
    id                uuid PRIMARY KEY,
    task_id           uuid NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    position          smallint NOT NULL CHECK (position >= 0),
    name              text NOT NULL,
    state             text NOT NULL CHECK (state IN
                        ('pending', 'ready', 'running', 'retrying', 'complete', 'failed', 'cancelled', 'resolved')),
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    lease_token       uuid,
    lease_expires_at  timestamptz,
    msg_id            bigint,
    retry_at          timestamptz,
    worker_id         text,
    result            jsonb,
    error             jsonb,
    started_at        timestamptz,
    finished_at       timestamptz,
    UNIQUE (task_id, position),
    -- Invariant 1: a step has a queue message exactly while it is in flight.
    CHECK ((state IN ('ready', 'running', 'retrying')) = (msg_id IS NOT NULL)),
    -- A running step always has a lease.
    CHECK (state <> 'running' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL AND attempt > 0)),
    CHECK (state <> 'retrying' OR retry_at IS NOT NULL)
) WITH (fillfactor = 70);

-- Append-only audit history of every task and step state change.
CREATE TABLE tasker.transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    step_id     uuid,
    from_state  text,
    to_state    text NOT NULL,
    attempt     integer,
    worker_id   text,
    node_id     text,
    reason      text,
    at          timestamptz NOT NULL
);
CREATE INDEX transitions_task ON tasker.transitions (task_id, id);

CREATE FUNCTION tasker.transitions_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tasker.transitions is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER transitions_append_only BEFORE UPDATE ON tasker.transitions
    FOR EACH ROW EXECUTE FUNCTION tasker.transitions_are_append_only();
