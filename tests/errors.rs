//! Bad input gets a typed error naming the problem — never a panic, never a silent answer.

use std::path::Path;

use eplb::formats::{deepseek::placement_from_json, loads, ReadOptions};
use eplb::{error::BadLoad, Cluster, EplbError, Loads, PolicyChoice, Problem};

fn problem(
    rows: &[Vec<f64>],
    cluster: Cluster,
    policy: PolicyChoice,
) -> Result<Problem, EplbError> {
    Problem::new(Loads::from_rows(rows)?, cluster, policy)
}

#[test]
fn empty_loads() {
    assert!(matches!(
        Loads::from_rows::<Vec<f64>>(&[]),
        Err(EplbError::EmptyLoads)
    ));
    assert!(matches!(
        Loads::from_rows(&[Vec::<f64>::new()]),
        Err(EplbError::EmptyLoads)
    ));
    assert!(matches!(
        Loads::from_flat(0, 4, vec![]),
        Err(EplbError::EmptyLoads)
    ));
}

#[test]
fn ragged_loads() {
    let err = Loads::from_rows(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
    assert!(
        matches!(
            err,
            EplbError::RaggedLoads {
                layer: 1,
                found: 1,
                expected: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("layer 1 has 1 experts"));
    assert!(Loads::from_flat(2, 3, vec![0.0; 5]).is_err());
}

proptest::proptest! {
    /// `Loads::from_flat` accepts exactly the matrices whose every value is finite and
    /// `>= 0`; it names the first bad value (position and kind), and keeps every valid value's
    /// bits but `-0.0`'s, stored as `0.0`.
    #[test]
    fn from_flat_accepts_exactly_finite_non_negative_values(
        experts in 1usize..40,
        values in proptest::collection::vec(
            proptest::prop_oneof![
                8 => 0.0f64..1e12,
                1 => proptest::sample::select(vec![
                    0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::NAN, f64::INFINITY,
                    f64::NEG_INFINITY, -1.0, -5e-324,
                ]),
            ],
            1..400,
        ),
    ) {
        let layers = values.len() / experts;
        proptest::prop_assume!(layers > 0);
        let data = values[..layers * experts].to_vec();
        let first_bad = data
            .iter()
            .enumerate()
            .find_map(|(i, &v)| BadLoad::of(v).map(|kind| (i, kind)));
        match (Loads::from_flat(layers, experts, data.clone()), first_bad) {
            (Ok(loads), None) => {
                for (i, &v) in data.iter().enumerate() {
                    let stored = loads.layer(i / experts)[i % experts];
                    let expected = if v == 0.0 { 0.0f64 } else { v };
                    proptest::prop_assert_eq!(stored.to_bits(), expected.to_bits());
                }
            }
            (Err(EplbError::InvalidLoad { layer, expert, kind, .. }), Some((i, bad))) => {
                proptest::prop_assert_eq!((layer, expert, kind), (i / experts, i % experts, bad));
            }
            (other, expected) => {
                proptest::prop_assert!(false, "{:?} against {:?}", other.map(|_| ()), expected);
            }
        }
    }
}

#[test]
fn nan_infinite_and_negative_loads_name_their_position() {
    for (value, kind) in [
        (f64::NAN, BadLoad::NaN),
        (f64::INFINITY, BadLoad::Infinite),
        (f64::NEG_INFINITY, BadLoad::Infinite),
        (-1.0, BadLoad::Negative),
    ] {
        let err = Loads::from_rows(&[vec![1.0, 2.0], vec![3.0, value]]).unwrap_err();
        match err {
            EplbError::InvalidLoad {
                layer: 1,
                expert: 1,
                kind: k,
                ..
            } => assert_eq!(k, kind),
            other => panic!("{value}: {other}"),
        }
    }
    let msg = Loads::from_rows(&[vec![-2.5]]).unwrap_err().to_string();
    assert!(
        msg.contains("layer 0, expert 0") && msg.contains(">= 0"),
        "{msg}"
    );
}

#[test]
fn zero_and_negative_zero_loads_are_valid() {
    let loads = Loads::from_rows(&[vec![0.0, -0.0, 0.0, 0.0]]).unwrap();
    assert!(
        loads.layer(0).iter().all(|x| x.to_bits() == 0),
        "-0.0 is normalised"
    );
    assert!(problem(&[vec![0.0; 4]], Cluster::new(6, 2), PolicyChoice::Global).is_ok());
}

#[test]
fn cluster_shape_errors() {
    let four = vec![vec![1.0; 4]];
    type Expect = fn(&EplbError) -> bool;
    let cases: Vec<(Cluster, PolicyChoice, Expect)> = vec![
        (Cluster::new(0, 2), PolicyChoice::Global, |e| {
            matches!(e, EplbError::ZeroCount { what: "replicas" })
        }),
        (Cluster::new(4, 0), PolicyChoice::Global, |e| {
            matches!(e, EplbError::ZeroCount { what: "gpus" })
        }),
        (
            Cluster::new(4, 2).with_nodes(0),
            PolicyChoice::Global,
            |e| matches!(e, EplbError::ZeroCount { what: "nodes" }),
        ),
        (
            Cluster::new(4, 2).with_groups(0),
            PolicyChoice::Global,
            |e| matches!(e, EplbError::ZeroCount { what: "groups" }),
        ),
        (Cluster::new(3, 1), PolicyChoice::Global, |e| {
            matches!(
                e,
                EplbError::TooFewReplicas {
                    replicas: 3,
                    experts: 4
                }
            )
        }),
        (Cluster::new(6, 4), PolicyChoice::Global, |e| {
            matches!(
                e,
                EplbError::ReplicasNotDivisibleByGpus {
                    replicas: 6,
                    gpus: 4
                }
            )
        }),
        (
            Cluster::new(6, 3).with_nodes(2).with_groups(2),
            PolicyChoice::Hierarchical,
            |e| matches!(e, EplbError::GpusNotDivisibleByNodes { gpus: 3, nodes: 2 }),
        ),
        (
            Cluster::new(8, 4).with_nodes(1).with_groups(3),
            PolicyChoice::Hierarchical,
            |e| {
                matches!(
                    e,
                    EplbError::ExpertsNotDivisibleByGroups {
                        experts: 4,
                        groups: 3
                    }
                )
            },
        ),
        (
            Cluster::new(8, 4).with_nodes(4).with_groups(2),
            PolicyChoice::Hierarchical,
            |e| {
                matches!(
                    e,
                    EplbError::GroupsNotDivisibleByNodes {
                        groups: 2,
                        nodes: 4
                    }
                )
            },
        ),
    ];
    for (cluster, policy, expected) in cases {
        let err = problem(&four, cluster, policy).unwrap_err();
        assert!(expected(&err), "{cluster:?}: got {err}");
        assert!(
            err.to_string().contains("must") || err.to_string().contains("need"),
            "message says what is valid: {err}"
        );
    }
}

#[test]
fn auto_policy_follows_deepseek() {
    let four = vec![vec![1.0; 4]];
    // G % N != 0: global, and G, N are then ignored (here 4 GPUs over 3 nodes is fine).
    let p = problem(
        &four,
        Cluster::new(4, 4).with_nodes(3).with_groups(4),
        PolicyChoice::Auto,
    )
    .unwrap();
    assert_eq!(p.policy(), eplb::Policy::Global);
    // G % N == 0 selects hierarchical, whose conditions then apply.
    let err = problem(
        &four,
        Cluster::new(6, 3).with_nodes(2).with_groups(2),
        PolicyChoice::Auto,
    )
    .unwrap_err();
    assert!(matches!(err, EplbError::GpusNotDivisibleByNodes { .. }));
}

#[test]
fn malformed_load_files() {
    let p = Path::new("stats.json");
    let bad = [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("42", "found a number"),
        (r#"{"weights": [[1]]}"#, "`loads` or `logical_count`"),
        (r#"{"loads": [1, 2]}"#, "1 dimension"),
        (r#"{"loads": [[1, "x"]]}"#, "`loads`[0][1] is a string"),
        (r#"{"loads": [[1, null]]}"#, "is null"),
        (r#"{"logical_count": [[1, 2], [3]]}"#, "ragged"),
        (r#"{"loads": [[1, -2]]}"#, "negative"),
        (r#"{"loads": []}"#, "empty"),
        (r#"{"loads": [[]]}"#, "empty"),
        (
            r#"[[[1, 2]], [[1, 2], [3, 4]]]"#,
            "different [layers][experts] shape",
        ),
    ];
    for (text, needle) in bad {
        let err = loads::loads_from_json(p, text, ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("stats.json"), "names the file: {err}");
        assert!(
            err.contains(needle),
            "{text:?}: expected {needle:?} in {err:?}"
        );
    }
}

#[test]
fn sglang_three_dimensional_counts_are_summed_over_steps() {
    let file = loads::loads_from_json(
        Path::new("x"),
        r#"{"logical_count": [[[0, 0], [1, 2]], [[0, 0], [10, 20]]]}"#,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(file.loads.layer(0), &[11.0, 22.0]);
    assert_eq!(file.first_layer, 1, "the dense layer was skipped");
    assert_eq!(file.notes.len(), 1);
    // Kept on request; and files given as `loads` are taken as they are.
    let keep = ReadOptions {
        keep_zero_layers: true,
    };
    let kept = loads::loads_from_json(
        Path::new("x"),
        r#"{"logical_count": [[0, 0], [1, 2]]}"#,
        keep,
    )
    .unwrap();
    assert_eq!((kept.loads.num_layers(), kept.first_layer), (2, 0));
    let as_is = loads::loads_from_json(
        Path::new("x"),
        r#"{"loads": [[0, 0], [1, 2]]}"#,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!((as_is.loads.num_layers(), as_is.first_layer), (2, 0));
    let declared = loads::loads_from_json(
        Path::new("x"),
        r#"{"loads": [[1, 2]], "first_model_layer": 3}"#,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(declared.first_layer, 3);
}

#[test]
fn malformed_placement_files() {
    let p = Path::new("placement.json");
    let bad = [
        ("[1, 2]", "expected a JSON object"),
        (r#"{"x": 1}"#, "no `phy2log`"),
        (r#"{"phy2log": [[0, "a"]]}"#, "integers"),
        (r#"{"phy2log": [[0, -1]]}"#, ">= 0"),
        (r#"{"phy2log": []}"#, "no layers"),
        // log2phy disagrees with phy2log
        (
            r#"{"phy2log": [[0, 1]], "log2phy": [[[1], [0]]], "logcnt": [[1, 1]]}"#,
            "log2phy[0][0] = 1",
        ),
        (
            r#"{"phy2log": [[0, 1]], "log2phy": [[[0], [1]]], "logcnt": [[2, 1]]}"#,
            "logcnt[0] = 2",
        ),
    ];
    for (text, needle) in bad {
        let err = placement_from_json(p, text, 2).unwrap_err().to_string();
        assert!(
            err.contains(needle),
            "{text}: expected {needle:?} in {err:?}"
        );
    }
}

/// A strategy's error reaches the caller as the source of `StrategyFailed`, typed, not as a
/// string: the chain can be walked and the inner variant matched.
#[test]
fn a_strategy_error_is_the_source_of_the_failure() {
    struct Refuses;
    impl eplb::PlacementStrategy for Refuses {
        fn name(&self) -> &str {
            "refuses"
        }
        fn description(&self) -> &str {
            "always fails"
        }
        fn solve_layer(&self, _: &eplb::LayerProblem<'_>) -> eplb::Result<eplb::LayerSolution> {
            Err(EplbError::ZeroCount { what: "gpus" })
        }
    }
    let p = problem(&[vec![1.0, 2.0]], Cluster::new(2, 1), PolicyChoice::Global).unwrap();
    let err = eplb::solve(&p, &Refuses, &Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategy `refuses` failed on layer 0: gpus is 0: it must be at least 1"
    );
    let source = std::error::Error::source(&err).expect("the strategy's error is the source");
    assert_eq!(source.to_string(), "gpus is 0: it must be at least 1");
    let EplbError::StrategyFailed { source, .. } = &err else {
        panic!("expected StrategyFailed, got {err:?}");
    };
    assert!(matches!(**source, EplbError::ZeroCount { what: "gpus" }));
}

/// A parser's error and a broken load rule stay typed sources of the file's error, with the
/// message naming the file first.
#[test]
fn file_errors_keep_their_sources() {
    let path = Path::new("stats.json");
    let err = loads::loads_from_json(path, "[[1, 2,", ReadOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("stats.json: not valid JSON: "),
        "{err}"
    );
    let source = std::error::Error::source(&err).expect("the JSON error is the source");
    assert!(source.is::<serde_json::Error>(), "{source:?}");

    let err = loads::loads_from_json(path, "[[1, -2]]", ReadOptions::default()).unwrap_err();
    let EplbError::InFile { source, .. } = &err else {
        panic!("expected InFile, got {err:?}");
    };
    assert!(matches!(
        **source,
        EplbError::InvalidLoad {
            kind: BadLoad::Negative,
            ..
        }
    ));
}
