//! [`Coverage`]: whether any live worker will run a step, judged from the
//! workers a server heard from recently (`GET /v1/cluster`). A worker that
//! declared no handlers is taken to run every handler of its namespaces.
//! This only informs (a warning, a note next to a waiting step); it never
//! stops a command, since a worker may start at any moment.

use std::fmt;

use tasker_store::Worker;

/// Why nobody will take a step now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// No live worker polls the namespace.
    Namespace(String),
    /// Workers poll the namespace, but none declares the handler.
    Handler(String),
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Namespace(namespace) => {
                write!(f, "no live worker serves namespace \"{namespace}\"")
            }
            Gap::Handler(handler) => write!(f, "no live worker declares handler \"{handler}\""),
        }
    }
}

/// The live workers, asked per namespace and handler.
#[derive(Debug, Clone, Copy)]
pub struct Coverage<'a> {
    workers: &'a [Worker],
}

impl<'a> Coverage<'a> {
    pub fn new(workers: &'a [Worker]) -> Self {
        Self { workers }
    }

    /// What keeps a step of `handler` in `namespace` from being taken, if
    /// anything.
    pub fn gap(&self, namespace: &str, handler: &str) -> Option<Gap> {
        let mut serving = self
            .workers
            .iter()
            .filter(|w| w.namespaces.iter().any(|n| n == namespace))
            .peekable();
        if serving.peek().is_none() {
            return Some(Gap::Namespace(namespace.to_owned()));
        }
        if serving.any(|w| w.handlers.is_empty() || w.handlers.iter().any(|h| h == handler)) {
            None
        } else {
            Some(Gap::Handler(handler.to_owned()))
        }
    }

    /// One warning per gap among `steps` (name, handler) of `namespace`: the
    /// namespace once, or each handler nobody declares once, naming its steps.
    pub fn warnings<'s>(
        &self,
        namespace: &str,
        steps: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> Vec<String> {
        let mut gaps: Vec<(Gap, Vec<&str>)> = Vec::new();
        for (step, handler) in steps {
            let Some(gap) = self.gap(namespace, handler) else {
                continue;
            };
            match gaps.iter_mut().find(|(g, _)| *g == gap) {
                Some((_, names)) => names.push(step),
                None => gaps.push((gap, vec![step])),
            }
        }
        gaps.into_iter()
            .map(|(gap, steps)| match gap {
                Gap::Namespace(_) => format!(
                    "warning: {gap}: its steps wait until a worker polls it \
                     (`tasker worker list` shows the live workers)"
                ),
                Gap::Handler(_) => format!(
                    "warning: {gap} in namespace \"{namespace}\" (used by step {}): \
                     those steps wait until a worker that has it polls the namespace",
                    steps
                        .iter()
                        .map(|s| format!("\"{s}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_records::worker;

    #[test]
    fn a_namespace_without_workers_is_a_gap() {
        let workers = [worker("w1", &["other"], &[])];
        let coverage = Coverage::new(&workers);
        assert_eq!(
            coverage.gap("orders", "h.a"),
            Some(Gap::Namespace("orders".into()))
        );
        assert_eq!(coverage.gap("other", "anything"), None, "no handlers: all");
        assert_eq!(
            Coverage::new(&[]).gap("orders", "h.a").unwrap().to_string(),
            "no live worker serves namespace \"orders\""
        );
    }

    #[test]
    fn a_handler_nobody_declares_is_a_gap() {
        let workers = [
            worker("w1", &["orders"], &["h.a"]),
            worker("w2", &["orders", "x"], &["h.b"]),
        ];
        let coverage = Coverage::new(&workers);
        assert_eq!(coverage.gap("orders", "h.a"), None);
        assert_eq!(coverage.gap("orders", "h.b"), None);
        assert_eq!(
            coverage.gap("orders", "h.c"),
            Some(Gap::Handler("h.c".into()))
        );
        assert_eq!(
            coverage.gap("x", "h.a"),
            Some(Gap::Handler("h.a".into())),
            "w1 does not poll x"
        );
    }

    #[test]
    fn warnings_name_each_gap_once() {
        let workers = [worker("w1", &["orders"], &["h.a"])];
        let coverage = Coverage::new(&workers);
        let warnings = coverage.warnings(
            "orders",
            [("a", "h.a"), ("b", "h.b"), ("c", "h.b"), ("d", "h.d")],
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "warning: no live worker declares handler \"h.b\" in namespace \"orders\" \
                 (used by step \"b\", \"c\")"
            ),
            "{warnings:?}"
        );
        let none = Coverage::new(&[]).warnings("orders", [("a", "h.a"), ("b", "h.b")]);
        assert_eq!(none.len(), 1, "{none:?}");
        assert!(none[0].starts_with("warning: no live worker serves namespace \"orders\""));
        assert!(coverage.warnings("orders", [("a", "h.a")]).is_empty());
    }
}
