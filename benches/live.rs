//! Live rebalancing: `align` and the budgeted search (`rebalance` without a fresh placement)
//! for all layers, one thread, current = the `refine` placement of one DeepSeek-V3 trace and
//! new loads = another (from `../shared/data`, or synthetic log-normal stand-ins of the same
//! shape when that folder is absent); R = 288, P = 32, both policies (4 nodes, 8 groups).
//!
//! `cargo bench --bench live`

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use eplb::formats::read_loads;
use eplb::live::{align, rebalance, MoveBudget, RebalanceOptions};
use eplb::strategies::Refine;
use eplb::{solve, Cluster, Loads, PolicyChoice, Problem, SolveOptions};

fn trace(name: &str, seed: u64) -> Loads {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../shared/data/deepseek-v3_sglang_{name}.json"));
    read_loads(&path, Default::default())
        .map(|f| f.loads)
        .unwrap_or_else(|e| {
            eprintln!("{e}: using synthetic log-normal loads (58 x 256) instead");
            eplb::synthetic::lognormal_loads(58, 256, 0.8, 67_108_864, seed)
        })
}

fn bench(c: &mut Criterion) {
    let (old, new) = (trace("prefill_in1024", 7), trace("prefill_in512", 8));
    let one = SolveOptions::new().with_threads(Some(1));
    for (policy, label) in [
        (PolicyChoice::Global, "global"),
        (PolicyChoice::Hierarchical, "hier"),
    ] {
        let cluster = Cluster::new(288, 32).with_nodes(4).with_groups(8);
        let before = Problem::new(old.clone(), cluster, policy).expect("valid shape");
        let after = Problem::new(new.clone(), cluster, policy).expect("valid shape");
        let current = solve(&before, &Refine::default(), &one)
            .expect("solves")
            .placement;
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

criterion_group!(benches, bench);
criterion_main!(benches);
