//! Criterion benches of the greedy strategy, named by strategy and instance size.
//!
//! `cargo bench --bench greedy`. The real DeepSeek-V3 trace is read from `../shared/data` when
//! present (it is not redistributable); the synthetic one is always there.

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use eplb::{solve, strategies::Greedy, Cluster, Loads, PolicyChoice, Problem, SolveOptions};

fn instances() -> Vec<(String, Loads)> {
    let mut out = vec![(
        "synthetic_58x256".to_string(),
        eplb::synthetic::lognormal_loads(58, 256, 0.8, 131_072, 2026),
    )];
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/deepseek-v3_sglang_decode_in1000out1000.json");
    match eplb::formats::read_loads(&trace, Default::default()) {
        Ok(file) => out.push(("dsv3_decode_58x256".to_string(), file.loads)),
        Err(e) => eprintln!("skipping the real trace: {e}"),
    }
    out
}

fn greedy(c: &mut Criterion) {
    let mut group = c.benchmark_group("greedy");
    let one_core = SolveOptions::new().with_threads(Some(1));
    for (name, loads) in instances() {
        for (policy_name, policy) in [
            ("hierarchical", PolicyChoice::Hierarchical),
            ("global", PolicyChoice::Global),
        ] {
            let cluster = Cluster::new(288, 32).with_nodes(4).with_groups(8);
            let problem = Problem::new(loads.clone(), cluster, policy).unwrap();
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_r288_p32"), policy_name),
                &problem,
                |b, p| b.iter(|| solve(p, &Greedy, &one_core).unwrap()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, greedy);
criterion_main!(benches);
