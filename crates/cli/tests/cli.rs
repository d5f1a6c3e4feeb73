//! The `tasker` binary as a user runs it: configuration layering, offline
//! template validation, and a server on a fresh database driven through the
//! other commands, shut down by SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-admin-token-0123456789";
/// Longest any one command may take before the test gives up on it.
const COMMAND_PATIENCE: Duration = Duration::from_secs(60);

/// The binary with a clean slate: no `TASKER_*` variable of the caller's
/// environment leaks in, and the shell's own configuration is ignored.
fn tasker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TASKER_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        self
    }
}

/// Runs `command` to the end (at most [`COMMAND_PATIENCE`]).
fn run(command: &mut Command) -> Ran {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasker");
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = finished
        .recv_timeout(COMMAND_PATIENCE)
        .unwrap_or_else(|_| panic!("{command:?} did not finish in {COMMAND_PATIENCE:?}"))
        .expect("wait for tasker");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates")
}

fn shipped_templates() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(templates_dir())
        .expect("templates directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no templates shipped");
    files
}

#[test]
fn config_show_layers_environment_and_flags_over_the_defaults() {
    let ran = run(tasker()
        .args(["config", "show", "--output", "json", "--node-id", "flagged"])
        .env("TASKER_SERVER_LISTEN", "0.0.0.0:9999")
        .env("TASKER_SERVER_NODE_ID", "from-env")
        .env("TASKER_ENGINE_LEASE_DURATION", "45s")
        .env("TASKER_AUTH_ADMIN_TOKENS", format!("{TOKEN},{TOKEN}-two"))
        .env("TASKER_DATABASE_URL", "postgres://app:hunter2@db/tasker"))
    .ok();
    let config = ran.json();
    assert_eq!(config["server"]["listen"], "0.0.0.0:9999");
    assert_eq!(config["server"]["node_id"], "flagged", "flags beat env");
    assert_eq!(config["engine"]["lease_duration"], "45s");
    assert_eq!(config["engine"]["max_poll_wait"], "30s", "default kept");
    assert_eq!(
        config["auth"]["admin_tokens"],
        serde_json::json!(["<redacted>", "<redacted>"])
    );
    assert_eq!(
        config["database"]["url"],
        "postgres://app:<redacted>@db/tasker"
    );
    assert!(!ran.stdout.contains("hunter2") && !ran.stdout.contains(TOKEN));

    // The TOML form reads back as the same configuration.
    let toml_out = run(tasker()
        .args(["config", "show"])
        .env("TASKER_AUTH_ENABLED", "false"))
    .ok();
    assert!(
        toml_out
            .stdout
            .contains("[engine]\nlease_duration = \"30s\""),
        "{toml_out:?}"
    );
}

#[test]
fn a_bad_configuration_value_exits_2_naming_the_key() {
    let ran = run(tasker()
        .args(["server"])
        .env("TASKER_AUTH_ENABLED", "false")
        .env("TASKER_ENGINE_LEASE_DURATION", "0s"));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr
            .contains("engine.lease_duration: \"0s\" must be at least 1s"),
        "{ran:?}"
    );

    let ran = run(tasker().args(["server"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("auth.admin_tokens"), "{ran:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tasker.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 2\n",
    )
    .unwrap();
    let ran = run(tasker().args(["config", "show", "--config"]).arg(&file));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("server.listen_port"), "{ran:?}");
}

#[test]
fn template_validate_accepts_every_shipped_template() {
    for file in shipped_templates() {
        let ran = run(tasker().args(["template", "validate"]).arg(&file)).ok();
        assert!(ran.stdout.contains(": ok ("), "{file:?}: {ran:?}");
    }
}

#[test]
fn template_validate_reports_each_problem_with_its_path_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "namespace: examples\nname: broken\nversion: \"1\"\nsteps:\n  \
         - { name: a, handler: h.a, depends_on: [nowhere] }\n  \
         - { name: b, handler: h.b, depends_on: [b] }\n",
    )
    .unwrap();
    let ran = run(tasker()
        .args(["template", "validate"])
        .arg(&broken)
        .arg(templates_dir().join("linear.yaml")));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let shown = broken.display().to_string();
    let problems: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{shown}: steps[")))
        .collect();
    assert!(problems.len() >= 2, "every problem, with its path: {ran:?}");
    assert!(ran.stdout.contains("nowhere"), "{ran:?}");
    assert!(
        ran.stdout.contains("linear.yaml: ok"),
        "the valid file too: {ran:?}"
    );

    let json = run(tasker()
        .args(["template", "validate", "--output", "json"])
        .arg(&broken));
    assert_eq!(json.code, Some(1));
    assert_eq!(json.json()[0]["valid"], false);
}

#[test]
fn usage_errors_exit_2() {
    let ran = run(tasker().args(["task", "list", "--state", "done"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    let ran = run(tasker().args(["task", "create", "examples/linear", "--context", "{oops"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("--context is not valid JSON"),
        "{ran:?}"
    );
}

#[test]
fn an_unreachable_server_exits_3() {
    let ran = run(tasker().args(["namespace", "list", "--server", "http://127.0.0.1:9"]));
    assert_eq!(ran.code, Some(3), "{ran:?}");
    assert!(
        ran.stderr.contains("--server"),
        "says how to name the server: {ran:?}"
    );
}

/// A child process killed when the test ends, however it ends.
struct Background {
    name: &'static str,
    child: Child,
    stderr: PathBuf,
}

impl Background {
    fn start(name: &'static str, command: &mut Command, dir: &Path) -> Self {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn tasker");
        Self {
            name,
            child,
            stderr,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The first stdout line containing `marker`, within `patience`.
    fn wait_for_line(&mut self, marker: &str, patience: Duration) -> String {
        let stdout = self.child.stdout.take().expect("stdout piped");
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} printed no \"{marker}\" within {patience:?}; stderr:\n{}",
                    self.name,
                    self.logs()
                ),
            }
        }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self, patience: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {patience:?} of SIGTERM; stderr:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client command against `server`, as the admin.
fn client(server: &str) -> Command {
    let mut command = tasker();
    command
        .env("TASKER_SERVER", server)
        .env("TASKER_TOKEN", TOKEN);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_a_fresh_database_serves_the_commands_and_stops_on_sigterm() {
    // An empty database: the server's own start-up migrates it.
    let db = tasker_testkit::TestDatabase::create()
        .await
        .expect("test database (set TASKER_TEST_DATABASE_URL)");
    let dir = tempfile::tempdir().unwrap();
    let mut server = Background::start(
        "server",
        tasker()
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .env("TASKER_AUTH_ADMIN_TOKENS", TOKEN)
            .env("TASKER_ENGINE_POLL_RECHECK_INTERVAL", "200ms"),
        dir.path(),
    );
    let line = server.wait_for_line("listening on http://", Duration::from_secs(60));
    let address = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("address")
        .to_owned();

    for namespace in ["examples", "orders"] {
        let ran = run(client(&address).args(["namespace", "create", namespace])).ok();
        assert_eq!(ran.stdout, format!("created namespace {namespace}\n"));
    }
    let ran = run(client(&address).args(["namespace", "list", "-o", "json"])).ok();
    let listed = ran.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "examples", "orders"], "{ran:?}");

    let ran = run(client(&address)
        .args(["template", "register"])
        .args(shipped_templates()))
    .ok();
    assert_eq!(
        ran.stdout.matches("registered ").count(),
        shipped_templates().len(),
        "{ran:?}"
    );
    let ran = run(client(&address)
        .args(["template", "register"])
        .arg(templates_dir().join("linear.yaml")))
    .ok();
    assert!(
        ran.stdout.starts_with("unchanged"),
        "identical content is a no-op: {ran:?}"
    );

    // Create, get, list, cancel.
    let created = run(client(&address).args([
        "task",
        "create",
        "examples/linear@1",
        "--context",
        r#"{"even_number": 2}"#,
        "--tag",
        "cli-test",
        "--idempotency-key",
        "first",
        "--output",
        "json",
    ]))
    .ok()
    .json();
    let id = created["id"].as_str().expect("task id").to_owned();
    assert_eq!(created["state"], "running");

    let task = run(client(&address).args(["task", "get", &id, "--output", "json"]))
        .ok()
        .json();
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["template_name"], "linear");
    assert_eq!(task["tags"], serde_json::json!(["cli-test"]));
    assert_eq!(task["steps"].as_array().map(Vec::len), Some(4));

    let listed = run(client(&address).args(["task", "list", "--namespace", "examples"])).ok();
    assert!(listed.stdout.starts_with("ID"), "a table: {listed:?}");
    assert!(listed.stdout.contains(&id), "{listed:?}");

    let ran = run(client(&address).args(["task", "cancel", &id, "--reason", "testing"])).ok();
    assert_eq!(ran.stdout, format!("task {id} is cancelled\n"));
    let task = run(client(&address).args(["task", "get", &id, "-o", "json"]))
        .ok()
        .json();
    assert_eq!(task["state"], "cancelled");

    // Exit codes scripts rely on.
    let again = run(client(&address).args(["task", "cancel", &id]));
    assert_eq!(
        again.code,
        Some(5),
        "a finished task cannot be cancelled: {again:?}"
    );
    let missing =
        run(client(&address).args(["task", "get", "00000000-0000-0000-0000-000000000000"]));
    assert_eq!(missing.code, Some(4), "{missing:?}");
    let invalid = run(client(&address).args([
        "task",
        "create",
        "examples/linear",
        "--context",
        r#"{"even_number": 3}"#,
    ]));
    assert_eq!(
        invalid.code,
        Some(2),
        "context against the schema: {invalid:?}"
    );
    assert!(invalid.stderr.contains("even_number"), "{invalid:?}");
    let unauthorized = run(client(&address)
        .args(["task", "list"])
        .env("TASKER_TOKEN", "not-a-token-at-all"));
    assert_eq!(unauthorized.code, Some(1), "{unauthorized:?}");

    // A worker runs tasks to the end, and watch follows them.
    let mut worker = Background::start(
        "worker",
        client(&address).args(["worker", "example", "--concurrency", "2"]),
        dir.path(),
    );
    let good = run(client(&address).args(["task", "create", "examples/diamond", "-o", "json"]))
        .ok()
        .json();
    let watched = run(client(&address).args(["task", "watch", good["id"].as_str().unwrap()]));
    assert_eq!(
        watched.code,
        Some(0),
        "a completed task: {watched:?}\nworker:\n{}",
        worker.logs()
    );
    let last = watched.stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("complete"),
        "ends with the task's state: {watched:?}"
    );
    assert!(watched.stdout.contains("step end complete"), "{watched:?}");

    let bad = run(client(&address).args([
        "task",
        "create",
        "examples/diamond",
        "--context",
        r#"{"fail_permanently": "end"}"#,
        "-o",
        "json",
    ]))
    .ok()
    .json();
    let watched =
        run(client(&address).args(["task", "watch", bad["id"].as_str().unwrap(), "-o", "json"]));
    assert_eq!(watched.code, Some(1), "a failed task: {watched:?}");
    let events: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.last().unwrap()["task"]["state"], "failed");

    let status = worker.terminate(Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(0),
        "worker stops cleanly; stderr:\n{}",
        worker.logs()
    );

    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "server stops cleanly; stderr:\n{}",
        server.logs()
    );
    drop(db);
}

/// Starts `tasker server` on `db` with the test token; returns it and the
/// address it printed.
fn start_server(db: &tasker_testkit::TestDatabase, dir: &Path) -> (Background, String) {
    let mut server = Background::start(
        "server",
        tasker()
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .env("TASKER_AUTH_ADMIN_TOKENS", TOKEN)
            .env("TASKER_ENGINE_POLL_RECHECK_INTERVAL", "200ms"),
        dir,
    );
    let line = server.wait_for_line("listening on http://", Duration::from_secs(60));
    let address = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("address")
        .to_owned();
    (server, address)
}

/// Runs `args` against `server` until `done` holds for its JSON output.
fn wait_for_json(
    server: &str,
    args: &[&str],
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + COMMAND_PATIENCE;
    loop {
        let value = run(client(server).args(args)).ok().json();
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: last seen {value}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `HH:MM:SS` (UTC) of an RFC 3339 time in the API's JSON.
fn clock_of(at: &serde_json::Value) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.as_str().expect("a time").parse().expect("RFC 3339");
    at.format("%H:%M:%S").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_commands_show_what_happened_and_who_would_run_it() {
    let db = tasker_testkit::TestDatabase::create()
        .await
        .expect("test database (set TASKER_TEST_DATABASE_URL)");
    let dir = tempfile::tempdir().unwrap();
    let (mut server, address) = start_server(&db, dir.path());
    let server_url = address.as_str();
    // The example worker polls both namespaces.
    for namespace in ["examples", "orders"] {
        run(client(server_url).args(["namespace", "create", namespace])).ok();
    }

    // Templates: a shipped one, one whose step retries after an hour, one
    // whose handler no worker has.
    let flaky = dir.path().join("flaky.yaml");
    std::fs::write(
        &flaky,
        "namespace: examples\nname: flaky\nversion: \"1\"\nsteps:\n  \
         - name: flaky\n    handler: examples.diamond.start\n    \
         retry: { max_attempts: 3, backoff: { initial: 1h, max: 2h, multiplier: 2, jitter: 0 } }\n",
    )
    .unwrap();
    let orphan = dir.path().join("orphan.yaml");
    std::fs::write(
        &orphan,
        "namespace: examples\nname: orphan\nversion: \"1\"\nsteps:\n  \
         - { name: lonely, handler: no.such.handler }\n",
    )
    .unwrap();
    let ran = run(client(server_url)
        .args(["template", "register"])
        .arg(templates_dir().join("diamond.yaml"))
        .arg(&flaky))
    .ok();
    assert!(
        ran.stderr
            .contains("warning: no live worker serves namespace \"examples\""),
        "nobody serves the namespace yet: {ran:?}"
    );

    // Tasks named by a prefix of their id, or `last`.
    let created =
        run(client(server_url).args(["task", "create", "examples/diamond", "-o", "json"])).ok();
    assert!(
        created
            .stderr
            .contains("warning: no live worker serves namespace \"examples\""),
        "{created:?}"
    );
    let first = created.json()["id"].as_str().unwrap().to_owned();
    let second = run(client(server_url).args(["task", "create", "examples/diamond", "-o", "json"]))
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = run(client(server_url).args(["task", "get", &first[..23], "-o", "json"]))
        .ok()
        .json();
    assert_eq!(got["id"], first.as_str());
    let got = run(client(server_url).args(["task", "get", "last", "-o", "json"]))
        .ok()
        .json();
    assert_eq!(got["id"], second.as_str(), "the most recently created");
    let common: String = first
        .chars()
        .zip(second.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    if common.chars().filter(|c| *c != '-').count() >= 4 {
        let ran = run(client(server_url).args(["task", "get", &common]));
        assert_eq!(ran.code, Some(2), "ambiguous: {ran:?}");
        assert!(ran.stderr.contains("is ambiguous"), "{ran:?}");
        assert!(
            ran.stderr.contains(&first) && ran.stderr.contains(&second),
            "lists the candidates: {ran:?}"
        );
    }
    let ran = run(client(server_url).args(["task", "get", &first[..3]]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("at least 4 hex digits"), "{ran:?}");
    let ran = run(client(server_url).args(["task", "watch", "ffffffff"]));
    assert_eq!(ran.code, Some(4), "{ran:?}");
    assert!(
        ran.stderr.contains("no task id starts with \"ffffffff\""),
        "{ran:?}"
    );

    // A ready step that nobody will take says so.
    let ran = run(client(server_url).args(["task", "get", &first[..8]]));
    if common.len() < 8 {
        let shown = ran.ok().stdout;
        assert!(
            shown.contains("ready — no live worker serves namespace \"examples\""),
            "{shown}"
        );
    }
    let steps = run(client(server_url).args(["task", "steps", &first, "-o", "json"]))
        .ok()
        .json();
    assert_eq!(steps["steps"].as_array().map(Vec::len), Some(4), "{steps}");
    let shown = run(client(server_url).args(["task", "steps", &first]))
        .ok()
        .stdout;
    assert!(
        shown.contains("ready — no live worker serves namespace \"examples\""),
        "{shown}"
    );

    // watch warns as it starts, and its line for the waiting step says why.
    let mut watching = Background::start(
        "watch",
        client(server_url).args(["task", "watch", &first]),
        dir.path(),
    );
    let line = watching.wait_for_line("step start ready", COMMAND_PATIENCE);
    assert!(
        line.ends_with("step start ready — no live worker serves namespace \"examples\""),
        "{line}"
    );
    assert!(
        watching
            .logs()
            .contains("warning: no live worker serves namespace \"examples\""),
        "{}",
        watching.logs()
    );
    drop(watching);

    // The history, and watch lines stamped with the times it records: the
    // history is moved an hour back, so the time of looking differs.
    run(client(server_url).args(["task", "cancel", &first, "--reason", "testing"])).ok();
    // The history is append-only (a trigger refuses updates); only a test,
    // as the superuser, sets triggers aside to rewrite it.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE tasker.transitions SET at = at - interval '1 hour' WHERE task_id = $1::uuid",
    )
    .bind(&first)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    let history = run(client(server_url).args(["task", "history", &first, "-o", "json"]))
        .ok()
        .json();
    let transitions = history["transitions"].as_array().unwrap().clone();
    assert_eq!(transitions[0]["step_id"], serde_json::Value::Null);
    assert_eq!(transitions[0]["to_state"], "running");
    let table = run(client(server_url).args(["task", "history", &first]))
        .ok()
        .stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TIME", "STEP", "FROM", "→", "TO", "ATTEMPT", "WORKER", "NODE", "REASON"
        ],
        "{table}"
    );
    assert_eq!(table.lines().count(), transitions.len() + 1, "{table}");
    assert!(table.contains("running → cancelled"), "{table}");
    assert!(table.contains("pending → ready"), "{table}");

    let watched = run(client(server_url).args(["task", "watch", &first]));
    assert_eq!(watched.code, Some(1), "cancelled: {watched:?}");
    let lines: Vec<&str> = watched.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        transitions.len(),
        "a line per transition: {watched:?}"
    );
    let times: Vec<String> = transitions.iter().map(|t| clock_of(&t["at"])).collect();
    for line in &lines {
        assert!(
            times.iter().any(|t| line.starts_with(&format!("{t} "))),
            "{line:?} is stamped with a recorded time ({times:?})"
        );
    }
    let cancelled = transitions
        .iter()
        .find(|t| t["step_id"].is_null() && t["to_state"] == "cancelled")
        .expect("the task's cancellation");
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "{} task {first} cancelled: testing",
                clock_of(&cancelled["at"])
            )
            .as_str()
        ),
        "the task's end comes last: {watched:?}"
    );

    // Workers: none yet, then the example worker.
    let ran = run(client(server_url).args(["worker", "list"])).ok();
    assert!(ran.stderr.contains("no live workers"), "{ran:?}");
    let mut worker = Background::start(
        "worker",
        client(server_url).args([
            "worker",
            "example",
            "--concurrency",
            "2",
            "--worker-id",
            "w-test",
        ]),
        dir.path(),
    );
    let workers = wait_for_json(
        server_url,
        &["worker", "list", "-o", "json"],
        "the worker registers",
        |w| w.as_array().is_some_and(|a| !a.is_empty()),
    );
    assert_eq!(workers[0]["worker_id"], "w-test");
    let table = run(client(server_url).args(["worker", "list"])).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "WORKER",
            "NAMESPACES",
            "HANDLERS",
            "CONCURRENCY",
            "NODE",
            "LAST",
            "SEEN"
        ],
        "{table}"
    );
    let handlers = workers[0]["handlers"].as_array().unwrap();
    assert!(
        handlers.iter().any(|h| h == "examples.diamond.start"),
        "{workers}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    let count = handlers.len().to_string();
    assert_eq!(
        row[..5],
        ["w-test", "examples,orders", count.as_str(), "handlers", "2"],
        "{table}"
    );
    assert!(lines[1].ends_with(" ago"), "{table}");

    // A handler that no live worker declares.
    let ran = run(client(server_url)
        .args(["template", "register"])
        .arg(&orphan))
    .ok();
    assert!(
        ran.stderr
            .contains("no live worker declares handler \"no.such.handler\""),
        "{ran:?}"
    );
    let ran = run(client(server_url).args(["task", "create", "examples/orphan"])).ok();
    assert!(
        ran.stderr
            .contains("no live worker declares handler \"no.such.handler\""),
        "{ran:?}"
    );
    // (The worker polls the namespace, so it takes the step anyway and
    // fails it as handler_not_found; the warning said why in advance.)
    let ran = run(client(server_url).args(["task", "create", "examples/diamond"])).ok();
    assert!(
        !ran.stderr.contains("warning"),
        "the worker serves it: {ran:?}"
    );

    // create --watch: JSON events, the finished task last and only once.
    let watched = run(client(server_url).args([
        "task",
        "create",
        "examples/diamond",
        "--watch",
        "-o",
        "json",
    ]));
    assert_eq!(
        watched.code,
        Some(0),
        "{watched:?}\nworker:\n{}",
        worker.logs()
    );
    let events: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let (last, steps) = events.split_last().unwrap();
    assert_eq!(last["event"], "task", "{watched:?}");
    assert_eq!(last["task"]["state"], "complete");
    assert!(
        steps.iter().all(|e| e["event"] == "step"),
        "the task only last: {watched:?}"
    );
    for name in ["start", "branch_b", "branch_c", "end"] {
        assert!(
            steps.iter().any(|e| e["step"]["name"] == name
                && e["step"]["state"] == "complete"
                && e["at"].is_string()),
            "{name} completes, with its time: {watched:?}"
        );
    }
    let done = last["task"]["id"].as_str().unwrap();
    let shown = run(client(server_url).args(["task", "get", done]))
        .ok()
        .stdout;
    assert!(shown.contains("RESULT"), "{shown}");
    assert!(shown.contains("{\"value\":"), "results are shown: {shown}");

    // create --watch in text; a failed step leaves its dependents blocked.
    let watched = run(client(server_url).args([
        "task",
        "create",
        "examples/diamond",
        "--context",
        r#"{"fail_permanently": "start"}"#,
        "--watch",
    ]));
    assert_eq!(watched.code, Some(1), "a failed task: {watched:?}");
    assert!(watched.stdout.starts_with("created task "), "{watched:?}");
    assert!(
        watched.stdout.contains(
            "step start failed (attempt 1/3): injected_failure: context.fail_permanently"
        ),
        "{watched:?}"
    );
    assert!(
        watched
            .stdout
            .contains("step end blocked — \"start\" failed"),
        "{watched:?}"
    );
    assert!(
        watched
            .stdout
            .lines()
            .last()
            .unwrap()
            .ends_with(" failed: step(s) failed: start"),
        "{watched:?}"
    );
    let shown = run(client(server_url).args(["task", "get", "last"]))
        .ok()
        .stdout;
    assert!(shown.contains("blocked — \"start\" failed"), "{shown}");
    assert!(
        shown.contains("injected_failure: context.fail_permanently"),
        "{shown}"
    );

    // A retrying step says when it runs next.
    let flaky_task = run(client(server_url).args([
        "task",
        "create",
        "examples/flaky",
        "--context",
        r#"{"fail_times": {"flaky": 1}}"#,
        "-o",
        "json",
    ]))
    .ok()
    .json();
    let flaky_id = flaky_task["id"].as_str().unwrap();
    wait_for_json(
        server_url,
        &["task", "get", flaky_id, "-o", "json"],
        "the step retries",
        |t| t["steps"][0]["state"] == "retrying",
    );
    let shown = run(client(server_url).args(["task", "get", flaky_id]))
        .ok()
        .stdout;
    assert!(shown.contains("retrying — next attempt in "), "{shown}");
    let row = shown.lines().find(|l| l.starts_with("flaky")).unwrap();
    assert!(row.contains("(at "), "{row}");
    run(client(server_url).args(["task", "cancel", flaky_id])).ok();

    assert_eq!(
        worker.terminate(Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        worker.logs()
    );
    assert_eq!(
        server.terminate(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        server.logs()
    );
    drop(db);
}
