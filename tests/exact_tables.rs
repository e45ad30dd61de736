//! Measurement tables for the `exact` strategy (issue 6). Ignored by default: run in release,
//! one layer at a time on one thread:
//!
//! ```text
//! cargo test --release --test exact_tables -- --ignored --nocapture
//! EPLB_TRACES=deepseek EPLB_TIME_LIMIT_MS=1000 cargo test --release --test exact_tables -- --ignored --nocapture
//! ```
//!
//! `EPLB_TRACES` filters the traces by substring (`readme`, `esft`, `deepseek`, `qwen`);
//! `EPLB_TIME_LIMIT_MS` is the per-layer limit (default 1000); `EPLB_REPEAT` solves each layer
//! that many times and reports the fastest (default 1); `EPLB_LAYERS` limits the layers per
//! trace; `EPLB_POLICY` keeps one policy (`global` or `hierarchical`); `EPLB_VERBOSE` prints
//! every layer. Traces other than ESFT are read from
//! `../shared/data` and skipped with a message when that folder is absent.

use std::path::Path;
use std::time::{Duration, Instant};

use eplb::evaluate::evaluate_layer;
use eplb::formats::read_loads;
use eplb::strategies::Exact;
use eplb::{Cluster, LayerBudget, Loads, PlacementStrategy, PolicyChoice, Problem, SolveStatus};

struct Case {
    name: String,
    loads: Loads,
    replicas: usize,
    gpus: usize,
    nodes: usize,
    groups: usize,
}

fn cases(filter: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let readme = Loads::from_rows(&[
        vec![
            90., 132., 40., 61., 104., 165., 39., 4., 73., 56., 183., 86.,
        ],
        vec![
            20., 107., 104., 64., 19., 197., 187., 157., 172., 86., 16., 27.,
        ],
    ])
    .unwrap();
    out.push(Case {
        name: "readme".into(),
        loads: readme,
        replicas: 16,
        gpus: 8,
        nodes: 2,
        groups: 4,
    });
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.is_dir() {
        eprintln!(
            "skipping the traces of {}: folder absent (only ESFT copies in tests/data run)",
            shared.display()
        );
    }
    let mut files: Vec<_> = std::fs::read_dir(&shared)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_else(|_| {
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"))
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().contains("esft-"))
                .collect()
        });
    files.sort();
    for f in files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let shapes: &[(usize, usize, usize, usize)] = if stem.starts_with("esft") {
            &[(80, 8, 2, 8)]
        } else if stem.starts_with("deepseek-v3") {
            &[(288, 32, 4, 8)]
        } else if stem.starts_with("qwen3") {
            &[(144, 16, 2, 8), (160, 32, 4, 8)]
        } else {
            &[]
        };
        for &(replicas, gpus, nodes, groups) in shapes {
            out.push(Case {
                name: format!("{stem} R={replicas} P={gpus}"),
                loads: read_loads(&f, Default::default()).unwrap().loads,
                replicas,
                gpus,
                nodes,
                groups,
            });
        }
    }
    out.retain(|c| c.name.contains(filter));
    out
}

#[test]
#[ignore = "measurement: run in release with --ignored --nocapture"]
fn exact_tables() {
    let filter = std::env::var("EPLB_TRACES").unwrap_or_default();
    let policy_filter = std::env::var("EPLB_POLICY").unwrap_or_default();
    let ms: u64 = std::env::var("EPLB_TIME_LIMIT_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let repeat: usize = std::env::var("EPLB_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let max_layers: usize = std::env::var("EPLB_LAYERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let exact = Exact::default();
    let limit = Duration::from_millis(ms);
    println!("| trace | policy | layers | proven | certified gap max | median ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for case in cases(&filter) {
        for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
            if !format!("{policy:?}")
                .to_lowercase()
                .contains(&policy_filter)
            {
                continue;
            }
            let cluster = Cluster::new(case.replicas, case.gpus)
                .with_nodes(case.nodes)
                .with_groups(case.groups);
            let problem = Problem::new(case.loads.clone(), cluster, policy).unwrap();
            let mut times = Vec::new();
            let mut proven = 0;
            let mut gap_max: f64 = 0.0;
            for layer in problem.layers().take(max_layers) {
                // The fastest of `repeat` runs (EPLB_REPEAT, default 1) to filter noise on tiny
                // layers.
                let mut best = f64::INFINITY;
                let mut s = None;
                for _ in 0..repeat {
                    let t = Instant::now();
                    let budget = LayerBudget::new().with_deadline(Some(t + limit));
                    s = Some(exact.solve_layer(&layer.with_budget(budget)).unwrap());
                    best = best.min(t.elapsed().as_secs_f64() * 1e3);
                }
                let s = s.unwrap();
                times.push(best);
                let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
                assert!(report.violations.is_empty(), "{}: infeasible", case.name);
                assert!(s.lower_bound.unwrap() <= report.max_load * (1.0 + 1e-12));
                if s.status == SolveStatus::Optimal {
                    proven += 1;
                }
                gap_max = gap_max.max(report.gap);
                if std::env::var("EPLB_VERBOSE").is_ok() {
                    println!(
                        "  layer {} {:?} load {} bound {} gap {:.2e} {:.2} ms",
                        layer.index(),
                        s.status,
                        report.max_load,
                        report.lower_bound,
                        report.gap,
                        times.last().unwrap()
                    );
                }
            }
            times.sort_by(f64::total_cmp);
            println!(
                "| {} | {} | {} | {} | {:.2e} | {:.3} | {:.3} |",
                case.name,
                problem.policy(),
                times.len(),
                proven,
                gap_max,
                times[times.len() / 2],
                times[times.len() - 1]
            );
        }
    }
}
