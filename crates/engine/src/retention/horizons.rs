//! The horizon rules of retention: how they are written in the
//! configuration (`failed=2160h`, `orders=2160h`, `orders.failed=4320h`)
//! and how they resolve into one rule per namespace and final state for
//! the store. Pure: no I/O.

use std::time::Duration;

use tasker_model::{HumanDuration, TaskState};
use tasker_store::RetentionHorizon;

use super::RetentionConfig;

/// Final states, the only ones retention deletes.
const FINAL_STATES: [TaskState; 3] = [TaskState::Complete, TaskState::Failed, TaskState::Cancelled];

/// `<state>=<duration>`: how long tasks finished in `state` are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateHorizon {
    pub state: TaskState,
    pub keep_for: Duration,
}

/// `<namespace>=<duration>` or `<namespace>.<state>=<duration>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceHorizon {
    pub namespace: String,
    /// `None`: every final state of the namespace.
    pub state: Option<TaskState>,
    pub keep_for: Duration,
}

fn final_state(text: &str) -> Result<TaskState, String> {
    match text.parse::<TaskState>() {
        Ok(state) if state.is_terminal() => Ok(state),
        _ => Err(format!(
            "\"{text}\" is not a final state; use complete, failed or cancelled"
        )),
    }
}

fn split(text: &str) -> Result<(&str, Duration), String> {
    let (name, duration) = text.split_once('=').ok_or_else(|| {
        format!("\"{text}\" must be written <name>=<duration>, e.g. \"failed=2160h\"")
    })?;
    let keep_for = HumanDuration::parse(duration)?.as_duration();
    if keep_for.is_zero() {
        return Err(format!("\"{text}\": a horizon must be longer than 0s"));
    }
    Ok((name.trim(), keep_for))
}

impl StateHorizon {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (state, keep_for) = split(text)?;
        Ok(Self {
            state: final_state(state)?,
            keep_for,
        })
    }
}

impl NamespaceHorizon {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, keep_for) = split(text)?;
        let (namespace, state) = match name.split_once('.') {
            Some((namespace, state)) => (namespace, Some(final_state(state)?)),
            None => (name, None),
        };
        tasker_model::template::validate_namespace(namespace)?;
        Ok(Self {
            namespace: namespace.to_owned(),
            state,
            keep_for,
        })
    }
}

impl RetentionConfig {
    /// One rule per final state for every namespace, and one per final
    /// state for each namespace with rules of its own. Later rules of the
    /// same kind win over earlier ones; a namespace's rule for one state
    /// wins over its rule for every state.
    pub fn horizons(&self) -> Vec<RetentionHorizon> {
        let mut rules: Vec<RetentionHorizon> = FINAL_STATES
            .iter()
            .map(|&state| RetentionHorizon {
                namespace: None,
                state,
                keep_for: self
                    .state_horizons
                    .iter()
                    .rev()
                    .find(|h| h.state == state)
                    .map_or(self.horizon, |h| h.keep_for),
            })
            .collect();
        let mut namespaces: Vec<&str> = self
            .namespace_horizons
            .iter()
            .map(|h| h.namespace.as_str())
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        for namespace in namespaces {
            let own = |state: Option<TaskState>| {
                self.namespace_horizons
                    .iter()
                    .rev()
                    .find(|h| h.namespace == namespace && h.state == state)
                    .map(|h| h.keep_for)
            };
            for state in FINAL_STATES {
                if let Some(keep_for) = own(Some(state)).or_else(|| own(None)) {
                    rules.push(RetentionHorizon {
                        namespace: Some(namespace.to_owned()),
                        state,
                        keep_for,
                    });
                }
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn keep(rules: &[RetentionHorizon], namespace: Option<&str>, state: TaskState) -> u64 {
        rules
            .iter()
            .find(|r| r.namespace.as_deref() == namespace && r.state == state)
            .map(|r| r.keep_for.as_secs() / H)
            .unwrap_or_else(|| panic!("no rule for {namespace:?} {state:?}"))
    }

    #[test]
    fn the_default_horizon_covers_every_final_state() {
        let rules = RetentionConfig::default().horizons();
        assert_eq!(rules.len(), 3);
        for state in FINAL_STATES {
            assert_eq!(keep(&rules, None, state), 720);
        }
    }

    #[test]
    fn a_namespace_state_rule_beats_its_namespace_rule_which_beats_the_state_rule() {
        let config = RetentionConfig {
            horizon: Duration::from_secs(10 * H),
            state_horizons: vec![StateHorizon::parse("failed=20h").unwrap()],
            namespace_horizons: vec![
                NamespaceHorizon::parse("orders.cancelled=1h").unwrap(),
                NamespaceHorizon::parse("orders=2h").unwrap(),
                NamespaceHorizon::parse("audit.failed=99h").unwrap(),
            ],
            ..RetentionConfig::default()
        };
        let rules = config.horizons();
        assert_eq!(keep(&rules, None, TaskState::Complete), 10);
        assert_eq!(keep(&rules, None, TaskState::Failed), 20);
        assert_eq!(keep(&rules, Some("orders"), TaskState::Complete), 2);
        assert_eq!(keep(&rules, Some("orders"), TaskState::Failed), 2);
        assert_eq!(keep(&rules, Some("orders"), TaskState::Cancelled), 1);
        assert_eq!(keep(&rules, Some("audit"), TaskState::Failed), 99);
        // audit's other states fall back to the rules of every namespace.
        assert!(
            !rules
                .iter()
                .any(|r| r.namespace.as_deref() == Some("audit") && r.state != TaskState::Failed)
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let err = StateHorizon::parse("running=1h").unwrap_err();
        assert!(err.contains("not a final state"), "{err}");
        let err = StateHorizon::parse("failed").unwrap_err();
        assert!(err.contains("<name>=<duration>"), "{err}");
        let err = NamespaceHorizon::parse("orders=soon").unwrap_err();
        assert!(err.contains("soon"), "{err}");
        let err = NamespaceHorizon::parse("Orders=1h").unwrap_err();
        assert!(!err.is_empty());
        let err = NamespaceHorizon::parse("orders=0s").unwrap_err();
        assert!(err.contains("longer than 0s"), "{err}");
        assert_eq!(
            NamespaceHorizon::parse("orders.failed=3h").unwrap(),
            NamespaceHorizon {
                namespace: "orders".into(),
                state: Some(TaskState::Failed),
                keep_for: Duration::from_secs(3 * H),
            }
        );
    }
}
