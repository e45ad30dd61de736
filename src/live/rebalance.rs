//! The budgeted rebalance: the best placement for new loads within a transfer budget,
//! starting from the current one.

use serde::Serialize;

use super::align::align_layer;
use super::budget::{search, CurvePoint, Replicas, SearchEffort, SearchResult};
use super::exact::{improve_layer, ExactBudget};
use super::failed::{reload_missing, LiveCluster, LiveGpus};
use super::holdings::{count_transfers, TransferCount};
use crate::bounds::proven_lower_bound;
use crate::error::{EplbError, Result};
use crate::evaluate::max_gpu_load;
use crate::objective::{optimise, region_gpus, step_report, Objective, StepLoads};
use crate::placement::{LayerPlacement, Placement};
use crate::problem::{LayerProblem, Problem};
use crate::runner::{solve, SolveOptions};
use crate::strategies::distinct::{check_distinct_possible, DistinctReplicas};
use crate::strategy::PlacementStrategy;
use eplb_solvers::scenarios::separate_copies;

/// Bytes of one expert's weights by default: DeepSeek-V3 in FP8, three `7168 x 2048`
/// matrices (about 44 MB).
pub const DEFAULT_EXPERT_BYTES: u64 = 3 * 7168 * 2048;

/// The function that judges a layer's placement (lower is better): the max GPU load
/// ([`max_gpu_load`]) by default. Every choice [`rebalance`] makes between candidate
/// placements of a layer goes through it.
pub type LayerObjective = fn(&LayerProblem<'_>, &LayerPlacement) -> f64;

/// How many transfers a rebalance may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MoveBudget {
    /// No limit: the best placement found, whatever it costs.
    Unlimited,
    /// At most this many transfers in every layer. 0 keeps the current placement as it is
    /// (not even local copies).
    PerLayer(usize),
    /// At most this many bytes over all layers (`transfers * expert_bytes`), spent where the
    /// gain per transfer is largest. Less than one expert keeps the current placement as it
    /// is.
    TotalBytes(u64),
}

/// Settings of [`rebalance`].
#[derive(Debug, Clone)]
pub struct RebalanceOptions {
    /// The transfer budget.
    pub budget: MoveBudget,
    /// Keep the current placement of every layer whose objective would improve by less
    /// than this fraction (`0.0`: take every improvement).
    pub min_gain: f64,
    /// Bytes of one expert's weights.
    pub expert_bytes: u64,
    /// What judges a layer's placement.
    pub objective: LayerObjective,
    /// How the fresh placement (the unlimited-budget candidate) is solved.
    pub solve: SolveOptions,
    /// The live GPUs, when some failed (`None`: all alive).
    pub live: Option<LiveGpus>,
    /// The per-step objective, with the per-step loads it judges ([`RebalanceOptions::with_steps`];
    /// `None`: `objective`).
    pub steps: Option<StepObjective>,
    /// No GPU holds two replicas of one expert ([`RebalanceOptions::with_distinct_replicas`]).
    pub distinct_replicas: bool,
    /// The exact budgeted mode, when asked ([`RebalanceOptions::with_exact`]).
    pub exact: Option<ExactBudget>,
    /// How much the budgeted search searches ([`RebalanceOptions::with_effort`]).
    pub effort: SearchEffort,
}

/// A per-step objective and the per-step loads (`[steps][layers][experts]`) it is judged on:
/// what a [`rebalance`] minimises instead of the max GPU load of the problem's loads.
#[derive(Debug, Clone, PartialEq)]
pub struct StepObjective {
    /// The objective ([`Objective::Mean`] judges the problem's loads, as without steps).
    pub objective: Objective,
    /// The loads of every step, of the problem's shape.
    pub steps: StepLoads,
}

impl RebalanceOptions {
    /// Options with `budget`, no minimum gain, [`DEFAULT_EXPERT_BYTES`], the max GPU load as
    /// the objective, the runner's default options.
    pub fn new(budget: MoveBudget) -> Self {
        Self {
            budget,
            min_gain: 0.0,
            expert_bytes: DEFAULT_EXPERT_BYTES,
            objective: max_gpu_load,
            solve: SolveOptions::new(),
            live: None,
            steps: None,
            distinct_replicas: false,
            exact: None,
            effort: SearchEffort::default(),
        }
    }

    /// The options with the budgeted search's `effort` ([`SearchEffort::Thorough`] by
    /// default; [`SearchEffort::Quick`] bounds a rebalance's time by the budget and the
    /// cluster rather than by how far the layers end above their bounds).
    #[must_use]
    pub fn with_effort(self, effort: SearchEffort) -> Self {
        Self { effort, ..self }
    }

    /// The options with the exact budgeted mode: every layer's answer goes on to the budgeted
    /// MILP ([`ExactBudget`]), which keeps it unless it finds a lower max load within the
    /// layer's budget (per layer, or the transfers a byte budget allocated to the layer), and
    /// reports the budgeted problem's lower bound ([`super::budgeted_lower_bound`]). Needs the
    /// max-load objective.
    #[must_use]
    pub fn with_exact(self, exact: ExactBudget) -> Self {
        Self {
            exact: Some(exact),
            ..self
        }
    }

    /// The options judging layers by `objective` over the per-step loads `steps` (a per-step
    /// objective is what the budgeted search's choices minimise and what the report shows;
    /// see [`rebalance`]).
    #[must_use]
    pub fn with_steps(self, objective: Objective, steps: StepLoads) -> Self {
        Self {
            steps: Some(StepObjective { objective, steps }),
            ..self
        }
    }

    /// The options with distinct replicas: no GPU of the new placement holds two replicas of
    /// one expert (see [`rebalance`]).
    #[must_use]
    pub fn with_distinct_replicas(self, distinct_replicas: bool) -> Self {
        Self {
            distinct_replicas,
            ..self
        }
    }

    /// The per-step objective, if one judges the layers.
    fn per_step(&self) -> Option<&StepObjective> {
        self.steps.as_ref().filter(|s| s.objective.is_per_step())
    }

    /// The value of `placement` on `layer` under the options' objective (lower is better).
    fn value(&self, layer: &LayerProblem<'_>, placement: &LayerPlacement) -> Result<f64> {
        match self.per_step() {
            Some(s) => Ok(step_report(layer, &s.steps, placement)?.value(s.objective)),
            None => Ok((self.objective)(layer, placement)),
        }
    }

    /// A lower bound on the options' objective for any placement of `layer` (the
    /// combinatorial bounds, [lowered for rounding](proven_lower_bound): of the layer's loads,
    /// `proven`, or of every step's loads and of their sum for a per-step objective).
    fn lower_bound(&self, layer: &LayerProblem<'_>, proven: f64) -> Result<f64> {
        let Some(s) = self.per_step() else {
            return Ok(proven);
        };
        let bound = |loads: &[f64]| -> Result<f64> {
            let step = LayerProblem::new(layer.index(), loads, layer.cluster(), layer.policy())?;
            Ok(proven_lower_bound(&step))
        };
        let per_step = (0..s.steps.num_steps())
            .map(|k| bound(s.steps.step(k).layer(layer.index())))
            .collect::<Result<Vec<f64>>>()?;
        Ok(match s.objective {
            // Each step's max is at least its own bound; and the sum over steps of each
            // step's max is at least the max over GPUs of the summed loads.
            Objective::SumOfStepMax => {
                let total: Vec<f64> = (0..layer.num_experts())
                    .map(|e| {
                        (0..s.steps.num_steps())
                            .map(|k| s.steps.step(k).layer(layer.index())[e])
                            .sum()
                    })
                    .collect();
                // The f64 sum of k bounds is within (k - 1) roundings of the exact sum: lowered by
                // that, it stays below.
                let k = per_step.len() as f64;
                let sum = per_step.iter().sum::<f64>();
                let steps_sum = (sum * (1.0 - k * f64::EPSILON)).next_down().max(0.0);
                steps_sum.max(bound(&total)?)
            }
            Objective::WorstStep | Objective::Mean => per_step.into_iter().fold(0.0, f64::max),
        })
    }

    /// The options with failed GPUs: only `live` GPUs hold replicas.
    #[must_use]
    pub fn with_live(self, live: LiveGpus) -> Self {
        Self {
            live: Some(live),
            ..self
        }
    }

    /// The options with a minimum gain.
    #[must_use]
    pub fn with_min_gain(self, min_gain: f64) -> Self {
        Self { min_gain, ..self }
    }

    /// The options with another expert size.
    #[must_use]
    pub fn with_expert_bytes(self, expert_bytes: u64) -> Self {
        Self {
            expert_bytes,
            ..self
        }
    }

    /// The options with the fresh placement solved under `solve`.
    #[must_use]
    pub fn with_solve_options(self, solve: SolveOptions) -> Self {
        Self { solve, ..self }
    }

    fn check(&self, problem: &Problem) -> Result<()> {
        if !(self.min_gain.is_finite() && self.min_gain >= 0.0) {
            return Err(EplbError::InvalidBudget(format!(
                "minimum gain {} is not a fraction >= 0 (e.g. 0.02 for 2%)",
                self.min_gain
            )));
        }
        if self.expert_bytes == 0 && matches!(self.budget, MoveBudget::TotalBytes(_)) {
            return Err(EplbError::InvalidBudget(
                "a byte budget needs an expert size >= 1 byte".into(),
            ));
        }
        if let Some(s) = self.per_step() {
            s.steps.check_fits(problem)?;
        }
        if self.exact.is_some() {
            if let Some(s) = self.per_step() {
                return Err(EplbError::InvalidBudget(format!(
                    "the exact mode minimises the max GPU load; it cannot minimise the per-step objective `{}` (use the heuristic, or --objective mean)",
                    s.objective
                )));
            }
        }
        if self.distinct_replicas {
            problem
                .layers()
                .try_for_each(|l| check_distinct_possible(&l))?;
        }
        Ok(())
    }
}

/// Where a layer's new placement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Choice {
    /// The current placement, kept (no improvement, a zero budget, or below `min_gain`).
    Current,
    /// The budgeted local search from the current placement.
    Search,
    /// The fresh placement of the strategy, aligned to the current one.
    Fresh,
    /// The exact budgeted mode's MILP, which improved on the heuristic's answer.
    Exact,
}

/// What the rebalance did to one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LayerRebalance {
    /// Layer index.
    pub layer: usize,
    /// The objective (max GPU load by default) of the current placement under the new loads.
    pub old_max: f64,
    /// The objective of the new placement.
    pub new_max: f64,
    /// `(old_max - new_max) / old_max` (0 when `old_max` is 0).
    pub gain: f64,
    /// A certified lower bound on the objective (the max GPU load by default) of any
    /// placement of the layer, with any budget (the evaluator's combinatorial bounds; a
    /// budget only raises the optimum), so `new_max / lower_bound - 1` bounds how far the
    /// answer is from the budgeted optimum. In the exact mode with a budget, the stronger
    /// bound of the budgeted problem ([`super::budgeted_lower_bound`], for the layer's
    /// transfers). Per-step objectives: `sum-of-step-max` is at
    /// least the sum of every step's bound and the bound of the summed loads, `worst-step`
    /// at least every step's bound.
    pub lower_bound: f64,
    /// True when `new_max` meets `lower_bound`: no placement within any budget is better.
    pub optimal: bool,
    /// Transfers and cross-node transfers of the new placement.
    #[serde(flatten)]
    pub count: TransferCount,
    /// Where the new placement came from.
    pub choice: Choice,
    /// The search's max-load-versus-transfers curve (starts at the current placement).
    pub curve: Vec<CurvePoint>,
    /// The fresh placement's point (its transfers after alignment, its max load), when a
    /// fresh strategy was given.
    pub fresh: Option<CurvePoint>,
    /// With a per-step objective: its value at every point of `curve` (whose `max_load` is
    /// the max GPU load of the problem's loads), then at `fresh`'s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective_values: Option<Vec<f64>>,
}

/// The result of [`rebalance`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Rebalance {
    /// The new placement (every layer aligned to the current one).
    pub placement: Placement,
    /// One entry per layer.
    pub layers: Vec<LayerRebalance>,
    /// The layers that change, most gain per transfer first: the order to update them in
    /// when a serving stack updates a few layers at a time.
    pub update_order: Vec<usize>,
    /// With failed GPUs: the live cluster the placement was made on (its policy, whether it
    /// fell back to global, `-1` output for dead slots).
    pub live: Option<LiveCluster>,
    /// The objective of `old_max` and `new_max` in the layer reports ([`Objective::Mean`]:
    /// the options' `objective`, the max GPU load by default).
    pub objective: Objective,
}

impl Rebalance {
    /// Transfers over all layers.
    pub fn transfers(&self) -> usize {
        self.layers.iter().map(|l| l.count.transfers).sum()
    }
}

/// Rebalances `current` for `problem`'s (new) loads within `options.budget` transfers.
///
/// Per layer, three candidates: the current placement, the budgeted local search from it
/// (see the search's docs in the source, `src/live/budget.rs`), and, when given, `fresh` (a
/// strategy, `refine` in the command line) solved from scratch and
/// [aligned](super::align()); without it the rebalance is the search alone (fast: no
/// placement from scratch). The best
/// one within the budget wins (the objective, then fewer transfers), so the result is never
/// worse than keeping the current placement and, with an unlimited budget, never worse than
/// `fresh` followed by `align`. A byte budget over all layers goes, step by step, to the
/// layer whose next point on its trade-off curve gains the most per transfer.
///
/// With a per-step objective ([`RebalanceOptions::with_steps`]) every choice is judged by it:
/// the search's steps are proposed on the problem's loads, and the point of its curve (or
/// the fresh placement, after the per-step swap search [`optimise`]) with the lowest
/// objective within the budget wins; the layer reports give the objective's values. With
/// distinct replicas ([`RebalanceOptions::with_distinct_replicas`]) no search step puts a
/// second replica of an expert on a GPU, the fresh placement is [`DistinctReplicas`], and a
/// current placement that is not distinct is separated first (those swaps are forced, like
/// host reloads: the layer reports count transfers from the separated placement, a
/// [`TransferPlan`](super::TransferPlan) from the real one).
///
/// # Errors
/// [`EplbError::InvalidPlacement`] when `current` does not fit `problem` (shape, unknown or
/// missing experts, group rules; with failed GPUs in `options.live`, the group rules are
/// checked on the live GPUs only, since the failed GPUs' slots are dropped and experts that
/// only lived there are reloaded); [`EplbError::InvalidBudget`] for a negative or non-finite
/// `min_gain`; [`EplbError::InvalidStepLoads`] for per-step loads of another shape;
/// [`EplbError::DistinctReplicasImpossible`] when a GPU has more slots than experts may go on
/// it; the fresh strategy's error.
pub fn rebalance(
    problem: &Problem,
    current: &Placement,
    fresh: Option<&dyn PlacementStrategy>,
    options: &RebalanceOptions,
) -> Result<Rebalance> {
    options.check(problem)?;
    if let Some(live) = options.live.as_ref().filter(|l| !l.all_live()) {
        // The failed GPUs' slots are dropped: the live part (after the reloads) is checked
        // on the live cluster.
        super::check_with_failed(problem, current, "the current placement")?;
        return rebalance_live(problem, current, fresh, options, live);
    }
    super::check_current(problem, current)?;
    if options.distinct_replicas {
        if let Some(separated) = separate(problem, current)? {
            // Not distinct: the separated placement is where the rebalance starts (its
            // swaps are forced, like host reloads; the plan counts them from `current`).
            return rebalance(problem, &separated, fresh, options);
        }
    }
    let cluster = problem.cluster();
    let live = LiveGpus::all(cluster.gpus);
    let solution = match fresh {
        Some(strategy) if options.distinct_replicas => Some(solve(
            problem,
            &DistinctReplicas::new(strategy),
            &options.solve,
        )?),
        Some(strategy) => Some(solve(problem, strategy, &options.solve)?),
        None => None,
    };
    let fresh_placement = match (solution, options.per_step()) {
        (Some(s), Some(step)) => Some(optimise(
            problem,
            &step.steps,
            &s.placement,
            step.objective,
            options.distinct_replicas,
        )?),
        (s, _) => s.map(|s| s.placement),
    };
    let replicas = if options.distinct_replicas {
        Replicas::Distinct
    } else {
        Replicas::MayShareGpu
    };
    let per_layer_cap = match options.budget {
        MoveBudget::PerLayer(k) => k,
        MoveBudget::Unlimited | MoveBudget::TotalBytes(_) => usize::MAX,
    };
    struct Work {
        old: f64,
        /// The layer's proven lower bound (its loads' max GPU load).
        bound: f64,
        search: SearchResult,
        fresh: Option<LayerPlacement>,
        fresh_point: Option<CurvePoint>,
        /// Per-step objective only: its value at every curve point, then at the fresh one.
        values: Option<Vec<f64>>,
    }
    let work: Vec<Work> = problem
        .layers()
        .map(|layer| -> Result<Work> {
            let l = layer.index();
            let cur = current.layer(l);
            let aligned = fresh_placement
                .as_ref()
                .map(|s| align_layer(cluster, problem.policy(), cur, s.layer(l)));
            let fresh_point = aligned.as_ref().map(|a| CurvePoint {
                transfers: count_transfers(cluster, cur, a).transfers,
                max_load: max_gpu_load(&layer, a),
            });
            let bound = proven_lower_bound(&layer);
            let search = search(
                &layer,
                cur,
                per_layer_cap,
                &live,
                replicas,
                options.effort,
                bound,
            );
            let values = match options.per_step() {
                Some(_) => {
                    let mut values = search.values(cur, |p| options.value(&layer, p))?;
                    if let Some(a) = &aligned {
                        values.push(options.value(&layer, a)?);
                    }
                    Some(values)
                }
                None => None,
            };
            Ok(Work {
                old: options.value(&layer, cur)?,
                bound,
                search,
                fresh: aligned,
                fresh_point,
                values,
            })
        })
        .collect::<Result<_>>()?;

    // Per layer: how many search steps to take, or the fresh placement.
    let picks: Vec<Pick> = match options.budget {
        MoveBudget::TotalBytes(bytes) => {
            let total = usize::try_from(bytes / options.expert_bytes).unwrap_or(usize::MAX);
            allocate(
                &work
                    .iter()
                    .map(|w| options_of(&w.search.curve, w.fresh_point, w.values.as_deref()))
                    .collect::<Vec<_>>(),
                total,
            )
        }
        _ => problem
            .layers()
            .zip(&work)
            .map(|(layer, w)| -> Result<Pick> {
                if let Some(values) = &w.values {
                    // Per-step: the best point within the cap (fewer transfers on ties).
                    let best = options_of(&w.search.curve, w.fresh_point, Some(values))
                        .into_iter()
                        .filter(|&(t, _, _)| t <= per_layer_cap)
                        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    return Ok(best.map_or(Pick::Steps(0), |(_, _, pick)| pick));
                }
                let better = |fresh: &LayerPlacement, point: &CurvePoint| {
                    point.transfers <= per_layer_cap
                        && (options.objective)(&layer, fresh)
                            < (options.objective)(&layer, &w.search.placement)
                };
                Ok(
                    if w.fresh
                        .as_ref()
                        .zip(w.fresh_point.as_ref())
                        .is_some_and(|(f, p)| better(f, p))
                    {
                        Pick::Fresh
                    } else {
                        Pick::Steps(w.search.steps())
                    },
                )
            })
            .collect::<Result<_>>()?,
    };

    // A zero budget is the documented "keep everything", not "every move that is free".
    let zero = match options.budget {
        MoveBudget::PerLayer(k) => k == 0,
        MoveBudget::TotalBytes(b) => b < options.expert_bytes,
        MoveBudget::Unlimited => false,
    };
    let picks: Vec<Pick> = if zero {
        vec![Pick::Steps(0); picks.len()]
    } else {
        picks
    };
    let mut layers = Vec::with_capacity(work.len());
    let mut placements = Vec::with_capacity(work.len());
    for ((layer, w), pick) in problem.layers().zip(work).zip(picks) {
        let l = layer.index();
        let cur = current.layer(l);
        let (mut candidate, mut choice) = match pick {
            Pick::Fresh => (w.fresh.expect("picked only when solved"), Choice::Fresh),
            Pick::Steps(0) => (cur.clone(), Choice::Current),
            Pick::Steps(k) => (
                align_layer(cluster, problem.policy(), cur, &w.search.prefix(cur, k)),
                Choice::Search,
            ),
        };
        // The transfers this layer may spend (the exact mode alone asks): its per-layer cap,
        // or what the byte budget's allocation gave it.
        let layer_budget = options.exact.as_ref().map(|_| match options.budget {
            MoveBudget::TotalBytes(_) => count_transfers(cluster, cur, &candidate).transfers,
            _ => per_layer_cap.min(cluster.replicas),
        });
        if let Some((exact, layer_budget)) =
            options.exact.as_ref().zip(layer_budget).filter(|_| !zero)
        {
            if let Some(better) = improve_layer(
                &layer,
                cur,
                &candidate,
                layer_budget,
                options.distinct_replicas,
                exact,
            )? {
                // Checked here as for every candidate: the evaluator's max load, the budget.
                let better = align_layer(cluster, problem.policy(), cur, &better);
                if count_transfers(cluster, cur, &better).transfers <= layer_budget
                    && max_gpu_load(&layer, &better) < max_gpu_load(&layer, &candidate)
                {
                    (candidate, choice) = (better, Choice::Exact);
                }
            }
        }
        let value = options.value(&layer, &candidate)?;
        let gain = if w.old > 0.0 {
            (w.old - value) / w.old
        } else {
            0.0
        };
        let keep = choice == Choice::Current || value >= w.old || gain < options.min_gain;
        let (placement, choice, value, gain) = if keep {
            (cur.clone(), Choice::Current, w.old, 0.0)
        } else {
            (candidate, choice, value, gain)
        };
        let mut lower_bound = options.lower_bound(&layer, w.bound)?;
        if let Some(layer_budget) = layer_budget.filter(|_| options.budget != MoveBudget::Unlimited)
        {
            // The budgeted problem's own bound (at least the combinatorial one).
            let budget = if zero { 0 } else { layer_budget };
            lower_bound = lower_bound.max(super::budgeted_lower_bound(&layer, cur, budget)?);
        }
        layers.push(LayerRebalance {
            layer: l,
            old_max: w.old,
            new_max: value,
            gain,
            lower_bound,
            optimal: value <= lower_bound,
            count: count_transfers(cluster, cur, &placement),
            choice,
            curve: w.search.curve,
            fresh: w.fresh_point,
            objective_values: w.values,
        });
        placements.push(placement);
    }
    let mut update_order: Vec<usize> = layers
        .iter()
        .filter(|l| l.choice != Choice::Current)
        .map(|l| l.layer)
        .collect();
    let rate = |l: &LayerRebalance| (l.old_max - l.new_max) / l.count.transfers.max(1) as f64;
    update_order.sort_by(|&a, &b| {
        rate(&layers[b])
            .total_cmp(&rate(&layers[a]))
            .then(a.cmp(&b))
    });
    Ok(Rebalance {
        placement: Placement::new(problem.num_experts(), placements),
        layers,
        update_order,
        live: None,
        objective: options.per_step().map_or(Objective::Mean, |s| s.objective),
    })
}

/// [`rebalance`] with failed GPUs: on the live cluster, from the current placement's live
/// part after every expert that only lived on failed GPUs got a replica back (a forced host
/// reload, not charged to the budget); transfers in the layer reports are counted from that
/// repaired placement, the [plan](super::TransferPlan::with_live) counts them from the
/// real one.
fn rebalance_live(
    problem: &Problem,
    current: &Placement,
    fresh: Option<&dyn PlacementStrategy>,
    options: &RebalanceOptions,
    live: &LiveGpus,
) -> Result<Rebalance> {
    let mut cluster = live.live_cluster(problem)?;
    let restricted = cluster.restrict_all(current);
    let repair = |sub: &Problem| -> Option<Placement> {
        let layers: Option<Vec<LayerPlacement>> = sub
            .layers()
            .map(|layer| reload_missing(&layer, restricted.layer(layer.index())))
            .collect();
        layers.map(|l| Placement::new(problem.num_experts(), l))
    };
    let mut sub = cluster.problem(problem)?;
    let repaired = match repair(&sub) {
        Some(p) if super::check_shape(&sub, &p, "").is_ok() => p,
        _ => {
            // A group lost its node's last replica: node-limited routing cannot continue.
            cluster.policy = crate::problem::Policy::Global;
            cluster.fallback.get_or_insert_with(|| {
                "a group has no live replica left on its node, so the global policy is used".into()
            });
            sub = cluster.problem(problem)?;
            repair(&sub).expect("the global policy can always reload")
        }
    };
    let inner = RebalanceOptions {
        live: None,
        ..options.clone()
    };
    let mut result = rebalance(&sub, &repaired, fresh, &inner)?;
    result.placement = cluster.expand_all(&result.placement);
    result.live = Some(cluster);
    Ok(result)
}

/// A layer's pick: a prefix of the search, or the fresh placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Steps(usize),
    Fresh,
}

/// A layer's options: `(transfers, value, pick)`, the current placement first; the value is
/// the max load, or the objective's `values` (one per curve point, then the fresh one's).
fn options_of(
    curve: &[CurvePoint],
    fresh: Option<CurvePoint>,
    values: Option<&[f64]>,
) -> Vec<(usize, f64, Pick)> {
    let value = |i: usize, p: &CurvePoint| values.map_or(p.max_load, |v| v[i]);
    let mut out: Vec<(usize, f64, Pick)> = curve
        .iter()
        .enumerate()
        .map(|(k, p)| (p.transfers, value(k, p), Pick::Steps(k)))
        .collect();
    out.extend(fresh.map(|p| (p.transfers, value(curve.len(), &p), Pick::Fresh)));
    out
}

/// `current` with no two replicas of one expert on a GPU, when it has some (`None` when it is
/// distinct already): every surplus replica swapped away as
/// [`DistinctReplicas`] separates a strategy's answer.
fn separate(problem: &Problem, current: &Placement) -> Result<Option<Placement>> {
    let mut changed = false;
    let layers = problem
        .layers()
        .map(|layer| -> Result<LayerPlacement> {
            let cur = current.layer(layer.index());
            let mut slots = cur.phy2log().to_vec();
            let per_gpu = layer.cluster().slots_per_gpu();
            let done = separate_copies(layer.loads(), &mut slots, per_gpu, region_gpus(&layer))?;
            if done.swaps + done.recounts == 0 {
                return Ok(cur.clone());
            }
            changed = true;
            Ok(LayerPlacement::from_phy2log(slots))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(changed.then(|| Placement::new(problem.num_experts(), layers)))
}

/// Spends `total` transfers over the layers: repeatedly the upgrade (from a layer's chosen
/// option to a better one) with the largest drop of the max load per extra transfer that
/// still fits, until none fits or helps.
fn allocate(layers: &[Vec<(usize, f64, Pick)>], total: usize) -> Vec<Pick> {
    let mut at = vec![0usize; layers.len()];
    let mut spent = 0usize;
    loop {
        let mut best: Option<(f64, f64, usize, usize)> = None;
        for (l, opts) in layers.iter().enumerate() {
            let (t0, m0, _) = opts[at[l]];
            for (j, &(t, m, _)) in opts.iter().enumerate() {
                if m >= m0 {
                    continue;
                }
                if spent - t0 + t > total {
                    continue;
                }
                // Upgrades that spend nothing (or give transfers back) come first.
                let rate = if t <= t0 {
                    f64::INFINITY
                } else {
                    (m0 - m) / (t - t0) as f64
                };
                let drop = m0 - m;
                if best.is_none_or(|(r, d, _, _)| (rate, drop) > (r, d)) {
                    best = Some((rate, drop, l, j));
                }
            }
        }
        let Some((_, _, l, j)) = best else { break };
        spent = spent - layers[l][at[l]].0 + layers[l][j].0;
        at[l] = j;
    }
    at.iter().zip(layers).map(|(&j, opts)| opts[j].2).collect()
}
