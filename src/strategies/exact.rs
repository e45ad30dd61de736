//! `exact`: a pure-Rust exact search that proves placements optimal (or certifies a gap).

use std::time::{Duration, Instant};

use eplb_solvers::exact::{self, SearchLimits, MAX_TOTAL_WEIGHT};

use crate::error::Result;
use crate::evaluate::max_gpu_load;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::strategies::{Greedy, Refine};

/// Layers with more slots than this start the search from [`Refine`]'s placement.
const SEED_MIN_SLOTS: usize = 64;
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// Exact search over replica counts and GPU packings ([`eplb_solvers::exact`]).
///
/// The optimum of a layer is the minimum, over replica-count vectors, of the best packing of
/// the replicas onto GPUs (exactly `S` per GPU). The search (bin completion with dominance,
/// lattice and order-statistics bounds, complete enumeration of the count vectors that could
/// still win) returns [`SolveStatus::Optimal`] only with a proof; when the time limit stops it,
/// it returns its best placement (never worse than [`Greedy`]) with
/// [`SolveStatus::TimeLimit`] and a valid lower bound. Under the hierarchical policy the
/// group-to-node splits are tried in order of their bound, each node solved as a global
/// problem cut off at the incumbent. On layers with more than 64 slots the search starts from
/// [`Refine`]'s placement (its first incumbent, improved by the search's local moves), so the
/// answer is never worse than `refine`'s either.
///
/// **Exactness.** Loads are turned into integers by the smallest power-of-two scale that makes
/// them all integral with a total of at most `2^50` (integer token counts need no scaling), so
/// every comparison is exact rational arithmetic. Loads that admit no such scale (e.g. `0.1`,
/// or totals above `2^50`) are scaled to a total of about `2^50` and rounded *down*: the bound
/// then stays valid (smaller loads cannot need more), but the search no longer claims
/// optimality (its status is at best `time_limit`).
///
/// **Time and threads.** The limit is per layer, checked inside the search (default
/// [`Exact::DEFAULT_TIME_LIMIT`]). Each layer's search runs on one thread; layers run in parallel
/// through [`solve`](crate::solve). Results are identical on every run whenever the search
/// finishes within its limit; a search cut short by the clock returns what it had, which can
/// depend on machine speed.
///
/// ```
/// use eplb::{strategies::Exact, Cluster, Loads, PlacementStrategy, PolicyChoice, Problem, SolveStatus};
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// let s = Exact::default().solve_layer(&problem.layer(0)).unwrap();
/// assert_eq!(s.status, SolveStatus::Optimal);
/// assert_eq!(s.lower_bound, Some(4.0)); // greedy reaches 4.5
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exact {
    /// Wall-time limit per layer.
    pub time_limit: Duration,
    /// Relative gap at which to stop (`0.0`: prove optimality).
    pub gap: f64,
}

impl Exact {
    /// The time limit per layer when none is given: 10 s.
    pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);
}

impl Default for Exact {
    fn default() -> Self {
        Self {
            time_limit: Self::DEFAULT_TIME_LIMIT,
            gap: 0.0,
        }
    }
}

/// Integer weights for the engine and the scale they were multiplied by.
struct Scaled {
    weights: Vec<u64>,
    scale: f64,
    /// True when `weights[i] == loads[i] * scale` exactly.
    exact: bool,
}

fn scale_loads(loads: &[f64]) -> Scaled {
    let total: f64 = loads.iter().sum();
    let limit = MAX_TOTAL_WEIGHT as f64;
    if total == 0.0 {
        return Scaled {
            weights: vec![0; loads.len()],
            scale: 1.0,
            exact: true,
        };
    }
    let mut scale = 1.0f64;
    for _ in 0..=60 {
        if total * scale > limit {
            break;
        }
        if loads.iter().all(|&w| (w * scale).fract() == 0.0) {
            let weights: Vec<u64> = loads.iter().map(|&w| (w * scale) as u64).collect();
            if weights.iter().try_fold(0u64, |a, &w| a.checked_add(w)) <= Some(MAX_TOTAL_WEIGHT) {
                return Scaled {
                    weights,
                    scale,
                    exact: true,
                };
            }
            break;
        }
        scale *= 2.0;
    }
    // Lossy: the largest power of two keeping the (rounded-down) total within the limit.
    let mut scale = 2f64.powi((limit / total).log2().floor() as i32);
    loop {
        let weights: Vec<u64> = loads.iter().map(|&w| (w * scale).floor() as u64).collect();
        if weights.iter().try_fold(0u64, |a, &w| a.checked_add(w)) <= Some(MAX_TOTAL_WEIGHT) {
            return Scaled {
                weights,
                scale,
                exact: false,
            };
        }
        scale /= 2.0;
    }
}

impl PlacementStrategy for Exact {
    fn name(&self) -> &str {
        "exact"
    }

    fn description(&self) -> &str {
        "exact search over replica counts and GPU packings (pure Rust): proves optimality or certifies a gap within the time limit"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let start = Instant::now();
        let c = layer.cluster();
        let scaled = scale_loads(layer.loads());
        // A heuristic start: refine's placement (never worse than greedy's), improved by the
        // search's local moves and used as the first incumbent. Skipped on small layers, which
        // the search proves faster than refine runs.
        let seed = if c.replicas > SEED_MIN_SLOTS {
            Some(
                Refine::default()
                    .solve_layer(layer)?
                    .placement
                    .phy2log()
                    .to_vec(),
            )
        } else {
            None
        };
        let limits = SearchLimits {
            deadline: start.checked_add(self.time_limit),
            gap: self.gap.max(0.0),
            start: seed,
        };
        let per_gpu = c.slots_per_gpu();
        let outcome = match layer.policy() {
            Policy::Global => exact::solve(&scaled.weights, c.gpus, per_gpu, &limits)?,
            Policy::Hierarchical => {
                exact::solve_grouped(&scaled.weights, c.groups, c.nodes, c.gpus, per_gpu, &limits)?
            }
        };
        // Bounds on the scaled weights divide exactly by a power of two; with rounded-down
        // weights they stay valid bounds for the true loads.
        let bound = outcome.lower_bound.to_f64_down() / scaled.scale;
        let proven = outcome.proven && scaled.exact;
        let found = outcome.best.map(|b| LayerPlacement::from_phy2log(b.slots));
        let (placement, load) = match found {
            // Proven optimal: nothing can beat it, greedy included.
            Some(p) if proven => {
                let load = max_gpu_load(layer, &p);
                (p, load)
            }
            found => {
                let greedy = Greedy.solve_layer(layer)?.placement;
                let greedy_load = max_gpu_load(layer, &greedy);
                match found.map(|p| {
                    let load = max_gpu_load(layer, &p);
                    (p, load)
                }) {
                    Some((p, load)) if load <= greedy_load => (p, load),
                    _ => (greedy, greedy_load),
                }
            }
        };
        let status = if proven {
            SolveStatus::Optimal
        } else {
            SolveStatus::TimeLimit
        };
        Ok(LayerSolution {
            placement,
            status,
            lower_bound: Some(bound.min(load)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_loads_are_exact_without_scaling() {
        let s = scale_loads(&[3.0, 0.0, 7.0]);
        assert!(s.exact);
        assert_eq!((s.weights, s.scale), (vec![3, 0, 7], 1.0));
    }

    #[test]
    fn dyadic_loads_are_exact_after_scaling() {
        let s = scale_loads(&[1.5, 0.25]);
        assert!(s.exact);
        assert_eq!((s.weights, s.scale), (vec![6, 1], 4.0));
    }

    #[test]
    fn other_loads_round_down() {
        let s = scale_loads(&[0.1, 0.2]);
        assert!(!s.exact);
        for (w, x) in s.weights.iter().zip([0.1, 0.2]) {
            assert!((*w as f64) <= x * s.scale);
        }
        assert!(s.weights.iter().sum::<u64>() <= MAX_TOTAL_WEIGHT);
    }
}
