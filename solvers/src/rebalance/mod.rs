//! Copy packing with local search: place the copies of weighted items into bins of equal
//! cardinality so that the heaviest bin is as light as possible, and improve the result.
//!
//! Item `i` has weight `w_i` and `c_i >= 1` copies; each copy weighs `w_i / c_i`. There are
//! `m` bins of exactly `k` copies each (`sum(c) = m k`). Bin `b` holds positions
//! `b*k .. (b+1)*k` of the returned assignment.
//!
//! [`CopyPacker::pack`] works in three phases:
//!
//! 1. **Balanced largest differencing** (Karmarkar–Karp with cardinality constraints): the
//!    copies, sorted by weight, are cut into `k` rows of `m` copies; each row is a partial
//!    solution with one copy per bin. The two partial solutions with the largest spread
//!    (heaviest minus lightest bin) are merged by putting the heaviest bin of one together
//!    with the lightest of the other, until one remains. Every bin gets one copy per row, so
//!    the cardinality holds by construction.
//! 2. **Balancing sweeps** (two at most; six in wide packings of 7 copies per bin or more,
//!    see `SearchPolicy`): the bins above the goal, heaviest first, are paired with the
//!    lightest bins (the `i`-th heaviest with the `i`-th lightest) and each
//!    pair gets its best swap or pair swap (swaps only from [`WIDE_BINS`] bins on: there the
//!    pair lists cost more than they gain). The pairs are disjoint, so a sweep lowers up to
//!    `m / 2` bins for the price of about one move search: the differencing leaves many bins
//!    above the goal when bins hold few copies, and the local search below lowers one bin
//!    per move.
//! 3. **Local search on the heaviest bin** with three move types:
//!    - *swap*: exchange one copy of the heaviest bin with one copy of another bin;
//!    - *pair swap*: exchange two copies of the heaviest bin with two copies of another bin
//!      (bins of 2 to 64 copies);
//!    - *count move*: take a copy away from one item and give it to another (the freed
//!      position is reused, so cardinalities hold), which changes the weight of every copy
//!      of both items.
//!
//!    Each step applies the first of: a pair swap that brings the heaviest bin down to the
//!    goal (below) without lifting the other bin above it — the one with the smallest
//!    transfer, with the bin that has the most room (from [`WIDE_BINS`] bins on, backed off
//!    after searches that found none: wide packings often stall far above the goal);
//!    otherwise the best swap, else the best pair swap, else the best count move that lowers
//!    the heaviest bin without lifting any other bin to its load.
//!
//! The search stops as soon as the heaviest bin reaches the **goal**: the lower bound
//! `max(sum(w) / m, T)` (`T` the smallest possible largest copy weight, when the given counts
//! attain it) or the caller's [`PackLimits::target`] if larger, relaxed by
//! [`PackLimits::stop_gap`] ([`PackLimits::coarse_stop_gap`] for bins of fewer than
//! [`COARSE_BINS`] copies or [`WIDE_BINS`] bins or more); otherwise when no move improves,
//! after [`PackLimits::max_moves`] moves, or, with [`WIDE_BINS`] bins or more, when a quarter
//! of the bins' worth of moves lowered the heaviest bin by less than 0.002% of the goal or
//! when [`PackLimits::wide_budget`] candidate moves were evaluated. With two copies per bin
//! and [`WIDE_BINS`] bins or more the search keeps the copies paired heaviest with lightest
//! and moves only counts (see `descend_paired`). Everything a wide packing does differently
//! is decided once per packing, in one policy value (`SearchPolicy`, in `wide.rs`). With
//! *kicks* ([`PackLimits::deep`]) the search then goes
//! on to the bound itself and escapes local optima: a count move that lowers the heaviest bin
//! but lifts another above it is applied anyway, the search descends again, and the kick is
//! kept only if the heaviest bin ends lower. Limits are counts, never time, so the result
//! depends only on the input.
//!
//! # Cost of a move search
//!
//! The state is kept incrementally: bin loads (recomputed only for the bins a move touches,
//! by summing their copies in position order, so they equal an evaluator's sums), every bin's
//! copies sorted by weight, and, lazily, every bin's pairs sorted by weight (rebuilt from the
//! sorted copies when the bin changed: generated in nearly sorted order, then
//! insertion-sorted). Bins are kept in ascending load order (the bins a move changed are taken
//! out and put back by binary search) and the heaviest bin is read from its end. A
//! goal-directed search wants a transfer `d` in `[peak - goal, goal - load[b]]`; it stops at
//! the first bin (the one with the most room) that has one and at the first bin whose room is
//! too small. A best-move search wants `d`
//! next to half the slack `peak - load[b]`, and stops at the first bin whose best possible
//! outcome `(peak + load[b]) / 2` cannot beat the best move found so far. Either way, for each
//! copy (pair) of the heaviest bin only the one or two partners of `b` next to the wanted
//! weight are evaluated, found by a merge-like sweep over both sorted lists: `O(k)` per bin
//! for swaps, `O(k^2)` for pair swaps. A count-move search costs `O(n k + k c)` cheap filters
//! (`c` copies of replicated items) plus a full evaluation of the few that lower the heaviest
//! bin. Nothing is allocated inside the search once the packer is warm.

use crate::error::{check_weights, SolverError};
use crate::kernels::Kernels;
use crate::key_sort::sort_keys;
use crate::loads::{bin_load, peak};
use crate::tolerance::ROUNDING;

/// Limits of the local search (counts and loads only: results never depend on time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackLimits {
    /// Improving moves applied at most (per descent).
    pub max_moves: usize,
    /// Kicks at most. With kicks, the search goes on from where it stops (the goal below)
    /// to the lower bound itself; when no move improves, a count move that lowers the
    /// heaviest bin but lifts another one above it is applied anyway and the search descends
    /// again; the kick is kept only if the heaviest bin ends lower than before.
    pub max_kicks: usize,
    /// Count moves tried per kick: the ones leaving the lowest largest touched load.
    pub kick_width: usize,
    /// The search stops once the heaviest bin is within this relative gap of the packer's
    /// lower bound `max(sum / m, T)`: `0.0` searches until no move improves. For bins of
    /// fewer than [`COARSE_BINS`] copies, or [`WIDE_BINS`] bins or more,
    /// [`PackLimits::coarse_stop_gap`] applies instead.
    pub stop_gap: f64,
    /// The stop gap for bins of fewer than [`COARSE_BINS`] copies and for [`WIDE_BINS`] bins
    /// or more (see [`PackLimits::gap_for`]).
    pub coarse_stop_gap: f64,
    /// A load the caller knows the answer need not go below (`0.0`: none): the search aims at
    /// the larger of it and the packer's own lower bound. Useful when the packing is one part
    /// of a larger problem whose optimum is known to be at least `target`.
    pub target: f64,
    /// Candidate moves (exchanges and count moves) a packing of [`WIDE_BINS`] bins or more
    /// evaluates at most before its local search ends (`usize::MAX`: no budget; see
    /// [`DEFAULT_WIDE_BUDGET`]).
    pub wide_budget: usize,
}

/// Balancing sweeps between the differencing and the local search (see the
/// [module docs](self)).
const BALANCE_SWEEPS: usize = 2;

/// Bins of fewer copies than this are *coarse*: the local search's stop gap is
/// [`PackLimits::coarse_stop_gap`] for them.
pub const COARSE_BINS: usize = 8;

/// From this many bins on a packing is *wide*: the local search's stop gap is
/// [`PackLimits::coarse_stop_gap`] whatever the copies per bin.
///
/// The search lowers one bin per move, so going from one level to a lower one costs a move
/// (a search over up to all `m` bins) per bin between the two: `O(m^2)` for the last
/// hundredths of a percent. Measured on 64 layers of synthetic log-normal loads at 512 bins
/// of 8 copies (E=128 R=4096 P=512): the differencing and the sweeps end about 0.06% above
/// the bound, a stop at 0.035% takes about 600 moves per layer, a stop at 0.007% about 1,300
/// that reach it on a third of the layers only (the others end at a local optimum 0.001–0.03%
/// above it). No quality is promised at these shapes (the promise of 0.01% is made for
/// DeepSeek-V3's R=288 P=32); the coarse gap, the promise for few copies per bin, applies.
pub const WIDE_BINS: usize = 128;

/// The default [`PackLimits::wide_budget`]: candidate moves (exchanges and count moves, the
/// balancing sweeps' included) a wide packing evaluates at most, about a third of a
/// millisecond of search per packing on the build machine.
///
/// A wide packing's search lowers one bin per move, each move searching up to all bins, and
/// most of its gain comes early. Measured on 64 layers of synthetic log-normal loads
/// (`lognormal_loads(64, E, 0.8, 10^6, 7)`, mean / worst gap of the heaviest bin to the lower
/// bound over the layers): at E=384 R=2048 P=512 (4 copies per bin) the differencing and the
/// sweeps end 0.77% / 1.16% above the bound, about 36,000 evaluations reach 0.42% / 0.61%, and
/// the full search 0.18% / 0.33% after 1,580 moves and 737,000 evaluations per layer (20
/// times the work, 0.45 s of the 0.5 s `refine` took over the 64 layers). With this budget
/// `refine` ends at 0.44% / 0.74% there (`greedy`: 1.82% / 2.45%, 4.1 times farther on the
/// mean) and at E=256 R=1536 P=512 (3 copies per bin) at 1.11% / 1.74% instead of 0.56% /
/// 0.84% (`greedy`: 2.52% / 3.06%, 2.3 times farther). Over the 126 global shapes of
/// `scaling --grid-gaps` (128 to 512 bins, more copies than items) the mean gap rose on 74,
/// fell on 11; `greedy` stays at least 1.7 times farther from the bound on the mean wherever
/// the budget changed the result, at least 3 times on all but 8 of them (3 or 4 copies per
/// bin with 64 to 384 items: 1.7 to 2.9 times; 2.4 to 5.9 times without the budget); shapes
/// whose search reaches the goal within the budget (most of those up to 256 bins, and
/// E=1024 R=4096 P=512) keep their quality. It cuts the local search's instructions 10 to 15
/// times at 3 to 5 copies per bin of 512 bins (E=384 R=2048 P=512: 3.91 to 0.31 billion per
/// 64 layers, `greedy`'s never-worse solve included). No quality is promised at these shapes;
/// [`PackLimits::deep`] searches on without the budget. A count, never time: the result
/// depends only on the input.
pub const DEFAULT_WIDE_BUDGET: usize = 32_768;

impl Default for PackLimits {
    /// Local search without kicks, stopping within `7e-5` (0.007%) of the lower bound, or
    /// `3.5e-4` (0.035%) for bins of fewer than [`COARSE_BINS`] copies: the fast setting.
    ///
    /// The gaps are 70% of the quality `refine` promises on real traces (0.01% of the bound
    /// with 8 or more copies per bin, 0.05% with fewer). With few copies per bin the
    /// packings are coarse: from the differencing start (about 1% above the bound at 5
    /// copies per bin, 0.2% at 9) the local search needs a move per bin above the level it
    /// reaches, and each move lowers the heaviest bin by less the nearer it gets; searching
    /// on to 0.007% there costs about twice the moves for no gain the promise asks for.
    fn default() -> Self {
        Self {
            max_moves: 4096,
            max_kicks: 0,
            kick_width: 3,
            stop_gap: 7e-5,
            coarse_stop_gap: 3.5e-4,
            target: 0.0,
            wide_budget: DEFAULT_WIDE_BUDGET,
        }
    }
}

impl PackLimits {
    /// The stop gap for `bins` bins of `per_bin` copies: [`PackLimits::coarse_stop_gap`]
    /// below [`COARSE_BINS`] copies or from [`WIDE_BINS`] bins on, [`PackLimits::stop_gap`]
    /// otherwise.
    ///
    /// ```
    /// use eplb_solvers::rebalance::PackLimits;
    /// let limits = PackLimits::default();
    /// assert_eq!(limits.gap_for(32, 9), 7e-5);
    /// assert_eq!(limits.gap_for(64, 5), 3.5e-4);
    /// assert_eq!(limits.gap_for(512, 8), 3.5e-4);
    /// ```
    pub fn gap_for(&self, bins: usize, per_bin: usize) -> f64 {
        if per_bin < COARSE_BINS || bins >= WIDE_BINS {
            self.coarse_stop_gap
        } else {
            self.stop_gap
        }
    }

    /// Local search with up to 4 kicks of width 3: several times the work of the default,
    /// for lower peaks. From where the default search stops (its [`PackLimits::wide_budget`]
    /// included) it goes on to the bound without a budget.
    pub fn deep() -> Self {
        Self {
            max_kicks: 4,
            ..Self::default()
        }
    }
}

/// What the last [`CopyPacker::pack`] did (diagnostics; the counts are deterministic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackStats {
    /// Swaps applied.
    pub swaps: usize,
    /// Pair swaps applied.
    pub pair_swaps: usize,
    /// Count moves applied (kicks included).
    pub count_moves: usize,
    /// Kicks tried.
    pub kicks: usize,
    /// Move searches run (of any type).
    pub searches: usize,
    /// Candidate moves evaluated.
    pub evaluations: usize,
    /// Whether the search stopped because the heaviest bin reached the goal.
    pub reached_goal: bool,
}

/// A candidate move.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Move {
    /// Exchange the copies at two positions.
    Swap { a: usize, b: usize },
    /// Exchange the copies at `a.0, a.1` with those at `b.0, b.1`.
    PairSwap {
        a: (usize, usize),
        b: (usize, usize),
    },
    /// The copy at `pos` stops being a copy of its item and becomes a copy of `to`.
    Count { pos: usize, to: usize },
}

/// Two positions of one bin (as `u32`: 16-byte entries keep the lists in cache) and the weight
/// of their copies.
#[derive(Debug, Clone, Copy, Default)]
struct PairEntry {
    sum: f64,
    a: u32,
    b: u32,
}

/// One subset of a partial solution of the differencing: its sum and the copies in it, as a
/// linked list over the sorted copies.
#[derive(Debug, Clone, Copy)]
struct Subset {
    sum: f64,
    head: usize,
    tail: usize,
}

/// Reusable copy packer (keeps its buffers between calls: no allocation once warm).
#[derive(Debug, Default, Clone)]
pub struct CopyPacker {
    weights: Vec<f64>,
    counts: Vec<usize>,
    /// `w_i / (c_i + 1)`: the weight of a copy of `i` if it gained one.
    grown: Vec<f64>,
    /// `item[pos]`: the item whose copy sits at position `pos`.
    item: Vec<usize>,
    /// Each item's copy weight `w_i / c_i` as `index` or the construction last computed it
    /// (scratch).
    shares: Vec<f64>,
    /// `at[pos]`: the weight of the copy at `pos`.
    at: Vec<f64>,
    /// Positions of each item's copies.
    positions: Vec<Vec<usize>>,
    load: Vec<f64>,
    bins: usize,
    per_bin: usize,
    /// Per bin, its copies sorted by weight (ascending), as entries with `a == b`.
    singles: Vec<PairEntry>,
    /// The bins by load, ascending, lower bin first on ties (brought up to date before each
    /// exchange search and each look for the heaviest bin).
    by_load: Vec<usize>,
    /// Sort keys of a full sort of `by_load` (scratch).
    load_keys: Vec<u128>,
    /// Per bin, the load it had when last put in its place in `by_load` (the order's keys).
    placed_load: Vec<f64>,
    /// `by_load` as a balancing sweep started (sweep scratch).
    sweep_order: Vec<usize>,
    /// The bins whose load changed since `by_load` was sorted (each once).
    moved: Vec<usize>,
    /// Per bin, whether it is in `moved`.
    is_moved: Vec<bool>,
    /// Every item's copy weight `w_i / c_i`, ascending (swaps keep it, a count move updates
    /// two entries), sorted when first needed after `copy_weights_stale` is set.
    copy_weights: Vec<f64>,
    /// Whether `copy_weights` must be sorted again.
    copy_weights_stale: bool,
    /// Per bin, its pairs of positions sorted by weight (ascending), `k (k-1) / 2` entries.
    pairs: Vec<PairEntry>,
    /// Per bin, whether its copies changed since its `pairs` were sorted.
    pairs_stale: Vec<bool>,
    /// Count-move evaluation scratch: per-bin load change and the bins touched.
    delta: Vec<f64>,
    touched: Vec<usize>,
    /// Copies of each item on the heaviest bin (count-move search scratch).
    on_top: Vec<usize>,
    /// Items with at least two copies (count-move search scratch).
    multi: Vec<usize>,
    /// Per bin, whether it holds a copy of the item a count move gives a copy to (count-move
    /// search scratch).
    marked: Vec<bool>,
    /// The search stops at or below this load.
    stop_at: f64,
    /// How the local search runs at this packing's shape (see [`SearchPolicy`]).
    policy: SearchPolicy,
    stats: PackStats,
    // Construction scratch.
    keys: Vec<u64>,
    /// The items by descending copy weight at the last construction (where the next one's
    /// sort starts).
    item_order: Vec<usize>,
    /// Which kernels sort the construction's keys (the same order either way: the keys are
    /// distinct).
    kernels: Kernels,
    /// Whether `item_order` is from an earlier packing (a full sort instead of an insertion
    /// sort from it).
    fresh_order: bool,
    merged: Vec<Subset>,
    copies: Vec<(f64, usize)>,
    next: Vec<usize>,
    subsets: Vec<Subset>,
    alive: Vec<usize>,
    // Kick scratch.
    candidates: Vec<(f64, Move)>,
    saved_item: Vec<usize>,
    saved_counts: Vec<usize>,
}

impl CopyPacker {
    /// Packs `counts[i]` copies of each item into `bins` bins of equal cardinality and improves
    /// the packing by local search (see the [module docs](self)). Returns `item[pos]`, the item
    /// of the copy at each position; bin `b` holds positions `b*k .. (b+1)*k`. Count moves may
    /// change how many copies each item has; every item keeps at least one.
    ///
    /// ```
    /// use eplb_solvers::rebalance::{CopyPacker, PackLimits};
    /// // Weights 3, 3, 2 with the first item copied twice, in 2 bins of 2: the best packing
    /// // of these copies is {3, 1.5}, {2, 1.5} (max 4.5); a count move gives the extra copy
    /// // to the light item instead: {3, 1}, {3, 1} (max 4.0, the optimum).
    /// let w = [3.0, 3.0, 2.0];
    /// let items = CopyPacker::default().pack(&w, &[2, 1, 1], 2, PackLimits::default()).unwrap();
    /// let mut counts = [0usize; 3];
    /// items.iter().for_each(|&i| counts[i] += 1);
    /// assert_eq!(counts, [1, 1, 2]);
    /// let bin = |b: usize| items[2 * b..2 * b + 2].iter().map(|&i| w[i] / counts[i] as f64).sum::<f64>();
    /// assert_eq!((bin(0), bin(1)), (4.0, 4.0));
    /// ```
    ///
    /// # Errors
    /// [`SolverError::PacksDoNotDivide`] when `bins` is zero or does not divide the number of
    /// copies; [`SolverError::TooFewCopies`] when an item has no copy or the lengths differ;
    /// weight errors for non-finite or negative weights.
    ///
    /// # Complexity
    /// `O(n log n)` for the construction with `n` copies; each local-search step costs
    /// `O(m k)` for swaps, `O(m k^2)` for pair swaps and `O(n k)` for count moves (see the
    /// module docs), at most [`PackLimits::max_moves`] steps per descent.
    pub fn pack(
        &mut self,
        weights: &[f64],
        counts: &[usize],
        bins: usize,
        limits: PackLimits,
    ) -> Result<Vec<usize>, SolverError> {
        check_weights(weights)?;
        let n: usize = counts.iter().sum();
        if weights.is_empty() || counts.len() != weights.len() || counts.contains(&0) {
            return Err(SolverError::TooFewCopies {
                items: weights.len(),
                copies: n,
            });
        }
        if bins == 0 || !n.is_multiple_of(bins) {
            return Err(SolverError::PacksDoNotDivide {
                items: n,
                packs: bins,
            });
        }
        // Positions are stored as `u32` in the sorted lists (4 billion copies would not fit
        // in memory anyway).
        debug_assert!(u32::try_from(n).is_ok());
        self.weights.clear();
        self.weights.extend_from_slice(weights);
        self.counts.clear();
        self.counts.extend_from_slice(counts);
        self.bins = bins;
        self.per_bin = n / bins;
        self.stats = PackStats::default();
        let goal = self.goal().max(limits.target);
        self.policy = SearchPolicy::new(self.bins, self.per_bin, weights.len(), &limits);
        self.stop_at = goal * (1.0 + self.policy.stop_gap);
        self.fresh_order = true;
        self.construct();
        if limits.max_kicks == 0 && self.construction_at_goal() {
            // Nothing to search (the sweeps and the descent would stop at once): the search
            // state is not built.
            self.stats.reached_goal = true;
            return Ok(self.item.clone());
        }
        self.index();
        // Sweeps only where the packing answers to its own bound (no outer `target`): in a
        // node of a larger problem (refine's hierarchical nodes) they steer the descent to
        // worse local optima (measured on DeepSeek-V3, R=320 P=64 N=8: worst layer's gap to
        // the node bound 0.16% -> 0.39%) and save nothing measurable.
        if limits.max_moves > 0 && limits.target <= 0.0 && !self.policy.paired {
            for _ in 0..self.policy.sweeps {
                if self.balance_sweep() == 0 {
                    break;
                }
            }
        }
        self.descend(limits.max_moves);
        if limits.max_kicks > 0 {
            // Deep: from where the fast setting stops, on to the bound itself, with kicks and
            // no work budget (so never worse than the fast setting).
            self.stop_at = goal;
            self.policy.budget = usize::MAX;
            self.descend(limits.max_moves);
            for _ in 0..limits.max_kicks {
                if self.stats.reached_goal || !self.kick(limits) {
                    break;
                }
            }
        }
        Ok(self.item.clone())
    }

    /// Sets which kernels sort the construction's keys: [`Kernels::Auto`] (the default) sorts
    /// short key lists with the vector networks where the processor has them. Either choice
    /// gives the same packings (the keys are distinct, so every correct sort gives one order).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// What the last [`CopyPacker::pack`] did.
    pub fn stats(&self) -> PackStats {
        self.stats
    }

    /// The heaviest bin's load in the result of the last [`CopyPacker::pack`] (`0.0` before
    /// any): each bin's copy weights `w_i / c_i`, with the final counts, summed from `0.0` in
    /// position order, as an evaluator that sums slot by slot gets them.
    pub fn peak(&self) -> f64 {
        peak(&self.load)
    }

    /// Each item's copy weight `w_i / c_i` at the current counts, in item order.
    fn current_shares(&self) -> impl Iterator<Item = f64> + '_ {
        self.weights
            .iter()
            .zip(&self.counts)
            .map(|(&w, &c)| w / c as f64)
    }

    /// Sets `shares` to each item's copy weight at the current counts.
    fn refresh_shares(&mut self) {
        let mut shares = std::mem::take(&mut self.shares);
        shares.clear();
        shares.extend(self.current_shares());
        self.shares = shares;
    }

    /// Whether the construction's heaviest bin is at the stop goal; sets the bin loads as
    /// [`CopyPacker::index`] does (each bin's copy weights summed in position order, the
    /// weights as the construction computed them for the current counts).
    fn construction_at_goal(&mut self) -> bool {
        let k = self.per_bin;
        let shares = &self.shares;
        debug_assert_eq!(shares.len(), self.weights.len());
        self.load.clear();
        self.load.extend(
            self.item
                .chunks_exact(k)
                .map(|items| bin_load(items.iter().map(|&i| shares[i]))),
        );
        peak(&self.load) <= self.stop_at
    }

    /// A lower bound on the heaviest bin of any packing with any counts: the mean bin
    /// `sum(w) / m`, and the largest copy weight of the given counts when no other counts
    /// make every copy lighter (checked, not assumed).
    fn goal(&self) -> f64 {
        let total: f64 = self.weights.iter().sum();
        let mean = total / self.bins as f64;
        let largest = self.current_shares().fold(0.0, f64::max);
        if largest <= 0.0 {
            return mean;
        }
        // The fewest copies that make every copy strictly lighter than `largest`: if that is
        // more than we have, `largest` is the smallest possible largest copy weight.
        let needed: f64 = self
            .weights
            .iter()
            .map(|&w| ((w / largest).floor() + 1.0).max(1.0))
            .sum();
        let copies: usize = self.counts.iter().sum();
        if needed > copies as f64 {
            mean.max(largest)
        } else {
            mean
        }
    }

    /// Applies the best improving move until the goal is reached, none is left or `max_moves`
    /// were applied.
    fn descend(&mut self, max_moves: usize) {
        if self.policy.paired {
            return self.descend_paired(max_moves);
        }
        // Wide packings stop when the peak stalls or the budget is spent.
        let window = self.policy.stall_window;
        let mut checkpoint = f64::INFINITY;
        let (mut skip_goal, mut backoff) = (0usize, 1usize);
        for step in 0..max_moves {
            let Some(top) = self.next_top() else {
                return;
            };
            if step % window == 0 {
                if self
                    .policy
                    .stalled(checkpoint, self.load[top], self.stop_at)
                {
                    return;
                }
                checkpoint = self.load[top];
            }
            // A pair swap that brings the heaviest bin down to the goal (the most effective
            // move near the goal; backed off in wide packings); otherwise the best swap, pair
            // swap or count move that lowers it, cheapest first.
            let to_goal = if !self.policy.goal_backoff {
                self.exchange_move(top, true, true)
            } else if skip_goal > 0 {
                skip_goal -= 1;
                None
            } else {
                let found = self.exchange_move(top, true, true);
                if found.is_some() {
                    backoff = 1;
                } else {
                    skip_goal = backoff;
                    backoff = (backoff * 2).min(window);
                }
                found
            };
            let m = to_goal
                .or_else(|| self.exchange_move(top, false, false))
                .or_else(|| self.exchange_move(top, true, false))
                .or_else(|| self.best_count_move(top));
            match m {
                Some(m) => self.apply(m),
                None => return,
            }
        }
        let top = self.heaviest();
        self.stats.reached_goal = self.load[top] <= self.stop_at;
    }

    /// The heaviest bin for the next move of a descent, or `None` when the descent ends: the
    /// heaviest bin is at the stop goal (recorded in the stats) or the work budget is spent.
    fn next_top(&mut self) -> Option<usize> {
        let top = self.heaviest();
        if self.load[top] <= self.stop_at {
            self.stats.reached_goal = true;
            return None;
        }
        (self.stats.evaluations < self.policy.budget).then_some(top)
    }

    /// [`CopyPacker::descend`] for bins of two copies: the copies paired heaviest with
    /// lightest (the differencing's packing with two rows), which for the current copy
    /// weights is a packing with the lightest heaviest bin (exchange argument: with copies
    /// `a >= b` and `c >= d`, the pairs `(a, d), (c, b)` are never heavier at the top than
    /// `(a, c), (b, d)`); so no swap can lower the peak, and the only moves are count moves,
    /// each followed by pairing the copies again. The copies must be paired when it starts
    /// (as [`CopyPacker::pack`]'s construction leaves them, and every descent here too; a kick
    /// pairs them again after its count move).
    fn descend_paired(&mut self, max_moves: usize) {
        for _ in 0..max_moves {
            let Some(top) = self.next_top() else {
                return;
            };
            match self.best_count_move(top) {
                Some(m) => {
                    self.apply(m);
                    self.pair_up();
                }
                None => return,
            }
        }
        let top = self.heaviest();
        self.stats.reached_goal = self.load[top] <= self.stop_at;
    }

    /// Packs the copies of the current counts afresh (heaviest with lightest when bins hold
    /// two copies) and rebuilds the search state.
    fn pair_up(&mut self) {
        self.construct();
        self.index();
    }

    /// Tries the `kick_width` most promising non-improving count moves, each followed by a
    /// descent; keeps the first that ends with a lower heaviest bin. Returns whether one did.
    fn kick(&mut self, limits: PackLimits) -> bool {
        let top = self.heaviest();
        let peak = self.load[top];
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        self.count_moves(top, f64::INFINITY, |worst, m| {
            candidates.push((worst, m));
            f64::INFINITY
        });
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.saved_item.clone_from(&self.item);
        self.saved_counts.clone_from(&self.counts);
        let mut kept = false;
        for &(_, m) in candidates.iter().take(limits.kick_width) {
            self.stats.kicks += 1;
            self.apply(m);
            if self.policy.paired {
                self.pair_up();
            }
            self.descend(limits.max_moves);
            let top = self.heaviest();
            if self.load[top] < peak - peak.abs() * ROUNDING {
                kept = true;
                break;
            }
            self.item.clone_from(&self.saved_item);
            self.counts.clone_from(&self.saved_counts);
            self.index();
        }
        self.candidates = candidates;
        kept
    }
}

mod differencing;
mod indices;
mod moves;
#[cfg(test)]
mod tests;
mod wide;

use indices::*;
use wide::SearchPolicy;
