//! The `eplb` command line (see `eplb --help`): argument definitions and dispatch. Each command
//! lives in its own file; they share the cluster flags, problem loading, output and progress
//! helpers here. The library is the `eplb` crate; this crate adds the command line, tables,
//! progress bars and pictures.

#![forbid(unsafe_code)]

/// `println!` that ends the program quietly when standard output is closed (e.g. `| head`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}

mod bench;
mod check;
mod compare;
mod demo;
mod limits;
mod place;
mod plot;
mod plot_curve;
mod rebalance;
mod report;
mod strategies;
mod sweep;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eplb::formats::{LoadsFile, ReadOptions};
use eplb::strategies::{HierarchicalSpec, Registry, StrategySpec};
use eplb::topology::Topology;
use eplb::{Cluster, EplbError, PolicyChoice, Problem};
use indicatif::{ProgressBar, ProgressStyle};

/// Exit status of a run that found a constraint violation or hit an error.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "eplb",
    version,
    about = "Expert placement for Mixture-of-Experts serving: DeepSeek EPLB bit-exact, better strategies, certified gaps.",
    after_help = "Examples:
  eplb demo
  eplb place --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --out placement.json
  eplb place --loads stats.json --replicas 288 --gpus 32 --format sglang --out init_expert_location.json
  eplb check --loads stats.json --placement placement.json --replicas 288 --gpus 32 --nodes 4 --groups 8
  eplb compare --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategies greedy --plot cmp.svg
  eplb sweep --loads a.json b.json --replicas 288,320 --gpus 32,64 --out sweep.csv
  eplb bench --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategy greedy

Exit status: 0 ok, 1 constraint violation or error, 2 usage error."
)]
struct Cli {
    /// Print only results and errors: no notices, no progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Machine-readable JSON on standard output instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute a placement from expert-load statistics.
    #[command(after_help = "Examples:
  eplb place --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --out placement.json
  eplb place --loads logical_count.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --format sglang --out init.json
  eplb place --loads stats.npy --replicas 160 --gpus 32 --format trtllm --out eplb.yaml --plot layer.svg")]
    Place(place::PlaceArgs),
    /// Evaluate a placement made elsewhere (vLLM, SGLang, TensorRT-LLM): constraints and balance.
    #[command(after_help = "Examples:
  eplb check --loads stats.json --placement placement.json --replicas 288 --gpus 32 --nodes 4 --groups 8
  eplb check --loads stats.json --placement eplb.yaml --replicas 288 --gpus 32 --json")]
    Check(check::CheckArgs),
    /// Run several strategies on one problem: balance, gap to the best bound, proven layers, time.
    #[command(after_help = "Example:
  eplb compare --loads stats.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --strategies greedy --plot cmp.svg")]
    Compare(compare::CompareArgs),
    /// Sweep files x cluster shapes x strategies; one CSV/JSON row per combination.
    #[command(after_help = "Example:
  eplb sweep --loads a.json b.json --replicas 288,320 --gpus 32,64 --nodes 4 --groups 8 --strategies greedy --out sweep.csv")]
    Sweep(sweep::SweepArgs),
    /// Rebalance a live placement for new loads: fewest transfers, a move budget, a plan.
    #[command(after_help = "Examples:
  eplb rebalance --loads new.json --current placement.json --replicas 288 --gpus 32 --policy global --max-moves 28 --out new_placement.json --plan plan.json
  eplb rebalance --loads new.json --current placement.json --replicas 288 --gpus 32 --nodes 4 --groups 8 --max-bytes 20000000000 --min-gain 0.02")]
    Rebalance(rebalance::RebalanceArgs),
    /// Time one full multi-layer solve in-process; prints one JSON line with `median_ns`.
    Bench(bench::BenchArgs),
    /// List the available strategies.
    Strategies(strategies::StrategiesArgs),
    /// Run every strategy on built-in examples and print the comparison.
    Demo(demo::DemoArgs),
}

/// Flags every command sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Global {
    quiet: bool,
    json: bool,
}

impl Global {
    /// A notice for the user on standard error (suppressed by --quiet).
    fn notice(&self, message: &str) {
        if !self.quiet {
            eprintln!("note: {message}");
        }
    }

    /// A progress bar over `len` steps, drawn only on a terminal and without --quiet.
    fn progress(&self, len: u64, message: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }
}

/// Where the loads come from and what the cluster looks like.
#[derive(Args, Debug, Clone)]
pub(crate) struct ProblemArgs {
    /// Expert loads: JSON (`[[...]]`, or an object with `loads` or `logical_count`), CSV (one
    /// layer a row) or NumPy .npy; `-` reads JSON from standard input.
    #[arg(long, value_name = "FILE")]
    loads: PathBuf,
    /// Keep the leading all-zero layers of SGLang `logical_count` dumps (dense layers).
    #[arg(long)]
    keep_zero_layers: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The cluster flags shared by every command.
#[derive(Args, Debug, Clone)]
pub(crate) struct ClusterArgs {
    /// Physical expert slots R over all GPUs (a multiple of --gpus, at least the expert count).
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = limits::slots)]
    replicas: usize,
    /// GPUs P.
    #[arg(long, value_name = "P", allow_negative_numbers = true, value_parser = limits::count)]
    gpus: usize,
    /// Nodes N (GPU g sits on node g / (P / N)).
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true, value_parser = limits::count)]
    nodes: usize,
    /// Expert groups G (consecutive expert ids), for node-limited routing.
    #[arg(long, value_name = "G", default_value_t = 1, allow_negative_numbers = true, value_parser = limits::count)]
    groups: usize,
    /// auto: hierarchical when G % N == 0, else global (as DeepSeek decides).
    #[arg(long, value_enum, default_value_t = PolicyArg::Auto)]
    policy: PolicyArg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PolicyArg {
    Auto,
    Hierarchical,
    Global,
}

impl PolicyArg {
    fn choice(self) -> PolicyChoice {
        match self {
            PolicyArg::Auto => PolicyChoice::Auto,
            PolicyArg::Hierarchical => PolicyChoice::Hierarchical,
            PolicyArg::Global => PolicyChoice::Global,
        }
    }
}

impl ClusterArgs {
    fn cluster(&self) -> Cluster {
        Cluster::new(self.replicas, self.gpus)
            .with_nodes(self.nodes)
            .with_groups(self.groups)
    }
}

/// A validated problem and where its layers sit in the model.
pub(crate) struct LoadedProblem {
    problem: Problem,
    first_layer: usize,
    /// Every step's loads when the file has a step axis.
    steps: Option<eplb::objective::StepLoads>,
}

impl ProblemArgs {
    /// Reads the loads (printing notices) and validates the problem.
    fn load(&self, global: Global) -> Result<LoadedProblem, EplbError> {
        let file = read_loads(&self.loads, self.keep_zero_layers, global)?;
        let problem = Problem::new(
            file.loads,
            self.cluster.cluster(),
            self.cluster.policy.choice(),
        )?;
        let c = &self.cluster;
        if c.policy == PolicyArg::Auto
            && problem.policy() == eplb::Policy::Global
            && (c.nodes > 1 || c.groups > 1)
        {
            global.notice(&format!(
                "--policy auto: {} groups on {} nodes do not meet the hierarchical policy's rules (groups a multiple of nodes, experts of groups, GPUs of nodes): using the global policy",
                c.groups, c.nodes
            ));
        }
        Ok(LoadedProblem {
            problem,
            first_layer: file.first_layer,
            steps: file.steps,
        })
    }
}

/// Reads a load file, printing its notices.
fn read_loads(
    path: &std::path::Path,
    keep_zero_layers: bool,
    global: Global,
) -> Result<LoadsFile, EplbError> {
    let file = eplb::formats::read_loads(path, ReadOptions { keep_zero_layers })?;
    for note in &file.notes {
        global.notice(&format!("{}: {note}", path.display()));
    }
    Ok(file)
}

/// `--topology` and `--sub-strategy`: the `hierarchical` strategy over a deeper cluster tree or
/// with another strategy inside each node.
#[derive(Args, Debug, Clone)]
pub(crate) struct TopologyArgs {
    /// Cluster tree for `--strategy hierarchical` (JSON; racks -> nodes -> GPUs, any depth; see
    /// the README). It must agree with --replicas, --gpus and --nodes.
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// The strategy `hierarchical` runs inside each node.
    #[arg(long, value_name = "NAME", default_value = HierarchicalSpec::DEFAULT_LEAF)]
    sub_strategy: String,
}

/// The strategy flags of `place` and `bench`: one strategy, its search limits and, for
/// `hierarchical`, its topology.
#[derive(Args, Debug)]
pub(crate) struct StrategyArgs {
    /// Strategy to use (see `eplb strategies`).
    #[arg(long, default_value = "greedy")]
    strategy: String,
    #[command(flatten)]
    pub(crate) search: SearchArgs,
    #[command(flatten)]
    topology: TopologyArgs,
}

impl StrategyArgs {
    /// The strategy the flags describe, for problems on `cluster`.
    fn build(&self, cluster: &Cluster) -> Result<Box<dyn eplb::PlacementStrategy>, EplbError> {
        let hierarchical = self
            .topology
            .hierarchical(std::slice::from_ref(&self.strategy), cluster)?;
        Registry::new().build(&strategy_spec(&self.strategy, &hierarchical))
    }
}

impl TopologyArgs {
    /// The configuration of `hierarchical` the flags give, with the topology file read and
    /// checked against `cluster`.
    ///
    /// # Errors
    /// When the flags are given but no strategy in `names` is `hierarchical`, or the topology
    /// file is unreadable, invalid or does not fit `cluster`.
    fn hierarchical(
        &self,
        names: &[String],
        cluster: &Cluster,
    ) -> Result<HierarchicalSpec, EplbError> {
        let mut spec = HierarchicalSpec::new(self.sub_strategy.as_str());
        let customised = self.topology.is_some() || !spec.is_default();
        if customised && !names.iter().any(|n| n == HierarchicalSpec::STRATEGY) {
            return Err(EplbError::Format {
                path: "--topology/--sub-strategy".into(),
                message:
                    "these flags configure the `hierarchical` strategy: add it to the strategies"
                        .into(),
            });
        }
        if let Some(path) = &self.topology {
            let topology = Topology::from_json(path)?;
            topology.check_cluster(cluster)?;
            spec.topology = Some(topology);
        }
        Ok(spec)
    }
}

/// The `--plot` flags of `place` and `compare`.
#[derive(Args, Debug, Clone)]
pub(crate) struct PlotArgs {
    /// Draw per-GPU loads (before/after, per strategy) of --plot-layer and the balancedness of
    /// every layer (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// The layer drawn by --plot (index into the loads).
    #[arg(long, value_name = "L", default_value_t = 0)]
    plot_layer: usize,
}

impl PlotArgs {
    /// Fails early (before solving) when the picture format is unknown or the layer to draw
    /// does not exist.
    fn check(&self, problem: &Problem) -> Result<(), EplbError> {
        check_picture(self.plot.as_deref(), self.plot_layer, problem)
    }

    /// Draws the evaluated placements, if a picture was asked for.
    fn draw(
        &self,
        title: String,
        problem: &Problem,
        after: &[(&str, &eplb::Evaluation)],
        global: Global,
    ) -> Result<(), EplbError> {
        if let Some(path) = &self.plot {
            let plot = plot::LoadPlot::new(title, problem, self.plot_layer, after);
            plot::draw(&plot, path)?;
            global.notice(&format!("plot written to {}", path.display()));
        }
        Ok(())
    }
}

/// Fails early (before any work) when `plot` is not an `.svg` or `.png` file name or `layer`
/// does not exist.
fn check_picture(
    plot: Option<&std::path::Path>,
    layer: usize,
    problem: &Problem,
) -> Result<(), EplbError> {
    if let Some(path) = plot {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("svg" | "png")) {
            return Err(EplbError::Format {
                path: path.into(),
                message: "unknown picture format: use a file name ending in .svg or .png".into(),
            });
        }
        if layer >= problem.num_layers() {
            return Err(EplbError::Format {
                path: "--plot-layer".into(),
                message: format!(
                    "layer {layer} does not exist: the loads have {} layers",
                    problem.num_layers()
                ),
            });
        }
    }
    Ok(())
}

/// Settings of searching strategies (ignored by heuristics).
#[derive(Args, Debug, Clone)]
pub(crate) struct SearchArgs {
    /// Time limit per layer for exact strategies, in seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = limits::seconds)]
    time_limit: Option<Duration>,
    /// Relative gap at which exact strategies may stop (default: prove optimality).
    #[arg(long, value_name = "X", value_parser = non_negative_gap)]
    mip_gap: Option<f64>,
}

fn non_negative_gap(text: &str) -> Result<f64, String> {
    non_negative(text, "a relative gap >= 0 (e.g. 0.001 for 0.1%)")
}

/// A finite number `>= 0`, or a message saying that `text` is not `what`.
fn non_negative(text: &str, what: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("`{text}` is not {what}")),
    }
}

impl SearchArgs {
    /// The runner's options: these limits per layer, `threads` worker threads over layers.
    fn solve_options(&self, threads: Option<usize>) -> eplb::SolveOptions {
        eplb::SolveOptions::new()
            .with_threads(threads)
            .with_time_limit(self.time_limit)
            .with_mip_gap(self.mip_gap)
            .with_kernels(kernels_from_env())
    }
}

/// The environment variable that makes the greedy engines run their portable code instead of
/// their vector kernels, AVX-512 or AVX2 (to test or time it on a processor that has them). The command line is
/// the one place that reads it; the library takes the choice as an argument.
const DISABLE_AVX512_VAR: &str = "EPLB_DISABLE_AVX512";

/// The kernel choice the environment asks for.
fn kernels_from_env() -> eplb::Kernels {
    if std::env::var_os(DISABLE_AVX512_VAR).is_some() {
        eplb::Kernels::Portable
    } else {
        eplb::Kernels::Auto
    }
}

/// Parses the command line, runs the command, maps errors to exit status 1 (usage errors exit
/// with 2 through clap).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        quiet: cli.quiet,
        json: cli.json,
    };
    let result = match cli.command {
        Command::Place(args) => place::run(&args, global),
        Command::Check(args) => check::run(&args, global),
        Command::Compare(args) => compare::run(&args, global),
        Command::Sweep(args) => sweep::run(&args, global),
        Command::Rebalance(args) => rebalance::run(&args, global),
        Command::Bench(args) => bench::run(&args, global),
        Command::Strategies(args) => strategies::run(&args, global),
        Command::Demo(args) => demo::run(&args, global),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Writes one line to standard output; a closed pipe ends the program with status 0.
pub(crate) fn print_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}").and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(i32::from(EXIT_FAILURE));
    }
}

/// Writes `text` to `path`, or to standard output when `path` is `None`.
fn write_output(path: Option<&PathBuf>, text: &str) -> Result<(), EplbError> {
    match path {
        None => {
            out!("{text}");
            Ok(())
        }
        Some(p) => {
            let text = if text.ends_with('\n') {
                text.to_string()
            } else {
                format!("{text}\n")
            };
            std::fs::write(p, text).map_err(|source| EplbError::Io {
                path: p.clone(),
                source,
            })
        }
    }
}

/// The names in `a,b,c` (all built-in ones when `None`).
///
/// # Errors
/// [`EplbError::NoStrategies`] when the list names none.
fn strategy_names(text: Option<&str>) -> Result<Vec<String>, EplbError> {
    match text {
        Some(t) => {
            let names: Vec<String> = t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if names.is_empty() {
                return Err(EplbError::NoStrategies {
                    list: t.to_string(),
                    available: eplb::strategies::names().join(", "),
                });
            }
            Ok(names)
        }
        None => Ok(eplb::strategies::names()),
    }
}

/// The strategies `names`, each built from its spec: for `hierarchical`, its configuration
/// (the search limits are the runner's: [`SearchArgs::solve_options`]).
fn build_strategies(
    names: &[String],
    hierarchical: &HierarchicalSpec,
) -> Result<Vec<Box<dyn eplb::PlacementStrategy>>, EplbError> {
    let registry = Registry::new();
    names
        .iter()
        .map(|name| registry.build(&strategy_spec(name, hierarchical)))
        .collect()
}

/// The spec of the strategy called `name`.
fn strategy_spec(name: &str, hierarchical: &HierarchicalSpec) -> StrategySpec {
    StrategySpec::new(name).with_hierarchical(hierarchical.clone())
}
