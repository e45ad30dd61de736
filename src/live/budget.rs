//! The budgeted local search: from the current placement, the moves that lower the max GPU
//! load the most per transfer they cost, until the budget is spent or no move helps.
//!
//! Three kinds of moves, all touching the busiest GPU `g*` (the one that sets the max):
//!
//! - **replace** a replica on `g*` of an expert with at least two replicas by a replica of
//!   another expert (a count change: one expert loses a replica, one gains one);
//! - **replace elsewhere**: a replica on another GPU gives its slot to an expert that `g*`
//!   holds, so that expert's per-replica load drops on `g*` too;
//! - **swap** a replica on `g*` with one on another GPU (counts unchanged).
//!
//! A move's cost is the change in transfers (a replica of `e` on `g` is a transfer when `g`
//! did not hold `e` in the current placement; moves that bring back what a GPU held cost
//! nothing or give transfers back). A move is taken only if it lowers `g*`'s load and leaves
//! every GPU it touches below the old max, so the max never rises and the search ends; among
//! those, the one with the largest drop of the max per transfer (then the largest drop of the
//! touched GPUs' peak per transfer), first found on ties. Work is capped by a step count,
//! never by time, so the answer is deterministic.
//!
//! A layer is searched in rounds ([`ROUNDS`]), each only while the best search so far ends
//! above a threshold over the layer's lower bound: another tie-break, then more partners
//! (from late in the best search so far, [`wide_start`]), then restarts from points along
//! the best search ([`RESTART_PARTS`]); the best is kept. A
//! round's searches and the restarts stop as soon as the best one ends within the threshold,
//! and a restart never re-runs the variant that took the steps it restarts from (the search
//! is deterministic: it would take them again).
//!
//! A step allocates nothing (its writes are a fixed-size [`Writes`], the scratch buffers are
//! reused), reads each partner's slots once ([`PartnerSlot`]; the replacements elsewhere
//! only the movable ones), keeps the busiest-first order and the squares tie-break's bound
//! from the step before (re-sorted by insertion; recomputed for the experts it touched), and
//! multiplies by the reciprocal of a step's price in the bounds.

use eplb_solvers::loads::bin_load;
use serde::Serialize;

use super::failed::LiveGpus;
use super::holdings::node_of;
use crate::placement::LayerPlacement;
use crate::problem::{Cluster, LayerProblem, Policy};

/// One point of a layer's max-load-versus-transfers trade-off curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Transfers from the current placement.
    pub transfers: usize,
    /// The max GPU load at that many transfers.
    pub max_load: f64,
}

/// What the search found on one layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchResult {
    /// The placement after the last step.
    pub(crate) placement: LayerPlacement,
    /// The curve: the starting point, then one point per step taken.
    pub(crate) curve: Vec<CurvePoint>,
    /// The slot writes of each step, to replay a prefix of the search.
    steps: Vec<Writes>,
    /// The variant that took the steps after the replayed prefix.
    variant: Variant,
}

/// The slot writes of one step, `(slot, expert)`: one (a replacement) or two (a swap).
/// A fixed-size value, so choosing and recording a step allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Writes {
    slots: [(usize, usize); 2],
    len: u8,
}

impl Writes {
    /// One write: `expert` into `slot`.
    fn one(slot: usize, expert: usize) -> Self {
        Self {
            slots: [(slot, expert), (0, 0)],
            len: 1,
        }
    }

    /// Two writes (a swap).
    fn two(first: (usize, usize), second: (usize, usize)) -> Self {
        Self {
            slots: [first, second],
            len: 2,
        }
    }

    /// The writes, in order.
    fn as_slice(&self) -> &[(usize, usize)] {
        &self.slots[..usize::from(self.len)]
    }
}

impl SearchResult {
    /// The placement after the first `steps` steps (all of them when `steps` is larger).
    pub(crate) fn prefix(&self, start: &LayerPlacement, steps: usize) -> LayerPlacement {
        let mut phy2log = start.phy2log().to_vec();
        for writes in self.steps.iter().take(steps) {
            for &(slot, e) in writes.as_slice() {
                phy2log[slot] = e;
            }
        }
        LayerPlacement::from_phy2log(phy2log)
    }

    /// `value` of the placement at every point of the curve (after 0, 1, ... steps).
    pub(crate) fn values(
        &self,
        start: &LayerPlacement,
        mut value: impl FnMut(&LayerPlacement) -> crate::Result<f64>,
    ) -> crate::Result<Vec<f64>> {
        let mut phy2log = start.phy2log().to_vec();
        let mut values = vec![value(start)?];
        for writes in &self.steps {
            for &(slot, e) in writes.as_slice() {
                phy2log[slot] = e;
            }
            values.push(value(&LayerPlacement::from_phy2log(phy2log.clone()))?);
        }
        Ok(values)
    }

    /// Steps taken.
    pub(crate) fn steps(&self) -> usize {
        self.steps.len()
    }

    /// The curve's last point: where the search ended.
    fn end(&self) -> CurvePoint {
        *self
            .curve
            .last()
            .expect("the curve starts with the current point")
    }
}

/// Whether a GPU may hold two replicas of one expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replicas {
    /// It may (the default).
    MayShareGpu,
    /// It may not (`--distinct-replicas`): no step adds a replica of an expert to a GPU that
    /// holds one (the start must be distinct).
    Distinct,
}

/// Steps at most per slot of the layer (a count, so the search is deterministic).
const STEPS_PER_SLOT: usize = 4;

/// The GPUs a step may trade replicas with (replace elsewhere, swap): the lightest this many
/// besides the busiest one. Light GPUs are where load can go; a count, not a time, caps the
/// work (on the seven pairs of DeepSeek-V3 traces of the README, R = 288 and P = 32, global
/// policy: all 31 GPUs made the search about three times slower for 391 layers within 1% of
/// `refine` instead of 387 of 406).
const PARTNERS: usize = 8;

/// A relative drop of the max smaller than this is no drop (float noise).
const MIN_RELATIVE_DROP: f64 = 1e-12;

/// Slack, relative to the max, added to every bound before pruning: the bounds add the same
/// loads in another order than the exact evaluation, and pruning must never drop a step the
/// exact evaluation would choose.
const SLACK: f64 = 1e-10;

/// Scores closer than this, relative to the max, tie (the first step found wins): ten times
/// [`SLACK`], so a bound within its slack of the best step's score proves a tie, and the
/// search skips the many steps that tie without evaluating them.
const TIE: f64 = 1e-9;

/// True when `score` beats `best` by more than `tol`: a larger first part, or a tying first
/// part and a larger second part.
fn beats(score: (f64, f64), best: (f64, f64), tol: f64) -> bool {
    score.0 > best.0 + tol || (score.0 >= best.0 - tol && score.1 > best.1 + tol)
}

/// What a step costing `cost` transfers is charged when gains are compared per transfer:
/// steps that cost nothing (or give transfers back) are charged a twentieth.
fn price(cost: isize) -> f64 {
    cost.max(0) as f64 + 0.05
}

/// `1 / price(cost)`, without a division for the usual costs: the bounds multiply by it (a
/// bound moves by an ulp or so, far less than its [`SLACK`], so pruning stays safe).
fn per_price(cost: isize) -> f64 {
    const PER_PRICE: [f64; 3] = [1.0 / 0.05, 1.0 / 1.05, 1.0 / 2.05];
    PER_PRICE
        .get(cost.max(0) as usize)
        .copied()
        .unwrap_or_else(|| 1.0 / price(cost))
}

/// False when a step costing `cost` whose drop of the max is at most `bound` cannot beat
/// `best` (branch and bound: skipping it never changes the step chosen).
fn promising(best: &Option<Candidate>, bound: f64, cost: isize) -> bool {
    best.as_ref()
        .is_none_or(|b| bound * per_price(cost) >= b.score.0 - b.tol)
}

/// What is known of a step before it is evaluated: bounds on its score.
#[derive(Debug, Clone, Copy)]
struct Bound {
    /// The max load now.
    max: f64,
    /// At most the touched GPUs' new peak.
    peak: f64,
    /// The load of a GPU the step leaves as it is: the new max is at least this.
    untouched: f64,
    /// At least the drop of the sum of the touched GPUs' squared loads.
    squares: f64,
}

/// False when a step costing `cost` with the bounds `bound` (up to [`SLACK`]) cannot beat
/// `best`: its score is at most `((max - max(peak, untouched)) / price, (max - peak) / price)`
/// ([`TieBreak::Peak`]) or `(.., squares / max / price)` ([`TieBreak::Squares`]), compared
/// as [`Search::offer`] compares scores.
fn can_beat(best: &Option<Candidate>, rule: TieBreak, bound: Bound, cost: isize) -> bool {
    let Some(b) = best else {
        return true;
    };
    let Bound {
        max,
        peak,
        untouched,
        squares,
    } = bound;
    let per_price = per_price(cost);
    let slack = max * SLACK;
    let loose = (max - peak + slack) * per_price;
    let first = loose.min((max - untouched + slack) * per_price);
    // Below the best's first part less its tolerance, the second part cannot matter.
    if first < b.score.0 - b.tol {
        return false;
    }
    let second = match rule {
        TieBreak::Peak => loose,
        TieBreak::Squares => (squares / max + slack) * per_price,
    };
    beats((first, second), b.score, b.tol)
}

/// Bounds on every swap of a replica of load `px` on the busiest GPU (load `lt`) with a
/// lighter one on a GPU of load `lh <= lt`: `(at most the touched peak, at least the drop of
/// the two GPUs' squared loads)`. The two new loads add up to the old ones, so the peak is
/// at least their mean, and at least `lt - px` (the other replica weighs something); the
/// busiest GPU hands over a net `d` in `(0, px]`, and the drop of the squares, `2 d (lt - lh -
/// d)`, is largest at `d = (lt - lh) / 2`, or at `d = px` when `px` is smaller.
fn swap_bounds(lt: f64, lh: f64, px: f64) -> (f64, f64) {
    let half = 0.5 * (lt - lh);
    let peak = (0.5 * (lt + lh)).max(lt - px);
    let squares = if px < half {
        2.0 * px * (lt - lh - px)
    } else {
        half * (lt - lh)
    };
    (peak, squares)
}

/// How steps whose drop of the max per transfer ties are told apart (the second part of a
/// step's score).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TieBreak {
    /// The largest drop of the touched GPUs' peak per transfer.
    Peak,
    /// The largest drop of the sum of the squared loads of the touched GPUs per transfer: the
    /// step that evens out the loads the most, which leaves room for the next steps.
    Squares,
}

/// Relative distance to the proven lower bound above which a layer is searched a second
/// time with the other tie-break ([`TieBreak::Squares`]), and the better search is kept:
/// the wide round's mark ([`WIDE_SEARCH_ABOVE_BOUND`], 1%). A layer the first search leaves
/// within it is within 1% of every placement, `refine`'s included; a second search there
/// only lowers the max further below the mark, at the price of a second full search. (It
/// was 0.3%: on prefill_in1024 -> prefill_in512, global policy, R = 288, P = 32, the second
/// search then ran on 56 of 58 layers and took 45% of the rebalance's instructions; the
/// mean gap to `refine` was 0.415% instead of 0.466%.)
const SECOND_SEARCH_ABOVE_BOUND: f64 = WIDE_SEARCH_ABOVE_BOUND;

/// The local search state of one layer.
#[derive(Clone)]
struct Search<'a> {
    loads: &'a [f64],
    cluster: &'a Cluster,
    experts: usize,
    slots: usize,
    phy: Vec<usize>,
    cnt: Vec<usize>,
    /// `on[g * E + e]`: replicas of `e` on GPU `g`.
    on: Vec<u32>,
    /// `held[g * E + e]`: `g` held `e` in the current placement.
    held: Vec<bool>,
    /// The current placement's slots.
    start: &'a [usize],
    /// GPUs holding each expert now.
    holders: GpuLists,
    load: Vec<f64>,
    /// Load per replica of each expert at its count (`pr`), one more (`pr_plus`) and one
    /// fewer (`pr_minus`, infinite below two replicas): no division in the candidate loops.
    pr: Vec<f64>,
    pr_plus: Vec<f64>,
    pr_minus: Vec<f64>,
    /// The experts by `pr_plus`, smallest first: the cheapest to give a replica.
    by_plus: Vec<usize>,
    /// Per expert, [`Search::set_relief`]'s bound ([`TieBreak::Squares`] only).
    relief: Vec<f64>,
    /// The experts whose [`Search::relief`] a step may have changed (on a GPU whose load
    /// changed, or written or overwritten), each once (`relief_stale[e]`): the next
    /// [`Search::set_relief`] recomputes only those. All of them at the start.
    relief_stale: Vec<bool>,
    stale: Vec<usize>,
    /// The node each expert may live on (hierarchical policy), else `None`.
    home: Option<Vec<usize>>,
    /// The node of each GPU.
    node: Vec<usize>,
    live: &'a LiveGpus,
    /// No step adds a second replica of an expert to a GPU.
    distinct: bool,
    /// How ties of the drop of the max are told apart.
    rule: TieBreak,
    transfers: usize,
    /// The lightest this many GPUs trade with the busiest one ([`PARTNERS`] by default).
    partners: usize,
    /// The max load when the current [`Search::best_step`] started.
    max_now: f64,
    /// Scratch of [`Search::best_step`]: the live GPUs, busiest first.
    order: Vec<usize>,
    /// Scratch: new load of touched GPUs, stamped.
    stamp: Vec<u64>,
    now: u64,
    touched: Vec<usize>,
    fresh: Vec<f64>,
    /// `first[slot]`: no earlier slot of the slot's GPU holds its expert. A step on a later
    /// replica of the same expert on the same GPU has the same score, and the first step
    /// found wins ties, so the candidate loops skip it.
    first: Vec<bool>,
    /// Scratch of [`Search::best_step`] (reused, so a step allocates nothing): the experts
    /// on the busiest GPU, the partners, what is read of them and of their slots.
    ys: Vec<usize>,
    partner_gpus: Vec<usize>,
    partner_info: Vec<PartnerGpu>,
    partner_slots: Vec<PartnerSlot>,
    movable_slots: Vec<PartnerSlot>,
    /// Scratch of [`Search::apply`]: (expert, count before) of the experts a step writes,
    /// and the GPUs whose load it changes.
    recounted: Vec<(usize, usize)>,
    reloaded: Vec<usize>,
    /// Test only: [`Search::x_rise_from`] bounds nothing (0), so the scan evaluates every
    /// step the other bounds let through: the reference the bounded scan must agree with.
    #[cfg(test)]
    loose: bool,
}

/// The GPUs holding each expert, in increasing order: one flat buffer of `gpus` entries per
/// expert (an expert is on at most every GPU) and a length per expert, so a search state is
/// built and cloned without an allocation per expert.
#[derive(Debug, Clone)]
struct GpuLists {
    gpus: usize,
    buf: Vec<usize>,
    len: Vec<usize>,
}

impl GpuLists {
    /// Empty lists for `experts` experts on `gpus` GPUs.
    fn new(experts: usize, gpus: usize) -> Self {
        Self {
            gpus,
            buf: vec![0; experts * gpus],
            len: vec![0; experts],
        }
    }

    /// The GPUs holding `e`.
    fn of(&self, e: usize) -> &[usize] {
        &self.buf[e * self.gpus..e * self.gpus + self.len[e]]
    }

    /// Appends `g` (larger than every GPU listed for `e`, and not listed).
    fn push(&mut self, e: usize, g: usize) {
        self.buf[e * self.gpus + self.len[e]] = g;
        self.len[e] += 1;
    }

    /// Inserts `g` (not listed for `e`) in order.
    fn insert(&mut self, e: usize, g: usize) {
        let (start, len) = (e * self.gpus, self.len[e]);
        let at = self.of(e).partition_point(|&h| h < g);
        self.buf
            .copy_within(start + at..start + len, start + at + 1);
        self.buf[start + at] = g;
        self.len[e] += 1;
    }

    /// Removes `g` from `e`'s list (if listed).
    fn remove(&mut self, e: usize, g: usize) {
        let (start, len) = (e * self.gpus, self.len[e]);
        if let Some(at) = self.of(e).iter().position(|&h| h == g) {
            self.buf
                .copy_within(start + at + 1..start + len, start + at);
            self.len[e] -= 1;
        }
    }
}

/// What a step reads of a GPU that trades with the busiest one, once per step.
#[derive(Debug, Clone)]
struct PartnerGpu {
    gpu: usize,
    /// The least a replica on the GPU costs to take to the busiest GPU, less what it cost
    /// to bring to the GPU (-1, 0 or 1).
    swap_in: isize,
    /// The least load the GPU has without one of its [movable](PartnerSlot::movable)
    /// replicas (infinite without one).
    least_without: f64,
    /// 1 when a movable replica on the GPU came by a transfer (giving its slot away gives
    /// the transfer back).
    refund: isize,
    /// Where its movable slots are in the step's list of them, in slot order (most
    /// experts have a single replica: few slots are movable).
    movable: std::ops::Range<usize>,
    /// The load of the busiest GPU other than this one and the busiest GPU: a swap between
    /// the two leaves it as it is, so the new max is at least this.
    floor: f64,
}

/// What a step reads of one slot of a GPU `h` that trades with the busiest GPU `top`, once
/// per step.
#[derive(Debug, Clone, Copy)]
struct PartnerSlot {
    slot: usize,
    expert: usize,
    /// The expert's load per replica.
    pr: f64,
    /// 1 when a replica of the expert on `h` (on `top`) is a transfer.
    t_h: isize,
    t_top: isize,
    /// No earlier slot of `h` holds the expert, and the expert may go to `top`: a swap may
    /// bring it there.
    to_top: bool,
    /// With a spare: `top`'s load change when the expert loses a replica.
    top_loss: f64,
    /// With a spare: `h`'s load without this replica, the expert at its new count.
    h_without: f64,
    /// Movable: [`Search::x_rise_off`] of the expert off `h` and `top` (else none).
    rise: Rise,
}

/// A replica on the busiest GPU that a step may overwrite, with what every such step reads.
#[derive(Debug, Clone, Copy)]
struct Vacated {
    slot: usize,
    /// The expert in the slot (it has a replica to spare).
    x: usize,
    /// The busiest GPU's load without the replica, `x` at its new count.
    base: f64,
    /// [`Search::x_rise_off`] of `x` off the busiest GPU alone.
    rise: Rise,
}

/// The largest new load of some GPUs holding an expert when it loses a replica, and the
/// GPU with that load (`usize::MAX` when none is above 0).
#[derive(Debug, Clone, Copy)]
struct Rise {
    load: f64,
    at: usize,
}

/// A candidate step.
#[derive(Clone, Copy)]
struct Candidate {
    writes: Writes,
    score: (f64, f64),
    /// Scores closer than this tie ([`TIE`] times the max).
    tol: f64,
}

/// How much searching a layer gets (see the module docs): the rounds of the search, and so
/// the time a rebalance takes on layers that end far above their lower bound.
///
/// ```
/// use eplb::live::{MoveBudget, RebalanceOptions, SearchEffort};
/// let options = RebalanceOptions::new(MoveBudget::PerLayer(28)).with_effort(SearchEffort::Quick);
/// assert_eq!(options.effort, SearchEffort::Quick);
/// assert_eq!(RebalanceOptions::new(MoveBudget::Unlimited).effort, SearchEffort::Thorough);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SearchEffort {
    /// The descent with the peak tie-break, then with the squares tie-break on layers more
    /// than 1% above the bound: the search's first two rounds. Its time grows with the
    /// budget and the GPUs, not with how hard a layer is.
    Quick,
    /// The quick rounds, then, on layers still about 1% or more above the bound, the wide
    /// round and restarts from points along the best search: lower max loads on the layers
    /// the quick search leaves high (on the README's pairs, up to 11 more of 58 layers within
    /// 1% of `refine`), several times the quick search's time on those layers.
    #[default]
    Thorough,
}

/// One way to run the search: the tie-break and how many GPUs trade with the busiest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Variant {
    /// How ties of the drop of the max are told apart.
    rule: TieBreak,
    /// The lightest this many GPUs trade with the busiest one.
    partners: usize,
}

/// The searches [`search`] runs, in rounds: a round runs only when the best search so far
/// ends more than its threshold (relative) above the layer's proven lower bound.
///
/// 1. [`TieBreak::Peak`] with [`PARTNERS`] partners, always;
/// 2. [`TieBreak::Squares`] with [`PARTNERS`] partners, above [`SECOND_SEARCH_ABOVE_BOUND`]:
///    each rule wins on layers where the other wastes transfers;
/// 3. both rules with [`WIDE_PARTNERS`] partners, above [`WIDE_SEARCH_ABOVE_BOUND`]: the
///    few layers still more than 1% above the bound, where a wider choice of moves finds
///    a lower max; each replays the best search so far but its last [`WIDE_TAIL_STEPS`]
///    steps ([`wide_start`]) and searches on from there; the restarts of [`RESTART_PARTS`]
///    follow.
const ROUNDS: [(f64, &[Variant]); 3] = [
    (
        f64::NEG_INFINITY,
        &[Variant {
            rule: TieBreak::Peak,
            partners: PARTNERS,
        }],
    ),
    (
        SECOND_SEARCH_ABOVE_BOUND,
        &[Variant {
            rule: TieBreak::Squares,
            partners: PARTNERS,
        }],
    ),
    (
        WIDE_SEARCH_ABOVE_BOUND,
        &[
            Variant {
                rule: TieBreak::Squares,
                partners: WIDE_PARTNERS,
            },
            Variant {
                rule: TieBreak::Peak,
                partners: WIDE_PARTNERS,
            },
        ],
    ),
];

/// The partners of the wide round (round 3 of [`ROUNDS`]) and of the restarts: twice
/// [`PARTNERS`]. Measured on the seven pairs of DeepSeek-V3 traces of the README (global
/// policy, R = 288, P = 32), layers of prefill_in512 -> prefill_in2000out100 within 1% of
/// `refine` with rounds 3 and restarts: 56/58 with 16 partners, 53 with 12, 53 with 20, 55
/// with 24, 54 with all 31 (which also took the most time); without them 45.
const WIDE_PARTNERS: usize = 16;

/// Relative distance to the proven lower bound above which a layer is searched with
/// [`WIDE_PARTNERS`] partners (round 3 of [`ROUNDS`]), and after which the restarts stop:
/// 1%, the mark the README's targets use. A layer within 1% of its lower bound is within
/// 1% of `refine` (which is above the bound), so searching on cannot change the target;
/// with 0.9% (just under the mark) the rounds and restarts took 26% more steps on
/// prefill_in512 -> prefill_in2000out100 for the same layers within 1% of `refine`.
const WIDE_SEARCH_ABOVE_BOUND: f64 = 0.01;

/// The steps of the best search so far that a search of the wide round (round 3 of
/// [`ROUNDS`]) replays before searching on with its own variant: all but the last
/// [`WIDE_TAIL_STEPS`] (none when it took no more). The first steps of a descent are the
/// ones every variant takes alike (the busiest GPU far above the rest); the wider choice of
/// moves pays at the end, where the layer is near its bound.
fn wide_start(steps: &[Writes]) -> &[Writes] {
    &steps[..steps.len().saturating_sub(WIDE_TAIL_STEPS)]
}

/// How many of the best search's last steps a search of the wide round takes again in its
/// own way ([`wide_start`]). Measured on the seven pairs of the README (global policy,
/// R = 288, P = 32, budgets of 28 and 57 moves, thorough; restarts latest first) against the
/// wide round from the current placement: the same or more layers within 1% of `refine` on
/// every pair (prefill_in512 -> prefill_in2000out100 56 of 58; 58 instead of 57 on
/// decode_in1800out100 -> decode_in1000out1000), mean gaps to `refine` as low or lower
/// (0.723% -> 0.718%, 0.710% -> 0.704% on those pairs), and 23% fewer instructions on
/// prefill_in512 -> prefill_in2000out100. With 8 steps 55 layers there and 18% fewer; with
/// 16, 54 layers and 17% fewer; replaying 3/4 of the steps instead of a count, 56 layers and
/// 24% fewer, but at a budget of 5 moves (searches of fewer than 12 steps, which the count
/// leaves as they were) the mean gaps rose by up to 0.25 points.
const WIDE_TAIL_STEPS: usize = 12;

/// How many equal parts the best search is cut into for restarts: after the last round of
/// [`ROUNDS`], a layer still above [`WIDE_SEARCH_ABOVE_BOUND`] is searched again from the
/// best search's placement after 3/4, 2/4 and 1/4 of its steps (the latest first: it has the
/// fewest steps left to search, and the restarts stop at the first that ends within the
/// mark), with each variant of that
/// round (only when that round ran variants of its own: under the global policy with more
/// than [`PARTNERS`] + 1 live GPUs). The steady descent spends transfers on the busiest GPU
/// of the moment; continuing from an earlier point with another choice of moves spends the
/// rest where the final max gains more (global policy, the seven pairs of the README, with
/// all 31 GPUs as wide partners: prefill_in512 -> prefill_in2000out100 from 51 to 54 of 58
/// layers within 1% of `refine`). Latest first rather than earliest first: the same layers
/// within 1% of `refine` on every pair and policy (`live-report`), a mean gap of 0.723%
/// instead of 0.724% on prefill_in512 -> prefill_in2000out100, and 4% fewer instructions
/// there (global, thorough, R = 288, P = 32, 28 moves); with 6 parts latest first, 6% more.
const RESTART_PARTS: usize = 4;

/// The rounds of [`ROUNDS`] an effort runs (the restarts follow the last round only).
const fn rounds(effort: SearchEffort) -> &'static [(f64, &'static [Variant])] {
    match effort {
        SearchEffort::Quick => ROUNDS.split_at(2).0,
        SearchEffort::Thorough => &ROUNDS,
    }
}

/// Runs the search on `layer` from `current` with at most `budget` transfers (counted from
/// `current`), placing only on `live` GPUs. `current` must be feasible for the layer.
///
/// The searches of the `effort`'s [`ROUNDS`] run while the best one so far ends above the
/// round's threshold over `bound`, the layer's [proven lower
/// bound](crate::bounds::proven_lower_bound), then (after the last round) the
/// restarts of [`RESTART_PARTS`]; the one with the lowest max load (then the fewest
/// transfers, then the first) is kept.
pub(crate) fn search(
    layer: &LayerProblem<'_>,
    current: &LayerPlacement,
    budget: usize,
    live: &LiveGpus,
    replicas: Replicas,
    effort: SearchEffort,
    bound: f64,
) -> SearchResult {
    let above = |r: &SearchResult, threshold: f64| r.end().max_load > bound * (1.0 + threshold);
    // The most GPUs that may trade with a busiest one: its node's under the hierarchical
    // policy, every live GPU under the global one. A variant asking for more runs as one
    // with that many, and one that ran already is not run again.
    let cluster = layer.cluster();
    let scope = match (layer.policy(), cluster.gpus_per_node()) {
        (Policy::Hierarchical, Some(q)) => q,
        _ => (0..cluster.gpus).filter(|&g| live.is_live(g)).count(),
    };
    // Every search starts from the same state: built once, cloned per search.
    let base = Search::new(layer, current, live);
    let run = |variant: Variant, prefix: &[Writes]| run(&base, budget, replicas, variant, prefix);
    let mut ran: Vec<Variant> = Vec::new();
    // The variants the last round ran (its own, not ones run before).
    let mut last_round: Vec<Variant> = Vec::new();
    let mut kept: Option<SearchResult> = None;
    // Every search run so far: where it would search on from.
    let mut paths: Vec<Path> = Vec::new();
    for (round, &(threshold, variants)) in rounds(effort).iter().enumerate() {
        for &variant in variants {
            // A round (and every later one) stops as soon as the best search ends within its
            // threshold.
            if kept.as_ref().is_some_and(|r| !above(r, threshold)) {
                break;
            }
            let variant = Variant {
                partners: variant.partners.min(scope.saturating_sub(1)),
                ..variant
            };
            if ran.contains(&variant) {
                continue;
            }
            ran.push(variant);
            if round + 1 == ROUNDS.len() {
                last_round.push(variant);
            }
            // The wide round searches on from late in the best search so far; the others
            // from the current placement.
            let prefix = match &kept {
                Some(best) if round + 1 == ROUNDS.len() => wide_start(&best.steps),
                _ => &[],
            };
            let next = run(variant, prefix);
            paths.push(Path::of(&next, prefix.len()));
            keep_better(&mut kept, next);
        }
    }
    let mut kept = kept.expect("the first round always runs");
    if above(&kept, WIDE_SEARCH_ABOVE_BOUND) && !last_round.is_empty() {
        let (steps, from) = (kept.steps.clone(), kept.variant);
        'restarts: for part in (1..RESTART_PARTS).rev() {
            let prefix = &steps[..steps.len() * part / RESTART_PARTS];
            // The variant that took the kept search's last steps would take them again from
            // a point among them (the search is deterministic): only the others restart (and
            // a restart some search already ran is skipped, `Path::continues`).
            for &variant in last_round.iter().filter(|&&v| v != from) {
                // The restarts stop as soon as one ends within the last round's threshold.
                if !above(&kept, WIDE_SEARCH_ABOVE_BOUND) {
                    break 'restarts;
                }
                // A search that took these steps with this variant would only take its own
                // again: it ended where this restart would (and was kept if better).
                if paths.iter().any(|p| p.continues(variant, prefix)) {
                    continue;
                }
                let next = run(variant, prefix);
                paths.push(Path::of(&next, prefix.len()));
                let mut best = Some(kept);
                keep_better(&mut best, next);
                kept = best.expect("kept");
            }
        }
    }
    kept
}

/// The steps of a search run and how many of them it replayed: from the state after any
/// longer prefix of them, its variant chooses the rest again (the search is deterministic).
struct Path {
    variant: Variant,
    steps: Vec<Writes>,
    replayed: usize,
}

impl Path {
    /// The path of `result`, which replayed its first `replayed` steps.
    fn of(result: &SearchResult, replayed: usize) -> Self {
        Self {
            variant: result.variant,
            steps: result.steps.clone(),
            replayed,
        }
    }

    /// True when `variant` searching on after `prefix` would take this path's steps (the
    /// path chose its steps after `prefix` with `variant`), so end where it ended.
    fn continues(&self, variant: Variant, prefix: &[Writes]) -> bool {
        self.variant == variant && prefix.len() >= self.replayed && self.steps.starts_with(prefix)
    }
}

/// Replaces `kept` by `next` when `next` ends lower (or as low with fewer transfers).
fn keep_better(kept: &mut Option<SearchResult>, next: SearchResult) {
    let better = kept.as_ref().is_none_or(|r| {
        let (a, b) = (next.end(), r.end());
        a.max_load < b.max_load || (a.max_load == b.max_load && a.transfers < b.transfers)
    });
    if better {
        *kept = Some(next);
    }
}

/// [`run`] from the state of `current`, built for the one search.
#[cfg(test)]
fn search_with(
    layer: &LayerProblem<'_>,
    current: &LayerPlacement,
    budget: usize,
    live: &LiveGpus,
    replicas: Replicas,
    variant: Variant,
    prefix: &[Writes],
) -> SearchResult {
    run(
        &Search::new(layer, current, live),
        budget,
        replicas,
        variant,
        prefix,
    )
}

/// One search run as `variant` says from `base` (the state of the current placement,
/// cloned), after replaying the steps `prefix` (steps of another search from the current
/// placement within `budget`; empty: from the current placement).
fn run(
    base: &Search<'_>,
    budget: usize,
    replicas: Replicas,
    variant: Variant,
    prefix: &[Writes],
) -> SearchResult {
    let mut s = base.clone();
    s.distinct = replicas == Replicas::Distinct;
    s.rule = variant.rule;
    s.partners = variant.partners;
    let mut curve = vec![CurvePoint {
        transfers: s.transfers,
        max_load: s.max(),
    }];
    let mut steps = Vec::new();
    for writes in prefix {
        s.apply(writes.as_slice());
        curve.push(CurvePoint {
            transfers: s.transfers,
            max_load: s.max(),
        });
        steps.push(*writes);
    }
    let limit = STEPS_PER_SLOT * s.cluster.replicas;
    while steps.len() < limit {
        let Some(best) = s.best_step(budget) else {
            break;
        };
        s.apply(best.writes.as_slice());
        curve.push(CurvePoint {
            transfers: s.transfers,
            max_load: s.max(),
        });
        steps.push(best.writes);
    }
    SearchResult {
        placement: LayerPlacement::from_phy2log(s.phy),
        curve,
        steps,
        variant,
    }
}

impl<'a> Search<'a> {
    fn new(layer: &LayerProblem<'a>, current: &'a LayerPlacement, live: &'a LiveGpus) -> Self {
        let cluster = layer.cluster();
        let experts = layer.num_experts();
        let slots = cluster.slots_per_gpu();
        let phy = current.phy2log().to_vec();
        let mut held = vec![false; cluster.gpus * experts];
        for (slot, &e) in phy.iter().enumerate() {
            held[(slot / slots) * experts + e] = true;
        }
        let home = (layer.policy() == Policy::Hierarchical).then(|| {
            let mut home = vec![0; experts];
            for (slot, &e) in phy.iter().enumerate() {
                home[e] = node_of(cluster, slot / slots);
            }
            // Every expert of a group lives on the group's node (the current placement is
            // feasible, so each group has one).
            let size = layer.group_size();
            (0..experts).map(|e| home[(e / size) * size]).collect()
        });
        let mut s = Self {
            loads: layer.loads(),
            cluster,
            experts,
            slots,
            cnt: vec![0; experts],
            on: vec![0; cluster.gpus * experts],
            held,
            start: current.phy2log(),
            holders: GpuLists::new(experts, cluster.gpus),
            load: vec![0.0; cluster.gpus],
            pr: vec![0.0; experts],
            pr_plus: vec![0.0; experts],
            pr_minus: vec![0.0; experts],
            by_plus: (0..experts).collect(),
            relief: vec![0.0; experts],
            relief_stale: vec![true; experts],
            stale: (0..experts).collect(),
            home,
            node: (0..cluster.gpus).map(|g| node_of(cluster, g)).collect(),
            live,
            distinct: false,
            rule: TieBreak::Peak,
            transfers: 0,
            max_now: 0.0,
            partners: PARTNERS,
            order: Vec::with_capacity(cluster.gpus),
            stamp: vec![0; cluster.gpus],
            now: 0,
            touched: Vec::new(),
            fresh: vec![0.0; cluster.gpus],
            first: vec![false; phy.len()],
            ys: Vec::with_capacity(slots),
            partner_gpus: Vec::new(),
            partner_info: Vec::new(),
            partner_slots: Vec::new(),
            movable_slots: Vec::new(),
            recounted: Vec::with_capacity(4),
            reloaded: Vec::with_capacity(16),
            #[cfg(test)]
            loose: false,
            phy,
        };
        s.refresh();
        s
    }

    /// Computes counts, holders, loads (summed in slot order as the evaluator does) and
    /// transfers from `phy` (once; [`Search::apply`] keeps them up to date).
    fn refresh(&mut self) {
        let e_count = self.experts;
        for (slot, &e) in self.phy.iter().enumerate() {
            let g = slot / self.slots;
            if !self.live.is_live(g) {
                continue;
            }
            self.cnt[e] += 1;
            self.on[g * e_count + e] += 1;
            if self.holders.of(e).last() != Some(&g) {
                self.holders.push(e, g);
            }
            self.transfers += usize::from(!self.held[g * e_count + e]);
        }
        for e in 0..e_count {
            self.set_shares(e);
        }
        let pr_plus = &self.pr_plus;
        self.by_plus
            .sort_by(|&a, &b| pr_plus[a].total_cmp(&pr_plus[b]).then(a.cmp(&b)));
        for g in 0..self.cluster.gpus {
            self.load[g] = self.gpu_load(g);
            self.set_first(g);
        }
    }

    /// Sets [`Search::first`] for GPU `g`'s slots.
    fn set_first(&mut self, g: usize) {
        let slots = g * self.slots..(g + 1) * self.slots;
        for slot in slots.clone() {
            self.first[slot] = !self.phy[slots.start..slot].contains(&self.phy[slot]);
        }
    }

    fn max(&self) -> f64 {
        self.load.iter().copied().fold(0.0, f64::max)
    }

    /// Takes a step, updating only what it touches: the written GPUs, the experts whose
    /// count changed and their holders (loads summed in slot order as the evaluator does, so
    /// the state equals [`Search::refresh`]'s).
    fn apply(&mut self, writes: &[(usize, usize)]) {
        let e_count = self.experts;
        // (expert, count before) of every expert written or overwritten.
        let mut recounted = std::mem::take(&mut self.recounted);
        recounted.clear();
        recounted.extend(
            writes
                .iter()
                .flat_map(|&(slot, new)| [self.phy[slot], new])
                .map(|e| (e, self.cnt[e])),
        );
        let mut gpus = std::mem::take(&mut self.reloaded);
        gpus.clear();
        for &(slot, new) in writes {
            let (g, old) = (slot / self.slots, self.phy[slot]);
            if old == new {
                continue;
            }
            self.phy[slot] = new;
            self.make_stale(old);
            self.make_stale(new);
            self.on[g * e_count + old] -= 1;
            self.on[g * e_count + new] += 1;
            if self.on[g * e_count + old] == 0 {
                self.holders.remove(old, g);
            }
            if self.on[g * e_count + new] == 1 {
                self.holders.insert(new, g);
            }
            self.cnt[old] -= 1;
            self.cnt[new] += 1;
            self.transfers = (self.transfers as isize + self.t(g, new) - self.t(g, old)) as usize;
            gpus.push(g);
            self.set_first(g);
        }
        recounted.sort_unstable();
        recounted.dedup();
        // Counts that changed back (a swap) change nothing else.
        recounted.retain(|&(e, before)| self.cnt[e] != before);
        for &(e, _) in &recounted {
            self.set_shares(e);
            gpus.extend_from_slice(self.holders.of(e));
            let key = |v: usize| (self.pr_plus[v], v);
            if let Some(at) = self.by_plus.iter().position(|&v| v == e) {
                self.by_plus.remove(at);
            }
            let at = self
                .by_plus
                .partition_point(|&v| key(v).0.total_cmp(&key(e).0).then(v.cmp(&e)).is_lt());
            self.by_plus.insert(at, e);
        }
        gpus.sort_unstable();
        gpus.dedup();
        for &g in &gpus {
            self.load[g] = self.gpu_load(g);
            for slot in g * self.slots..(g + 1) * self.slots {
                self.make_stale(self.phy[slot]);
            }
        }
        self.recounted = recounted;
        self.reloaded = gpus;
    }

    /// The load per replica of `e` at its count, one more and one fewer.
    fn set_shares(&mut self, e: usize) {
        let (w, c) = (self.loads[e], self.cnt[e]);
        self.pr[e] = w / c as f64;
        self.pr_plus[e] = w / (c + 1) as f64;
        self.pr_minus[e] = if c >= 2 {
            w / (c - 1) as f64
        } else {
            f64::INFINITY
        };
    }

    /// GPU `g`'s load, summed in slot order as the evaluator does (0 when it is dead).
    fn gpu_load(&self, g: usize) -> f64 {
        if !self.live.is_live(g) {
            return 0.0;
        }
        let slots = &self.phy[g * self.slots..(g + 1) * self.slots];
        bin_load(slots.iter().map(|&e| self.loads[e] / self.cnt[e] as f64))
    }

    /// True when `expert` may go to `gpu` (live, on its group's node under the hierarchical
    /// policy, and not holding it already with distinct replicas).
    fn allowed(&self, expert: usize, gpu: usize) -> bool {
        self.live.is_live(gpu)
            && !(self.distinct && self.on[gpu * self.experts + expert] > 0)
            && self
                .home
                .as_ref()
                .is_none_or(|home| home[expert] == self.node[gpu])
    }

    /// True when GPU `g` holds a replica of `e` now.
    fn holds(&self, g: usize, e: usize) -> bool {
        self.on[g * self.experts + e] > 0
    }

    /// 1 when a replica of `e` on `g` is a transfer.
    fn t(&self, g: usize, e: usize) -> isize {
        isize::from(!self.held[g * self.experts + e])
    }

    /// Starts a candidate's bookkeeping of touched GPUs.
    fn begin(&mut self) {
        self.now += 1;
        self.touched.clear();
    }

    /// Adds `delta` to GPU `g`'s load in the candidate.
    fn touch(&mut self, g: usize, delta: f64) {
        if self.stamp[g] != self.now {
            self.stamp[g] = self.now;
            self.fresh[g] = self.load[g];
            self.touched.push(g);
        }
        self.fresh[g] += delta;
    }

    /// Touches every GPU holding `e` for a change of `d` in its load per replica.
    fn recount(&mut self, e: usize, d: f64) {
        for i in 0..self.holders.of(e).len() {
            let g = self.holders.of(e)[i];
            let n = self.on[g * self.experts + e] as f64;
            self.touch(g, n * d);
        }
    }

    /// The scores of the touched GPUs' new loads: `(drop of the max, drop of the touched
    /// peak)`, or `None` when the touched peak does not drop below `max`.
    fn judge(&self, max: f64, order: &[usize]) -> Option<(f64, f64)> {
        let peak = self
            .touched
            .iter()
            .map(|&g| self.fresh[g])
            .fold(0.0, f64::max);
        if peak >= max * (1.0 - MIN_RELATIVE_DROP) {
            return None;
        }
        let untouched = order
            .iter()
            .find(|&&g| self.stamp[g] != self.now)
            .map_or(0.0, |&g| self.load[g]);
        let second = match self.rule {
            TieBreak::Peak => max - peak,
            // Scaled by the max, as the peak's drop is.
            TieBreak::Squares => {
                self.touched
                    .iter()
                    .map(|&g| self.load[g] * self.load[g] - self.fresh[g] * self.fresh[g])
                    .sum::<f64>()
                    / max
            }
        };
        Some((max - peak.max(untouched), second))
    }

    /// Keeps `candidate` if it beats `best` per transfer (see [`price`]).
    fn offer(&self, best: &mut Option<Candidate>, writes: Writes, cost: isize, gains: (f64, f64)) {
        let price = price(cost);
        let score = (gains.0 / price, gains.1 / price);
        if best.as_ref().is_none_or(|b| beats(score, b.score, b.tol)) {
            *best = Some(Candidate {
                writes,
                score,
                tol: self.max_now * TIE,
            });
        }
    }

    /// The best step within `budget` transfers, if one lowers the max.
    fn best_step(&mut self, budget: usize) -> Option<Candidate> {
        let p = self.cluster.gpus;
        let mut order = std::mem::take(&mut self.order);
        if order.is_empty() {
            order.extend((0..p).filter(|&g| self.live.is_live(g)));
        }
        // The order of the last step, re-sorted: a step changes a few GPUs' loads, so an
        // insertion sort moves only those (the order is total: the result is the same as
        // any sort's).
        let busier = |a: usize, b: usize| {
            self.load[b]
                .total_cmp(&self.load[a])
                .then(a.cmp(&b))
                .is_lt()
        };
        for i in 1..order.len() {
            let mut j = i;
            while j > 0 && busier(order[j], order[j - 1]) {
                order.swap(j, j - 1);
                j -= 1;
            }
        }
        let best = self.best_step_from(budget, &order);
        self.order = order;
        best
    }

    /// [`Search::best_step`] with the live GPUs sorted busiest first (`order`).
    fn best_step_from(&mut self, budget: usize, order: &[usize]) -> Option<Candidate> {
        let e_count = self.experts;
        let top = *order.first()?;
        let max = self.load[top];
        if max <= 0.0 {
            return None;
        }
        self.max_now = max;
        let room = budget as isize - self.transfers as isize;
        let mut best: Option<Candidate> = None;
        if self.rule == TieBreak::Squares {
            self.set_relief();
        }
        // Read by the squares tie-break's bounds alone.
        let relief_max = match self.rule {
            TieBreak::Squares => self.relief.iter().copied().fold(0.0, f64::max),
            TieBreak::Peak => 0.0,
        };
        let top_slots = top * self.slots..(top + 1) * self.slots;

        // The experts on the busiest GPU.
        let mut ys = std::mem::take(&mut self.ys);
        ys.clear();
        ys.extend(top_slots.clone().map(|s| self.phy[s]));
        ys.sort_unstable();
        ys.dedup();
        // Replace a replica on the busiest GPU: by an expert it holds, or by one it does not
        // hold, cheapest per replica first, while the busiest GPU's load still drops and the
        // drop can still beat the best step at the lowest price.
        for slot in top_slots.clone() {
            let x = self.phy[slot];
            if self.cnt[x] < 2 || !self.first[slot] {
                continue;
            }
            let nx = self.on[top * e_count + x] as f64;
            let vacated = Vacated {
                slot,
                x,
                base: self.load[top] + (nx - 1.0) * self.pr_minus[x] - nx * self.pr[x],
                rise: self.x_rise_off(x, [top, top]),
            };
            for &y in &ys {
                self.offer_replace_top(&mut best, vacated, y, max, room, order);
            }
            if vacated.rise.load >= max * (1.0 - MIN_RELATIVE_DROP) {
                // A GPU holding `x` would reach the max, unless `y` lightens it: only the
                // experts those GPUs hold can help.
                for i in 0..self.holders.of(x).len() {
                    let h = self.holders.of(x)[i];
                    for other in h * self.slots..(h + 1) * self.slots {
                        let y = self.phy[other];
                        if h != top && self.on[top * e_count + y] == 0 {
                            self.offer_replace_top(&mut best, vacated, y, max, room, order);
                        }
                    }
                }
                continue;
            }
            // What the busiest GPU held and gave away comes back for free.
            for i in top_slots.clone() {
                let y = self.start[i];
                if self.on[top * e_count + y] == 0 {
                    self.offer_replace_top(&mut best, vacated, y, max, room, order);
                }
            }
            // The others cost a transfer (less one when `x` came by one), cheapest first.
            let cost = 1 - self.t(top, x);
            let lt = self.load[top];
            for i in 0..self.by_plus.len() {
                let y = self.by_plus[i];
                if self.on[top * e_count + y] != 0 || self.t(top, y) == 0 || !self.allowed(y, top) {
                    continue;
                }
                let top_new = vacated.base + self.pr_plus[y];
                // `by_plus` is sorted: every later `y` leaves the busiest GPU busier, so its
                // bound is lower.
                let bound = Bound {
                    max,
                    peak: top_new,
                    untouched: 0.0,
                    squares: lt * lt - top_new * top_new + relief_max,
                };
                if top_new >= max || !can_beat(&best, self.rule, bound, cost) {
                    break;
                }
                self.offer_replace_top(&mut best, vacated, y, max, room, order);
            }
        }
        // The GPUs that trade with the busiest one below: the lightest `partners` it may
        // trade with (under the hierarchical policy every expert it holds lives on its node),
        // in index order, each with what the steps below read of its slots.
        let mut partners = std::mem::take(&mut self.partner_gpus);
        partners.clear();
        partners.extend(
            order
                .iter()
                .rev()
                .copied()
                .filter(|&h| h != top && (self.home.is_none() || self.node[h] == self.node[top]))
                .take(self.partners),
        );
        partners.sort_unstable();
        let mut gpus = std::mem::take(&mut self.partner_info);
        gpus.clear();
        let mut cells = std::mem::take(&mut self.partner_slots);
        cells.clear();
        let mut moving = std::mem::take(&mut self.movable_slots);
        moving.clear();
        for &h in &partners {
            let mut info = PartnerGpu {
                gpu: h,
                swap_in: 1,
                least_without: f64::INFINITY,
                refund: 0,
                movable: moving.len()..moving.len(),
                floor: order[1..]
                    .iter()
                    .find(|&&g| g != h)
                    .map_or(0.0, |&g| self.load[g]),
            };
            for slot in h * self.slots..(h + 1) * self.slots {
                let e = self.phy[slot];
                let spare = self.cnt[e] >= 2;
                let (t_h, t_top) = (self.t(h, e), self.t(top, e));
                // Per GPU `h`: the least a replica on `h` costs to take to the busiest GPU,
                // less what it cost to bring to `h` (-1, 0 or 1): a lower bound on the cost
                // of the swaps below.
                info.swap_in = info.swap_in.min(t_top - t_h);
                let (hx, nx) = (
                    self.on[h * e_count + e] as f64,
                    self.on[top * e_count + e] as f64,
                );
                let movable = spare && self.first[slot];
                // Only read for spare experts (`pr_minus` is infinite below two replicas).
                let (top_loss, h_without) = if spare {
                    (
                        nx * (self.pr_minus[e] - self.pr[e]),
                        self.load[h] + (hx - 1.0) * self.pr_minus[e] - hx * self.pr[e],
                    )
                } else {
                    (0.0, 0.0)
                };
                let cell = PartnerSlot {
                    slot,
                    expert: e,
                    pr: self.pr[e],
                    t_h,
                    t_top,
                    to_top: self.first[slot] && self.allowed(e, top),
                    top_loss,
                    h_without,
                    rise: if movable {
                        self.x_rise_off(e, [h, top])
                    } else {
                        Rise {
                            load: 0.0,
                            at: usize::MAX,
                        }
                    },
                };
                if movable {
                    info.least_without = info.least_without.min(h_without);
                    info.refund = info.refund.max(t_h);
                    moving.push(cell);
                }
                cells.push(cell);
            }
            info.movable.end = moving.len();
            gpus.push(info);
        }
        self.offer_replace_elsewhere(&mut best, max, room, order, &ys, &gpus, &moving);
        self.offer_swaps(&mut best, max, room, order, &gpus, &cells);
        self.ys = ys;
        self.partner_gpus = partners;
        self.partner_info = gpus;
        self.partner_slots = cells;
        self.movable_slots = moving;
        best
    }

    /// Offers every step that writes an expert `y` of the busiest GPU `order[0]` (`ys`)
    /// over a movable replica of a partner (`gpus`, their movable slots `movable`: the first
    /// on their GPU of experts with a replica to spare).
    #[allow(clippy::too_many_arguments)]
    fn offer_replace_elsewhere(
        &mut self,
        best: &mut Option<Candidate>,
        max: f64,
        room: isize,
        order: &[usize],
        ys: &[usize],
        gpus: &[PartnerGpu],
        movable: &[PartnerSlot],
    ) {
        let top = order[0];
        let e_count = self.experts;
        // Replace a replica elsewhere by an expert the busiest GPU holds.
        for &y in ys {
            let ny = self.on[top * e_count + y] as f64;
            let y_drop = ny * (self.pr[y] - self.pr_plus[y]);
            // Losing a replica elsewhere never makes the busiest GPU lighter.
            if !promising(best, max - (self.load[top] - y_drop) + max * SLACK, -1) {
                continue;
            }
            let lt = self.load[top];
            let top_base = lt - y_drop;
            for info in gpus {
                let h = info.gpu;
                if !self.allowed(y, h) {
                    continue;
                }
                // `h` gains its share of `y` and loses one of its movable replicas: its new
                // load is at least `h_floor` (the same sums as below, the least first).
                let hy = self.on[h * e_count + y] as f64;
                let (y_plus, y_less) = ((hy + 1.0) * self.pr_plus[y], hy * self.pr[y]);
                let h_floor = info.least_without + y_plus - y_less;
                if h_floor >= max || !promising(best, max - h_floor + max * SLACK, -1) {
                    continue;
                }
                // The busiest GPU is at least as heavy as without `x`'s effect on it, `h` at
                // least `h_floor`, every GPU but those two and `y`'s holders at least as heavy
                // as now (`x`'s holders get heavier); the cost is at least what adding `y` to
                // `h` costs, less one when a movable replica on `h` came by a transfer.
                let lh = self.load[h];
                let (top_floor, h_floor) = (top_base, h_floor.max(0.0));
                let untouched = order[1..]
                    .iter()
                    .find(|&&g| g != h && !self.holds(g, y))
                    .map_or(0.0, |&g| self.load[g]);
                let bound = Bound {
                    max,
                    peak: top_floor.max(h_floor),
                    untouched,
                    squares: lt * lt - top_floor * top_floor + lh * lh - h_floor * h_floor
                        + self.relief[y],
                };
                let t_hy = self.t(h, y);
                if !can_beat(best, self.rule, bound, t_hy - info.refund) {
                    continue;
                }
                for cell in &movable[info.movable.clone()] {
                    let x = cell.expert;
                    if x == y {
                        continue;
                    }
                    let cost = t_hy - cell.t_h;
                    if cost > room {
                        continue;
                    }
                    let top_new = top_base + cell.top_loss;
                    let h_new = cell.h_without + y_plus - y_less;
                    let peak = top_new.max(h_new);
                    if top_new >= max
                        || h_new >= max
                        || !promising(best, max - peak + max * SLACK, cost)
                    {
                        continue;
                    }
                    // (`cell.rise` leaves the busiest GPU out: `top_new` bounds its load.)
                    let peak = peak.max(self.x_rise_from(cell.rise, x, h, y));
                    // The peak alone first; the busiest untouched GPU only when it passes.
                    if peak >= max || !promising(best, max - peak + max * SLACK, cost) {
                        continue;
                    }
                    let bound = Bound {
                        max,
                        peak,
                        untouched: self.untouched(order, h, x, y),
                        squares: lt * lt - top_new * top_new + lh * lh - h_new * h_new
                            + self.relief[y],
                    };
                    if !can_beat(best, self.rule, bound, cost) {
                        continue;
                    }
                    if let Some(gains) = self.replace(h, x, y, max, order) {
                        self.offer(best, Writes::one(cell.slot, y), cost, gains);
                    }
                }
            }
        }
    }

    /// Offers every swap of a replica of the busiest GPU `order[0]` with one of a partner
    /// (`gpus`, their slots `cells`).
    fn offer_swaps(
        &mut self,
        best: &mut Option<Candidate>,
        max: f64,
        room: isize,
        order: &[usize],
        gpus: &[PartnerGpu],
        cells: &[PartnerSlot],
    ) {
        let top = order[0];
        // Swap a replica of the busiest GPU with one elsewhere.
        for a in top * self.slots..(top + 1) * self.slots {
            if !self.first[a] {
                continue;
            }
            let x = self.phy[a];
            let px = self.pr[x];
            let t_top_x = self.t(top, x);
            for (i, info) in gpus.iter().enumerate() {
                let h = info.gpu;
                // A swap leaves `h` busier than now (`y` is lighter than `x`).
                if !self.allowed(x, h) || !promising(best, max - self.load[h] + max * SLACK, -1) {
                    continue;
                }
                // The peak and the drop of the squares as `swap_bounds` bounds them; the cost
                // is at least what moving `x` costs plus `swap_in`.
                let (lt, lh) = (self.load[top], self.load[h]);
                // The busiest GPU outside the two bounds the new max from below.
                let floor = info.floor;
                let (peak, squares) = swap_bounds(lt, lh, px);
                let bound = Bound {
                    max,
                    peak,
                    untouched: floor,
                    squares,
                };
                let t_hx = self.t(h, x);
                let cost = t_hx - t_top_x + info.swap_in;
                if !can_beat(best, self.rule, bound, cost) {
                    continue;
                }
                for cell in &cells[i * self.slots..(i + 1) * self.slots] {
                    let y = cell.expert;
                    let py = cell.pr;
                    if x == y || py >= px || !cell.to_top {
                        continue;
                    }
                    let cost = cell.t_top + t_hx - t_top_x - cell.t_h;
                    if cost > room {
                        continue;
                    }
                    let (top_new, h_new) = (lt - px + py, lh - py + px);
                    let peak = top_new.max(h_new);
                    if !promising(best, max - peak + max * SLACK, cost) {
                        continue;
                    }
                    let bound = Bound {
                        max,
                        peak,
                        untouched: floor,
                        squares: lt * lt - top_new * top_new + lh * lh - h_new * h_new,
                    };
                    if !can_beat(best, self.rule, bound, cost) {
                        continue;
                    }
                    self.begin();
                    self.touch(top, py - px);
                    self.touch(h, px - py);
                    if let Some(gains) = self.judge(max, order) {
                        self.offer(best, Writes::two((a, y), (cell.slot, x)), cost, gains);
                    }
                }
            }
        }
    }

    /// Offers writing `y` over the replica of `vacated.x` in `vacated.slot` of the busiest
    /// GPU (`order[0]`).
    fn offer_replace_top(
        &mut self,
        best: &mut Option<Candidate>,
        vacated: Vacated,
        y: usize,
        max: f64,
        room: isize,
        order: &[usize],
    ) {
        let top = order[0];
        let Vacated {
            slot,
            x,
            base,
            rise,
        } = vacated;
        if y == x || !self.allowed(y, top) {
            return;
        }
        let cost = self.t(top, y) - self.t(top, x);
        if cost > room {
            return;
        }
        let ny = self.on[top * self.experts + y] as f64;
        let top_new = base + (ny + 1.0) * self.pr_plus[y] - ny * self.pr[y];
        if top_new >= max || !promising(best, max - top_new + max * SLACK, cost) {
            return;
        }
        let peak = top_new.max(self.x_rise_from(rise, x, top, y));
        // The peak alone first; the busiest untouched GPU only when it passes.
        if peak >= max || !promising(best, max - peak + max * SLACK, cost) {
            return;
        }
        let bound = Bound {
            max,
            peak,
            untouched: self.untouched(order, top, x, y),
            squares: self.load[top] * self.load[top] - top_new * top_new + self.relief[y],
        };
        if !can_beat(best, self.rule, bound, cost) {
            return;
        }
        if let Some(gains) = self.replace(top, x, y, max, order) {
            self.offer(best, Writes::one(slot, y), cost, gains);
        }
    }

    /// The largest new load of the GPUs other than `skip` that hold `x`, when `x` loses a
    /// replica and `y` gains one: the new loads of GPUs a step writing `y` over a replica of
    /// `x` on `skip` touches, summed as [`Search::replace`] sums them (`x`'s change, then
    /// `y`'s on the GPUs holding it too), so their max is a lower bound on the step's touched
    /// peak.
    fn x_rise(&self, x: usize, skip: usize, y: usize) -> f64 {
        let (dx, dy) = (self.pr_minus[x] - self.pr[x], self.pr_plus[y] - self.pr[y]);
        self.holders
            .of(x)
            .iter()
            .filter(|&&h| h != skip)
            .map(|&h| {
                let load = self.load[h] + f64::from(self.on[h * self.experts + x]) * dx;
                match self.on[h * self.experts + y] {
                    0 => load,
                    ny => load + f64::from(ny) * dy,
                }
            })
            .fold(0.0, f64::max)
    }

    /// The largest new load of the GPUs other than `skip` that hold `x`, when `x` loses a
    /// replica (and the GPU reaching it).
    fn x_rise_off(&self, x: usize, skip: [usize; 2]) -> Rise {
        let d = self.pr_minus[x] - self.pr[x];
        let mut rise = Rise {
            load: 0.0,
            at: usize::MAX,
        };
        for &h in self.holders.of(x) {
            let load = self.load[h] + f64::from(self.on[h * self.experts + x]) * d;
            if !skip.contains(&h) && load > rise.load {
                rise = Rise { load, at: h };
            }
        }
        rise
    }

    /// A lower bound on the touched peak of writing `y` over a replica of `x` on `skip`, from
    /// `rise`, [`Search::x_rise_off`]`(x, [skip, ..])` (`y` held by the other GPU skipped or
    /// not): `rise`'s load when the GPU reaching it does not hold `y` (that GPU's new load;
    /// every other GPU holding `x` gets no heavier than with `x`'s change alone, `y`'s
    /// holders lighter), else [`Search::x_rise`], read again.
    fn x_rise_from(&self, rise: Rise, x: usize, skip: usize, y: usize) -> f64 {
        #[cfg(test)]
        if self.loose {
            return 0.0;
        }
        if rise.at == usize::MAX || self.on[rise.at * self.experts + y] == 0 {
            rise.load
        } else {
            self.x_rise(x, skip, y)
        }
    }

    /// Sets [`Search::relief`]: for every expert, the drop of the sum of its holders' squared
    /// loads when it gains a replica (an upper bound on that part of a step's
    /// [`TieBreak::Squares`] score, whatever else the step does to those GPUs).
    fn set_relief(&mut self) {
        for i in 0..self.stale.len() {
            let e = self.stale[i];
            self.relief_stale[e] = false;
            let d = self.pr[e] - self.pr_plus[e];
            self.relief[e] = self
                .holders
                .of(e)
                .iter()
                .map(|&h| {
                    let (l, n) = (self.load[h], f64::from(self.on[h * self.experts + e]));
                    l * l - (l - n * d) * (l - n * d)
                })
                .sum();
        }
        self.stale.clear();
    }

    /// Marks `e`'s [`Search::relief`] stale.
    fn make_stale(&mut self, e: usize) {
        if !self.relief_stale[e] {
            self.relief_stale[e] = true;
            self.stale.push(e);
        }
    }

    /// The load of the busiest live GPU other than `g` and the GPUs holding `x` or `y`
    /// (`order` lists the live GPUs busiest first): the new max of a replacement on `g`
    /// is at least this.
    fn untouched(&self, order: &[usize], g: usize, x: usize, y: usize) -> f64 {
        order
            .iter()
            .find(|&&h| h != g && !self.holds(h, x) && !self.holds(h, y))
            .map_or(0.0, |&h| self.load[h])
    }

    /// The gains of writing `y` over a replica of `x` on GPU `g`.
    fn replace(
        &mut self,
        g: usize,
        x: usize,
        y: usize,
        max: f64,
        order: &[usize],
    ) -> Option<(f64, f64)> {
        self.begin();
        // Every holder of x (g included) at the new count, then g loses one x ...
        self.recount(x, self.pr_minus[x] - self.pr[x]);
        self.touch(g, -self.pr_minus[x]);
        // ... every holder of y at the new count, then g gains one y.
        self.recount(y, self.pr_plus[y] - self.pr[y]);
        self.touch(g, self.pr_plus[y]);
        self.judge(max, order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Cluster;

    /// A deterministic pseudo-random sequence (no test dependency needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    /// A feasible placement: every expert once, the other slots random, shuffled.
    fn placement(rng: &mut Lcg, experts: usize, slots: usize) -> LayerPlacement {
        let mut phy: Vec<usize> = (0..experts).collect();
        phy.extend((experts..slots).map(|_| rng.next(experts)));
        for i in (1..phy.len()).rev() {
            phy.swap(i, rng.next(i + 1));
        }
        LayerPlacement::from_phy2log(phy)
    }

    /// [`search_with`] where replicas may share a GPU.
    fn shared_run(
        layer: &LayerProblem<'_>,
        current: &LayerPlacement,
        budget: usize,
        live: &LiveGpus,
        variant: Variant,
        prefix: &[Writes],
    ) -> SearchResult {
        let replicas = Replicas::MayShareGpu;
        search_with(layer, current, budget, live, replicas, variant, prefix)
    }

    /// Checks every incremental field of `s` against a recount from its slots.
    fn assert_matches_recount(s: &Search<'_>, held: &LayerPlacement) {
        let (p, e_count) = (s.cluster.gpus, s.experts);
        let mut cnt = vec![0; e_count];
        let mut on = vec![0u32; p * e_count];
        let mut holders = vec![Vec::new(); e_count];
        let mut transfers = 0;
        for (slot, &e) in s.phy.iter().enumerate() {
            let g = slot / s.slots;
            cnt[e] += 1;
            on[g * e_count + e] += 1;
            if holders[e].last() != Some(&g) {
                holders[e].push(g);
            }
            let before = &held.phy2log()[g * s.slots..(g + 1) * s.slots];
            transfers += usize::from(!before.contains(&e));
        }
        let lists: Vec<Vec<usize>> = (0..e_count).map(|e| s.holders.of(e).to_vec()).collect();
        assert_eq!((&s.cnt, &s.on, &lists), (&cnt, &on, &holders));
        for (slot, &e) in s.phy.iter().enumerate() {
            let gpu_start = slot - slot % s.slots;
            assert_eq!(
                s.first[slot],
                !s.phy[gpu_start..slot].contains(&e),
                "slot {slot}"
            );
        }
        assert_eq!(s.transfers, transfers);
        for (g, &load) in s.load.iter().enumerate() {
            let slots = &s.phy[g * s.slots..(g + 1) * s.slots];
            let expected = bin_load(slots.iter().map(|&e| s.loads[e] / cnt[e] as f64));
            assert_eq!(load.to_bits(), expected.to_bits(), "GPU {g}");
        }
        for (e, &c) in cnt.iter().enumerate() {
            assert_eq!(s.pr[e], s.loads[e] / c as f64);
            assert_eq!(s.pr_plus[e], s.loads[e] / (c + 1) as f64);
        }
        let mut by_plus = s.by_plus.clone();
        by_plus.sort_by(|&a, &b| s.pr_plus[a].total_cmp(&s.pr_plus[b]).then(a.cmp(&b)));
        assert_eq!(s.by_plus, by_plus);
    }

    /// A random global layer (loads, cluster) and current placement: up to 16 experts on up
    /// to 15 GPUs (more than [`PARTNERS`] + 1) of 3 to 5 slots.
    /// A fresh search from `current` for every variant of every round, as `run` sets it up.
    fn variant_searches<'a>(
        layer: &'a LayerProblem<'a>,
        current: &'a LayerPlacement,
        live: &'a LiveGpus,
    ) -> Vec<Search<'a>> {
        let base = Search::new(layer, current, live);
        ROUNDS
            .iter()
            .flat_map(|(_, variants)| variants.iter())
            .map(|variant| {
                let mut s = base.clone();
                s.rule = variant.rule;
                s.partners = variant.partners;
                s
            })
            .collect()
    }

    fn random_case(rng: &mut Lcg) -> (Vec<f64>, Cluster, LayerPlacement) {
        loop {
            let (experts, gpus, per_gpu) = (6 + rng.next(10), 2 + rng.next(14), 3 + rng.next(3));
            let cluster = Cluster::new(gpus * per_gpu, gpus);
            if cluster.replicas >= experts {
                let loads = (0..experts).map(|_| rng.next(1000) as f64 / 7.0).collect();
                return (loads, cluster, placement(rng, experts, cluster.replicas));
            }
        }
    }

    /// The swap bounds hold for every swap: random loads, the swapped replicas' loads `py <
    /// px` (as the search's swaps), the new loads computed as the search computes them.
    #[test]
    fn the_swap_bounds_hold_for_every_swap() {
        let mut rng = Lcg(23);
        let mut cut = 0;
        for _ in 0..20_000 {
            let unit = |rng: &mut Lcg| rng.next(1_000_000) as f64 / 997.0;
            let (a, b) = (unit(&mut rng), unit(&mut rng));
            let (lt, lh) = (a.max(b), a.min(b));
            let px = unit(&mut rng).min(lt);
            let py = px * rng.next(1000) as f64 / 1000.0;
            let (top_new, h_new) = (lt - px + py, lh - py + px);
            let peak = top_new.max(h_new);
            let squares = lt * lt - top_new * top_new + lh * lh - h_new * h_new;
            let (peak_floor, squares_cap) = swap_bounds(lt, lh, px);
            let slack = lt * SLACK;
            assert!(peak_floor <= peak + slack, "{lt} {lh} {px} {py}");
            assert!(squares <= squares_cap + slack * lt, "{lt} {lh} {px} {py}");
            // The tighter bounds do bind (the mean and half the squared difference alone
            // are looser).
            let half = 0.5 * (lt - lh);
            cut += usize::from(peak_floor > 0.5 * (lt + lh) || squares_cap < half * (lt - lh));
        }
        assert!(cut > 0);
    }

    /// The steps the rise bounds ([`Search::x_rise_from`]) skip never change the step chosen:
    /// on random layers, every step of every round's variant equals the step of the same scan
    /// without them (writes and score to the bit), and those bounds do skip steps.
    #[test]
    fn the_rise_bounds_never_change_the_step_chosen() {
        let mut rng = Lcg(41);
        let (mut steps, mut skipped) = (0, 0);
        for case in 0..150 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            for mut s in variant_searches(&layer, &current, &live) {
                let budget = 1 + rng.next(8);
                loop {
                    let mut full = s.clone();
                    full.loose = true;
                    let (now, reference) = (s.now, full.now);
                    let (step, expected) = (s.best_step(budget), full.best_step(budget));
                    // Every evaluation stamps once: the bounded scan evaluates fewer.
                    skipped += (full.now - reference) - (s.now - now);
                    let key = |c: &Option<Candidate>| {
                        c.map(|c| {
                            let writes = c.writes.as_slice().to_vec();
                            (writes, c.score.0.to_bits(), c.score.1.to_bits())
                        })
                    };
                    assert_eq!(key(&step), key(&expected), "case {case} step {steps}");
                    let Some(step) = step else {
                        break;
                    };
                    s.apply(step.writes.as_slice());
                    steps += 1;
                }
            }
        }
        assert!(
            steps > 1000 && skipped > 0,
            "{steps} steps, {skipped} skipped"
        );
    }

    #[test]
    fn every_step_leaves_the_state_a_recount_would_give() {
        let mut rng = Lcg(7);
        for case in 0..60 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            for mut s in variant_searches(&layer, &current, &live) {
                let budget = rng.next(6);
                let mut steps = 0;
                while let Some(step) = s.best_step(budget) {
                    let before = s.max();
                    s.apply(step.writes.as_slice());
                    assert_matches_recount(&s, &current);
                    // The relief kept up to date by the stale experts is a full recount's.
                    s.set_relief();
                    let kept = s.relief.clone();
                    s.stale = (0..s.experts).collect();
                    s.set_relief();
                    assert_eq!(kept, s.relief, "case {case}: relief");
                    assert!(s.max() <= before, "case {case}: the max rose");
                    assert!(s.transfers <= budget, "case {case}: over budget");
                    steps += 1;
                    assert!(steps <= STEPS_PER_SLOT * cluster.replicas);
                }
            }
        }
    }

    /// The kept search is never worse than any search of the rounds that ran: the first
    /// round's, and a later round's while the best so far ends above its threshold (the wide
    /// round's from the best search so far less its last steps, [`wide_start`]).
    #[test]
    fn the_kept_search_is_never_worse_than_the_rounds_that_ran() {
        let mut rng = Lcg(11);
        let (mut wide_rounds, mut wide_late) = (0, 0);
        for _ in 0..80 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            let budget = 1 + rng.next(8);
            let bound = crate::bounds::proven_lower_bound(&layer);
            let kept = search(
                &layer,
                &current,
                budget,
                &live,
                Replicas::MayShareGpu,
                SearchEffort::Thorough,
                bound,
            );
            let end = |r: &SearchResult| *r.curve.last().unwrap();
            // The rounds again, each search as `search` runs it (partners capped by the
            // GPUs, a variant run once, the wide round from late in the best search so far).
            let mut best: Option<SearchResult> = None;
            let mut ran: Vec<Variant> = Vec::new();
            for (round, &(above, variants)) in ROUNDS.iter().enumerate() {
                for &variant in variants {
                    if best
                        .as_ref()
                        .is_some_and(|b| end(b).max_load <= bound * (1.0 + above))
                    {
                        break;
                    }
                    let variant = Variant {
                        partners: variant.partners.min(cluster.gpus - 1),
                        ..variant
                    };
                    if ran.contains(&variant) {
                        continue;
                    }
                    ran.push(variant);
                    let wide = round + 1 == ROUNDS.len();
                    wide_rounds += usize::from(wide);
                    let prefix = match &best {
                        Some(b) if wide => wide_start(&b.steps).to_vec(),
                        _ => Vec::new(),
                    };
                    wide_late += usize::from(!prefix.is_empty());
                    let other = search_with(
                        &layer,
                        &current,
                        budget,
                        &live,
                        Replicas::MayShareGpu,
                        variant,
                        &prefix,
                    );
                    assert!(end(&kept).max_load <= end(&other).max_load, "{variant:?}");
                    keep_better(&mut best, other);
                }
            }
            assert!(end(&kept).transfers <= budget);
            // The placement is the curve's last point.
            let replayed = kept.prefix(&current, kept.steps());
            assert_eq!(replayed, kept.placement);
            assert_eq!(
                crate::evaluate::max_gpu_load(&layer, &replayed),
                end(&kept).max_load
            );
        }
        assert!(wide_rounds > 0, "no case exercised the wide round");
        assert!(wide_late > 0, "no wide round replayed steps");
    }

    /// The quick effort is the first two rounds: its answer is the better of their two
    /// searches (the second only when the first ends above its threshold), and the thorough
    /// effort's answer is never worse; on layers the quick search leaves above the wide
    /// round's threshold the thorough one searches on, and sometimes ends lower.
    #[test]
    fn the_quick_effort_keeps_the_first_two_rounds_and_the_thorough_one_is_never_worse() {
        let mut rng = Lcg(17);
        let mut lower_when_thorough = 0;
        for _ in 0..80 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            let budget = 1 + rng.next(8);
            let run = |effort| {
                search(
                    &layer,
                    &current,
                    budget,
                    &live,
                    Replicas::MayShareGpu,
                    effort,
                    crate::bounds::proven_lower_bound(&layer),
                )
            };
            let (quick, thorough) = (run(SearchEffort::Quick), run(SearchEffort::Thorough));
            let end = |r: &SearchResult| *r.curve.last().unwrap();
            let bound = crate::bounds::proven_lower_bound(&layer);
            let scope = cluster.gpus - 1;
            let variant = |round: usize| Variant {
                partners: ROUNDS[round].1[0].partners.min(scope),
                ..ROUNDS[round].1[0]
            };
            let by = |v: Variant| shared_run(&layer, &current, budget, &live, v, &[]);
            let mut expected = Some(by(variant(0)));
            if end(expected.as_ref().unwrap()).max_load > bound * (1.0 + ROUNDS[1].0) {
                keep_better(&mut expected, by(variant(1)));
            }
            let expected = expected.unwrap();
            assert_eq!(end(&quick), end(&expected));
            assert_eq!(quick.placement, expected.placement);
            assert!(end(&thorough).max_load <= end(&quick).max_load);
            assert!(end(&thorough).transfers <= budget);
            if end(&quick).max_load <= bound * (1.0 + WIDE_SEARCH_ABOVE_BOUND) {
                assert_eq!(thorough.placement, quick.placement);
            }
            lower_when_thorough += usize::from(end(&thorough).max_load < end(&quick).max_load);
        }
        assert!(
            lower_when_thorough > 0,
            "no case where the thorough effort ends lower"
        );
    }

    /// A restart replays its prefix exactly (the same curve and steps as the search it came
    /// from), then searches on: within the budget, the max never rising, its placement the
    /// replay of all its steps, and the incremental state a recount's. Restarted with the
    /// variant that took the prefix, it takes the same steps again (the search is
    /// deterministic), so the restarts of [`search`] skip that variant.
    #[test]
    fn a_restart_replays_its_prefix_then_searches_on() {
        let mut rng = Lcg(13);
        for _ in 0..60 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            let budget = 1 + rng.next(8);
            let (first, wide) = (ROUNDS[0].1[0], ROUNDS[2].1[0]);
            let run = |v: Variant, prefix: &[Writes]| {
                shared_run(&layer, &current, budget, &live, v, prefix)
            };
            let base = run(first, &[]);
            let k = rng.next(base.steps() + 1);
            assert_eq!(run(first, &base.steps[..k]), base);
            let restart = run(wide, &base.steps[..k]);
            assert_eq!(&restart.curve[..=k], &base.curve[..=k]);
            assert_eq!(&restart.steps[..k], &base.steps[..k]);
            for pair in restart.curve.windows(2) {
                assert!(pair[1].max_load <= pair[0].max_load);
                assert!(pair[1].transfers <= budget);
            }
            let replayed = restart.prefix(&current, restart.steps());
            assert_eq!(replayed, restart.placement);
            assert_eq!(
                crate::evaluate::max_gpu_load(&layer, &replayed),
                restart.end().max_load
            );
            // The state after the replay is the one a recount gives.
            let mut s = Search::new(&layer, &current, &live);
            for writes in &base.steps[..k] {
                s.apply(writes.as_slice());
            }
            assert_matches_recount(&s, &current);
        }
    }

    /// What [`search`] skips a restart on: a variant restarted after a prefix of a path it
    /// chose past its own replayed prefix ([`Path::continues`]) takes that path's steps
    /// again and ends where it ended; after a shorter prefix (inside what the path replayed)
    /// or with another variant the path does not apply.
    #[test]
    fn a_restart_along_a_path_its_variant_chose_ends_where_the_path_ended() {
        let mut rng = Lcg(29);
        for _ in 0..60 {
            let (loads, cluster, current) = random_case(&mut rng);
            let layer = LayerProblem::new(0, &loads, &cluster, Policy::Global).unwrap();
            let live = LiveGpus::all(cluster.gpus);
            let budget = 1 + rng.next(8);
            let (first, wide) = (ROUNDS[0].1[0], ROUNDS[2].1[1]);
            let run = |v: Variant, prefix: &[Writes]| {
                shared_run(&layer, &current, budget, &live, v, prefix)
            };
            let base = run(first, &[]);
            let k = rng.next(base.steps() + 1);
            let restart = run(wide, &base.steps[..k]);
            let path = Path::of(&restart, k);
            let j = k + rng.next(restart.steps() - k + 1);
            assert!(path.continues(wide, &restart.steps[..j]));
            assert_eq!(run(wide, &restart.steps[..j]), restart);
            assert!(!path.continues(first, &restart.steps[..j]));
            if k > 0 {
                assert!(!path.continues(wide, &restart.steps[..k - 1]));
            }
        }
    }
}
