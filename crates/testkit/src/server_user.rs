//! The unprivileged account the throwaway server runs as when tests run as
//! root: PostgreSQL refuses to start as root.
//!
//! A dedicated system user `tasker-test` is created with `useradd` (in
//! Debian's essential `passwd` package) on first use; where that is not
//! possible, `nobody` is used.

use std::process::Command;

/// The account created for the throwaway server.
pub(crate) const DEDICATED_USER: &str = "tasker-test";
const FALLBACK_USER: &str = "nobody";

/// An account that runs the server's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl ServerUser {
    /// The accounts a root-run server may belong to, in order of preference;
    /// only those that exist.
    pub fn candidates() -> Vec<ServerUser> {
        [DEDICATED_USER, FALLBACK_USER]
            .into_iter()
            .filter_map(ServerUser::lookup)
            .collect()
    }

    /// `tasker-test`, created if absent, else `nobody`.
    pub fn find_or_create() -> anyhow::Result<ServerUser> {
        if let Some(user) = ServerUser::lookup(DEDICATED_USER) {
            return Ok(user);
        }
        let created = create_dedicated_user();
        // Another test process may have created it concurrently (then our
        // `useradd` failed): look again either way.
        if let Some(user) = ServerUser::lookup(DEDICATED_USER) {
            return Ok(user);
        }
        ServerUser::lookup(FALLBACK_USER).ok_or_else(|| {
            anyhow::anyhow!(
                "tests run as root, and PostgreSQL must run as an unprivileged user: could not create user \
                 {DEDICATED_USER} ({}) and user {FALLBACK_USER} does not exist; create either, run the tests \
                 as another user, or set TASKER_TEST_DATABASE_URL",
                created.err().unwrap_or_default()
            )
        })
    }

    /// The account called `name`, through `id` so that every NSS source counts.
    pub fn lookup(name: &str) -> Option<ServerUser> {
        let uid = id(&["-u", name])?;
        let gid = id(&["-g", name])?;
        Some(ServerUser {
            name: name.to_owned(),
            uid,
            gid,
        })
    }
}

/// The uid this process runs as.
pub(crate) fn current_uid() -> anyhow::Result<u32> {
    id(&["-u"]).ok_or_else(|| anyhow::anyhow!("could not find this process's uid with `id -u`"))
}

fn id(args: &[&str]) -> Option<u32> {
    let output = Command::new("id").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

fn create_dedicated_user() -> Result<(), String> {
    let mut last_error = String::new();
    // Root's PATH may lack /usr/sbin (e.g. after a plain `su`).
    for program in ["useradd", "/usr/sbin/useradd"] {
        let output = Command::new(program)
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .args([
                "--comment",
                "tasker-testkit throwaway PostgreSQL",
                DEDICATED_USER,
            ])
            .output();
        match output {
            Ok(output) if output.status.success() => return Ok(()),
            Ok(output) => last_error = String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            Err(error) => last_error = format!("{program}: {error}"),
        }
    }
    Err(last_error)
}
