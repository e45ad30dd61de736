//! `eplb check`: judge a placement made elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::evaluate::{evaluate_with, Requirements};
use eplb::formats::{deepseek::PlacementDocument, read_placement_with_empty};
use eplb::live::{evaluate_live, CurrentPlacement};
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
    /// GPUs that failed: the placement is judged on the others. A GPU whose slots are -1 in
    /// the placement (what `place --failed-gpus` writes) must be listed.
    #[command(flatten)]
    failed: super::rebalance::FailedArgs,
}

pub(crate) fn run(args: &CheckArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    let live = args.failed.live(problem.cluster())?;
    if live.is_some() && (args.distinct_replicas || loaded.steps.is_some()) {
        return Err(EplbError::InvalidFailedGpus(
            "--failed-gpus cannot be combined with --distinct-replicas or per-step loads yet; check the live GPUs with plain loads".into(),
        ));
    }
    let read = read_placement_with_empty(
        &args.placement,
        problem.num_experts(),
        problem.num_layers(),
        loaded.first_layer,
    )?;
    let format = read.format;
    let in_file = |e: EplbError| EplbError::InFile {
        path: args.placement.clone(),
        source: Box::new(e),
    };
    // Every GPU that is -1 in the file must be among the failed ones.
    let current = CurrentPlacement::new(problem.cluster(), read.placement, &read.empty_slots)
        .map_err(in_file)?;
    current.check_failed(live.as_ref()).map_err(in_file)?;
    let placement = current.placement;
    let evaluation = match &live {
        Some(live) => evaluate_live(problem, &placement, live)?,
        None => {
            let requirements = Requirements::new().with_distinct_replicas(args.distinct_replicas);
            evaluate_with(problem, &placement, &[], requirements)?
        }
    };
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
        if let Some(live) = &live {
            out["failed_gpus"] = serde_json::json!(live.failed());
        }
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
