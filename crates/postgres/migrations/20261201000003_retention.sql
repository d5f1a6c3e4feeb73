-- Autovacuum settings that suit a queue. The defaults vacuum a table once a
-- fifth of it is dead, which on a hot table of a few thousand live rows
-- lets dead rows pile up to many times the live ones between runs, and
-- then throttles the run itself. Here: vacuum after a fixed number of dead
-- rows (scale factor 0 or small), without the cost delay on the small,
-- hottest tables, and keep free room in each page (fillfactor) so that
-- updates stay HOT. docs/operations.md says what to watch.

-- Tasks: updated once at finalization, deleted by retention.
ALTER TABLE tasker.tasks SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 1
);

-- Steps: every claim, heartbeat and result updates a row in place.
ALTER TABLE tasker.steps SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 1
);

-- Transitions: append-only, deleted in bulk by retention; vacuumed after
-- inserts too, so that index-only scans of the history see all-visible pages.
ALTER TABLE tasker.transitions SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);

-- Workers and nodes: a handful of rows rewritten all the time.
ALTER TABLE tasker.workers SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE tasker.nodes SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE tasker.leadership SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 100,
    autovacuum_vacuum_cost_delay = 0
);

-- A namespace's PGMQ queue table: few live rows (the ready and leased
-- messages), each read (visibility moved) and deleted once. Vacuumed after
-- a fixed number of dead rows, unthrottled; room in each page for the
-- in-place update of a read. Queue tables are created with their
-- namespace at run time, so the store calls this for each new one; here it
-- tunes the queues that already exist.
CREATE FUNCTION tasker.queue_table_tune(queue text) RETURNS void AS $$
BEGIN
    EXECUTE format(
        'ALTER TABLE pgmq.%I SET ('
        'fillfactor = 70, '
        'autovacuum_vacuum_scale_factor = 0, '
        'autovacuum_vacuum_threshold = 1000, '
        'autovacuum_vacuum_insert_scale_factor = 0, '
        'autovacuum_vacuum_insert_threshold = 1000, '
        'autovacuum_analyze_scale_factor = 0, '
        'autovacuum_analyze_threshold = 1000, '
        'autovacuum_vacuum_cost_delay = 0)',
        'q_' || lower(queue));
END;
$$ LANGUAGE plpgsql;

DO $$
DECLARE
    queue_name text;
BEGIN
    FOR queue_name IN SELECT queue FROM tasker.namespaces LOOP
        PERFORM tasker.queue_table_tune(queue_name);
    END LOOP;
END
$$;
