//! Bin loads, summed one way: every engine that reports a bin load or a peak goes through
//! here, so that no two sums have to be kept equal by convention.

/// The load of one bin: the weights of its copies added one by one, in slot order, starting
/// from `0.0` — exactly how an evaluator that sums slot by slot (such as `eplb`'s) gets it, so
/// an engine's peak equals the evaluator's bit for bit.
///
/// ```
/// use eplb_solvers::loads::bin_load;
/// assert_eq!(bin_load([1.5, 2.0, 0.25]), 3.75);
/// assert_eq!(bin_load([]), 0.0);
/// ```
pub fn bin_load(copy_weights: impl IntoIterator<Item = f64>) -> f64 {
    copy_weights.into_iter().fold(0.0, |load, w| load + w)
}

/// The loads of `bins` bins given as copy counts per item (`copies[i][b]`: copies of item `i`
/// on bin `b`, item `i`'s copies sharing its weight equally), added item by item.
///
/// ```
/// use eplb_solvers::loads::count_loads;
/// // Item 0 (weight 3) in two copies over both bins, item 1 (weight 2) on bin 1.
/// assert_eq!(count_loads(&[3.0, 2.0], &[vec![1, 1], vec![0, 1]], 2), vec![1.5, 3.5]);
/// ```
pub fn count_loads(weights: &[f64], copies: &[Vec<usize>], bins: usize) -> Vec<f64> {
    let mut loads = vec![0.0; bins];
    for (w, c) in weights.iter().zip(copies) {
        let total: usize = c.iter().sum();
        if total == 0 {
            continue;
        }
        let share = w / total as f64;
        for (load, &k) in loads.iter_mut().zip(c) {
            *load += share * k as f64;
        }
    }
    loads
}

/// The heaviest of `loads` (`0.0` when there are none).
///
/// ```
/// assert_eq!(eplb_solvers::loads::peak(&[1.0, 3.5, 2.0]), 3.5);
/// ```
pub fn peak(loads: &[f64]) -> f64 {
    loads.iter().copied().fold(0.0, f64::max)
}
