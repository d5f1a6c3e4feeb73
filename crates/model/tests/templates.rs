//! Template parsing and validation as a template author meets it: the example
//! files in `templates/` load, malformed documents are refused, and an invalid
//! template reports every problem with its path in one go.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tasker_model::Template;
use tasker_model::template::{Error, Issue};

/// Every example shipped in `templates/`, by file name.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "linear.yaml",
        include_str!("../../../templates/linear.yaml"),
    ),
    (
        "diamond.yaml",
        include_str!("../../../templates/diamond.yaml"),
    ),
    (
        "mixed_dag.yaml",
        include_str!("../../../templates/mixed_dag.yaml"),
    ),
    ("tree.yaml", include_str!("../../../templates/tree.yaml")),
    (
        "order_fulfillment.yaml",
        include_str!("../../../templates/order_fulfillment.yaml"),
    ),
    (
        "order_routing.yaml",
        include_str!("../../../templates/order_routing.yaml"),
    ),
    (
        "csv_import.yaml",
        include_str!("../../../templates/csv_import.yaml"),
    ),
];

fn example(file: &str) -> Template {
    let (_, text) = EXAMPLES
        .iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("{file} is not in EXAMPLES"));
    Template::from_yaml(text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn issues(result: Result<Template, Error>) -> Vec<Issue> {
    match result {
        Err(Error::Invalid { issues, .. }) => issues,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

/// Asserts that `got` holds exactly one issue per `(path, message part)` and
/// nothing else, so a missing report and a spurious one both fail.
fn assert_issues(got: &[Issue], want: &[(&str, &str)]) {
    for (path, part) in want {
        let found = got
            .iter()
            .filter(|i| i.path == *path && i.message.contains(part))
            .count();
        assert_eq!(
            found, 1,
            "want one issue at {path} containing {part:?}; got {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "unexpected extra issues: {got:#?}");
}

fn names(template: &Template, indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .map(|&i| template.steps[i].name.clone())
        .collect()
}

fn children_counts(template: &Template) -> Vec<usize> {
    let mut counts = vec![0; template.steps.len()];
    for parents in template.parent_indices() {
        for p in parents {
            counts[p] += 1;
        }
    }
    counts
}

#[test]
fn every_file_in_the_templates_directory_is_an_example_here() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    let listed: BTreeSet<String> = EXAMPLES.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(on_disk, listed, "add new example templates to EXAMPLES");
}

#[test]
fn every_example_parses_with_its_expected_step_count() {
    let expected = [
        ("linear.yaml", "examples", "linear", 4),
        ("diamond.yaml", "examples", "diamond", 4),
        ("mixed_dag.yaml", "examples", "mixed_dag", 7),
        ("tree.yaml", "examples", "tree", 8),
        ("order_fulfillment.yaml", "orders", "order_fulfillment", 5),
        ("order_routing.yaml", "orders", "order_routing", 4),
        ("csv_import.yaml", "examples", "csv_import", 3),
    ];
    assert_eq!(expected.len(), EXAMPLES.len());
    for (file, namespace, name, steps) in expected {
        let t = example(file);
        assert_eq!(t.namespace, namespace, "{file}");
        assert_eq!(t.name, name, "{file}");
        assert_eq!(t.steps.len(), steps, "{file}");
        assert!(t.validate().is_empty(), "{file}");
        for step in &t.steps {
            assert!(
                step.handler.starts_with(&format!("{namespace}.")),
                "{file}: handler {} should be under its namespace",
                step.handler
            );
        }
    }
}

#[test]
fn linear_is_a_single_chain() {
    let t = example("linear.yaml");
    assert_eq!(t.reference(), "examples/linear@1");
    let parents = t.parent_indices();
    assert!(parents[0].is_empty());
    for (i, ps) in parents.iter().enumerate().skip(1) {
        assert_eq!(ps, &vec![i - 1], "step {i}");
    }
    assert_eq!(t.steps[0].handler, "examples.linear.step_1");
}

#[test]
fn diamond_forks_and_joins() {
    let t = example("diamond.yaml");
    let parents = t.parent_indices();
    assert!(parents[0].is_empty());
    assert_eq!(parents[1], vec![0]);
    assert_eq!(parents[2], vec![0]);
    assert_eq!(parents[3], vec![1, 2]);
}

#[test]
fn mixed_dag_has_one_root_fan_outs_and_fan_ins() {
    let t = example("mixed_dag.yaml");
    let parents = t.parent_indices();
    assert_eq!(parents.iter().filter(|p| p.is_empty()).count(), 1);
    assert!(
        parents.iter().filter(|p| p.len() >= 2).count() >= 2,
        "two joins"
    );
    assert!(
        children_counts(&t).iter().any(|&c| c >= 3),
        "a wide fan-out"
    );
    let finalize = t.step_index("finalize").unwrap();
    assert_eq!(names(&t, &parents[finalize]), ["merge_ab", "enrich_c"]);
}

#[test]
fn tree_has_one_root_and_no_joins() {
    let t = example("tree.yaml");
    let parents = t.parent_indices();
    assert_eq!(parents.iter().filter(|p| p.is_empty()).count(), 1);
    assert!(parents.iter().all(|p| p.len() <= 1), "a tree has no joins");
    let leaves = children_counts(&t).iter().filter(|&&c| c == 0).count();
    assert_eq!(leaves, 5);
}

#[test]
fn order_fulfillment_is_realistic() {
    let t = example("order_fulfillment.yaml");
    assert_eq!(t.namespace, "orders");
    let step = |name: &str| &t.steps[t.step_index(name).unwrap()];
    assert_eq!(step("validate_order").handler, "orders.validate_order");
    assert_eq!(step("validate_order").retry.max_attempts, 1);
    assert_eq!(
        step("ship_order").depends_on,
        ["reserve_inventory", "charge_payment"]
    );
    assert_eq!(step("send_confirmation").depends_on, ["ship_order"]);
    let charge = step("charge_payment");
    assert_eq!(charge.retry.max_attempts, 3);
    assert_eq!(
        charge.retry.backoff.initial.as_duration(),
        Duration::from_secs(2)
    );
    assert_eq!(charge.timeout.as_duration(), Duration::from_secs(45));
    assert_eq!(charge.config["provider"], "example_pay");

    let schema = t.context_schema.as_ref().unwrap();
    let required = schema["required"].as_array().unwrap();
    assert!(required.contains(&json!("order_id")) && required.contains(&json!("items")));
    assert_eq!(schema["properties"]["order_id"]["type"], "string");
    assert_eq!(schema["properties"]["items"]["type"], "array");
    assert_eq!(schema["properties"]["items"]["minItems"], 1);
}

#[test]
fn omitted_fields_take_their_documented_defaults() {
    let t =
        Template::from_yaml("name: bare\nversion: '1'\nsteps:\n  - name: only\n    handler: h\n")
            .unwrap();
    assert_eq!(t.namespace, "default");
    let step = &t.steps[0];
    assert!(step.depends_on.is_empty());
    assert_eq!(step.timeout.as_duration(), Duration::from_secs(300));
    assert_eq!(step.retry.max_attempts, 3);
    assert_eq!(
        step.retry.backoff.initial.as_duration(),
        Duration::from_secs(1)
    );
    assert_eq!(
        step.retry.backoff.max.as_duration(),
        Duration::from_secs(60)
    );
    assert_eq!(step.retry.backoff.multiplier, 2.0);
    assert_eq!(step.retry.backoff.jitter, 0.1);
    assert!(step.config.is_null());
}

#[test]
fn an_unquoted_yaml_version_is_read_as_text() {
    let t = Template::from_yaml("name: n\nversion: 2\nsteps: [{name: a, handler: h}]\n").unwrap();
    assert_eq!(t.version, "2");
}

#[test]
fn malformed_yaml_is_a_parse_error() {
    for text in [
        "name: x\nsteps: [a, b\n",
        "name: [unclosed\n",
        ": : :\n  - ]\n",
    ] {
        match Template::from_yaml(text) {
            Err(Error::Parse { format, message }) => {
                assert_eq!(format, "YAML");
                assert!(!message.is_empty());
            }
            other => panic!("{text:?}: expected Error::Parse, got {other:?}"),
        }
    }
}

#[test]
fn a_document_that_is_not_a_mapping_is_a_parse_error() {
    assert!(matches!(
        Template::from_yaml("- just\n- a list\n"),
        Err(Error::Parse { format: "YAML", .. })
    ));
    assert!(matches!(
        Template::from_json(json!([1, 2, 3])),
        Err(Error::Parse { format: "JSON", .. })
    ));
}

#[test]
fn every_problem_in_a_template_is_reported_with_its_path() {
    let text = r#"
namespace: Bad Namespace
name: broken
version: "1"
colour: blue
steps:
  - name: fetch
    handler: x.fetch
    depends_on: [missing]
    retry:
      max_attempts: 0
  - name: fetch
    handler: x.fetch_again
    retry:
      max_attempts: 101
  - name: loop
    handler: x.loop
    depends_on: [loop]
    timeout: 0s
  - name: slow
    handler: x.slow
    timeout: 25h
  - name: typo
    handler: x.typo
    timeout: 10x
    retries: 3
  - name: backoff
    handler: x.backoff
    retry:
      backoff:
        initial: 1m
        max: 10s
        multiplier: 0.5
        jitter: 1.5
"#;
    let got = issues(Template::from_yaml(text));
    assert_issues(
        &got,
        &[
            ("colour", "unknown field"),
            ("namespace", "namespace \"Bad Namespace\" must be"),
            (
                "steps[0].depends_on[0]",
                "depends on unknown step \"missing\"",
            ),
            ("steps[0].retry.max_attempts", "must be at least 1"),
            (
                "steps[1].name",
                "duplicate step \"fetch\" (first defined at steps[0])",
            ),
            (
                "steps[1].retry.max_attempts",
                "101 exceeds the limit of 100",
            ),
            ("steps[2].depends_on[0]", "step \"loop\" depends on itself"),
            ("steps[2].timeout", "must be greater than zero"),
            ("steps[3].timeout", "25h exceeds the limit of 24h"),
            ("steps[4].timeout", "\"10x\" has unknown unit \"x\""),
            ("steps[4].retries", "unknown field"),
            ("steps[5].retry.backoff.max", "10s is less than initial 1m"),
            (
                "steps[5].retry.backoff.multiplier",
                "0.5 must be between 1 and 10",
            ),
            (
                "steps[5].retry.backoff.jitter",
                "1.5 must be a fraction between 0 and 1",
            ),
        ],
    );
}

#[test]
fn top_level_problems_are_all_reported_together() {
    let text = "namespace: 9lives\nname: has space\nversion: ''\nsteps: []\n";
    assert_issues(
        &issues(Template::from_yaml(text)),
        &[
            ("namespace", "starting with a letter"),
            ("name", "\"has space\" must be 1-64 characters"),
            ("version", "must be 1-64 characters"),
            ("steps", "at least one step"),
        ],
    );
}

#[test]
fn wrong_types_and_missing_fields_are_reported_with_the_other_issues() {
    let value = json!({
        "name": "typed",
        "version": 3,
        "steps": [
            {"name": "a", "handler": "h", "retry": {"max_attempts": "three"}},
            {"handler": "h", "depends_on": "a"},
            "not a step",
            {"name": "d", "handler": "h", "depends_on": ["nope"], "timeout": 30},
        ]
    });
    assert_issues(
        &issues(Template::from_json(value)),
        &[
            ("version", "must be text"),
            ("steps[0].retry.max_attempts", "must be a whole number"),
            ("steps[1].name", "missing required field"),
            ("steps[1].depends_on", "must be a list of step names"),
            ("steps[2]", "must be a mapping of fields"),
            ("steps[3].timeout", "must be a duration with a unit"),
            ("steps[3].depends_on[0]", "unknown step \"nope\""),
        ],
    );
}

#[test]
fn unknown_fields_are_reported_in_json_too() {
    let value = json!({
        "namespace": "examples",
        "name": "j",
        "version": "1",
        "owner": "me",
        "steps": [{"name": "a", "handler": "h", "retry": {"max_attempts": 2, "delay": "1s"}}]
    });
    let err = Template::from_json(value).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template examples/j@1 is invalid: owner: unknown field; expected one of: namespace, \
         name, version, description, context_schema, steps; steps[0].retry.delay: unknown \
         field; expected one of: max_attempts, backoff"
    );
}

#[test]
fn an_invalid_template_names_itself_and_the_offending_step() {
    let text = "namespace: orders\nname: o\nversion: '2'\nsteps:\n  - {name: ship, handler: h, depends_on: [pack]}\n";
    let err = Template::from_yaml(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template orders/o@2 is invalid: steps[0].depends_on[0]: step \"ship\" depends on unknown step \"pack\""
    );
}

#[test]
fn a_cycle_is_spelled_out() {
    let text = r#"
name: cyclic
version: "1"
steps:
  - { name: d, handler: h, depends_on: [a] }
  - { name: a, handler: h, depends_on: [b] }
  - { name: b, handler: h, depends_on: [c] }
  - { name: c, handler: h, depends_on: [a] }
"#;
    assert_issues(
        &issues(Template::from_yaml(text)),
        &[("steps", "dependency cycle: a -> b -> c -> a")],
    );
}

#[test]
fn a_self_dependency_does_not_hide_a_longer_cycle() {
    let text = r#"
name: cyclic
version: "1"
steps:
  - { name: s, handler: h, depends_on: [s] }
  - { name: a, handler: h, depends_on: [b] }
  - { name: b, handler: h, depends_on: [a] }
"#;
    assert_issues(
        &issues(Template::from_yaml(text)),
        &[
            ("steps[0].depends_on[0]", "depends on itself"),
            ("steps", "dependency cycle: a -> b -> a"),
        ],
    );
}

#[test]
fn content_hash_is_stable_and_tracks_content() {
    for (file, _) in EXAMPLES {
        let a = example(file);
        let b = example(file);
        assert_eq!(a.content_hash(), b.content_hash(), "{file}");
        assert_eq!(a.content_hash().len(), 64, "hex SHA-256");

        let mut changed = a.clone();
        changed.steps[0].retry.max_attempts += 1;
        assert_ne!(a.content_hash(), changed.content_hash(), "{file}: retry");
        let mut changed = a.clone();
        changed.steps[0].config = json!({"extra": true});
        assert_ne!(a.content_hash(), changed.content_hash(), "{file}: config");
        let mut changed = a.clone();
        changed.version.push_str(".1");
        assert_ne!(a.content_hash(), changed.content_hash(), "{file}: version");
    }
    // Hashes are lowercase hex digests, identical across runs.
    let t = Template::from_yaml("name: n\nversion: '1'\nsteps: [{name: a, handler: h}]\n").unwrap();
    assert!(
        t.content_hash()
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    );
}

#[test]
fn content_hash_ignores_formatting_key_order_and_duration_spelling() {
    let a = Template::from_yaml(
        "name: n\nversion: '1'\nsteps:\n  - name: a\n    handler: h\n    timeout: 1.5s\n    config: {x: 1, y: [1, 2]}\n",
    )
    .unwrap();
    let b = Template::from_yaml(
        "# a comment\nsteps:\n- config:\n    y: [1, 2]\n    x: 1\n  timeout: 1500ms\n  handler: h\n  name: a\nversion: \"1\"\nname: n\n",
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.content_hash(), b.content_hash());
}

#[test]
fn json_and_yaml_forms_are_the_same_template() {
    let yaml = r#"
namespace: orders
name: refund
version: "3"
description: Refund an order.
context_schema:
  type: object
  required: [order_id]
  properties:
    order_id: { type: string }
steps:
  - name: check
    handler: orders.check_refund
    timeout: 10s
  - name: refund
    handler: orders.refund
    depends_on: [check]
    timeout: 1m
    retry:
      max_attempts: 4
      backoff: { initial: 250ms, max: 20s, multiplier: 2.5, jitter: 0 }
    config:
      provider: example_pay
      notify: [email, sms]
"#;
    let json = json!({
        "namespace": "orders",
        "name": "refund",
        "version": "3",
        "description": "Refund an order.",
        "context_schema": {
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "string"}}
        },
        "steps": [
            {"name": "check", "handler": "orders.check_refund", "timeout": "10s"},
            {
                "name": "refund",
                "handler": "orders.refund",
                "depends_on": ["check"],
                "timeout": "1m",
                "retry": {
                    "max_attempts": 4,
                    "backoff": {"initial": "250ms", "max": "20s", "multiplier": 2.5, "jitter": 0.0}
                },
                "config": {"provider": "example_pay", "notify": ["email", "sms"]}
            }
        ]
    });
    let from_yaml = Template::from_yaml(yaml).unwrap();
    let from_json = Template::from_json(json).unwrap();
    assert_eq!(from_yaml, from_json);
    assert_eq!(from_yaml.content_hash(), from_json.content_hash());
}

#[test]
fn every_example_round_trips_through_json_with_the_same_hash() {
    for (file, _) in EXAMPLES {
        let t = example(file);
        let back = Template::from_json(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t, "{file}");
        assert_eq!(back.content_hash(), t.content_hash(), "{file}");
    }
}
