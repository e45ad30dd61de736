//! Every built-in strategy and their compositions: the field a new strategy is measured in.

use crate::error::Result;
use crate::problem::LayerProblem;
use crate::strategies::{self, BalancedSplit, Greedy, GreedySplit, Hierarchical, Refine};
use crate::strategy::{LayerSolution, PlacementStrategy};

/// A strategy under another name (e.g. a configured one next to its default).
#[derive(Debug, Clone)]
pub struct Named<S> {
    name: String,
    strategy: S,
}

impl<S: PlacementStrategy> Named<S> {
    /// `strategy`, called `name`.
    pub fn new(name: impl Into<String>, strategy: S) -> Self {
        Self {
            name: name.into(),
            strategy,
        }
    }
}

impl<S: PlacementStrategy> PlacementStrategy for Named<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        self.strategy.description()
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        self.strategy.solve_layer(layer)
    }
}

/// Every built-in strategy ([`strategies::all`]) followed by their
/// compositions, each under its own name:
///
/// - `hierarchical/LEAF`: the two-level decomposition with the bound-minimising split and
///   `refine`, `refine-deep` and `exact` as the leaf (`hierarchical` itself has the `greedy`
///   leaf; an `ilp` leaf solves the same model as `exact`, much slower without HiGHS);
/// - `hierarchical-greedy-split/greedy`: with eplb.py's greedy group split;
/// - `refine-moves-0`, `refine-moves-4`: `refine` with at most 0 and 4 local-search moves
///   per packing.
///
/// Searching leaves take their limits from the runner's options (give a time limit, e.g.
/// [`CheckOptions::time_limit`](super::CheckOptions::time_limit), or an `exact` leaf may
/// search for long on large layers).
pub fn with_compositions() -> Vec<Box<dyn PlacementStrategy>> {
    let mut all = strategies::all();
    for leaf in strategies::all() {
        if ["greedy", "hierarchical", "ilp"].contains(&leaf.name()) {
            continue;
        }
        let name = format!("hierarchical/{}", leaf.name());
        all.push(Box::new(
            Hierarchical::two_level(BalancedSplit::default(), leaf).named(name),
        ));
    }
    all.push(Box::new(
        Hierarchical::two_level(GreedySplit, Greedy).named("hierarchical-greedy-split/greedy"),
    ));
    for moves in [0, 4] {
        all.push(Box::new(Named::new(
            format!("refine-moves-{moves}"),
            Refine::with_max_moves(moves),
        )));
    }
    all
}
