//! `tasker task create --from-file`: tasks from a JSON Lines file against a
//! real server, in batches, each line answered on its own.

mod support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::json;
use support::{Server, tasker};
use tasker_client::TaskFilter;
use tasker_testkit::TestDatabase;

const LINEAR: &str = "name: linear\nversion: \"1\"\nsteps:\n  - { name: a, handler: h.a }\n  - { name: b, handler: h.b, depends_on: [a] }\n";

/// Runs `command`, feeding `stdin` to it.
fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasker");
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_owned();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for tasker");
    feeder.join().unwrap();
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn task_count(client: &tasker_client::Client) -> usize {
    let mut count = 0;
    let mut filter = TaskFilter {
        limit: Some(500),
        ..TaskFilter::default()
    };
    loop {
        let page = client.task_list(&filter).await.unwrap();
        count += page.tasks.len();
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return count,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_tasks_is_created_in_batches_and_each_line_answered() {
    let db = TestDatabase::create().await.unwrap();
    let server = Server::start(&db.url);
    let client = server.client();
    client.template_register_yaml(LINEAR).await.unwrap();

    // 1,500 tasks (two requests), a line whose key an earlier line holds,
    // a line naming no template that exists, a blank line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.jsonl");
    let mut lines: Vec<String> = (0..1500)
        .map(|i| {
            json!({"template": "linear", "context": {"i": i}, "idempotency_key": format!("k{i}")})
                .to_string()
        })
        .collect();
    lines.push(String::new());
    lines.push(
        json!({"template": "linear", "context": {"i": 7}, "idempotency_key": "k7"}).to_string(),
    );
    lines.push(json!({"template": "linaer"}).to_string());
    std::fs::write(&path, lines.join("\n")).unwrap();

    let output = run(
        tasker()
            .args(["task", "create", "--from-file"])
            .arg(&path)
            .args(["--server", &server.url]),
        "",
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(1),
        "a line failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("created 1500, existing 1, failed 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 1503: not_found: template default/linaer not found"),
        "{stdout}"
    );
    assert!(stderr.contains("sent 1000 of 1502 tasks"), "{stderr}");
    assert!(stderr.contains("sent 1502 of 1502 tasks"), "{stderr}");
    assert_eq!(task_count(&client).await, 1500);

    // Again from standard input, as JSON: the keys name the tasks of the
    // first run, a new line creates.
    let input = format!(
        "{}\n{}\n",
        json!({"template": "linear", "context": {"i": 0}, "idempotency_key": "k0"}),
        json!({"template": "linear", "context": {"new": true}, "tags": ["x"]}),
    );
    let output = run(
        tasker()
            .args(["task", "create", "--from-file", "-", "-o", "json"])
            .args(["--server", &server.url]),
        &input,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (
            reply["created"].as_u64(),
            reply["existing"].as_u64(),
            reply["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results[0]["line"], 1);
    assert_eq!(results[0]["created"], false);
    assert_eq!(results[0]["task"]["idempotency_key"], "k0");
    assert_eq!(results[1]["line"], 2);
    assert_eq!(results[1]["created"], true);
    assert_eq!(results[1]["task"]["tags"], json!(["x"]));
    let id = results[1]["task"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        client.task_get(id).await.unwrap().context,
        json!({"new": true})
    );

    // A malformed line: reported with its number, exit 2, nothing sent.
    let input = format!(
        "{}\n{{\"template\": \"linear\", \"contxt\": {{}}}}\n",
        json!({"template": "linear", "context": {"never": true}})
    );
    let output = run(
        tasker()
            .args(["task", "create", "--from-file", "-"])
            .args(["--server", &server.url]),
        &input,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("standard input line 2: not a task: unknown field `contxt`"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(
        task_count(&client).await,
        1501,
        "the good line was not sent either"
    );
}
