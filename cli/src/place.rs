//! `eplb place`: loads in, placement out.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use eplb::formats::{csv::gpu_loads_csv, deepseek::PlacementDocument, sglang, trtllm};
use eplb::{evaluate, solve_observed, EplbError};

use super::report::{layer_table, summary_line};
use super::{write_output, Global, PlotArgs, ProblemArgs, StrategyArgs};

/// Output formats of `place`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// DeepSeek's phy2log / log2phy / logcnt plus per-layer metrics (vLLM's layout).
    Deepseek,
    /// SGLang `--init-expert-location` file: {"physical_to_logical_map": [model layers][R]}.
    Sglang,
    /// TensorRT-LLM load-balancer YAML (num_slots, initial_global_assignments by model layer).
    Trtllm,
    /// Per-GPU loads of every layer, for spreadsheets.
    Csv,
}

#[derive(Args, Debug)]
pub(crate) struct PlaceArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    #[command(flatten)]
    strategy: StrategyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Deepseek)]
    format: Format,
    /// Write the placement here (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Include per-GPU loads of every layer in the deepseek JSON.
    #[arg(long)]
    gpu_loads: bool,
    #[command(flatten)]
    plot: PlotArgs,
    /// Worker threads over layers (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The placement the GPUs hold now (any format `check` reads): relabel the result to need
    /// the fewest weight transfers from it (same GPU loads; see `eplb rebalance`).
    #[arg(long, value_name = "FILE", conflicts_with = "failed_gpus")]
    current: Option<PathBuf>,
    #[command(flatten)]
    failed: super::rebalance::FailedArgs,
}

pub(crate) fn run(args: &PlaceArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    args.plot.check(problem)?;
    if let Some(live) = args.failed.live(problem.cluster())? {
        return run_live(args, &loaded, &live, global);
    }
    let current = args
        .current
        .as_ref()
        .map(|path| super::rebalance::read_current(path, &loaded))
        .transpose()?;
    let strategy = args.strategy.build(problem.cluster())?;
    let bar = global.progress(problem.num_layers() as u64, strategy.name());
    let mut solution = solve_observed(
        problem,
        strategy.as_ref(),
        &args.strategy.search.solve_options(args.threads),
        &|_| bar.inc(1),
    )?;
    bar.finish_and_clear();
    if let Some(current) = &current {
        let fresh = solution.placement.clone();
        solution.placement = eplb::live::align(problem, current, &solution.placement)?;
        let (mut before, mut after) = (0, 0);
        for l in 0..problem.num_layers() {
            let count = |p: &eplb::Placement| {
                eplb::live::count_transfers(problem.cluster(), current.layer(l), p.layer(l))
            };
            before += count(&fresh).transfers;
            after += count(&solution.placement).transfers;
        }
        global.notice(&format!(
            "aligned to the current placement: {after} transfers (unaligned: {before})"
        ));
    }
    let evaluation = evaluate(problem, &solution.placement, &solution.claims())?;
    let text = render(
        args.format,
        problem,
        &solution.placement,
        &evaluation,
        Some(&solution),
        args.gpu_loads,
        loaded.first_layer,
    )?;
    write_output(args.out.as_ref(), &text)?;
    let title = format!(
        "{} — {} on {}",
        args.problem.loads.display(),
        strategy.name(),
        super::report::shape(problem)
    );
    args.plot
        .draw(title, problem, &[(strategy.name(), &evaluation)], global)?;
    if args.out.is_some() && !global.quiet {
        if global.json {
            out!(
                "{}",
                serde_json::to_string(&evaluation.summary).expect("serialisable")
            );
        } else {
            out!("{}", layer_table(&evaluation, Some(&solution)));
            out!("{}", summary_line(&evaluation));
        }
    }
    for r in &evaluation.layers {
        for v in &r.claim_violations {
            eprintln!("warning: layer {}: `{}` {v}", r.layer, strategy.name());
        }
    }
    if !evaluation.is_feasible() {
        eprintln!(
            "error: strategy `{}` produced an infeasible placement",
            strategy.name()
        );
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of `placement` in `format`, exactly as `place` writes it (`rebalance --out` too).
pub(crate) fn render(
    format: Format,
    problem: &eplb::Problem,
    placement: &eplb::Placement,
    evaluation: &eplb::Evaluation,
    solution: Option<&eplb::Solution>,
    gpu_loads: bool,
    first_layer: usize,
) -> Result<String, EplbError> {
    Ok(match format {
        Format::Deepseek => {
            let doc = PlacementDocument::new(problem, placement, evaluation, solution, gpu_loads)?;
            serde_json::to_string(&doc).expect("placement documents serialise")
        }
        Format::Sglang => sglang::to_json(placement, first_layer).to_string(),
        Format::Trtllm => trtllm::to_yaml(placement, first_layer),
        Format::Csv => gpu_loads_csv(evaluation, first_layer),
    })
}

/// `place --failed-gpus`: solve on the live GPUs, write dead slots as `-1` (SGLang: expert 0).
fn run_live(
    args: &PlaceArgs,
    loaded: &super::LoadedProblem,
    live: &eplb::live::LiveGpus,
    global: Global,
) -> Result<ExitCode, EplbError> {
    let problem = &loaded.problem;
    let cluster = live.live_cluster(problem)?;
    if let Some(reason) = &cluster.fallback {
        global.notice(reason);
    }
    let strategy = args.strategy.build(&cluster.cluster)?;
    let placed = eplb::live::place_on_live(
        problem,
        strategy.as_ref(),
        live,
        &args.strategy.search.solve_options(args.threads),
    )?;
    let text = super::rebalance::render_live(
        args.format,
        problem,
        &placed.live,
        &placed.placement,
        &placed.evaluation,
        loaded.first_layer,
    )?;
    write_output(args.out.as_ref(), &text)?;
    if args.out.is_some() && !global.quiet {
        out!("{}", layer_table(&placed.evaluation, None));
        out!("{}", summary_line(&placed.evaluation));
    }
    if !placed.evaluation.is_feasible() {
        eprintln!(
            "error: strategy `{}` produced an infeasible placement",
            strategy.name()
        );
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
