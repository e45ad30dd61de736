//! `--current` files with dead GPUs (`-1` slots) through the real binary: `place --failed-gpus
//! 3 --out A` then `rebalance --current A --failed-gpus 3,7` in every format, transfers
//! counted from the file, and the errors for dead GPUs that do not fit.

use std::collections::HashSet;
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

/// The ESFT traces: 26 layers x 64 experts on 16 GPUs of 5 slots (global policy).
const CLUSTER: [&str; 4] = ["--replicas", "80", "--gpus", "16"];
const SLOTS: usize = 5;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `phy2log` rows of a DeepSeek file (`-1` kept).
fn phy2log(path: &Path) -> Vec<Vec<i64>> {
    serde_json::from_value(json(path)["phy2log"].clone()).unwrap()
}

/// The intent trace placed by `refine` with GPU 3 failed, in `format`, written to `dir`.
fn current(dir: &Path, format: &str) -> PathBuf {
    let ext = if format == "trtllm" { "yaml" } else { "json" };
    let out = dir.join(format!("current-{format}.{ext}"));
    eplb()
        .args(["place", "--strategy", "refine", "-q", "--failed-gpus", "3"])
        .args(["--format", format, "--loads"])
        .arg(data("esft-vanilla-lite_esft-intent.json"))
        .args(CLUSTER)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

/// Transfers from `current` to `new` on the live GPUs (not in `failed`), counted from the
/// files: a replica on a GPU whose current slots did not hold its expert.
fn transfers(current: &[i64], new: &[i64], failed: &[usize]) -> usize {
    (0..new.len() / SLOTS)
        .filter(|g| !failed.contains(g))
        .map(|g| {
            let held: HashSet<i64> = current[g * SLOTS..(g + 1) * SLOTS]
                .iter()
                .copied()
                .collect();
            new[g * SLOTS..(g + 1) * SLOTS]
                .iter()
                .filter(|e| !held.contains(e))
                .count()
        })
        .sum()
}

#[test]
fn rebalance_reads_minus_one_slots_in_every_format_and_counts_transfers_right() {
    let dir = tempfile::tempdir().unwrap();
    let deepseek = current(dir.path(), "deepseek");
    let held = phy2log(&deepseek);
    assert!(held
        .iter()
        .all(|row| row[3 * SLOTS..4 * SLOTS] == [-1; SLOTS]));
    let mut plans = Vec::new();
    for format in ["deepseek", "sglang", "trtllm"] {
        let file = current(dir.path(), format);
        let (out, plan) = (
            dir.path().join(format!("new-{format}.json")),
            dir.path().join(format!("plan-{format}.json")),
        );
        eplb()
            .args([
                "rebalance",
                "-q",
                "--max-moves",
                "4",
                "--failed-gpus",
                "3,7",
            ])
            .arg("--loads")
            .arg(data("esft-vanilla-lite_esft-law.json"))
            .arg("--current")
            .arg(&file)
            .args(CLUSTER)
            .arg("--out")
            .arg(&out)
            .arg("--plan")
            .arg(&plan)
            .assert()
            .success();
        let new = phy2log(&out);
        let plan = json(&plan);
        for (l, layer) in plan["layers"].as_array().unwrap().iter().enumerate() {
            assert!(new[l][3 * SLOTS..4 * SLOTS]
                .iter()
                .chain(&new[l][7 * SLOTS..8 * SLOTS])
                .all(|&e| e == -1));
            let counted = transfers(&held[l], &new[l], &[3, 7]);
            assert_eq!(layer["transfers"].as_u64().unwrap() as usize, counted);
            let moves = layer["moves"].as_array().unwrap();
            assert_eq!(moves.len(), counted);
            // GPU 7 newly failed: experts only it held come from host memory, and nothing is
            // sent from or to a dead GPU.
            let reloads = moves.iter().filter(|m| m["from_gpu"].is_null()).count();
            assert_eq!(layer["host_reloads"].as_u64().unwrap() as usize, reloads);
            let only_on_7: HashSet<i64> = held[l][7 * SLOTS..8 * SLOTS]
                .iter()
                .copied()
                .filter(|e| !held[l][..7 * SLOTS].contains(e) && !held[l][8 * SLOTS..].contains(e))
                .collect();
            assert!(reloads >= only_on_7.len(), "layer {l}");
            for m in moves {
                assert!(![3, 7].contains(&m["to_gpu"].as_u64().unwrap()));
                assert!(m["from_gpu"].as_u64().is_none_or(|g| ![3, 7].contains(&g)));
            }
            // The budget of 4 is spent besides the forced reloads.
            assert!(counted <= 4 + reloads, "layer {l}: {counted} transfers");
        }
        plans.push(plan);
    }
    // The same current placement in three formats: the same plan.
    assert_eq!(plans[0], plans[1]);
    assert_eq!(plans[0], plans[2]);
}

#[test]
fn place_current_with_minus_one_slots_aligns_on_the_live_gpus() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path(), "deepseek");
    let out = dir.path().join("placed.json");
    eplb()
        .args([
            "place",
            "--strategy",
            "refine",
            "--failed-gpus",
            "3,7",
            "--loads",
        ])
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .arg("--current")
        .arg(&current)
        .args(CLUSTER)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("aligned to the current placement"));
    let (held, new) = (phy2log(&current), phy2log(&out));
    assert!(new
        .iter()
        .all(|row| row[7 * SLOTS..8 * SLOTS] == [-1; SLOTS]));
    // Aligned: fewer transfers than the unaligned placement on the same live GPUs.
    let fresh = dir.path().join("fresh.json");
    eplb()
        .args([
            "place",
            "--strategy",
            "refine",
            "-q",
            "--failed-gpus",
            "3,7",
            "--loads",
        ])
        .arg(data("esft-vanilla-lite_esft-law.json"))
        .args(CLUSTER)
        .arg("--out")
        .arg(&fresh)
        .assert()
        .success();
    let fresh = phy2log(&fresh);
    let total = |p: &[Vec<i64>]| -> usize {
        (0..p.len())
            .map(|l| transfers(&held[l], &p[l], &[3, 7]))
            .sum()
    };
    assert!(
        total(&new) < total(&fresh),
        "{} vs {}",
        total(&new),
        total(&fresh)
    );
}

#[test]
fn dead_gpus_that_do_not_fit_are_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let current = current(dir.path(), "deepseek");
    let out = dir.path().join("never.json");
    let run = |command: &str, failed: Option<&str>, file: &Path| {
        let mut cmd = eplb();
        cmd.arg(command).arg("--loads");
        cmd.arg(data("esft-vanilla-lite_esft-law.json"));
        cmd.arg("--current")
            .arg(file)
            .args(CLUSTER)
            .arg("--out")
            .arg(&out);
        if let Some(f) = failed {
            cmd.args(["--failed-gpus", f]);
        }
        cmd.assert().failure()
    };
    for command in ["place", "rebalance"] {
        // GPU 3 is dead in the file but not listed.
        run(command, Some("7"), &current).stderr(predicate::str::contains("--failed-gpus 3,7"));
        run(command, None, &current).stderr(predicate::str::contains("--failed-gpus 3"));
    }
    // Part of a GPU dead.
    let mut rows = phy2log(&current);
    for row in &mut rows {
        row[3 * SLOTS] = 0;
    }
    let half = dir.path().join("half.json");
    std::fs::write(&half, serde_json::json!({ "phy2log": rows }).to_string()).unwrap();
    run("rebalance", Some("3"), &half)
        .stderr(predicate::str::contains("GPU 3 has 4 of its 5 slots"));
    assert!(!out.exists());
}
