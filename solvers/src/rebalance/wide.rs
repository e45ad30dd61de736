//! The search policy of one packing, decided once from its shape: what the local search does
//! differently when the packing is *wide* ([`WIDE_BINS`] bins or more).
//!
//! A wide packing's local search lowers one bin per move and each move's search visits up to
//! all `m` bins, so going from one level to a lower one costs `O(m^2)`; there the search stops
//! at the coarse gap, when it stalls, or when its work budget is spent, keeps two copies per bin
//! paired, backs off its goal-directed pair-swap search, and cuts its best-swap searches short
//! by the least transfer of a swap. [`SearchPolicy`] holds these decisions, so that the search
//! consults one value instead of scattered thresholds.

use super::*;

/// Bins at least for which the local search keeps two copies per bin paired heaviest with
/// lightest ([`WIDE_BINS`]; any number in the unit tests, so that they check it on small
/// instances).
const PAIRED_BINS: usize = if cfg!(test) { 1 } else { WIDE_BINS };

/// The local search of a wide packing stops when a quarter of the bins' worth of moves lowered
/// the heaviest bin by less than this much of the goal (relative): it ends at a local optimum
/// far above the goal there (at 5 copies per bin of 512 bins, about 0.09% above the bound after
/// 1,600 moves per layer, the last 1,000 of them gaining 0.04%), each move searching up to all
/// bins. Counts, not time: the result stays deterministic.
const STALL_GAP: f64 = 2e-5;

/// Bins at least for which the local search stops when it stalls ([`WIDE_BINS`]; any number
/// in the unit tests, so that they check it on small instances).
const STALL_BINS: usize = if cfg!(test) { 1 } else { WIDE_BINS };

/// Bins at least for which a best-swap search works out the least transfer of a swap (see
/// [`CopyPacker::least_swap_transfer`]) to skip the bins without room for it; any number in
/// the unit tests, so that they check the early stop on small instances.
const LEAST_BINS: usize = if cfg!(test) { 1 } else { WIDE_BINS };

/// Copies per item at least (on average) for which a best-swap search works out the least
/// transfer of a swap (with fewer, the copy weights are too many distinct values for it to
/// skip bins); any number in the unit tests.
const LEAST_COPIES: usize = if cfg!(test) { 1 } else { 8 };

/// Copies per bin at least from which a wide packing gets up to [`WIDE_SWEEPS`] balancing
/// sweeps instead of [`BALANCE_SWEEPS`].
const WIDE_SWEEP_COPIES: usize = 7;

/// Balancing sweeps at most of a wide packing of at least [`WIDE_SWEEP_COPIES`] copies per bin
/// (they stop early once one applies no move or the heaviest bin is at the goal).
///
/// A sweep lowers up to `m / 2` bins for the price of one search per pair of bins, a descent
/// step one bin for a search over the bins and the upkeep of two pair lists. Measured on 64
/// layers of synthetic log-normal loads at 512 bins (instructions of the packings, mean over
/// the layers): at 9 copies per bin (E=512 R=4608) two sweeps left about 280 descent steps
/// and 12 of the 64 layers ended on the work budget; six sweeps leave about 100 (1 layer on
/// the budget) and cut the packings' instructions by 30% (333 to 232 million); at 8 copies
/// (E=1024 R=4096) by 20%, at 7 by 0 to 17% (E=512 R=3584: 17%; E=256 R=3584: 9% more, where
/// more layers reach the goal instead of ending on the budget: 24 of 64 instead of 5). With
/// fewer copies per bin the budget binds on most layers either way and the extra sweeps
/// spend it (E=512 R=2560: 16% more instructions for 5 layers at the goal instead of 1).
const WIDE_SWEEPS: usize = 6;

/// How the local search of one packing runs: computed once per [`CopyPacker::pack`] from the
/// packing's shape and the caller's [`PackLimits`], and consulted by the search.
///
/// From [`WIDE_BINS`] bins on (a *wide* packing):
///
/// - the stop gap is [`PackLimits::coarse_stop_gap`] whatever the copies per bin;
/// - with two copies per bin (and no outer target) the copies stay paired heaviest with
///   lightest and only replica counts move (`CopyPacker::descend_paired`);
/// - the search stops when it *stalls*: a window of `m / 4` moves lowered the heaviest bin by
///   less than [`STALL_GAP`] of the goal;
/// - the goal-directed pair-swap search is backed off after searches that found nothing (at
///   E=256 R=2560 P=512, 5 copies per bin, it found a move in 2,911 of 51,457 searches while
///   reading about 33 bins' pair lists each): the next 1, 2, 4, ... steps (at most the stall
///   window) skip it, and a search that finds a move resets the back-off;
/// - the search ends once it has evaluated [`PackLimits::wide_budget`] candidate moves
///   (exchanges and count moves, the balancing sweeps' included): bounded work per packing,
///   for a stated give in quality (see [`DEFAULT_WIDE_BUDGET`]: at 3 to 5 copies per bin of
///   512 bins the mean gap to the bound about doubles, and `greedy` stays at least 1.7 times
///   farther from it on the mean);
/// - with 8 copies per item or more (many equal copy weights) a best-swap search skips the
///   bins without room for the least transfer of a swap (exact: the same moves);
/// - with [`WIDE_SWEEP_COPIES`] copies per bin or more, up to [`WIDE_SWEEPS`] balancing sweeps
///   instead of [`BALANCE_SWEEPS`] (each lowers many bins at once: cheaper than descent steps);
/// - the balancing sweeps look for swaps only, and with 3 copies per bin there are no pair
///   swaps (each is a swap in disguise, see [`has_pair_swaps`]).
///
/// Every rule counts moves or evaluations, never time: the result depends only on the input.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct SearchPolicy {
    /// The search stops once the heaviest bin is within this relative gap of the goal.
    pub(super) stop_gap: f64,
    /// Two copies per bin kept paired heaviest with lightest; only counts move.
    pub(super) paired: bool,
    /// Moves per stall check (`usize::MAX`: no stall rule).
    pub(super) stall_window: usize,
    /// Whether the goal-directed pair-swap search backs off after searches that found nothing.
    pub(super) goal_backoff: bool,
    /// Whether best-swap searches stop at the first bin without room for the least transfer.
    pub(super) least_transfer: bool,
    /// Candidate moves evaluated at most before the search ends (`usize::MAX`: no budget).
    pub(super) budget: usize,
    /// Whether the search has pair swaps at all (see [`has_pair_swaps`]).
    pub(super) pair_swaps: bool,
    /// Whether the balancing sweeps look for pair swaps too (not only swaps).
    pub(super) sweep_pairs: bool,
    /// Balancing sweeps at most (see [`WIDE_SWEEPS`]).
    pub(super) sweeps: usize,
}

impl SearchPolicy {
    /// The policy for `bins` bins of `per_bin` copies of `items` items under `limits`.
    pub(super) fn new(bins: usize, per_bin: usize, items: usize, limits: &PackLimits) -> Self {
        let wide = bins >= WIDE_BINS;
        let stall = bins >= STALL_BINS;
        Self {
            stop_gap: limits.gap_for(bins, per_bin),
            paired: per_bin == 2 && bins >= PAIRED_BINS && limits.target <= 0.0,
            stall_window: if stall { (bins / 4).max(1) } else { usize::MAX },
            goal_backoff: wide,
            least_transfer: bins >= LEAST_BINS && bins * per_bin >= LEAST_COPIES * items,
            budget: if wide { limits.wide_budget } else { usize::MAX },
            pair_swaps: has_pair_swaps(per_bin) && !(wide && per_bin == 3),
            sweep_pairs: !wide,
            sweeps: if wide && per_bin >= WIDE_SWEEP_COPIES {
                WIDE_SWEEPS
            } else {
                BALANCE_SWEEPS
            },
        }
    }

    /// Whether a stall window that began at load `checkpoint` and ends at `load` (relative to
    /// the goal `stop_at`) lowered the heaviest bin too little to go on.
    pub(super) fn stalled(&self, checkpoint: f64, load: f64, stop_at: f64) -> bool {
        checkpoint - load < STALL_GAP * stop_at
    }
}

/// Whether bins of `k` copies have pair swaps: 3 to 64 copies (the pair lists cost `O(k^2)`
/// per bin). With 2 copies a pair is the whole bin, and exchanging two whole bins never
/// lowers the heavier without lifting the other to its load: the exchange's transfer is the
/// two loads' difference itself (`x + y` sums the two copies as the bin's load does), never
/// below it, so the searches would visit every bin for nothing.
///
/// With 3 copies a pair swap leaves the two bins with the loads the swap of their third
/// copies gives (exchanged between the bins): `{c, d, x}, {a, b, y}` against `{a, b, y},
/// {c, d, x}`. So after a best-swap search that found nothing, a best-pair-swap search finds
/// nothing either; wide packings, whose searches visit up to all bins, leave them out
/// (narrower ones keep them: their goal-directed pair-swap search picks other moves first,
/// and their placements stay as they were).
fn has_pair_swaps(k: usize) -> bool {
    (3..=64).contains(&k)
}
