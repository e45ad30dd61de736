//! The exact search as an [`ExactEngine`]: loads scaled to integers, the search, and the
//! certificate.

use std::time::Instant;

use super::{search, search_grouped, Limits, MAX_TOTAL_WEIGHT};
use crate::error::SolverError;
use crate::packing::{
    CertifiedPacking, ExactEngine, PackingProblem, StopReason, WithDeadline, WithGap, WithStart,
    WithThreads,
};

/// The exact search of the [module docs](super) as an engine.
///
/// **Exactness.** Weights are turned into integers by the smallest power-of-two scale that
/// makes them all integral with a total of at most `2^50` (integer token counts need no
/// scaling), so every comparison is exact rational arithmetic. Weights that admit no such
/// scale (e.g. `0.1`, or totals above `2^50`) are scaled to a total of about `2^50` and rounded
/// *down*: the bound then stays valid (smaller weights cannot need more), but the search no
/// longer claims optimality (its stop reason is at best [`StopReason::GapReached`]).
///
/// With regions, there may be at most 64 groups. The search runs on one thread
/// ([`WithThreads`] is accepted and ignored). A known lower bound of the problem (it must be
/// valid: the caller proves it) strengthens the reported bound, and a packing that meets it is
/// optimal; it does not steer the search.
///
/// # Complexity
/// Exponential in the worst case (the problem is strongly NP-hard); bounded by the deadline,
/// which is checked every 256 search nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSearch {
    deadline: Option<Instant>,
    gap: f64,
    start: Option<Vec<usize>>,
}

impl WithDeadline for ExactSearch {
    fn with_deadline(self, deadline: Option<Instant>) -> Self {
        Self { deadline, ..self }
    }
}

impl WithGap for ExactSearch {
    /// Stops once the value is within `gap` of the bound (negative gaps count as `0`).
    fn with_gap(self, gap: f64) -> Self {
        Self {
            gap: gap.max(0.0),
            ..self
        }
    }
}

impl WithStart for ExactSearch {
    fn with_start(self, slots: Vec<usize>) -> Self {
        Self {
            start: Some(slots),
            ..self
        }
    }
}

impl WithThreads for ExactSearch {
    /// Ignored: the search runs on one thread.
    fn with_threads(self, _threads: Option<usize>) -> Self {
        self
    }
}

impl ExactEngine for ExactSearch {
    /// # Errors
    /// [`SolverError::BadGroups`] with more than 64 groups.
    fn solve(&self, problem: &PackingProblem) -> Result<CertifiedPacking, SolverError> {
        let scaled = scale_loads(problem.weights());
        let limits = Limits {
            deadline: self.deadline,
            gap: self.gap,
            start: self.start.clone(),
        };
        let (bins, per_bin) = (problem.bins(), problem.slots_per_bin());
        let outcome = match problem.regions() {
            None => search(&scaled.weights, bins, per_bin, &limits)?,
            Some(r) => search_grouped(
                &scaled.weights,
                scaled.weights.len() / r.group_size,
                r.regions,
                bins,
                per_bin,
                &limits,
            )?,
        };
        // Stopped before any packing was found: the start (when valid) or the trivial packing,
        // never a proof.
        let (slots, proven) = match outcome.best {
            Some(best) => (best.slots, outcome.proven),
            None => (
                self.start
                    .clone()
                    .filter(|s| problem.check_slots(s).is_ok())
                    .unwrap_or_else(|| problem.trivial_packing()),
                false,
            ),
        };
        let value = problem.peak_of_slots(&slots);
        // Bounds on the scaled weights divide exactly by a power of two; with rounded-down
        // weights they stay valid bounds for the true weights.
        let bound = (outcome.lower_bound.to_f64_down() / scaled.scale)
            .max(problem.lower_bound())
            .min(value);
        let proven = proven && scaled.exact;
        Ok(CertifiedPacking {
            stop: StopReason::judge(proven, value, bound, self.gap),
            slots,
            value,
            lower_bound: bound,
        })
    }
}

/// Integer weights for the search and the scale they were multiplied by.
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
            if within_total(&weights) {
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
    // (Tiny totals would ask for a scale beyond f64's range: the largest finite power of two
    // then, which rounds such weights down to zero — a valid, weak bound.)
    let exponent = (limit / total)
        .log2()
        .floor()
        .min(f64::from(f64::MAX_EXP - 1));
    let mut scale = 2f64.powi(exponent as i32);
    loop {
        let weights: Vec<u64> = loads.iter().map(|&w| (w * scale).floor() as u64).collect();
        if within_total(&weights) {
            return Scaled {
                weights,
                scale,
                exact: false,
            };
        }
        scale /= 2.0;
    }
}

/// True when the weights sum to at most [`MAX_TOTAL_WEIGHT`] (an overflowing sum is not).
fn within_total(weights: &[u64]) -> bool {
    weights
        .iter()
        .try_fold(0u64, |a, &w| a.checked_add(w))
        .is_some_and(|t| t <= MAX_TOTAL_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_and_huge_loads_scale_without_overflow() {
        for loads in [vec![1e-300, 3e-300], vec![5e-324, 0.0], vec![1e300, 2e300]] {
            let s = scale_loads(&loads);
            assert!(s.scale.is_finite() && s.scale > 0.0, "{loads:?}");
            assert!(within_total(&s.weights), "{loads:?}");
            for (w, x) in s.weights.iter().zip(&loads) {
                assert!((*w as f64) <= x * s.scale, "{loads:?}");
            }
        }
    }

    #[test]
    fn tiny_loads_are_solved_not_refused() {
        let problem = PackingProblem::new(vec![1e-300, 3e-300, 2e-300], 2, 2).unwrap();
        let packing = ExactSearch::default().solve(&problem).unwrap();
        assert!(packing.lower_bound <= packing.value);
        problem.check_slots(&packing.slots).unwrap();
    }

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
