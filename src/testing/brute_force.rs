//! The true optimum of a tiny layer, by exhaustive enumeration: the oracle the conformance
//! properties compare strategies and bounds with.
//!
//! Every GPU's contents is a multiset of `S = R / P` expert ids (the order of slots inside a
//! GPU changes nothing), so the enumeration visits every choice of replica counts and every
//! assignment of the replicas to GPUs: `C(E + S - 1, S)^P` candidate placements. Candidates
//! that leave an expert out are skipped early; the others are judged by the
//! [evaluator](mod@crate::evaluate) itself ([`violations`], [`max_gpu_load`]), so the oracle
//! shares no code with any strategy.
//!
//! ```
//! use eplb::testing::brute_force;
//! use eplb::{Cluster, Loads, PolicyChoice, Problem};
//! // Loads (3, 3, 2) on 2 GPUs x 2 slots: replicating the small expert gives 4.
//! let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]])?;
//! let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
//! assert_eq!(brute_force(&problem.layer(0)).unwrap().max_load, 4.0);
//! # Ok::<(), eplb::EplbError>(())
//! ```

use crate::evaluate::{max_gpu_load, violations};
use crate::placement::LayerPlacement;
use crate::problem::{Cluster, LayerProblem, Problem};

/// The most candidate placements [`brute_force`] enumerates (about a second in a debug
/// build); larger layers are refused with [`TooLarge`].
pub const BRUTE_FORCE_LIMIT: f64 = 2e6;

/// An optimal placement of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimum {
    /// The optimal max GPU load.
    pub max_load: f64,
    /// A placement reaching it (the first one in enumeration order).
    pub placement: LayerPlacement,
}

/// The layer has more candidate placements than [`BRUTE_FORCE_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{candidates:.3e} candidate placements, more than the brute-force limit {limit:.0e}")]
pub struct TooLarge {
    /// Candidates the layer has.
    pub candidates: f64,
    /// [`BRUTE_FORCE_LIMIT`].
    pub limit: f64,
}

/// Candidate placements of `experts` experts on `cluster`: `C(E + S - 1, S)^P`.
pub fn candidates(experts: usize, cluster: &Cluster) -> f64 {
    let s = cluster.slots_per_gpu();
    let per_gpu: f64 = (1..=s)
        .map(|i| (experts + s - i) as f64 / i as f64)
        .product();
    per_gpu.powi(cluster.gpus.min(i32::MAX as usize) as i32)
}

/// True when the layers of `problem` are small enough for [`brute_force`].
pub fn enumerable(problem: &Problem) -> bool {
    candidates(problem.num_experts(), problem.cluster()) <= BRUTE_FORCE_LIMIT
}

/// The optimal max GPU load of `layer` and a placement reaching it.
///
/// # Errors
/// [`TooLarge`] when the layer has more than [`BRUTE_FORCE_LIMIT`] candidate placements
/// (checked before anything is enumerated).
pub fn brute_force(layer: &LayerProblem<'_>) -> Result<Optimum, TooLarge> {
    brute_force_where(layer, &|_| true)
        .map(|best| best.expect("a validated problem has a feasible placement"))
}

/// The optimum of `layer` over the feasible placements `accept` keeps (`None` when it keeps
/// none): the oracle of a problem with an extra constraint, such as a transfer budget from a
/// current placement. Every GPU's slots are visited in one order only (non-decreasing ids), so
/// `accept` must not depend on the order of slots inside a GPU.
///
/// ```
/// use eplb::testing::brute_force_where;
/// use eplb::{Cluster, Loads, PolicyChoice, Problem};
/// // (3, 3, 2) on 2 GPUs x 2 slots, but expert 2 may have one replica only: 4.5.
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let one = |p: &eplb::LayerPlacement| p.phy2log().iter().filter(|&&e| e == 2).count() == 1;
/// assert_eq!(brute_force_where(&problem.layer(0), &one).unwrap().unwrap().max_load, 4.5);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// [`TooLarge`] as [`brute_force`].
pub fn brute_force_where(
    layer: &LayerProblem<'_>,
    accept: &dyn Fn(&LayerPlacement) -> bool,
) -> Result<Option<Optimum>, TooLarge> {
    let count = candidates(layer.num_experts(), layer.cluster());
    if count > BRUTE_FORCE_LIMIT {
        return Err(TooLarge {
            candidates: count,
            limit: BRUTE_FORCE_LIMIT,
        });
    }
    let mut search = Search {
        layer,
        per_gpu: layer.cluster().slots_per_gpu(),
        slots: vec![0; layer.cluster().replicas],
        copies: vec![0; layer.num_experts()],
        missing: layer.num_experts(),
        best: None,
        accept,
    };
    search.fill(0);
    Ok(search.best)
}

/// The state of the enumeration.
struct Search<'l, 'a> {
    layer: &'l LayerProblem<'a>,
    per_gpu: usize,
    /// The candidate, filled slot by slot (non-decreasing ids inside each GPU).
    slots: Vec<usize>,
    /// Replicas of each expert in the filled slots.
    copies: Vec<usize>,
    /// Experts without a replica yet.
    missing: usize,
    best: Option<Optimum>,
    /// The extra constraint.
    accept: &'l dyn Fn(&LayerPlacement) -> bool,
}

impl Search<'_, '_> {
    fn fill(&mut self, slot: usize) {
        if self.slots.len() - slot < self.missing {
            return; // too few slots left for the experts still missing
        }
        if slot == self.slots.len() {
            self.judge();
            return;
        }
        let first = if slot.is_multiple_of(self.per_gpu) {
            0
        } else {
            self.slots[slot - 1]
        };
        for expert in first..self.copies.len() {
            self.slots[slot] = expert;
            self.copies[expert] += 1;
            self.missing -= usize::from(self.copies[expert] == 1);
            self.fill(slot + 1);
            self.missing += usize::from(self.copies[expert] == 1);
            self.copies[expert] -= 1;
        }
    }

    /// Keeps the complete candidate if the evaluator finds it feasible and better.
    fn judge(&mut self) {
        let placement = LayerPlacement::from_phy2log(self.slots.clone());
        if !violations(self.layer, &placement).is_empty() || !(self.accept)(&placement) {
            return;
        }
        let max_load = max_gpu_load(self.layer, &placement);
        if self.best.as_ref().is_none_or(|b| max_load < b.max_load) {
            self.best = Some(Optimum {
                max_load,
                placement,
            });
        }
    }
}
