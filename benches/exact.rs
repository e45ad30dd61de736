//! Criterion benches of the `exact` strategy: the README layers of `eplb.py` and the ESFT
//! layers shipped in `tests/data`, both policies, one layer per iteration.
//!
//! ```text
//! CARGO_BUILD_JOBS=1 cargo bench --bench exact
//! ```

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use eplb::formats::read_loads;
use eplb::strategies::Exact;
use eplb::{Cluster, Loads, PlacementStrategy, PolicyChoice, Problem};

fn problems() -> Vec<(String, Problem)> {
    let readme = Loads::from_rows(&[
        vec![
            90., 132., 40., 61., 104., 165., 39., 4., 73., 56., 183., 86.,
        ],
        vec![
            20., 107., 104., 64., 19., 197., 187., 157., 172., 86., 16., 27.,
        ],
    ])
    .expect("valid loads");
    let esft = read_loads(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/esft-vanilla-lite_esft-intent.json"),
        Default::default(),
    )
    .expect("tests/data is part of the repository")
    .loads;
    let mut out = Vec::new();
    for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
        let name = format!("{policy:?}").to_lowercase();
        let c = Cluster::new(16, 8).with_nodes(2).with_groups(4);
        out.push((
            format!("readme/{name}"),
            Problem::new(readme.clone(), c, policy).expect("valid"),
        ));
        let c = Cluster::new(80, 8).with_nodes(2).with_groups(8);
        out.push((
            format!("esft-intent/{name}"),
            Problem::new(esft.clone(), c, policy).expect("valid"),
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    // The default time limit: 10 s per layer.
    let exact = Exact::default();
    let mut group = c.benchmark_group("exact");
    group.sample_size(20);
    for (name, problem) in problems() {
        // README: every layer; ESFT: the first two layers (each iteration solves one layer).
        for layer in problem.layers().take(2) {
            group.bench_function(format!("{name}/layer{}", layer.index()), |b| {
                b.iter(|| exact.solve_layer(black_box(&layer)).expect("solves"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
