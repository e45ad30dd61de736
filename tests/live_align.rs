//! `eplb::live::align`: the relabelling keeps every GPU's replicas together (so no GPU load
//! changes), stays feasible, and needs exactly the fewest transfers over all relabellings the
//! policy allows (brute force over GPU permutations), with the fewest cross-node transfers
//! among those.

mod live_common;

use eplb::evaluate::violations;
use eplb::live::{align, count_transfers};
use eplb::{Cluster, LayerPlacement, Loads, Placement, Policy, PolicyChoice, Problem};
use live_common::{arb_case, gpu_contents, small};
use proptest::prelude::*;

/// Every permutation of `0..n` (`perm[g]` = where new GPU `g` goes).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..n {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// True when `perm` moves whole nodes (and GPUs within them): what the hierarchical policy
/// allows.
fn keeps_nodes(perm: &[usize], q: usize) -> bool {
    (0..perm.len()).all(|g| (0..perm.len()).all(|h| g / q != h / q || perm[g] / q == perm[h] / q))
}

/// `new` with GPU `g`'s slots moved to GPU `perm[g]`.
fn relabel(new: &LayerPlacement, perm: &[usize], s: usize) -> LayerPlacement {
    let mut out = vec![0; new.phy2log().len()];
    for (g, &h) in perm.iter().enumerate() {
        out[h * s..(h + 1) * s].copy_from_slice(&new.phy2log()[g * s..(g + 1) * s]);
    }
    LayerPlacement::from_phy2log(out)
}

/// Checks `align(current, new)` on every layer: the same GPU contents, feasible, every slot
/// whose expert stays on its GPU keeps it, and (transfers, cross-node transfers) minimal over
/// the relabellings the policy allows (brute force).
fn assert_optimal_relabelling(
    problem: &Problem,
    current: &Placement,
    new: &Placement,
) -> Result<(), TestCaseError> {
    let aligned = align(problem, current, new).unwrap();
    let cluster = problem.cluster();
    let s = cluster.slots_per_gpu();
    let q = cluster.gpus_per_node().unwrap_or(cluster.gpus);
    for layer in problem.layers() {
        let l = layer.index();
        let (cur, fresh, got) = (current.layer(l), new.layer(l), aligned.layer(l));
        // The same GPUs' contents (so the same GPU loads), feasible.
        let mut before = gpu_contents(fresh.phy2log(), s);
        let mut after = gpu_contents(got.phy2log(), s);
        before.sort();
        after.sort();
        prop_assert_eq!(before, after);
        prop_assert!(violations(&layer, got).is_empty());
        // Every slot whose old expert stays on its GPU keeps it.
        for (g, slots) in got.phy2log().chunks(s).enumerate() {
            let old = &cur.phy2log()[g * s..(g + 1) * s];
            let kept = (0..s).filter(|&i| slots[i] == old[i]).count();
            let mut left = slots.to_vec();
            let possible = old
                .iter()
                .filter(|e| {
                    left.iter()
                        .position(|x| x == *e)
                        .map(|i| left.remove(i))
                        .is_some()
                })
                .count();
            prop_assert_eq!(kept, possible);
        }
        // Brute force over the allowed relabellings: (transfers, cross-node) is minimal.
        let allowed = |p: &Vec<usize>| layer.policy() == Policy::Global || keeps_nodes(p, q);
        let best = permutations(cluster.gpus)
            .into_iter()
            .filter(allowed)
            .map(|p| {
                let c = count_transfers(cluster, cur, &relabel(fresh, &p, s));
                (c.transfers, c.cross_node)
            })
            .min()
            .unwrap();
        let c = count_transfers(cluster, cur, got);
        prop_assert_eq!((c.transfers, c.cross_node), best);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Global policies here have 1 or 2 nodes (GPUs not always splitting evenly) and the
    /// hierarchical ones 1 or 2 nodes, so the cross-node tie-break is exercised by both.
    #[test]
    fn align_is_the_optimal_relabelling((problem, current, new) in arb_case(small(8, 5))) {
        assert_optimal_relabelling(&problem, &current, &new)?;
    }

    /// A new placement that is the current one with a few replicas swapped between GPUs of
    /// one node (what the budgeted search produces): the identity is often optimal here, and
    /// `align` skips Kuhn–Munkres when every GPU's cheapest match is itself; the answer must
    /// stay the optimum over relabellings (brute force), also when it is not the identity.
    #[test]
    fn align_is_the_optimal_relabelling_of_a_few_swaps(
        (problem, current, swaps) in arb_case(small(8, 5)).prop_flat_map(|(problem, current, _)| {
            let slots = problem.cluster().replicas;
            (Just(problem), Just(current), prop::collection::vec((0..slots, 0..slots), 0..4))
        })
    ) {
        let cluster = problem.cluster();
        let (s, q) = (cluster.slots_per_gpu(), cluster.gpus_per_node().unwrap_or(cluster.gpus));
        let layers = current.layers().iter().map(|layer| {
            let mut phy = layer.phy2log().to_vec();
            for &(a, b) in swaps.iter().filter(|(a, b)| a / s / q == b / s / q) {
                phy.swap(a, b);
            }
            phy
        }).collect();
        let new = Placement::from_phy2log(problem.num_experts(), layers).unwrap();
        assert_optimal_relabelling(&problem, &current, &new)?;
    }

    #[test]
    fn aligning_a_placement_with_itself_changes_nothing((problem, current, _new) in arb_case(small(8, 5))) {
        let aligned = align(&problem, &current, &current).unwrap();
        for l in 0..problem.num_layers() {
            prop_assert_eq!(count_transfers(problem.cluster(), current.layer(l), aligned.layer(l)).transfers, 0);
            prop_assert_eq!(aligned.layer(l).phy2log(), current.layer(l).phy2log());
        }
    }
}

#[test]
fn align_refuses_placements_that_do_not_fit() {
    let loads = Loads::from_rows(&[vec![1.0; 4]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let ok = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]]).unwrap();
    for (bad, what) in [
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2]]).unwrap(),
            "slots",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 9]]).unwrap(),
            "valid ids",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 2]]).unwrap(),
            "no replica",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 3], vec![0, 1, 2, 3]]).unwrap(),
            "layers",
        ),
    ] {
        let message = align(&problem, &bad, &ok).unwrap_err().to_string();
        assert!(message.contains(what), "{message}");
        let message = align(&problem, &ok, &bad).unwrap_err().to_string();
        assert!(message.contains(what), "{message}");
    }
}
