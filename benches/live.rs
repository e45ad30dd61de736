//! Live rebalancing: `align` and the budgeted search (`rebalance` without a fresh placement)
//! for all layers, one thread, current = the `refine` placement of one DeepSeek-V3 trace and
//! new loads = another (from `../shared/data` or the folder `$EPLB_DATA`, or synthetic
//! log-normal stand-ins of the same shape when neither has them); R = 288, P = 32, both
//! policies (4 nodes, 8 groups).
//!
//! The group `live/target/...` times the speed target on its two reference pairs
//! (prefill 1024 -> prefill 512, and the hard prefill 512 -> prefill 2000/100): `align` +
//! the heuristic `rebalance` (the search, the alignment of its answers and the report) for
//! all 58 layers at `--max-moves 28`, in the quality target's configuration (the default,
//! thorough effort) and with the quick effort.
//!
//! `cargo bench --bench live`

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use eplb::formats::read_loads;
use eplb::live::{align, rebalance, MoveBudget, RebalanceOptions, SearchEffort};
use eplb::strategies::Refine;
use eplb::{solve, Cluster, Loads, Placement, PolicyChoice, Problem, SolveOptions};

/// A DeepSeek-V3 trace from `$EPLB_DATA` (a folder; for a git worktree elsewhere) or
/// `../shared/data`, else a synthetic stand-in.
fn trace(name: &str, seed: u64) -> Loads {
    let dir = std::env::var_os("EPLB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        Into::into,
    );
    let path = dir.join(format!("deepseek-v3_sglang_{name}.json"));
    read_loads(&path, Default::default())
        .map(|f| f.loads)
        .unwrap_or_else(|e| {
            eprintln!("{e}: using synthetic log-normal loads (58 x 256) instead");
            eplb::synthetic::lognormal_loads(58, 256, 0.8, 67_108_864, seed)
        })
}

/// The problem of the new loads and the `refine` placement of the old ones (one thread).
fn pair(old: &Loads, new: &Loads, policy: PolicyChoice) -> (Problem, Placement) {
    let cluster = Cluster::new(288, 32).with_nodes(4).with_groups(8);
    let before = Problem::new(old.clone(), cluster, policy).expect("valid shape");
    let after = Problem::new(new.clone(), cluster, policy).expect("valid shape");
    let one = SolveOptions::new().with_threads(Some(1));
    let current = solve(&before, &Refine::default(), &one)
        .expect("solves")
        .placement;
    (after, current)
}

const POLICIES: [(PolicyChoice, &str); 2] = [
    (PolicyChoice::Global, "global"),
    (PolicyChoice::Hierarchical, "hier"),
];

fn bench(c: &mut Criterion) {
    let (old, new) = (trace("prefill_in1024", 7), trace("prefill_in512", 8));
    let one = SolveOptions::new().with_threads(Some(1));
    for (policy, label) in POLICIES {
        let (after, current) = pair(&old, &new, policy);
        let fresh = solve(&after, &Refine::default(), &one)
            .expect("solves")
            .placement;
        let mut group = c.benchmark_group(format!("live/{label}/R288-P32"));
        group.sample_size(10);
        group.bench_function("align", |b| {
            b.iter(|| align(&after, &current, &fresh).expect("aligns"))
        });
        for k in [28, 57] {
            let options =
                RebalanceOptions::new(MoveBudget::PerLayer(k)).with_solve_options(one.clone());
            group.bench_function(format!("search-max-moves-{k}"), |b| {
                b.iter(|| rebalance(&after, &current, None, &options).expect("rebalances"))
            });
        }
        group.finish();
    }
}

/// The speed target: `align` + the heuristic `rebalance` for all 58 layers (target: 10 ms
/// on one core), both reference pairs, both policies, both efforts.
fn target(c: &mut Criterion) {
    let pairs = [
        ("prefill_in1024", "prefill_in512", 7, 8),
        ("prefill_in512", "prefill_in2000out100", 8, 9),
    ];
    for (from, to, old_seed, new_seed) in pairs {
        let (old, new) = (trace(from, old_seed), trace(to, new_seed));
        for (policy, label) in POLICIES {
            let (after, current) = pair(&old, &new, policy);
            let mut group = c.benchmark_group(format!("live/target/{label}/{from}-{to}"));
            group.sample_size(10);
            for (effort, name) in [
                (SearchEffort::Thorough, "thorough"),
                (SearchEffort::Quick, "quick"),
            ] {
                let options = RebalanceOptions::new(MoveBudget::PerLayer(28)).with_effort(effort);
                group.bench_function(format!("align+rebalance-max-moves-28-{name}"), |b| {
                    b.iter(|| rebalance(&after, &current, None, &options).expect("rebalances"))
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench, target);
criterion_main!(benches);
