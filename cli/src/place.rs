//! `eplb place`: loads in, placement out.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use eplb::evaluate::{evaluate_with, Requirements};
use eplb::formats::{csv::gpu_loads_csv, deepseek::PlacementDocument, sglang, trtllm};
use eplb::objective::{evaluate_steps, optimise, ExactStepSearch, Objective, StepEvaluation};
use eplb::strategies::DistinctReplicas;
use eplb::{solve_observed, EplbError, Placement, SolveStatus};

use super::report::{layer_table, step_summary_line, step_table, summary_line};
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
    /// What to minimise over the steps of per-step loads ([steps][layers][experts]): the max
    /// GPU load of the mean loads (mean), the sum over steps of each step's max
    /// (sum-of-step-max) or the max of any step (worst-step). The per-step objectives start
    /// from the strategy's placement for the mean and only keep replica swaps that lower them;
    /// after `exact` or `ilp`, a MILP with one max variable per step follows (--time-limit
    /// per layer) and the report says which layers it proved.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Mean)]
    objective: ObjectiveArg,
    /// No GPU holds two replicas of one expert (vllm-ascend rejects such tables): the
    /// strategy's answer is separated by replica swaps when it is not distinct already.
    #[arg(long)]
    distinct_replicas: bool,
    /// The placement the GPUs hold now (any format `check` reads): relabel the result to need
    /// the fewest weight transfers from it (same GPU loads; see `eplb rebalance`). Slots `-1`
    /// are a dead GPU's (all its slots or none); such GPUs must be listed in --failed-gpus.
    #[arg(long, value_name = "FILE")]
    current: Option<PathBuf>,
    #[command(flatten)]
    failed: super::rebalance::FailedArgs,
}

/// Strategies after which a per-step objective is searched exactly (the per-step MILP).
const EXACT_STRATEGIES: [&str; 2] = ["exact", "ilp"];

/// `--objective` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectiveArg {
    /// Max GPU load of the mean loads (what every strategy minimises).
    Mean,
    /// Sum over steps of each step's max GPU load (SGLang's deepseek_vec goal).
    SumOfStepMax,
    /// Max GPU load of any step.
    WorstStep,
}

impl From<ObjectiveArg> for Objective {
    fn from(arg: ObjectiveArg) -> Self {
        match arg {
            ObjectiveArg::Mean => Objective::Mean,
            ObjectiveArg::SumOfStepMax => Objective::SumOfStepMax,
            ObjectiveArg::WorstStep => Objective::WorstStep,
        }
    }
}

pub(crate) fn run(args: &PlaceArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    args.plot.check(problem)?;
    let objective = Objective::from(args.objective);
    if objective.is_per_step() && loaded.steps.is_none() {
        return Err(EplbError::ObjectiveNeedsSteps { objective });
    }
    if let Some(live) = args.failed.live(problem.cluster())? {
        if objective.is_per_step() || args.distinct_replicas {
            return Err(EplbError::InvalidFailedGpus(
                "--failed-gpus cannot be combined with --distinct-replicas or a per-step --objective yet; place on the live GPUs with --objective mean and without --distinct-replicas".into(),
            ));
        }
        return run_live(args, &loaded, &live, global);
    }
    let current = args
        .current
        .as_ref()
        .map(|path| super::rebalance::read_current(path, &loaded, None))
        .transpose()?;
    let mut strategy = args.strategy.build(problem.cluster())?;
    if args.distinct_replicas {
        strategy = Box::new(DistinctReplicas::new(strategy));
    }
    let bar = global.progress(problem.num_layers() as u64, strategy.name());
    let mut solution = solve_observed(
        problem,
        strategy.as_ref(),
        &args.strategy.search.solve_options(args.threads),
        &|_| bar.inc(1),
    )?;
    bar.finish_and_clear();
    let mut certificates = Vec::new();
    if let Some(steps) = &loaded.steps {
        let placement = if EXACT_STRATEGIES.contains(&args.strategy.strategy.as_str()) {
            let found = ExactStepSearch::default()
                .with_time_limit(args.strategy.search.time_limit)
                .with_gap(args.strategy.search.mip_gap)
                .optimise(
                    problem,
                    steps,
                    &solution.placement,
                    objective,
                    args.distinct_replicas,
                )?;
            certificates = found.layers;
            found.placement
        } else {
            optimise(
                problem,
                steps,
                &solution.placement,
                objective,
                args.distinct_replicas,
            )?
        };
        for (outcome, (old, new)) in solution
            .layers
            .iter_mut()
            .zip(solution.placement.layers().iter().zip(placement.layers()))
        {
            if old != new {
                // A placement for another objective: the strategy's status was about its own.
                outcome.status = SolveStatus::Heuristic;
            }
        }
        solution.placement = placement;
    }
    if let Some(current) = &current {
        let fresh = solution.placement.clone();
        solution.placement = eplb::live::align(problem, current, &solution.placement)?;
        notice_alignment(
            global,
            problem.cluster(),
            current,
            &fresh,
            &solution.placement,
        );
    }
    let requirements = Requirements::new().with_distinct_replicas(args.distinct_replicas);
    let evaluation = evaluate_with(
        problem,
        &solution.placement,
        &solution.claims(),
        requirements,
    )?;
    if let Some(notice) = super::report::cut_short_bounds_notice(&evaluation) {
        global.notice(&notice);
    }
    let step_evaluation = loaded
        .steps
        .as_ref()
        .map(|steps| evaluate_steps(problem, steps, &solution.placement))
        .transpose()?;
    let text = render(
        args.format,
        problem,
        &solution.placement,
        &evaluation,
        DocumentExtras {
            solution: Some(&solution),
            gpu_loads: args.gpu_loads,
            steps: step_evaluation.as_ref(),
        },
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
            let summary = match &step_evaluation {
                None => serde_json::to_string(&evaluation.summary),
                Some(steps) => serde_json::to_value(&evaluation.summary).map(|mut v| {
                    v["steps"] = serde_json::to_value(steps).expect("serialisable");
                    v.to_string()
                }),
            };
            out!("{}", summary.expect("serialisable"));
        } else {
            out!("{}", layer_table(&evaluation, Some(&solution)));
            out!("{}", summary_line(&evaluation));
            if let Some(steps) = &step_evaluation {
                out!("{}", step_table(steps));
                out!("{}", step_summary_line(steps));
            }
            if !certificates.is_empty() {
                let proven = certificates.iter().filter(|c| c.proven).count();
                let bound: f64 = certificates.iter().map(|c| c.lower_bound).sum();
                out!(
                    "{objective}: {proven}/{} layers proven optimal for their replica counts; lower bound over all layers {bound}",
                    certificates.len()
                );
            }
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

/// What the DeepSeek document carries besides the placement and its evaluation.
#[derive(Clone, Copy, Default)]
pub(crate) struct DocumentExtras<'a> {
    /// The solution (statuses, bounds, times), when the placement was solved here.
    pub(crate) solution: Option<&'a eplb::Solution>,
    /// Include per-GPU loads of every layer.
    pub(crate) gpu_loads: bool,
    /// Per-step objectives of every layer, when the loads have steps.
    pub(crate) steps: Option<&'a StepEvaluation>,
}

/// The text of `placement` in `format`, exactly as `place` writes it (`rebalance --out` too).
pub(crate) fn render(
    format: Format,
    problem: &eplb::Problem,
    placement: &eplb::Placement,
    evaluation: &eplb::Evaluation,
    extras: DocumentExtras<'_>,
    first_layer: usize,
) -> Result<String, EplbError> {
    Ok(match format {
        Format::Deepseek => {
            let mut doc = PlacementDocument::new(
                problem,
                placement,
                evaluation,
                extras.solution,
                extras.gpu_loads,
            )?;
            if let Some(steps) = extras.steps {
                doc = doc.with_steps(steps);
            }
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
    let current = args
        .current
        .as_ref()
        .map(|path| super::rebalance::read_current(path, loaded, Some(live)))
        .transpose()?;
    let strategy = args.strategy.build(&cluster.cluster)?;
    let mut placed = eplb::live::place_on_live(
        problem,
        strategy.as_ref(),
        live,
        &args.strategy.search.solve_options(args.threads),
    )?;
    if let Some(current) = &current {
        let fresh = placed.placement.clone();
        placed.placement = eplb::live::align_live(problem, current, &fresh, live)?;
        // Counted on the live GPUs: dead ones receive nothing.
        let on_live = |p: &Placement| placed.live.restrict_all(p);
        notice_alignment(
            global,
            &placed.live.cluster,
            &on_live(current),
            &on_live(&fresh),
            &on_live(&placed.placement),
        );
    }
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

/// Tells how many transfers the alignment to `current` saved.
fn notice_alignment(
    global: Global,
    cluster: &eplb::Cluster,
    current: &Placement,
    fresh: &Placement,
    aligned: &Placement,
) {
    let transfers = |p: &Placement| -> usize {
        (0..current.num_layers())
            .map(|l| eplb::live::count_transfers(cluster, current.layer(l), p.layer(l)).transfers)
            .sum()
    };
    global.notice(&format!(
        "aligned to the current placement: {} transfers (unaligned: {})",
        transfers(aligned),
        transfers(fresh)
    ));
}
