-- The foreign keys of the rows every task creates are checked by the code
-- that writes them, so their triggers only cost time:
--
-- * tasks.namespace and tasks.template_id: a task is inserted with the
--   template that creation just resolved (and that template's namespace),
--   and neither templates nor namespaces are ever deleted. The key's check
--   ran a lookup per task row that also locked the template's and the
--   namespace's row (FOR KEY SHARE): every concurrent creation of the same
--   template queued on those two rows, wrote a lock into them and shared it
--   through a multixact.
-- * steps.task_id: a step row is inserted in the transaction that inserts
--   its task, or (a fan-out instance) in one that holds its task locked.
--   Retention deletes a task's steps in the statement that deletes the
--   task (crates/postgres/src/retention.rs), so the cascade is not needed.
--
-- Measured: the inserts of a batch of 2,000 one-step tasks took about half
-- the time without the three keys, and the server's task and step inserts
-- 0.70x (docs/benchmarks.md). Schedules keep theirs: they are written by
-- operators, not per task.
ALTER TABLE tasker.tasks DROP CONSTRAINT tasks_namespace_fkey;
ALTER TABLE tasker.tasks DROP CONSTRAINT tasks_template_id_fkey;
ALTER TABLE tasker.steps DROP CONSTRAINT steps_task_id_fkey;
