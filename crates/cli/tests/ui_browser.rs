//! The dashboard in a real headless browser (Chromium over WebDriver)
//! against a real `tasker server` with auth on and the example worker: a
//! task created through the API appears in the list, its page follows the
//! graph to complete without a reload, a failed step is retried from the
//! page, a visitor without a token lands on the login form, and a
//! read-only token sees no action buttons. The `ui` tier of scripts/test.
//!
//! `screenshots` (ignored; run by scripts/screenshots) renders each page
//! into docs/screenshots.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::browser::Browser;
use support::{Process, listening_url, tasker, wait_until};
use tasker_client::{Client, FailReport, NewTask, WorkerRegistration};
use tasker_model::TaskState;
use tasker_testkit::TestDatabase;

const ADMIN: &str = "ui-admin-token-0123456789";
const OPERATOR: &str = "ui-operator-token-0123456789";
const WORKER: &str = "ui-worker-token-0123456789";
const VIEWER: &str = "ui-viewer-token-0123456789";
const PATIENCE: Duration = Duration::from_secs(60);

struct Site {
    _db: TestDatabase,
    server: Process,
    url: String,
    admin: Client,
    worker: Option<Process>,
}

impl Site {
    async fn start() -> Site {
        let db = TestDatabase::create().await.expect("test database");
        let mut server = Process::start(
            "server",
            tasker()
                .args(["server", "--listen", "127.0.0.1:0", "--node-id", "ui-node"])
                .args(["--database-url", &db.url])
                .env("TASKER_AUTH_ENABLED", "true")
                .env("TASKER_AUTH_ADMIN_TOKENS", ADMIN)
                .env("TASKER_AUTH_OPERATOR_TOKENS", OPERATOR)
                .env("TASKER_AUTH_WORKER_TOKENS", WORKER)
                .env("TASKER_AUTH_VIEWER_TOKENS", VIEWER)
                .env("RUST_LOG", "warn"),
        );
        let url = listening_url(&server.wait_for_line("listening on ", PATIENCE));
        let admin = Client::new(&url, Some(ADMIN.to_owned())).unwrap();
        wait_until("server ready", PATIENCE, || async {
            admin.ready().await.ok().filter(|ready| ready.ready)
        })
        .await;
        // The example worker polls both namespaces.
        for namespace in ["examples", "orders"] {
            admin.namespace_create(namespace).await.unwrap();
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        for file in ["linear", "diamond"] {
            let yaml = std::fs::read_to_string(dir.join(format!("{file}.yaml"))).unwrap();
            admin.template_register_yaml(&yaml).await.unwrap();
        }
        Site {
            _db: db,
            server,
            url,
            admin,
            worker: None,
        }
    }

    fn start_worker(&mut self) {
        self.worker = Some(Process::start(
            "worker",
            tasker()
                .args(["worker", "example", "--server", &self.url])
                .args(["--worker-id", "ui-worker", "--concurrency", "2"])
                .args(["--shutdown-grace", "300ms"])
                .env("TASKER_TOKEN", WORKER)
                .env("RUST_LOG", "warn"),
        ));
    }

    fn page(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    async fn create(&self, template: &str, context: Value) -> uuid::Uuid {
        self.admin
            .task_create(&NewTask::new("examples", template).context(context))
            .await
            .unwrap()
            .0
            .id
    }

    /// Logs `browser` in with `token` through the form.
    async fn login(&self, browser: &Browser, token: &str) {
        browser.goto(&self.page("/ui/login")).await;
        let input = browser.find("#token").await;
        browser.type_into(&input, token).await;
        browser
            .click(&browser.find("form button[type=submit]").await)
            .await;
        wait_until("logged in", PATIENCE, || async {
            browser.url().await.ends_with("/ui").then_some(())
        })
        .await;
    }
}

/// The state of every step in the page's graph, by step name.
async fn graph_states(browser: &Browser) -> Value {
    browser
        .run(
            "const out = {}; document.querySelectorAll('svg.dag g.node').forEach(n => \
             out[n.dataset.step] = n.dataset.state); \
             const s = document.getElementById('task-state'); \
             out['(task)'] = s ? s.dataset.state : null; return out;",
            json!([]),
        )
        .await
}

#[tokio::test]
async fn visitors_log_in_read_only_tokens_see_no_actions_and_a_task_nobody_serves_is_explained() {
    let site = Site::start().await;
    let task = site
        .create(
            "linear",
            json!({"even_number": 2, "fail_permanently": "step_1"}),
        )
        .await;
    let browser = Browser::start(1280, 900).await;

    browser.goto(&site.page(&format!("/ui/tasks/{task}"))).await;
    assert!(
        browser.url().await.contains("/ui/login?next="),
        "sent to the login form: {}",
        browser.url().await
    );
    browser.find("input#token[type=password]").await;

    // A wrong token stays on the form with a message.
    browser
        .type_into(&browser.find("#token").await, "not-a-token")
        .await;
    browser
        .click(&browser.find("form button[type=submit]").await)
        .await;
    wait_until("error shown", PATIENCE, || async {
        (!browser.find_all("#login-error").await.is_empty()).then_some(())
    })
    .await;

    // The viewer token reads everything and is offered nothing to press.
    site.login(&browser, VIEWER).await;
    browser.goto(&site.page(&format!("/ui/tasks/{task}"))).await;
    browser.find("svg.dag").await;
    // No worker runs in this test: the page says so for the waiting step.
    let explained = browser
        .run(
            "return document.querySelector('#explain').textContent;",
            json!([]),
        )
        .await;
    let explained = explained.as_str().unwrap_or_default();
    assert!(
        explained.contains("Why is it waiting?")
            && explained.contains("No live worker serves namespace \"examples\""),
        "the explanation: {explained}"
    );
    for selector in [
        "form.action",
        "button.retry",
        "#cancel-task",
        "input[name=csrf]:not(.logout input)",
    ] {
        let found = browser
            .run(
                "return document.querySelectorAll(arguments[0]).length;",
                json!([selector]),
            )
            .await;
        assert_eq!(found, json!(0), "a viewer sees {selector}");
    }
    let role = browser
        .run(
            "return document.querySelector('header .role').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(role, json!("viewer (read-only)"));

    // Logging out ends the session: pages ask for a token again.
    browser
        .click(&browser.find("form.logout button").await)
        .await;
    wait_until("logged out", PATIENCE, || async {
        browser.url().await.contains("/ui/login").then_some(())
    })
    .await;
    browser.goto(&site.page("/ui/tasks")).await;
    assert!(browser.url().await.contains("/ui/login"));
    browser.quit().await;
}

#[tokio::test]
async fn a_task_advances_live_and_a_failed_step_is_retried_from_the_page() {
    let mut site = Site::start().await;
    let browser = Browser::start(1280, 900).await;
    site.login(&browser, OPERATOR).await;

    // Created through the API, it shows up in the list (which refreshes
    // itself in place).
    browser.goto(&site.page("/ui/tasks")).await;
    let sleepy = json!({"even_number": 2,
        "sleep_ms": {"step_1": 600, "step_2": 600, "step_3": 600, "step_4": 600}});
    let task = site.create("linear", sleepy).await;
    wait_until("task listed", PATIENCE, || async {
        let rows = browser.find_all(&format!("tr[data-task='{task}']")).await;
        (!rows.is_empty()).then_some(())
    })
    .await;

    // Its page follows it to the end without a reload: a marker set on
    // the page survives, and the graph passes through running steps.
    browser
        .click(&browser.find(&format!("a[href='/ui/tasks/{task}']")).await)
        .await;
    wait_until("task page", PATIENCE, || async {
        browser
            .url()
            .await
            .ends_with(&task.to_string())
            .then_some(())
    })
    .await;
    browser
        .run("window.__noReload = true; return null;", json!([]))
        .await;
    let before = graph_states(&browser).await;
    assert_eq!(before["(task)"], "running", "{before}");
    site.start_worker();
    let seen_running = std::cell::Cell::new(false);
    let done = wait_until("graph complete", PATIENCE, || async {
        let states = graph_states(&browser).await;
        if states.as_object()?.values().any(|s| s == "running") {
            seen_running.set(true);
        }
        (states["(task)"] == "complete").then_some(states)
    })
    .await;
    for step in ["step_1", "step_2", "step_3", "step_4"] {
        assert_eq!(done[step], "complete", "{done}");
    }
    assert!(
        seen_running.get(),
        "the graph showed a step running on its way"
    );
    let kept = browser
        .run("return window.__noReload === true;", json!([]))
        .await;
    assert_eq!(kept, json!(true), "the page was not reloaded");

    // A step that fails for good is retried from the page, and the task
    // then completes. The worker here is the test itself, speaking the
    // worker plane over HTTP: a retried step starts a fresh attempt budget,
    // so an example handler told to fail would fail again.
    site.admin.namespace_create("flaky").await.unwrap();
    site.admin
        .template_register_yaml(
            "namespace: flaky\nname: order\nversion: \"1\"\nsteps:\n\
             - { name: charge, handler: flaky.charge, retry: { max_attempts: 1 } }\n\
             - { name: ship, handler: flaky.ship, depends_on: [charge] }\n",
        )
        .await
        .unwrap();
    let worker = Client::new(&site.url, Some(WORKER.to_owned())).unwrap();
    worker
        .worker_register(&WorkerRegistration {
            worker_id: "by-hand".into(),
            namespaces: vec!["flaky".into()],
            handlers: Vec::new(),
            concurrency: 1,
            version: None,
        })
        .await
        .unwrap();
    let take = || async {
        let mut steps = worker
            .worker_poll("by-hand", &["flaky".to_owned()], 1, Duration::from_secs(20))
            .await
            .unwrap();
        steps.pop().expect("a step to take")
    };
    let failing = site
        .admin
        .task_create(&NewTask::new("flaky", "order"))
        .await
        .unwrap()
        .0
        .id;
    browser
        .goto(&site.page(&format!("/ui/tasks/{failing}")))
        .await;
    browser
        .run("window.__noReload = true; return null;", json!([]))
        .await;
    let charge = take().await;
    worker
        .step_fail(
            &charge.lease,
            &FailReport {
                retryable: false,
                error_type: "card_declined".into(),
                message: "the card was declined".into(),
                details: Value::Null,
            },
        )
        .await
        .unwrap();
    let retry = wait_until("retry button shown live", PATIENCE, || async {
        browser
            .find_all("#step-charge button.retry")
            .await
            .into_iter()
            .next()
    })
    .await;
    let text = browser
        .run(
            "return document.querySelector('#step-charge .step-error').textContent;",
            json!([]),
        )
        .await;
    assert!(
        text.as_str().unwrap().contains("the card was declined"),
        "{text}"
    );
    let kept = browser
        .run("return window.__noReload === true;", json!([]))
        .await;
    assert_eq!(kept, json!(true), "the failure arrived without a reload");
    browser.click(&retry).await;
    browser.accept_dialog().await;
    let charge = take().await;
    assert_eq!(
        charge.step_name, "charge",
        "the retried step is delivered again"
    );
    worker
        .step_complete(&charge.lease, &json!({"charged": true}))
        .await
        .unwrap();
    let ship = take().await;
    worker
        .step_complete(&ship.lease, &json!({"shipped": true}))
        .await
        .unwrap();
    let finished = wait_until("retried task complete", PATIENCE, || async {
        let states = graph_states(&browser).await;
        (states["(task)"] == "complete").then_some(states)
    })
    .await;
    assert_eq!(finished["charge"], "complete", "{finished}");
    assert_eq!(finished["ship"], "complete", "{finished}");
    let task = site.admin.task_get(failing).await.unwrap();
    assert_eq!(task.state, TaskState::Complete);
    browser.quit().await;
    drop(site.server);
}

async fn shoot(browser: &Browser, dir: &std::path::Path, name: &str) {
    std::fs::write(dir.join(format!("{name}.png")), browser.screenshot().await).unwrap();
}

/// Renders every page into `TASKER_SCREENSHOTS_DIR` (scripts/screenshots
/// sets it to docs/screenshots). Ignored: it proves nothing a test above
/// does not, and writes files.
#[tokio::test]
#[ignore = "writes the documentation's screenshots; run by scripts/screenshots"]
async fn screenshots() {
    let dir = std::path::PathBuf::from(
        std::env::var("TASKER_SCREENSHOTS_DIR")
            .expect("TASKER_SCREENSHOTS_DIR names the output directory"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut site = Site::start().await;
    site.start_worker();
    let done = site.create("diamond", json!({"even_number": 2})).await;
    let failed = site
        .create(
            "linear",
            json!({"even_number": 4, "fail_permanently": "step_3"}),
        )
        .await;
    for n in [6, 8, 10] {
        site.create("linear", json!({"even_number": n})).await;
    }
    let running = site
        .create(
            "linear",
            json!({"even_number": 2, "sleep_ms": {"step_2": 600000}}),
        )
        .await;
    reqwest::Client::new()
        .post(site.page("/v1/schedules"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "nightly-linear", "namespace": "examples", "template": "linear",
                      "context": {"even_number": 2}, "cron": "0 2 * * *", "time_zone": "Europe/Berlin"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    for (id, state) in [(done, TaskState::Complete), (failed, TaskState::Failed)] {
        wait_until("example task finished", PATIENCE, || async {
            let task = site.admin.task_get(id).await.ok()?;
            (task.state == state).then_some(())
        })
        .await;
    }
    wait_until("a step running", PATIENCE, || async {
        let steps = site.admin.task_steps(running).await.ok()?;
        steps
            .iter()
            .any(|s| s.state == tasker_model::StepState::Running)
            .then_some(())
    })
    .await;

    let browser = Browser::start(1280, 1000).await;
    browser.goto(&site.page("/ui/login")).await;
    shoot(&browser, &dir, "login").await;
    site.login(&browser, OPERATOR).await;
    let pages = [
        ("/ui".to_owned(), "overview"),
        ("/ui/tasks".to_owned(), "tasks"),
        (format!("/ui/tasks/{running}"), "task-running"),
        (format!("/ui/tasks/{failed}"), "task-failed"),
        (format!("/ui/tasks/{done}"), "task-complete"),
        ("/ui/templates".to_owned(), "templates"),
        ("/ui/templates/examples/diamond".to_owned(), "template"),
        ("/ui/dead-letters".to_owned(), "dead-letters"),
        ("/ui/schedules".to_owned(), "schedules"),
    ];
    for (path, name) in &pages {
        browser.goto(&site.page(path)).await;
        shoot(&browser, &dir, name).await;
    }
    browser.quit().await;
    let narrow = Browser::start(400, 900).await;
    site.login(&narrow, VIEWER).await;
    narrow
        .goto(&site.page(&format!("/ui/tasks/{failed}")))
        .await;
    shoot(&narrow, &dir, "task-narrow").await;
    narrow.quit().await;
}
