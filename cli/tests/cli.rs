//! The command line through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn eplb() -> Command {
    Command::cargo_bin("eplb").unwrap()
}

const README_LOADS: &str = r#"{"model": "eplb.py README", "loads": [
  [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]}"#;

const README_CLUSTER: [&str; 8] = [
    "--replicas",
    "16",
    "--gpus",
    "8",
    "--nodes",
    "2",
    "--groups",
    "4",
];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn esft() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/esft-vanilla-lite_esft-intent.json")
}

#[test]
fn place_writes_deepseek_arrays_and_metrics_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "loads.json", README_LOADS);
    let out = eplb()
        .arg("place")
        .arg("--loads")
        .arg(&loads)
        .args(README_CLUSTER)
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc["phy2log"][0],
        serde_json::json!([5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]),
        "the README output of eplb.py"
    );
    assert_eq!(doc["log2phy"][0].as_array().unwrap().len(), 12);
    assert_eq!(
        doc["logcnt"][1],
        serde_json::json!([1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1])
    );
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for key in [
        "max_load",
        "mean_load",
        "balancedness",
        "lower_bound",
        "status",
    ] {
        assert!(layers[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(layers[0]["max_load"], 156.0);
    assert_eq!(layers[1]["max_load"], 179.5);
    assert_eq!(layers[0]["status"], "heuristic");
    assert_eq!(doc["policy"], "hierarchical");
}

#[test]
fn what_place_writes_check_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let placement = dir.path().join("placement.json");
    for policy in ["hierarchical", "global"] {
        let cluster = [
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--nodes",
            "2",
            "--groups",
            "8",
            "--policy",
            policy,
        ];
        eplb()
            .arg("place")
            .arg("--loads")
            .arg(esft())
            .args(cluster)
            .arg("--out")
            .arg(&placement)
            .arg("--quiet")
            .assert()
            .success()
            .stdout("");
        let out = eplb()
            .arg("check")
            .arg("--loads")
            .arg(esft())
            .arg("--placement")
            .arg(&placement)
            .args(cluster)
            .arg("--json")
            .assert()
            .success();
        let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(report["feasible"], true);
        assert_eq!(report["layers"].as_array().unwrap().len(), 26);
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&placement).unwrap()).unwrap();
        assert_eq!(
            report["layers"][3]["max_load"],
            written["layers"][3]["max_load"]
        );
    }
}

#[test]
fn check_flags_a_placement_that_breaks_the_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "loads.json", r#"[[4, 3, 2, 1]]"#);
    // Groups {0,1} and {2,3}; two nodes of one GPU with two slots each. Expert 0 on node 1
    // splits group 0.
    let placement = write(
        dir.path(),
        "p.json",
        r#"{"phy2log": [[1, 2], [0, 3]]}"#.replace("], [", ", ").as_str(),
    );
    let cluster = [
        "--replicas",
        "4",
        "--gpus",
        "2",
        "--nodes",
        "2",
        "--groups",
        "2",
    ];
    eplb()
        .arg("check")
        .arg("--loads")
        .arg(&loads)
        .arg("--placement")
        .arg(&placement)
        .args(cluster)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "group 0 is split across nodes [0, 1]",
        ));
    // The same slots are fine without locality.
    eplb()
        .arg("check")
        .arg("--loads")
        .arg(&loads)
        .arg("--placement")
        .arg(&placement)
        .args(cluster)
        .args(["--policy", "global"])
        .assert()
        .success();
    // A missing expert and an out-of-range id.
    let placement = write(dir.path(), "q.json", r#"{"phy2log": [[0, 1, 1, 7]]}"#);
    eplb()
        .arg("check")
        .arg("--loads")
        .arg(&loads)
        .arg("--placement")
        .arg(&placement)
        .args(["--replicas", "4", "--gpus", "2", "--json"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("expert_out_of_range")
                .and(predicate::str::contains("missing_expert")),
        );
}

#[test]
fn bench_prints_one_json_line_with_the_median() {
    let out = eplb()
        .arg("bench")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--nodes",
            "2",
            "--groups",
            "8",
            "--iterations",
            "3",
            "--warmup",
            "0",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1);
    let line: Value = serde_json::from_str(&text).unwrap();
    assert!(line["median_ns"].as_u64().unwrap() > 0);
    assert_eq!(line["strategy"], "greedy");
    assert_eq!(line["iterations"], 3);
}

#[test]
fn bench_takes_the_strategy_flags_of_place() {
    let bench = |extra: &[&str]| {
        let mut cmd = eplb();
        cmd.arg("bench").arg("--loads").arg(esft()).args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--iterations",
            "1",
            "--warmup",
            "0",
        ]);
        cmd.args(extra);
        cmd
    };
    let out = bench(&["--strategy", "hierarchical", "--sub-strategy", "refine"])
        .assert()
        .success();
    let line: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(line["strategy"], "hierarchical");
    bench(&["--sub-strategy", "refine"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "configure the `hierarchical` strategy",
        ));
}

#[test]
fn strategies_lists_greedy() {
    eplb()
        .arg("strategies")
        .assert()
        .success()
        .stdout(predicate::str::contains("greedy"));
    let out = eplb().args(["strategies", "--json"]).assert().success();
    let list: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "greedy"));
}

#[test]
fn demo_runs_and_explains_itself() {
    eplb().arg("demo").assert().success().stdout(
        predicate::str::contains("greedy").and(predicate::str::contains("How to read this")),
    );
}

#[test]
fn errors_name_the_problem_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(&missing)
        .args(README_CLUSTER)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nope.json"));
    let empty = write(dir.path(), "empty.json", "  \n");
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(&empty)
        .args(README_CLUSTER)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("empty"));
    let negative = write(dir.path(), "neg.json", r#"{"loads": [[1, 2, -3, 4]]}"#);
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(&negative)
        .args(["--replicas", "4", "--gpus", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("expert 2 is negative"));
    let loads = write(dir.path(), "loads.json", README_LOADS);
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(&loads)
        .args(["--replicas", "17", "--gpus", "8"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "17 replicas do not divide evenly over 8 GPUs",
        ));
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(&loads)
        .args(README_CLUSTER)
        .args(["--strategy", "magic"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unknown strategy `magic`; available: greedy",
        ));
}

#[test]
fn usage_errors_exit_2() {
    eplb().arg("place").assert().code(2);
    eplb().arg("frobnicate").assert().code(2);
    let place = ["place", "--loads", "x.json", "--gpus", "2"];
    for (extra, message) in [
        (&["--replicas", "many"][..], "invalid value 'many'"),
        (
            &["--replicas", "4", "--time-limit", "0"][..],
            "not a positive number of seconds",
        ),
        (
            &["--replicas", "4", "--mip-gap=-1"][..],
            "relative gap >= 0",
        ),
    ] {
        eplb()
            .args(place)
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    }
}

#[test]
fn loads_can_come_from_standard_input() {
    let out = eplb()
        .args(["place", "--loads", "-"])
        .args(README_CLUSTER)
        .write_stdin(README_LOADS)
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["layers"][0]["max_load"], 156.0);
}

/// An SGLang `logical_count` dump of the README loads with two leading dense layers.
fn sglang_dump(dir: &Path) -> PathBuf {
    write(
        dir,
        "dump.json",
        r#"{"logical_count": [[0,0,0,0,0,0,0,0,0,0,0,0], [0,0,0,0,0,0,0,0,0,0,0,0],
          [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]}"#,
    )
}

#[test]
fn every_output_format_is_read_back_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let dump = sglang_dump(dir.path());
    for (format, name) in [
        ("deepseek", "p.json"),
        ("sglang", "p_sglang.json"),
        ("trtllm", "p.yaml"),
    ] {
        let out = dir.path().join(name);
        eplb()
            .arg("place")
            .arg("--loads")
            .arg(&dump)
            .args(README_CLUSTER)
            .args(["--format", format])
            .arg("--out")
            .arg(&out)
            .assert()
            .success()
            .stderr(predicate::str::contains(
                "skipped 2 leading all-zero layer(s)",
            ));
        let check = eplb()
            .arg("check")
            .arg("--loads")
            .arg(&dump)
            .arg("--placement")
            .arg(&out)
            .args(README_CLUSTER)
            .arg("--json")
            .arg("--quiet")
            .assert()
            .success()
            .stderr("");
        let report: Value = serde_json::from_slice(&check.get_output().stdout).unwrap();
        assert_eq!(report["feasible"], true, "{format}");
        assert_eq!(report["layers"][0]["max_load"], 156.0, "{format}");
    }
    // The SGLang file covers the model's layers, dense ones included.
    let sg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p_sglang.json")).unwrap())
            .unwrap();
    assert_eq!(sg["physical_to_logical_map"].as_array().unwrap().len(), 4);
    let yaml = std::fs::read_to_string(dir.path().join("p.yaml")).unwrap();
    assert!(
        yaml.contains("num_slots: 16") && yaml.contains("\n  2:\n") && yaml.contains("\n  3:\n"),
        "{yaml}"
    );
    // CSV of per-GPU loads, keyed by model layer.
    let out = eplb()
        .arg("place")
        .arg("--loads")
        .arg(&dump)
        .args(README_CLUSTER)
        .args(["--format", "csv", "-q"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("2,156,"), "{text}");
}

#[test]
fn compare_prints_a_table_or_json() {
    let out = eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--nodes",
            "2",
            "--groups",
            "8",
            "--strategies",
            "greedy",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("gap to best bound") && text.contains("greedy"),
        "{text}"
    );
    let out = eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--json",
            "--strategies",
            "greedy,exact",
            "--time-limit",
            "0.2",
        ])
        .assert()
        .success();
    let c: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(c["best_bounds"].as_array().unwrap().len(), 26);
    assert_eq!(c["rows"][0]["strategy"], "greedy");
    assert_eq!(c["rows"][1]["strategy"], "exact");
    // exact proves layers, so greedy's gap to the best bound is a measured fact.
    assert!(c["rows"][1]["proven_optimal"].as_u64().unwrap() > 0);
    assert!(c["rows"][0]["max_gap_to_best_bound"].as_f64().unwrap() >= 0.0);
    eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--strategies",
            "greedy,nope",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown strategy `nope`"));
}

#[test]
fn sweep_writes_one_row_per_file_shape_and_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let loads = write(dir.path(), "loads.json", README_LOADS);
    let csv_out = dir.path().join("sweep.csv");
    eplb()
        .arg("sweep")
        .arg("--loads")
        .arg(&loads)
        .arg(esft())
        .args([
            "--replicas",
            "16,80",
            "--gpus",
            "8",
            "--policy",
            "global,auto",
            "--strategies",
            "greedy,refine",
        ])
        .arg("--out")
        .arg(&csv_out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv_out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // header + 2 files x 2 replica counts x 2 policies x 2 strategies
    assert_eq!(lines.len(), 1 + 2 * 2 * 2 * 2, "{text}");
    assert!(lines[0]
        .starts_with("file,layers,experts,replicas,gpus,nodes,groups,policy,strategy,max_load"));
    // 16 slots cannot hold the 64 ESFT experts: that row says why instead of ending the sweep.
    assert!(
        text.contains("16 replicas cannot hold 64 experts"),
        "{text}"
    );
    let out = eplb()
        .arg("sweep")
        .arg("--loads")
        .arg(&loads)
        .args(["--replicas", "16", "--gpus", "8", "--json"])
        .assert()
        .success();
    let rows: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        eplb::strategies::names().len()
    );
    assert!(rows[0]["max_gap"].as_f64().is_some());
}

#[test]
fn plots_are_written_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("p.svg");
    let png = dir.path().join("c.png");
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(esft())
        .args(["--replicas", "80", "--gpus", "8", "-q"])
        .arg("--plot")
        .arg(&svg)
        .args(["--plot-layer", "3", "--out"])
        .arg(dir.path().join("x.json"))
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("GPU") && text.contains("balancedness"));
    eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "-q",
            "--strategies",
            "greedy,refine",
        ])
        .arg("--plot")
        .arg(&png)
        .assert()
        .success();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args(["--replicas", "80", "--gpus", "8"])
        .arg("--plot")
        .arg(dir.path().join("x.gif"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(".svg or .png"));
    eplb()
        .arg("compare")
        .arg("--loads")
        .arg(esft())
        .args(["--replicas", "80", "--gpus", "8", "--plot-layer", "26"])
        .arg("--plot")
        .arg(&svg)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("26 layers"));
}

#[test]
fn help_has_examples_and_demo_has_json() {
    eplb()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    eplb()
        .args(["place", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--format"));
    let out = eplb().args(["demo", "--json"]).assert().success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
}

#[test]
fn hierarchical_runs_over_a_topology_file_with_a_sub_strategy() {
    let dir = tempfile::tempdir().unwrap();
    // Two racks of one node each: the two-level case written as a deeper tree.
    let topo = write(
        dir.path(),
        "racks.json",
        r#"{"children": [{"name": "rack0", "children": [{"gpus": 4, "slots_per_gpu": 10}]},
                         {"name": "rack1", "children": [{"gpus": 4, "slots_per_gpu": 10}]}]}"#,
    );
    let cluster = [
        "--replicas",
        "80",
        "--gpus",
        "8",
        "--nodes",
        "2",
        "--groups",
        "8",
    ];
    let out = eplb()
        .arg("place")
        .arg("--loads")
        .arg(esft())
        .args(cluster)
        .args([
            "--strategy",
            "hierarchical",
            "--sub-strategy",
            "refine",
            "--topology",
        ])
        .arg(&topo)
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["strategy"], "hierarchical");
    assert_eq!(doc["summary"]["violations"], 0);
    // The tree must agree with the flags, and the flags need the hierarchical strategy.
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(esft())
        .args([
            "--replicas",
            "80",
            "--gpus",
            "8",
            "--nodes",
            "4",
            "--groups",
            "8",
        ])
        .args(["--strategy", "hierarchical", "--topology"])
        .arg(&topo)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the topology has 2 nodes but the cluster has 4",
        ));
    eplb()
        .arg("place")
        .arg("--loads")
        .arg(esft())
        .args(cluster)
        .arg("--topology")
        .arg(&topo)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "configure the `hierarchical` strategy",
        ));
}
