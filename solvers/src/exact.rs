//! Exact search for min-max packing with copies.
//!
//! **The problem.** `n` items with integer weights `w_i`, `m` bins of exactly `s` slots each,
//! `m * s >= n`. Choose copy counts `c_i >= 1` with `sum(c_i) = m * s`; every item is cut into
//! `c_i` equal copies of size `w_i / c_i`, and the copies are packed into the bins, `s` per bin.
//! Minimise the largest bin sum. [`solve_grouped`] adds a block structure: items form equal
//! groups of consecutive indices, the bins form equal blocks, every block takes the same number
//! of whole groups and every copy of an item stays in its group's block.
//!
//! **Exactness.** For fixed counts the copy sizes are rationals; they are scaled by
//! `D = lcm(c_i / gcd(w_i, c_i))` so that every copy is an integer number of units `1/D` and
//! all sums and comparisons are exact integer arithmetic. Values are returned as [`Fraction`]s.
//! The weights are first divided by their greatest common divisor (token counts often share a
//! power of two), so the lattice bounds below work on the coarsest lattice.
//!
//! **The search.**
//! 1. Lower bounds valid for every count vector: the average `sum(w) / m` and the smallest
//!    achievable largest copy (`T_rep`, exact greedy apportionment).
//! 2. Incumbents: the caller's start packing if any ([`SearchLimits::start`]), then a few
//!    promising count vectors (the apportionment; halves on the largest items; when the
//!    average has denominator `d`, items cut into `d` pieces by residue class so every bin can
//!    reach the average exactly; just enough copies for every share to fit under fractions of
//!    the bound), each packed largest-first into the lightest open bin, balanced by swap
//!    descent on the squared deviations (1-for-1 and 2-for-2 swaps), improved by a
//!    large-neighbourhood search (the heaviest bin and up to three others re-packed exactly by
//!    node-limited bin completion), a short walk of exact two-bin re-partitions, swaps out of
//!    the heaviest bin, then by a node-limited bin completion.
//! 3. Complete enumeration of the count vectors that could still beat the incumbent, in
//!    passes whose per-vector node budget grows eightfold (the last pass has none), so that one
//!    hard vector does not hold up the others; a pass that no budget cut short is a proof:
//!    `c_i` is forced above `w_i / incumbent`, items of equal weight get non-increasing counts
//!    (symmetry), and each vector is skipped when its own bounds (lattice bound
//!    `ceil(sum·D/m)/D`, largest copy plus the `s-1` smallest, and the generalised pigeonhole
//!    bound: among the `k·m+1` largest copies some bin holds `k+1`) reach the incumbent;
//!    otherwise its packing is minimised by bin completion below the incumbent.
//! 4. Bin completion: each bin takes the largest remaining copy and is completed by a multiset of
//!    the remaining copies, largest sums first; a completion is pruned when the rest could not
//!    fit in the remaining bins, and is dominated (skipped) when one of its copies could be
//!    swapped for the next larger unused one and the bin would still fit. The same order
//!    statistics bounds are rechecked at every bin. Two slots per bin are solved in closed form
//!    (largest with smallest).
//!
//! The clock is checked inside the search, so a deadline is honoured within a few microseconds
//! of work; the answer is then the best packing found and a valid lower bound.
//!
//! ```
//! use eplb_solvers::exact::{solve, SearchLimits};
//! // Weights (3, 3, 2), 2 bins of 2 slots: copy the *small* item, {3, 1} and {3, 1}.
//! let out = solve(&[3, 3, 2], 2, 2, &SearchLimits::default()).unwrap();
//! assert!(out.proven);
//! assert_eq!(out.best.as_ref().unwrap().value.to_f64(), 4.0);
//! assert_eq!(out.best.unwrap().counts, vec![1, 1, 2]);
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Instant;

use crate::error::SolverError;

/// The largest total weight the engine accepts (`2^50`), so that scaled sums fit in `u64` and
/// cross-multiplied comparisons fit in `u128`.
pub const MAX_TOTAL_WEIGHT: u64 = 1 << 50;

/// Largest scale `D` tried for one count vector; vectors needing more are skipped (and the
/// search then no longer claims a proof).
const MAX_SCALE: u64 = 1 << 24;

/// Nodes of the bin-completion search spent on the incumbent's counts before enumeration.
const WARM_NODES: u64 = 20_000;

/// Node budget of each count vector's bin completion in the first pass of the enumeration;
/// every further pass multiplies it by [`BUDGET_GROWTH`] (the last pass has no budget), so one
/// hard count vector cannot hold up the others (whose packings may lower the incumbent, or
/// whose bounds may be met quickly).
const FIRST_LEAF_NODES: u64 = 4_096;

/// Growth of the per-vector node budget from one enumeration pass to the next.
const BUDGET_GROWTH: u64 = 8;

/// The next pass's node budget: grows by [`BUDGET_GROWTH`] up to `max`, and is unlimited
/// (`u64::MAX`) after `2^36` nodes.
fn next_budget(budget: u64, max: u64) -> u64 {
    let next = if budget >= 1 << 36 {
        u64::MAX
    } else {
        budget * BUDGET_GROWTH
    };
    next.min(max)
}

/// A non-negative rational number `num / den` (`den > 0`), compared exactly.
///
/// ```
/// use eplb_solvers::exact::Fraction;
/// assert!(Fraction::new(1, 3) < Fraction::new(34, 100));
/// assert_eq!(Fraction::new(2, 4), Fraction::new(1, 2));
/// assert!(Fraction::new(1, 3).to_f64_down() <= 1.0 / 3.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fraction {
    num: u128,
    den: u128,
}

impl Fraction {
    /// `num / den`.
    ///
    /// # Panics
    /// When `den == 0`.
    pub fn new(num: u128, den: u128) -> Self {
        assert!(den > 0, "a fraction needs a positive denominator");
        let g = gcd128(num, den);
        Self {
            num: num / g,
            den: den / g,
        }
    }

    /// The numerator (in lowest terms).
    pub fn numer(&self) -> u128 {
        self.num
    }

    /// The denominator (in lowest terms).
    pub fn denom(&self) -> u128 {
        self.den
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The largest `f64` that is not above the exact value (for reporting lower bounds).
    pub fn to_f64_down(&self) -> f64 {
        let mut f = self.to_f64();
        // The division rounds to nearest; step down while the float is above the value.
        for _ in 0..4 {
            match self.cmp_f64(f) {
                Some(Ordering::Greater) | Some(Ordering::Equal) => return f,
                Some(Ordering::Less) => f = next_down(f),
                None => break,
            }
        }
        // Comparison out of range: step down by a few ulps, enough for the rounding above.
        for _ in 0..3 {
            f = next_down(f);
        }
        f.max(0.0)
    }

    /// Compares this fraction with a finite `f >= 0` exactly (`None` when out of range).
    fn cmp_f64(&self, f: f64) -> Option<Ordering> {
        if f == 0.0 {
            return Some(self.num.cmp(&0));
        }
        let bits = f.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        // f = mant * 2^e; compare num / den with it: num * 2^-e vs mant * den.
        let rhs = (mant as u128).checked_mul(self.den)?;
        if e >= 0 {
            let rhs = rhs
                .checked_shl(e as u32)
                .filter(|r| r >> e == (mant as u128) * self.den)?;
            Some(self.num.cmp(&rhs))
        } else {
            let sh = (-e) as u32;
            if sh >= 128 || self.num.leading_zeros() < sh {
                return None;
            }
            Some((self.num << sh).cmp(&rhs))
        }
    }
}

fn next_down(f: f64) -> f64 {
    if f > 0.0 {
        f64::from_bits(f.to_bits() - 1)
    } else {
        0.0
    }
}

impl PartialEq for Fraction {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Fraction {}
impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Fraction {
    fn cmp(&self, other: &Self) -> Ordering {
        // Values stay below 2^74 with denominators below 2^50, so products fit in u128.
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

fn gcd128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Limits of one search.
#[derive(Debug, Clone, Default)]
pub struct SearchLimits {
    /// Stop at this instant with the best answer so far; `None` means search to the end.
    pub deadline: Option<Instant>,
    /// Stop as soon as `value <= lower_bound * (1 + gap)`; `0.0` (the default) means prove
    /// optimality.
    pub gap: f64,
    /// A placement to start from, as the item in every slot (`slots[b * per_bin + k]`, the
    /// layout of [`CopyPacking::slots`]), e.g. a heuristic's: improved by the search's local
    /// moves and used as the first incumbent. Ignored when it is not a valid packing (every
    /// item at least once, the right number of slots, and for [`solve_grouped`] whole groups
    /// in blocks).
    pub start: Option<Vec<usize>>,
}

/// One packing: copy counts and the item in every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPacking {
    /// `counts[i]`: copies of item `i` (`>= 1`, summing to `bins * per_bin`).
    pub counts: Vec<usize>,
    /// `slots[b * per_bin + k]`: the item whose copy sits in slot `k` of bin `b`.
    pub slots: Vec<usize>,
    /// The largest bin sum, exactly.
    pub value: Fraction,
}

/// What a search found and proved.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// The best packing found (always present for [`solve`] and [`solve_grouped`]).
    pub best: Option<CopyPacking>,
    /// A lower bound on the optimal value, never above it.
    pub lower_bound: Fraction,
    /// True when `best` is proven optimal.
    pub proven: bool,
}

/// Search context: deadline and counters.
struct Ctx {
    deadline: Option<Instant>,
    nodes: u64,
    timed_out: bool,
}

impl Ctx {
    /// Counts a node; true when the deadline has passed (checked every 256 nodes).
    fn tick(&mut self) -> bool {
        self.nodes += 1;
        if self.timed_out {
            return true;
        }
        if self.nodes.is_multiple_of(256) {
            if let Some(d) = self.deadline {
                if Instant::now() >= d {
                    self.timed_out = true;
                }
            }
        }
        self.timed_out
    }

    /// Reads the clock now (for coarse-grained loops); true when the deadline has passed.
    fn expired(&mut self) -> bool {
        if !self.timed_out {
            if let Some(d) = self.deadline {
                self.timed_out = Instant::now() >= d;
            }
        }
        self.timed_out
    }
}

fn check_shape(weights: &[u64], bins: usize, per_bin: usize) -> Result<(), SolverError> {
    if bins == 0 || per_bin == 0 {
        return Err(SolverError::PacksDoNotDivide {
            items: weights.len(),
            packs: bins,
        });
    }
    let copies = bins.saturating_mul(per_bin);
    if weights.is_empty() || copies < weights.len() {
        return Err(SolverError::TooFewCopies {
            items: weights.len(),
            copies,
        });
    }
    let total = weights.iter().try_fold(0u64, |a, &w| a.checked_add(w));
    match total {
        Some(t) if t <= MAX_TOTAL_WEIGHT => Ok(()),
        _ => Err(SolverError::WeightsTooLarge {
            limit: MAX_TOTAL_WEIGHT,
        }),
    }
}

/// Minimises the largest bin sum over copy counts and packings (see the [module docs](self)).
///
/// # Errors
/// [`SolverError::PacksDoNotDivide`] when `bins` or `per_bin` is zero,
/// [`SolverError::TooFewCopies`] when `bins * per_bin < weights.len()` or there are no items,
/// [`SolverError::WeightsTooLarge`] when the weights sum above [`MAX_TOTAL_WEIGHT`].
///
/// # Complexity
/// Exponential in the worst case (the problem is strongly NP-hard); bounded by
/// `limits.deadline`.
pub fn solve(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    limits: &SearchLimits,
) -> Result<SearchOutcome, SolverError> {
    check_shape(weights, bins, per_bin)?;
    let mut ctx = Ctx {
        deadline: limits.deadline,
        nodes: 0,
        timed_out: false,
    };
    let (reduced, g) = reduce(weights);
    let start = limits.start.as_deref();
    let out = solve_flat(
        &reduced,
        bins,
        per_bin,
        None,
        start,
        limits.gap,
        None,
        true,
        u64::MAX,
        &mut ctx,
    )
    .outcome;
    Ok(out.scaled_by(g))
}

/// Divides the weights by their greatest common divisor `g` (`1` when all are zero): the
/// search then works on the coarsest lattice, so lattice bounds (`ceil(sum * D / m) / D`) see
/// that bin sums are multiples of `g / D`. Values found are multiplied back by `g`.
fn reduce(weights: &[u64]) -> (Vec<u64>, u64) {
    let g = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    (weights.iter().map(|&w| w / g).collect(), g)
}

impl Fraction {
    /// This fraction times the integer `k`.
    fn times(self, k: u64) -> Fraction {
        Fraction::new(self.num * k as u128, self.den)
    }
}

impl SearchOutcome {
    /// The outcome of the search on weights divided by `g`, for the original weights.
    fn scaled_by(mut self, g: u64) -> SearchOutcome {
        if g != 1 {
            self.lower_bound = self.lower_bound.times(g);
            if let Some(b) = self.best.as_mut() {
                b.value = b.value.times(g);
            }
        }
        self
    }
}

/// Like [`solve`], with `groups` equal groups of consecutive items and `blocks` equal blocks of
/// consecutive bins: every block takes `groups / blocks` whole groups, and all copies of an
/// item stay in its group's block (each block has `bins * per_bin / blocks` slots).
///
/// Group-to-block splits are tried in order of their lower bound; each block is solved as a
/// [`solve`] problem cut off at the incumbent (memoised per group set), and stops as soon as
/// it is good enough for its split: at or below the largest value or bound of the split's
/// blocks solved before it. The passes over the splits grow the blocks' per-vector node
/// budgets, as in [`solve`].
///
/// ```
/// use eplb_solvers::exact::{solve_grouped, SearchLimits};
/// // Four groups of one item, two blocks of one bin with two slots.
/// let out = solve_grouped(&[5, 4, 3, 2], 4, 2, 2, 2, &SearchLimits::default()).unwrap();
/// assert!(out.proven);
/// assert_eq!(out.best.unwrap().value.to_f64(), 7.0); // {5, 2} and {4, 3}
/// ```
///
/// # Errors
/// As [`solve`], plus [`SolverError::BadGroups`] when the groups or blocks do not divide
/// evenly, or there are more than 64 groups.
pub fn solve_grouped(
    weights: &[u64],
    groups: usize,
    blocks: usize,
    bins: usize,
    per_bin: usize,
    limits: &SearchLimits,
) -> Result<SearchOutcome, SolverError> {
    check_shape(weights, bins, per_bin)?;
    if groups == 0
        || blocks == 0
        || groups > 64
        || !weights.len().is_multiple_of(groups)
        || !groups.is_multiple_of(blocks)
        || !bins.is_multiple_of(blocks)
    {
        return Err(SolverError::BadGroups {
            items: weights.len(),
            groups,
            blocks,
            bins,
        });
    }
    let mut ctx = Ctx {
        deadline: limits.deadline,
        nodes: 0,
        timed_out: false,
    };
    let (reduced, g) = reduce(weights);
    Ok(grouped::solve(
        &reduced,
        groups,
        blocks,
        bins,
        per_bin,
        limits.start.as_deref(),
        limits.gap,
        &mut ctx,
    )
    .scaled_by(g))
}

/// Exact greedy apportionment: counts minimising the largest `w_i / c_i` (ties: lowest index).
fn apportion(weights: &[u64], copies: usize) -> Vec<usize> {
    use std::collections::BinaryHeap;
    #[derive(PartialEq, Eq)]
    struct Share(u64, usize, usize); // weight, count, item
    impl Ord for Share {
        fn cmp(&self, o: &Self) -> Ordering {
            (self.0 as u128 * o.1 as u128)
                .cmp(&(o.0 as u128 * self.1 as u128))
                .then(o.2.cmp(&self.2))
        }
    }
    impl PartialOrd for Share {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    let mut counts = vec![1; weights.len()];
    let mut heap: BinaryHeap<Share> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| Share(w, 1, i))
        .collect();
    for _ in weights.len()..copies {
        let Share(w, c, i) = heap.pop().expect("at least one item");
        counts[i] = c + 1;
        heap.push(Share(w, c + 1, i));
    }
    counts
}

/// The largest share `w_i / c_i`.
fn max_share(weights: &[u64], counts: &[usize]) -> Fraction {
    let mut best = Fraction::new(0, 1);
    for (&w, &c) in weights.iter().zip(counts) {
        let f = Fraction::new(w as u128, c as u128);
        if f > best {
            best = f;
        }
    }
    best
}

/// The copies of one count vector in integer units of `1 / scale`.
struct Items {
    scale: u64,
    /// Distinct copy sizes, descending.
    sizes: Vec<u64>,
    /// Copies of each distinct size.
    avail: Vec<u32>,
    /// `(unit size, item, copies)` sorted by size descending then item: who owns the copies
    /// of each distinct size, in order (expanded only when a packing is turned into slots).
    copies: Vec<(u64, usize, usize)>,
    total: u64,
}

impl Items {
    fn build(weights: &[u64], counts: &[usize]) -> Option<Items> {
        let mut scale: u64 = 1;
        for (&w, &c) in weights.iter().zip(counts) {
            let c = c as u64;
            let need = c / gcd(w, c).max(1);
            let need = if w == 0 { 1 } else { need };
            scale = scale.checked_mul(need / gcd(scale, need))?;
            if scale > MAX_SCALE {
                return None;
            }
        }
        let mut copies: Vec<(u64, usize, usize)> = Vec::new();
        let mut total: u64 = 0;
        for (i, (&w, &c)) in weights.iter().zip(counts).enumerate() {
            let unit = (w as u128 * scale as u128 / c as u128) as u64;
            total = total.checked_add(w.checked_mul(scale)?)?;
            copies.push((unit, i, c));
        }
        copies.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut sizes = Vec::new();
        let mut avail = Vec::new();
        for &(unit, _, c) in &copies {
            if sizes.last() != Some(&unit) {
                sizes.push(unit);
                avail.push(0);
            }
            *avail.last_mut().expect("pushed") += c as u32;
        }
        Some(Items {
            scale,
            sizes,
            avail,
            copies,
            total,
        })
    }

    /// Turns bins of distinct-size indices into a slot vector of item ids.
    fn slots(&self, bins: &[Vec<usize>]) -> Vec<usize> {
        let mut owners: Vec<Vec<usize>> = vec![Vec::new(); self.sizes.len()];
        let mut j = 0;
        for &(unit, i, c) in &self.copies {
            while self.sizes[j] != unit {
                j += 1;
            }
            owners[j].extend(std::iter::repeat_n(i, c));
        }
        let mut next = vec![0usize; self.sizes.len()];
        let mut slots = Vec::new();
        for bin in bins {
            for &j in bin {
                slots.push(owners[j][next[j]]);
                next[j] += 1;
            }
        }
        slots
    }
}

/// Order-statistics lower bound (in units) for packing the available copies into `bins` bins
/// of exactly `per_bin`: average, largest plus the `per_bin - 1` smallest, and the generalised
/// pigeonhole bound (among the `k * bins + 1` largest copies some bin holds `k + 1`).
fn order_bound(sizes: &[u64], avail: &[u32], total: u64, bins: usize, per_bin: usize) -> u64 {
    let b = bins as u64;
    let mut lb = total.div_ceil(b);
    if per_bin == 1 {
        if let Some(j) = avail.iter().position(|&a| a > 0) {
            lb = lb.max(sizes[j]);
        }
        return lb;
    }
    // The per_bin - 1 smallest copies, as prefix sums from the small end.
    let mut small = vec![0u64; per_bin];
    {
        let mut k = 0;
        'outer: for j in (0..sizes.len()).rev() {
            for _ in 0..avail[j] {
                if k + 1 >= per_bin {
                    break 'outer;
                }
                small[k + 1] = small[k] + sizes[j];
                k += 1;
            }
        }
    }
    // Walk ranks from the top: rank r (1-based) has size at the current cursor.
    let mut rank: usize = 0;
    let mut window: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut window_sum: u64 = 0;
    let mut k = 0; // looking for rank k * bins + 1
    'walk: for j in 0..sizes.len() {
        for _ in 0..avail[j] {
            rank += 1;
            window.push_back(sizes[j]);
            window_sum += sizes[j];
            if window.len() > k + 1 {
                window_sum -= window.pop_front().expect("non-empty");
            }
            if rank == k * bins + 1 {
                // window holds ranks (k*bins - k + 1) ..= (k*bins + 1), i.e. k+1 copies.
                if window.len() == k + 1 {
                    let rest = per_bin - k - 1;
                    lb = lb.max(window_sum + small[rest]);
                }
                k += 1;
                if k >= per_bin {
                    break 'walk;
                }
            }
        }
    }
    lb
}

/// Pairs largest with smallest: optimal for exactly two copies per bin.
fn pack_pairs(items: &Items) -> (u64, Vec<Vec<usize>>) {
    let mut flat = Vec::new();
    for (j, &a) in items.avail.iter().enumerate() {
        flat.extend(std::iter::repeat_n(j, a as usize));
    }
    let n = flat.len();
    let mut bins = Vec::with_capacity(n / 2);
    let mut max = 0;
    for i in 0..n / 2 {
        let (x, y) = (flat[i], flat[n - 1 - i]);
        max = max.max(items.sizes[x] + items.sizes[y]);
        bins.push(vec![x, y]);
    }
    (max, bins)
}

/// Largest-first into the lightest open bin, then pairwise swaps out of the heaviest bin.
fn pack_heuristic(
    items: &Items,
    bins: usize,
    per_bin: usize,
    floor: u64,
    ctx: &mut Ctx,
) -> (u64, Vec<Vec<usize>>) {
    let mut load = vec![0u64; bins];
    let mut content: Vec<Vec<usize>> = vec![Vec::with_capacity(per_bin); bins];
    for (j, &a) in items.avail.iter().enumerate() {
        for _ in 0..a {
            let b = (0..bins)
                .filter(|&b| content[b].len() < per_bin)
                .min_by_key(|&b| (load[b], b))
                .expect("enough slots");
            load[b] += items.sizes[j];
            content[b].push(j);
        }
    }
    balance(items, &mut load, &mut content, ctx);
    repack_subsets(items, per_bin, floor, &mut load, &mut content, ctx);
    pair_walk(items, per_bin, floor, &mut load, &mut content, ctx);
    while !ctx.expired() {
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        let top = load[hot];
        let mut best: Option<(u64, usize, usize, usize)> = None; // new pair max, other, i, k
        for other in 0..bins {
            if other == hot {
                continue;
            }
            for (i, &x) in content[hot].iter().enumerate() {
                for (k, &y) in content[other].iter().enumerate() {
                    let (sx, sy) = (items.sizes[x], items.sizes[y]);
                    if sx <= sy {
                        continue;
                    }
                    let d = sx - sy;
                    if load[other] + d >= top {
                        continue;
                    }
                    let m = (top - d).max(load[other] + d);
                    if best.is_none_or(|b| m < b.0) {
                        best = Some((m, other, i, k));
                    }
                }
            }
        }
        let Some((_, other, i, k)) = best else { break };
        let (x, y) = (content[hot][i], content[other][k]);
        let d = items.sizes[x] - items.sizes[y];
        load[hot] -= d;
        load[other] += d;
        content[hot][i] = y;
        content[other][k] = x;
    }
    (load.iter().copied().max().unwrap_or(0), content)
}

/// Nodes of bin completion spent on one subset of bins in [`repack_subsets`], and subsets
/// tried around the heaviest bin before it gives up: a wide search where bins are many (there
/// it closes the last lattice step of DeepSeek-V3 layers), a short one where they are few (a
/// subset is then a large part of the instance, and the complete search comes sooner).
fn subset_budget(bins: usize) -> (u64, usize) {
    if bins >= 16 {
        (4_000, 48)
    } else {
        (2_000, 24)
    }
}

/// Large-neighbourhood search: the heaviest bin and `k - 1` others (`k = 2..=4`: the lightest
/// bins first, then pseudo-random partners with the lightest) are re-packed together by a
/// node-limited bin completion that minimises their largest sum; a re-packing is kept when it
/// lowers that sum. Every kept move lowers the sorted vector of bin sums lexicographically, so
/// the loop ends; it stops at `floor` (nothing can go lower), when no subset helps, or at the
/// deadline. Exact sub-partitions found this way are what closes the last lattice step on
/// large instances, where swaps of one or two copies rarely hit an exact difference.
/// Deterministic (a fixed-seed generator).
fn repack_subsets(
    items: &Items,
    per_bin: usize,
    floor: u64,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    ctx: &mut Ctx,
) {
    let bins = load.len();
    if bins < 2 || per_bin < 2 {
        return;
    }
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut avail = vec![0u32; items.sizes.len()];
    loop {
        if ctx.expired() {
            return;
        }
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        if load[hot] <= floor {
            return;
        }
        let mut cool: Vec<usize> = (0..bins).filter(|&b| b != hot).collect();
        cool.sort_by_key(|&b| (load[b], b));
        let mut improved = false;
        let (subset_nodes, subset_tries) = subset_budget(bins);
        for t in 0..subset_tries {
            if ctx.expired() {
                return;
            }
            let k = (2 + t % 3).min(bins);
            let mut subset = vec![hot];
            if t < 3 {
                subset.extend_from_slice(&cool[..k - 1]);
            } else {
                subset.push(cool[0]);
                while subset.len() < k {
                    let b = cool[(next() % cool.len() as u64) as usize];
                    if !subset.contains(&b) {
                        subset.push(b);
                    }
                }
            }
            let old_max = subset.iter().map(|&b| load[b]).max().expect("bins");
            let sub_total: u64 = subset.iter().map(|&b| load[b]).sum();
            let sub_floor = sub_total.div_ceil(subset.len() as u64).max(floor);
            if sub_floor >= old_max {
                continue;
            }
            avail.iter_mut().for_each(|a| *a = 0);
            for &b in &subset {
                for &j in &content[b] {
                    avail[j] += 1;
                }
            }
            let mut p = Packer {
                sizes: &items.sizes,
                avail: avail.clone(),
                per_bin,
                limit: old_max - 1,
                floor: sub_floor,
                current: Vec::with_capacity(subset.len()),
                best: None,
                node_budget: subset_nodes,
                nodes: 0,
                aborted: false,
            };
            p.search(ctx, subset.len(), sub_total);
            if let Some((_, packed)) = p.best {
                for (&b, bin) in subset.iter().zip(packed) {
                    load[b] = bin.iter().map(|&j| items.sizes[j]).sum();
                    content[b] = bin;
                }
                improved = true;
                break;
            }
        }
        if !improved {
            return;
        }
    }
}

/// Steps of [`pair_walk`] (each re-partitions two bins exactly).
const WALK_STEPS: usize = 64;

/// Fewest bins for which [`pair_walk`] runs: with fewer, the subset re-packing already covers
/// a large share of the bins, and the walk's enumerations (up to `C(19, 9)` splits per pair)
/// would only take time from the other count vectors.
const WALK_MIN_BINS: usize = 16;

/// Light partners tried per step of [`pair_walk`].
const WALK_PARTNERS: usize = 4;

/// Largest `per_bin` for which [`pair_walk`] enumerates the splits of two bins.
const WALK_MAX_PER_BIN: usize = 10;

/// Exact two-bin re-partitioning walk towards `target` (every bin at most `target` units).
/// Each step takes the heaviest bin `h` and enumerates every way to split the copies of `h`
/// and a partner `x` into two bins of `per_bin`: with a partner light enough
/// (`L_h + L_x <= 2 * target`) it looks for a split with both bins at most `target` (the
/// lightest partners first); otherwise it moves `h` to the largest sum at most `target`,
/// handing the excess to a pseudo-random partner, provided the pair's larger sum does not grow.
/// On large instances with no slack (`target` equal to the average) this random walk over
/// exact sub-partitions finds perfect partitions that swaps of one or two copies miss: the
/// sums of the `C(2s - 1, s - 1)` splits are dense around the target.
fn pair_walk(
    items: &Items,
    per_bin: usize,
    target: u64,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    ctx: &mut Ctx,
) {
    let bins = load.len();
    if bins < WALK_MIN_BINS || !(2..=WALK_MAX_PER_BIN).contains(&per_bin) {
        return;
    }
    let mut rng: u64 = 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut pool: Vec<usize> = Vec::with_capacity(2 * per_bin);
    for _ in 0..WALK_STEPS {
        if ctx.expired() {
            return;
        }
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        if load[hot] <= target {
            return;
        }
        let mut light: Vec<usize> = (0..bins)
            .filter(|&b| b != hot && load[hot] + load[b] <= 2 * target)
            .collect();
        light.sort_by_key(|&b| (load[b], b));
        let mut done = false;
        for &x in light.iter().take(WALK_PARTNERS) {
            let c = load[hot] + load[x];
            // A split with one side in [c - target, target]: both sides fit.
            if let Some(pick) = split_pair(items, content, hot, x, &mut pool, |s| {
                (s + target >= c && s <= target).then_some(0)
            }) {
                apply_split(items, load, content, hot, x, &pool, pick);
                done = true;
                break;
            }
            if ctx.expired() {
                return;
            }
        }
        if done {
            continue;
        }
        // No light partner works: move the excess to a pseudo-random partner.
        let x = loop {
            let b = (next() % bins as u64) as usize;
            if b != hot {
                break b;
            }
        };
        let c = load[hot] + load[x];
        // The largest side at most `target` (score: distance below it), kept only when the
        // other side stays at most the current heaviest sum.
        let limit = load[hot];
        if let Some(pick) = split_pair(items, content, hot, x, &mut pool, |s| {
            (s <= target && c - s <= limit).then(|| target - s)
        }) {
            apply_split(items, load, content, hot, x, &pool, pick);
        }
    }
}

/// Enumerates the splits of the copies of bins `a` and `b` (into `pool`) into two halves of
/// equal size: the first half always holds the pool's first copy, and a half's sum `s` is
/// scored by `score(s)` (`None`: not wanted); returns the mask of the half with the lowest
/// score (the first found on ties; a score of `0` stops the search).
fn split_pair(
    items: &Items,
    content: &[Vec<usize>],
    a: usize,
    b: usize,
    pool: &mut Vec<usize>,
    score: impl Fn(u64) -> Option<u64>,
) -> Option<u32> {
    pool.clear();
    pool.extend_from_slice(&content[a]);
    pool.extend_from_slice(&content[b]);
    let sizes: Vec<u64> = pool.iter().map(|&j| items.sizes[j]).collect();
    let half = content[a].len();
    if half != content[b].len() || sizes.len() > 31 {
        return None;
    }
    struct Walk<'s, F> {
        sizes: &'s [u64],
        half: usize,
        score: F,
        best: Option<(u64, u32)>,
    }
    impl<F: Fn(u64) -> Option<u64>> Walk<'_, F> {
        fn rec(&mut self, i: usize, taken: usize, sum: u64, mask: u32) {
            if self.best.is_some_and(|b| b.0 == 0) {
                return;
            }
            if taken == self.half {
                if let Some(s) = (self.score)(sum) {
                    if self.best.is_none_or(|b| s < b.0) {
                        self.best = Some((s, mask));
                    }
                }
                return;
            }
            if self.sizes.len() - i < self.half - taken {
                return;
            }
            self.rec(i + 1, taken + 1, sum + self.sizes[i], mask | 1 << i);
            self.rec(i + 1, taken, sum, mask);
        }
    }
    let mut w = Walk {
        sizes: &sizes,
        half,
        score,
        best: None,
    };
    w.rec(1, 1, sizes[0], 1);
    w.best.map(|b| b.1)
}

/// Puts the pool copies in `mask` into bin `a` and the others into bin `b`.
fn apply_split(
    items: &Items,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    a: usize,
    b: usize,
    pool: &[usize],
    mask: u32,
) {
    content[a].clear();
    content[b].clear();
    for (i, &j) in pool.iter().enumerate() {
        if mask >> i & 1 == 1 {
            content[a].push(j);
        } else {
            content[b].push(j);
        }
    }
    load[a] = content[a].iter().map(|&j| items.sizes[j]).sum();
    load[b] = content[b].iter().map(|&j| items.sizes[j]).sum();
}

/// A balancing move: cost change, the two bins, positions in each, and whether two copies move.
type Swap = (i128, usize, usize, [usize; 2], [usize; 2], bool);

/// A packing in units: its largest bin sum and the distinct-size indices of every bin.
type Packed = (u64, Vec<Vec<usize>>);

/// Swap descent on the sum of squared deviations from the average (1-for-1 swaps between any
/// two bins, 2-for-2 swaps out of the most deviating bin when those are exhausted): drives
/// packings towards bins of exactly equal sums, which the max-bin swaps alone rarely reach.
fn balance(items: &Items, load: &mut [u64], content: &mut [Vec<usize>], ctx: &mut Ctx) {
    let m = load.len() as i128;
    let total: i128 = load.iter().map(|&l| l as i128).sum();
    if total.saturating_mul(m) > 1i128 << 60 {
        // Squared deviations could overflow i128; the max-bin swaps still run.
        return;
    }
    let dev = |l: u64| l as i128 * m - total;
    let size = |j: usize| items.sizes[j] as i128;
    // Each applied move lowers the (integer, non-negative) cost, so this terminates; the cap
    // bounds the work on huge instances.
    for _ in 0..10_000 {
        if ctx.expired() {
            return;
        }
        let mut best: Option<Swap> = None;
        for a in 0..load.len() {
            for b in a + 1..load.len() {
                let (da, db) = (dev(load[a]), dev(load[b]));
                if da == db {
                    continue;
                }
                for (i, &x) in content[a].iter().enumerate() {
                    for (k, &y) in content[b].iter().enumerate() {
                        let d = (size(x) - size(y)) * m;
                        if d == 0 {
                            continue;
                        }
                        let delta = (da - d).pow(2) + (db + d).pow(2) - da * da - db * db;
                        if delta < 0 && best.is_none_or(|bb| delta < bb.0) {
                            best = Some((delta, a, b, [i, 0], [k, 0], false));
                        }
                    }
                }
            }
        }
        if best.is_none() {
            // 2-for-2 swaps, out of the bins furthest from the average first.
            let mut by_dev: Vec<usize> = (0..load.len()).collect();
            by_dev.sort_by_key(|&b| (std::cmp::Reverse(dev(load[b]).abs()), b));
            for a in by_dev {
                if best.is_some() || ctx.expired() {
                    break;
                }
                let da = dev(load[a]);
                let s = content[a].len();
                for b in 0..load.len() {
                    if b == a {
                        continue;
                    }
                    let db = dev(load[b]);
                    let t = content[b].len();
                    for i1 in 0..s {
                        for i2 in i1 + 1..s {
                            let out = size(content[a][i1]) + size(content[a][i2]);
                            for k1 in 0..t {
                                for k2 in k1 + 1..t {
                                    let inn = size(content[b][k1]) + size(content[b][k2]);
                                    let d = (out - inn) * m;
                                    if d == 0 {
                                        continue;
                                    }
                                    let delta =
                                        (da - d).pow(2) + (db + d).pow(2) - da * da - db * db;
                                    if delta < 0 && best.is_none_or(|bb| delta < bb.0) {
                                        best = Some((delta, a, b, [i1, i2], [k1, k2], true));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let Some((_, a, b, ia, kb, two)) = best else {
            return;
        };
        let moves = if two { 2 } else { 1 };
        for t in 0..moves {
            let (x, y) = (content[a][ia[t]], content[b][kb[t]]);
            load[a] = load[a] - items.sizes[x] + items.sizes[y];
            load[b] = load[b] - items.sizes[y] + items.sizes[x];
            content[a][ia[t]] = y;
            content[b][kb[t]] = x;
        }
    }
}

/// Bin-completion branch and bound for one count vector.
struct Packer<'a> {
    sizes: &'a [u64],
    avail: Vec<u32>,
    per_bin: usize,
    /// Current threshold: only packings with every bin `<= limit` are wanted.
    limit: u64,
    /// Stop when a packing at or below this is found.
    floor: u64,
    current: Vec<Vec<usize>>,
    best: Option<(u64, Vec<Vec<usize>>)>,
    node_budget: u64,
    nodes: u64,
    aborted: bool,
}

impl Packer<'_> {
    fn stop(&mut self, ctx: &mut Ctx) -> bool {
        self.nodes += 1;
        if self.nodes > self.node_budget {
            self.aborted = true;
        }
        if ctx.tick() {
            self.aborted = true;
        }
        self.aborted || self.best.as_ref().is_some_and(|b| b.0 <= self.floor)
    }

    fn search(&mut self, ctx: &mut Ctx, bins_left: usize, rem: u64) {
        if self.stop(ctx) {
            return;
        }
        if bins_left == 0 {
            let max = self
                .current
                .iter()
                .map(|b| b.iter().map(|&j| self.sizes[j]).sum::<u64>())
                .max()
                .unwrap_or(0);
            self.best = Some((max, self.current.clone()));
            self.limit = max.saturating_sub(1);
            return;
        }
        if rem > self.limit.saturating_mul(bins_left as u64) {
            return;
        }
        if bins_left == 1 {
            // Everything left forms the last bin.
            let mut bin = Vec::with_capacity(self.per_bin);
            for (j, &a) in self.avail.iter().enumerate() {
                bin.extend(std::iter::repeat_n(j, a as usize));
            }
            self.current.push(bin);
            self.search(ctx, 0, 0);
            self.current.pop();
            return;
        }
        if order_bound(self.sizes, &self.avail, rem, bins_left, self.per_bin) > self.limit {
            return;
        }
        let first = self
            .avail
            .iter()
            .position(|&a| a > 0)
            .expect("copies remain");
        let smallest = self.sizes[self
            .avail
            .iter()
            .rposition(|&a| a > 0)
            .expect("copies remain")];
        self.avail[first] -= 1;
        let mut chosen = Vec::with_capacity(self.per_bin);
        chosen.push(first);
        let x = self.sizes[first];
        self.complete(
            ctx,
            first,
            self.per_bin - 1,
            x,
            smallest,
            &mut chosen,
            bins_left,
            rem,
        );
        self.avail[first] += 1;
    }

    /// Picks `k` more copies from distinct sizes `>= j` (by index) for the bin in `chosen`.
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        ctx: &mut Ctx,
        j: usize,
        k: usize,
        cur: u64,
        smallest: u64,
        chosen: &mut Vec<usize>,
        bins_left: usize,
        rem: u64,
    ) {
        if self.stop(ctx) {
            return;
        }
        let hi = self.limit;
        let lo = rem.saturating_sub(self.limit.saturating_mul(bins_left as u64 - 1));
        if k == 0 {
            if cur > hi || cur < lo || self.dominated(chosen, cur) {
                return;
            }
            self.current.push(chosen.clone());
            self.search(ctx, bins_left - 1, rem - cur);
            self.current.pop();
            return;
        }
        let kk = k as u64;
        for i in j..self.sizes.len() {
            if self.avail[i] == 0 {
                continue;
            }
            let s = self.sizes[i];
            if cur + s + (kk - 1) * smallest > self.limit {
                continue;
            }
            if cur + kk * s < lo {
                break;
            }
            self.avail[i] -= 1;
            chosen.push(i);
            self.complete(ctx, i, k - 1, cur + s, smallest, chosen, bins_left, rem);
            chosen.pop();
            self.avail[i] += 1;
            if self.aborted {
                return;
            }
        }
    }

    /// True when a chosen copy could be swapped for the next larger unused one and the bin
    /// would still fit: that completion is dominated by the swapped one.
    fn dominated(&self, chosen: &[usize], sum: u64) -> bool {
        let mut prev = usize::MAX;
        for &z in &chosen[1..] {
            if z == prev {
                continue;
            }
            prev = z;
            if let Some(i) = (0..z).rev().find(|&i| self.avail[i] > 0) {
                if sum - self.sizes[z] + self.sizes[i] <= self.limit {
                    return true;
                }
            }
        }
        false
    }
}

/// Best packing of one count vector with every bin `<= limit` units, stopping at `floor`.
/// Returns the best packing found (if any) and whether the search was complete.
fn pack_below(
    items: &Items,
    bins: usize,
    per_bin: usize,
    limit: u64,
    floor: u64,
    node_budget: u64,
    ctx: &mut Ctx,
) -> (Option<Packed>, bool) {
    if per_bin == 2 {
        let (v, b) = pack_pairs(items);
        return ((v <= limit).then_some((v, b)), true);
    }
    let mut p = Packer {
        sizes: &items.sizes,
        avail: items.avail.clone(),
        per_bin,
        limit,
        floor,
        current: Vec::with_capacity(bins),
        best: None,
        node_budget,
        nodes: 0,
        aborted: false,
    };
    p.search(ctx, bins, items.total);
    let reached_floor = p.best.as_ref().is_some_and(|b| b.0 <= floor);
    let complete = !p.aborted || reached_floor;
    (p.best, complete)
}

/// Incumbent value as a fraction from units.
fn frac(units: u64, scale: u64) -> Fraction {
    Fraction::new(units as u128, scale as u128)
}

/// The largest unit count strictly below `f` at `scale`, or `None` when `f <= 0`.
fn units_below(f: Fraction, scale: u64) -> Option<u64> {
    // ceil(f * scale) - 1
    let x = (f.num * scale as u128).div_ceil(f.den);
    (x > 0).then(|| (x - 1).min(u64::MAX as u128) as u64)
}

/// The smallest unit count at or above `f` at `scale`.
fn units_at_least(f: Fraction, scale: u64) -> u64 {
    (f.num * scale as u128)
        .div_ceil(f.den)
        .min(u64::MAX as u128) as u64
}

fn close_enough(value: Fraction, lb: Fraction, gap: f64) -> bool {
    value <= lb || (gap > 0.0 && value.to_f64() <= lb.to_f64_down() * (1.0 + gap))
}

/// Count vectors worth packing before the complete enumeration: the apportionment; halves on
/// the largest items; and, when the average `sum / bins` has denominator `d > 1`, pieces of
/// `1/d` from the largest items whose weight `d` does not divide (enough such copies are needed
/// for every bin to reach the average exactly), the other extra copies apportioned greedily.
fn candidates(
    weights: &[u64],
    bins: usize,
    copies: usize,
    counts0: &[usize],
    lb: Fraction,
) -> Vec<Vec<usize>> {
    let n = weights.len();
    let extra = copies - n;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    let mut out = vec![counts0.to_vec()];
    let total: u64 = weights.iter().sum();
    let d = bins as u64 / gcd(total, bins as u64).max(1);
    let halves = |keep: &dyn Fn(u64) -> bool| -> Option<Vec<usize>> {
        // Too few suitable items: the rest of the copies are handed out greedily.
        let counts = counts_partial(&order, weights, extra, keep);
        Some(apportion_from(weights, counts, copies))
    };
    if extra > 0 {
        if let Some(c) = halves(&|_| true) {
            out.push(c);
        }
        if d == 1 {
            if let Some(c) = halves(&|w| w % 2 == 0) {
                out.push(c);
            }
        } else if let Some(c) = halves(&|w| w % 2 == 1) {
            out.push(c);
        }
    }
    if d > 1 && (d as usize) - 1 <= extra {
        // t items in d pieces each (largest weights coprime with d first), the other extra
        // copies as integer halves (even weights) or greedily.
        let d = d as usize;
        let residue_families: [&dyn Fn(u64) -> bool; 3] =
            [&|w| gcd(w, d as u64) == 1, &|w| w % d as u64 == 1, &|w| {
                w % d as u64 == d as u64 - 1
            }];
        for family in residue_families {
            let coprime: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| family(weights[i]))
                .collect();
            for t in 1..=(extra / (d - 1)).min(coprime.len()).min(8) {
                let mut counts = vec![1; n];
                for &i in &coprime[..t] {
                    counts[i] = d;
                }
                let left = extra - t * (d - 1);
                let mut even = counts.clone();
                let mut k = left;
                for &i in &order {
                    if k > 0 && even[i] == 1 && weights[i].is_multiple_of(2) {
                        even[i] = 2;
                        k -= 1;
                    }
                }
                out.push(apportion_from(weights, even, copies));
                out.push(apportion_from(weights, counts, copies));
            }
        }
    }
    // Fewest copies for shares at most `alpha * lb`, the extra copies to the smallest items
    // (fillers that barely change the packing) or apportioned: the apportionment gives the
    // largest items every extra copy, while good packings often split the largest items just
    // enough and cut medium items in halves.
    let target = lb.to_f64();
    if target > 0.0 {
        for alpha in [1.0, 0.9, 0.8, 0.7, 0.6, 0.5] {
            let cap = alpha * target;
            let counts: Vec<usize> = weights
                .iter()
                .map(|&w| ((w as f64 / cap).ceil() as usize).max(1))
                .collect();
            let used: usize = counts.iter().sum();
            if used > copies {
                continue;
            }
            let mut filler = counts.clone();
            let mut small: Vec<usize> = (0..n).collect();
            small.sort_by(|&a, &b| weights[a].cmp(&weights[b]).then(a.cmp(&b)));
            for k in 0..copies - used {
                filler[small[k % n]] += 1;
            }
            out.push(filler);
            out.push(apportion_from(weights, counts, copies));
        }
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let fresh = !seen.contains(c);
        if fresh {
            seen.push(c.clone());
        }
        fresh
    });
    out
}

/// Counts 2 for the largest items passing `keep` (up to `extra`), 1 otherwise.
fn counts_partial(
    order: &[usize],
    weights: &[u64],
    extra: usize,
    keep: &dyn Fn(u64) -> bool,
) -> Vec<usize> {
    let mut counts = vec![1; weights.len()];
    let mut left = extra;
    for &i in order {
        if left > 0 && keep(weights[i]) {
            counts[i] = 2;
            left -= 1;
        }
    }
    counts
}

/// Greedy apportionment continuing from `counts` up to `copies` in total.
fn apportion_from(weights: &[u64], mut counts: Vec<usize>, copies: usize) -> Vec<usize> {
    let mut have: usize = counts.iter().sum();
    while have < copies {
        let mut pick = 0;
        for i in 1..weights.len() {
            let (a, b) = (
                weights[i] as u128 * counts[pick] as u128,
                weights[pick] as u128 * counts[i] as u128,
            );
            if a > b {
                pick = i;
            }
        }
        counts[pick] += 1;
        have += 1;
    }
    counts
}

/// Packs one count vector heuristically, then by a node-limited bin completion; returns a
/// packing strictly better than `inc`, if it finds one.
fn try_counts(
    weights: &[u64],
    counts: &[usize],
    bins: usize,
    per_bin: usize,
    lb: Fraction,
    inc: Option<Fraction>,
    ctx: &mut Ctx,
) -> Option<CopyPacking> {
    let items = Items::build(weights, counts)?;
    let limit = match inc {
        None => u64::MAX,
        Some(f) => units_below(f, items.scale)?,
    };
    let local_lb = order_bound(&items.sizes, &items.avail, items.total, bins, per_bin);
    let floor = units_at_least(lb, items.scale).max(local_lb);
    if floor > limit {
        return None;
    }
    let (mut v, mut packed) = if per_bin == 2 {
        pack_pairs(&items)
    } else {
        pack_heuristic(&items, bins, per_bin, floor, ctx)
    };
    if v > floor && per_bin > 2 {
        let (found, _) = pack_below(
            &items,
            bins,
            per_bin,
            v.min(limit.saturating_add(1)) - 1,
            floor,
            WARM_NODES,
            ctx,
        );
        if let Some((v2, p2)) = found {
            (v, packed) = (v2, p2);
        }
    }
    (v <= limit).then(|| CopyPacking {
        counts: counts.to_vec(),
        slots: items.slots(&packed),
        value: frac(v, items.scale),
    })
}

/// A given packing (the item in every slot), improved by [`repack_subsets`]; `None` when it
/// is not a valid packing of `bins` bins of `per_bin` slots with every item at least once.
fn start_packing(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    slots: &[usize],
    ctx: &mut Ctx,
) -> Option<CopyPacking> {
    if slots.len() != bins * per_bin || slots.iter().any(|&i| i >= weights.len()) {
        return None;
    }
    let mut counts = vec![0usize; weights.len()];
    for &i in slots {
        counts[i] += 1;
    }
    if counts.contains(&0) {
        return None;
    }
    let items = Items::build(weights, &counts)?;
    let index = |i: usize| -> usize {
        let unit = (weights[i] as u128 * items.scale as u128 / counts[i] as u128) as u64;
        items
            .sizes
            .binary_search_by(|s| unit.cmp(s))
            .expect("every copy size is listed")
    };
    let mut content: Vec<Vec<usize>> = slots
        .chunks(per_bin)
        .map(|bin| bin.iter().map(|&i| index(i)).collect())
        .collect();
    let mut load: Vec<u64> = content
        .iter()
        .map(|bin| bin.iter().map(|&j| items.sizes[j]).sum())
        .collect();
    let floor = order_bound(&items.sizes, &items.avail, items.total, bins, per_bin);
    repack_subsets(&items, per_bin, floor, &mut load, &mut content, ctx);
    pair_walk(&items, per_bin, floor, &mut load, &mut content, ctx);
    let v = load.iter().copied().max().unwrap_or(0);
    Some(CopyPacking {
        counts,
        slots: items.slots(&content),
        value: frac(v, items.scale),
    })
}

/// What [`solve_flat`] found: the outcome and whether its search was complete (so that the
/// absence of a packing below the cutoff is proven).
struct Flat {
    outcome: SearchOutcome,
    complete: bool,
}

/// The flat problem with an optional strict cutoff: only packings below `cutoff` are wanted.
/// The lower bound returned is valid for `min(optimum, cutoff)`. With `enumerate == false` only
/// the incumbent phase runs.
#[allow(clippy::too_many_arguments)]
fn solve_flat(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    cutoff: Option<Fraction>,
    start: Option<&[usize]>,
    gap: f64,
    enough: Option<Fraction>,
    enumerate: bool,
    max_budget: u64,
    ctx: &mut Ctx,
) -> Flat {
    let good =
        |v: Fraction, lb: Fraction| close_enough(v, lb, gap) || enough.is_some_and(|e| v <= e);
    let copies = bins * per_bin;
    let total: u64 = weights.iter().sum();
    let counts0 = apportion(weights, copies);
    let mut lb = Fraction::new(total as u128, bins as u128).max(max_share(weights, &counts0));
    if let Some(c) = cutoff {
        lb = lb.min(c);
    }
    let mut best: Option<CopyPacking> = None;
    let mut inc = cutoff;
    if let Some(p) = start.and_then(|s| start_packing(weights, bins, per_bin, s, ctx)) {
        if inc.is_none_or(|v| p.value < v) {
            inc = Some(p.value);
            best = Some(p);
        }
    }

    // Incumbents from a few promising count vectors.
    for counts in candidates(weights, bins, copies, &counts0, lb) {
        if inc.is_some_and(|v| good(v, lb)) || ctx.timed_out {
            break;
        }
        if let Some(p) = try_counts(weights, &counts, bins, per_bin, lb, inc, ctx) {
            inc = Some(p.value);
            best = Some(p);
        }
    }
    if let Some(v) = inc {
        if good(v, lb) {
            // Proven when the bound is reached; otherwise stopped within the gap.
            return finish(best, lb, inc, v <= lb);
        }
    }
    if !enumerate {
        return finish(best, lb, inc, false);
    }

    // Complete enumeration of count vectors.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    // Passes with growing per-vector node budgets; a pass that no budget cut short is complete.
    // The incumbent's counts are tried first at every item.
    let pref = best.as_ref().map_or(counts0.clone(), |b| b.counts.clone());
    let mut budget = FIRST_LEAF_NODES.min(max_budget);
    loop {
        let mut en = Enumerator {
            weights,
            order: order.clone(),
            bins,
            per_bin,
            counts: vec![0; weights.len()],
            pref: pref.clone(),
            inc,
            best: &mut best,
            lb,
            gap,
            leaf_budget: budget,
            enough,
            complete: true,
            budget_hit: false,
            done: false,
        };
        en.descend(ctx, 0, copies);
        inc = en.inc;
        let (complete, done, budget_hit) = (en.complete, en.done, en.budget_hit);
        if ctx.timed_out || done || !budget_hit || budget == max_budget {
            // Stopping within the gap is complete only when the bound itself was reached.
            let complete = complete && !ctx.timed_out && (!done || inc.is_some_and(|v| v <= lb));
            return finish(best, lb, inc, complete);
        }
        budget = next_budget(budget, max_budget);
    }
}

fn finish(best: Option<CopyPacking>, lb: Fraction, inc: Option<Fraction>, complete: bool) -> Flat {
    let outcome = match (complete, inc) {
        (true, Some(v)) => {
            let proven = best.as_ref().is_some_and(|b| b.value == v);
            SearchOutcome {
                best,
                lower_bound: v.max(lb),
                proven,
            }
        }
        _ => SearchOutcome {
            best,
            lower_bound: lb,
            proven: false,
        },
    };
    Flat { outcome, complete }
}

/// Depth-first enumeration of count vectors that could beat the incumbent.
struct Enumerator<'a, 'b> {
    weights: &'a [u64],
    order: Vec<usize>,
    bins: usize,
    per_bin: usize,
    counts: Vec<usize>,
    /// Preferred count of each item (tried first).
    pref: Vec<usize>,
    inc: Option<Fraction>,
    best: &'b mut Option<CopyPacking>,
    lb: Fraction,
    gap: f64,
    /// Node budget of each count vector's bin completion.
    leaf_budget: u64,
    /// Stop at a packing at or below this value (good enough for the caller; not a proof).
    enough: Option<Fraction>,
    complete: bool,
    /// Some vector's bin completion ran out of its node budget (not of time).
    budget_hit: bool,
    done: bool,
}

impl Enumerator<'_, '_> {
    /// Fewest copies item `i` needs for a share strictly below the incumbent.
    fn min_count(&self, i: usize) -> usize {
        match self.inc {
            None => 1,
            Some(f) => {
                let w = self.weights[i] as u128;
                if f.num == 0 {
                    return usize::MAX;
                }
                // c > w * den / num
                (((w * f.den) / f.num) + 1).min(usize::MAX as u128) as usize
            }
        }
    }

    fn descend(&mut self, ctx: &mut Ctx, pos: usize, left: usize) {
        if self.done || ctx.tick() {
            return;
        }
        let n = self.order.len();
        // Copies the remaining items need at least.
        let mut need = 0usize;
        for &i in &self.order[pos..] {
            need = need.saturating_add(self.min_count(i));
        }
        if need > left {
            return;
        }
        let i = self.order[pos];
        let lo = self.min_count(i);
        let mut hi = left - (need - lo);
        if pos > 0 {
            let prev = self.order[pos - 1];
            if self.weights[prev] == self.weights[i] {
                hi = hi.min(self.counts[prev]);
            }
        }
        if pos + 1 == n {
            if left < lo || left > hi {
                return;
            }
            self.counts[i] = left;
            self.leaf(ctx);
            return;
        }
        // The preferred count first (so the first vectors are the promising ones), then the
        // rest in increasing order.
        let pref = self.pref[i].clamp(lo, hi.max(lo));
        let candidates = std::iter::once(pref).chain((lo..=hi).filter(|&c| c != pref));
        for c in candidates {
            // The incumbent may have improved: re-check this item's minimum.
            if c < self.min_count(i) || c > hi {
                continue;
            }
            self.counts[i] = c;
            self.descend(ctx, pos + 1, left - c);
            if self.done || ctx.timed_out {
                return;
            }
        }
    }

    fn leaf(&mut self, ctx: &mut Ctx) {
        let Some(items) = Items::build(self.weights, &self.counts) else {
            self.complete = false;
            return;
        };
        let local = order_bound(
            &items.sizes,
            &items.avail,
            items.total,
            self.bins,
            self.per_bin,
        );
        let limit = match self.inc {
            None => u64::MAX,
            Some(f) => match units_below(f, items.scale) {
                Some(u) => u,
                None => return,
            },
        };
        if local > limit {
            return;
        }
        let floor = units_at_least(self.lb, items.scale).max(local);
        let (found, complete) = pack_below(
            &items,
            self.bins,
            self.per_bin,
            limit,
            floor,
            self.leaf_budget,
            ctx,
        );
        if !complete {
            self.complete = false;
            self.budget_hit |= !ctx.timed_out;
        }
        if let Some((v, packed)) = found {
            let value = frac(v, items.scale);
            self.inc = Some(value);
            *self.best = Some(CopyPacking {
                counts: self.counts.clone(),
                slots: items.slots(&packed),
                value,
            });
            if close_enough(value, self.lb, self.gap) || self.enough.is_some_and(|e| value <= e) {
                self.done = true;
            }
        }
    }
}

mod grouped {
    //! The block-structured search of [`super::solve_grouped`].

    use super::*;

    /// A block's result below some cutoff, memoised by group set.
    #[derive(Clone)]
    struct BlockResult {
        best: Option<CopyPacking>,
        /// Valid lower bound on `min(block optimum, cutoff)`.
        lower_bound: Fraction,
        /// The search was complete: `best` is optimal, or nothing beats the cutoff.
        complete: bool,
        /// What an incomplete search was asked: cutoff, good-enough value and node budget (its
        /// pass is deterministic, so the same question gets the same answer); `None` when the
        /// clock stopped it.
        asked: Option<(Option<Fraction>, Option<Fraction>, u64)>,
    }

    struct Grouped<'a> {
        weights: &'a [u64],
        group_size: usize,
        bins_per_block: usize,
        per_bin: usize,
        gap: f64,
        memo: HashMap<u64, BlockResult>,
        bounds: HashMap<u64, Fraction>,
    }

    impl Grouped<'_> {
        fn block_weights(&self, mask: u64) -> Vec<u64> {
            let mut w = Vec::new();
            for g in 0..64 {
                if mask >> g & 1 == 1 {
                    w.extend_from_slice(
                        &self.weights[g * self.group_size..(g + 1) * self.group_size],
                    );
                }
            }
            w
        }

        fn bound(&mut self, mask: u64) -> Fraction {
            if let Some(&b) = self.bounds.get(&mask) {
                return b;
            }
            let w = self.block_weights(mask);
            let b = flat_bound(&w, self.bins_per_block, self.per_bin);
            self.bounds.insert(mask, b);
            b
        }

        /// Solves a block below `cutoff` (memoised; cutoffs only decrease over a search, so a
        /// complete result stays valid).
        fn block(
            &mut self,
            mask: u64,
            cutoff: Option<Fraction>,
            enough: Option<Fraction>,
            budget: u64,
            ctx: &mut Ctx,
        ) -> BlockResult {
            if let Some(r) = self.memo.get(&mask) {
                if r.complete {
                    return r.clone();
                }
                if let Some((c, e, b)) = r.asked {
                    let value = r.best.as_ref().map(|p| p.value);
                    // Not stopped at its good-enough value, or that value is good enough now.
                    let same_answer = e.zip(value).is_none_or(|(e, v)| v > e)
                        || enough.zip(value).is_some_and(|(e, v)| v <= e);
                    if c == cutoff && b == budget && same_answer {
                        return r.clone();
                    }
                }
            }
            let w = self.block_weights(mask);
            let flat = solve_flat(
                &w,
                self.bins_per_block,
                self.per_bin,
                cutoff,
                None,
                self.gap,
                enough,
                true,
                budget,
                ctx,
            );
            let r = BlockResult {
                lower_bound: flat.outcome.lower_bound,
                best: flat.outcome.best,
                complete: flat.complete,
                asked: (!ctx.timed_out).then_some((cutoff, enough, budget)),
            };
            self.memo.insert(mask, r.clone());
            r
        }

        /// A quick incumbent for a block (no enumeration).
        fn quick(&self, mask: u64, ctx: &mut Ctx) -> Option<CopyPacking> {
            let w = self.block_weights(mask);
            solve_flat(
                &w,
                self.bins_per_block,
                self.per_bin,
                None,
                None,
                0.0,
                None,
                false,
                0,
                ctx,
            )
            .outcome
            .best
        }
    }

    /// `max(sum / bins, T_rep)`: valid for every count vector.
    fn flat_bound(weights: &[u64], bins: usize, per_bin: usize) -> Fraction {
        let total: u64 = weights.iter().sum();
        let counts = apportion(weights, bins * per_bin);
        Fraction::new(total as u128, bins as u128).max(max_share(weights, &counts))
    }

    /// All ways to split `groups` into blocks of `per_block` (canonical: each block's lowest
    /// group is the lowest unassigned one), as bit masks; `None` when there are more than `cap`.
    fn splits(groups: usize, per_block: usize, cap: usize) -> Option<Vec<Vec<u64>>> {
        fn rec(
            free: u64,
            per_block: usize,
            current: &mut Vec<u64>,
            out: &mut Vec<Vec<u64>>,
            cap: usize,
        ) -> bool {
            if free == 0 {
                out.push(current.clone());
                return out.len() <= cap;
            }
            let first = free.trailing_zeros() as usize;
            let rest = free & !(1u64 << first);
            let members: Vec<usize> = (0..64).filter(|&g| rest >> g & 1 == 1).collect();
            let mut pick = Vec::new();
            subsets(&members, per_block - 1, 0, &mut pick, &mut |s| {
                let mask = s.iter().fold(1u64 << first, |m, &g| m | 1u64 << g);
                current.push(mask);
                let ok = rec(free & !mask, per_block, current, out, cap);
                current.pop();
                ok
            })
        }
        fn subsets(
            members: &[usize],
            k: usize,
            from: usize,
            pick: &mut Vec<usize>,
            f: &mut dyn FnMut(&[usize]) -> bool,
        ) -> bool {
            if pick.len() == k {
                return f(pick);
            }
            for i in from..members.len() {
                pick.push(members[i]);
                let ok = subsets(members, k, i + 1, pick, f);
                pick.pop();
                if !ok {
                    return false;
                }
            }
            true
        }
        let all = if groups == 64 {
            u64::MAX
        } else {
            (1u64 << groups) - 1
        };
        let mut out = Vec::new();
        rec(all, per_block, &mut Vec::new(), &mut out, cap).then_some(out)
    }

    /// Maximum number of group-to-block splits enumerated.
    const MAX_SPLITS: usize = 100_000;

    /// Assembles block packings (in block order) into one packing over all items.
    fn assemble(
        g: &Grouped<'_>,
        masks: &[u64],
        packs: &[CopyPacking],
        n: usize,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut counts = vec![0; n];
        let mut slots = Vec::new();
        for (mask, pack) in masks.iter().zip(packs) {
            let members: Vec<usize> = (0..64)
                .filter(|&x| mask >> x & 1 == 1)
                .flat_map(|x| x * g.group_size..(x + 1) * g.group_size)
                .collect();
            for (k, &c) in pack.counts.iter().enumerate() {
                counts[members[k]] = c;
            }
            slots.extend(pack.slots.iter().map(|&k| members[k]));
        }
        (counts, slots)
    }

    /// The split and block packings of a given packing (the item in every slot), each block
    /// improved by [`repack_subsets`]; `None` unless every block holds whole groups, the same
    /// number of them, and every item at least once.
    fn start_split(
        g: &Grouped<'_>,
        blocks: usize,
        start: &[usize],
        ctx: &mut Ctx,
    ) -> Option<(Vec<u64>, Vec<CopyPacking>)> {
        let block_slots = g.bins_per_block * g.per_bin;
        if start.len() != blocks * block_slots || start.iter().any(|&i| i >= g.weights.len()) {
            return None;
        }
        let groups = g.weights.len() / g.group_size;
        let mut block_of = vec![usize::MAX; groups];
        for (slot, &i) in start.iter().enumerate() {
            let (b, x) = (slot / block_slots, i / g.group_size);
            if block_of[x] != usize::MAX && block_of[x] != b {
                return None;
            }
            block_of[x] = b;
        }
        let mut masks = vec![0u64; blocks];
        for (x, &b) in block_of.iter().enumerate() {
            if b == usize::MAX {
                return None;
            }
            masks[b] |= 1u64 << x;
        }
        if masks
            .iter()
            .any(|m| m.count_ones() as usize != groups / blocks)
        {
            return None;
        }
        let mut packs = Vec::with_capacity(blocks);
        for (b, &mask) in masks.iter().enumerate() {
            // Local item index: position among the block's members (groups in increasing order).
            let mut local = vec![usize::MAX; g.weights.len()];
            let mut k = 0;
            for x in (0..groups).filter(|&x| mask >> x & 1 == 1) {
                for slot in &mut local[x * g.group_size..(x + 1) * g.group_size] {
                    *slot = k;
                    k += 1;
                }
            }
            let slots: Vec<usize> = start[b * block_slots..(b + 1) * block_slots]
                .iter()
                .map(|&i| local[i])
                .collect();
            let w = g.block_weights(mask);
            packs.push(start_packing(&w, g.bins_per_block, g.per_bin, &slots, ctx)?);
        }
        Some((masks, packs))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn solve(
        weights: &[u64],
        groups: usize,
        blocks: usize,
        bins: usize,
        per_bin: usize,
        seed: Option<&[usize]>,
        gap: f64,
        ctx: &mut Ctx,
    ) -> SearchOutcome {
        let mut g = Grouped {
            weights,
            group_size: weights.len() / groups,
            bins_per_block: bins / blocks,
            per_bin,
            gap,
            memo: HashMap::new(),
            bounds: HashMap::new(),
        };
        let per_block = groups / blocks;
        let (all, exhaustive) = match splits(groups, per_block, MAX_SPLITS) {
            Some(s) => (s, true),
            // Too many splits to enumerate: only consecutive groups, and the flat bound.
            None => (
                vec![(0..blocks)
                    .map(|b| (b * per_block..(b + 1) * per_block).fold(0u64, |m, x| m | 1u64 << x))
                    .collect()],
                false,
            ),
        };
        let mut scored: Vec<(Fraction, usize)> = all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let b = s.iter().map(|&m| g.bound(m)).max().expect("blocks");
                (b, i)
            })
            .collect();
        scored.sort();
        let global_lb = if exhaustive {
            scored[0].0
        } else {
            flat_bound(weights, bins, per_bin).min(scored[0].0)
        };

        // Incumbents: splits in bound order with their blocks packed heuristically (memoised
        // per group set), for up to 30% of the time left (at most 4 splits without a deadline),
        // so the exact phase starts from a good split even when it cannot finish.
        let start = Instant::now();
        let quick_until = ctx
            .deadline
            .map(|d| start + d.saturating_duration_since(start) * 3 / 10);
        let mut quick: HashMap<u64, Option<CopyPacking>> = HashMap::new();
        let mut best: Option<(Vec<u64>, Vec<CopyPacking>)> = None;
        let mut inc: Option<Fraction> = None;
        if let Some((masks, packs)) = seed.and_then(|s| start_split(&g, blocks, s, ctx)) {
            inc = packs.iter().map(|p| p.value).max();
            best = Some((masks, packs));
        }
        for (tried, &(bound, idx)) in scored.iter().enumerate() {
            let out_of_time = match quick_until {
                Some(t) => Instant::now() >= t,
                None => tried >= 4,
            };
            if tried > 0 && (out_of_time || ctx.timed_out || inc.is_some_and(|v| bound >= v)) {
                break;
            }
            let split = &all[idx];
            let mut packs = Vec::new();
            for &m in split {
                match quick.entry(m).or_insert_with(|| g.quick(m, ctx)) {
                    Some(p) => packs.push(p.clone()),
                    None => break,
                }
            }
            if packs.len() == split.len() {
                let value = packs.iter().map(|p| p.value).max();
                if inc.is_none_or(|v| value.is_some_and(|x| x < v)) {
                    inc = value;
                    best = Some((split.clone(), packs));
                }
            }
        }

        // Passes over the splits with growing per-vector node budgets in the blocks' searches
        // (see [`FIRST_LEAF_NODES`]); a pass leaving no split unresolved is complete. Each pass
        // accounts for every split (resolved blocks are memoised), so the last pass's bound
        // over the splits not resolved is valid.
        let mut budget = FIRST_LEAF_NODES;
        let note = |open: &mut Option<Fraction>, b: Fraction| {
            *open = Some(open.map_or(b, |u: Fraction| u.min(b)));
        };
        let open_lb = loop {
            // Lower bound over the splits not resolved.
            let mut open_lb: Option<Fraction> = None;
            for &(bound, idx) in &scored {
                if inc.is_some_and(|v| bound >= v) {
                    break;
                }
                if ctx.timed_out
                    || inc
                        .is_some_and(|v| close_enough(v, open_lb.unwrap_or(bound).min(bound), gap))
                {
                    // Every split from here on has a bound of at least `bound`.
                    note(&mut open_lb, bound);
                    break;
                }
                let split = &all[idx];
                let mut masks = split.clone();
                masks.sort_by_key(|&m| std::cmp::Reverse((g.bound(m), m)));
                let mut parts: Vec<(u64, CopyPacking)> = Vec::new();
                let mut split_lb = bound;
                let mut resolved = true;
                for &m in &masks {
                    // Once a block sets the split's value, the others need only stay at or
                    // below it (and below the split's bound nothing can go).
                    let enough = parts
                        .iter()
                        .map(|p| p.1.value)
                        .max()
                        .map_or(split_lb, |v| v.max(split_lb));
                    let r = g.block(m, inc, Some(enough), budget, ctx);
                    split_lb = split_lb.max(r.lower_bound);
                    resolved &= r.complete;
                    match r.best {
                        Some(p) if inc.is_none_or(|v| p.value < v) => parts.push((m, p)),
                        _ => break,
                    }
                }
                if parts.len() < masks.len() {
                    if !resolved {
                        note(&mut open_lb, split_lb);
                    }
                    continue;
                }
                let value = parts.iter().map(|p| p.1.value).max().expect("blocks");
                // Blocks stopped at "good enough" are not proven, but the split is resolved when
                // its value meets the largest of its blocks' lower bounds.
                if !resolved && value > split_lb {
                    note(&mut open_lb, split_lb);
                }
                if inc.is_none_or(|v| value < v) {
                    inc = Some(value);
                    parts.sort_by_key(|p| split.iter().position(|&m| m == p.0));
                    best = Some((
                        parts.iter().map(|p| p.0).collect(),
                        parts.into_iter().map(|p| p.1).collect(),
                    ));
                }
            }
            if open_lb.is_none() || ctx.timed_out || budget == u64::MAX {
                break open_lb;
            }
            budget = next_budget(budget, u64::MAX);
        };
        let Some((masks, packs)) = best else {
            return SearchOutcome {
                best: None,
                lower_bound: open_lb.unwrap_or(global_lb).max(global_lb),
                proven: false,
            };
        };
        let value = inc.expect("incumbent");
        let (counts, slots) = assemble(&g, &masks, &packs, weights.len());
        let lower_bound = if exhaustive {
            open_lb.map_or(value, |u| u.min(value))
        } else {
            global_lb.min(value)
        };
        let lower_bound = lower_bound.max(global_lb.min(value));
        let proven = exhaustive && lower_bound >= value;
        SearchOutcome {
            best: Some(CopyPacking {
                counts,
                slots,
                value,
            }),
            lower_bound,
            proven,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(w: &[u64], bins: usize, per_bin: usize) -> SearchOutcome {
        solve(w, bins, per_bin, &SearchLimits::default()).unwrap()
    }

    #[test]
    fn design_examples() {
        let o = run(&[3, 3, 2], 2, 2);
        assert!(o.proven);
        assert_eq!(o.best.unwrap().value, Fraction::new(4, 1));
        let o = run(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 1], 4, 3);
        assert!(o.proven);
        assert_eq!(o.best.unwrap().value, Fraction::new(23, 2));
    }

    #[test]
    fn order_bound_pigeonhole() {
        // Five copies of 10 and five of 1 in 5 bins of 2: each bin can take one 10, so the
        // best bound is the largest copy plus the smallest, 11.
        assert_eq!(order_bound(&[10, 1], &[5, 5], 55, 5, 2), 11);
        // Four 10s and two 1s in 3 bins of 2: some bin holds two 10s (pigeonhole), 20.
        assert_eq!(order_bound(&[10, 1], &[4, 2], 42, 3, 2), 20);
    }

    #[test]
    fn slots_and_counts_are_consistent() {
        let w = [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86];
        let o = run(&w, 8, 2);
        let best = o.best.unwrap();
        assert_eq!(best.slots.len(), 16);
        for (i, &c) in best.counts.iter().enumerate() {
            assert_eq!(best.slots.iter().filter(|&&x| x == i).count(), c);
        }
        assert!(o.proven);
        assert_eq!(best.value, Fraction::new(136, 1));
    }

    /// Units of `1 / 2520`: every share `w / c` with `c <= 9` is an integer number of them.
    const L: u64 = 2520;

    /// The optimum by enumerating every count vector and every assignment of copies to bins.
    fn brute(w: &[u64], bins: usize, per_bin: usize) -> u64 {
        fn counts_rec(
            w: &[u64],
            i: usize,
            left: usize,
            c: &mut Vec<usize>,
            f: &mut dyn FnMut(&[usize]),
        ) {
            if i + 1 == w.len() {
                if left >= 1 {
                    c.push(left);
                    f(c);
                    c.pop();
                }
                return;
            }
            for x in 1..=left.saturating_sub(w.len() - i - 1) {
                c.push(x);
                counts_rec(w, i + 1, left - x, c, f);
                c.pop();
            }
        }
        fn assign(
            copies: &[u64],
            k: usize,
            loads: &mut [u64],
            fill: &mut [usize],
            per_bin: usize,
        ) -> u64 {
            if k == copies.len() {
                return loads.iter().copied().max().unwrap_or(0);
            }
            let mut best = u64::MAX;
            for b in 0..loads.len() {
                if fill[b] < per_bin {
                    loads[b] += copies[k];
                    fill[b] += 1;
                    best = best.min(assign(copies, k + 1, loads, fill, per_bin));
                    loads[b] -= copies[k];
                    fill[b] -= 1;
                }
            }
            best
        }
        let mut best = u64::MAX;
        counts_rec(w, 0, bins * per_bin, &mut Vec::new(), &mut |c| {
            let copies: Vec<u64> = w
                .iter()
                .zip(c)
                .flat_map(|(&x, &k)| std::iter::repeat_n(x * L / k as u64, k))
                .collect();
            best = best.min(assign(
                &copies,
                0,
                &mut vec![0; bins],
                &mut vec![0; bins],
                per_bin,
            ));
        });
        best
    }

    /// Checks a packing's shape and recomputes its value in units of `1 / L`.
    fn recheck(w: &[u64], bins: usize, per_bin: usize, p: &CopyPacking) -> u64 {
        assert_eq!(p.slots.len(), bins * per_bin);
        assert_eq!(p.counts.iter().sum::<usize>(), bins * per_bin);
        for (i, &c) in p.counts.iter().enumerate() {
            assert!(c >= 1);
            assert_eq!(p.slots.iter().filter(|&&x| x == i).count(), c);
        }
        p.slots
            .chunks(per_bin)
            .map(|b| {
                b.iter()
                    .map(|&i| w[i] * L / p.counts[i] as u64)
                    .sum::<u64>()
            })
            .max()
            .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

        #[test]
        fn flat_matches_brute_force(
            w in proptest::collection::vec(0u64..30, 1..=4),
            bins in 1usize..=3,
            per_bin in 1usize..=3,
        ) {
            proptest::prop_assume!(w.len() <= bins * per_bin);
            let o = run(&w, bins, per_bin);
            let best = o.best.clone().unwrap();
            let v = recheck(&w, bins, per_bin, &best);
            proptest::prop_assert_eq!(Fraction::new(v as u128, L as u128), best.value);
            proptest::prop_assert!(o.proven);
            proptest::prop_assert_eq!(v, brute(&w, bins, per_bin));
            proptest::prop_assert_eq!(o.lower_bound, best.value);
        }

        #[test]
        fn grouped_matches_brute_force(
            w in proptest::collection::vec(0u64..30, 4),
            groups in proptest::sample::select(vec![2usize, 4]),
            per_bin in 1usize..=2,
        ) {
            // Two blocks of two bins each.
            let (blocks, bins) = (2, 4);
            let o = solve_grouped(&w, groups, blocks, bins, per_bin, &SearchLimits::default()).unwrap();
            let best = o.best.clone().unwrap();
            let v = recheck(&w, bins, per_bin, &best);
            proptest::prop_assert_eq!(Fraction::new(v as u128, L as u128), best.value);
            let size = w.len() / groups;
            // Copies stay in their group's block, and each block takes groups / blocks groups.
            let mut block_of_group = vec![usize::MAX; groups];
            for (slot, &i) in best.slots.iter().enumerate() {
                let block = slot / (bins / blocks * per_bin);
                let g = i / size;
                proptest::prop_assert!(block_of_group[g] == usize::MAX || block_of_group[g] == block);
                block_of_group[g] = block;
            }
            for b in 0..blocks {
                proptest::prop_assert_eq!(block_of_group.iter().filter(|&&x| x == b).count(), groups / blocks);
            }
            // Brute force: every split of the groups, each block solved by enumeration.
            let mut optimum = u64::MAX;
            for mask in 0u32..(1 << groups) {
                if mask.count_ones() as usize != groups / blocks || mask & 1 == 0 {
                    continue;
                }
                let part = |inside: bool| -> Vec<u64> {
                    (0..w.len()).filter(|&i| ((mask >> (i / size)) & 1 == 1) == inside).map(|i| w[i]).collect()
                };
                let (a, b) = (part(true), part(false));
                let slots = bins / blocks * per_bin;
                if a.len() > slots || b.len() > slots {
                    continue;
                }
                optimum = optimum.min(brute(&a, bins / blocks, per_bin).max(brute(&b, bins / blocks, per_bin)));
            }
            if optimum == u64::MAX {
                return Ok(());
            }
            proptest::prop_assert!(o.proven);
            proptest::prop_assert_eq!(v, optimum);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 120, ..Default::default() })]

        /// Dividing by the gcd of the weights changes nothing but the scale: weights times `k`
        /// have `k` times the optimum (and the same proven status and tight bound).
        #[test]
        fn common_factors_scale_the_optimum(
            w in proptest::collection::vec(0u64..20, 1..=4),
            k in 1u64..=6,
            bins in 1usize..=3,
            per_bin in 1usize..=3,
        ) {
            proptest::prop_assume!(w.len() <= bins * per_bin);
            let scaled: Vec<u64> = w.iter().map(|&x| x * k).collect();
            let o = run(&scaled, bins, per_bin);
            let best = o.best.clone().unwrap();
            proptest::prop_assert!(o.proven);
            let v = recheck(&scaled, bins, per_bin, &best);
            proptest::prop_assert_eq!(v, brute(&w, bins, per_bin) * k);
            proptest::prop_assert_eq!(o.lower_bound, best.value);
        }

        /// A start packing (any valid one, or an invalid one) never changes the optimum found,
        /// and the answer is never worse than the start.
        #[test]
        fn a_start_packing_keeps_the_optimum(
            w in proptest::collection::vec(0u64..30, 1..=4),
            bins in 1usize..=3,
            per_bin in 1usize..=3,
            seed in proptest::collection::vec(0usize..100, 12),
            valid in proptest::bool::ANY,
        ) {
            proptest::prop_assume!(w.len() <= bins * per_bin);
            let n = w.len();
            let slots_len = bins * per_bin;
            // Every item once, the other slots from the seed; invalid: one slot short.
            let mut start: Vec<usize> = (0..n).chain(seed.iter().map(|&x| x % n)).take(slots_len).collect();
            start.rotate_left(seed[0] % slots_len);
            if !valid {
                start.pop();
            }
            let limits = SearchLimits { start: Some(start.clone()), ..Default::default() };
            let o = solve(&w, bins, per_bin, &limits).unwrap();
            let best = o.best.clone().unwrap();
            proptest::prop_assert!(o.proven);
            let v = recheck(&w, bins, per_bin, &best);
            proptest::prop_assert_eq!(v, brute(&w, bins, per_bin));
            if valid {
                let counts: Vec<usize> = (0..n).map(|i| start.iter().filter(|&&x| x == i).count()).collect();
                let start_value = start
                    .chunks(per_bin)
                    .map(|b| b.iter().map(|&i| w[i] * L / counts[i] as u64).sum::<u64>())
                    .max()
                    .unwrap();
                proptest::prop_assert!(v <= start_value);
            }
        }

        /// The grouped search started from a valid grouped packing (its own answer with the
        /// slots of every block reversed) finds the same optimum.
        #[test]
        fn a_grouped_start_keeps_the_optimum(
            w in proptest::collection::vec(0u64..30, 4),
            groups in proptest::sample::select(vec![2usize, 4]),
            per_bin in 1usize..=2,
        ) {
            let (blocks, bins) = (2, 4);
            let plain = solve_grouped(&w, groups, blocks, bins, per_bin, &SearchLimits::default()).unwrap();
            let mut start = plain.best.clone().unwrap().slots;
            let block_slots = bins / blocks * per_bin;
            for chunk in start.chunks_mut(block_slots) {
                chunk.reverse();
            }
            let limits = SearchLimits { start: Some(start), ..Default::default() };
            let o = solve_grouped(&w, groups, blocks, bins, per_bin, &limits).unwrap();
            proptest::prop_assert_eq!(o.proven, plain.proven);
            proptest::prop_assert_eq!(o.best.unwrap().value, plain.best.unwrap().value);
            proptest::prop_assert_eq!(o.lower_bound, plain.lower_bound);
        }
    }

    #[test]
    fn subset_repacking_reaches_an_exact_partition() {
        // Four bins of three: 6+5+1, 4+4+4, 6+3+3, 5+5+2 are all 12 = the average; start far
        // from it (a sorted fill) and let the large-neighbourhood search balance it.
        let w = [6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 2, 1];
        let counts = vec![1; w.len()];
        let items = Items::build(&w, &counts).unwrap();
        let mut content: Vec<Vec<usize>> = Vec::new();
        let mut flat = Vec::new();
        for (j, &a) in items.avail.iter().enumerate() {
            flat.extend(std::iter::repeat_n(j, a as usize));
        }
        for bin in flat.chunks(3) {
            content.push(bin.to_vec());
        }
        let mut load: Vec<u64> = content
            .iter()
            .map(|b| b.iter().map(|&j| items.sizes[j]).sum())
            .collect();
        assert_eq!(load.iter().max(), Some(&17));
        let mut ctx = Ctx {
            deadline: None,
            nodes: 0,
            timed_out: false,
        };
        repack_subsets(&items, 3, 12, &mut load, &mut content, &mut ctx);
        assert_eq!(load, vec![12; 4]);
        let mut all: Vec<usize> = content.concat();
        all.sort();
        assert_eq!(all, flat, "the same copies, re-packed");
    }

    #[test]
    fn pair_walk_keeps_the_copies_and_never_raises_the_peak() {
        // 16 bins of 3 copies, weights 1..=48 in a sorted fill: the walk re-partitions pairs of
        // bins exactly; the copies stay the same and the heaviest bin never gets heavier.
        let w: Vec<u64> = (1..=48).collect();
        let items = Items::build(&w, &vec![1; w.len()]).unwrap();
        let mut flat = Vec::new();
        for (j, &a) in items.avail.iter().enumerate() {
            flat.extend(std::iter::repeat_n(j, a as usize));
        }
        let mut content: Vec<Vec<usize>> = flat.chunks(3).map(|b| b.to_vec()).collect();
        let mut load: Vec<u64> = content
            .iter()
            .map(|b| b.iter().map(|&j| items.sizes[j]).sum())
            .collect();
        let before = *load.iter().max().unwrap();
        let mut ctx = Ctx {
            deadline: None,
            nodes: 0,
            timed_out: false,
        };
        // The average: 48 * 49 / 2 / 16 = 73.5, so the target is 74.
        pair_walk(&items, 3, 74, &mut load, &mut content, &mut ctx);
        let after = *load.iter().max().unwrap();
        assert!(after < before, "{after} vs {before}");
        for (b, bin) in content.iter().enumerate() {
            assert_eq!(bin.len(), 3);
            assert_eq!(load[b], bin.iter().map(|&j| items.sizes[j]).sum::<u64>());
        }
        let mut all: Vec<usize> = content.concat();
        all.sort();
        assert_eq!(all, flat);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(solve(&[1, 2, 3], 1, 2, &SearchLimits::default()).is_err());
        assert!(solve(&[1], 0, 2, &SearchLimits::default()).is_err());
        assert!(solve(&[u64::MAX, 1], 1, 2, &SearchLimits::default()).is_err());
        assert!(solve_grouped(&[1, 2, 3], 2, 1, 1, 4, &SearchLimits::default()).is_err());
    }
}
