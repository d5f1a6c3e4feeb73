//! Which version of a template is the newest: the one `namespace/name`
//! without a version means.
//!
//! Versions are free text (1-64 characters), so the order must say what to
//! do with any of them:
//!
//! 1. A version that reads as a number ranks by its value: semantic versions
//!    (`1.4.2`, `2.0.0-rc.1`) in semver precedence, where a pre-release is
//!    lower than its release and build metadata (`+build.5`) is ignored;
//!    plain integers and dotted integers with one or two parts (`2`, `10`,
//!    `1.2`) as if the missing parts were zero (`2` = `2.0.0`), so that
//!    `"2" < "10"` and `"1.9" < "1.10"`. A leading `v` (`v1.2.0`) is allowed.
//! 2. Every version that reads as a number ranks above every version that
//!    does not (`2024-q3`, `blue`).
//! 3. Versions that rank the same (two that do not parse, or `2` and
//!    `2.0.0`) are ordered by registration: the later one is newer. Callers
//!    break that tie; [`compare_versions`] answers `Equal`.

use std::cmp::Ordering;

/// Where a version stands in the order, before registration time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRank {
    /// Not a number: below every numbered version.
    Unnumbered,
    Numbered(semver::Version),
}

impl VersionRank {
    pub fn of(version: &str) -> Self {
        let text = version
            .strip_prefix(['v', 'V'])
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or(version);
        if let Ok(parsed) = semver::Version::parse(text) {
            return Self::Numbered(parsed);
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() <= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u64>().ok());
            if let (Some(major), Some(minor)) = (number(0), number(1)) {
                return Self::Numbered(semver::Version::new(major, minor, 0));
            }
        }
        Self::Unnumbered
    }
}

impl Ord for VersionRank {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Unnumbered, Self::Unnumbered) => Ordering::Equal,
            (Self::Unnumbered, Self::Numbered(_)) => Ordering::Less,
            (Self::Numbered(_), Self::Unnumbered) => Ordering::Greater,
            (Self::Numbered(a), Self::Numbered(b)) => a.cmp_precedence(b),
        }
    }
}

impl PartialOrd for VersionRank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `a` against `b` in version order; `Equal` where registration decides.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    VersionRank::of(a).cmp(&VersionRank::of(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ascending(versions: &[&str]) {
        for pair in versions.windows(2) {
            assert_eq!(
                compare_versions(pair[0], pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(compare_versions(pair[1], pair[0]), Ordering::Greater);
        }
    }

    #[test]
    fn semantic_versions_rank_by_precedence_not_by_text() {
        ascending(&["1.0.1", "1.2.0", "1.10.0", "2.0.0", "10.0.0"]);
        ascending(&[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta",
            "1.0.0-rc.1",
            "1.0.0",
        ]);
    }

    #[test]
    fn integers_rank_numerically_and_beside_semantic_versions() {
        ascending(&["1", "2", "9", "10", "100"]);
        ascending(&["1.9", "1.10", "2"]);
        ascending(&["1", "1.0.1", "1.5", "2", "2.0.1", "10"]);
        assert_eq!(compare_versions("2", "2.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("v2.1.0", "2.1.0"), Ordering::Equal);
    }

    #[test]
    fn build_metadata_does_not_rank() {
        assert_eq!(compare_versions("1.0.0+a", "1.0.0+b"), Ordering::Equal);
    }

    #[test]
    fn versions_that_are_not_numbers_rank_below_those_that_are() {
        ascending(&["blue", "0.0.1"]);
        ascending(&["2024-q3", "1"]);
        ascending(&["1.2.3.4", "1"]);
        assert_eq!(compare_versions("blue", "green"), Ordering::Equal);
        assert_eq!(VersionRank::of("v"), VersionRank::Unnumbered);
        assert_eq!(
            VersionRank::of("01"),
            VersionRank::Numbered(semver::Version::new(1, 0, 0))
        );
    }
}
