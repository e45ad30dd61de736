//! Copy swaps under several weight *scenarios*, and the separation of copies that share a bin.
//!
//! A packing (every slot holds one item, bins of `per_bin` consecutive slots, copy counts fixed
//! by the packing) is judged under `k` scenarios: weight vectors of the same items (the time
//! steps of a load trace). In scenario `t` a copy of item `i` weighs `w[t][i] / c[i]` and a
//! bin's load is the sum of its copies ([`bin_load`]). Two goals:
//!
//! - [`ScenarioGoal::SumOfPeaks`]: the sum over scenarios of each scenario's peak (with one
//!   scenario, simply the peak);
//! - [`ScenarioGoal::WorstPeak`]: the largest peak of any scenario.
//!
//! [`SwapSearch`] lowers a goal by exchanging two copies of different items between two bins of
//! one *region* (a run of consecutive bins: swaps never leave it, so items that must stay in a
//! region stay), accepting only moves that lower the goal as recomputed from scratch: the
//! result is never worse than the start. Optionally it keeps copies *distinct* (no bin holds
//! two copies of one item). [`separate_copies`] makes a packing distinct in the first place.
//!
//! The search is capped by a count of passes, never by time, so it is deterministic.
//!
//! ```
//! use eplb_solvers::scenarios::{goal_value, ScenarioGoal, SwapSearch};
//! // Two scenarios (time steps) of four items; two bins of two slots. Items 0 and 1 are busy
//! // in the first step, 2 and 3 in the second: each step has one bin doing all the work.
//! let weights = vec![vec![4.0, 4.0, 0.0, 0.0], vec![0.0, 0.0, 4.0, 4.0]];
//! let mut slots = vec![0, 1, 2, 3];
//! let before = goal_value(&weights, &slots, 2, ScenarioGoal::SumOfPeaks)?;
//! let search = SwapSearch::new(&weights, 2, ScenarioGoal::SumOfPeaks);
//! search.improve(&mut slots)?;
//! let after = goal_value(&weights, &slots, 2, ScenarioGoal::SumOfPeaks)?;
//! assert_eq!((before, after), (16.0, 8.0));
//! assert_eq!(slots, vec![2, 1, 0, 3]);
//! # Ok::<(), eplb_solvers::SolverError>(())
//! ```

use crate::error::{check_weights, SolverError};
use crate::loads::bin_load;
use crate::tolerance::STRICT;

/// What [`SwapSearch`] minimises over the scenarios' peaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScenarioGoal {
    /// The sum over scenarios of the scenario's largest bin load.
    SumOfPeaks,
    /// The largest bin load of any scenario.
    WorstPeak,
}

/// The peak (largest bin load) of every scenario for `slots` (item per slot), bins of
/// `per_bin` slots, each copy weighing its item's scenario weight over its copy count.
///
/// # Errors
/// [`SolverError::InvalidModel`] when the shapes do not fit (see [`SwapSearch::improve`]).
pub fn scenario_peaks(
    weights: &[Vec<f64>],
    slots: &[usize],
    per_bin: usize,
) -> Result<Vec<f64>, SolverError> {
    let counts = check_packing(weights, slots, per_bin)?;
    Ok(weights
        .iter()
        .map(|w| {
            slots
                .chunks_exact(per_bin)
                .map(|bin| bin_load(bin.iter().map(|&i| w[i] / counts[i] as f64)))
                .fold(0.0, f64::max)
        })
        .collect())
}

/// The value of `goal` for a packing; see [`scenario_peaks`].
///
/// # Errors
/// As [`scenario_peaks`].
pub fn goal_value(
    weights: &[Vec<f64>],
    slots: &[usize],
    per_bin: usize,
    goal: ScenarioGoal,
) -> Result<f64, SolverError> {
    Ok(fold_goal(goal, &scenario_peaks(weights, slots, per_bin)?))
}

fn fold_goal(goal: ScenarioGoal, peaks: &[f64]) -> f64 {
    match goal {
        ScenarioGoal::SumOfPeaks => peaks.iter().sum(),
        ScenarioGoal::WorstPeak => peaks.iter().copied().fold(0.0, f64::max),
    }
}

/// Checks the shapes and returns every item's copy count.
fn check_packing(
    weights: &[Vec<f64>],
    slots: &[usize],
    per_bin: usize,
) -> Result<Vec<usize>, SolverError> {
    let items = weights.first().map_or(0, Vec::len);
    if weights.is_empty() || items == 0 {
        return Err(SolverError::InvalidModel(
            "no scenario or no item: give at least one scenario of at least one weight".into(),
        ));
    }
    if let Some(t) = weights.iter().position(|w| w.len() != items) {
        return Err(SolverError::InvalidModel(format!(
            "scenario {t} has {} weights, scenario 0 has {items}: all scenarios weigh the same items",
            weights[t].len()
        )));
    }
    for w in weights {
        check_weights(w)?;
    }
    if per_bin == 0 || slots.is_empty() || !slots.len().is_multiple_of(per_bin) {
        return Err(SolverError::InvalidModel(format!(
            "{} slots in bins of {per_bin}: the bin size must be >= 1 and divide the slot count",
            slots.len()
        )));
    }
    let mut counts = vec![0usize; items];
    for (slot, &i) in slots.iter().enumerate() {
        match counts.get_mut(i) {
            Some(c) => *c += 1,
            None => {
                return Err(SolverError::InvalidModel(format!(
                    "slot {slot} holds item {i}: valid items are 0..{items}"
                )))
            }
        }
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        return Err(SolverError::InvalidModel(format!(
            "item {i} has no copy: every item needs at least one"
        )));
    }
    Ok(counts)
}

/// Checks that regions of `region_bins` consecutive bins tile `bins` bins.
pub(crate) fn check_regions(bins: usize, region_bins: usize) -> Result<(), SolverError> {
    if region_bins == 0 || !bins.is_multiple_of(region_bins) {
        return Err(SolverError::InvalidModel(format!(
            "regions of {region_bins} bins cannot tile {bins} bins"
        )));
    }
    Ok(())
}

/// Local search over copy swaps that lowers a [`ScenarioGoal`]; see the [module](self) docs.
#[derive(Debug, Clone)]
pub struct SwapSearch<'a> {
    weights: &'a [Vec<f64>],
    per_bin: usize,
    goal: ScenarioGoal,
    region_bins: Option<usize>,
    distinct: bool,
    max_passes: usize,
    count_moves: bool,
}

/// How many items [`SwapSearch::with_count_moves`] considers giving a copy to: those with the
/// largest copy weight in any scenario.
const COUNT_MOVE_ITEMS: usize = 16;

/// What a [`SwapSearch`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SwapOutcome {
    /// The goal's value before the search.
    pub before: f64,
    /// The goal's value after it (never above `before`).
    pub after: f64,
    /// Swaps made.
    pub swaps: usize,
    /// Copies given from one item to another ([`SwapSearch::with_count_moves`]).
    pub count_moves: usize,
}

impl<'a> SwapSearch<'a> {
    /// A search over `weights` (`[scenario][item]`) with bins of `per_bin` slots, one region,
    /// copies allowed to share a bin, at most 64 passes over all swaps.
    pub fn new(weights: &'a [Vec<f64>], per_bin: usize, goal: ScenarioGoal) -> Self {
        Self {
            weights,
            per_bin,
            goal,
            region_bins: None,
            distinct: false,
            max_passes: 64,
            count_moves: false,
        }
    }

    /// Swaps stay inside runs of `bins` consecutive bins.
    #[must_use]
    pub fn with_regions_of(self, bins: usize) -> Self {
        Self {
            region_bins: Some(bins),
            ..self
        }
    }

    /// Never puts a second copy of an item on a bin (the start must be distinct already:
    /// [`separate_copies`]).
    #[must_use]
    pub fn distinct(self, distinct: bool) -> Self {
        Self { distinct, ..self }
    }

    /// Also moves a copy from an item with several copies on a bin that is a scenario's peak
    /// to another item of the region (one of the 16 with the largest copy weight in any
    /// scenario): copy counts change (every item keeps at least one copy, and its copies stay
    /// in their regions).
    #[must_use]
    pub fn with_count_moves(self, count_moves: bool) -> Self {
        Self {
            count_moves,
            ..self
        }
    }

    /// At most `passes` passes over all swaps (each pass continues while moves are found).
    #[must_use]
    pub fn with_max_passes(self, passes: usize) -> Self {
        Self {
            max_passes: passes,
            ..self
        }
    }

    /// Improves `slots` in place.
    ///
    /// # Errors
    /// [`SolverError::InvalidModel`] when there is no scenario, scenarios differ in length,
    /// the bin size does not divide the slots, the region size does not divide the bins, a
    /// slot holds an unknown item, an item has no copy, or `distinct` is asked of a start that
    /// is not; the weight errors for NaN, infinite or negative weights.
    pub fn improve(&self, slots: &mut [usize]) -> Result<SwapOutcome, SolverError> {
        let counts = check_packing(self.weights, slots, self.per_bin)?;
        let bins = slots.len() / self.per_bin;
        let region = self.region_bins.unwrap_or(bins);
        check_regions(bins, region)?;
        let items = counts.len();
        let mut on_bin = vec![0u32; bins * items];
        for (slot, &i) in slots.iter().enumerate() {
            on_bin[slot / self.per_bin * items + i] += 1;
        }
        if self.distinct && on_bin.iter().any(|&c| c > 1) {
            return Err(SolverError::InvalidModel(
                "distinct copies asked, but the start has two copies of an item on one bin (separate them first)".into(),
            ));
        }
        let mut counts = counts;
        let mut shares: Vec<Vec<f64>> = self
            .weights
            .iter()
            .map(|w| w.iter().zip(&counts).map(|(x, &c)| x / c as f64).collect())
            .collect();
        let mut state = State::new(&shares, slots, self.per_bin);
        let before = fold_goal(self.goal, &state.peaks());
        let mut current = before;
        let (mut swaps, mut count_moves) = (0, 0);
        for _ in 0..self.max_passes {
            let mut improved = false;
            if self.count_moves {
                let moved = self.count_move_pass(
                    slots,
                    (&mut counts, &mut shares, &mut on_bin),
                    region,
                    &mut state,
                    &mut current,
                );
                count_moves += moved;
                improved |= moved > 0;
            }
            let mut critical = state.critical(self.goal, current, bins);
            for a in 0..slots.len() {
                let g = a / self.per_bin;
                let region_end = (g / region + 1) * region * self.per_bin;
                for b in (g + 1) * self.per_bin..region_end {
                    let h = b / self.per_bin;
                    let (i, j) = (slots[a], slots[b]);
                    if !(critical[g] || critical[h])
                        || i == j
                        || (self.distinct
                            && (on_bin[h * items + i] > 0 || on_bin[g * items + j] > 0))
                    {
                        continue;
                    }
                    let estimate = state.estimate(&shares, self.goal, (g, i), (h, j));
                    if estimate >= current - STRICT * current.abs() {
                        continue;
                    }
                    slots.swap(a, b);
                    let candidate = state.recompute(&shares, slots, self.per_bin, g, h);
                    let value = fold_goal(self.goal, &candidate.peaks());
                    if value < current {
                        state = candidate;
                        current = value;
                        on_bin[g * items + i] -= 1;
                        on_bin[h * items + i] += 1;
                        on_bin[h * items + j] -= 1;
                        on_bin[g * items + j] += 1;
                        swaps += 1;
                        improved = true;
                        critical = state.critical(self.goal, current, bins);
                    } else {
                        slots.swap(a, b);
                    }
                }
            }
            if !improved {
                break;
            }
        }
        Ok(SwapOutcome {
            before,
            after: current,
            swaps,
            count_moves,
        })
    }

    /// One pass of count moves (see [`with_count_moves`](Self::with_count_moves)), each
    /// judged exactly; returns the moves made.
    fn count_move_pass(
        &self,
        slots: &mut [usize],
        (counts, shares, on_bin): (&mut [usize], &mut [Vec<f64>], &mut [u32]),
        region: usize,
        state: &mut State,
        current: &mut f64,
    ) -> usize {
        let items = counts.len();
        let region_slots = region * self.per_bin;
        // Item `i`'s copy weight in every scenario with `c` copies.
        let share_of = |i: usize, c: usize| -> Vec<f64> {
            self.weights.iter().map(|w| w[i] / c as f64).collect()
        };
        let mut moves = 0;
        for a in 0..slots.len() {
            let g = a / self.per_bin;
            let i = slots[a];
            if counts[i] < 2 || !state.top.iter().any(|t| t[0].1 == g) {
                continue;
            }
            let r = a / region_slots;
            let mut in_region = vec![false; items];
            slots[r * region_slots..(r + 1) * region_slots]
                .iter()
                .for_each(|&x| in_region[x] = true);
            let heaviest = |f: usize| shares.iter().map(|sh| sh[f]).fold(0.0, f64::max);
            let mut targets: Vec<usize> = (0..items)
                .filter(|&f| {
                    f != i && in_region[f] && !(self.distinct && on_bin[g * items + f] > 0)
                })
                .collect();
            targets.sort_by(|&x, &y| heaviest(y).total_cmp(&heaviest(x)).then(x.cmp(&y)));
            targets.truncate(COUNT_MOVE_ITEMS);
            for f in targets {
                let (old_i, old_f) = (share_of(i, counts[i]), share_of(f, counts[f]));
                let (new_i, new_f) = (share_of(i, counts[i] - 1), share_of(f, counts[f] + 1));
                for (t, sh) in shares.iter_mut().enumerate() {
                    (sh[i], sh[f]) = (new_i[t], new_f[t]);
                }
                slots[a] = f;
                let candidate = State::new(shares, slots, self.per_bin);
                let value = fold_goal(self.goal, &candidate.peaks());
                if value < *current {
                    *state = candidate;
                    *current = value;
                    counts[i] -= 1;
                    counts[f] += 1;
                    on_bin[g * items + i] -= 1;
                    on_bin[g * items + f] += 1;
                    moves += 1;
                    break;
                }
                slots[a] = i;
                for (t, sh) in shares.iter_mut().enumerate() {
                    (sh[i], sh[f]) = (old_i[t], old_f[t]);
                }
            }
        }
        moves
    }
}

/// Bin loads per scenario, and each scenario's three heaviest bins (enough to know the peak
/// of the bins other than the two a swap touches).
#[derive(Debug, Clone)]
struct State {
    loads: Vec<Vec<f64>>,
    top: Vec<[(f64, usize); 3]>,
}

impl State {
    fn new(shares: &[Vec<f64>], slots: &[usize], per_bin: usize) -> Self {
        let loads = shares
            .iter()
            .map(|sh| {
                slots
                    .chunks_exact(per_bin)
                    .map(|bin| bin_load(bin.iter().map(|&i| sh[i])))
                    .collect()
            })
            .collect();
        Self::with_loads(loads)
    }

    fn with_loads(loads: Vec<Vec<f64>>) -> Self {
        let top = loads.iter().map(|l: &Vec<f64>| top3(l)).collect();
        Self { loads, top }
    }

    /// The bins a move must touch to lower `goal` (now at `current`): the peak bin of every
    /// scenario (sum of peaks), or of every scenario at the worst peak (worst peak).
    fn critical(&self, goal: ScenarioGoal, current: f64, bins: usize) -> Vec<bool> {
        let mut critical = vec![false; bins];
        for top in &self.top {
            let (peak, bin) = top[0];
            if bin < bins && (goal == ScenarioGoal::SumOfPeaks || peak >= current) {
                critical[bin] = true;
            }
        }
        critical
    }

    fn peaks(&self) -> Vec<f64> {
        self.top.iter().map(|t| t[0].0).collect()
    }

    /// The goal after swapping item `i` on bin `g` with item `j` on bin `h` (approximate:
    /// updated loads, not re-summed; the move is judged exactly before it is made).
    fn estimate(
        &self,
        shares: &[Vec<f64>],
        goal: ScenarioGoal,
        (g, i): (usize, usize),
        (h, j): (usize, usize),
    ) -> f64 {
        let mut total: f64 = 0.0;
        for ((loads, top), sh) in self.loads.iter().zip(&self.top).zip(shares) {
            let rest = top
                .iter()
                .find(|&&(_, b)| b != g && b != h)
                .map_or(0.0, |&(l, _)| l);
            let delta = sh[j] - sh[i];
            let peak = rest.max(loads[g] + delta).max(loads[h] - delta);
            total = match goal {
                ScenarioGoal::SumOfPeaks => total + peak,
                ScenarioGoal::WorstPeak => total.max(peak),
            };
        }
        total
    }

    fn recompute(
        &self,
        shares: &[Vec<f64>],
        slots: &[usize],
        per_bin: usize,
        g: usize,
        h: usize,
    ) -> Self {
        let mut loads = self.loads.clone();
        for (sh, l) in shares.iter().zip(&mut loads) {
            for bin in [g, h] {
                l[bin] = bin_load(
                    slots[bin * per_bin..(bin + 1) * per_bin]
                        .iter()
                        .map(|&i| sh[i]),
                );
            }
        }
        Self::with_loads(loads)
    }
}

fn top3(loads: &[f64]) -> [(f64, usize); 3] {
    let mut top = [(f64::NEG_INFINITY, usize::MAX); 3];
    for (b, &l) in loads.iter().enumerate() {
        if l > top[2].0 {
            top[2] = (l, b);
            if top[2].0 > top[1].0 {
                top.swap(1, 2);
                if top[1].0 > top[0].0 {
                    top.swap(0, 1);
                }
            }
        }
    }
    top
}

/// What [`separate_copies`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Separation {
    /// Copies swapped with a copy of another bin of the region.
    pub swaps: usize,
    /// Copies given to another item because no swap could separate them (copy counts change).
    pub recounts: usize,
}

/// Makes a packing *distinct*: no bin holds two copies of one item, every item keeps at least
/// one copy and every copy stays in its region (runs of `region_bins` consecutive bins).
///
/// Each surplus copy is swapped with a copy of another bin of its region when that separates
/// both (the swap that leaves the two bins' larger load, under `weights`, smallest; the lowest
/// slot on ties); when no swap can, the slot is given to the item of the region that is not on
/// the bin and has the largest copy weight `w / c` (the lowest item on ties), which changes two
/// copy counts. A packing that is distinct already is left as it is.
///
/// ```
/// use eplb_solvers::scenarios::separate_copies;
/// let mut slots = vec![0, 0, 1, 2];
/// let done = separate_copies(&[6.0, 1.0, 1.0], &mut slots, 2, 2)?;
/// assert_eq!(slots, vec![0, 1, 0, 2]);
/// assert_eq!(done.swaps, 1);
/// # Ok::<(), eplb_solvers::SolverError>(())
/// ```
///
/// # Errors
/// [`SolverError::InvalidModel`] for shapes that do not fit (as [`SwapSearch::improve`]), and
/// when a region holds fewer distinct items than a bin has slots, so that no distinct packing
/// exists.
pub fn separate_copies(
    weights: &[f64],
    slots: &mut [usize],
    per_bin: usize,
    region_bins: usize,
) -> Result<Separation, SolverError> {
    let scenario = [weights.to_vec()];
    let mut counts = check_packing(&scenario, slots, per_bin)?;
    let bins = slots.len() / per_bin;
    check_regions(bins, region_bins)?;
    let items = weights.len();
    let region_slots = region_bins * per_bin;
    for (r, region) in slots.chunks_exact(region_slots).enumerate() {
        let mut seen = vec![false; items];
        region.iter().for_each(|&i| seen[i] = true);
        let distinct = seen.iter().filter(|&&s| s).count();
        if distinct < per_bin {
            return Err(SolverError::InvalidModel(format!(
                "region {r} holds {distinct} distinct item(s) but a bin has {per_bin} slots: no bin of it can hold only distinct items"
            )));
        }
    }
    let mut on_bin = vec![0u32; bins * items];
    for (slot, &i) in slots.iter().enumerate() {
        on_bin[slot / per_bin * items + i] += 1;
    }
    let share = |counts: &[usize], i: usize| weights[i] / counts[i] as f64;
    let mut done = Separation::default();
    for a in 0..slots.len() {
        let g = a / per_bin;
        let i = slots[a];
        if on_bin[g * items + i] < 2 || !slots[g * per_bin..a].contains(&i) {
            continue; // alone on its bin, or the bin's first copy of the item (it stays)
        }
        let bin_load_of = |slots: &[usize], counts: &[usize], b: usize| {
            bin_load(
                slots[b * per_bin..(b + 1) * per_bin]
                    .iter()
                    .map(|&x| share(counts, x)),
            )
        };
        let region = g / region_bins * region_slots..(g / region_bins + 1) * region_slots;
        let (load_g, mut best): (f64, Option<(f64, usize)>) =
            (bin_load_of(slots, &counts, g), None);
        for b in region.clone() {
            let (h, j) = (b / per_bin, slots[b]);
            if h == g || on_bin[h * items + i] > 0 || on_bin[g * items + j] > 0 {
                continue;
            }
            let delta = share(&counts, j) - share(&counts, i);
            let worse = (load_g + delta).max(bin_load_of(slots, &counts, h) - delta);
            if best.is_none_or(|(w, _)| worse < w) {
                best = Some((worse, b));
            }
        }
        if let Some((_, b)) = best {
            let (h, j) = (b / per_bin, slots[b]);
            slots.swap(a, b);
            on_bin[g * items + i] -= 1;
            on_bin[h * items + i] += 1;
            on_bin[h * items + j] -= 1;
            on_bin[g * items + j] += 1;
            done.swaps += 1;
            continue;
        }
        // No swap separates it: hand the slot to the heaviest-share item of the region that
        // is not on this bin (one exists: the region has at least `per_bin` distinct items).
        let mut in_region = vec![false; items];
        slots[region].iter().for_each(|&x| in_region[x] = true);
        let f = (0..items)
            .filter(|&f| in_region[f] && on_bin[g * items + f] == 0)
            .fold(None, |best: Option<usize>, f| match best {
                Some(b) if share(&counts, b) >= share(&counts, f) => Some(b),
                _ => Some(f),
            })
            .expect("a region with per_bin distinct items has one missing from a non-distinct bin");
        slots[a] = f;
        counts[i] -= 1;
        counts[f] += 1;
        on_bin[g * items + i] -= 1;
        on_bin[g * items + f] += 1;
        done.recounts += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
