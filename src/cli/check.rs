//! `eplb check`: judge a placement made elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::formats::deepseek::{read_placement, PlacementDocument};
use eplb::{evaluate, EplbError};

use super::report::{layer_table, summary_line};
use super::ProblemArgs;

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    /// The placement: JSON with at least `phy2log` (what `eplb place` writes is accepted).
    #[arg(long, value_name = "FILE")]
    placement: PathBuf,
    /// Print machine-readable JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode, EplbError> {
    let problem = args.problem.problem()?;
    let placement = read_placement(&args.placement, problem.num_experts())?;
    let evaluation = evaluate(&problem, &placement, &[])?;
    if args.json {
        #[derive(serde::Serialize)]
        struct CheckOutput<'a> {
            feasible: bool,
            layers: &'a [eplb::formats::deepseek::LayerMetrics],
            summary: &'a eplb::evaluate::Summary,
        }
        let doc = PlacementDocument::new(&problem, &placement, &evaluation, None, true);
        // Out-of-range ids have no DeepSeek arrays; report metrics without them.
        let layers: Vec<_> = match &doc {
            Ok(d) => d.layers.clone(),
            Err(_) => PlacementDocument::metrics(&evaluation, None, true),
        };
        let out = CheckOutput {
            feasible: evaluation.is_feasible(),
            layers: &layers,
            summary: &evaluation.summary,
        };
        println!("{}", serde_json::to_string(&out).expect("serialisable"));
    } else {
        for r in &evaluation.layers {
            for v in &r.violations {
                println!("layer {}: {v}", r.layer);
            }
        }
        println!("{}", layer_table(&evaluation, None));
        println!("{}", summary_line(&evaluation));
    }
    Ok(if evaluation.is_feasible() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    })
}
