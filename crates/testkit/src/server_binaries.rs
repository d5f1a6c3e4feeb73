//! Finding the installed PostgreSQL server binaries (`initdb`, `pg_ctl`).
//!
//! Debian and Ubuntu put them in `/usr/lib/postgresql/<version>/bin`, off
//! `PATH` (only client tools and wrappers live in `/usr/bin`); other systems
//! and source builds put them on `PATH`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// A directory holding `initdb` and `pg_ctl`, and the major version they belong to.
#[derive(Debug, Clone)]
pub(crate) struct ServerBinaries {
    pub dir: PathBuf,
    /// As PostgreSQL writes it in `PG_VERSION`: `15`, or `9.6` before 10.
    pub major: String,
}

impl ServerBinaries {
    /// The first `PATH` directory with both binaries, else the newest Debian
    /// versioned directory; `None` when PostgreSQL's server is not installed.
    pub fn find() -> anyhow::Result<Option<ServerBinaries>> {
        let on_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default();
        let Some(dir) = on_path
            .into_iter()
            .find(|dir| has_binaries(dir))
            .or_else(newest_debian_dir)
        else {
            return Ok(None);
        };
        let pg_ctl = dir.join("pg_ctl");
        let output = Command::new(&pg_ctl)
            .arg("--version")
            .output()
            .with_context(|| format!("could not run {}", pg_ctl.display()))?;
        let printed = String::from_utf8_lossy(&output.stdout);
        let Some(major) = major_version(&printed) else {
            bail!(
                "could not read the version from `{} --version`: {printed:?}",
                pg_ctl.display()
            );
        };
        Ok(Some(ServerBinaries { dir, major }))
    }

    pub fn initdb(&self) -> PathBuf {
        self.dir.join("initdb")
    }

    pub fn pg_ctl(&self) -> PathBuf {
        self.dir.join("pg_ctl")
    }
}

fn has_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn newest_debian_dir() -> Option<PathBuf> {
    let versions = std::fs::read_dir(DEBIAN_ROOT)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    let newest = newest_version(versions)?;
    Some(Path::new(DEBIAN_ROOT).join(newest).join("bin")).filter(|dir| has_binaries(dir))
}

/// The highest of directory names like `9.6`, `15`, `17`, compared numerically.
fn newest_version(names: impl Iterator<Item = String>) -> Option<String> {
    names
        .filter_map(|name| {
            let key = name
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<_>>>()?;
            Some((key, name))
        })
        .max()
        .map(|(_, name)| name)
}

/// The major version in `pg_ctl --version` output such as
/// `pg_ctl (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)`: `15`; `9.6` before 10.
fn major_version(printed: &str) -> Option<String> {
    let version = printed.split_once(") ")?.1.split_whitespace().next()?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second: u32 = parts.next()?.parse().ok()?;
    Some(format!("{first}.{second}"))
}

#[cfg(test)]
mod tests {
    use super::{major_version, newest_version};

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 17.2\n").as_deref(),
            Some("17")
        );
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 18beta1\n").as_deref(),
            Some("18")
        );
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 9.6.24\n").as_deref(),
            Some("9.6")
        );
        assert_eq!(major_version("something else"), None);
    }

    #[test]
    fn picks_the_numerically_highest_version_directory() {
        let names = ["9.6", "15", "17", "README", "16"].map(String::from);
        assert_eq!(newest_version(names.into_iter()).as_deref(), Some("17"));
        assert_eq!(newest_version(std::iter::empty()), None);
    }
}
