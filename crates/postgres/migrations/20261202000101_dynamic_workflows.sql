-- Dynamic workflows. Decision steps and convergence: a step may be `skipped` (its branch was
-- not chosen, or the parents it converges on were skipped), and a finished
-- decision step records the branches it chose, so that steps converging on
-- it later can tell a chosen edge from an unchosen one.

ALTER TABLE tasker.steps DROP CONSTRAINT steps_state_check;
ALTER TABLE tasker.steps ADD CONSTRAINT steps_state_check CHECK (state IN
    ('pending', 'ready', 'running', 'retrying', 'complete', 'failed', 'cancelled', 'resolved', 'skipped'));

-- NULL except on a complete or resolved decision step (NULL there too when a
-- decision was resolved without a result: every branch runs).
ALTER TABLE tasker.steps ADD COLUMN branches text[];

-- Fan-out: a fan-out step's own row records how many instances it got;
-- each instance is a step row of its own after the template's steps, naming
-- the template step it runs (its position) and carrying its items.
ALTER TABLE tasker.steps ALTER COLUMN position TYPE integer;
ALTER TABLE tasker.steps ADD COLUMN fan_out_count integer CHECK (fan_out_count >= 0);
ALTER TABLE tasker.steps ADD COLUMN fan_out_of integer CHECK (fan_out_of >= 0);
ALTER TABLE tasker.steps ADD COLUMN fan_out_number integer CHECK (fan_out_number >= 0);
ALTER TABLE tasker.steps ADD COLUMN items jsonb;
ALTER TABLE tasker.steps ADD CONSTRAINT steps_instance_check
    CHECK ((fan_out_of IS NULL) = (fan_out_number IS NULL)
       AND (fan_out_of IS NULL) = (items IS NULL)
       AND (fan_out_of IS NULL OR fan_out_of < position));
