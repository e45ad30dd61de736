//! `hierarchical`: top-down decomposition over a [`Topology`], generic over the engine that
//! splits groups among the children of a level and the strategy that solves each node.
//!
//! Under the hierarchical policy the strategy walks the tree from the root: at every level a
//! [`GroupSplitter`] hands each child its share of whole expert groups (`G/N` per node below
//! it); at each node (a vertex whose children are GPUs) the node's experts, slots and GPUs form
//! a global-policy sub-problem that a [`PlacementStrategy`] solves (deciding replicas and
//! placing them on the node's GPUs). Under the global policy there is no locality to
//! decompose, so the whole layer goes to the sub-solver.
//!
//! With [`GreedySplit`](crate::split::GreedySplit) and [`Greedy`](crate::strategies::Greedy) on DeepSeek's two-level tree
//! this is exactly `greedy`; with an exact sub-solver, each node's placement is optimal for the
//! groups the splitter gave it ([`Decomposition::nodes`] carries each node's status and bound).
//!
//! Writing your own sub-solver and plugging it in:
//!
//! ```
//! use eplb::strategies::{BalancedSplit, Hierarchical};
//! use eplb::{Cluster, LayerPlacement, LayerProblem, LayerSolution, Loads, PlacementStrategy,
//!            PolicyChoice, Problem, Result};
//!
//! /// Each expert once, in order, then the extra slots to the heaviest expert.
//! struct HeaviestTakesAll;
//!
//! impl PlacementStrategy for HeaviestTakesAll {
//!     fn name(&self) -> &str { "heaviest-takes-all" }
//!     fn description(&self) -> &str { "extra slots all go to the heaviest expert" }
//!     fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
//!         let e = layer.num_experts();
//!         let heaviest = (0..e).fold(0, |b, i| if layer.loads()[i] > layer.loads()[b] { i } else { b });
//!         let phy2log = (0..layer.cluster().replicas).map(|s| if s < e { s } else { heaviest }).collect();
//!         Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(phy2log)))
//!     }
//! }
//!
//! let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 1.0, 6.0, 1.0, 1.0, 1.0]])?;
//! let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(4);
//! let problem = Problem::new(loads, cluster, PolicyChoice::Hierarchical)?;
//! let strategy = Hierarchical::two_level(BalancedSplit::default(), HeaviestTakesAll);
//! let solution = eplb::solve(&problem, &strategy, &Default::default())?;
//! let report = eplb::evaluate(&problem, &solution.placement, &[])?;
//! assert!(report.is_feasible()); // whole groups per node, every expert placed
//! # Ok::<(), eplb::EplbError>(())
//! ```

use crate::error::{EplbError, Result};
use crate::placement::LayerPlacement;
use crate::problem::{Cluster, LayerProblem, Policy};
use crate::split::{ChildCapacity, GroupSplitter, SplitProblem};
use crate::strategies::HierarchicalSpec;
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};
use crate::topology::{Topology, TopologyNodeId};

/// One node's outcome in a [`Decomposition`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NodeOutcome {
    /// The node's first GPU.
    pub first_gpu: usize,
    /// The groups the node received (all experts under the global policy: one group).
    pub groups: Vec<usize>,
    /// What the sub-solver claimed for the node: `Optimal` means optimal for these groups.
    pub status: SolveStatus,
    /// The sub-solver's lower bound for the node's sub-problem.
    pub lower_bound: Option<f64>,
}

/// The layer's placement and what happened at every node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decomposition {
    /// The layer's placement (a heuristic answer for the whole layer).
    pub solution: LayerSolution,
    /// One entry per node, in GPU order.
    pub nodes: Vec<NodeOutcome>,
}

/// The hierarchical decomposition strategy. See the [module docs](self).
///
/// # Complexity
///
/// One splitter call per inner vertex of the tree (its cost is the splitter's: linear for
/// [`GreedySplit`](crate::strategies::GreedySplit), a bounded branch and bound for
/// [`BalancedSplit`](crate::strategies::BalancedSplit)) plus one leaf solve per node on the
/// node's `E/N` experts and `R/N` slots: for a leaf whose cost grows faster than linearly,
/// the decomposition is cheaper than one solve of the whole layer. `O(E + R)` extra memory
/// for the node sub-problems and the assembled placement.
///
/// ```
/// use eplb::strategies::{Greedy, GreedySplit, Hierarchical};
/// use eplb::{Cluster, Loads, PlacementStrategy, PolicyChoice, Problem};
/// let loads = Loads::from_rows(&[vec![90.0, 132.0, 40.0, 61.0, 104.0, 165.0, 39.0, 4.0,
///                                     73.0, 56.0, 183.0, 86.0]])?;
/// let problem = Problem::new(loads, Cluster::new(16, 8).with_nodes(2).with_groups(4),
///                            PolicyChoice::Auto)?;
/// let h = Hierarchical::two_level(GreedySplit, Greedy);
/// assert_eq!(h.solve_layer(&problem.layer(0))?, Greedy.solve_layer(&problem.layer(0))?);
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Hierarchical<S, L> {
    topology: Option<Topology>,
    splitter: S,
    leaf: L,
    name: String,
}

impl<S: GroupSplitter, L: PlacementStrategy> Hierarchical<S, L> {
    /// Decomposition over DeepSeek's two-level tree, built from each layer's cluster.
    #[must_use]
    pub fn two_level(splitter: S, leaf: L) -> Self {
        Self {
            topology: None,
            splitter,
            leaf,
            name: HierarchicalSpec::STRATEGY.into(),
        }
    }

    /// Decomposition over `topology` (checked against each layer's cluster when solving).
    #[must_use]
    pub fn with_topology(topology: Topology, splitter: S, leaf: L) -> Self {
        Self {
            topology: Some(topology),
            ..Self::two_level(splitter, leaf)
        }
    }

    /// Renames the strategy (the default name is `hierarchical`).
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }

    /// Solves a layer and reports every node's outcome.
    ///
    /// # Errors
    /// [`EplbError::Topology`] when the topology does not fit the cluster;
    /// [`EplbError::InvalidPlugin`] when the splitter or the sub-solver answers something
    /// unusable; the sub-solver's errors.
    pub fn solve_detailed(&self, layer: &LayerProblem<'_>) -> Result<Decomposition> {
        if layer.policy() == Policy::Global {
            let solution = self.leaf.solve_layer(layer)?;
            let node = NodeOutcome {
                first_gpu: 0,
                groups: vec![0],
                status: solution.status,
                lower_bound: solution.lower_bound,
            };
            return Ok(Decomposition {
                solution,
                nodes: vec![node],
            });
        }
        let built;
        let topology = match &self.topology {
            Some(t) => t,
            None => {
                built = Topology::two_level(layer.cluster())?;
                &built
            }
        };
        topology.check_cluster(layer.cluster())?;
        let mut walk = Walk {
            layer,
            topology,
            splitter: &self.splitter,
            leaf: &self.leaf,
            groups_per_node: layer.cluster().groups / layer.cluster().nodes,
            phy2log: vec![0; layer.cluster().replicas],
            ranks: vec![0; layer.cluster().replicas],
            nodes: Vec::new(),
        };
        let all: Vec<usize> = (0..layer.cluster().groups).collect();
        walk.place(topology.root(), &all)?;
        let placement = LayerPlacement::with_ranks(walk.phy2log, walk.ranks)?;
        let status = if walk.nodes.len() == 1 {
            walk.nodes[0].status
        } else {
            SolveStatus::Heuristic
        };
        let lower_bound = if walk.nodes.len() == 1 {
            walk.nodes[0].lower_bound
        } else {
            None
        };
        Ok(Decomposition {
            solution: LayerSolution {
                placement,
                status,
                lower_bound,
            },
            nodes: walk.nodes,
        })
    }
}

/// The state of one top-down walk.
struct Walk<'w, 'a, S, L> {
    layer: &'w LayerProblem<'a>,
    topology: &'w Topology,
    splitter: &'w S,
    leaf: &'w L,
    groups_per_node: usize,
    phy2log: Vec<usize>,
    ranks: Vec<usize>,
    nodes: Vec<NodeOutcome>,
}

impl<S: GroupSplitter, L: PlacementStrategy> Walk<'_, '_, S, L> {
    fn place(&mut self, v: TopologyNodeId, groups: &[usize]) -> Result<()> {
        if self.topology.has_gpu_children(v) {
            return self.solve_node(v, groups);
        }
        let children = self.topology.children(v);
        let capacities: Vec<ChildCapacity> = children
            .iter()
            .map(|&c| {
                let s = self.topology.subtree(c);
                ChildCapacity {
                    groups: s.nodes * self.groups_per_node,
                    gpus: s.gpus,
                    slots: s.slots,
                }
            })
            .collect();
        // Even a single child goes through the splitter: it decides the groups' order.
        let split = self.splitter.split(&SplitProblem {
            layer: self.layer,
            groups,
            children: &capacities,
        })?;
        check_split(self.splitter.name(), groups, &capacities, &split)?;
        for (&c, part) in children.iter().zip(&split) {
            self.place(c, part)?;
        }
        Ok(())
    }

    fn solve_node(&mut self, v: TopologyNodeId, groups: &[usize]) -> Result<()> {
        let size = self.layer.group_size();
        let members: Vec<usize> = groups
            .iter()
            .flat_map(|&g| g * size..(g + 1) * size)
            .collect();
        let loads: Vec<f64> = members.iter().map(|&e| self.layer.loads()[e]).collect();
        let sub = self.topology.subtree(v);
        let cluster = Cluster::new(sub.slots, sub.gpus);
        let node_layer = LayerProblem::new(self.layer.index(), &loads, &cluster, Policy::Global)?
            .with_budget(self.layer.budget());
        let solution = self.leaf.solve_layer(&node_layer)?;
        let phy2log = solution.placement.phy2log();
        let invalid = |message: String| EplbError::InvalidPlugin {
            component: self.leaf.name().to_string(),
            message,
        };
        if phy2log.len() != sub.slots {
            return Err(invalid(format!(
                "{} slots for a node with {}",
                phy2log.len(),
                sub.slots
            )));
        }
        let first_slot =
            sub.first_gpu * (self.layer.cluster().replicas / self.layer.cluster().gpus);
        for (s, (&e, &r)) in phy2log
            .iter()
            .zip(solution.placement.replica_ranks())
            .enumerate()
        {
            let expert = *members.get(e).ok_or_else(|| {
                invalid(format!(
                    "slot {s} holds expert {e}, but the node has {}",
                    members.len()
                ))
            })?;
            self.phy2log[first_slot + s] = expert;
            self.ranks[first_slot + s] = r;
        }
        self.nodes.push(NodeOutcome {
            first_gpu: sub.first_gpu,
            groups: groups.to_vec(),
            status: solution.status,
            lower_bound: solution.lower_bound,
        });
        Ok(())
    }
}

/// Checks that a splitter's answer gives every child exactly its groups, each group once.
fn check_split(
    name: &str,
    groups: &[usize],
    capacities: &[ChildCapacity],
    split: &[Vec<usize>],
) -> Result<()> {
    let invalid = |message: String| {
        Err(EplbError::InvalidPlugin {
            component: name.to_string(),
            message,
        })
    };
    if split.len() != capacities.len() {
        return invalid(format!(
            "{} parts for {} children",
            split.len(),
            capacities.len()
        ));
    }
    for (i, (part, cap)) in split.iter().zip(capacities).enumerate() {
        if part.len() != cap.groups {
            return invalid(format!(
                "child {i} got {} groups, it must get {}",
                part.len(),
                cap.groups
            ));
        }
    }
    let mut given: Vec<usize> = split.iter().flatten().copied().collect();
    let mut expected = groups.to_vec();
    given.sort_unstable();
    expected.sort_unstable();
    if given != expected {
        return invalid(format!(
            "split {split:?} is not a split of groups {groups:?}"
        ));
    }
    Ok(())
}

impl<S: GroupSplitter, L: PlacementStrategy> PlacementStrategy for Hierarchical<S, L> {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "top-down decomposition over the cluster tree: groups to subtrees by a pluggable splitter, each node by a pluggable sub-solver"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        Ok(self.solve_detailed(layer)?.solution)
    }
}
