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
    #[arg(long, allow_negative_numbers = true, value_parser = crate::limits::threads)]
    threads: Option<usize>,
}

pub(crate) fn run(args: &PlaceArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    args.plot.check(problem)?;
    let strategy = args.strategy.build(problem.cluster())?;
    let bar = global.progress(problem.num_layers() as u64, strategy.name());
    let solution = solve_observed(
        problem,
        strategy.as_ref(),
        &args.strategy.search.solve_options(args.threads),
        &|_| bar.inc(1),
    )?;
    bar.finish_and_clear();
    let evaluation = evaluate(problem, &solution.placement, &solution.claims())?;
    let text = match args.format {
        Format::Deepseek => {
            let doc = PlacementDocument::new(
                problem,
                &solution.placement,
                &evaluation,
                Some(&solution),
                args.gpu_loads,
            )?;
            serde_json::to_string(&doc).expect("placement documents serialise")
        }
        Format::Sglang => sglang::to_json(&solution.placement, loaded.first_layer).to_string(),
        Format::Trtllm => trtllm::to_yaml(&solution.placement, loaded.first_layer),
        Format::Csv => gpu_loads_csv(&evaluation, loaded.first_layer),
    };
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
