//! Local search that improves an incumbent before the MILP starts: a better starting solution
//! narrows the copy-count ranges and gives the solver less to prove.

use std::time::Instant;

use crate::loads::{count_loads, peak};
use crate::packing::PackingProblem;
use crate::tolerance::ROUNDING;

/// Moves tried at most (keeps the search bounded and deterministic).
const MAX_MOVES: usize = 20_000;

/// `(max load, bins at the max)`: what a move must decrease (lexicographically).
fn key(loads: &[f64]) -> (f64, usize) {
    let max = peak(loads);
    let at_max = loads
        .iter()
        .filter(|&&l| l >= max * (1.0 - ROUNDING))
        .count();
    (max, at_max)
}

fn better(a: (f64, usize), b: (f64, usize)) -> bool {
    a.0 < b.0 * (1.0 - ROUNDING) || (a.0 <= b.0 && a.1 < b.1)
}

/// Improves `copies` in place by first-improvement moves involving a most loaded bin:
/// swapping a copy there with a copy of another item elsewhere (same region), or turning a
/// copy of an item with several copies into a copy of another item allowed on that bin.
/// Deterministic when it finishes before `deadline` (checked between moves); never makes the
/// solution worse or invalid.
pub(super) fn improve(
    problem: &PackingProblem,
    copies: &mut [Vec<usize>],
    deadline: Option<Instant>,
) {
    let n = problem.weights.len();
    let m = problem.bins;
    let w = &problem.weights;
    let mut counts: Vec<usize> = copies.iter().map(|c| c.iter().sum()).collect();
    let mut loads = count_loads(w, copies, m);
    let region_of_item = |copies: &[Vec<usize>], i: usize| {
        copies[i]
            .iter()
            .position(|&k| k > 0)
            .map(|j| problem.region_of_bin(j))
    };
    let mut trial = loads.clone();
    for _ in 0..MAX_MOVES {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let current = key(&loads);
        let Some(p) = loads
            .iter()
            .position(|&l| l >= current.0 * (1.0 - ROUNDING))
        else {
            return;
        };
        let mut moved = false;
        'search: for a in (0..n).filter(|&a| copies[a][p] > 0) {
            let share_a = w[a] / counts[a] as f64;
            // Swap a copy of `a` on p with a copy of `b` on q.
            for q in
                (0..m).filter(|&q| q != p && problem.region_of_bin(q) == problem.region_of_bin(p))
            {
                for b in (0..n).filter(|&b| b != a && copies[b][q] > 0) {
                    let share_b = w[b] / counts[b] as f64;
                    trial.copy_from_slice(&loads);
                    trial[p] += share_b - share_a;
                    trial[q] += share_a - share_b;
                    if better(key(&trial), current) {
                        copies[a][p] -= 1;
                        copies[b][p] += 1;
                        copies[b][q] -= 1;
                        copies[a][q] += 1;
                        loads = count_loads(w, copies, m);
                        moved = true;
                        break 'search;
                    }
                }
            }
            // Turn a copy of `a` on p into a copy of `b`.
            if counts[a] >= 2 {
                for b in (0..n).filter(|&b| b != a) {
                    if problem.regions.is_some()
                        && region_of_item(copies, b) != Some(problem.region_of_bin(p))
                    {
                        continue;
                    }
                    let share_b = w[b] / counts[b] as f64;
                    let new_a = w[a] / (counts[a] - 1) as f64;
                    let new_b = w[b] / (counts[b] + 1) as f64;
                    trial.copy_from_slice(&loads);
                    for (j, t) in trial.iter_mut().enumerate() {
                        let (xa, xb) = (copies[a][j] as f64, copies[b][j] as f64);
                        let (ya, yb) = if j == p {
                            (xa - 1.0, xb + 1.0)
                        } else {
                            (xa, xb)
                        };
                        *t += ya * new_a - xa * share_a + yb * new_b - xb * share_b;
                    }
                    if better(key(&trial), current) {
                        copies[a][p] -= 1;
                        copies[b][p] += 1;
                        counts[a] -= 1;
                        counts[b] += 1;
                        // Recompute exactly rather than accumulate rounding.
                        loads = count_loads(w, copies, m);
                        moved = true;
                        break 'search;
                    }
                }
            }
        }
        if !moved {
            return;
        }
    }
}
