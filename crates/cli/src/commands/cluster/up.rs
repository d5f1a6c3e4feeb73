//! `tasker cluster up`: a database (given, found on 127.0.0.1:5432, or
//! started into the state directory), migrations run once, N nodes, the
//! nginx balancer in front of them, the example templates registered, M
//! example workers polling through the balancer. Returns once everything
//! answers, leaving the processes running detached (each in its own process
//! group, so a ctrl-c in the terminal that ran `up` does not reach them).
//!
//! Whatever fails, what was started is stopped again and the failing
//! process's log is shown: `up` never leaves half a cluster behind.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::state::{self, ClusterFile, Instance, Kind, StateDir};
use super::{down, nginx, ports, status};
use crate::cli::{ClusterUpArgs, Output};
use crate::status::{Failure, Status};

/// The example templates, registered into every new cluster.
const TEMPLATES: [(&str, &str); 5] = [
    (
        "linear",
        include_str!("../../../../../templates/linear.yaml"),
    ),
    (
        "diamond",
        include_str!("../../../../../templates/diamond.yaml"),
    ),
    ("tree", include_str!("../../../../../templates/tree.yaml")),
    (
        "mixed_dag",
        include_str!("../../../../../templates/mixed_dag.yaml"),
    ),
    (
        "order_fulfillment",
        include_str!("../../../../../templates/order_fulfillment.yaml"),
    ),
];

/// How long a node may take to print where it listens and become ready.
const START_PATIENCE: Duration = Duration::from_secs(60);

pub async fn run(args: &ClusterUpArgs) -> anyhow::Result<Status> {
    if args.nodes == 0 {
        return Err(Failure::usage("--nodes must be at least 1"));
    }
    let state = StateDir::new(&std::path::absolute(&args.state.state_dir)?);
    if let Some(existing) = state.load()? {
        if existing.instances.iter().any(state::alive) {
            return Err(Failure {
                status: Status::Conflict,
                message: format!(
                    "a cluster is already up in {} (balancer {}): `tasker cluster down --state-dir {}` \
                     first, or use another --state-dir",
                    state.dir.display(),
                    existing.balancer_url().unwrap_or("-"),
                    state.dir.display()
                ),
            }
            .into());
        }
        eprintln!(
            "removing the record of a cluster that is no longer running in {}",
            state.dir.display()
        );
        state.forget()?;
    }
    let nginx_binary = nginx::find()?;
    check_ports(args)?;
    for dir in [state.logs_dir(), state.run_dir(), state.nginx_dir()] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let mut cluster = ClusterFile {
        database_url: String::new(),
        instances: Vec::new(),
    };
    let started = start(args, &state, &nginx_binary, &mut cluster).await;
    if let Err(error) = started {
        eprintln!("cluster up failed; stopping what it started");
        let _ = state.save(&cluster);
        let _ = down::stop(&state, &cluster, Duration::from_secs(5));
        return Err(error);
    }
    let report = status::gather(&state, &cluster).await;
    match args.output {
        Output::Json => crate::output::emit_json(&report)?,
        Output::Text => {
            crate::output::emit(&status::render(&report))?;
            eprintln!(
                "logs: tasker cluster logs [instance] --state-dir {0}; stop: tasker cluster down --state-dir {0}",
                state.dir.display()
            );
        }
    }
    Ok(Status::Ok)
}

/// A taken fixed port is reported before anything starts.
fn check_ports(args: &ClusterUpArgs) -> anyhow::Result<()> {
    let mut wanted = Vec::new();
    if args.base_port != 0 {
        for i in 0..args.nodes {
            let port = u16::try_from(usize::from(args.base_port) + i)
                .map_err(|_| Failure::usage("--base-port + --nodes goes past port 65535"))?;
            wanted.push(("node", port));
        }
    }
    if args.port != 0 {
        if wanted.iter().any(|(_, p)| *p == args.port) {
            return Err(Failure::usage(format!(
                "--port {} is among the nodes' ports (--base-port {} and up): choose another",
                args.port, args.base_port
            )));
        }
        wanted.push(("balancer", args.port));
    }
    for (what, port) in wanted {
        if !ports::is_free(port) {
            return Err(Failure::usage(format!(
                "port {port} (for the {what}) is taken by {}: stop it, or choose other ports \
                 (--port for the balancer, --base-port for the nodes; 0 picks free ones)",
                ports::holder(port)
            )));
        }
    }
    Ok(())
}

async fn start(
    args: &ClusterUpArgs,
    state: &StateDir,
    nginx_binary: &Path,
    cluster: &mut ClusterFile,
) -> anyhow::Result<()> {
    let url = database(args, state, cluster)?;
    cluster.database_url = redact(&url);
    state.save(cluster)?;
    migrate(state, &url)?;

    let mut children = Vec::new();
    for i in 1..=args.nodes {
        let name = format!("node-{i}");
        let port = if args.base_port == 0 {
            0
        } else {
            args.base_port + (i - 1) as u16
        };
        let mut command = tasker();
        command
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--node-id", &name, "--database-url", &url])
            .env("TASKER_AUTH_ENABLED", "false");
        let child = spawn(state, &name, &mut command)?;
        cluster
            .instances
            .push(instance(state, &name, Kind::Node, &child));
        children.push(child);
        state.save(cluster)?;
    }
    let mut node_ports = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let name = format!("node-{}", i + 1);
        let url = wait_listening(state, &name, child)?;
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok());
        let record = cluster
            .instances
            .iter_mut()
            .find(|instance| instance.name == name)
            .expect("node recorded");
        record.port = port;
        record.url = Some(url);
        node_ports.extend(port);
    }
    state.save(cluster)?;

    let balancer = start_balancer(args, state, nginx_binary, &node_ports, cluster)?;
    for node in cluster.of_kind(Kind::Node) {
        wait_ready(node.url.as_deref().unwrap_or_default(), &node.name, state).await?;
    }
    wait_ready(&balancer, "balancer", state).await?;
    register_examples(&balancer).await?;

    let mut names = Vec::new();
    for i in 1..=args.workers {
        let name = format!("worker-{i}");
        let mut command = tasker();
        command
            .args(["worker", "example", "--server", &balancer])
            .args(["--worker-id", &name, "--shutdown-grace", "5s"])
            .args(["--concurrency", &args.worker_concurrency.to_string()]);
        if let Some(file) = &args.record_executions {
            command
                .arg("--record-executions")
                .arg(std::path::absolute(file)?);
        }
        let child = spawn(state, &name, &mut command)?;
        cluster
            .instances
            .push(instance(state, &name, Kind::Worker, &child));
        state.save(cluster)?;
        names.push(name);
    }
    wait_workers(&balancer, &names, state).await
}

/// The database URL: `--database-url`, else a `tasker_cluster` database on
/// the PostgreSQL at 127.0.0.1:5432 when one answers, else one on a server
/// started into the state directory.
fn database(
    args: &ClusterUpArgs,
    state: &StateDir,
    cluster: &mut ClusterFile,
) -> anyhow::Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    if std::net::TcpStream::connect_timeout(&local, Duration::from_secs(2)).is_ok() {
        return Ok("postgres://postgres@127.0.0.1:5432/tasker_cluster".to_owned());
    }
    eprintln!(
        "no --database-url and nothing answers on 127.0.0.1:5432: starting PostgreSQL in {}",
        state.postgres_dir().display()
    );
    let server = tasker_testkit::LocalServer::start(&state.postgres_dir(), 0)
        .context("cannot start a PostgreSQL for the cluster (or pass --database-url)")?;
    cluster.instances.push(Instance {
        name: "postgres".to_owned(),
        kind: Kind::Database,
        pid: server.pid().unwrap_or_default(),
        program: "postgres".to_owned(),
        port: Some(server.port()),
        url: Some(server.url("tasker_cluster")),
        log: server.log_file(),
    });
    Ok(server.url("tasker_cluster"))
}

/// Migrations run once, before any node starts, so that nodes starting
/// together do not race to apply them.
fn migrate(state: &StateDir, url: &str) -> anyhow::Result<()> {
    let log = state.log("migrate");
    let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let status = tasker()
        .args(["migrate", "--create-database", "--database-url", url])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .context("cannot run tasker migrate")?;
    if !status.success() {
        return Err(Failure::unreachable(format!(
            "migrating {} failed ({status}):\n{}",
            redact(url),
            state::tail(&log, 20)
        )));
    }
    Ok(())
}

/// Starts nginx in front of `nodes`; on a port picked by `--port 0`, a port
/// taken meanwhile by another program means another try on another port.
fn start_balancer(
    args: &ClusterUpArgs,
    state: &StateDir,
    nginx_binary: &Path,
    nodes: &[u16],
    cluster: &mut ClusterFile,
) -> anyhow::Result<String> {
    let log = state.log("balancer");
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid() == 0
    });
    let tries = if args.port == 0 { 3 } else { 1 };
    for attempt in 1..=tries {
        let port = if args.port == 0 {
            ports::any_free()?
        } else {
            args.port
        };
        let conf = state.nginx_dir().join("nginx.conf");
        std::fs::write(
            &conf,
            nginx::config(&state.nginx_dir(), &log, port, nodes, as_root),
        )
        .with_context(|| format!("cannot write {}", conf.display()))?;
        let mut command = Command::new(nginx_binary);
        command
            .arg("-e")
            .arg(&log)
            .arg("-p")
            .arg(state.nginx_dir())
            .arg("-c")
            .arg(&conf);
        let mut child = spawn(state, "balancer", &mut command)?;
        let mut record = instance(state, "balancer", Kind::Balancer, &child);
        record.program = "nginx".to_owned();
        record.port = Some(port);
        record.url = Some(format!("http://127.0.0.1:{port}"));
        // nginx binds at once; a bind failure ends it within moments.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(exit) = child.try_wait()? {
                let log_text = state::tail(&log, 10);
                if attempt < tries && log_text.contains("Address already in use") {
                    break;
                }
                return Err(anyhow::anyhow!(
                    "nginx exited ({exit}) on port {port}:\n{log_text}"
                ));
            }
            if !ports::is_free(port) {
                cluster.instances.push(record);
                state.save(cluster)?;
                return Ok(format!("http://127.0.0.1:{port}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!(
                    "nginx did not listen on port {port} within 10 s:\n{}",
                    state::tail(&log, 10)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    anyhow::bail!("nginx found every port it tried taken")
}

/// This very binary, so that a cluster runs the build that started it.
fn tasker() -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "tasker".into());
    Command::new(exe)
}

/// Starts `command` detached: its own process group, output to its log.
fn spawn(state: &StateDir, name: &str, command: &mut Command) -> anyhow::Result<Child> {
    let log = state.log(name);
    let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {name}"))
}

fn instance(state: &StateDir, name: &str, kind: Kind, child: &Child) -> Instance {
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tasker".to_owned());
    Instance {
        name: name.to_owned(),
        kind,
        pid: child.id(),
        program,
        port: None,
        url: None,
        log: state.log(name),
    }
}

/// The URL a node printed in its `listening on` line.
fn wait_listening(state: &StateDir, name: &str, child: &mut Child) -> anyhow::Result<String> {
    let log = state.log(name);
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|line| line.strip_prefix("listening on "))
            .and_then(|rest| rest.split_whitespace().next())
        {
            return Ok(url.to_owned());
        }
        if let Some(exit) = child.try_wait()? {
            anyhow::bail!(
                "{name} exited ({exit}) before listening; the end of {}:\n{}",
                log.display(),
                state::tail(&log, 20)
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{name} printed no `listening on` line within {START_PATIENCE:?}; the end of {}:\n{}",
                log.display(),
                state::tail(&log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `GET <url>/ready` answers 200.
async fn wait_ready(url: &str, name: &str, state: &StateDir) -> anyhow::Result<()> {
    let http = status::http_client();
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        let ready = http.get(format!("{url}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{name} at {url} was not ready within {START_PATIENCE:?}; the end of its log:\n{}",
                state::tail(&state.log(name), 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example namespaces and templates, through the balancer.
async fn register_examples(balancer: &str) -> anyhow::Result<()> {
    let client = tasker_client::Client::new(balancer, None)?;
    for namespace in tasker_worker::examples::NAMESPACES {
        client
            .namespace_create(namespace)
            .await
            .with_context(|| format!("cannot create namespace {namespace}"))?;
    }
    for (name, yaml) in TEMPLATES {
        client
            .template_register_yaml(yaml)
            .await
            .with_context(|| format!("cannot register the example template {name}"))?;
    }
    Ok(())
}

/// Waits until every worker in `names` has registered (the cluster view
/// lists it).
async fn wait_workers(balancer: &str, names: &[String], state: &StateDir) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let client = tasker_client::Client::new(balancer, None)?;
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        if let Ok(view) = client.cluster().await {
            let missing: Vec<&String> = names
                .iter()
                .filter(|name| !view.workers.iter().any(|w| &w.worker.worker_id == *name))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let first = missing[0];
                anyhow::bail!(
                    "{first} did not register within {START_PATIENCE:?}; the end of its log:\n{}",
                    state::tail(&state.log(first), 20)
                );
            }
        } else if Instant::now() > deadline {
            anyhow::bail!("the balancer at {balancer} did not answer GET /v1/cluster");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `url` with its password replaced, for showing.
pub fn redact(url: &str) -> String {
    crate::config::redact_url_password(url, "<redacted>")
}
