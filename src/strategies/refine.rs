//! `refine`: greedy's replica counts, a balanced largest-differencing packing, and local
//! search (swaps, pair swaps, replica-count moves); never worse than greedy.

use std::cell::RefCell;

use eplb_solvers::apportion::Apportioner;
use eplb_solvers::rebalance::{CopyPacker, PackLimits};

use crate::error::Result;
use crate::evaluate::max_gpu_load;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::split::BalancedSplit;
use crate::strategies::hierarchical::Hierarchical;
use crate::strategies::Greedy;
use crate::strategy::{LayerSolution, PlacementStrategy};

/// Improves on DeepSeek's greedy EPLB.
///
/// - **Global policy**: the replica counts start from the min-max apportionment (greedy's
///   counts, in `f64`); the replicas are packed onto GPUs by balanced largest differencing
///   (Karmarkar–Karp with `R/P` replicas per GPU) and improved by local search on the busiest
///   GPU: single swaps, pair swaps and replica-count moves (take a replica from one expert and
///   give it to another). See [`eplb_solvers::rebalance`].
/// - **Hierarchical policy**: the groups-to-nodes split minimises the node-level bound
///   ([`BalancedSplit`]) and each node is then solved as above, through the
///   [`Hierarchical`] decomposition.
///
/// [`Refine::deep`] (`refine-deep`) adds kicks: when stuck, a replica-count move that lowers
/// the busiest GPU but lifts another above it is applied anyway and the search descends again,
/// kept only if the peak ends lower.
///
/// Either way the result is compared with [`Greedy`]'s by the evaluator's GPU loads and the
/// better one is returned (greedy's on ties), so `refine` is never worse than greedy. The
/// search is bounded by move counts, not time: the output is deterministic.
///
/// ```
/// use eplb::{strategies::{Greedy, Refine}, Cluster, Loads, PolicyChoice, Problem};
/// // The design example: loads (3, 3, 2) on 2 GPUs x 2 slots. Greedy replicates a 3 (4.5);
/// // the optimum replicates the small expert (4.0).
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let max = |s: &dyn eplb::PlacementStrategy| {
///     let sol = eplb::solve(&problem, s, &Default::default()).unwrap();
///     eplb::evaluate(&problem, &sol.placement, &[]).unwrap().layers[0].max_load
/// };
/// assert_eq!(max(&Greedy), 4.5);
/// assert_eq!(max(&Refine::default()), 4.0);
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Refine {
    limits: PackLimits,
    name: &'static str,
}

impl Default for Refine {
    /// `refine`: local search without kicks.
    fn default() -> Self {
        Self {
            limits: PackLimits::default(),
            name: "refine",
        }
    }
}

impl Refine {
    /// `refine-deep`: the local search also kicks out of local optima with replica-count moves
    /// ([`PackLimits::deep`]); several times slower than `refine`, lower peaks.
    pub fn deep() -> Self {
        Self {
            limits: PackLimits::deep(),
            name: "refine-deep",
        }
    }

    /// A `refine` strategy whose local search applies at most `max_moves` improving moves per
    /// GPU-packing sub-problem (and no kicks).
    pub fn with_max_moves(max_moves: usize) -> Self {
        Self {
            limits: PackLimits {
                max_moves,
                ..PackLimits::default()
            },
            ..Self::default()
        }
    }
}

/// Engines reused across layers on one thread.
#[derive(Default)]
struct Workspace {
    apportioner: Apportioner,
    packer: CopyPacker,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

impl PlacementStrategy for Refine {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        if self.limits.max_kicks == 0 {
            "greedy counts + balanced largest differencing + local search (swaps, pair swaps, replica-count moves); never worse than greedy"
        } else {
            "refine plus kicks: non-improving replica-count moves followed by a new descent, kept when they lower the peak; never worse than greedy"
        }
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let improved = match layer.policy {
            Policy::Global => self.solve_global(layer)?,
            Policy::Hierarchical => {
                Hierarchical::two_level(BalancedSplit::default(), *self).solve_layer(layer)?
            }
        };
        let greedy = Greedy.solve_layer(layer)?;
        if max_gpu_load(layer, &improved.placement) < max_gpu_load(layer, &greedy.placement) {
            Ok(LayerSolution::heuristic(improved.placement))
        } else {
            Ok(greedy)
        }
    }
}

impl Refine {
    fn solve_global(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let c = layer.cluster;
        WORKSPACE.with(|ws| {
            let ws = &mut *ws.borrow_mut();
            let counts = ws
                .apportioner
                .greedy_f64(layer.loads, c.replicas)?
                .counts
                .clone();
            let phy2log = ws.packer.pack(layer.loads, &counts, c.gpus, self.limits)?;
            Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
                phy2log,
            )))
        })
    }
}
