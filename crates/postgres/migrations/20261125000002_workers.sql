-- Workers that registered with any node: what they run and when they were
-- last heard from (register, poll or heartbeat).
CREATE TABLE tasker.workers (
    id             text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    namespaces     text[] NOT NULL,
    handlers       text[] NOT NULL,
    concurrency    integer NOT NULL CHECK (concurrency > 0),
    version        text,
    node_id        text,
    registered_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen_at   timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 50);
