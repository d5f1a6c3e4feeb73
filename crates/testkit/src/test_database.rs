//! [`TestDatabase`]: one fresh database per test, dropped with the value.

use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use crate::admin_connection::AdminConnection;
use crate::database_url::with_database;
use crate::server::server_url;
use crate::template_database;

/// How long dropping a database may hold up the test that drops it.
const DROP_PATIENCE: Duration = Duration::from_secs(15);

/// A fresh database for one test, dropped (`WITH (FORCE)`) when the value is
/// dropped.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use tasker_testkit::TestDatabase;
///
/// let db = TestDatabase::create_from("example:v1", |url| async move {
///     // e.g. run the migrations against `url`, then close the pool.
///     # let _ = url;
///     Ok(())
/// })
/// .await?;
/// // connect to db.url ...
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of this database.
    pub url: String,
    /// Its name: `tasker_test_<16 random hex digits>`.
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    /// An empty fresh database on the server of [`server_url`].
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let admin_url = server_url().await?;
        let mut admin = AdminConnection::connect(&admin_url).await?;
        let name = fresh_name();
        let created = admin.database_create(&name, None).await;
        admin.close().await;
        created?;
        Ok(TestDatabase::new(admin_url, name))
    }

    /// A fresh database cloned (`CREATE DATABASE .. TEMPLATE ..`) from a
    /// template database that is built once per `key` (across processes and
    /// test runs) by running `setup(url)` against it.
    ///
    /// The key should change whenever the setup changes (e.g. include a
    /// migrations fingerprint). `setup` must close all its connections before
    /// returning; any left open are ended. When `setup` fails, its error is
    /// returned and the next call with the key runs it again.
    pub async fn create_from<F, Fut>(key: &str, setup: F) -> anyhow::Result<TestDatabase>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let admin_url = server_url().await?;
        let mut admin = AdminConnection::connect(&admin_url).await?;
        let name = fresh_name();
        let created = async {
            let template =
                template_database::ensure_template(&mut admin, &admin_url, key, setup).await?;
            admin.database_create(&name, Some(&template)).await
        }
        .await;
        admin.close().await;
        created?;
        Ok(TestDatabase::new(admin_url, name))
    }

    /// Drops the template database of `key`, so that the next
    /// [`create_from`](Self::create_from) with it runs its setup again.
    /// Databases already cloned from it are not affected.
    pub async fn drop_template(key: &str) -> anyhow::Result<()> {
        let admin_url = server_url().await?;
        let mut admin = AdminConnection::connect(&admin_url).await?;
        let dropped = template_database::drop_template(&mut admin, key).await;
        admin.close().await;
        dropped
    }

    fn new(admin_url: String, name: String) -> TestDatabase {
        TestDatabase {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the database on a thread of its own with its own runtime: this
    /// may run inside a test's runtime, which must not be blocked on itself.
    /// Waits at most [`DROP_PATIENCE`]; failures are reported, never panics.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("tasker-testkit-drop".into())
            .spawn(move || {
                if let Err(error) = drop_database(&admin_url, &name) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tasker-testkit: could not drop database {name}: {error:#}"
                    );
                }
                let _ = done.send(());
            });
        if spawned.is_ok() {
            let _ = finished.recv_timeout(DROP_PATIENCE);
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dropping = async {
            let mut admin = AdminConnection::connect(admin_url).await?;
            let dropped = admin.database_drop(name).await;
            admin.close().await;
            dropped
        };
        tokio::time::timeout(DROP_PATIENCE, dropping)
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {DROP_PATIENCE:?}"))?
    })
}

fn fresh_name() -> String {
    format!("tasker_test_{:016x}", rand::random::<u64>())
}
