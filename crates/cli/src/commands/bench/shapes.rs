//! The templates a benchmark runs: every step a no-op of one handler, so
//! that what is measured is Tasker and not the work.

/// The namespace every benchmark template and worker lives in.
pub const NAMESPACE: &str = "bench";
/// The one handler of every benchmark step.
pub const HANDLER: &str = "bench.noop";

/// A benchmark template: its name and its steps with their parents.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub steps: &'static [(&'static str, &'static [&'static str])],
}

impl Shape {
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The template in YAML, registered in [`NAMESPACE`].
    pub fn yaml(&self) -> String {
        let mut yaml = format!(
            "namespace: {NAMESPACE}\nname: {}\nversion: \"1\"\nsteps:\n",
            self.name
        );
        for (step, parents) in self.steps {
            yaml.push_str(&format!(
                "  - {{ name: {step}, handler: {HANDLER}, depends_on: [{}] }}\n",
                parents.join(", ")
            ));
        }
        yaml
    }
}

pub const ONE: Shape = Shape {
    name: "one",
    steps: &[("only", &[])],
};

pub const LINEAR: Shape = Shape {
    name: "linear",
    steps: &[
        ("s1", &[]),
        ("s2", &["s1"]),
        ("s3", &["s2"]),
        ("s4", &["s3"]),
    ],
};

pub const DIAMOND: Shape = Shape {
    name: "diamond",
    steps: &[
        ("start", &[]),
        ("left", &["start"]),
        ("right", &["start"]),
        ("join", &["left", "right"]),
    ],
};

/// Fan-out and fan-in, as `templates/mixed_dag.yaml`.
pub const MIXED: Shape = Shape {
    name: "mixed",
    steps: &[
        ("init", &[]),
        ("fetch_a", &["init"]),
        ("fetch_b", &["init"]),
        ("fetch_c", &["init"]),
        ("merge_ab", &["fetch_a", "fetch_b"]),
        ("enrich_c", &["fetch_c"]),
        ("finalize", &["merge_ab", "enrich_c"]),
    ],
};

/// A root, two branches and five leaves, as `templates/tree.yaml`.
pub const TREE: Shape = Shape {
    name: "tree",
    steps: &[
        ("root", &[]),
        ("left", &["root"]),
        ("right", &["root"]),
        ("left_1", &["left"]),
        ("left_2", &["left"]),
        ("right_1", &["right"]),
        ("right_2", &["right"]),
        ("right_3", &["right"]),
    ],
};

/// Every shape, each registered before a run.
pub const ALL: [Shape; 5] = [ONE, LINEAR, DIAMOND, MIXED, TREE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_a_valid_template() {
        for shape in ALL {
            let template = tasker_engine::template_from_yaml(&shape.yaml())
                .unwrap_or_else(|e| panic!("{}: {e}", shape.name));
            assert_eq!(template.steps.len(), shape.step_count());
        }
    }
}
