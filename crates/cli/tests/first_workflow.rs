//! docs/first-workflow.md, run for real: a `tasker server` process on a
//! fresh database, the guide's `tasker` commands, its Python worker as a
//! `python3` process, and its Rust worker (the very file the guide shows,
//! compiled into this test). Every command run here must appear in the guide
//! word for word, and the files the guide quotes must match the files in
//! docs/first-workflow/, so the guide cannot drift from what works.

mod support;

#[allow(dead_code)]
#[path = "../../../docs/first-workflow/rust_worker.rs"]
mod rust_worker;

use std::process::Command;
use std::time::Duration;

use support::{Process, Server, repo_root, tasker};
use tasker_model::{StepState, TaskState};
use tasker_testkit::TestDatabase;
use uuid::Uuid;

fn guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/first-workflow.md")).unwrap()
}

/// Runs a command of the guide (`{}` stands for its `<task-id>` or
/// `<step-id>`), checking first that the guide shows it.
struct Guide {
    text: String,
    server: String,
}

impl Guide {
    fn command(&self, shown: &str, id: Option<Uuid>) -> Command {
        assert!(
            self.text.contains(shown),
            "docs/first-workflow.md no longer shows `{shown}`"
        );
        let line = match id {
            Some(id) => shown
                .replace("<task-id>", &id.to_string())
                .replace("<step-id>", &id.to_string()),
            None => shown.to_owned(),
        };
        let words = shell_words(&line);
        assert_eq!(words[0], "tasker", "{line}");
        let mut command = tasker();
        command.args(&words[1..]).env("TASKER_SERVER", &self.server);
        command
    }

    /// Runs it to the end; returns (exit code, stdout + stderr).
    fn run(&self, shown: &str, id: Option<Uuid>) -> (i32, String) {
        let output = self
            .command(shown, id)
            .output()
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("$ {shown}\n{text}");
        (output.status.code().unwrap_or(-1), text)
    }

    fn ok(&self, shown: &str, id: Option<Uuid>) -> String {
        let (code, text) = self.run(shown, id);
        assert_eq!(code, 0, "{shown}: {text}");
        text
    }

    /// `tasker task create ...`: the new task's id.
    fn create(&self, shown: &str) -> Uuid {
        let text = self.ok(shown, None);
        let id = text
            .split_whitespace()
            .skip_while(|word| *word != "task")
            .nth(1)
            .unwrap_or_else(|| panic!("no task id in {text:?}"));
        id.parse().unwrap()
    }

    /// `tasker task watch <task-id>`: its exit code, within a minute.
    fn watch(&self, task: Uuid) -> i32 {
        let mut watch = Process::start(
            "task watch",
            &mut self.command("tasker task watch <task-id>", Some(task)),
        );
        let status = watch.wait_exit(Duration::from_secs(60));
        status.code().unwrap_or(-1)
    }
}

/// Splits a command line of the guide the way a shell would: words, and
/// single-quoted words.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("closing quote");
            words.push(quoted[..end].to_owned());
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    words
}

fn python3() -> String {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => "python3".to_owned(),
        _ => panic!(
            "python3 is not installed: this test runs the Python worker of docs/first-workflow.md \
             (install python3, e.g. apt-get install python3)"
        ),
    }
}

#[test]
fn the_guide_quotes_the_files_it_uses_as_they_are() {
    let guide = guide();
    let dir = repo_root().join("docs/first-workflow");
    for file in ["welcome.yaml", "rust_worker.rs"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            guide.contains(&text),
            "docs/first-workflow.md does not show {file} as it is"
        );
    }
    let python = std::fs::read_to_string(dir.join("worker.py")).unwrap();
    let block = guide
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block");
    assert!(
        python.contains(block),
        "the handler the guide shows is not the one in worker.py:\n{block}"
    );
}

#[test]
fn the_guide_documents_every_context_key_of_the_example_handlers() {
    let guide = guide();
    let dir = repo_root().join("crates/worker/src");
    let mut sources = vec![std::fs::read_to_string(dir.join("examples.rs")).unwrap()];
    for entry in std::fs::read_dir(dir.join("examples")).unwrap() {
        sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut keys = Vec::new();
    for source in &sources {
        for pattern in ["context[\"", "context()[\""] {
            for (at, _) in source.match_indices(pattern) {
                let rest = &source[at + pattern.len()..];
                keys.push(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    keys.sort();
    keys.dedup();
    for switch in ["sleep_ms", "fail_times", "fail_permanently", "panic"] {
        assert!(keys.iter().any(|k| k == switch), "{keys:?}");
    }
    for key in &keys {
        assert!(
            guide.contains(&format!("`{key}`")),
            "docs/first-workflow.md does not document the context key `{key}` that the example handlers read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_workflow_guide_runs_as_written() {
    let python = python3();
    let db = TestDatabase::create().await.unwrap();
    let server = Server::start(&db.url);
    let client = server.client();
    let guide = Guide {
        text: guide(),
        server: server.url.clone(),
    };

    // 2. and 3.
    let out = guide.ok("tasker namespace create shop", None);
    assert!(out.contains("shop"), "{out}");
    guide.ok(
        "tasker template validate docs/first-workflow/welcome.yaml",
        None,
    );
    let out = guide.ok(
        "tasker template register docs/first-workflow/welcome.yaml",
        None,
    );
    assert!(out.contains("shop/welcome@1"), "{out}");

    // 4. The Python worker, as a process.
    let shown = "python3 docs/first-workflow/worker.py";
    assert!(guide.text.contains(shown));
    let mut py = Process::start(
        "worker.py",
        Command::new(&python)
            .arg("docs/first-workflow/worker.py")
            .current_dir(repo_root())
            .env("TASKER_SERVER", &server.url),
    );
    py.wait_for_line("taking steps of shop", Duration::from_secs(30));

    // 5. The Rust worker: the guide's code, run in this process.
    assert!(
        guide
            .text
            .contains("cargo run -p tasker-cli --example first-workflow-worker")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rust = rust_worker::welcome_worker(tasker_worker::Worker::builder(client.clone()))
        .build()
        .unwrap();
    let rust = tokio::spawn(rust.run(async {
        let _ = stopped.await;
    }));

    // 6. Run it and watch it.
    let task = guide.create(r#"tasker task create shop/welcome --context '{"name": "Ada"}'"#);
    assert_eq!(tokio_watch(&guide, task).await, 0);
    let out = guide.ok("tasker task get <task-id>", Some(task));
    assert!(out.contains("complete"), "{out}");
    let steps = client.task_steps(task).await.unwrap();
    assert_eq!(steps[1].name, "shout");
    assert_eq!(steps[1].result.as_ref().unwrap()["message"], "HELLO, ADA!");

    // 7. A retryable failure, retried by itself.
    let task = guide
        .create(r#"tasker task create shop/welcome --context '{"name": "Ada", "fail_times": 1}'"#);
    assert_eq!(tokio_watch(&guide, task).await, 0);
    let greet = &client.task_steps(task).await.unwrap()[0];
    assert_eq!((greet.state, greet.attempt), (StepState::Complete, 2));
    let history = client.task_history(task).await.unwrap();
    assert!(
        history.iter().any(|t| t.to_state == "retrying"),
        "{history:?}"
    );

    // Every attempt fails; the step is resolved by hand.
    let task = guide
        .create(r#"tasker task create shop/welcome --context '{"name": "Ada", "fail_times": 3}'"#);
    assert_eq!(tokio_watch(&guide, task).await, 1);
    let out = guide.ok("tasker task get <task-id>", Some(task));
    assert!(out.contains("failed"), "{out}");
    let steps = client.task_steps(task).await.unwrap();
    let greet = steps[0].clone();
    assert_eq!((greet.state, greet.attempt), (StepState::Failed, 3));
    assert_eq!(greet.error.as_ref().unwrap().error_type, "flaky_greeting");
    assert_eq!(steps[1].state, StepState::Pending);
    guide.ok(
        r#"tasker step resolve <step-id> --result '{"greeting": "Hello, stranger!"}'"#,
        Some(greet.id),
    );
    assert_eq!(tokio_watch(&guide, task).await, 0);
    let steps = client.task_steps(task).await.unwrap();
    assert_eq!(
        steps[1].result.as_ref().unwrap()["message"],
        "HELLO, STRANGER!"
    );

    // A permanent failure: no further attempts.
    let task = guide.create(r#"tasker task create shop/welcome --context '{"name": ""}'"#);
    assert_eq!(tokio_watch(&guide, task).await, 1);
    let greet = client.task_steps(task).await.unwrap()[0].clone();
    assert_eq!((greet.state, greet.attempt), (StepState::Failed, 1));
    assert_eq!(greet.error.as_ref().unwrap().error_type, "invalid_name");
    assert_eq!(
        client.task_get(task).await.unwrap().state,
        TaskState::Failed
    );

    // 8. The example worker's switches, with the example templates.
    for namespace in ["examples", "orders"] {
        client.namespace_create(namespace).await.unwrap();
    }
    for file in ["linear", "diamond", "order_fulfillment"] {
        let yaml =
            std::fs::read_to_string(repo_root().join(format!("templates/{file}.yaml"))).unwrap();
        client.template_register_yaml(&yaml).await.unwrap();
    }
    let _examples = Process::start(
        "worker example",
        tasker()
            .args(["worker", "example", "--server", &server.url])
            .env("RUST_LOG", "warn"),
    );
    let linear = guide.create(
        r#"tasker task create examples/linear --context '{"even_number": 2, "fail_times": {"step_2": 2}}'"#,
    );
    let order = guide.create(
        r#"tasker task create orders/order_fulfillment --context '{"order_id": "o-1", "customer_email": "ada@example.com", "items": [{"sku": "tea", "quantity": 2, "unit_price_cents": 450}]}'"#,
    );
    let diamond = guide.create(
        r#"tasker task create examples/diamond --context '{"sleep_ms": {"branch_b": 60000}}'"#,
    );
    assert_eq!(tokio_watch(&guide, linear).await, 0);
    let step_2 = client.task_steps(linear).await.unwrap()[1].clone();
    assert_eq!(step_2.attempt, 3, "failed twice, then succeeded");
    assert_eq!(tokio_watch(&guide, order).await, 0);
    support::wait_for_step(&client, diamond, "branch_b", StepState::Running).await;

    // Both workers stop cleanly.
    py.signal("INT");
    assert!(
        py.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        py.output()
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), rust)
        .await
        .expect("the Rust worker stops")
        .unwrap()
        .unwrap();
}

/// `task watch` blocks its thread; keep the runtime (and the in-process
/// worker) going meanwhile.
async fn tokio_watch(guide: &Guide, task: Uuid) -> i32 {
    let guide = Guide {
        text: guide.text.clone(),
        server: guide.server.clone(),
    };
    tokio::task::spawn_blocking(move || guide.watch(task))
        .await
        .unwrap()
}
