-- Time and housekeeping on the leader.
--
-- A task may have a deadline (its template's `deadline`, or its own, from
-- its creation): past it, the task fails with `deadline_exceeded`. Not
-- indexed: tasks is a hot table whose updates stay HOT; the deadline sweep
-- reads the running tasks that have one.
ALTER TABLE tasker.tasks ADD COLUMN deadline_at timestamptz;

-- What the leader's sweeps last did, one row per sweep, so that any node
-- can show it in the cluster view: when it last ran, what it found in that
-- run, and what it found in total since the row was created.
CREATE TABLE tasker.maintenance_sweeps (
    name         text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    last_run_at  timestamptz NOT NULL,
    node_id      text NOT NULL,
    last_counts  jsonb NOT NULL DEFAULT '{}',
    totals       jsonb NOT NULL DEFAULT '{}'
);
