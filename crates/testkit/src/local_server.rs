//! [`LocalServer`]: a PostgreSQL server of its own in a given directory, on
//! a port of its own, that its owner starts and stops at will: the database
//! of a local cluster (`tasker cluster up` without a database), and the
//! server a test stops and starts to prove that nodes reconnect.
//!
//! Unlike the shared throwaway server of [`crate::server_url`], nothing else
//! uses it, so stopping it disturbs no other test. Like it, it runs with
//! `fsync=off` and trust authentication on 127.0.0.1: it must never hold
//! data anyone cares about. As root, the directory is given to the server's
//! unprivileged user (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::server_binaries::ServerBinaries;
use crate::throwaway_server::{NO_SERVER, ServerHome};

/// A PostgreSQL server running from its own directory.
#[derive(Debug)]
pub struct LocalServer {
    home: ServerHome,
    binaries: ServerBinaries,
    port: u16,
}

impl LocalServer {
    /// Starts the server of `dir` (initialised first when `dir/data` is
    /// missing or from another major version) on `port`, or on a free port
    /// when `port` is 0; returns once it accepts connections. A server
    /// already running from `dir` is used as it is.
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<LocalServer> {
        let Some(binaries) = ServerBinaries::find()? else {
            bail!(NO_SERVER);
        };
        let home = ServerHome::at(dir)?;
        if home.is_running(&binaries)
            && let Some(running) = home.postmaster_port()
        {
            return Ok(LocalServer {
                home,
                binaries,
                port: running,
            });
        }
        let port = if port == 0 {
            home.start(&binaries)?
        } else {
            let version = std::fs::read_to_string(home.data().join("PG_VERSION")).ok();
            if version.is_none_or(|version| version.trim() != binaries.major) {
                home.initdb(&binaries)?;
            }
            home.start_on_port(&binaries, port)?;
            port
        };
        Ok(LocalServer {
            home,
            binaries,
            port,
        })
    }

    /// The server of `dir` if one runs there, without starting anything.
    pub fn running_in(dir: &Path) -> anyhow::Result<Option<LocalServer>> {
        let Some(binaries) = ServerBinaries::find()? else {
            return Ok(None);
        };
        if !dir.join("data").exists() {
            return Ok(None);
        }
        let home = ServerHome::at(dir)?;
        if !home.is_running(&binaries) {
            return Ok(None);
        }
        let Some(port) = home.postmaster_port() else {
            return Ok(None);
        };
        Ok(Some(LocalServer {
            home,
            binaries,
            port,
        }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The postmaster's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.home.data().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.home.dir.join("server.log")
    }

    /// Fast shutdown: clients are disconnected and the server stops; waits
    /// until it is gone. A stopped server is not an error.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.home.stop_fast(&self.binaries)
    }

    /// Starts the stopped server again on the same port, so that clients
    /// holding its URL reconnect.
    pub fn restart(&self) -> anyhow::Result<()> {
        if self.home.is_running(&self.binaries) {
            return Ok(());
        }
        self.home.start_on_port(&self.binaries, self.port)
    }

    pub fn is_running(&self) -> bool {
        self.home.is_running(&self.binaries)
    }
}
