//! Command-line interface: argument definitions and dispatch. Each command lives in its own
//! file; they share the cluster flags and the problem loading defined here.

mod bench;
mod check;
mod demo;
mod place;
mod report;
mod strategies;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eplb::strategies::StrategyOptions;
use eplb::{Cluster, EplbError, PolicyChoice, Problem};

/// Exit status of a run that found a constraint violation or hit an error.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "eplb",
    version,
    about = "Expert placement for Mixture-of-Experts serving: DeepSeek EPLB bit-exact, better strategies, certified gaps.",
    after_help = "Examples:\n  eplb demo\n  eplb place --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --out placement.json\n  eplb check --loads stats.json --placement placement.json --replicas 288 --gpus 32 --nodes 4 --groups 8\n  eplb bench --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategy greedy\n\nExit status: 0 ok, 1 constraint violation or error, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute a placement from expert-load statistics.
    Place(place::PlaceArgs),
    /// Evaluate a placement made elsewhere (e.g. by vLLM or SGLang): constraints and balance.
    Check(check::CheckArgs),
    /// Time one full multi-layer solve in-process; prints one JSON line with `median_ns`.
    Bench(bench::BenchArgs),
    /// List the available strategies.
    Strategies(strategies::StrategiesArgs),
    /// Run every strategy on built-in examples and print the comparison.
    Demo(demo::DemoArgs),
}

/// Where the loads come from and what the cluster looks like.
#[derive(Args, Debug, Clone)]
pub(crate) struct ProblemArgs {
    /// Expert loads: JSON `[[...]]`, or an object with key `loads` or `logical_count`
    /// (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    loads: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The cluster flags shared by every command.
#[derive(Args, Debug, Clone)]
pub(crate) struct ClusterArgs {
    /// Physical expert slots R over all GPUs (a multiple of --gpus, at least the expert count).
    #[arg(long, value_name = "R")]
    replicas: usize,
    /// GPUs P.
    #[arg(long, value_name = "P")]
    gpus: usize,
    /// Nodes N (GPU g sits on node g / (P / N)).
    #[arg(long, value_name = "N", default_value_t = 1)]
    nodes: usize,
    /// Expert groups G (consecutive expert ids), for node-limited routing.
    #[arg(long, value_name = "G", default_value_t = 1)]
    groups: usize,
    /// auto: hierarchical when G % N == 0, else global (as DeepSeek decides).
    #[arg(long, value_enum, default_value_t = PolicyArg::Auto)]
    policy: PolicyArg,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum PolicyArg {
    Auto,
    Hierarchical,
    Global,
}

impl ClusterArgs {
    fn cluster(&self) -> Cluster {
        Cluster::new(self.replicas, self.gpus)
            .with_nodes(self.nodes)
            .with_groups(self.groups)
    }

    fn policy(&self) -> PolicyChoice {
        match self.policy {
            PolicyArg::Auto => PolicyChoice::Auto,
            PolicyArg::Hierarchical => PolicyChoice::Hierarchical,
            PolicyArg::Global => PolicyChoice::Global,
        }
    }
}

impl ProblemArgs {
    /// Reads the loads and validates the problem.
    fn problem(&self) -> Result<Problem, EplbError> {
        let loads = eplb::formats::loads::read_loads(&self.loads)?;
        Problem::new(loads, self.cluster.cluster(), self.cluster.policy())
    }
}

/// Settings of searching strategies (ignored by heuristics).
#[derive(Args, Debug, Clone)]
pub(crate) struct SearchArgs {
    /// Time limit per layer for exact strategies, in seconds.
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    time_limit: Option<Duration>,
    /// Relative gap at which exact strategies may stop (default: prove optimality).
    #[arg(long, value_name = "X", value_parser = non_negative_gap)]
    mip_gap: Option<f64>,
}

fn positive_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

fn non_negative_gap(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(g) if g.is_finite() && g >= 0.0 => Ok(g),
        _ => Err(format!(
            "`{text}` is not a relative gap >= 0 (e.g. 0.001 for 0.1%)"
        )),
    }
}

impl SearchArgs {
    fn options(&self) -> StrategyOptions {
        StrategyOptions {
            time_limit: self.time_limit,
            mip_gap: self.mip_gap,
            threads: None,
        }
    }
}

/// Parses the command line, runs the command, maps errors to exit status 1 (usage errors exit
/// with 2 through clap).
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Place(args) => place::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Strategies(args) => strategies::run(&args),
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Writes `text` to `path`, or to standard output when `path` is `None`.
fn write_output(path: Option<&PathBuf>, text: &str) -> Result<(), EplbError> {
    match path {
        None => {
            println!("{text}");
            Ok(())
        }
        Some(p) => std::fs::write(p, format!("{text}\n")).map_err(|source| EplbError::Io {
            path: p.clone(),
            source,
        }),
    }
}
