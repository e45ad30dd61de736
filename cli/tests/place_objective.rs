//! `eplb place --objective` and `--distinct-replicas` through the real binary.

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

fn place(dir: &Path, extra: &[&str]) -> (Value, Value) {
    let loads = write(dir, "steps.json", STEPS);
    let out = dir.join("p.json");
    let assert = eplb()
        .args(["--json", "place", "--loads"])
        .arg(&loads)
        .args(["--replicas", "8", "--gpus", "2", "--out"])
        .arg(&out)
        .args(extra)
        .assert()
        .success();
    let summary: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (summary, doc)
}

#[test]
fn per_step_input_reports_every_objective_and_the_per_step_search_lowers_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (mean, doc) = place(dir.path(), &[]);
    let layer = &doc["layers"][0];
    assert!(layer["mean_step_max"].as_f64().is_some());
    assert!(layer["worst_step_max"].as_f64().is_some());
    assert_eq!(doc["steps"]["steps"], 3);
    // `check` reports the same objectives for the placement read back.
    let assert = eplb()
        .args(["--json", "check", "--loads"])
        .arg(dir.path().join("steps.json"))
        .args(["--replicas", "8", "--gpus", "2", "--placement"])
        .arg(dir.path().join("p.json"))
        .assert()
        .success();
    let checked: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(checked["steps"]["summary"], mean["steps"]["summary"]);
    let sum = |v: &Value| v["steps"]["summary"]["sum_step_max"].as_f64().unwrap();
    let worst = |v: &Value| v["steps"]["summary"]["worst_step_max"].as_f64().unwrap();
    let (per_step, _) = place(dir.path(), &["--objective", "sum-of-step-max"]);
    assert!(sum(&per_step) <= sum(&mean), "{per_step} vs {mean}");
    let (worst_step, _) = place(dir.path(), &["--objective", "worst-step"]);
    assert!(worst(&worst_step) <= worst(&mean));
    // After the exact strategy the per-step MILP runs: never worse than that strategy's own
    // placement for the mean.
    let ilp = ["--strategy", "ilp", "--time-limit", "5"];
    let (ilp_mean, _) = place(dir.path(), &ilp);
    let (exact, _) = place(
        dir.path(),
        &[&ilp[..], &["--objective", "sum-of-step-max"]].concat(),
    );
    assert!(sum(&exact) <= sum(&ilp_mean));
}

#[test]
fn the_mean_objective_places_per_step_loads_as_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let (_, per_step) = place(dir.path(), &[]);
    // The same loads summed over the steps, without a step axis.
    let summed = write(dir.path(), "sum.json", "[[5, 5, 5, 5, 7, 2]]");
    let out = dir.path().join("sum-placement.json");
    eplb()
        .args(["place", "--loads"])
        .arg(&summed)
        .args(["--replicas", "8", "--gpus", "2", "--out"])
        .arg(&out)
        .assert()
        .success();
    let flat: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(per_step["phy2log"], flat["phy2log"]);
    assert_eq!(per_step["summary"], flat["summary"]);
}

#[test]
fn two_dimensional_loads_have_no_step_report_and_refuse_per_step_objectives() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "l.json", "[[4, 1, 1, 2]]");
    let out = dir.path().join("p.json");
    eplb()
        .args(["place", "--loads"])
        .arg(&loads)
        .args(["--replicas", "4", "--gpus", "2", "--out"])
        .arg(&out)
        .assert()
        .success();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(doc.get("steps").is_none());
    assert!(doc["layers"][0].get("mean_step_max").is_none());
    std::fs::remove_file(&out).unwrap();
    eplb()
        .args(["place", "--loads"])
        .arg(&loads)
        .args([
            "--replicas",
            "4",
            "--gpus",
            "2",
            "--objective",
            "worst-step",
            "--out",
        ])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs per-step loads"));
    assert!(!out.exists(), "nothing is written on an error");
    eplb()
        .args(["place", "--loads"])
        .arg(&loads)
        .args(["--replicas", "4", "--gpus", "2", "--objective", "max"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("sum-of-step-max"));
}

#[test]
fn distinct_replicas_are_honoured_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    // One hot expert: greedy stacks its replicas.
    let loads = write(dir.path(), "hot.json", "[[90, 5, 3, 2]]");
    let out = dir.path().join("p.json");
    let run = |extra: &[&str]| {
        eplb()
            .args(["place", "--loads"])
            .arg(&loads)
            .args([
                "--replicas",
                "8",
                "--gpus",
                "2",
                "--policy",
                "global",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .assert()
    };
    run(&[]).success();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(doc["summary"]["colocated_replicas"].as_u64().unwrap() > 0);
    // `check` accepts it, unless distinct replicas are required.
    let check = |extra: &[&str]| {
        eplb()
            .args(["check", "--loads"])
            .arg(&loads)
            .args([
                "--replicas",
                "8",
                "--gpus",
                "2",
                "--policy",
                "global",
                "--placement",
            ])
            .arg(&out)
            .args(extra)
            .assert()
    };
    check(&[]).success();
    check(&["--distinct-replicas"])
        .failure()
        .stdout(predicate::str::contains("distinct replicas allow one"));
    for strategy in ["greedy", "refine", "hierarchical", "exact", "ilp"] {
        run(&[
            "--distinct-replicas",
            "--strategy",
            strategy,
            "--time-limit",
            "2",
        ])
        .success();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(doc["summary"]["colocated_replicas"], 0, "{strategy}");
        assert_eq!(doc["summary"]["violations"], 0, "{strategy}");
    }
    // 6 slots per GPU, 4 experts: impossible.
    std::fs::remove_file(&out).unwrap();
    eplb()
        .args(["place", "--loads"])
        .arg(&loads)
        .args([
            "--replicas",
            "12",
            "--gpus",
            "2",
            "--distinct-replicas",
            "--out",
        ])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("distinct replicas cannot be met"));
    assert!(!out.exists());
}
