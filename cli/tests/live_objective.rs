//! `eplb rebalance --objective` and `--distinct-replicas` through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn eplb() -> Command {
    Command::cargo_bin("eplb").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Three steps of one layer: experts 0-1 busy first, 2-3 next, 4 last.
const STEPS: &str =
    r#"{"loads": [[[4, 4, 0, 0, 1, 1]], [[0, 0, 4, 4, 1, 1]], [[1, 1, 1, 1, 5, 0]]]}"#;
const CLUSTER: [&str; 4] = ["--replicas", "8", "--gpus", "2"];

fn run_json(cmd: &mut Command) -> Value {
    let assert = cmd.assert().success();
    serde_json::from_slice(&assert.get_output().stdout).unwrap()
}

#[test]
fn rebalance_minimises_and_reports_a_per_step_objective() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "steps.json", STEPS);
    // Each step's busy experts together on one GPU: the worst current placement for them.
    let current = write(
        dir.path(),
        "current.json",
        r#"{"phy2log": [[0, 1, 0, 1, 2, 3, 4, 5]]}"#,
    );
    let checked = run_json(
        eplb()
            .args(["--json", "check", "--loads"])
            .arg(&loads)
            .args(CLUSTER)
            .arg("--placement")
            .arg(&current),
    );
    let old_sum = checked["steps"]["layers"][0]["sum_step_max"]
        .as_f64()
        .unwrap();
    for (objective, key) in [
        ("sum-of-step-max", "sum_step_max"),
        ("worst-step", "worst_step_max"),
    ] {
        let out = dir.path().join(format!("{objective}.json"));
        let report = run_json(
            eplb()
                .args([
                    "--json",
                    "rebalance",
                    "--max-moves",
                    "4",
                    "--objective",
                    objective,
                ])
                .arg("--loads")
                .arg(&loads)
                .args(CLUSTER)
                .arg("--current")
                .arg(&current)
                .arg("--out")
                .arg(&out),
        );
        assert_eq!(report["objective"], objective);
        let layer = &report["layers"][0];
        let (old, new) = (
            layer["old_max"].as_f64().unwrap(),
            layer["new_max"].as_f64().unwrap(),
        );
        assert!(new <= old, "{layer}");
        assert!(layer["transfers"].as_u64().unwrap() <= 4);
        // The reported values are the objective `check` computes for both placements.
        let new_checked = run_json(
            eplb()
                .args(["--json", "check", "--loads"])
                .arg(&loads)
                .args(CLUSTER)
                .arg("--placement")
                .arg(&out),
        );
        let value = |v: &Value| v["steps"]["layers"][0][key].as_f64().unwrap();
        assert_eq!(value(&new_checked), new);
        assert_eq!(value(&checked), old);
        if key == "sum_step_max" {
            assert_eq!(old, old_sum);
            assert!(new < old, "the search should improve this layer: {layer}");
        }
    }
}

#[test]
fn rebalance_with_distinct_replicas_never_colocates() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "steps.json", STEPS);
    // Two replicas of expert 0 on GPU 0.
    let current = write(
        dir.path(),
        "current.json",
        r#"{"phy2log": [[0, 0, 1, 2, 3, 4, 5, 1]]}"#,
    );
    let out = dir.path().join("new.json");
    eplb()
        .args([
            "-q",
            "rebalance",
            "--max-moves",
            "2",
            "--distinct-replicas",
            "--loads",
        ])
        .arg(&loads)
        .args(CLUSTER)
        .arg("--current")
        .arg(&current)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let row: Vec<u64> = serde_json::from_value(doc["phy2log"][0].clone()).unwrap();
    for gpu in row.chunks(4) {
        let mut ids = gpu.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{row:?}");
    }
    assert_eq!(doc["layers"][0]["colocated_replicas"], 0);
}

#[test]
fn objectives_and_distinct_replicas_that_cannot_be_met_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let flat = write(dir.path(), "flat.json", r#"[[4, 4, 2, 2, 1, 1]]"#);
    let current = write(
        dir.path(),
        "current.json",
        r#"{"phy2log": [[0, 1, 2, 3, 4, 5, 0, 1]]}"#,
    );
    let out = dir.path().join("never.json");
    let rebalance = |extra: &[&str], cluster: &[&str]| {
        let mut cmd = eplb();
        cmd.arg("rebalance").args(extra).arg("--loads").arg(&flat);
        cmd.args(cluster)
            .arg("--current")
            .arg(&current)
            .arg("--out")
            .arg(&out);
        cmd.assert().failure()
    };
    rebalance(&["--objective", "worst-step"], &CLUSTER)
        .stderr(predicate::str::contains("needs per-step loads"));
    // 8 slots on one GPU, 6 experts: no distinct placement.
    rebalance(
        &["--distinct-replicas"],
        &["--replicas", "8", "--gpus", "1"],
    )
    .stderr(predicate::str::contains("distinct replicas cannot be met"));
    assert!(!out.exists());
}
