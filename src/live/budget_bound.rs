//! A lower bound on the max GPU load of any placement within a transfer budget of the current
//! one ([`budgeted_lower_bound`]).

use crate::bounds::{proven_lower_bound, EXACT_TOTAL};
use crate::error::{EplbError, Result};
use crate::placement::LayerPlacement;
use crate::problem::LayerProblem;

/// Bisection steps on `f64` loads (the interval shrinks below an ulp long before).
const BISECTION_STEPS: usize = 100;

/// A lower bound on the max GPU load of every placement of `layer` that needs at most `budget`
/// transfers from `current` (replicas on a GPU that held no replica of their expert in
/// `current`; local copies are free), never above the exact optimum of that budgeted problem
/// and at least the layer's [combinatorial bound](proven_lower_bound) (which holds for any
/// budget).
///
/// # Why it holds
///
/// Take a set `G` of GPUs and `X` the experts every current replica of which sits on `G`, of
/// total load `W_X`. In a new placement with max load `T` and at most `K` transfers:
///
/// - a replica of an expert of `X` on a GPU outside `G` is a transfer (that GPU never held it);
/// - a replica of expert `e` carries `w_e / c_e`, at most its GPU's load `T`, and all of
///   `e`'s replicas together carry `w_e`: `t_e` transfers of `e` carry at most
///   `min(w_e, t_e T)`;
/// - so the load of `X` outside `G` is at most `Rem(T) = max { sum_e min(w_e, t_e T) :
///   sum_e t_e <= K }`, and at most `(P - |G|) T` (each GPU carries at most `T`);
/// - the rest of `X`'s load is on `G`, whose `|G|` GPUs carry at most `|G| T`.
///
/// Hence `F(T) = W_X - min(Rem(T), (P - |G|) T) - |G| T <= 0`. `F` strictly decreases (`Rem`
/// does not decrease in `T`), so `T` is at least the root of `F`. `Rem` is a separable concave
/// allocation (expert `e` gains `T` per transfer up to `floor(w_e / T)` transfers, then its
/// remainder once), so the greedy choice of the `K` largest gains computes it exactly. Nothing
/// else is assumed: the group rules of the hierarchical policy, distinct replicas and slot
/// counts only remove placements, so the bound holds under them too. The sets `G` tried are
/// the `j` GPUs the current placement loads most under the new loads, `j = 1 .. P - 1`.
///
/// A second argument shares the budget between GPUs: the experts GPU `g` alone holds (total
/// `W_g`) leave it only through their own transfers, `t_g` of them moving at most
/// `Rem_g(T, t_g)` (the same greedy sum, for `G = {g}`), so `t_g >= need_g(T)`, the fewest
/// transfers with `W_g - Rem_g(T, t_g) <= T`; different GPUs' exclusive experts have
/// different transfers, so `sum_g need_g(T) <= K`. Every `need_g` is non-increasing in `T`,
/// so when the sum just left of `T` (the transfers that bring every `W_g` strictly below
/// `T`) exceeds `K`, no max load below `T` is reachable: `T` is a lower bound. A bisection
/// finds the largest such `T` it can.
///
/// The bound is the largest of the two and the combinatorial bound.
///
/// # Rounding
///
/// On integer loads summing to at most `2^53` every candidate root is a quotient `S / k` of
/// an integer sum of loads by an integer; `F(S / k) >= 0` is checked in exact integer
/// arithmetic, and the reported value is `S / k` when the `f64` quotient is exact, else the
/// next `f64` below it. Otherwise (or when no candidate checks) the value is the largest `T`
/// the bisection found with `F(T)` above its worst rounding error (a margin of
/// `16 (E + K + P + 8) f64::EPSILON` times the sizes involved), so `F(T) > 0` and `T` lies
/// below the root. The GPU-by-GPU bound is judged exactly at the `f64` it reports (a dyadic
/// rational) on integer loads; otherwise at `(1 + 1e-9)` times it, far beyond the rounding
/// error of its sums.
///
/// # Errors
/// [`EplbError::InvalidPlacement`] when `current` has another number of slots than the
/// layer or an expert id out of range.
///
/// ```
/// use eplb::live::budgeted_lower_bound;
/// use eplb::{bounds::proven_lower_bound, Cluster, LayerPlacement, Loads, PolicyChoice, Problem};
/// // Expert 0 (load 6) fills GPU 0, the others are elsewhere; 4 GPUs x 2 slots.
/// let loads = Loads::from_rows(&[vec![6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])?;
/// let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global)?;
/// let layer = problem.layer(0);
/// let current = LayerPlacement::from_phy2log(vec![0, 0, 1, 2, 3, 4, 5, 6]);
/// // Without a budget: 12 / 4 = 3. With no transfer, GPU 0 keeps all of expert 0: 6.
/// assert_eq!(proven_lower_bound(&layer), 3.0);
/// assert_eq!(budgeted_lower_bound(&layer, &current, 0)?, 6.0);
/// // One transfer moves at most T of it away: 6 - T <= T, so T >= 3 (= the mean).
/// assert_eq!(budgeted_lower_bound(&layer, &current, 1)?, 3.0);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Complexity
/// `O(P E log E)` on integer loads (one root per set `G`, found by bisection on `f64` and
/// checked exactly), times the bisection's steps otherwise.
pub fn budgeted_lower_bound(
    layer: &LayerProblem<'_>,
    current: &LayerPlacement,
    budget: usize,
) -> Result<f64> {
    let cluster = layer.cluster();
    let (gpus, per_gpu, experts) = (cluster.gpus, cluster.slots_per_gpu(), layer.num_experts());
    let slots = current.phy2log();
    if slots.len() != cluster.replicas {
        return Err(EplbError::InvalidPlacement(format!(
            "the current placement has {} slots, the layer {} ({} GPUs x {per_gpu})",
            slots.len(),
            cluster.replicas,
            gpus
        )));
    }
    if let Some(&e) = slots.iter().find(|&&e| e >= experts) {
        return Err(EplbError::InvalidPlacement(format!(
            "the current placement holds expert {e}, but the layer has experts 0..{experts}"
        )));
    }
    let loads = layer.loads();
    let unbudgeted = proven_lower_bound(layer);
    let budget = budget.min(cluster.replicas);
    // The GPUs by their load under the current placement, heaviest first (this only chooses
    // the sets tried: no claim rests on it).
    let mut count = vec![0usize; experts];
    slots.iter().for_each(|&e| count[e] += 1);
    let gpu_load = |g: usize| -> f64 {
        slots[g * per_gpu..(g + 1) * per_gpu]
            .iter()
            .map(|&e| loads[e] / count[e] as f64)
            .sum()
    };
    let mut order: Vec<usize> = (0..gpus).collect();
    let gpu_loads: Vec<f64> = (0..gpus).map(gpu_load).collect();
    order.sort_by(|&a, &b| gpu_loads[b].total_cmp(&gpu_loads[a]).then(a.cmp(&b)));
    let mut rank = vec![0usize; gpus];
    for (r, &g) in order.iter().enumerate() {
        rank[g] = r;
    }
    // Expert e is in X(G_j) (G_j: the j heaviest GPUs) once j exceeds its last holder's rank.
    let mut last = vec![None::<usize>; experts];
    for (slot, &e) in slots.iter().enumerate() {
        let r = rank[slot / per_gpu];
        last[e] = Some(last[e].map_or(r, |l: usize| l.max(r)));
    }
    let mut joins: Vec<Vec<usize>> = vec![Vec::new(); gpus];
    for (e, l) in last.iter().enumerate() {
        if let Some(l) = l {
            joins[*l].push(e);
        }
    }
    let integral = loads.iter().all(|&w| w.fract() == 0.0) && layer.total_load() <= EXACT_TOTAL;
    // Per GPU: the loads of the experts it alone holds.
    let mut exclusive: Vec<Vec<f64>> = vec![Vec::new(); gpus];
    let mut holders = vec![(usize::MAX, 0usize); experts];
    for (slot, &e) in slots.iter().enumerate() {
        let g = slot / per_gpu;
        if holders[e].0 != g {
            holders[e] = (g, holders[e].1 + 1);
        }
    }
    for (e, &(g, distinct_gpus)) in holders.iter().enumerate() {
        // (Slots are grouped by GPU, so one GPU's slots count it once.)
        if distinct_gpus == 1 && loads[e] > 0.0 {
            exclusive[g].push(loads[e]);
        }
    }
    let per_gpu_bound = ExclusiveBound {
        exclusive: &exclusive,
        budget,
    };
    let mut best = unbudgeted.max(per_gpu_bound.bound(unbudgeted, integral));
    let mut members: Vec<f64> = Vec::new();
    for j in 1..gpus {
        members.extend(joins[j - 1].iter().map(|&e| loads[e]).filter(|&w| w > 0.0));
        let set = SetBound {
            loads: &members,
            inside: j,
            outside: gpus - j,
            budget,
        };
        let total: f64 = members.iter().sum();
        // The root is at most W_X / |G| (F(W_X / |G|) <= 0): skip sets that cannot help.
        if total / j as f64 <= best {
            continue;
        }
        best = best.max(set.root(integral));
    }
    Ok(best)
}

/// The bound of one set `G` of GPUs: the loads of its experts `X`, `|G|`, `P - |G|`, `K`.
struct SetBound<'a> {
    loads: &'a [f64],
    inside: usize,
    outside: usize,
    budget: usize,
}

impl SetBound<'_> {
    /// `F(T)` in `f64`, and the piece of `F` that holds at `T`: `(S, k)` with `F`'s root on
    /// that piece `S / k`, `S` a sum of loads of `X`.
    fn value(&self, t: f64) -> (f64, Piece) {
        let total: f64 = self.loads.iter().sum();
        let full: Vec<f64> = self.loads.iter().map(|&w| (w / t).floor()).collect();
        let units: f64 = full.iter().sum();
        let k = self.budget as f64;
        let (removable, piece) = if k <= units {
            (k * t, Piece::AllFull)
        } else {
            let mut rest: Vec<(f64, usize)> = self
                .loads
                .iter()
                .zip(&full)
                .enumerate()
                .map(|(e, (&w, &n))| (w - n * t, e))
                .filter(|&(r, _)| r > 0.0)
                .collect();
            rest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            rest.truncate(self.budget - units as usize);
            let taken: Vec<usize> = rest.iter().map(|&(_, e)| e).collect();
            (
                units * t + rest.iter().map(|&(r, _)| r).sum::<f64>(),
                Piece::Remainders(taken),
            )
        };
        let capacity = self.outside as f64 * t;
        if capacity <= removable {
            (total - capacity - self.inside as f64 * t, Piece::Capacity)
        } else {
            (total - removable - self.inside as f64 * t, piece)
        }
    }

    /// The root of `F`, proven below the exact one (see [`budgeted_lower_bound`]).
    fn root(&self, integral: bool) -> f64 {
        let total: f64 = self.loads.iter().sum();
        let terms = (self.loads.len() + self.budget + self.inside + self.outside + 8) as f64;
        let margin = |t: f64| {
            16.0 * terms
                * f64::EPSILON
                * (total + (self.inside + self.outside + self.budget) as f64 * t)
        };
        // F(lo) > margin(lo) holds throughout (F(0) = W_X); F(hi) <= 0 holds at W_X / |G|.
        let (mut lo, mut hi) = (0.0, total / self.inside as f64);
        for _ in 0..BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if self.value(mid).0 > margin(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if !integral {
            return lo;
        }
        // Integer loads: the pieces at both ends give candidate roots S / k, checked exactly.
        [lo, hi]
            .into_iter()
            .filter_map(|t| self.candidate(t))
            .filter(|&(s, k)| self.holds_at(s, k))
            .map(|(s, k)| quotient_below(s, k))
            .fold(lo, f64::max)
    }

    /// The root `S / k` of the piece of `F` that holds at `t`, in integers.
    fn candidate(&self, t: f64) -> Option<(i128, i128)> {
        if t <= 0.0 {
            return None;
        }
        let total: i128 = self.loads.iter().map(|&w| w as i128).sum();
        let (s, k) = match self.value(t).1 {
            Piece::Capacity => (total, (self.inside + self.outside) as i128),
            Piece::AllFull => (total, (self.inside + self.budget) as i128),
            Piece::Remainders(taken) => {
                // Full units of every expert but the taken remainders' experts, whose whole
                // load leaves G.
                let mut k = self.inside as i128;
                let mut s = total;
                for (e, &w) in self.loads.iter().enumerate() {
                    if taken.contains(&e) {
                        s -= w as i128;
                    } else {
                        k += (w / t).floor() as i128;
                    }
                }
                (s, k)
            }
        };
        // k is at most |G| plus the transfers near the root; a far larger one is refused, so
        // the exact check's products stay far from overflow.
        (s > 0 && k > 0 && k <= 1 << 40).then_some((s, k))
    }

    /// True when `F(S / k) >= 0` exactly (integer loads): `k F(S / k) = k W_X - min(k Rem,
    /// (P - |G|) S) - |G| S` with `k Rem` the greedy sum of the `K` largest unit gains, full
    /// units worth `S` and remainders `k w - n S`.
    fn holds_at(&self, s: i128, k: i128) -> bool {
        let loads: Vec<i128> = self.loads.iter().map(|&w| w as i128).collect();
        let total: i128 = loads.iter().sum();
        let full: i128 = loads.iter().map(|&w| k * w / s).sum();
        let budget = self.budget as i128;
        let removable = if budget <= full {
            budget * s
        } else {
            let mut rest: Vec<i128> = loads.iter().map(|&w| k * w % s).collect();
            rest.sort_unstable_by(|a, b| b.cmp(a));
            let extra = usize::try_from(budget - full).unwrap_or(usize::MAX);
            full * s + rest.iter().take(extra).sum::<i128>()
        };
        let removable = removable.min(self.outside as i128 * s);
        k * total - removable - self.inside as i128 * s >= 0
    }
}

/// The GPU-by-GPU bound: GPU `g` alone holds experts of total load `W_g`; the `t_g`
/// transfers of those experts move at most `Rem_g(T, t_g)` of it elsewhere (the set bound's
/// `Rem` for `G = {g}`), so `W_g - Rem_g(T, t_g) <= T` needs `t_g >= need_g(T)`, and the
/// transfers of different GPUs' experts are different transfers: `sum_g need_g(T) <= K`.
/// Every `need_g` is non-increasing in `T`, so every `T` where the sum just left of it
/// exceeds `K` is at most the budgeted optimum.
struct ExclusiveBound<'a> {
    /// Per GPU, the loads of the experts only it holds.
    exclusive: &'a [Vec<f64>],
    budget: usize,
}

impl ExclusiveBound<'_> {
    /// The largest `T` found (by bisection above `from`) where `sum_g need_g(T-) > K` holds
    /// (`need_g` just left of `T`: every max load below `T` is out of reach),
    /// or `from` when it fails there already: judged in exact integer arithmetic on integer
    /// loads, else in `f64` at `T (1 + delta)` with `delta` far above the rounding error.
    fn bound(&self, from: f64, integral: bool) -> f64 {
        let delta = 1e-9;
        let infeasible = |t: f64| -> bool {
            match integral.then(|| self.exceeds_exactly(t)).flatten() {
                Some(answer) => answer,
                None => self.needs_f64(t * (1.0 + delta)) > self.budget as f64,
            }
        };
        if from.is_nan() || from <= 0.0 || !infeasible(from) {
            return from;
        }
        let mut lo = from;
        let mut hi = self
            .exclusive
            .iter()
            .map(|x| x.iter().sum::<f64>())
            .fold(from, f64::max)
            * 2.0;
        for _ in 0..BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if infeasible(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// `sum_g need_g(t-)` in `f64` ([`need_below`]).
    fn needs_f64(&self, t: f64) -> f64 {
        self.exclusive
            .iter()
            .map(|loads| need_below(loads, t))
            .sum()
    }

    /// Whether `sum_g need_g(t-) > K` (see [`need_below`]), exactly (integer loads, `t` as the dyadic rational
    /// `m / 2^d` it is; `None` when the scaled numbers would not fit `i128`).
    fn exceeds_exactly(&self, t: f64) -> Option<bool> {
        let (m, d) = dyadic(t)?;
        let scale = |w: f64| -> Option<i128> { (w as i128).checked_shl(d) };
        let mut needed: i128 = 0;
        for loads in self.exclusive {
            let scaled: Vec<i128> = loads.iter().map(|&w| scale(w)).collect::<Option<_>>()?;
            needed += need_below(&scaled, m);
            if needed > self.budget as i128 {
                return Some(true);
            }
        }
        Some(false)
    }
}

/// The numbers [`need_below`] counts in: exact integers (loads scaled to a common
/// denominator) or `f64`.
trait Amount:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::iter::Sum
{
    const ZERO: Self;
    const ONE: Self;
    /// `floor(w / t)` for `w >= 0`, `t > 0`.
    fn units(w: Self, t: Self) -> Self;
}

impl Amount for i128 {
    const ZERO: Self = 0;
    const ONE: Self = 1;
    fn units(w: Self, t: Self) -> Self {
        w / t
    }
}

impl Amount for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn units(w: Self, t: Self) -> Self {
        (w / t).floor()
    }
}

/// Fewest transfers that bring a GPU whose exclusive experts weigh `loads` strictly below
/// `t > 0`: the full units worth `t` that are needed, then the largest remainders. This is
/// `need_g` just left of `t`: when it exceeds the budget summed over the GPUs, every max load
/// below `t` is out of reach, so `t` itself is a lower bound.
fn need_below<A: Amount>(loads: &[A], t: A) -> A {
    let total: A = loads.iter().copied().sum();
    if total < t {
        return A::ZERO;
    }
    let excess = total - t; // the units taken must move more than this
    let full: A = loads.iter().map(|&w| A::units(w, t)).sum();
    if full * t > excess {
        return A::units(excess, t) + A::ONE;
    }
    let mut rest: Vec<A> = loads.iter().map(|&w| w - A::units(w, t) * t).collect();
    rest.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
    let mut left = excess - full * t;
    let mut n = full;
    for r in rest {
        if left < A::ZERO {
            break;
        }
        left = left - r;
        n = n + A::ONE;
    }
    n
}

/// A positive finite `t` as `m / 2^d` (integers, `d <= 64`), when it is one.
fn dyadic(t: f64) -> Option<(i128, u32)> {
    if !(t.is_finite() && t > 0.0) {
        return None;
    }
    let bits = t.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = (bits & ((1 << 52) - 1)) as i128;
    let (mantissa, power) = if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), exponent - 1075)
    };
    if power >= 0 {
        // t = mantissa * 2^power, an integer (below 2^75 for the loads it is compared with).
        let m = mantissa.checked_shl(u32::try_from(power).ok().filter(|&p| p <= 64)?)?;
        Some((m, 0))
    } else {
        let d = u32::try_from(-power).ok().filter(|&d| d <= 64)?;
        Some((mantissa, d))
    }
}

/// Which piece of `F` holds at a point.
enum Piece {
    /// The GPUs outside `G` are full: `F(T) = W_X - P T`.
    Capacity,
    /// Every transfer moves a full `T`: `F(T) = W_X - (K + |G|) T`.
    AllFull,
    /// Every full unit, and these experts' remainders (their whole load leaves `G`).
    Remainders(Vec<usize>),
}

/// `s / k` as an `f64` never above it: the correctly rounded quotient when it is exact, else
/// the next `f64` below it (the rounded quotient is within half an ulp).
fn quotient_below(s: i128, k: i128) -> f64 {
    let (sf, kf) = (s as f64, k as f64);
    let q = sf / kf;
    // s and k are exact in f64 (s <= 2^53, k small): the fused residual is exact.
    if sf as i128 == s && kf as i128 == k && q.mul_add(kf, -sf) == 0.0 {
        q
    } else {
        q.next_down()
    }
}
