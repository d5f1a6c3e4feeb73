-- Schedules: each starts tasks of a template with a fixed context, on a
-- cron expression read in a time zone or at a fixed interval. The leader
-- fires a schedule when next_run_at (next_fire_at plus its jitter) has
-- come; a paused schedule has neither.
CREATE TABLE tasker.schedules (
    id                uuid PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 512),
    namespace         text NOT NULL REFERENCES tasker.namespaces (name),
    template          text NOT NULL,
    version           text,
    context           jsonb NOT NULL CHECK (jsonb_typeof(context) = 'object'),
    cron              text,
    time_zone         text,
    interval_text     text,
    jitter            text,
    overlap           text NOT NULL CHECK (overlap IN ('skip', 'allow', 'buffer_one', 'cancel_previous')),
    catch_up          text NOT NULL CHECK (catch_up IN ('run_once', 'skip')),
    paused            boolean NOT NULL,
    anchor_at         timestamptz NOT NULL,
    next_fire_at      timestamptz,
    next_run_at       timestamptz,
    last_task_id      uuid,
    buffered_fire_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((cron IS NULL) <> (interval_text IS NULL)),
    CHECK ((next_fire_at IS NULL) = (next_run_at IS NULL))
);

-- The scheduler's question: which schedules are due, and when is the next.
CREATE INDEX schedules_next_run ON tasker.schedules (next_run_at) WHERE NOT paused;
CREATE INDEX schedules_buffered ON tasker.schedules (id) WHERE buffered_fire_at IS NOT NULL;

-- Every fire of a schedule, at most one per fire time: the fire row and
-- the task it starts commit in one transaction, so a time that has a row
-- never runs again, whichever node (or request) tries.
CREATE TABLE tasker.schedule_fires (
    schedule_id  uuid NOT NULL REFERENCES tasker.schedules (id) ON DELETE CASCADE,
    fire_time    timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('scheduled', 'manual', 'backfill')),
    outcome      text NOT NULL CHECK (outcome IN ('started', 'skipped_overlap', 'buffered', 'missed', 'failed')),
    task_id      uuid,
    message      text,
    node_id      text,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (schedule_id, fire_time),
    CHECK ((outcome = 'started') = (task_id IS NOT NULL))
);
