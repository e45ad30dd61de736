//! `eplb::live::TransferPlan`: every move is a real transfer with a real source, sources stay
//! on the destination's node when they can, and the schedule is valid (each GPU sends at most
//! one and receives at most one expert per round) with exactly the König bound of rounds.

mod live_common;

use std::collections::HashSet;

use eplb::live::{count_transfers, LiveGpus, TransferPlan};
use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
use live_common::{arb_case, wide};
use proptest::prelude::*;

fn node(cluster: &Cluster, gpu: usize) -> usize {
    match cluster.gpus_per_node() {
        Some(q) => gpu / q,
        None => gpu * cluster.nodes / cluster.gpus,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn plans_are_valid_and_reach_the_round_bound(
        (problem, current, new) in arb_case(wide())
    ) {
        let cluster = problem.cluster();
        let s = cluster.slots_per_gpu();
        let plan = TransferPlan::new(&problem, &current, &new, 7).unwrap();
        for (l, lp) in plan.layers.iter().enumerate() {
            let (cur, nw) = (current.layer(l).phy2log(), new.layer(l).phy2log());
            let count = count_transfers(cluster, current.layer(l), new.layer(l));
            prop_assert_eq!(lp.transfers, count.transfers);
            prop_assert_eq!(lp.cross_node, count.cross_node);
            prop_assert_eq!(lp.host_reloads, 0);
            prop_assert_eq!(lp.bytes, 7 * lp.transfers as u64);
            prop_assert_eq!(lp.rounds, lp.rounds_lower_bound);
            let mut sends = vec![0; cluster.gpus];
            let mut receives = vec![0; cluster.gpus];
            let mut seen = HashSet::new();
            for m in &lp.moves {
                // The destination holds the expert in the new placement and held none before.
                prop_assert_eq!(nw[m.to_slot], m.expert);
                prop_assert_eq!(m.to_slot / s, m.to_gpu);
                prop_assert!(!cur[m.to_gpu * s..(m.to_gpu + 1) * s].contains(&m.expert));
                // The source held it, in that slot.
                let (from, slot) = (m.from_gpu.unwrap(), m.from_slot.unwrap());
                prop_assert_eq!(cur[slot], m.expert);
                prop_assert_eq!(slot / s, from);
                // On the destination's node whenever that node held the expert.
                let same = node(cluster, from) == node(cluster, m.to_gpu);
                let node_held = (0..cluster.gpus).any(|g| {
                    node(cluster, g) == node(cluster, m.to_gpu) && cur[g * s..(g + 1) * s].contains(&m.expert)
                });
                prop_assert_eq!(same, node_held);
                prop_assert_eq!(m.cross_node, !same);
                // One send and one receive per GPU per round.
                prop_assert!(m.round < lp.rounds);
                prop_assert!(seen.insert(("send", from, m.round)));
                prop_assert!(seen.insert(("recv", m.to_gpu, m.round)));
                sends[from] += 1;
                receives[m.to_gpu] += 1;
            }
            let bound = sends.iter().chain(&receives).copied().max().unwrap_or(0);
            prop_assert_eq!(lp.rounds_lower_bound, bound);
        }
    }
}

#[test]
fn experts_only_on_dead_gpus_are_reloaded_from_host() {
    // GPU 1 (experts 2 and 3) failed; the new placement puts them on GPU 0 and GPU 2.
    let loads = Loads::from_rows(&[vec![1.0; 4]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1]]).unwrap();
    let new = Placement::from_phy2log(4, vec![vec![0, 2, 2, 3, 3, 1]]).unwrap();
    let live = LiveGpus::with_failed(3, &[1]).unwrap();
    let plan = TransferPlan::with_live(&problem, &current, &new, 1, &live).unwrap();
    let lp = &plan.layers[0];
    // Slots 2 and 3 sit on the dead GPU: ignored. Slot 1 (expert 2) and slot 4 (expert 3)
    // have no live source.
    assert_eq!((lp.transfers, lp.host_reloads), (2, 2));
    assert!(lp
        .moves
        .iter()
        .all(|m| m.from_gpu.is_none() && m.cross_node));
    assert_eq!((lp.rounds, lp.rounds_lower_bound), (1, 1));
}

#[test]
fn the_busiest_gpu_sets_the_rounds() {
    // GPU 0 receives experts 2 and 4 and sends 0 and 1: two rounds, not fewer.
    let loads = Loads::from_rows(&[vec![1.0; 8]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(8, vec![vec![0, 1, 2, 3, 4, 5, 6, 7]]).unwrap();
    let new = Placement::from_phy2log(8, vec![vec![2, 4, 0, 3, 1, 5, 6, 7]]).unwrap();
    let plan = TransferPlan::new(&problem, &current, &new, 1).unwrap();
    let lp = &plan.layers[0];
    assert_eq!(lp.transfers, 4);
    assert_eq!((lp.rounds, lp.rounds_lower_bound), (2, 2));
}
