//! `eplb rebalance`: new loads and the current placement in; the new placement, its transfer
//! plan and a per-layer gain/cost report out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use eplb::evaluate::{evaluate_with, Requirements};
use eplb::formats::read_placement_with_empty;
use eplb::live::{
    rebalance, CurrentPlacement, ExactBudget, LayerPlan, LayerRebalance, LiveCluster, LiveGpus,
    MoveBudget, Rebalance, RebalanceOptions, SearchEffort, TransferPlan,
};
use eplb::objective::Objective;
use eplb::strategies::Registry;
use eplb::{EplbError, Placement, PlacementStrategy};
use serde_json::json;

use super::place::{render, DocumentExtras, Format, ObjectiveArg};
use super::report::{load, num, pct, table};
use super::{
    strategy_spec, write_output, Global, LoadedProblem, ProblemArgs, SearchArgs, TopologyArgs,
};

/// The budget flags of `rebalance` and `bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BudgetArgs {
    /// At most K transfers per layer (0 keeps the current placement).
    #[arg(
        long,
        value_name = "K",
        conflicts_with = "max_bytes",
        allow_negative_numbers = true
    )]
    max_moves: Option<usize>,
    /// At most B bytes of transfers over all layers, spent where the gain per transfer is
    /// largest.
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    max_bytes: Option<u64>,
    /// Bytes of one expert's weights (default: DeepSeek-V3 in FP8, 3 x 7168 x 2048).
    #[arg(long, value_name = "B", default_value_t = eplb::live::DEFAULT_EXPERT_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    expert_bytes: u64,
    /// Keep the current placement of every layer whose max load would improve by less than
    /// this fraction (e.g. 0.02).
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = fraction)]
    min_gain: f64,
    /// How much the budgeted search searches: `thorough` searches on the layers the quick
    /// rounds leave about 1% or more above their bound (lower max loads there, several times
    /// the time on those layers); `quick` stops after those rounds.
    #[arg(long, value_enum, default_value_t = EffortArg::Thorough)]
    effort: EffortArg,
}

/// `--effort`: the budgeted search's [`SearchEffort`].
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub(crate) enum EffortArg {
    /// The first two rounds of the search (its time set by the budget and the cluster).
    Quick,
    /// The quick rounds, then more searching on the layers they leave high.
    Thorough,
}

impl From<EffortArg> for SearchEffort {
    fn from(arg: EffortArg) -> Self {
        match arg {
            EffortArg::Quick => SearchEffort::Quick,
            EffortArg::Thorough => SearchEffort::Thorough,
        }
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    super::non_negative(text, "a fraction >= 0 (e.g. 0.02 for 2%)")
}

impl BudgetArgs {
    /// The library's options for these flags.
    pub(crate) fn options(&self, solve: eplb::SolveOptions) -> RebalanceOptions {
        let budget = match (self.max_moves, self.max_bytes) {
            (Some(k), _) => MoveBudget::PerLayer(k),
            (None, Some(b)) => MoveBudget::TotalBytes(b),
            (None, None) => MoveBudget::Unlimited,
        };
        RebalanceOptions::new(budget)
            .with_min_gain(self.min_gain)
            .with_expert_bytes(self.expert_bytes)
            .with_solve_options(solve)
            .with_effort(self.effort.into())
    }
}

/// `--current` and the fresh strategy: what `rebalance` and `bench --current` share.
#[derive(Args, Debug)]
pub(crate) struct LiveArgs {
    /// The placement the GPUs hold now: every format `check` reads (DeepSeek JSON, SGLang
    /// JSON, TensorRT-LLM YAML). Slots `-1` are a dead GPU's (all its slots or none), as
    /// `place --failed-gpus` writes them; such GPUs must be listed in --failed-gpus.
    #[arg(long, value_name = "FILE")]
    pub(crate) current: PathBuf,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RebalanceArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    #[command(flatten)]
    live: LiveArgs,
    /// The strategy of the fresh placement (the unlimited-budget candidate, aligned).
    #[arg(long, default_value = "refine")]
    strategy: String,
    #[command(flatten)]
    search: SearchArgs,
    #[command(flatten)]
    topology: TopologyArgs,
    /// Output format of --out.
    #[arg(long, value_enum, default_value_t = Format::Deepseek)]
    format: Format,
    /// Write the new placement here, exactly as `place` writes it (default: not written).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the transfer plan here (JSON: per layer, the moves in rounds).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Worker threads over layers for the fresh placement (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::limits::threads)]
    threads: Option<usize>,
    #[command(flatten)]
    failed: FailedArgs,
    /// Draw the max-load-versus-transfers trade-off curve of --plot-layer (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// The layer drawn by --plot (index into the loads).
    #[arg(long, value_name = "L", default_value_t = 0)]
    plot_layer: usize,
    /// What the rebalance minimises per layer: the max GPU load of the summed loads (mean),
    /// or, for per-step loads ([steps][layers][experts]), the sum over steps of each step's
    /// max GPU load or the worst step's; the budgeted search's choices and the report use it.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Mean)]
    objective: ObjectiveArg,
    /// No GPU holds two replicas of one expert (vllm-ascend rejects such tables): the search
    /// never adds one, the fresh placement is separated, and a current placement that has some
    /// is separated first (those swaps are forced, like host reloads).
    #[arg(long)]
    distinct_replicas: bool,
    /// Exact budgeted mode: every layer's answer goes on to a MILP that minimises the max GPU
    /// load within the layer's transfers (--max-moves, or what --max-bytes allocated to the
    /// layer), started from the heuristic's answer, so never worse; --time-limit per layer,
    /// --mip-gap. The lower bound is the budgeted problem's (at least the combinatorial one,
    /// stronger when the budget binds) and `optimal` is claimed only when the max load meets
    /// it. Needs --objective mean (per-step objectives are refused); pure-Rust backend: small
    /// layers only (DeepSeek-size layers need the `highs` feature).
    #[arg(long)]
    exact: bool,
}

/// Reads the current placement for `loaded`'s problem, whose GPUs may be dead (`-1` slots):
/// those must be among the `failed` GPUs. Without failed GPUs the whole placement is checked;
/// with them, the rebalance or alignment on the live GPUs checks it.
pub(crate) fn read_current(
    path: &Path,
    loaded: &LoadedProblem,
    failed: Option<&LiveGpus>,
) -> Result<Placement, EplbError> {
    let problem = &loaded.problem;
    let read = read_placement_with_empty(
        path,
        problem.num_experts(),
        problem.num_layers(),
        loaded.first_layer,
    )?;
    let in_file = |e: EplbError| EplbError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    let current = CurrentPlacement::new(problem.cluster(), read.placement, &read.empty_slots)
        .map_err(in_file)?;
    current.check_failed(failed).map_err(in_file)?;
    if failed.is_none_or(LiveGpus::all_live) {
        eplb::live::check_current(problem, &current.placement).map_err(in_file)?;
    }
    Ok(current.placement)
}

/// The fresh strategy `name` for `cluster`.
pub(crate) fn fresh_strategy(
    name: &str,
    topology: &TopologyArgs,
    cluster: &eplb::Cluster,
) -> Result<Box<dyn PlacementStrategy>, EplbError> {
    let hierarchical = topology.hierarchical(&[name.to_string()], cluster)?;
    Registry::new().build(&strategy_spec(name, &hierarchical))
}

pub(crate) fn run(args: &RebalanceArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    let live = args.failed.live(problem.cluster())?;
    let current = read_current(&args.live.current, &loaded, live.as_ref())?;
    super::check_picture(args.plot.as_deref(), args.plot_layer, problem)?;
    let strategy = fresh_strategy(&args.strategy, &args.topology, problem.cluster())?;
    let mut options = args
        .live
        .budget
        .options(args.search.solve_options(args.threads));
    if let Some(live) = &live {
        options = options.with_live(live.clone());
    }
    let objective = Objective::from(args.objective);
    match &loaded.steps {
        Some(steps) => options = options.with_steps(objective, steps.clone()),
        None if objective.is_per_step() => {
            return Err(EplbError::ObjectiveNeedsSteps { objective });
        }
        None => {}
    }
    options = options.with_distinct_replicas(args.distinct_replicas);
    if args.exact {
        options = options.with_exact(
            ExactBudget::default()
                .with_time_limit(args.search.time_limit)
                .with_gap(args.search.mip_gap),
        );
    }
    let result = rebalance(problem, &current, Some(strategy.as_ref()), &options)?;
    let all = LiveGpus::all(problem.cluster().gpus);
    let mask = live.as_ref().unwrap_or(&all);
    let plan = TransferPlan::with_live(
        problem,
        &current,
        &result.placement,
        options.expert_bytes,
        mask,
    )?;
    // Judged on the live cluster the rebalance used (its policy may have fallen back).
    let evaluation = match &result.live {
        Some(cluster) => cluster.evaluate(problem, &result.placement)?,
        None => {
            let requirements = Requirements::new().with_distinct_replicas(args.distinct_replicas);
            evaluate_with(problem, &result.placement, &[], requirements)?
        }
    };
    if let Some(reason) = result.live.as_ref().and_then(|l| l.fallback.as_ref()) {
        global.notice(reason);
    }
    // Everything is computed before anything is written.
    let placement_text = args
        .out
        .as_ref()
        .map(|_| match &result.live {
            Some(cluster) => render_live(
                args.format,
                problem,
                cluster,
                &result.placement,
                &evaluation,
                loaded.first_layer,
            ),
            None => render(
                args.format,
                problem,
                &result.placement,
                &evaluation,
                DocumentExtras::default(),
                loaded.first_layer,
            ),
        })
        .transpose()?;
    let plan_text = args
        .plan
        .as_ref()
        .map(|_| plan_json(&result, &plan, loaded.first_layer).to_string());
    if let (Some(path), Some(text)) = (&args.out, &placement_text) {
        write_output(Some(path), text)?;
    }
    if let (Some(path), Some(text)) = (&args.plan, &plan_text) {
        write_output(Some(path), text)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "layer {}: max load vs transfers",
            loaded.first_layer + args.plot_layer
        );
        super::plot_curve::draw(&title, &result.layers[args.plot_layer], path)?;
        global.notice(&format!("plot written to {}", path.display()));
    }
    if global.json {
        out!("{}", report_json(&result, &plan, loaded.first_layer));
    } else if !global.quiet {
        out!("{}", summary_table(&result, &plan, loaded.first_layer));
    }
    if !evaluation.is_feasible() {
        eprintln!("error: the rebalanced placement is infeasible");
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--plan` document: per layer, the gain and cost and the moves.
fn plan_json(result: &Rebalance, plan: &TransferPlan, first_layer: usize) -> serde_json::Value {
    document(
        result,
        plan,
        first_layer,
        |_, p| json!({ "moves": p.moves }),
    )
}

/// `--json`: the per-layer report with each layer's trade-off curve.
fn report_json(result: &Rebalance, plan: &TransferPlan, first_layer: usize) -> serde_json::Value {
    document(
        result,
        plan,
        first_layer,
        |r, _| json!({ "lower_bound": r.lower_bound, "curve": r.curve, "fresh": r.fresh }),
    )
}

/// Gain and cost of every layer plus what `extra` adds, the update order and the totals.
fn document(
    result: &Rebalance,
    plan: &TransferPlan,
    first_layer: usize,
    extra: impl Fn(&LayerRebalance, &LayerPlan) -> serde_json::Value,
) -> serde_json::Value {
    let layers: Vec<serde_json::Value> = result
        .layers
        .iter()
        .zip(&plan.layers)
        .map(|(r, p)| {
            let mut row = json!({
                "layer": first_layer + r.layer,
                "transfers": p.transfers,
                "cross_node": p.cross_node,
                "host_reloads": p.host_reloads,
                "local_copies": p.local_copies,
                "bytes": p.bytes,
                "rounds": p.rounds,
                "rounds_lower_bound": p.rounds_lower_bound,
                "old_max": r.old_max,
                "new_max": r.new_max,
                "gain": r.gain,
                "choice": r.choice,
                "optimal": r.optimal,
            });
            if let (Some(row), serde_json::Value::Object(more)) = (row.as_object_mut(), extra(r, p))
            {
                row.extend(more);
            }
            row
        })
        .collect();
    let mut doc = json!({
        "layers": layers,
        "update_order": result.update_order.iter().map(|l| first_layer + l).collect::<Vec<_>>(),
        "transfers": plan.transfers(),
        "bytes": plan.bytes(),
    });
    if result.objective.is_per_step() {
        // `old_max` and `new_max` are this objective's values.
        doc["objective"] = json!(result.objective.name());
    }
    doc
}

/// The per-layer table with totals.
fn summary_table(
    result: &Rebalance,
    plan: &TransferPlan,
    first_layer: usize,
) -> comfy_table::Table {
    let (old_name, new_name) = if result.objective.is_per_step() {
        let name = result.objective.name();
        (format!("old {name}"), format!("new {name}"))
    } else {
        ("old max".to_string(), "new max".to_string())
    };
    let mut t = table(&[
        "layer",
        &old_name,
        &new_name,
        "gain",
        "transfers",
        "cross-node",
        "rounds",
        "choice",
    ]);
    for (r, p) in result.layers.iter().zip(&plan.layers) {
        t.add_row(vec![
            num((first_layer + r.layer).to_string()),
            num(load(r.old_max)),
            num(load(r.new_max)),
            num(pct(r.gain)),
            num(p.transfers.to_string()),
            num(p.cross_node.to_string()),
            num(format!("{} (bound {})", p.rounds, p.rounds_lower_bound)),
            comfy_table::Cell::new(format!("{:?}", r.choice).to_lowercase()),
        ]);
    }
    let old: f64 = result.layers.iter().map(|r| r.old_max).sum();
    let new: f64 = result.layers.iter().map(|r| r.new_max).sum();
    let gain = if old > 0.0 { (old - new) / old } else { 0.0 };
    t.add_row(vec![
        comfy_table::Cell::new("total"),
        num(load(old)),
        num(load(new)),
        num(pct(gain)),
        num(plan.transfers().to_string()),
        num(plan
            .layers
            .iter()
            .map(|p| p.cross_node)
            .sum::<usize>()
            .to_string()),
        num(plan
            .layers
            .iter()
            .map(|p| p.rounds)
            .sum::<usize>()
            .to_string()),
        comfy_table::Cell::new(format!("{} bytes", plan.bytes())),
    ]);
    t
}

/// `--failed-gpus`: the dead GPUs.
#[derive(Args, Debug, Clone)]
pub(crate) struct FailedArgs {
    /// GPUs that failed (comma-separated ids): place only on the others; their slots are -1
    /// in `phy2log` (SGLang: expert 0, never referenced).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    failed_gpus: Vec<usize>,
}

impl FailedArgs {
    /// The live mask, when some GPU failed.
    pub(crate) fn live(&self, cluster: &eplb::Cluster) -> Result<Option<LiveGpus>, EplbError> {
        if self.failed_gpus.is_empty() {
            return Ok(None);
        }
        LiveGpus::with_failed(cluster.gpus, &self.failed_gpus).map(Some)
    }
}

/// A placement with failed GPUs in `format`: DeepSeek JSON with dead slots `-1` in `phy2log`
/// (and no `log2phy` entry for them), metrics of the live GPUs; the other formats as `place`
/// writes them (dead slots hold expert 0, SGLang's convention).
pub(crate) fn render_live(
    format: Format,
    problem: &eplb::Problem,
    live: &LiveCluster,
    placement: &Placement,
    evaluation: &eplb::Evaluation,
    first_layer: usize,
) -> Result<String, EplbError> {
    if format != Format::Deepseek {
        return render(
            format,
            problem,
            placement,
            evaluation,
            DocumentExtras::default(),
            first_layer,
        );
    }
    let flat = live.to_deepseek_flat(placement)?;
    let phy2log: Vec<&[i64]> = flat.phy2log.chunks(flat.slots.max(1)).collect();
    let log2phy: Vec<Vec<&[i64]>> = flat
        .log2phy
        .chunks((flat.experts * flat.width).max(1))
        .map(|layer| layer.chunks(flat.width.max(1)).collect())
        .collect();
    let logcnt: Vec<&[i64]> = flat.logcnt.chunks(flat.experts.max(1)).collect();
    let failed: Vec<usize> = (0..problem.cluster().gpus)
        .filter(|g| !live.live_gpus().contains(g))
        .collect();
    Ok(json!({
        "phy2log": phy2log,
        "log2phy": log2phy,
        "logcnt": logcnt,
        "failed_gpus": failed,
        "policy": live.policy,
        "policy_fallback": live.fallback,
        "layers": eplb::formats::deepseek::PlacementDocument::metrics(evaluation, None, false),
    })
    .to_string())
}
