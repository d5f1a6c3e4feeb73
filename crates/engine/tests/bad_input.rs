//! Bad input gets typed errors naming the problem, and writes nothing.

mod support;

use serde_json::json;
use support::{LINEAR, Rows, harness, harness_with, template};
use tasker_engine::{EngineConfig, Error, NewTask};
use tasker_store::Error as StoreError;

async fn row_counts(h: &support::Harness) -> (i64, i64, i64, i64) {
    (
        h.count(Rows::Templates).await,
        h.count(Rows::Tasks).await,
        h.count(Rows::Steps).await,
        h.count(Rows::Transitions).await,
    )
}

#[tokio::test]
async fn malformed_and_invalid_templates_are_refused_with_every_issue() {
    let h = harness().await;
    let before = row_counts(&h).await;

    let err = h
        .engine
        .template_register_yaml("name: [unclosed")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "template_parse", "{err}");

    let cyclic = template(
        "default",
        "cyclic",
        "  - { name: a, handler: h, depends_on: [c] }\n  - { name: b, handler: h, depends_on: [a] }\n  - { name: c, handler: h, depends_on: [b, ghost] }\n",
    );
    let err = h.engine.template_register_yaml(&cyclic).await.unwrap_err();
    assert_eq!(err.code(), "template_invalid");
    let text = err.to_string();
    assert!(text.contains("unknown step \"ghost\""), "{text}");
    assert!(text.contains("steps[2].depends_on[1]"), "{text}");
    assert!(text.contains("dependency cycle"), "{text}");

    let bad_schema = "name: s\nversion: \"1\"\ncontext_schema: { type: 12 }\nsteps:\n  - { name: a, handler: h }\n";
    let err = h
        .engine
        .template_register_yaml(bad_schema)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("context_schema"), "{err}");

    assert_eq!(row_counts(&h).await, before, "nothing written");
}

#[tokio::test]
async fn registration_is_idempotent_and_conflicts_on_changed_content() {
    let h = harness().await;
    let yaml = template("default", "linear", LINEAR);
    let (first, created) = h.engine.template_register_yaml(&yaml).await.unwrap();
    assert!(created);
    let (again, created) = h.engine.template_register_yaml(&yaml).await.unwrap();
    assert!(!created);
    assert_eq!(first.id, again.id);
    let changed = yaml.replace("handler: h.d", "handler: h.other");
    let err = h.engine.template_register_yaml(&changed).await.unwrap_err();
    assert_eq!(err.code(), "template_conflict");
    assert!(err.to_string().contains("default/linear@1"), "{err}");
}

#[tokio::test]
async fn context_must_match_the_schema() {
    let h = harness().await;
    h.engine.namespace_create("orders").await.unwrap();
    h.engine
        .template_register_yaml(include_str!("../../../templates/order_fulfillment.yaml"))
        .await
        .unwrap();
    let before = row_counts(&h).await;
    let err = h
        .engine
        .task_create(NewTask {
            namespace: "orders".into(),
            template: "order_fulfillment".into(),
            context: json!({"order_id": 7, "items": []}),
            ..NewTask::default()
        })
        .await
        .unwrap_err();
    let Error::ContextInvalid { issues, .. } = &err else {
        panic!("expected ContextInvalid, got {err:?}");
    };
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"context/order_id"), "{paths:?}");
    assert!(paths.contains(&"context/items"), "{paths:?}");
    assert_eq!(row_counts(&h).await, before);
}

#[tokio::test]
async fn unknown_template_namespace_and_ids_are_not_found() {
    let h = harness().await;
    let err = h
        .engine
        .task_create(NewTask {
            namespace: "default".into(),
            template: "nope".into(),
            ..NewTask::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::NotFound { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("default/nope"), "{err}");

    let err = h.engine.step_claim("ghosts", "w", 1).await.unwrap_err();
    assert!(err.to_string().contains("namespace \"ghosts\""), "{err}");

    let yaml = template("nowhere", "t", "  - { name: a, handler: h }\n");
    let err = h.engine.template_register_yaml(&yaml).await.unwrap_err();
    assert_eq!(err.code(), "not_found");

    let err = h.engine.task_get(uuid::Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    let err = h.engine.step_retry(uuid::Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.code(), "not_found");

    let err = h.engine.namespace_create("Bad-Name").await.unwrap_err();
    assert_eq!(err.code(), "invalid");
}

#[tokio::test]
async fn oversized_context_and_result_are_refused() {
    let h = harness_with(EngineConfig {
        max_payload_bytes: 1_000,
        ..EngineConfig::default()
    })
    .await;
    h.register(&template("default", "linear", LINEAR)).await;
    let before = row_counts(&h).await;
    let big = json!({"blob": "x".repeat(2_000)});
    let err = h
        .engine
        .task_create(NewTask {
            namespace: "default".into(),
            template: "linear".into(),
            context: big.clone(),
            ..NewTask::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PayloadTooLarge {
                what: "context",
                limit: 1_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(row_counts(&h).await, before);

    let task = h.create("default", "linear", json!({})).await;
    let a = h.claim_one("default").await;
    let err = h.engine.step_complete(a.lease, big).await.unwrap_err();
    assert_eq!(err.code(), "payload_too_large");
    let steps = h.engine.task_steps(task.id).await.unwrap();
    assert_eq!(
        steps[0].state,
        tasker_model::StepState::Running,
        "still running"
    );
    assert!(steps[0].result.is_none());
}

#[tokio::test]
async fn nul_characters_are_refused_naming_where_they_are() {
    let h = harness().await;
    h.engine
        .template_register_yaml(&template("default", "linear", LINEAR))
        .await
        .unwrap();
    let before = row_counts(&h).await;
    let create = |context: serde_json::Value, key: Option<&str>, tags: Vec<&str>| NewTask {
        namespace: "default".into(),
        template: "linear".into(),
        context,
        idempotency_key: key.map(str::to_owned),
        tags: tags.into_iter().map(str::to_owned).collect(),
        ..NewTask::default()
    };
    let field = |err: Error| match err {
        Error::Invalid { field, .. } => field,
        other => panic!("not an invalid-field error: {other:?}"),
    };
    let err = h
        .engine
        .task_create(create(
            json!({"customer": {"name": "a\u{0}"}}),
            None,
            vec![],
        ))
        .await
        .unwrap_err();
    assert_eq!(field(err), "context.customer.name");
    let err = h
        .engine
        .task_create(create(json!({}), Some("k\u{0}"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(field(err), "idempotency_key");
    let err = h
        .engine
        .task_create(create(json!({}), None, vec!["ok", "\u{0}"]))
        .await
        .unwrap_err();
    assert_eq!(field(err), "tags[1]");
    let err = h
        .engine
        .task_create(create(json!("a string"), None, vec![]))
        .await
        .unwrap_err();
    assert_eq!(field(err), "context");

    // Template strings, YAML included ("\0" is YAML's escape for NUL).
    let yaml = template(
        "default",
        "nul",
        "  - { name: a, handler: h, config: { note: \"x\\0y\" } }\n",
    );
    let err = h.engine.template_register_yaml(&yaml).await.unwrap_err();
    assert_eq!(field(err), "steps[0].config.note");
    let err = h.engine.namespace_create("a\u{0}").await.unwrap_err();
    assert_eq!(err.code(), "invalid");

    let err = h
        .engine
        .step_poll(
            "w\u{0}",
            &["default".into()],
            &[],
            1,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap_err();
    assert_eq!(field(err), "worker_id");
    assert_eq!(row_counts(&h).await, before, "nothing written");
}
