-- Transitions are the append-only history of tasks the engine holds
-- locked while it writes them: a transition is only ever inserted in the
-- transaction that locked (or created) its task. The foreign key to
-- tasker.tasks checked that again for every row, with a trigger and a
-- lookup of the task row each time: about four per step run, and a fifth of
-- the plan writer's statement. Retention deletes a task's transitions in
-- the statement that deletes the task (crates/postgres/src/retention.rs),
-- which the key's ON DELETE CASCADE did before; the index on task_id stays
-- for that delete and for reading a task's history.
ALTER TABLE tasker.transitions DROP CONSTRAINT transitions_task_id_fkey;
