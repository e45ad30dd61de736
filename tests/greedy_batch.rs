//! `greedy`'s batched path (`PlacementStrategy::solve_batch`, every layer in one engine call
//! straight into DeepSeek's three tables, or into `phy2log` alone) against `eplb.py`'s golden
//! tables and against the layer-by-layer path, table for table, with both kernel choices.

use eplb::runner::solve_tables;
use eplb::strategies::{by_name, Greedy, Refine};
use eplb::testing::generate::{arb_problem_with, LoadProfile, ProblemShape};
use eplb::{
    solve, Cluster, DeepSeekFlat, EplbError, Kernels, Loads, PlacementStrategy, PolicyChoice,
    Problem, SolveOptions, Tables,
};
use proptest::prelude::*;

mod common;

use common::{golden, golden_cases};

/// One thread: the options under which `greedy` batches.
fn one_thread(kernels: Kernels) -> SolveOptions {
    SolveOptions::new()
        .with_threads(Some(1))
        .with_kernels(kernels)
}

/// The tables of the layer-by-layer path: the runner's placement, converted.
fn by_layer(problem: &Problem, options: &SolveOptions) -> DeepSeekFlat {
    solve(problem, &Greedy, options)
        .unwrap()
        .placement
        .to_deepseek_flat()
        .unwrap()
}

fn batched(problem: &Problem, options: &SolveOptions) -> DeepSeekFlat {
    batched_tables(problem, options, Tables::All)
}

fn batched_tables(problem: &Problem, options: &SolveOptions, tables: Tables) -> DeepSeekFlat {
    Greedy
        .solve_batch(problem, options, tables)
        .expect("greedy batches on one thread")
        .unwrap()
}

/// `phy2log` alone: the full tables' `phy2log`, the other two empty, the shape kept.
fn phy2log_of(all: &DeepSeekFlat) -> DeepSeekFlat {
    DeepSeekFlat {
        width: 0,
        log2phy: Vec::new(),
        logcnt: Vec::new(),
        ..all.clone()
    }
}

/// A golden matrix flattened row-major as `i64`.
fn flat(v: &serde_json::Value) -> Vec<i64> {
    fn walk(v: &serde_json::Value, out: &mut Vec<i64>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_i64().expect("integer")),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

#[test]
fn batched_tables_are_eplb_py_s() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    let problems = golden_cases();
    assert_eq!(problems.len(), 29);
    for ((name, problem), case) in problems.iter().zip(cases) {
        let expected = &case["expected"];
        for kernels in [Kernels::Auto, Kernels::Portable] {
            let tables = batched(problem, &one_thread(kernels));
            assert_eq!(
                tables.phy2log,
                flat(&expected["phy2log"]),
                "{name}: phy2log"
            );
            assert_eq!(
                tables.log2phy,
                flat(&expected["log2phy"]),
                "{name}: log2phy"
            );
            assert_eq!(tables.logcnt, flat(&expected["logcnt"]), "{name}: logcnt");
            let width = expected["log2phy"][0][0].as_array().unwrap().len();
            assert_eq!(tables.width, width, "{name}: log2phy width");
            let only = batched_tables(problem, &one_thread(kernels), Tables::Phy2log);
            assert_eq!(only, phy2log_of(&tables), "{name}: phy2log only");
        }
    }
}

#[test]
fn small_problems_batch_on_any_threads_large_ones_on_one_and_the_tables_agree() {
    let loads = Loads::from_rows(&[
        vec![9.0, 1.0, 4.0, 4.0, 0.0, 7.0, 2.0, 2.0],
        vec![1.0, 1.0, 1.0, 30.0, 5.0, 5.0, 0.0, 3.0],
    ])
    .unwrap();
    let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(4);
    let problem = Problem::new(loads, cluster, PolicyChoice::Hierarchical).unwrap();
    let one = one_thread(Kernels::Auto);
    // 64 layers of 512 slots: more than greedy batches when more threads may help.
    let rows: Vec<Vec<f64>> = (0..64)
        .map(|l| (0..256).map(|e| ((e * 37 + l * 11) % 101) as f64).collect())
        .collect();
    let large = Problem::new(
        Loads::from_rows(&rows).unwrap(),
        Cluster::new(512, 64),
        PolicyChoice::Global,
    )
    .unwrap();
    for tables in [Tables::All, Tables::Phy2log] {
        for threads in [Some(2), None] {
            let many = one.clone().with_threads(threads);
            assert_eq!(
                Greedy
                    .solve_batch(&problem, &many, tables)
                    .unwrap()
                    .unwrap(),
                batched_tables(&problem, &one, tables)
            );
            assert!(Greedy.solve_batch(&large, &many, tables).is_none());
        }
        assert_eq!(
            batched_tables(&large, &one, tables),
            match tables {
                Tables::All => by_layer(&large, &one),
                Tables::Phy2log => phy2log_of(&by_layer(&large, &one)),
            }
        );
        // A strategy without a batched path, and pointers to greedy, which forward it.
        assert!(Refine::default()
            .solve_batch(&problem, &one, tables)
            .is_none());
        let boxed = by_name("greedy").unwrap();
        assert_eq!(
            boxed.solve_batch(&problem, &one, tables).unwrap().unwrap(),
            batched_tables(&problem, &one, tables)
        );
    }
    let expected = by_layer(&problem, &one);
    for threads in [Some(1), Some(2), None] {
        let options = one.clone().with_threads(threads);
        assert_eq!(
            solve_tables(&problem, &Greedy, &options, Tables::All).unwrap(),
            expected
        );
        assert_eq!(
            solve_tables(&problem, &Greedy, &options, Tables::Phy2log).unwrap(),
            phy2log_of(&expected)
        );
    }
    // A strategy without a batched path: the runner's tables, either request.
    let refine = Refine::default();
    let placed = solve(&problem, &refine, &one).unwrap().placement;
    let all = solve_tables(&problem, &refine, &one, Tables::All).unwrap();
    assert_eq!(all, placed.to_deepseek_flat().unwrap());
    assert_eq!(
        solve_tables(&problem, &refine, &one, Tables::Phy2log).unwrap(),
        phy2log_of(&all)
    );
}

#[test]
fn a_load_too_large_for_f32_is_reported_as_layer_by_layer() {
    // Finite in f64, infinite in f32: the engine refuses it; the batched path names the
    // lowest failing layer as the runner does.
    let loads = Loads::from_rows(&[vec![1.0, 2.0, 3.0, 4.0], vec![1.0, 1e300, 3.0, 4.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global).unwrap();
    let options = one_thread(Kernels::Auto);
    let batch = Greedy
        .solve_batch(&problem, &options, Tables::All)
        .unwrap()
        .unwrap_err();
    let only = Greedy
        .solve_batch(&problem, &options, Tables::Phy2log)
        .unwrap()
        .unwrap_err();
    assert_eq!(only.to_string(), batch.to_string());
    let layered = solve(&problem, &Greedy, &options).unwrap_err();
    assert!(
        matches!(batch, EplbError::StrategyFailed { layer: 1, .. }),
        "{batch}"
    );
    assert_eq!(batch.to_string(), layered.to_string());
}

/// `base` with up to `slots` slots per GPU and `layers` layers, loads drawn by `loads`.
fn shape(base: ProblemShape, slots: usize, layers: usize, loads: LoadProfile) -> ProblemShape {
    let mut shape = base.loads(loads);
    shape.max_slots_per_gpu = slots;
    shape.max_layers = layers;
    shape
}

/// Many layers (several engine calls of a few layers each, the last one short), loads
/// skewed so that the largest replica count is reached late and differs between layers.
#[test]
fn batches_of_layers_equal_layer_by_layer() {
    let (experts, layers) = (48, 101);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let rows: Vec<Vec<f64>> = (0..layers)
        .map(|l| {
            (0..experts)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Hotter experts in later layers: the widest log2phy row comes late.
                    ((state % 50) * (1 + u64::from(state.is_multiple_of(7)) * l as u64)) as f64
                })
                .collect()
        })
        .collect();
    let loads = Loads::from_rows(&rows).unwrap();
    for (cluster, policy) in [
        (
            Cluster::new(64, 8).with_nodes(2).with_groups(4),
            PolicyChoice::Hierarchical,
        ),
        (Cluster::new(96, 16), PolicyChoice::Global),
        (Cluster::new(48, 48), PolicyChoice::Global),
    ] {
        let problem = Problem::new(loads.clone(), cluster, policy).unwrap();
        for kernels in [Kernels::Auto, Kernels::Portable] {
            let options = one_thread(kernels);
            let tables = batched(&problem, &options);
            assert_eq!(tables, by_layer(&problem, &options), "{cluster:?}");
            assert_eq!(
                batched_tables(&problem, &options, Tables::Phy2log),
                phy2log_of(&tables),
                "{cluster:?}"
            );
            let widths: Vec<i64> = tables
                .logcnt
                .chunks(experts)
                .map(|c| *c.iter().max().unwrap())
                .collect();
            // With extra slots, the layers' widest rows differ (one slot each: all 1).
            let varies = widths.iter().any(|&w| w != widths[0]);
            assert_eq!(varies, cluster.replicas > experts, "{widths:?}");
        }
    }
}

/// DeepSeek-V3's hierarchical shapes (the lane engine's: 32 and 64 experts per node, eight
/// extra copies, eight GPUs per node) on skewed synthetic loads, with many equal loads
/// (rounded to tens) and some zeros: the batched tables, and `phy2log` alone, equal the
/// layer-by-layer tables with both kernel choices.
#[test]
fn deepseek_v3_hierarchical_shapes_batch_as_layer_by_layer() {
    let skewed = eplb::synthetic::lognormal_loads(37, 256, 1.2, 20_000, 11);
    let rows: Vec<Vec<f64>> = (0..skewed.num_layers())
        .map(|l| {
            skewed
                .layer(l)
                .iter()
                .enumerate()
                .map(|(e, &w)| {
                    if e % 37 == 5 {
                        0.0
                    } else {
                        (w / 10.0).round() * 10.0
                    }
                })
                .collect()
        })
        .collect();
    let loads = Loads::from_rows(&rows).unwrap();
    for (replicas, gpus, nodes) in [(288, 32, 4), (320, 64, 8), (512, 64, 8)] {
        let cluster = Cluster::new(replicas, gpus)
            .with_nodes(nodes)
            .with_groups(8);
        let problem = Problem::new(loads.clone(), cluster, PolicyChoice::Hierarchical).unwrap();
        for kernels in [Kernels::Auto, Kernels::Portable] {
            let options = one_thread(kernels);
            let layered = by_layer(&problem, &options);
            assert_eq!(batched(&problem, &options), layered, "{cluster:?}");
            assert_eq!(
                batched_tables(&problem, &options, Tables::Phy2log),
                phy2log_of(&layered),
                "{cluster:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// All layers in one engine call give the layer-by-layer tables, under both policies
    /// (many nodes, few and many GPUs per node, one slot per GPU), with both kernel choices,
    /// on loads full of ties.
    #[test]
    fn batched_equals_layer_by_layer(
        problem in arb_problem_with(shape(ProblemShape::new(24, 12).nodes(6, 3), 6, 7, LoadProfile::Ties)),
    ) {
        for kernels in [Kernels::Auto, Kernels::Portable] {
            let options = one_thread(kernels);
            let tables = batched(&problem, &options);
            prop_assert_eq!(&tables, &by_layer(&problem, &options));
            prop_assert_eq!(
                batched_tables(&problem, &options, Tables::Phy2log),
                phy2log_of(&tables)
            );
        }
    }

    /// The same on any load profile (zeros, huge integers, mixed magnitudes).
    #[test]
    fn batched_equals_layer_by_layer_on_any_loads(
        problem in arb_problem_with(shape(ProblemShape::new(16, 8).nodes(4, 2), 4, 5, LoadProfile::Any)),
    ) {
        let options = one_thread(Kernels::Auto);
        prop_assert_eq!(batched(&problem, &options), by_layer(&problem, &options));
    }
}
