//! Which live nodes run another version than the cluster: pure, no I/O.
//!
//! The rule: the cluster's version is the one most live nodes run. When
//! several versions are run by equally many nodes, the leader's version
//! wins if it is one of them, else the highest of them (in the order of
//! [`tasker_model::template::compare_versions`]). Every node whose version
//! differs from the cluster's is skewed. A rolling upgrade therefore flags
//! the new nodes until they are the majority, then the old ones.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tasker_model::template::compare_versions;

/// The version the cluster runs, from the versions of its live nodes;
/// `None` when there are none.
pub fn cluster_version<'a>(
    versions: impl IntoIterator<Item = &'a str>,
    leader_version: Option<&str>,
) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for version in versions {
        *counts.entry(version).or_default() += 1;
    }
    let most = *counts.values().max()?;
    let tied: Vec<&str> = counts
        .iter()
        .filter(|(_, count)| **count == most)
        .map(|(version, _)| *version)
        .collect();
    if let Some(leader) = leader_version
        && tied.contains(&leader)
    {
        return Some(leader.to_owned());
    }
    tied.into_iter()
        .max_by(|a, b| match compare_versions(a, b) {
            Ordering::Equal => a.cmp(b),
            other => other,
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_version_everywhere_is_the_cluster_version() {
        assert_eq!(
            cluster_version(["0.1.0", "0.1.0"], None).as_deref(),
            Some("0.1.0")
        );
    }

    #[test]
    fn no_nodes_no_version() {
        assert_eq!(cluster_version([], Some("0.1.0")), None);
    }

    #[test]
    fn the_majority_wins_over_the_leader() {
        assert_eq!(
            cluster_version(["0.1.0", "0.2.0", "0.2.0"], Some("0.1.0")).as_deref(),
            Some("0.2.0")
        );
    }

    #[test]
    fn a_tie_goes_to_the_leader() {
        assert_eq!(
            cluster_version(["0.2.0", "0.10.0"], Some("0.2.0")).as_deref(),
            Some("0.2.0")
        );
    }

    #[test]
    fn a_tie_without_the_leader_goes_to_the_highest_version() {
        // By version order, not by text: 0.10.0 is above 0.9.0.
        assert_eq!(
            cluster_version(["0.9.0", "0.10.0"], None).as_deref(),
            Some("0.10.0")
        );
        assert_eq!(
            cluster_version(["0.9.0", "0.10.0", "1.0.0", "1.0.0"], Some("0.9.0")).as_deref(),
            Some("1.0.0")
        );
    }
}
