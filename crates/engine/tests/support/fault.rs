//! Faults injected into the database behind the store, per backend: a
//! trigger that refuses an insert makes a write fail in the middle of a
//! transaction, so a test can show that nothing of that transaction
//! remains. One fault at a time.

use super::database::Database;

/// Which inserts fail.
#[derive(Debug, Clone, Copy)]
pub enum Fault<'a> {
    /// Every message sent to this namespace's queue.
    MessageSends(&'a str),
    /// Every history (transition) row.
    Transitions,
    /// History rows of tasks whose context holds this string value under
    /// this key.
    TransitionsOfTasksWith(&'a str, &'a str),
}

const TRIGGER: &str = "tasker_test_fault";

impl Database {
    /// From now on, the inserts `fault` names fail.
    pub async fn fault_inject(&self, fault: Fault<'_>) {
        match self {
            Database::Postgres(pool) => {
                // One function for every fault: with arguments (key, value)
                // it refuses only rows of tasks whose context matches.
                sqlx::raw_sql(
                    "CREATE OR REPLACE FUNCTION public.tasker_test_fault() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN \
                       IF TG_NARGS = 0 THEN RAISE EXCEPTION 'injected fault'; END IF; \
                       IF (SELECT context->>TG_ARGV[0] FROM tasker.tasks WHERE id = NEW.task_id) \
                          = TG_ARGV[1] THEN RAISE EXCEPTION 'injected fault'; END IF; \
                       RETURN NEW; END $$",
                )
                .execute(pool)
                .await
                .expect("the fault function");
                let (table, arguments) = match fault {
                    Fault::MessageSends(namespace) => {
                        (self.postgres_queue_table_of(namespace).await, String::new())
                    }
                    Fault::Transitions => ("tasker.transitions".to_owned(), String::new()),
                    Fault::TransitionsOfTasksWith(key, value) => (
                        "tasker.transitions".to_owned(),
                        format!("{}, {}", sql_literal(key), sql_literal(value)),
                    ),
                };
                sqlx::raw_sql(&format!(
                    "CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION public.tasker_test_fault({arguments})"
                ))
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("injecting {fault:?}: {e}"));
            }
            Database::Sqlite(pool) => {
                let (table, condition) = match fault {
                    Fault::MessageSends(namespace) => (
                        "queue_messages",
                        format!(
                            "NEW.queue = (SELECT queue FROM namespaces WHERE name = {})",
                            sql_literal(namespace)
                        ),
                    ),
                    Fault::Transitions => ("transitions", "1".to_owned()),
                    Fault::TransitionsOfTasksWith(key, value) => (
                        "transitions",
                        format!(
                            "(SELECT json_extract(context, {}) FROM tasks WHERE id = NEW.task_id) = {}",
                            sql_literal(&format!("$.{key}")),
                            sql_literal(value)
                        ),
                    ),
                };
                sqlx::raw_sql(&format!(
                    "CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {table} WHEN {condition} \
                     BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                ))
                .execute(pool)
                .await
                .unwrap_or_else(|e| panic!("injecting {fault:?}: {e}"));
            }
        }
    }

    /// The inserts `fault` named succeed again.
    pub async fn fault_clear(&self, fault: Fault<'_>) {
        match self {
            Database::Postgres(pool) => {
                let table = match fault {
                    Fault::MessageSends(namespace) => self.postgres_queue_table_of(namespace).await,
                    Fault::Transitions | Fault::TransitionsOfTasksWith(..) => {
                        "tasker.transitions".to_owned()
                    }
                };
                sqlx::raw_sql(&format!("DROP TRIGGER {TRIGGER} ON {table}"))
                    .execute(pool)
                    .await
                    .map(drop)
            }
            Database::Sqlite(pool) => sqlx::raw_sql(&format!("DROP TRIGGER {TRIGGER}"))
                .execute(pool)
                .await
                .map(drop),
        }
        .unwrap_or_else(|e| panic!("clearing {fault:?}: {e}"));
    }
}

/// A string literal, in the syntax both databases share.
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
