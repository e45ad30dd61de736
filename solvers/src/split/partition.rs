//! The canonical partitions of `n <= 64` groups into interchangeable sets of `k` groups each.
//!
//! Sets are bit masks. A partition is built set by set: the next set holds the lowest group
//! not yet taken and `k - 1` of the groups above it, chosen in lexicographic order, so every
//! partition is visited exactly once (the sets are interchangeable) and always in the same
//! order.

use super::max_with;

/// All `k`-subsets of `0..n` (`n <= 64`) as bit masks, in lexicographic order of their
/// members.
///
/// ```
/// use eplb_solvers::split::partition::combinations;
/// assert_eq!(combinations(4, 2), vec![0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100]);
/// ```
pub fn combinations(n: usize, k: usize) -> Vec<u64> {
    Combinations::new(n, k).collect()
}

/// The `k`-subsets of `0..n` of [`combinations`], one at a time (a walk over the partitions
/// may stop long before the last of `C(n, k)` subsets, so they are never all held at once).
struct Combinations {
    n: usize,
    pick: Vec<usize>,
    done: bool,
}

impl Combinations {
    fn new(n: usize, k: usize) -> Self {
        Self {
            n,
            pick: (0..k).collect(),
            done: k > n,
        }
    }
}

impl Iterator for Combinations {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.done {
            return None;
        }
        let (n, k) = (self.n, self.pick.len());
        let mask = self.pick.iter().fold(0u64, |m, &b| m | (1 << b));
        // Advance to the next subset in lexicographic order, or finish.
        match (0..k).rev().find(|&i| self.pick[i] < n - k + i) {
            Some(i) => {
                self.pick[i] += 1;
                for j in i + 1..k {
                    self.pick[j] = self.pick[j - 1] + 1;
                }
            }
            None => self.done = true,
        }
        Some(mask)
    }
}

/// What the walk does below a node.
enum Step {
    Descend,
    Prune,
    Stop,
}

/// The callbacks of a walk over the partitions; `S` is carried down the recursion.
trait Visitor<S> {
    /// At every node (a partial partition): go on, skip its subtree, or stop the walk.
    fn node(&mut self, sets: &[u64], state: &S) -> Step;
    /// The state below a node once `set` is added to it.
    fn open(&mut self, state: &S, set: u64) -> S;
    /// At a complete partition: false stops the walk.
    fn leaf(&mut self, sets: &[u64], state: &S) -> bool;
}

/// Walks the canonical partitions of `n` groups into sets of `k` (`k >= 1`, `k` dividing
/// `n`); false when a visitor stopped it.
fn walk<S>(n: usize, k: usize, state: S, visitor: &mut impl Visitor<S>) -> bool {
    let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut sets = Vec::with_capacity(n / k.max(1));
    walk_from(n, k, all, 0, &state, &mut sets, visitor)
}

fn walk_from<S>(
    n: usize,
    k: usize,
    all: u64,
    used: u64,
    state: &S,
    sets: &mut Vec<u64>,
    visitor: &mut impl Visitor<S>,
) -> bool {
    match visitor.node(sets, state) {
        Step::Stop => return false,
        Step::Prune => return true,
        Step::Descend => {}
    }
    if used == all {
        return visitor.leaf(sets, state);
    }
    let first = (!used).trailing_zeros() as usize;
    let free: Vec<usize> = (first + 1..n).filter(|&g| used & (1 << g) == 0).collect();
    for rest in Combinations::new(free.len(), k - 1) {
        let mut set = 1u64 << first;
        for (idx, &g) in free.iter().enumerate() {
            if rest & (1 << idx) != 0 {
                set |= 1 << g;
            }
        }
        let below = visitor.open(state, set);
        sets.push(set);
        let go_on = walk_from(n, k, all, used | set, &below, sets, visitor);
        sets.pop();
        if !go_on {
            return false;
        }
    }
    true
}

/// Every canonical partition of `n <= 64` groups into sets of `k` (see the [module
/// docs](self)), in walk order; `None` when there are more than `cap`.
///
/// ```
/// use eplb_solvers::split::partition::all_partitions;
/// let all = all_partitions(4, 2, 10).unwrap();
/// assert_eq!(all, vec![vec![0b0011, 0b1100], vec![0b0101, 0b1010], vec![0b1001, 0b0110]]);
/// assert_eq!(all_partitions(4, 2, 2), None);
/// ```
///
/// # Panics
/// When `k` is zero or does not divide `n`, or `n > 64`.
pub fn all_partitions(n: usize, k: usize, cap: usize) -> Option<Vec<Vec<u64>>> {
    assert!(
        n <= 64 && k > 0 && n.is_multiple_of(k),
        "sets of k must tile n <= 64 groups"
    );
    struct Collect {
        out: Vec<Vec<u64>>,
        cap: usize,
    }
    impl Visitor<()> for Collect {
        fn node(&mut self, _: &[u64], _: &()) -> Step {
            Step::Descend
        }
        fn open(&mut self, _: &(), _: u64) {}
        fn leaf(&mut self, sets: &[u64], _: &()) -> bool {
            self.out.push(sets.to_vec());
            self.out.len() <= self.cap
        }
    }
    let mut collect = Collect {
        out: Vec::new(),
        cap,
    };
    walk(n, k, (), &mut collect).then_some(collect.out)
}

/// The partition whose largest `value(set)` is smallest, found by branch and bound over the
/// canonical partitions (a branch is cut as soon as its largest set value reaches the best
/// found; the first best in walk order is kept), and that value; `None` when the search needs
/// more than `max_nodes` nodes.
///
/// ```
/// use eplb_solvers::split::partition::min_max_partition;
/// let loads = [5u64, 4, 3, 2];
/// let load = |set: u64| (0..4).filter(|&g| set >> g & 1 == 1).map(|g| loads[g]).sum::<u64>();
/// assert_eq!(min_max_partition(4, 2, load, 100), Some((vec![0b1001, 0b0110], 7)));
/// ```
///
/// # Panics
/// As [`all_partitions`].
pub fn min_max_partition<V: Copy + PartialOrd>(
    n: usize,
    k: usize,
    value: impl FnMut(u64) -> V,
    max_nodes: usize,
) -> Option<(Vec<u64>, V)> {
    assert!(
        n <= 64 && k > 0 && n.is_multiple_of(k),
        "sets of k must tile n <= 64 groups"
    );
    struct MinMax<V, F> {
        value: F,
        best: Option<(Vec<u64>, V)>,
        nodes: usize,
        max_nodes: usize,
    }
    impl<V: Copy + PartialOrd, F: FnMut(u64) -> V> Visitor<Option<V>> for MinMax<V, F> {
        fn node(&mut self, _: &[u64], worst: &Option<V>) -> Step {
            self.nodes += 1;
            if self.nodes > self.max_nodes {
                return Step::Stop;
            }
            match (worst, &self.best) {
                (Some(w), Some((_, b))) if w >= b => Step::Prune,
                _ => Step::Descend,
            }
        }
        fn open(&mut self, worst: &Option<V>, set: u64) -> Option<V> {
            Some(max_with(*worst, (self.value)(set)))
        }
        fn leaf(&mut self, sets: &[u64], worst: &Option<V>) -> bool {
            if let Some(w) = *worst {
                self.best = Some((sets.to_vec(), w));
            }
            true
        }
    }
    let mut search = MinMax {
        value,
        best: None,
        nodes: 0,
        max_nodes,
    };
    if walk(n, k, None, &mut search) {
        search.best
    } else {
        None
    }
}
