//! The command line: every command, argument and flag, as clap parses them.
//! Nothing here does anything; `commands` carries each one out.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tasker_model::TaskState;
use uuid::Uuid;

use crate::config::{Flag, Layers, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "tasker",
    version,
    about = "Tasker: workflow orchestration on PostgreSQL.",
    long_about = "Tasker: workflow orchestration on PostgreSQL.\n\n\
        Try it on this machine with `tasker dev` (one process, an embedded SQLite \
        database, the example worker); run a server node on PostgreSQL with \
        `tasker server`; manage namespaces, templates and tasks through any node with \
        the other commands.",
    after_help = "Exit codes: 0 ok, 1 operation or task failed, 2 usage or invalid input, \
        3 server (or database) unreachable, 4 not found, 5 conflict."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server node: migrate, then serve the HTTP API until SIGTERM or ctrl-c.
    Server(ServerArgs),
    /// Run Tasker on this machine in one process, without setup: a server on
    /// an embedded SQLite database, the example templates and the example
    /// worker.
    Dev(DevArgs),
    /// Apply the database migrations and exit.
    Migrate(MigrateArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Create and list namespaces.
    Namespace {
        #[command(subcommand)]
        action: NamespaceAction,
    },
    /// Register, validate and list templates.
    Template {
        #[command(subcommand)]
        action: TemplateAction,
    },
    /// Create, inspect, list, cancel and watch tasks.
    Task {
        #[command(subcommand)]
        action: TaskAction,
    },
    /// Create, inspect, change, pause, trigger and backfill schedules.
    Schedule {
        #[command(subcommand)]
        action: crate::commands::schedule::ScheduleAction,
    },
    /// Retry or resolve a step by hand.
    Step {
        #[command(subcommand)]
        action: StepAction,
    },
    /// List steps that exhausted their retries; retry or resolve many at once.
    DeadLetter {
        #[command(subcommand)]
        action: crate::commands::DeadLetterAction,
    },
    /// List the live workers, or run the example worker.
    Worker {
        #[command(subcommand)]
        action: WorkerCommand,
    },
    /// Run a local cluster: nodes, example workers and an nginx balancer.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Measure a server: PostgreSQL's commit floor, then latency, task
    /// creation, throughput and idle cost, with worker processes over HTTP
    /// (or, with `--backend sqlite`, latency, creation and throughput of a
    /// SQLite node).
    Bench(BenchArgs),
    /// A worker with one no-op handler (`bench.noop`), started by `tasker bench`.
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
}

/// What `tasker bench` measures and how much of it.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The store the measured server runs on: `postgres` (needs
    /// --database-url) or `sqlite` (a `tasker dev` node on a temporary
    /// directory, or the SQLite node named by --server).
    #[arg(long, value_enum, default_value_t = BenchBackend::Postgres, value_name = "BACKEND")]
    pub backend: BenchBackend,
    /// The database the server uses (or will use): the benchmark measures
    /// PostgreSQL's own commit rate there and reads its statistics. A fresh
    /// database is best: the run leaves its tasks behind. Required with
    /// `--backend postgres`; refused with `--backend sqlite`.
    #[arg(
        long,
        env = "TASKER_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// A running server on that database (or, with `--backend sqlite`, a
    /// running SQLite node such as `tasker dev`). Default: start one (auth
    /// off) on a loopback port for the run.
    #[arg(long, value_name = "URL", conflicts_with = "server_binary")]
    pub server: Option<String>,
    /// The `tasker` binary to start the server from (e.g. an older build,
    /// to compare two versions in one run). Default: this binary.
    #[arg(long, value_name = "PATH")]
    pub server_binary: Option<PathBuf>,
    /// Bearer token for --server (admin and worker roles).
    #[arg(
        long,
        env = "TASKER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Scenario to run; repeat for several. Default: all.
    #[arg(long = "scenario", value_enum, value_name = "NAME")]
    pub scenarios: Vec<Scenario>,
    /// A short run (a few seconds per scenario) that proves every scenario
    /// works; its figures mean little.
    #[arg(long)]
    pub quick: bool,
    /// Latency: tasks per shape [default: 100, quick 5].
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Create: tasks created each way [default: 1000, quick 50].
    #[arg(long, value_name = "N")]
    pub create_tasks: Option<usize>,
    /// Throughput: tasks per shape [default: 5000, quick 100].
    #[arg(long, value_name = "N")]
    pub tasks: Option<usize>,
    /// Throughput: worker processes.
    #[arg(long, default_value_t = 2, value_name = "M")]
    pub workers: usize,
    /// Throughput: slots per worker process.
    #[arg(long, default_value_t = 32, value_name = "C")]
    pub concurrency: usize,
    /// Idle: waiting worker processes [default: 50, quick 5].
    #[arg(long, value_name = "K")]
    pub idle_workers: Option<usize>,
    /// Idle: seconds measured [default: 10, quick 2].
    #[arg(long, value_name = "SECONDS")]
    pub idle_seconds: Option<u64>,
    /// Soak: seconds of each of the three phases [default: 60, quick 2].
    #[arg(long, value_name = "SECONDS")]
    pub soak_seconds: Option<u64>,
    /// Throughput and soak: report requests each worker process keeps in
    /// flight (the SDK's `report_requests_in_flight`).
    #[arg(long, default_value_t = 4, value_name = "R")]
    pub report_requests: usize,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The store a benchmarked server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Latency,
    Create,
    Throughput,
    Idle,
    Soak,
}

#[derive(Debug, Clone, Args)]
pub struct BenchWorkerArgs {
    /// Namespace to take steps from; repeat for several.
    #[arg(long = "namespace", value_name = "NAME", required = true)]
    pub namespaces: Vec<String>,
    /// Most steps run at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Report requests kept in flight at once.
    #[arg(long, default_value_t = 4)]
    pub report_requests: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Where the configuration file is.
#[derive(Debug, Clone, Args)]
pub struct ConfigFile {
    /// Configuration file (TOML). Without it: built-in defaults, then the
    /// TASKER_<SECTION>_<KEY> environment variables.
    #[arg(long, env = "TASKER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// The flags that override configuration keys, for the server and for
/// `config show` (which shows what the server would run with).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Address to listen on, host:port [config: server.listen].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// This node's id [config: server.node_id].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// PostgreSQL URL [config: database.url].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log filter, e.g. info or info,tasker_engine=debug [config: log.level].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format [config: log.format].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

impl ServerArgs {
    pub fn layers(&self) -> Layers {
        let mut flags = Vec::new();
        let mut text = |key, flag, value: &Option<String>| {
            if let Some(value) = value {
                flags.push(Flag {
                    key,
                    flag,
                    value: value.clone().into(),
                });
            }
        };
        text("server.listen", "--listen", &self.listen);
        text("server.node_id", "--node-id", &self.node_id);
        text("database.url", "--database-url", &self.database_url);
        text("log.level", "--log-level", &self.log_level);
        let format = self.log_format.map(|f| match f {
            LogFormat::Text => "text".to_owned(),
            LogFormat::Json => "json".to_owned(),
        });
        text("log.format", "--log-format", &format);
        Layers::from_process(self.file.config.clone(), flags)
    }
}

/// `tasker dev`: where the SQLite database lives and what to run.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Directory of the SQLite database (created when missing); tasks
    /// survive a restart on the same directory.
    #[arg(long, default_value = ".tasker", value_name = "DIR")]
    pub dir: PathBuf,
    /// Keep the database in memory: a throwaway run, gone at exit.
    #[arg(long, conflicts_with = "dir")]
    pub memory: bool,
    /// Address to listen on, host:port; port 0 takes a free port (the
    /// address is printed). A non-loopback address needs auth on
    /// [config: server.listen, default 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Submit a few tasks of the example templates, show their progress
    /// until all finished, print a summary and exit (0 when all completed).
    #[arg(long)]
    pub demo: bool,
    /// With --demo: how long the demo tasks may take in all before the run
    /// counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration, requires = "demo")]
    pub demo_timeout: tasker_model::HumanDuration,
    /// Log filter, e.g. warn or info,tasker_engine=debug [config: log.level].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl DevArgs {
    pub fn layers(&self) -> Layers {
        let mut flags = Vec::new();
        for (key, flag, value) in [
            ("server.listen", "--listen", &self.listen),
            ("log.level", "--log-level", &self.log_level),
        ] {
            if let Some(value) = value {
                flags.push(Flag {
                    key,
                    flag,
                    value: value.clone().into(),
                });
            }
        }
        Layers::from_process(self.file.config.clone(), flags)
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// PostgreSQL URL [config: database.url].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Create the database first when it does not exist.
    #[arg(long)]
    pub create_database: bool,
}

impl MigrateArgs {
    pub fn layers(&self) -> Layers {
        let flags = self
            .database_url
            .iter()
            .map(|url| Flag {
                key: "database.url",
                flag: "--database-url",
                value: url.clone().into(),
            })
            .collect();
        Layers::from_process(self.file.config.clone(), flags)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (tokens and passwords redacted);
    /// exits 2 when it is not valid.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, short, value_enum, default_value_t = ConfigOutput::Toml)]
        output: ConfigOutput,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigOutput {
    Toml,
    Json,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    Text,
    /// JSON for scripts: the API's records as they are.
    Json,
}

/// How to reach a server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(
        long,
        env = "TASKER_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// Bearer token.
    #[arg(
        long,
        env = "TASKER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Also trust the CA certificates in this PEM file for https:// servers
    /// (besides the system's and the bundled web roots).
    #[arg(long, env = "TASKER_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum NamespaceAction {
    /// Create a namespace (no-op if it exists).
    Create {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List namespaces.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateAction {
    /// Register templates from YAML files (re-registering identical content is a no-op).
    Register {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check template files offline and print every problem with its path;
    /// exits 1 when any is invalid.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List registered templates.
    List {
        /// Only this namespace's templates.
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// Start a task of <namespace>/<template>[@version], or many from a file.
    Create {
        /// The template; without @version the newest, without a namespace
        /// the default namespace.
        #[arg(
            value_name = "NAMESPACE/TEMPLATE[@VERSION]",
            required_unless_present = "from_file"
        )]
        template: Option<String>,
        /// Create many tasks: one JSON object per line, with the fields of
        /// the API's create body (`template`, `namespace`, `version`,
        /// `context`, `idempotency_key`, `tags`, `deadline`); `-` for standard input.
        /// Sent in batches of up to 1000.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with_all = ["template", "context", "context_file", "idempotency_key", "tags", "deadline", "watch"]
        )]
        from_file: Option<PathBuf>,
        /// The task's context, as JSON.
        #[arg(long, value_name = "JSON", conflicts_with = "context_file")]
        context: Option<String>,
        /// Read the context from a JSON file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        context_file: Option<PathBuf>,
        /// Creating again with the same key returns the existing task.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// A tag; repeat for several.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// How long the task may take from now, e.g. `30m`; past it the task
        /// fails with `deadline_exceeded`. Default: the template's deadline.
        #[arg(long, value_name = "DURATION", value_parser = tasker_model::HumanDuration::parse)]
        deadline: Option<tasker_model::HumanDuration>,
        /// Then follow the task as `task watch` does, until it finishes; the
        /// exit status is watch's.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a task and its steps.
    Get {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a task's steps.
    Steps {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a task's history: every change of the task and its steps, oldest first.
    History {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Say why a task is waiting: per unfinished step, its parents not done,
    /// whether a live worker serves it, who holds its lease, when it retries.
    Explain {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tasks, newest first.
    List {
        #[arg(long)]
        namespace: Option<String>,
        /// Template name.
        #[arg(long)]
        template: Option<String>,
        #[arg(long, value_parser = parse_task_state)]
        state: Option<TaskState>,
        /// Page size (the server caps it).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a running task.
    Cancel {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        /// Recorded in the task's history.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follow a task's steps until it finishes; exits 0 when it completes,
    /// 1 when it fails or is cancelled.
    Watch {
        #[arg(value_name = "TASK", help = TASK_HELP)]
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// How a task is named on the command line.
const TASK_HELP: &str = "The task: its id, a unique prefix of it (at least 4 hex digits, \
    e.g. 0193a1), or `last` for the most recently created task";

fn parse_task_state(text: &str) -> Result<TaskState, String> {
    text.parse::<TaskState>().map_err(|e| {
        let all: Vec<_> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
        format!("{e}; use one of {}", all.join(", "))
    })
}

#[derive(Debug, Subcommand)]
pub enum StepAction {
    /// Run a failed step again with a fresh attempt budget.
    Retry {
        step_id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Mark a failed or pending step resolved, so its dependents run.
    Resolve {
        step_id: Uuid,
        /// The result its dependents see, as JSON.
        #[arg(long, value_name = "JSON")]
        result: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List the live workers: their namespaces, handlers, concurrency, node
    /// and when they were last heard from.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    #[command(flatten)]
    Run(WorkerAction),
}

#[derive(Debug, Subcommand)]
pub enum WorkerAction {
    /// Run the handlers of the example templates until SIGTERM or ctrl-c.
    Example {
        /// Namespace to take steps from; repeat for several. Default: the
        /// example templates' namespaces, examples and orders.
        #[arg(long = "namespace", value_name = "NAME")]
        namespaces: Vec<String>,
        /// Most steps run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// This worker's id. Default: <hostname>-<pid>.
        #[arg(long, value_name = "ID")]
        worker_id: Option<String>,
        /// On SIGTERM or ctrl-c, how long running handlers may finish before
        /// their steps are released to other workers (e.g. 30s, 500ms).
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        shutdown_grace: tasker_model::HumanDuration,
        /// Append one JSON line per handler execution (task_id, step_id,
        /// step, attempt, pid) to this file, before the handler runs; several
        /// workers may share it. For counting executions in tests.
        #[arg(long, value_name = "FILE")]
        record_executions: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Start N nodes, M example workers and an nginx round-robin balancer
    /// against one PostgreSQL, register the example templates, wait until
    /// all answer, print what runs where, and return (the processes keep
    /// running). Auth is off on the nodes; the nodes and workers inherit
    /// this command's environment (e.g. TASKER_DATABASE_MAX_CONNECTIONS).
    Up(ClusterUpArgs),
    /// Every instance of the local cluster: role, pid, port, whether it runs
    /// and answers /ready, the leader each node sees; exits 1 when any does
    /// not. With --server and no local cluster: that server's cluster view.
    Status(ClusterStatusArgs),
    /// The end of an instance's log (all instances' without one); -f follows.
    Logs(ClusterLogsArgs),
    /// Stop the workers, then the nodes, then the balancer, then a database
    /// `up` started (SIGTERM, SIGKILL after --grace); removes the pid files.
    /// Nothing up is not an error.
    Down(ClusterDownArgs),
}

/// Where the local cluster keeps its pid files, logs and the balancer's
/// configuration.
#[derive(Debug, Clone, Args)]
pub struct StateDirArg {
    /// The cluster's state directory.
    #[arg(
        long,
        env = "TASKER_CLUSTER_DIR",
        default_value = ".tasker/cluster",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ClusterUpArgs {
    /// Server nodes.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub nodes: usize,
    /// Example worker processes (`tasker worker example`), polling through
    /// the balancer.
    #[arg(long, default_value_t = 1, value_name = "M")]
    pub workers: usize,
    /// Slots per worker process.
    #[arg(long, default_value_t = 4, value_name = "C")]
    pub worker_concurrency: usize,
    /// The first node's port on 127.0.0.1; the others follow it. 0: each
    /// node takes a free port.
    #[arg(long, default_value_t = 8081, value_name = "PORT")]
    pub base_port: u16,
    /// The balancer's port on 127.0.0.1. 0: a free port.
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub port: u16,
    /// PostgreSQL URL (the database is created when missing). Default: the
    /// database tasker_cluster on 127.0.0.1:5432 when a server answers there,
    /// else on a PostgreSQL started into <state-dir>/postgres.
    #[arg(
        long,
        env = "TASKER_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Have the workers append one line per handler execution to this file
    /// (see `tasker worker example --record-executions`).
    #[arg(long, value_name = "FILE")]
    pub record_executions: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArg,
    /// Output format of the final report (as `tasker cluster status`).
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Args)]
pub struct ClusterStatusArgs {
    /// Without a local cluster: show this server's cluster view instead.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub state: StateDirArg,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Args)]
pub struct ClusterLogsArgs {
    /// balancer, node-1, worker-1, migrate, ...; default: all.
    pub instance: Option<String>,
    /// Keep printing what is appended, until ctrl-c.
    #[arg(long, short)]
    pub follow: bool,
    /// Lines from the end of each log.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Debug, Clone, Args)]
pub struct ClusterDownArgs {
    /// How long each process may take to stop after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace: tasker_model::HumanDuration,
    #[command(flatten)]
    pub state: StateDirArg,
}

fn parse_duration(text: &str) -> Result<tasker_model::HumanDuration, String> {
    tasker_model::HumanDuration::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_flags_become_configuration_flags() {
        let cli = Cli::try_parse_from([
            "tasker",
            "server",
            "--listen",
            "0.0.0.0:9999",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("server")
        };
        let layers = args.layers();
        let keys: Vec<_> = layers.flags.iter().map(|f| f.key).collect();
        assert_eq!(keys, ["server.listen", "log.format"]);
        let mut layers = layers;
        layers.env.clear();
        let config = layers.load().unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:9999");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn dev_takes_a_directory_or_memory_but_not_both() {
        let cli = Cli::try_parse_from(["tasker", "dev"]).unwrap();
        let Command::Dev(args) = cli.command else {
            panic!("dev")
        };
        assert_eq!(args.dir, PathBuf::from(".tasker"));
        assert!(!args.memory && !args.demo);
        let cli = Cli::try_parse_from(["tasker", "dev", "--memory", "--demo"]).unwrap();
        let Command::Dev(args) = cli.command else {
            panic!("dev")
        };
        assert!(args.memory && args.demo);
        let err = Cli::try_parse_from(["tasker", "dev", "--memory", "--dir", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let err = Cli::try_parse_from(["tasker", "dev", "--demo-timeout", "1m"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn task_states_are_checked_when_parsing() {
        let err = Cli::try_parse_from(["tasker", "task", "list", "--state", "done"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("running"));
    }

    #[test]
    fn tasks_are_named_by_text_and_worker_list_sits_beside_example() {
        let cli = Cli::try_parse_from(["tasker", "task", "history", "0193a1"]).unwrap();
        let Command::Task {
            action: TaskAction::History { id, .. },
        } = cli.command
        else {
            panic!("task history")
        };
        assert_eq!(id, "0193a1");
        let cli = Cli::try_parse_from(["tasker", "worker", "list", "-o", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Worker {
                action: WorkerCommand::List { .. }
            }
        ));
        let cli = Cli::try_parse_from(["tasker", "worker", "example"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Worker {
                action: WorkerCommand::Run(WorkerAction::Example { .. })
            }
        ));
    }

    #[test]
    fn context_and_context_file_exclude_each_other() {
        let err = Cli::try_parse_from([
            "tasker",
            "task",
            "create",
            "a/b",
            "--context",
            "{}",
            "--context-file",
            "x.json",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
