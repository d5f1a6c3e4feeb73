//! [`Report`]: what one `tasker bench` run measured and under which
//! conditions, as JSON (`--output json`) or as tables.

use std::fmt;

use serde::Serialize;

use super::create::Creation;
use super::database::{CommitFloor, Settings};
use super::idle::Idle;
use super::latency::ShapeLatency;
use super::soak::Soak;
use super::summary::Summary;
use super::throughput::BurnDown;
use crate::cli::{BenchArgs, BenchBackend};
use crate::output::Table;

/// The sizes of a run, after `--quick` and the flags.
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    pub quick: bool,
    /// Seconds of each commit-floor measurement.
    pub floor_seconds: u64,
    /// Latency: tasks per shape.
    pub runs: usize,
    /// Create: tasks per way of creating.
    pub create_tasks: usize,
    /// Throughput: tasks per shape.
    pub tasks: usize,
    pub workers: usize,
    pub concurrency: usize,
    /// Report requests each worker keeps in flight.
    pub report_requests: usize,
    pub idle_workers: usize,
    pub idle_seconds: u64,
    /// Soak: seconds of each phase.
    pub soak_seconds: u64,
}

impl Parameters {
    pub fn from_args(args: &BenchArgs) -> Self {
        let quick = args.quick;
        let pick = |given: Option<usize>, full: usize, short: usize| {
            given.unwrap_or(if quick { short } else { full })
        };
        Self {
            quick,
            floor_seconds: if quick { 1 } else { 3 },
            runs: pick(args.runs, 100, 5),
            create_tasks: pick(args.create_tasks, 1000, 50),
            tasks: pick(args.tasks, 5000, 100),
            workers: args.workers,
            concurrency: args.concurrency,
            report_requests: args.report_requests,
            idle_workers: pick(args.idle_workers, 50, 5),
            idle_seconds: args.idle_seconds.unwrap_or(if quick { 2 } else { 10 }),
            soak_seconds: args.soak_seconds.unwrap_or(if quick { 2 } else { 60 }),
        }
    }
}

/// The machine and software a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub tasker_version: &'static str,
    pub os: &'static str,
    pub server: String,
}

/// What a run read from PostgreSQL itself before it started.
#[derive(Debug, Clone)]
pub struct Postgres {
    pub settings: Settings,
    pub commit_floor: CommitFloor,
}

/// The figures only PostgreSQL gives, listed in a SQLite report's
/// `not_measured`.
const POSTGRES_ONLY_FIGURES: [&str; 5] = [
    "database settings",
    "commit floor",
    "transactions per step",
    "dead rows per step",
    "idle and soak scenarios (idle transactions, dead tuples)",
];

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `postgres` or `sqlite`: the store of the measured server.
    pub backend: &'static str,
    pub machine: Machine,
    /// `None` on SQLite: not measured.
    pub database: Option<Settings>,
    pub parameters: Parameters,
    /// `None` on SQLite: not measured.
    pub commit_floor: Option<CommitFloor>,
    /// Figures this run could not measure on its backend (empty on
    /// PostgreSQL): their fields read `null`, never zero.
    pub not_measured: Vec<&'static str>,
    pub latency: Vec<ShapeLatency>,
    pub create: Vec<Creation>,
    pub throughput: Vec<BurnDown>,
    pub idle: Option<Idle>,
    pub soak: Option<Soak>,
}

impl Report {
    pub fn new(
        parameters: Parameters,
        backend: BenchBackend,
        postgres: Option<Postgres>,
        server: &str,
    ) -> Self {
        let not_measured = match postgres {
            Some(_) => Vec::new(),
            None => POSTGRES_ONLY_FIGURES.to_vec(),
        };
        let (database, commit_floor) = postgres.map(|p| (p.settings, p.commit_floor)).unzip();
        Self {
            backend: match backend {
                BenchBackend::Postgres => "postgres",
                BenchBackend::Sqlite => "sqlite",
            },
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, usize::from),
                tasker_version: env!("CARGO_PKG_VERSION"),
                os: std::env::consts::OS,
                server: server.to_owned(),
            },
            database,
            parameters,
            commit_floor,
            not_measured,
            latency: Vec::new(),
            create: Vec::new(),
            throughput: Vec::new(),
            idle: None,
            soak: None,
        }
    }
}

/// What stands where a figure only PostgreSQL gives would be.
const NOT_MEASURED: &str = "not measured on SQLite";

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

fn rate(value: f64) -> String {
    format!("{value:.0}")
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    })
}

fn summary_cells(summary: Option<Summary>) -> Vec<String> {
    match summary {
        Some(s) => vec![ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms), ms(s.max_ms)],
        None => vec!["-".into(); 4],
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let floor = self.commit_floor.as_ref();
        let store = match &self.database {
            Some(database) => format!("PostgreSQL {}", database.server_version),
            None => "SQLite (tasker dev: one writer connection, synchronous = FULL)".to_owned(),
        };
        writeln!(
            f,
            "tasker {} on {} cores ({}), {store}, server {}",
            self.machine.tasker_version, self.machine.cores, self.machine.os, self.machine.server
        )?;
        match (&self.database, floor) {
            (Some(database), Some(floor)) => {
                let settings: Vec<String> = database
                    .settings
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                writeln!(f, "settings: {}", settings.join(" "))?;
                writeln!(
                    f,
                    "PostgreSQL durable commits/s: {} with 1 connection, {} with 8\n",
                    rate(floor.one_connection),
                    rate(floor.eight_connections)
                )?;
            }
            _ => writeln!(f, "{}: {NOT_MEASURED}\n", self.not_measured.join(", "))?,
        }

        if !self.latency.is_empty() {
            writeln!(f, "Latency, one task at a time (database clock):")?;
            let mut table = Table::new(&["shape", "what", "n", "p50", "p95", "p99", "max"]);
            for shape in &self.latency {
                for (what, summary) in [
                    ("create → complete", shape.create_to_complete),
                    ("handoff (start → start)", shape.handoff),
                ] {
                    let mut row = vec![
                        format!("{} ({} steps)", shape.shape, shape.steps),
                        what.to_owned(),
                        summary.map_or(0, |s| s.count).to_string(),
                    ];
                    row.extend(summary_cells(summary));
                    table.row(row);
                }
            }
            writeln!(f, "{table}")?;
        }

        if !self.create.is_empty() {
            writeln!(f, "Task creation over HTTP:")?;
            let mut table = Table::new(&["shape", "how", "tasks", "tasks/s", "p50", "p99"]);
            for c in &self.create {
                let (p50, p99) = c
                    .sequential
                    .map_or(("-".into(), "-".into()), |s| (ms(s.p50_ms), ms(s.p99_ms)));
                table.row(vec![
                    c.shape.to_owned(),
                    "one by one".into(),
                    c.tasks.to_string(),
                    rate(c.sequential_per_second),
                    p50,
                    p99,
                ]);
                table.row(vec![
                    c.shape.to_owned(),
                    format!("{} in flight", c.concurrency),
                    c.tasks.to_string(),
                    rate(c.concurrent_per_second),
                    "-".into(),
                    "-".into(),
                ]);
                table.row(vec![
                    c.shape.to_owned(),
                    format!("batches of {}", c.batch_size),
                    c.tasks.to_string(),
                    rate(c.batched_per_second),
                    "-".into(),
                    "-".into(),
                ]);
            }
            writeln!(f, "{table}")?;
        }

        if !self.throughput.is_empty() {
            writeln!(
                f,
                "Throughput (tasks created before the workers start: first claim → last finish; \
                 created in batches of {} while they run: first creation → last finish; \
                 database clock):",
                super::throughput::BATCH_SIZE
            )?;
            let mut table = Table::new(&[
                "shape",
                "created",
                "tasks",
                "workers",
                "seconds",
                "tasks/s",
                "steps/s",
                "× 8-conn commits",
                "xacts/step",
                "dead rows/step",
                "server peak rss",
            ]);
            for b in &self.throughput {
                table.row(vec![
                    b.shape.to_owned(),
                    b.created.label().to_owned(),
                    b.tasks.to_string(),
                    format!("{}×{}", b.workers, b.concurrency),
                    format!("{:.2}", b.seconds),
                    rate(b.tasks_per_second),
                    rate(b.steps_per_second),
                    floor.map_or("-".to_owned(), |floor| {
                        format!(
                            "{:.2}",
                            b.steps_per_second / floor.eight_connections.max(1.0)
                        )
                    }),
                    b.transactions_per_step
                        .map_or("-".to_owned(), |x| format!("{x:.2}")),
                    b.dead_rows_per_step
                        .as_ref()
                        .map_or("-".to_owned(), |dead| {
                            format!("{:.2}", dead.values().sum::<f64>())
                        }),
                    mib(b.server_peak_rss_bytes),
                ]);
            }
            writeln!(f, "{table}")?;
            if floor.is_none() {
                writeln!(
                    f,
                    "× 8-conn commits, xacts/step, dead rows/step: {NOT_MEASURED}\n"
                )?;
                return self.fmt_idle_and_soak(f);
            }
            let mut churn = Table::new(&["shape", "created", "table", "dead rows/step"]);
            for b in &self.throughput {
                for (table, per_step) in b.dead_rows_per_step.iter().flatten() {
                    churn.row(vec![
                        b.shape.to_owned(),
                        b.created.label().to_owned(),
                        table.clone(),
                        format!("{per_step:.2}"),
                    ]);
                }
            }
            writeln!(f, "Row churn by table:\n{churn}")?;
        }
        self.fmt_idle_and_soak(f)
    }
}

impl Report {
    fn fmt_idle_and_soak(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(idle) = &self.idle {
            writeln!(
                f,
                "Idle: {} waiting workers → {:.1} database transactions/s over {:.1}s; server rss {}\n",
                idle.workers,
                idle.transactions_per_second,
                idle.seconds,
                mib(idle.server_rss_bytes)
            )?;
        }

        if let Some(soak) = &self.soak {
            writeln!(
                f,
                "Soak: a backlog of {} {} tasks, {}×{} workers; phase `held` runs while another \
                 session holds a transaction open:",
                soak.backlog, soak.shape, soak.workers, soak.concurrency
            )?;
            let mut table = Table::new(&[
                "phase",
                "seconds",
                "steps/s",
                "claim p50",
                "claim p99",
                "dead tuples at end",
                "tables + indexes",
            ]);
            for phase in &soak.phases {
                let (p50, p99) = phase
                    .claim_latency
                    .map_or(("-".into(), "-".into()), |s| (ms(s.p50_ms), ms(s.p99_ms)));
                table.row(vec![
                    phase.name.to_owned(),
                    format!("{:.1}", phase.seconds),
                    rate(phase.steps_per_second),
                    p50,
                    p99,
                    phase.dead_tuples_total().to_string(),
                    mib(Some(phase.table_bytes.max(0) as u64)),
                ]);
            }
            writeln!(f, "{table}")?;
            let mut dead = Table::new(&["phase", "table", "dead tuples"]);
            for phase in &soak.phases {
                for (table, count) in &phase.dead_tuples {
                    dead.row(vec![
                        phase.name.to_owned(),
                        table.clone(),
                        count.to_string(),
                    ]);
                }
            }
            writeln!(f, "Dead tuples by table at the end of each phase:\n{dead}")?;
        }
        Ok(())
    }
}
