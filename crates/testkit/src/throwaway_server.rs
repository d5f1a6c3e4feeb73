//! The throwaway PostgreSQL server that tests use when the environment names
//! none: one per user, started from the installed server binaries, shared by
//! every test process of that user and left running for later runs.
//!
//! ```text
//!  $TMPDIR/tasker-testkit-<uid>/   owned by the server's user, mode 0700
//!    lock            File::lock'ed while a process checks or starts the server
//!    port            the server's TCP port on 127.0.0.1 (a record for people;
//!                    the code reads data/postmaster.pid, which the server owns)
//!    data/           PGDATA: trust auth, superuser `postgres`, UTF8, locale C
//!    server.log      the server's log
//!    .s.PGSQL.<port> the Unix socket (left out when the path would be too long)
//! ```
//!
//! When tests run as root the directory and the server belong to the system
//! user `tasker-test` (created on first use), else `nobody`: PostgreSQL
//! refuses to run as root. Root's directory sits under `$TMPDIR` only when
//! that user can reach it, else under `/tmp`.
//!
//! Failures: the server runs with `fsync=off`, so a machine crash can corrupt
//! the data directory. A data directory that is missing, from another major
//! version, or that will not start is thrown away and made anew: it only ever
//! holds test data. A free port is picked at each start; when another program
//! takes it first, the start is retried on another port.
//!
//! Stopping: `scripts/stop-test-postgres`, or
//! `kill -INT "$(head -1 $TMPDIR/tasker-testkit-<uid>/data/postmaster.pid)"`;
//! delete the directory to start from scratch.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::server_binaries::ServerBinaries;
use crate::server_user::{ServerUser, current_uid};

pub(crate) const NO_SERVER: &str = "no PostgreSQL server for the tests: TASKER_TEST_DATABASE_URL and DATABASE_URL are unset, \
     and no PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or in /usr/lib/postgresql/<version>/bin. \
     Set TASKER_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) or install the PostgreSQL \
     server (Debian/Ubuntu: apt-get install postgresql); scripts/test installs it when missing";

/// Settings for a server whose data is thrown away: durability is traded for speed.
const TUNING: &str = "
# Added by tasker-testkit: a throwaway server for tests. Durability is traded
# for speed; a machine crash may corrupt this directory, which is then re-created.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
";

/// Longest Unix socket path the kernel accepts, less a margin (`sun_path` is 108 bytes).
const MAX_SOCKET_PATH: usize = 100;

/// How long `pg_ctl start -w` may wait for the server to accept connections.
const START_TIMEOUT_SECS: &str = "120";

/// The admin URL of the throwaway server, started (or found running) first.
/// Blocking: it waits on a file lock and runs `initdb` and `pg_ctl`.
pub(crate) fn ensure_running() -> anyhow::Result<String> {
    let Some(binaries) = ServerBinaries::find()? else {
        bail!(NO_SERVER);
    };
    let home = ServerHome::prepare()?;
    let lock = home.lock()?;
    if let Some(port) = home.running_port(&binaries) {
        return Ok(admin_url(port));
    }
    let port = home.start(&binaries)?;
    drop(lock);
    // Straight to stderr, past the test harness's capture of `eprintln!`:
    // the user should see that a server now runs in the background.
    let _ = writeln!(
        std::io::stderr(),
        "tasker-testkit: started a throwaway PostgreSQL {} on 127.0.0.1:{port} (data in {}); it is left running \
         for later test runs, stop it with scripts/stop-test-postgres or: kill -INT \"$(head -1 {})\"",
        binaries.major,
        home.dir.display(),
        home.data().join("postmaster.pid").display(),
    );
    Ok(admin_url(port))
}

fn admin_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// The per-user directory of the throwaway server, and who runs it.
#[derive(Debug)]
pub(crate) struct ServerHome {
    pub(crate) dir: PathBuf,
    /// The account the server's commands run as; `None`: this process's own.
    run_as: Option<ServerUser>,
}

impl ServerHome {
    /// Creates the directory if needed and checks that it is ours.
    fn prepare() -> anyhow::Result<ServerHome> {
        let uid = current_uid()?;
        if uid == 0 {
            return ServerHome::prepare_for_root();
        }
        let dir = std::env::temp_dir().join(format!("tasker-testkit-{uid}"));
        let meta = create_private_dir(&dir)?;
        // Another user could have made it first in a shared /tmp.
        if meta.uid() != uid || meta.mode() & 0o022 != 0 {
            bail!(
                "{} is not owned by this user (uid {uid}) or can be written by others; remove it",
                dir.display()
            );
        }
        Ok(ServerHome { dir, run_as: None })
    }

    /// A server directory of its own at `dir` (a local cluster's, or a test's
    /// that stops and starts its server): created if needed; as root, given
    /// to the server's user, whose must be able to reach it.
    pub(crate) fn at(dir: &Path) -> anyhow::Result<ServerHome> {
        let meta = create_private_dir(dir)?;
        let dir = &fs::canonicalize(dir)
            .with_context(|| format!("could not resolve {}", dir.display()))?;
        let uid = current_uid()?;
        if uid != 0 {
            return Ok(ServerHome {
                dir: dir.to_owned(),
                run_as: None,
            });
        }
        let user = ServerUser::candidates()
            .into_iter()
            .find(|user| user.uid == meta.uid())
            .map_or_else(ServerUser::find_or_create, Ok)?;
        if let Some(parent) = dir.parent() {
            let blocked = parent
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .find(|a| fs::metadata(a).is_ok_and(|meta| meta.mode() & 0o001 == 0));
            if let Some(blocked) = blocked {
                bail!(
                    "PostgreSQL runs as user {} (it refuses to run as root), who cannot reach {}: \
                     make {} traversable by others (chmod o+x) or choose a directory elsewhere",
                    user.name,
                    dir.display(),
                    blocked.display()
                );
            }
        }
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("could not give {} to user {}", dir.display(), user.name))?;
        Ok(ServerHome {
            dir: dir.to_owned(),
            run_as: Some(user),
        })
    }

    fn prepare_for_root() -> anyhow::Result<ServerHome> {
        let dir = temp_dir_reachable_by_all().join("tasker-testkit-0");
        let meta = create_private_dir(&dir)?;
        // A server made earlier keeps the user it was made with: its data
        // directory belongs to that user.
        if let Some(user) = ServerUser::candidates()
            .into_iter()
            .find(|user| user.uid == meta.uid())
        {
            return Ok(ServerHome {
                dir,
                run_as: Some(user),
            });
        }
        if meta.uid() != 0 {
            bail!(
                "{} is owned by uid {}, not by root or the test server's user; remove it",
                dir.display(),
                meta.uid()
            );
        }
        let user = ServerUser::find_or_create()?;
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("could not give {} to user {}", dir.display(), user.name))?;
        Ok(ServerHome {
            dir,
            run_as: Some(user),
        })
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Blocks until no other process is checking or starting the server.
    fn lock(&self) -> anyhow::Result<File> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("could not open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("could not lock {}", path.display()))?;
        Ok(file)
    }

    /// The port of a server already running from this directory and answering.
    fn running_port(&self, binaries: &ServerBinaries) -> Option<u16> {
        let status = self
            .command(&binaries.pg_ctl())
            .arg("status")
            .arg("-D")
            .arg(self.data())
            .output();
        if !status.is_ok_and(|output| output.status.success()) {
            return None;
        }
        let port = self.postmaster_port();
        if port.is_some_and(answers) {
            return port;
        }
        // Running but unreachable (hung, or not listening where it says):
        // stop it so that it can be started afresh.
        self.stop(binaries);
        None
    }

    /// The port the running server wrote on line 4 of `postmaster.pid`.
    pub(crate) fn postmaster_port(&self) -> Option<u16> {
        let pid_file = fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// Starts the server, making its data directory first when it is missing,
    /// from another major version, or will not start.
    pub(crate) fn start(&self, binaries: &ServerBinaries) -> anyhow::Result<u16> {
        let version = fs::read_to_string(self.data().join("PG_VERSION")).ok();
        let initialised = version.is_some_and(|version| version.trim() == binaries.major);
        if !initialised {
            self.initdb(binaries)?;
            return self.start_on_free_port(binaries);
        }
        self.start_on_free_port(binaries).or_else(|first_error| {
            self.initdb(binaries)?;
            self.start_on_free_port(binaries).with_context(|| {
                format!(
                    "also after re-creating the data directory, which failed with: {first_error:#}"
                )
            })
        })
    }

    pub(crate) fn initdb(&self, binaries: &ServerBinaries) -> anyhow::Result<()> {
        let data = self.data();
        if data.exists() {
            self.stop(binaries);
            fs::remove_dir_all(&data)
                .with_context(|| format!("could not remove {}", data.display()))?;
        }
        let output = self
            .command(&binaries.initdb())
            .arg("-D")
            .arg(&data)
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .context("could not run initdb")?;
        if !output.status.success() {
            bail!("initdb {} failed: {}", data.display(), describe(&output));
        }
        let conf = data.join("postgresql.conf");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&conf)
            .with_context(|| format!("could not open {}", conf.display()))?;
        writeln!(
            file,
            "{TUNING}unix_socket_directories = {}",
            conf_string(&self.socket_dir())
        )
        .with_context(|| format!("could not write {}", conf.display()))?;
        Ok(())
    }

    /// The server's own directory when the socket path fits, else none (TCP only).
    fn socket_dir(&self) -> String {
        let dir = self.dir.to_string_lossy();
        if dir.len() + "/.s.PGSQL.65535".len() <= MAX_SOCKET_PATH {
            dir.into_owned()
        } else {
            String::new()
        }
    }

    fn start_on_free_port(&self, binaries: &ServerBinaries) -> anyhow::Result<u16> {
        let mut failures = Vec::new();
        // The port is free when probed, but another program may take it
        // before the server binds it: then try another.
        for _ in 0..3 {
            let port = free_port()?;
            match self.start_on_port(binaries, port) {
                Ok(()) => return Ok(port),
                Err(failure) => failures.push(format!("port {port}: {failure:#}")),
            }
        }
        bail!(
            "could not start PostgreSQL from {}: {}\nlast lines of {}:\n{}",
            self.data().display(),
            failures.join("; "),
            self.dir.join("server.log").display(),
            log_tail(&self.dir.join("server.log")),
        )
    }

    /// Starts the (initialised) server on `port`, waiting until it accepts
    /// connections; on failure it is stopped again.
    pub(crate) fn start_on_port(&self, binaries: &ServerBinaries, port: u16) -> anyhow::Result<()> {
        let output = self
            .command(&binaries.pg_ctl())
            .args(["start", "-w", "-t", START_TIMEOUT_SECS, "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!("-p {port}"))
            .output()
            .context("could not run pg_ctl")?;
        if output.status.success() {
            let port_file = self.dir.join("port");
            fs::write(&port_file, format!("{port}\n"))
                .with_context(|| format!("could not write {}", port_file.display()))?;
            return Ok(());
        }
        self.stop(binaries);
        bail!("{}", describe(&output))
    }

    /// Whether a server runs from this directory (`pg_ctl status`).
    pub(crate) fn is_running(&self, binaries: &ServerBinaries) -> bool {
        self.command(&binaries.pg_ctl())
            .arg("status")
            .arg("-D")
            .arg(self.data())
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// Stops a server running from this directory with a fast shutdown
    /// (clients disconnected, no crash recovery needed at the next start).
    pub(crate) fn stop_fast(&self, binaries: &ServerBinaries) -> anyhow::Result<()> {
        let output = self
            .command(&binaries.pg_ctl())
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.data())
            .output()
            .context("could not run pg_ctl")?;
        if output.status.success() || !self.is_running(binaries) {
            return Ok(());
        }
        bail!(
            "pg_ctl stop {}: {}",
            self.data().display(),
            describe(&output)
        )
    }

    /// Stops a server running from this directory, if any; errors are ignored
    /// because the caller goes on to re-create or restart it.
    fn stop(&self, binaries: &ServerBinaries) {
        let _ = self
            .command(&binaries.pg_ctl())
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .output();
    }

    /// A command run in this directory as the server's user, in its own
    /// process group so that a Ctrl-C on the test run does not reach it.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .process_group(0);
        if let Some(user) = &self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        command
    }
}

/// Creates `dir` (mode 0700) unless it exists, and returns its metadata; a
/// symlink is refused so that nobody can redirect the server elsewhere.
fn create_private_dir(dir: &Path) -> anyhow::Result<fs::Metadata> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(error).with_context(|| format!("could not create {}", dir.display()));
        }
    }
    let meta =
        fs::symlink_metadata(dir).with_context(|| format!("could not read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory; remove it", dir.display());
    }
    Ok(meta)
}

/// The system temp dir when every ancestor can be traversed by other users
/// (the server's user must reach its directory), else `/tmp`.
fn temp_dir_reachable_by_all() -> PathBuf {
    let temp = std::env::temp_dir();
    let reachable = temp
        .ancestors()
        .all(|dir| fs::metadata(dir).is_ok_and(|meta| meta.mode() & 0o001 != 0));
    if reachable {
        temp
    } else {
        PathBuf::from("/tmp")
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("could not find a free TCP port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

fn answers(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
}

/// A postgresql.conf string literal.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn describe(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{} {} {}", output.status, stderr.trim(), stdout.trim())
}

fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::conf_string;

    #[test]
    fn quotes_configuration_strings() {
        assert_eq!(
            conf_string("/tmp/tasker-testkit-0"),
            "'/tmp/tasker-testkit-0'"
        );
        assert_eq!(conf_string("/tmp/o'brien\\x"), "'/tmp/o''brien\\\\x'");
        assert_eq!(conf_string(""), "''");
    }
}
