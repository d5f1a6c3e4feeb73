//! The example handlers run over the real template files by a tiny in-test
//! scheduler (parents before children, retryable failures retried up to the
//! step's `max_attempts`), so the data flow and the injected behaviour are
//! checked without a server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tasker_client::{ClaimedStep, Lease};
use tasker_model::Template;
use uuid::Uuid;

use super::*;
use crate::cancellation::{CancelReason, Cancellation};

fn template(file: &str) -> Template {
    let path = format!("{}/../../templates/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Template::from_yaml(&text).unwrap()
}

const TEMPLATE_FILES: [&str; 7] = [
    "linear.yaml",
    "order_routing.yaml",
    "csv_import.yaml",
    "diamond.yaml",
    "tree.yaml",
    "mixed_dag.yaml",
    "order_fulfillment.yaml",
];

fn claimed(
    template: &Template,
    step: &str,
    attempt: u32,
    context: &Value,
    parents: Map<String, Value>,
) -> ClaimedStep {
    let def = template.steps.iter().find(|s| s.name == step).unwrap();
    ClaimedStep {
        lease: Lease {
            step_id: Uuid::now_v7(),
            attempt,
            token: Uuid::now_v7(),
        },
        lease_expires_at: chrono::Utc::now(),
        task_id: Uuid::nil(),
        namespace: template.namespace.clone(),
        template_name: template.name.clone(),
        template_version: template.version.clone(),
        step_name: def.name.clone(),
        handler: def.handler.clone(),
        config: def.config.clone(),
        max_attempts: def.retry.max_attempts,
        timeout_ms: def.timeout.0.as_millis() as u64,
        context: context.clone(),
        parent_results: parents,
        parent_result_refs: Default::default(),
        fan_out: None,
    }
}

/// What happened to each step: its result, or its last error and how many
/// attempts it took.
#[derive(Debug)]
struct Run {
    results: BTreeMap<String, Value>,
    failures: BTreeMap<String, (HandlerError, u32)>,
}

impl Run {
    fn value(&self, step: &str) -> i64 {
        self.results[step]["value"].as_i64().unwrap()
    }
}

async fn run_template(file: &str, context: Value) -> Run {
    let template = template(file);
    let handlers: BTreeMap<&str, Body> = bodies().into_iter().collect();
    let mut run = Run {
        results: BTreeMap::new(),
        failures: BTreeMap::new(),
    };
    loop {
        let ready: Vec<_> = template
            .steps
            .iter()
            .filter(|s| !run.results.contains_key(&s.name) && !run.failures.contains_key(&s.name))
            .filter(|s| s.depends_on.iter().all(|p| run.results.contains_key(p)))
            .collect();
        if ready.is_empty() {
            return run;
        }
        for step in ready {
            let parents: Map<String, Value> = step
                .depends_on
                .iter()
                .map(|p| (p.clone(), run.results[p].clone()))
                .collect();
            let body = handlers[step.handler.as_str()];
            let mut attempt = 1;
            loop {
                let (_handle, cancellation) = Cancellation::new();
                let ctx = StepContext::new(
                    claimed(&template, &step.name, attempt, &context, parents.clone()),
                    cancellation,
                );
                match (Example { body, log: None }).run(ctx).await {
                    Ok(result) => {
                        run.results.insert(step.name.clone(), result);
                        break;
                    }
                    Err(error) if error.is_retryable() && attempt < step.retry.max_attempts => {
                        attempt += 1;
                    }
                    Err(error) => {
                        run.failures.insert(step.name.clone(), (error, attempt));
                        break;
                    }
                }
            }
        }
    }
}

#[test]
fn every_handler_the_templates_name_is_an_example_and_vice_versa() {
    let named: BTreeSet<String> = TEMPLATE_FILES
        .iter()
        .flat_map(|file| template(file).steps)
        .map(|step| step.handler)
        .collect();
    let examples: BTreeSet<String> = handler_names().into_iter().map(str::to_owned).collect();
    assert_eq!(named, examples);
    for file in TEMPLATE_FILES {
        assert!(
            NAMESPACES.contains(&template(file).namespace.as_str()),
            "{file}"
        );
    }
}

#[tokio::test]
async fn linear_squares_down_the_chain() {
    let run = run_template("linear.yaml", json!({"even_number": 2})).await;
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    let values: Vec<i64> = ["step_1", "step_2", "step_3", "step_4"]
        .iter()
        .map(|s| run.value(s))
        .collect();
    assert_eq!(values, vec![4, 16, 256, 65_536]);
    assert_eq!(run.results["step_2"]["input"], 4);
}

#[tokio::test]
async fn linear_overflow_fails_permanently() {
    let run = run_template("linear.yaml", json!({"even_number": 1_000_000})).await;
    let (error, attempts) = &run.failures["step_2"];
    assert!(!error.is_retryable());
    assert_eq!(error.error_type(), "overflow");
    assert_eq!(*attempts, 1);
}

#[tokio::test]
async fn diamond_joins_both_branches() {
    let run = run_template("diamond.yaml", json!({"start": 1})).await;
    assert_eq!(
        ["start", "branch_b", "branch_c", "end"].map(|s| run.value(s)),
        [2, 4, 6, 10]
    );
}

#[tokio::test]
async fn tree_leaves_carry_their_path() {
    let run = run_template("tree.yaml", json!({})).await;
    assert_eq!(run.value("root"), 1);
    assert_eq!(run.value("left"), 11);
    assert_eq!(run.value("right"), 12);
    assert_eq!(run.value("left_2"), 112);
    assert_eq!(run.value("right_3"), 123);
    assert_eq!(run.results.len(), 8);
}

#[tokio::test]
async fn mixed_dag_meets_at_finalize() {
    let run = run_template("mixed_dag.yaml", json!({})).await;
    assert_eq!(
        [
            "init", "fetch_a", "fetch_b", "fetch_c", "merge_ab", "enrich_c", "finalize"
        ]
        .map(|s| run.value(s)),
        [1, 11, 12, 13, 23, 26, 49]
    );
}

fn order() -> Value {
    json!({
        "order_id": "o-17",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "items": [
            {"sku": "mug", "quantity": 2, "unit_price_cents": 1250},
            {"sku": "tea", "quantity": 1, "unit_price_cents": 800}
        ],
        "shipping_address": {"line1": "1 Main St", "city": "Lyon", "postal_code": "69001", "country": "FR"}
    })
}

#[tokio::test]
async fn orders_flow_from_validation_to_confirmation() {
    let run = run_template("order_fulfillment.yaml", order()).await;
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.results["validate_order"]["total_cents"], 3300);
    assert_eq!(run.results["charge_payment"]["amount_cents"], 3300);
    assert_eq!(run.results["charge_payment"]["currency"], "EUR");
    assert_eq!(run.results["reserve_inventory"]["units"], 3);
    let ship = &run.results["ship_order"];
    assert_eq!(ship["reservation_id"], "res-o-17");
    assert_eq!(ship["charge_id"], "ch-o-17");
    let confirmation = &run.results["send_confirmation"];
    assert_eq!(confirmation["tracking_number"], ship["tracking_number"]);
    assert_eq!(confirmation["sent_to"], "ada@example.com");
}

#[tokio::test]
async fn an_invalid_order_fails_validation_for_good() {
    let mut context = order();
    context["currency"] = json!("JPY");
    let run = run_template("order_fulfillment.yaml", context).await;
    let (error, attempts) = &run.failures["validate_order"];
    assert!(!error.is_retryable());
    assert_eq!(error.error_type(), "invalid_order");
    assert_eq!(*attempts, 1);
    assert!(run.results.is_empty());
}

#[tokio::test]
async fn fail_times_fails_the_first_attempts_then_succeeds() {
    let run = run_template(
        "linear.yaml",
        json!({"even_number": 2, "fail_times": {"step_2": 2}}),
    )
    .await;
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.value("step_4"), 65_536);

    // More failures than attempts: the step fails with the injected error.
    let run = run_template(
        "linear.yaml",
        json!({"even_number": 2, "fail_times": {"step_3": 5}}),
    )
    .await;
    let (error, attempts) = &run.failures["step_3"];
    assert!(error.is_retryable());
    assert_eq!(error.error_type(), ERROR_INJECTED);
    assert_eq!(*attempts, 3);
    assert!(!run.results.contains_key("step_4"));
}

#[tokio::test]
async fn fail_permanently_names_one_step_only() {
    let run = run_template("tree.yaml", json!({"fail_permanently": "left"})).await;
    let (error, attempts) = &run.failures["left"];
    assert!(!error.is_retryable());
    assert_eq!(error.error_type(), ERROR_INJECTED);
    assert_eq!(*attempts, 1);
    // The other branch is not affected.
    assert_eq!(run.value("right_1"), 121);
    assert!(!run.results.contains_key("left_1"));
}

#[tokio::test(start_paused = true)]
async fn sleep_ms_sleeps_and_stops_when_cancelled() {
    let template = template("diamond.yaml");
    let context = json!({"sleep_ms": {"start": 60_000}});
    let make = |cancellation| {
        StepContext::new(
            claimed(&template, "start", 1, &context, Map::new()),
            cancellation,
        )
    };
    let body = bodies()
        .into_iter()
        .find(|(name, _)| *name == "examples.diamond.start")
        .unwrap()
        .1;
    let handler = Example { body, log: None };

    let started = tokio::time::Instant::now();
    let (_handle, cancellation) = Cancellation::new();
    handler.run(make(cancellation)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(60));

    let (handle, cancellation) = Cancellation::new();
    let ctx = make(cancellation);
    let started = tokio::time::Instant::now();
    let running = tokio::spawn(async move { handler.run(ctx).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.cancel(CancelReason::TaskCancelled);
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(error.error_type(), "cancelled");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_recording_handler_appends_one_line_per_execution_even_when_it_fails() {
    let template = template("diamond.yaml");
    let context = json!({"fail_times": {"start": 1}});
    let body = bodies()
        .into_iter()
        .find(|(name, _)| *name == "examples.diamond.start")
        .unwrap()
        .1;
    let path = std::env::temp_dir().join(format!("executions-{}.jsonl", uuid::Uuid::new_v4()));
    let handler = Example {
        body,
        log: Some(Arc::new(ExecutionLog::open(&path).unwrap())),
    };
    for attempt in 1..=2 {
        let (_handle, cancellation) = Cancellation::new();
        let ctx = StepContext::new(
            claimed(&template, "start", attempt, &context, Map::new()),
            cancellation,
        );
        let outcome = handler.run(ctx).await;
        assert_eq!(
            outcome.is_ok(),
            attempt == 2,
            "attempt {attempt}: {outcome:?}"
        );
    }
    let executions = ExecutionLog::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let attempts: Vec<u32> = executions.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2]);
    assert!(
        executions
            .iter()
            .all(|e| e.step == "start" && e.pid == std::process::id())
    );
}

fn run_step(file: &str, step: &str, context: Value, parents: Map<String, Value>) -> Value {
    run_instance(file, step, context, parents, None)
}

fn run_instance(
    file: &str,
    step: &str,
    context: Value,
    parents: Map<String, Value>,
    fan_out: Option<tasker_client::FanOutItems>,
) -> Value {
    let template = template(file);
    let def = template.steps.iter().find(|s| s.name == step).unwrap();
    let body = bodies()
        .into_iter()
        .find(|(name, _)| *name == def.handler)
        .unwrap()
        .1;
    let (_handle, cancellation) = Cancellation::new();
    let mut claimed = claimed(&template, step, 1, &context, parents);
    claimed.fan_out = fan_out;
    body(&StepContext::new(claimed, cancellation)).unwrap()
}

#[test]
fn order_routing_chooses_freight_from_thirty_kilograms() {
    for (kg, branch) in [
        (42.0, "ship_freight"),
        (30.0, "ship_freight"),
        (2.5, "ship_parcel"),
    ] {
        let result = run_step(
            "order_routing.yaml",
            "weigh_order",
            json!({ "weight_kg": kg }),
            Map::new(),
        );
        assert_eq!(result["branches"], json!([branch]), "{kg} kg");
    }
    let parents: Map<String, Value> = [
        ("ship_freight".to_owned(), json!({"carrier": "freight"})),
        ("ship_parcel".to_owned(), Value::Null),
    ]
    .into_iter()
    .collect();
    let notified = run_step(
        "order_routing.yaml",
        "notify_customer",
        json!({ "weight_kg": 42 }),
        parents,
    );
    assert_eq!(notified["carrier"], "freight");
}

#[test]
fn csv_import_reads_imports_chunks_and_sums_up() {
    let read = run_step(
        "csv_import.yaml",
        "read_csv",
        json!({"csv": "id,amount\n1,250\n2,100\n\n3,7\n"}),
        Map::new(),
    );
    let items = read["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1], json!({"id": "2", "amount": 100}));
    let chunk = run_instance(
        "csv_import.yaml",
        "import_rows",
        json!({}),
        Map::new(),
        Some(tasker_client::FanOutItems {
            number: 4,
            items: items.clone(),
        }),
    );
    assert_eq!(chunk, json!({"chunk": 4, "imported": 3, "total": 357}));
    let generated = run_step(
        "csv_import.yaml",
        "read_csv",
        json!({"rows": 250}),
        Map::new(),
    );
    assert_eq!(generated["items"].as_array().unwrap().len(), 250);
    let parents: Map<String, Value> = [(
        "import_rows".to_owned(),
        json!([chunk, {"chunk": 5, "imported": 2, "total": 3}]),
    )]
    .into_iter()
    .collect();
    let summary = run_step("csv_import.yaml", "summarize", json!({}), parents);
    assert_eq!(summary, json!({"chunks": 2, "imported": 5, "total": 360}));
}
