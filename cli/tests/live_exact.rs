//! `eplb rebalance --exact` through the real binary.

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

/// 4 experts on 3 GPUs x 3 slots, where one transfer reaches the mean load 28 and the
/// heuristic's steps stop at 29.67.
fn case(dir: &Path) -> (PathBuf, PathBuf) {
    (
        write(dir, "loads.json", "[[13, 8, 28, 35]]"),
        write(
            dir,
            "current.json",
            r#"{"phy2log": [[3, 2, 0, 1, 2, 0, 2, 1, 3]]}"#,
        ),
    )
}

fn rebalance(loads: &Path, current: &Path, extra: &[&str]) -> Command {
    let mut cmd = eplb();
    cmd.args(["rebalance", "--replicas", "9", "--gpus", "3", "--loads"])
        .arg(loads)
        .arg("--current")
        .arg(current)
        .args(extra);
    cmd
}

#[test]
fn exact_improves_on_the_heuristic_and_claims_optimal_only_when_proven() {
    let dir = tempfile::tempdir().unwrap();
    let (loads, current) = case(dir.path());
    let run = |extra: &[&str]| -> Value {
        let assert = rebalance(&loads, &current, extra)
            .arg("--json")
            .assert()
            .success();
        serde_json::from_slice(&assert.get_output().stdout).unwrap()
    };
    let plain = run(&["--max-moves", "1", "--strategy", "greedy"]);
    assert_eq!(plain["layers"][0]["optimal"], false);
    let exact = run(&[
        "--max-moves",
        "1",
        "--strategy",
        "greedy",
        "--exact",
        "--time-limit",
        "60",
    ]);
    let layer = &exact["layers"][0];
    assert_eq!(layer["new_max"], 28.0);
    assert_eq!(layer["choice"], "exact");
    assert_eq!(layer["optimal"], true);
    assert_eq!(layer["transfers"], 1);
    assert!(plain["layers"][0]["new_max"].as_f64().unwrap() > 28.0);
}

#[test]
fn exact_spends_a_byte_budget_and_refuses_a_per_step_objective() {
    let dir = tempfile::tempdir().unwrap();
    let (loads, current) = case(dir.path());
    // One expert's bytes: the allocation gives the layer one transfer, which the exact mode
    // spends on the mean load.
    let assert = rebalance(&loads, &current, &["--exact", "--max-bytes", "100"])
        .args([
            "--expert-bytes",
            "100",
            "--strategy",
            "greedy",
            "--time-limit",
            "60",
        ])
        .arg("--json")
        .assert()
        .success();
    let out: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let layer = &out["layers"][0];
    assert_eq!(
        (layer["new_max"].as_f64(), layer["transfers"].as_u64()),
        (Some(28.0), Some(1))
    );
    let steps = write(
        dir.path(),
        "steps.json",
        r#"{"loads": [[[13, 8, 28, 35]], [[1, 2, 3, 4]]]}"#,
    );
    rebalance(&steps, &current, &["--exact", "--objective", "worst-step"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot minimise the per-step objective",
        ));
}

#[test]
fn exact_reports_the_budgeted_bound_and_proves_a_tight_budget_optimal() {
    // Expert 0 (load 6) fills GPU 0; with no transfer GPU 0 keeps all of it.
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "loads.json", "[[6, 1, 1, 1, 1, 1, 1]]");
    let current = write(
        dir.path(),
        "current.json",
        r#"{"phy2log": [[0, 0, 1, 2, 3, 4, 5, 6]]}"#,
    );
    let run = |extra: &[&str]| -> Value {
        let assert = eplb()
            .args(["rebalance", "--replicas", "8", "--gpus", "4", "--loads"])
            .arg(&loads)
            .arg("--current")
            .arg(&current)
            .args(["--max-moves", "0", "--json"])
            .args(extra)
            .assert()
            .success();
        serde_json::from_slice(&assert.get_output().stdout).unwrap()
    };
    let plain = &run(&[])["layers"][0];
    assert_eq!(
        (plain["lower_bound"].as_f64(), plain["optimal"].as_bool()),
        (Some(3.0), Some(false))
    );
    let exact = &run(&["--exact"])["layers"][0];
    assert_eq!(exact["new_max"], 6.0);
    assert_eq!(
        (exact["lower_bound"].as_f64(), exact["optimal"].as_bool()),
        (Some(6.0), Some(true))
    );
}
