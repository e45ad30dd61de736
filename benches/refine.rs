//! `refine` against `greedy`: all layers of a DeepSeek-V3 trace (from `../shared/data`, or a
//! synthetic log-normal stand-in of the same shape when that folder is absent), one thread,
//! both cluster shapes of the quality targets.
//!
//! `cargo bench --bench refine`

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use eplb::formats::read_loads;
use eplb::strategies::{Greedy, Refine};
use eplb::{Cluster, Loads, PlacementStrategy, PolicyChoice, Problem};

fn trace() -> (String, Loads) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/deepseek-v3_sglang_prefill_in1024.json");
    match read_loads(&path, Default::default()).map(|f| f.loads) {
        Ok(loads) => ("dsv3-prefill1024".into(), loads),
        Err(e) => {
            eprintln!("{e}: using synthetic log-normal loads (58 x 256) instead");
            (
                "synthetic-58x256".into(),
                eplb::synthetic::lognormal_loads(58, 256, 0.8, 67_108_864, 7),
            )
        }
    }
}

fn all_layers(problem: &Problem, strategy: &dyn PlacementStrategy) {
    for layer in problem.layers() {
        std::hint::black_box(strategy.solve_layer(&layer).expect("valid problem"));
    }
}

fn bench(c: &mut Criterion) {
    let (name, loads) = trace();
    let e = loads.num_experts();
    let deep = Refine::deep();
    let strategies: [&dyn PlacementStrategy; 3] = [&Greedy, &Refine::default(), &deep];
    for (replicas, gpus) in [(e + e / 8, 32), (e + e / 4, 64)] {
        for (policy, label) in [
            (PolicyChoice::Global, "global"),
            (PolicyChoice::Hierarchical, "hier"),
        ] {
            let cluster = Cluster::new(replicas, gpus)
                .with_nodes(gpus / 8)
                .with_groups(8);
            let problem = Problem::new(loads.clone(), cluster, policy).expect("valid shape");
            let mut group = c.benchmark_group(format!("{name}/{label}/R{replicas}-P{gpus}"));
            group.sample_size(20);
            for s in strategies {
                group.bench_function(BenchmarkId::from_parameter(s.name()), |b| {
                    b.iter(|| all_layers(&problem, s))
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
