//! `eplb check --failed-gpus` and `eplb bench --current ... --failed-gpus` through the real
//! binary: a placement with dead GPUs (`-1` slots) is judged on the live GPUs when they are
//! listed, and refused with a clear error when they are not.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn eplb() -> Command {
    Command::cargo_bin("eplb").unwrap()
}

/// 4 experts on 4 GPUs x 2 slots, GPU 3 dead: the live GPUs hold {0, 1}, {2, 3}, {0, 1}.
fn case(dir: &Path) -> (PathBuf, PathBuf) {
    let loads = dir.join("loads.json");
    std::fs::write(&loads, "[[4, 3, 2, 1]]").unwrap();
    let placement = dir.join("placement.json");
    std::fs::write(&placement, r#"{"phy2log": [[0, 1, 2, 3, 0, 1, -1, -1]]}"#).unwrap();
    (loads, placement)
}

fn command(sub: &str, loads: &Path, placement: &Path) -> Command {
    let mut cmd = eplb();
    let flag = if sub == "check" {
        "--placement"
    } else {
        "--current"
    };
    cmd.args([sub, "--replicas", "8", "--gpus", "4", "--loads"])
        .arg(loads)
        .arg(flag)
        .arg(placement);
    cmd
}

#[test]
fn check_judges_a_placement_with_dead_gpus_on_the_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (loads, placement) = case(dir.path());
    let assert = command("check", &loads, &placement)
        .args(["--failed-gpus", "3", "--json"])
        .assert()
        .success();
    let out: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(out["feasible"], true);
    assert_eq!(out["failed_gpus"], serde_json::json!([3]));
    let layer = &out["layers"][0];
    // GPU 0: 4/2 + 3/2; GPU 1: 2 + 1; GPU 2 as GPU 0. Mean over the 3 live GPUs: 10/3.
    assert_eq!(layer["gpu_loads"], serde_json::json!([3.5, 3.0, 3.5]));
    assert_eq!(layer["max_load"], 3.5);
    // A live GPU may be listed too: its replicas no longer count (expert 2 and 3 are lost).
    command("check", &loads, &placement)
        .args(["--failed-gpus", "1,3"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("expert 2"));
}

#[test]
fn check_refuses_dead_gpus_that_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (loads, placement) = case(dir.path());
    for extra in [&[][..], &["--failed-gpus", "2"][..]] {
        command("check", &loads, &placement)
            .args(extra)
            .assert()
            .failure()
            .stderr(predicate::str::contains("dead in the current placement"))
            .stderr(predicate::str::contains("--failed-gpus"));
    }
    command("check", &loads, &placement)
        .args(["--failed-gpus", "4"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("GPU 4 does not exist"));
}

#[test]
fn bench_times_a_rebalance_on_the_live_gpus() {
    let dir = tempfile::tempdir().unwrap();
    let (loads, placement) = case(dir.path());
    let assert = command("bench", &loads, &placement)
        .args([
            "--failed-gpus",
            "3",
            "--max-moves",
            "2",
            "--iterations",
            "2",
        ])
        .args(["--warmup", "0"])
        .assert()
        .success();
    let out: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(out["failed_gpus"], serde_json::json!([3]));
    assert_eq!(out["iterations"], 2);
    command("bench", &loads, &placement)
        .args(["--max-moves", "2", "--iterations", "2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--failed-gpus 3"));
    eplb()
        .args(["bench", "--replicas", "8", "--gpus", "4", "--loads"])
        .arg(&loads)
        .args(["--failed-gpus", "3", "--iterations", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--failed-gpus needs --current"));
}
