//! Branch and bound over the assignments of groups to children, heaviest group first.
//!
//! The groups are placed one at a time in order of decreasing load (ties: lower position
//! first) into every child that still has room, children in order; of several *empty* children
//! of one kind only the first is tried (they are interchangeable). A child whose partial load
//! gives a bound (the caller's `load_bound`) at or above the best value is not tried; when a
//! child receives its last group its value is computed (the caller's `value`, memoised per
//! kind and group set), and a branch whose largest closed value reaches the best is cut. Every
//! call of the recursion is one search node; past the budget the search stops with the best
//! split found, which is never worse than the starting split.

use std::collections::HashMap;

use super::max_with;
use super::set::{GroupSet, WideSet};

/// One child of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Child {
    /// Groups the child takes, exactly.
    pub groups: usize,
    /// Children of one kind are interchangeable: they give the same value to the same groups
    /// (values are memoised per kind and group set) and of several empty ones only the first
    /// is opened. Children of different kinds are never merged. A kind is a child index (below
    /// the number of children), such as the first child of that kind
    /// ([`kinds_by_equality`]).
    pub kind: usize,
}

/// The search: its budget of search nodes, and buffers kept from one run to the next (so a
/// search kept by the caller allocates nothing once warm).
#[derive(Debug, Clone)]
pub struct AssignSearch<V> {
    budget: usize,
    narrow: Scratch<u64, V>,
    wide: Scratch<WideSet, V>,
}

/// The buffers of one set type.
#[derive(Debug, Clone)]
pub(super) struct Scratch<S, V> {
    order: Vec<usize>,
    sets: Vec<S>,
    lens: Vec<usize>,
    sums: Vec<f64>,
    best_sets: Vec<S>,
    /// Values by kind (a child index) and set.
    memo: Vec<HashMap<S, V>>,
    members: Vec<usize>,
}

impl<S, V> Default for Scratch<S, V> {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            sets: Vec::new(),
            lens: Vec::new(),
            sums: Vec::new(),
            best_sets: Vec::new(),
            memo: Vec::new(),
            members: Vec::new(),
        }
    }
}

/// The scratch of a set type.
pub(super) trait ScratchOf<S, V> {
    fn scratch(&mut self) -> &mut Scratch<S, V>;
}

impl<V> ScratchOf<u64, V> for AssignSearch<V> {
    fn scratch(&mut self) -> &mut Scratch<u64, V> {
        &mut self.narrow
    }
}

impl<V> ScratchOf<WideSet, V> for AssignSearch<V> {
    fn scratch(&mut self) -> &mut Scratch<WideSet, V> {
        &mut self.wide
    }
}

/// What an [`AssignSearch`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned<V> {
    /// The best split: the group positions of every child, ascending.
    pub sets: Vec<Vec<usize>>,
    /// Its value: the largest child value.
    pub value: V,
    /// True when the search ended within its budget: `value` is then the minimum over all
    /// splits.
    pub complete: bool,
}

impl<V: Copy + PartialOrd> AssignSearch<V> {
    /// A search that visits at most `budget` search nodes (deterministic: the answer depends
    /// on the input only).
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            narrow: Scratch::default(),
            wide: Scratch::default(),
        }
    }

    /// Searches the splits of the groups (positions `0..loads.len()`, `loads[g]` the load of
    /// group `g`) among `children` for the smallest largest `value(child, groups)` (groups in
    /// ascending order), starting from the split `start` (one list of positions per child,
    /// each of the child's size, every group once). `load_bound(child, load)` must be a lower
    /// bound on the value of `child` holding groups of total `load` or more, non-decreasing in
    /// `load`.
    ///
    /// # Errors
    /// The first error of `value`.
    ///
    /// # Panics
    /// When `start` has not one list per child or names a group outside `loads`, or a kind is
    /// not below the number of children.
    ///
    /// # Complexity
    /// At most `budget` search nodes, each at most one `value` call per child (memoised).
    pub fn run<E>(
        &mut self,
        loads: &[f64],
        children: &[Child],
        start: &[Vec<usize>],
        value: impl FnMut(usize, &[usize]) -> Result<V, E>,
        load_bound: impl Fn(usize, f64) -> V,
    ) -> Result<Assigned<V>, E> {
        if loads.len() <= 64 {
            self.run_with::<u64, E>(loads, children, start, value, load_bound)
        } else {
            self.run_with::<WideSet, E>(loads, children, start, value, load_bound)
        }
    }

    pub(super) fn run_with<S: GroupSet, E>(
        &mut self,
        loads: &[f64],
        children: &[Child],
        start: &[Vec<usize>],
        value: impl FnMut(usize, &[usize]) -> Result<V, E>,
        load_bound: impl Fn(usize, f64) -> V,
    ) -> Result<Assigned<V>, E>
    where
        Self: ScratchOf<S, V>,
    {
        assert_eq!(start.len(), children.len(), "one starting set per child");
        assert!(
            children.iter().all(|c| c.kind < children.len()),
            "kinds are child indices"
        );
        let n = loads.len();
        let k = children.len();
        let budget = self.budget;
        let scratch = self.scratch();
        scratch.order.clear();
        scratch.order.extend(0..n);
        scratch
            .order
            .sort_by(|&a, &b| loads[b].total_cmp(&loads[a]).then(a.cmp(&b)));
        scratch.sets.clear();
        scratch.sets.resize(k, S::empty(n));
        scratch.lens.clear();
        scratch.lens.resize(k, 0);
        scratch.sums.clear();
        scratch.sums.resize(k, 0.0);
        scratch.memo.resize_with(k, HashMap::new);
        scratch.memo.iter_mut().for_each(HashMap::clear);
        let mut search = Search {
            loads,
            children,
            s: scratch,
            best: None,
            visited: 0,
            budget,
            value,
            load_bound,
        };
        // The starting split's value.
        let mut best = None;
        let mut best_sets = std::mem::take(&mut search.s.best_sets);
        best_sets.clear();
        for (c, groups) in start.iter().enumerate() {
            let mut set = S::empty(n);
            for &g in groups {
                set.insert(g);
            }
            let v = search.closed(c, &set)?;
            best = Some(max_with(best, v));
            best_sets.push(set);
        }
        search.best = best;
        search.s.best_sets = best_sets;
        search.descend(0, None)?;
        let sets = search
            .s
            .best_sets
            .iter()
            .map(|s| {
                let mut m = Vec::new();
                s.members(&mut m);
                m
            })
            .collect();
        Ok(Assigned {
            sets,
            value: search.best.expect("at least one child"),
            complete: search.visited <= search.budget,
        })
    }
}

/// The state of one search.
struct Search<'a, S, V, F, B> {
    loads: &'a [f64],
    children: &'a [Child],
    s: &'a mut Scratch<S, V>,
    best: Option<V>,
    visited: usize,
    budget: usize,
    value: F,
    load_bound: B,
}

impl<S, V, E, F, B> Search<'_, S, V, F, B>
where
    S: GroupSet,
    V: Copy + PartialOrd,
    F: FnMut(usize, &[usize]) -> Result<V, E>,
    B: Fn(usize, f64) -> V,
{
    /// The value of child `c` holding `set` (memoised per kind and set).
    fn closed(&mut self, c: usize, set: &S) -> Result<V, E> {
        let kind = self.children[c].kind;
        if let Some(&v) = self.s.memo[kind].get(set) {
            return Ok(v);
        }
        set.members(&mut self.s.members);
        let v = (self.value)(c, &self.s.members)?;
        self.s.memo[kind].insert(set.clone(), v);
        Ok(v)
    }

    fn descend(&mut self, depth: usize, worst: Option<V>) -> Result<(), E> {
        self.visited += 1;
        let cut = |v: Option<V>, best: Option<V>| v.zip(best).is_some_and(|(v, b)| v >= b);
        if self.visited > self.budget || cut(worst, self.best) {
            return Ok(());
        }
        if depth == self.s.order.len() {
            self.best = worst;
            self.s.best_sets.clone_from(&self.s.sets);
            return Ok(());
        }
        let g = self.s.order[depth];
        for c in 0..self.children.len() {
            let child = self.children[c];
            if self.s.lens[c] == child.groups {
                continue;
            }
            // Interchangeable empty children: open only the first.
            if self.s.lens[c] == 0
                && (0..c).any(|d| self.s.lens[d] == 0 && self.children[d].kind == child.kind)
            {
                continue;
            }
            let before = self.s.sums[c];
            let sum = before + self.loads[g];
            if cut(Some((self.load_bound)(c, sum)), self.best) {
                continue;
            }
            self.s.sets[c].insert(g);
            self.s.sums[c] = sum;
            self.s.lens[c] += 1;
            let closed = if self.s.lens[c] == child.groups {
                let set = self.s.sets[c].clone();
                let v = self.closed(c, &set)?;
                Some(max_with(worst, v))
            } else {
                worst
            };
            let result = self.descend(depth + 1, closed);
            self.s.sets[c].remove(g);
            self.s.sums[c] = before;
            self.s.lens[c] -= 1;
            result?;
        }
        Ok(())
    }
}

/// Kinds for children compared by equality: each child's kind is the index of the first
/// child equal to it.
///
/// ```
/// use eplb_solvers::split::assign::kinds_by_equality;
/// assert_eq!(kinds_by_equality(&[4, 2, 4, 2, 3]), vec![0, 1, 0, 1, 4]);
/// ```
pub fn kinds_by_equality<T: PartialEq>(children: &[T]) -> Vec<usize> {
    (0..children.len())
        .map(|c| (0..c).find(|&d| children[d] == children[c]).unwrap_or(c))
        .collect()
}
