//! `eplb rebalance`, `place --current`, `--failed-gpus` and `bench --current` through the real
//! binary: outputs, the plan, and bad input that writes nothing.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn eplb() -> Command {
    Command::cargo_bin("eplb").unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name)
}

/// The ESFT traces: 26 layers x 64 experts; cluster R=80, P=16, 2 nodes, 4 groups.
const CLUSTER: [&str; 8] = [
    "--replicas",
    "80",
    "--gpus",
    "16",
    "--nodes",
    "2",
    "--groups",
    "4",
];

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `eplb COMMAND FLAGS --loads LAW --current CURRENT ...cluster...`: the law trace's loads from
/// the `current` placement.
fn from_current(command: &str, current: &Path, flags: &[&str]) -> Command {
    let mut cmd = eplb();
    cmd.arg(command)
        .args(flags)
        .arg("--loads")
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .arg("--current")
        .arg(current)
        .args(CLUSTER);
    cmd
}

/// The `refine` placement of the intent trace, written to `dir`.
fn current(dir: &Path) -> PathBuf {
    let out = dir.join("current.json");
    eplb()
        .args(["place", "--strategy", "refine", "-q", "--loads"])
        .arg(data("esft-vanilla-lite_esft-intent.json"))
        .args(CLUSTER)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

#[test]
fn rebalance_writes_a_placement_and_a_plan_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    let (out, plan) = (dir.path().join("new.json"), dir.path().join("plan.json"));
    eplb()
        .args([
            "rebalance",
            "--max-moves",
            "6",
            "--expert-bytes",
            "100",
            "--loads",
        ])
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .arg("--current")
        .arg(&current)
        .args(CLUSTER)
        .arg("--out")
        .arg(&out)
        .arg("--plan")
        .arg(&plan)
        .assert()
        .success()
        .stdout(predicate::str::contains("cross-node").and(predicate::str::contains("total")));
    // The placement is feasible for the new loads (`check` agrees).
    eplb()
        .args(["check", "-q", "--loads"])
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .arg("--placement")
        .arg(&out)
        .args(CLUSTER)
        .assert()
        .success();
    let plan = json(&plan);
    let layers = plan["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 26);
    for layer in layers {
        let transfers = layer["transfers"].as_u64().unwrap();
        assert!(transfers <= 6, "{layer}");
        assert_eq!(layer["bytes"].as_u64().unwrap(), 100 * transfers);
        assert_eq!(layer["rounds"], layer["rounds_lower_bound"]);
        assert!(layer["new_max"].as_f64().unwrap() <= layer["old_max"].as_f64().unwrap());
        assert_eq!(layer["moves"].as_array().unwrap().len() as u64, transfers);
    }
}

#[test]
fn place_current_aligns_and_rebalance_json_has_curves() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    from_current("place", &current, &["--strategy", "refine"])
        .arg("--out")
        .arg(dir.path().join("aligned.json"))
        .assert()
        .success()
        .stderr(predicate::str::contains("aligned to the current placement"));
    let out = from_current("rebalance", &current, &["--json", "--max-bytes", "0"])
        .assert()
        .success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // A zero byte budget keeps everything.
    assert_eq!(report["transfers"], 0);
    assert!(!report["layers"][0]["curve"].as_array().unwrap().is_empty());
}

#[test]
fn failed_gpus_are_minus_one_in_phy2log_and_expert_zero_for_sglang() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    let out = dir.path().join("new.json");
    from_current("rebalance", &current, &["--failed-gpus", "3"])
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("global policy is used"));
    let doc = json(&out);
    let row = doc["phy2log"][0].as_array().unwrap();
    assert!(row[15..20].iter().all(|v| v == -1), "{row:?}");
    assert!(row.iter().filter(|v| **v == -1).count() == 5);
    assert_eq!(doc["failed_gpus"], serde_json::json!([3]));
    let sglang = dir.path().join("sglang.json");
    eplb()
        .args([
            "place",
            "-q",
            "--format",
            "sglang",
            "--failed-gpus",
            "3",
            "--loads",
        ])
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .args(CLUSTER)
        .arg("--out")
        .arg(&sglang)
        .assert()
        .success();
    let map = json(&sglang)["physical_to_logical_map"].clone();
    let last = map
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert!(last[15..20].iter().all(|v| v == 0));
}

#[test]
fn the_thorough_effort_is_never_higher_than_the_quick_one() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    let report = |effort: &str| -> Value {
        let flags = [
            "--json",
            "--max-moves",
            "4",
            "--policy",
            "global",
            "--effort",
            effort,
        ];
        let out = from_current("rebalance", &current, &flags)
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let (quick, thorough) = (report("quick"), report("thorough"));
    let layers = |r: &Value| r["layers"].as_array().unwrap().clone();
    let field = |l: &Value, name: &str| l[name].as_f64().unwrap();
    for (q, t) in layers(&quick).iter().zip(&layers(&thorough)) {
        assert!(field(t, "new_max") <= field(q, "new_max"), "{q} {t}");
        assert!(field(q, "new_max") <= field(q, "old_max"));
        assert!(q["transfers"].as_u64().unwrap() <= 4);
        assert!(t["transfers"].as_u64().unwrap() <= 4);
    }
    from_current("rebalance", &current, &["--effort", "fast"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("quick").and(predicate::str::contains("thorough")));
}

#[test]
fn bad_input_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    let out = dir.path().join("never.json");
    let run = |extra: &[&str], current: &Path| {
        from_current("rebalance", current, extra)
            .arg("--out")
            .arg(&out)
            .assert()
    };
    run(&["--max-moves", "-1"], &current).code(2);
    run(&["--max-moves", "many"], &current).code(2);
    run(&["--min-gain", "-0.5"], &current).code(2);
    run(&["--failed-gpus", "16"], &current)
        .code(1)
        .stderr(predicate::str::contains("GPU ids are 0..16"));
    run(&["--failed-gpus", "0,1,2,3"], &current)
        .code(1)
        .stderr(predicate::str::contains("cannot hold 64 experts"));
    // A current placement of another shape (fewer slots).
    let small = dir.path().join("small.json");
    eplb()
        .args(["place", "-q", "--loads"])
        .arg(data("esft-vanilla-lite_esft-intent.json"))
        .args(["--replicas", "64", "--gpus", "16", "--policy", "global"])
        .arg("--out")
        .arg(&small)
        .assert()
        .success();
    run(&[], &small)
        .code(1)
        .stderr(predicate::str::contains("slots"));
    assert!(!out.exists());
}

#[test]
fn bench_times_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path());
    let flags = [
        "--iterations",
        "2",
        "--warmup",
        "0",
        "--no-fresh",
        "--max-moves",
        "4",
    ];
    let out = from_current("bench", &current, &flags).assert().success();
    let line: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(line["rebalance"], "search");
    assert_eq!(line["effort"], "thorough");
    assert!(line["median_ns"].as_u64().unwrap() > 0);
    let quick = [&flags[..], &["--effort", "quick"]].concat();
    let out = from_current("bench", &current, &quick).assert().success();
    let line: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(line["effort"], "quick");
}
