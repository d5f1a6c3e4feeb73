-- The nodes of a cluster: each node writes its row at start, refreshes
-- last_heartbeat_at on an interval and deletes the row when it stops
-- gracefully. A node whose heartbeat is older than the node timeout is no
-- longer listed; rows of nodes gone for long are deleted by the leader.
CREATE TABLE tasker.nodes (
    id                 text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    version            text NOT NULL,
    address            text NOT NULL,
    pid                integer NOT NULL CHECK (pid >= 0),
    started_at         timestamptz NOT NULL,
    last_heartbeat_at  timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 50);

-- Leases of leader-only duty sets, one row per set (e.g. 'maintenance').
-- A node holds a set while expires_at is in the future by the database
-- clock; term grows with every new tenure (another holder, or the same
-- holder again after its lease ran out), so a term names one tenure.
CREATE TABLE tasker.leadership (
    name         text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    holder       text NOT NULL CHECK (length(holder) BETWEEN 1 AND 128),
    term         bigint NOT NULL CHECK (term > 0),
    acquired_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CHECK (expires_at >= acquired_at)
) WITH (fillfactor = 50);
