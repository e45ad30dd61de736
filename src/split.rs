//! Splitting expert groups among the children of a topology level (nodes, racks): whole
//! groups, a fixed number per child, each child's value being a lower bound on its busiest GPU.
//!
//! [`GreedySplit`] is `eplb.py`'s greedy packing of group sums; [`BalancedSplit`] searches the
//! splits by branch and bound for the one with the smallest largest child value — which is also
//! the hierarchical policy's node-level [lower bound](crate::bounds) when run to completion.
//! The [`hierarchical`](crate::strategies::Hierarchical) strategy is generic over a
//! [`GroupSplitter`].

use std::convert::Infallible;

use eplb_solvers::apportion::min_max_share;
use eplb_solvers::partition::BalancedPartitioner;
use eplb_solvers::split::assign::{kinds_by_equality, AssignSearch, Child};

use crate::error::{EplbError, Result};
use crate::problem::LayerProblem;

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
        &self.layer.loads()[group * size..(group + 1) * size]
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
#[non_exhaustive]
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
    /// apportionment for `e` experts on `s` slots (memoised per group set and kind of child).
    pub fn search(&self, p: &SplitProblem<'_>) -> Result<SplitOutcome> {
        // The engine's group positions are the groups in ascending id order: its ties (lower
        // position first) go to the lower id and every child's groups come out ascending.
        let mut ids = p.groups.to_vec();
        ids.sort_unstable();
        let position = |g: usize| ids.binary_search(&g).expect("a group of the problem");
        let loads: Vec<f64> = ids.iter().map(|&g| p.group_load(g)).collect();
        let kinds = kinds_by_equality(p.children);
        let children: Vec<Child> = p
            .children
            .iter()
            .zip(kinds)
            .map(|(c, kind)| Child {
                groups: c.groups,
                kind,
            })
            .collect();
        let start: Vec<Vec<usize>> = GreedySplit
            .split(p)?
            .iter()
            .map(|child| child.iter().map(|&g| position(g)).collect())
            .collect();
        let mut groups = Vec::new();
        let found = AssignSearch::with_budget(self.budget).run(
            &loads,
            &children,
            &start,
            |c, set| {
                groups.clear();
                groups.extend(set.iter().map(|&i| ids[i]));
                Ok::<f64, Infallible>(p.child_value(&p.children[c], &groups))
            },
            |c, sum| sum / p.children[c].gpus as f64,
        );
        let Ok(found) = found;
        Ok(SplitOutcome {
            split: found
                .sets
                .iter()
                .map(|set| set.iter().map(|&i| ids[i]).collect())
                .collect(),
            value: found.value,
            complete: found.complete,
        })
    }
}
