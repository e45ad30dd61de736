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
//! With [`GreedySplit`] and [`Greedy`](crate::strategies::Greedy) on DeepSeek's two-level tree
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
//!         let heaviest = (0..e).fold(0, |b, i| if layer.loads[i] > layer.loads[b] { i } else { b });
//!         let phy2log = (0..layer.cluster.replicas).map(|s| if s < e { s } else { heaviest }).collect();
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

use std::collections::HashMap;

use eplb_solvers::apportion::min_max_share;
use eplb_solvers::partition::BalancedPartitioner;
use petgraph::graph::NodeIndex;

use crate::error::{EplbError, Result};
use crate::placement::LayerPlacement;
use crate::problem::{Cluster, LayerProblem, Policy};
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};
use crate::topology::Topology;

/// What one child of a level receives: its number of whole groups, GPUs and slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildCapacity {
    /// Groups the child must receive (`G/N` per node below it).
    pub groups: usize,
    /// GPUs below the child.
    pub gpus: usize,
    /// Expert slots below the child.
    pub slots: usize,
}

/// One level's split: hand `groups` to `children`, each exactly its
/// [`ChildCapacity::groups`].
#[derive(Debug, Clone, Copy)]
pub struct SplitProblem<'a> {
    /// The layer (loads and group size).
    pub layer: &'a LayerProblem<'a>,
    /// The groups to split, in the order the parent level gave them.
    pub groups: &'a [usize],
    /// The children, in tree order.
    pub children: &'a [ChildCapacity],
}

impl SplitProblem<'_> {
    /// The loads of the experts of `group`.
    ///
    /// # Panics
    /// When a group id is not below the layer's group count.
    pub fn experts_of(&self, group: usize) -> &[f64] {
        let size = self.layer.group_size();
        &self.layer.loads[group * size..(group + 1) * size]
    }

    /// The total load of `group`.
    ///
    /// # Panics
    /// When a group id is not below the layer's group count.
    pub fn group_load(&self, group: usize) -> f64 {
        self.experts_of(group).iter().sum()
    }

    /// The split's objective for one child holding `groups`: the node-level bound
    /// `max(sum / gpus, T_rep(experts, slots))`.
    ///
    /// # Panics
    /// When a group id is not below the layer's group count.
    pub fn child_value(&self, child: &ChildCapacity, groups: &[usize]) -> f64 {
        let loads: Vec<f64> = groups
            .iter()
            .flat_map(|&g| self.experts_of(g).iter().copied())
            .collect();
        let sum: f64 = loads.iter().sum();
        let rep = min_max_share(&loads, child.slots.max(loads.len())).unwrap_or(0.0);
        (sum / child.gpus as f64).max(rep)
    }

    /// The objective of a whole split: the largest child value.
    ///
    /// # Panics
    /// When a group id is not below the layer's group count.
    pub fn value(&self, split: &[Vec<usize>]) -> f64 {
        self.children
            .iter()
            .zip(split)
            .map(|(c, g)| self.child_value(c, g))
            .fold(0.0, f64::max)
    }
}

/// An engine that splits whole groups among the children of a level.
pub trait GroupSplitter: Send + Sync {
    /// A short name (for error messages).
    fn name(&self) -> &str;

    /// One ordered list of groups per child; child `i` must get exactly
    /// `children[i].groups` of the given groups, each group exactly once. The order inside a
    /// list is the order of the child's experts in its sub-problem.
    ///
    /// # Errors
    /// Whatever keeps the engine from answering.
    fn split(&self, problem: &SplitProblem<'_>) -> Result<Vec<Vec<usize>>>;
}

impl<T: GroupSplitter + ?Sized> GroupSplitter for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn split(&self, problem: &SplitProblem<'_>) -> Result<Vec<Vec<usize>>> {
        (**self).split(problem)
    }
}

/// DeepSeek's split (`eplb.py`): groups by descending `f32` load into the lightest child that
/// is not full. With unequal children, the child with the lightest load per GPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct GreedySplit;

impl GroupSplitter for GreedySplit {
    fn name(&self) -> &str {
        "greedy split"
    }

    fn split(&self, p: &SplitProblem<'_>) -> Result<Vec<Vec<usize>>> {
        // Group sums as eplb.py computes them: f32 loads summed in f32 in expert order.
        let sums: Vec<f32> = p
            .groups
            .iter()
            .map(|&g| p.experts_of(g).iter().fold(0.0f32, |a, &x| a + x as f32))
            .collect();
        let k = p.children.len();
        let equal = p.children.windows(2).all(|w| w[0] == w[1]);
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); k];
        if equal {
            let mut partitioner = BalancedPartitioner::default();
            let packed = partitioner.greedy(&sums, k)?;
            let per = p.groups.len() / k.max(1);
            for o in &mut out {
                o.resize(per, usize::MAX);
            }
            for (i, &g) in p.groups.iter().enumerate() {
                out[packed.pack[i]][packed.rank[i]] = g;
            }
            return Ok(out);
        }
        let mut order: Vec<usize> = (0..p.groups.len()).collect();
        order.sort_by(|&a, &b| sums[b].total_cmp(&sums[a]).then(a.cmp(&b)));
        let mut load = vec![0.0f64; k];
        for i in order {
            let child = (0..k)
                .filter(|&c| out[c].len() < p.children[c].groups)
                .min_by(|&a, &b| {
                    (load[a] / p.children[a].gpus as f64)
                        .total_cmp(&(load[b] / p.children[b].gpus as f64))
                        .then(a.cmp(&b))
                })
                .ok_or_else(|| EplbError::InvalidPlugin {
                    component: self.name().into(),
                    message: "more groups than the children can take".into(),
                })?;
            load[child] += f64::from(sums[i]);
            out[child].push(p.groups[i]);
        }
        Ok(out)
    }
}

/// The split minimising the node-level bound: branch and bound over assignments of groups to
/// children, minimising the largest `max(sum / gpus, T_rep)` over the children, starting from
/// [`GreedySplit`]'s split (so never worse on that objective) and stopping after a budget of
/// search nodes (deterministic). Groups inside a child are in ascending id order.
#[derive(Debug, Clone, Copy)]
pub struct BalancedSplit {
    budget: usize,
}

impl Default for BalancedSplit {
    fn default() -> Self {
        Self { budget: 20_000 }
    }
}

impl BalancedSplit {
    /// A split search that visits at most `budget` search nodes.
    pub fn with_budget(budget: usize) -> Self {
        Self { budget }
    }
}

impl GroupSplitter for BalancedSplit {
    fn name(&self) -> &str {
        "balanced split"
    }

    fn split(&self, p: &SplitProblem<'_>) -> Result<Vec<Vec<usize>>> {
        Ok(self.search(p)?.split)
    }
}

/// What a [`BalancedSplit`] search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitOutcome {
    /// The best split found (groups in ascending id order inside each child).
    pub split: Vec<Vec<usize>>,
    /// Its objective, [`SplitProblem::value`].
    pub value: f64,
    /// True when the search finished within its budget: then `value` is the minimum over all
    /// splits (a lower bound for every placement that keeps groups whole in these children).
    pub complete: bool,
}

impl BalancedSplit {
    /// Runs the search and says whether it was complete.
    ///
    /// # Errors
    /// When the greedy starting split fails (weights the engines reject).
    ///
    /// # Complexity
    /// At most `budget` search nodes, each closing child costing one `O(s log e)`
    /// apportionment for `e` experts on `s` slots (memoised per group set).
    pub fn search(&self, p: &SplitProblem<'_>) -> Result<SplitOutcome> {
        let mut incumbent = GreedySplit.split(p)?;
        for child in &mut incumbent {
            child.sort_unstable();
        }
        let mut search = SplitSearch {
            problem: p,
            order: p.groups.to_vec(),
            sums: p.groups.iter().map(|&g| (g, p.group_load(g))).collect(),
            best: p.value(&incumbent),
            best_split: incumbent,
            current: vec![Vec::new(); p.children.len()],
            current_sum: vec![0.0; p.children.len()],
            memo: HashMap::new(),
            visited: 0,
            budget: self.budget,
        };
        search
            .order
            .sort_by(|a, b| search.sums[b].total_cmp(&search.sums[a]).then(a.cmp(b)));
        search.descend(0, 0.0);
        Ok(SplitOutcome {
            complete: search.visited <= search.budget,
            value: search.best,
            split: search.best_split,
        })
    }
}

struct SplitSearch<'p, 'a> {
    problem: &'p SplitProblem<'a>,
    order: Vec<usize>,
    sums: HashMap<usize, f64>,
    best: f64,
    best_split: Vec<Vec<usize>>,
    current: Vec<Vec<usize>>,
    current_sum: Vec<f64>,
    memo: HashMap<Vec<usize>, f64>,
    visited: usize,
    budget: usize,
}

impl SplitSearch<'_, '_> {
    fn descend(&mut self, depth: usize, worst_closed: f64) {
        self.visited += 1;
        if self.visited > self.budget || worst_closed >= self.best {
            return;
        }
        if depth == self.order.len() {
            self.best = worst_closed;
            self.best_split = self.current.clone();
            for child in &mut self.best_split {
                child.sort_unstable();
            }
            return;
        }
        let g = self.order[depth];
        let children = self.problem.children;
        for c in 0..children.len() {
            let cap = children[c];
            if self.current[c].len() == cap.groups {
                continue;
            }
            // Identical empty children are interchangeable: open only the first.
            if self.current[c].is_empty()
                && (0..c).any(|d| self.current[d].is_empty() && children[d] == cap)
            {
                continue;
            }
            let sum = self.current_sum[c] + self.sums[&g];
            if sum / cap.gpus as f64 >= self.best {
                continue;
            }
            self.current[c].push(g);
            self.current_sum[c] = sum;
            let closed = if self.current[c].len() == cap.groups {
                let mut key = self.current[c].clone();
                key.sort_unstable();
                let value = match self.memo.get(&key) {
                    Some(&v) => v,
                    None => {
                        let v = self.problem.child_value(&cap, &key);
                        self.memo.insert(key, v);
                        v
                    }
                };
                worst_closed.max(value)
            } else {
                worst_closed
            };
            self.descend(depth + 1, closed);
            self.current[c].pop();
            self.current_sum[c] -= self.sums[&g];
        }
    }
}

/// One node's outcome in a [`Decomposition`].
#[derive(Debug, Clone, PartialEq)]
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
pub struct Decomposition {
    /// The layer's placement (a heuristic answer for the whole layer).
    pub solution: LayerSolution,
    /// One entry per node, in GPU order.
    pub nodes: Vec<NodeOutcome>,
}

/// The hierarchical decomposition strategy. See the [module docs](self).
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
    pub fn two_level(splitter: S, leaf: L) -> Self {
        Self {
            topology: None,
            splitter,
            leaf,
            name: "hierarchical".into(),
        }
    }

    /// Decomposition over `topology` (checked against each layer's cluster when solving).
    pub fn with_topology(topology: Topology, splitter: S, leaf: L) -> Self {
        Self {
            topology: Some(topology),
            ..Self::two_level(splitter, leaf)
        }
    }

    /// Renames the strategy (the default name is `hierarchical`).
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
        if layer.policy == Policy::Global {
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
                built = Topology::two_level(layer.cluster)?;
                &built
            }
        };
        topology.check_cluster(layer.cluster)?;
        let mut walk = Walk {
            layer,
            topology,
            splitter: &self.splitter,
            leaf: &self.leaf,
            groups_per_node: layer.cluster.groups / layer.cluster.nodes,
            phy2log: vec![0; layer.cluster.replicas],
            ranks: vec![0; layer.cluster.replicas],
            nodes: Vec::new(),
        };
        let all: Vec<usize> = (0..layer.cluster.groups).collect();
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
    fn place(&mut self, v: NodeIndex, groups: &[usize]) -> Result<()> {
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

    fn solve_node(&mut self, v: NodeIndex, groups: &[usize]) -> Result<()> {
        let size = self.layer.group_size();
        let members: Vec<usize> = groups
            .iter()
            .flat_map(|&g| g * size..(g + 1) * size)
            .collect();
        let loads: Vec<f64> = members.iter().map(|&e| self.layer.loads[e]).collect();
        let sub = self.topology.subtree(v);
        let cluster = Cluster::new(sub.slots, sub.gpus);
        let node_layer = LayerProblem {
            index: self.layer.index,
            loads: &loads,
            cluster: &cluster,
            policy: Policy::Global,
        };
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
        let first_slot = sub.first_gpu * (self.layer.cluster.replicas / self.layer.cluster.gpus);
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
