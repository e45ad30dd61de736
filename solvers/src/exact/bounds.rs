//! Lower bounds: the exact apportionment, the largest share, a count vector's copies in integer
//! units, and the order-statistics bound.

use super::*;

/// A bin's load in units: the sizes of its copies (distinct-size indices) added up — the one
/// bin sum of the exact search.
pub(super) fn bin_units(sizes: &[u64], bin: &[usize]) -> u64 {
    bin.iter().map(|&j| sizes[j]).sum()
}

/// The largest share `w_i / c_i`.
pub(super) fn max_share(weights: &[u64], counts: &[usize]) -> Fraction {
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
pub(super) struct Items {
    pub(super) scale: u64,
    /// Distinct copy sizes, descending.
    pub(super) sizes: Vec<u64>,
    /// Copies of each distinct size.
    pub(super) avail: Vec<u32>,
    /// `(unit size, item, copies)` sorted by size descending then item: who owns the copies
    /// of each distinct size, in order (expanded only when a packing is turned into slots).
    pub(super) copies: Vec<(u64, usize, usize)>,
    pub(super) total: u64,
}

impl Items {
    pub(super) fn build(weights: &[u64], counts: &[usize]) -> Option<Items> {
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
    pub(super) fn slots(&self, bins: &[Vec<usize>]) -> Vec<usize> {
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
pub(super) fn order_bound(
    sizes: &[u64],
    avail: &[u32],
    total: u64,
    bins: usize,
    per_bin: usize,
) -> u64 {
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
