//! Scaling of `greedy` and `refine` (one thread, synthetic log-normal loads): time against
//! experts `E` (64 to 1024, `R = 5E/4` on 16 GPUs), GPUs `P` (8 to 512, `E = 256`, the fewest
//! slots of at least 320 that `P` divides) and layers (1 to 256, `E = 256, R = 320, P = 64`).
//!
//! `cargo bench --bench scaling` (criterion's report: `target/criterion/scaling-*`). The
//! Markdown table and the log-log plot of the README come from
//! `cargo run --release -p eplb-lab --bin scaling -- docs/scaling.png`.

// `criterion_group!` and `criterion_main!` define undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eplb::strategies::{Greedy, Refine};
use eplb::synthetic::lognormal_loads;
use eplb::{solve, Cluster, PlacementStrategy, PolicyChoice, Problem, SolveOptions};

/// `(axis value, layers, experts, replicas, gpus)`.
type Point = (usize, usize, usize, usize, usize);

fn axis(c: &mut Criterion, name: &str, points: &[Point]) {
    let one_core = SolveOptions::new().with_threads(Some(1));
    let refine = Refine::default();
    let strategies: [&dyn PlacementStrategy; 2] = [&Greedy, &refine];
    let mut group = c.benchmark_group(format!("scaling-{name}"));
    group.sample_size(10);
    for &(x, layers, experts, replicas, gpus) in points {
        let loads = lognormal_loads(layers, experts, 0.8, 1_000_000, 7);
        let cluster = Cluster::new(replicas, gpus);
        let problem = Problem::new(loads, cluster, PolicyChoice::Global).expect("valid shape");
        group.throughput(Throughput::Elements(layers as u64));
        for s in strategies {
            group.bench_with_input(BenchmarkId::new(s.name(), x), &problem, |b, p| {
                b.iter(|| solve(p, s, &one_core).expect("valid problem"))
            });
        }
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let experts: Vec<Point> = [64, 128, 256, 384, 512, 1024]
        .iter()
        .map(|&e| (e, 64, e, e + e / 4, 16))
        .collect();
    axis(c, "experts", &experts);
    let gpus: Vec<Point> = [8, 16, 32, 64, 128, 256, 512]
        .iter()
        .map(|&p: &usize| (p, 64, 256, 320usize.div_ceil(p) * p, p))
        .collect();
    axis(c, "gpus", &gpus);
    let layers: Vec<Point> = [1, 8, 64, 256]
        .iter()
        .map(|&l| (l, l, 256, 320, 64))
        .collect();
    axis(c, "layers", &layers);
}

criterion_group!(benches, scaling);
criterion_main!(benches);
