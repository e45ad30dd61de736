//! `eplb check`: judge a placement made elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::evaluate::{evaluate_with, Requirements};
use eplb::formats::{deepseek::PlacementDocument, read_placement};
use eplb::objective::evaluate_steps;
use eplb::EplbError;

use super::report::{layer_table, step_summary_line, step_table, summary_line};
use super::{Global, ProblemArgs};

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    /// The placement: DeepSeek JSON (`phy2log`, what `eplb place` writes), SGLang JSON
    /// (`physical_to_logical_map`) or TensorRT-LLM YAML (`.yaml`/`.yml`).
    #[arg(long, value_name = "FILE")]
    placement: PathBuf,
    /// Also require that no GPU holds two replicas of one expert (vllm-ascend's rule).
    #[arg(long)]
    distinct_replicas: bool,
}

pub(crate) fn run(args: &CheckArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    let (placement, format) = read_placement(
        &args.placement,
        problem.num_experts(),
        problem.num_layers(),
        loaded.first_layer,
    )?;
    let requirements = Requirements::new().with_distinct_replicas(args.distinct_replicas);
    let evaluation = evaluate_with(problem, &placement, &[], requirements)?;
    if let Some(notice) = super::report::cut_short_bounds_notice(&evaluation) {
        global.notice(&notice);
    }
    let steps = loaded
        .steps
        .as_ref()
        .map(|steps| evaluate_steps(problem, steps, &placement))
        .transpose()?;
    if global.json {
        let mut out = serde_json::json!({
            "format": format!("{format:?}").to_lowercase(),
            "feasible": evaluation.is_feasible(),
            "layers": PlacementDocument::metrics(&evaluation, None, true),
            "summary": &evaluation.summary,
        });
        if let Some(steps) = &steps {
            out["steps"] = serde_json::to_value(steps).expect("serialisable");
        }
        out!("{out}");
    } else {
        for r in &evaluation.layers {
            for v in &r.violations {
                out!("layer {}: {v}", r.layer);
            }
        }
        out!("{}", layer_table(&evaluation, None));
        out!("{}", summary_line(&evaluation));
        if let Some(steps) = &steps {
            out!("{}", step_table(steps));
            out!("{}", step_summary_line(steps));
        }
    }
    Ok(if evaluation.is_feasible() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    })
}
