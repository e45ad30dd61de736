//! Instruction counts (iai-callgrind, under Valgrind) of `greedy` and `refine` on all
//! layers of a DeepSeek-V3 decode trace (from `../shared/data`, or a synthetic log-normal
//! stand-in of the same shape, 58 x 256, when that folder is absent; `EPLB_DATA=DIR` names
//! another folder), one thread, on the
//! shapes of issue 16. Counts do not depend on the other work of a busy machine, so a change's
//! effect shows in one run; they are measurements, not pass/fail checks (not in `.ci/run`).
//!
//! Needs `valgrind` and the runner at the version of the `iai-callgrind` dev-dependency:
//!
//! ```text
//! cargo install iai-callgrind-runner --version 0.16.1
//! cargo bench --bench instructions
//! ```
//!
//! On processors with AVX-512F or AVX2 the greedy runs its vector kernels (the counts are then of
//! those); the build machine has AVX2 and no AVX-512F (nor does Valgrind run AVX-512), so its
//! counts are of the AVX2 kernels.

// The macros define undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use eplb::runner::solve_tables;
use eplb::strategies::{Greedy, Refine};
use eplb::{
    solve, Cluster, DeepSeekFlat, Loads, PlacementStrategy, PolicyChoice, Problem, Solution,
    SolveOptions, Tables,
};
use iai_callgrind::{library_benchmark, library_benchmark_group, main, LibraryBenchmarkConfig};

fn trace() -> Loads {
    // `EPLB_DATA` names another folder (a worktree is not next to `shared/`).
    let dir = std::env::var_os("EPLB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        PathBuf::from,
    );
    let path = dir.join("deepseek-v3_sglang_decode_in1000out1000.json");
    eplb::formats::read_loads(&path, Default::default())
        .map(|f| f.loads)
        .unwrap_or_else(|_| eplb::synthetic::lognormal_loads(58, 256, 0.8, 1_000_000, 7))
}

/// The trace on `replicas` slots over `gpus` GPUs: hierarchical on `nodes` nodes and 8
/// groups when `nodes > 1`, global otherwise.
fn shape(replicas: usize, gpus: usize, nodes: usize) -> Problem {
    let cluster = Cluster::new(replicas, gpus)
        .with_nodes(nodes)
        .with_groups(8);
    let policy = if nodes > 1 {
        PolicyChoice::Hierarchical
    } else {
        PolicyChoice::Global
    };
    Problem::new(trace(), cluster, policy).expect("valid shape")
}

/// A strategy and its problem (built outside the measured call).
struct Case {
    strategy: Box<dyn PlacementStrategy>,
    problem: Problem,
}

fn case(
    strategy: impl PlacementStrategy + 'static,
    replicas: usize,
    gpus: usize,
    nodes: usize,
) -> Case {
    Case {
        strategy: Box::new(strategy),
        problem: shape(replicas, gpus, nodes),
    }
}

#[library_benchmark]
#[bench::greedy_hier_r288_p32(case(Greedy, 288, 32, 4))]
#[bench::greedy_hier_r320_p64(case(Greedy, 320, 64, 8))]
#[bench::greedy_global_r288_p32(case(Greedy, 288, 32, 1))]
#[bench::greedy_global_r320_p64(case(Greedy, 320, 64, 1))]
#[bench::greedy_global_r288_p144(case(Greedy, 288, 144, 1))]
#[bench::refine_hier_r288_p32(case(Refine::default(), 288, 32, 4))]
#[bench::refine_hier_r320_p64(case(Refine::default(), 320, 64, 8))]
#[bench::refine_global_r288_p32(case(Refine::default(), 288, 32, 1))]
#[bench::refine_global_r320_p64(case(Refine::default(), 320, 64, 1))]
#[bench::refine_global_r288_p144(case(Refine::default(), 288, 144, 1))]
fn all_layers(case: Case) -> Solution {
    let one_core = SolveOptions::new().with_threads(Some(1));
    black_box(solve(&case.problem, case.strategy.as_ref(), &one_core).expect("valid problem"))
}

// What `eplb bench` times and `eplb.py`'s `rebalance_experts` returns: DeepSeek's three
// tables of every layer (`greedy` on one thread: its batched path).
#[library_benchmark]
#[bench::greedy_hier_r288_p32(case(Greedy, 288, 32, 4))]
#[bench::greedy_hier_r320_p64(case(Greedy, 320, 64, 8))]
#[bench::greedy_global_r288_p32(case(Greedy, 288, 32, 1))]
#[bench::greedy_global_r320_p64(case(Greedy, 320, 64, 1))]
#[bench::greedy_global_r288_p144(case(Greedy, 288, 144, 1))]
fn tables(case: Case) -> DeepSeekFlat {
    tables_on_one_core(&case, Tables::All)
}

// What vLLM's `rebalance_experts` returns: `phy2log` of every layer alone.
#[library_benchmark]
#[bench::greedy_hier_r288_p32(case(Greedy, 288, 32, 4))]
#[bench::greedy_hier_r320_p64(case(Greedy, 320, 64, 8))]
#[bench::greedy_global_r288_p32(case(Greedy, 288, 32, 1))]
fn phy2log(case: Case) -> DeepSeekFlat {
    tables_on_one_core(&case, Tables::Phy2log)
}

/// `solve_tables` of `case` on one thread.
fn tables_on_one_core(case: &Case, tables: Tables) -> DeepSeekFlat {
    let one_core = SolveOptions::new().with_threads(Some(1));
    black_box(
        solve_tables(&case.problem, case.strategy.as_ref(), &one_core, tables)
            .expect("valid problem"),
    )
}

library_benchmark_group!(name = dsv3_decode; benchmarks = all_layers, tables, phy2log);
// The runner clears the environment: keep the trace folder.
main!(
    config = LibraryBenchmarkConfig::default().pass_through_envs(["EPLB_DATA"]);
    library_benchmark_groups = dsv3_decode
);
