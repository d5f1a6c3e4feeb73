-- Queue messages name the handler of their step, so that a claim reads only
-- the messages of the handlers its worker runs. Messages sent before they
-- did get their handler here (a claim treats one without it as for anyone).
DO $$
DECLARE
    queue_name text;
BEGIN
    FOR queue_name IN SELECT queue FROM tasker.namespaces LOOP
        EXECUTE format(
            'UPDATE pgmq.%I m '
            'SET message = m.message || jsonb_build_object(''handler'', tp.definition->''steps''->s.position->>''handler'') '
            'FROM tasker.steps s '
            'JOIN tasker.tasks t ON t.id = s.task_id '
            'JOIN tasker.templates tp ON tp.id = t.template_id '
            'WHERE s.id = (m.message->>''step_id'')::uuid AND NOT m.message ? ''handler''',
            'q_' || lower(queue_name));
    END LOOP;
END
$$;
