//! Criterion benches of the `ilp` strategy on the README layers of `eplb.py` (12 experts,
//! R=16, P=8, N=2, G=4), both policies, one layer per iteration; every layer is proven
//! optimal, so an iteration is the time to the proof.
//!
//! ```text
//! CARGO_BUILD_JOBS=1 cargo bench --features highs --bench ilp    # HiGHS
//! CARGO_BUILD_JOBS=1 cargo bench --bench ilp                     # microlp
//! ```

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use eplb::strategies::Ilp;
use eplb::{Cluster, PlacementStrategy, PolicyChoice, Problem};

fn bench(c: &mut Criterion) {
    // The default time limit: 10 s per layer.
    let ilp = Ilp::default();
    let mut group = c.benchmark_group(format!("ilp-{}", ilp.backend().name()));
    group.sample_size(10);
    for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
        let name = format!("{policy:?}").to_lowercase();
        let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
        let problem =
            Problem::new(eplb::synthetic::readme_example(), cluster, policy).expect("valid");
        for layer in problem.layers() {
            group.bench_function(format!("readme/{name}/layer{}", layer.index()), |b| {
                b.iter(|| black_box(ilp.solve_layer(&layer).expect("solves")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
