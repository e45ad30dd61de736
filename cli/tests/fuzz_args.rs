//! The command line's argument surface under random argument lists (issue 15): every
//! subcommand that reads a problem, with counts, limits, strategies and policies drawn from
//! valid values and from the values that broke it before (negative, zero, huge, not numbers,
//! empty lists). Every run must end with status 0, 1 (a reported error) or 2 (a usage error),
//! never a panic or an abort, within [`WALL_LIMIT`] (no hang), and under an address-space cap
//! of [`ADDRESS_SPACE_KIB`] (an allocation sized by a number from the command line or a file
//! fails the run).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;

/// Longest a run may take: the problems are tiny and every search has a small limit.
const WALL_LIMIT: Duration = Duration::from_secs(60);

/// The address space a run may use (2 GiB, `ulimit -v`).
const ADDRESS_SPACE_KIB: u64 = 2 << 20;

const LOADS: &str =
    r#"{"loads": [[90, 132, 40, 61, 104, 165, 39, 4], [20, 107, 104, 64, 19, 197, 187, 157]]}"#;
const PLACEMENT: &str = r#"{"phy2log": [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0]]}"#;

const COUNTS: &[&str] = &[
    "1",
    "2",
    "4",
    "8",
    "16",
    "0",
    "-1",
    "-16",
    "3",
    "10000000000",
    "18446744073709551616",
    "65537",
    "x",
    "1.5",
    "",
];
const SECONDS: &[&str] = &[
    "0.02", "0.05", "0", "-1", "1e300", "1e19", "NaN", "inf", "x",
];
const THREADS: &[&str] = &["1", "2", "0", "100000", "-2", "x"];
const STRATEGIES: &[&str] = &[
    "greedy",
    "refine",
    "refine-deep",
    "hierarchical",
    "exact",
    "ilp",
    "",
    "nope",
    ",",
    "greedy,ilp",
];
const POLICIES: &[&str] = &["auto", "global", "hierarchical", "nope"];
const COMMANDS: &[&str] = &["place", "check", "compare", "sweep", "bench"];

/// One flag with a value drawn from its set.
fn flag() -> impl Strategy<Value = Vec<String>> {
    let pick = |name: &'static str, values: &'static [&'static str]| {
        proptest::sample::select(values).prop_map(move |v| vec![format!("--{name}"), v.to_string()])
    };
    prop_oneof![
        pick("replicas", COUNTS),
        pick("gpus", COUNTS),
        pick("nodes", COUNTS),
        pick("groups", COUNTS),
        pick("time-limit", SECONDS),
        pick("mip-gap", SECONDS),
        pick("threads", THREADS),
        pick("strategy", STRATEGIES),
        pick("strategies", STRATEGIES),
        pick("policy", POLICIES),
        pick("iterations", COUNTS),
        pick("warmup", COUNTS),
    ]
}

/// Runs the binary with `args` under the caps; its status and standard error.
fn run(args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_eplb"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shell starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > WALL_LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("eplb {args:?} ran past {WALL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .ok();
    (status.code(), stderr)
}

fn with_files(dir: &Path, command: &str, flags: Vec<Vec<String>>) -> Vec<String> {
    let loads = dir.join("loads.json");
    let placement = dir.join("placement.json");
    let mut args = vec![
        "--quiet".to_string(),
        command.to_string(),
        "--loads".into(),
        loads.display().to_string(),
    ];
    if command == "check" {
        args.extend(["--placement".into(), placement.display().to_string()]);
    }
    // A small default time limit first: a later random one overrides it.
    if matches!(command, "place" | "compare" | "sweep" | "bench") {
        args.extend(["--time-limit".into(), "0.05".into()]);
    }
    args.extend(flags.into_iter().flatten());
    args
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_argument_list_ends_cleanly(
        command in proptest::sample::select(COMMANDS),
        flags in proptest::collection::vec(flag(), 0..7),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loads.json"), LOADS).unwrap();
        std::fs::write(dir.path().join("placement.json"), PLACEMENT).unwrap();
        let args = with_files(dir.path(), command, flags);
        let (code, stderr) = run(&args);
        prop_assert!(
            matches!(code, Some(0..=2)),
            "eplb {args:?} ended with {code:?}: {stderr}"
        );
        prop_assert!(!stderr.contains("panicked"), "eplb {args:?} panicked: {stderr}");
        if code != Some(0) {
            prop_assert!(stderr.contains("error"), "eplb {args:?} failed silently: {stderr}");
        }
    }
}
