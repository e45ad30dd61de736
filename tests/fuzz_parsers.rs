//! The input parsers under arbitrary bytes and under mutations of valid files (issue 15):
//! loads in JSON, CSV and NumPy `.npy`; placements in DeepSeek JSON, SGLang JSON and
//! TensorRT-LLM YAML; topology files. Every input must give a clean error or a valid result:
//! never a panic (a failed case) or an abort (the run dies). The command line's fuzz test
//! (`cli/tests/fuzz_args.rs`) runs the same readers under an address-space cap.
//!
//! The corpus (`tests/corpus/`) holds a valid file of every format and the inputs that broke
//! the parsers before (each named for its defect); it is replayed as an ordinary test and is
//! the seed of the mutations. Add a file there to keep a new case. It runs on stable Rust, in
//! the style of `cargo fuzz` targets replayed on their corpus.

use std::path::{Path, PathBuf};

use eplb::formats::limits::MAX_LOAD;
use eplb::formats::{
    csv::loads_from_csv, deepseek::placement_from_json, loads::loads_from_json,
    npy::loads_from_npy, sglang, trtllm::placement_from_yaml, LoadsFile, ReadOptions,
};
use eplb::topology::Topology;
use proptest::prelude::*;

/// Experts, layers and first model layer the placement readers are asked for.
const EXPERTS: usize = 4;
const LAYERS: usize = 2;
const FIRST_LAYER: usize = 3;

/// A load file read successfully must hold a valid matrix.
fn valid_loads(file: &LoadsFile) {
    let loads = &file.loads;
    assert!(loads.num_layers() >= 1 && loads.num_experts() >= 1);
    for row in loads.rows() {
        assert_eq!(row.len(), loads.num_experts());
        for &x in row {
            assert!(x.is_finite() && (0.0..=MAX_LOAD).contains(&x), "load {x}");
        }
    }
    // The model layer of row 0: the file's index (capped) plus skipped dense layers.
    assert!(file.first_layer as u64 <= eplb::formats::limits::MAX_FIRST_MODEL_LAYER + 512);
}

/// Every parser on `bytes`: each answers with an error (with a message) or a valid result.
fn every_parser(bytes: &[u8]) {
    let path = Path::new("fuzz");
    let text = String::from_utf8_lossy(bytes);
    let error = |e: eplb::EplbError| assert!(!e.to_string().is_empty());
    for options in [
        ReadOptions::default(),
        ReadOptions {
            keep_zero_layers: true,
        },
    ] {
        match loads_from_json(path, &text, options) {
            Ok(f) => valid_loads(&f),
            Err(e) => error(e),
        }
    }
    match loads_from_csv(path, &text) {
        Ok(f) => valid_loads(&f),
        Err(e) => error(e),
    }
    match loads_from_npy(path, bytes) {
        Ok(f) => valid_loads(&f),
        Err(e) => error(e),
    }
    let placements = [
        placement_from_json(path, &text, EXPERTS),
        placement_from_yaml(path, &text, EXPERTS, LAYERS, FIRST_LAYER),
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| eplb::EplbError::InvalidPlacement(e.to_string()))
            .and_then(|v| sglang::placement_from_value(path, &v, EXPERTS, LAYERS, FIRST_LAYER)),
    ];
    // A placement read is judged by the evaluator (ids out of range are its violations).
    for placement in placements {
        if let Err(e) = placement {
            error(e);
        }
    }
    match Topology::from_json_str(&text) {
        Ok(t) => assert!(t.num_gpus() >= 1),
        Err(e) => error(e),
    }
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/corpus exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable corpus file");
            (p, bytes)
        })
        .collect()
}

#[test]
fn the_corpus_replays_cleanly() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "the corpus is missing files");
    for (path, bytes) in &corpus {
        eprintln!("{}", path.display());
        every_parser(bytes);
    }
}

/// The files of the corpus that must be refused, with what the message must name.
#[test]
fn the_corpus_regressions_are_refused_by_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let text = |name: &str| String::from_utf8(read(name)).unwrap();
    let p = Path::new("f");
    let opts = ReadOptions::default();
    for name in ["shape_overflow.npy", "shape_huge.npy"] {
        let e = loads_from_npy(p, &read(name)).unwrap_err().to_string();
        assert!(e.contains("shape"), "{e}");
    }
    let e = loads_from_json(p, &text("first_layer_max.json"), opts).unwrap_err();
    assert!(e.to_string().contains("first_model_layer"), "{e}");
    let e = loads_from_json(p, &text("loads_nan.json"), opts).unwrap_err();
    assert!(e.to_string().contains("`NaN` is not a JSON number"), "{e}");
    let e = loads_from_json(p, &text("loads_above_f32.json"), opts).unwrap_err();
    assert!(e.to_string().contains("largest f32"), "{e}");
    let e = placement_from_yaml(p, &text("trtllm_gap.yaml"), 4, 2, 0).unwrap_err();
    assert!(e.to_string().contains("consecutive"), "{e}");
    // A byte-order mark is an encoding detail, not an error.
    let f = loads_from_json(p, &text("loads_bom.json"), opts).unwrap();
    assert_eq!(f.loads.layer(0), &[1.0, 2.0, 3.0, 4.0]);
}

/// Numbers at the edges, spliced into valid files.
const EDGE_NUMBERS: &[&str] = &[
    "-1",
    "-0",
    "0",
    "1e400",
    "-1e400",
    "1e39",
    "1e-320",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "1000000000000",
    "NaN",
    "Infinity",
    "\"x\"",
    "null",
    "[]",
    "{}",
    "1.5",
];

/// One structured change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Sets the byte at (position modulo length).
    Flip(usize, u8),
    /// Cuts the file at (position modulo length).
    Truncate(usize),
    /// Replaces the number starting at or after (position modulo length) by an edge number.
    Number(usize, usize),
    /// Repeats the bytes from (position modulo length), up to 32 of them.
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0..EDGE_NUMBERS.len()).prop_map(|(p, n)| Mutation::Number(p, n)),
        (any::<usize>(), 1usize..32).prop_map(|(p, n)| Mutation::Repeat(p, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |p: usize| p % bytes.len();
    match *m {
        Mutation::Flip(p, b) => {
            let i = at(p);
            bytes[i] = b;
        }
        Mutation::Truncate(p) => bytes.truncate(at(p)),
        Mutation::Number(p, n) => {
            let start = at(p);
            let Some(i) = (start..bytes.len()).find(|&i| bytes[i].is_ascii_digit()) else {
                return;
            };
            let end = (i..bytes.len())
                .find(|&j| !matches!(bytes[j], b'0'..=b'9' | b'.' | b'e' | b'-'))
                .unwrap_or(bytes.len());
            bytes.splice(i..end, EDGE_NUMBERS[n].bytes());
        }
        Mutation::Repeat(p, n) => {
            let i = at(p);
            let piece: Vec<u8> = bytes[i..(i + n).min(bytes.len())].to_vec();
            bytes.splice(i..i, piece);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        every_parser(&bytes);
    }

    #[test]
    fn mutated_valid_files_never_break_a_parser(
        file in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let mut bytes = corpus[file.index(corpus.len())].1.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        every_parser(&bytes);
    }
}

/// A topology file states its size: nothing is built for a size beyond the caps.
#[test]
fn topology_sizes_are_checked_before_anything_is_built() {
    for text in [
        r#"{"gpus": 1000000000000, "slots_per_gpu": 1}"#,
        r#"{"gpus": 2, "slots_per_gpu": 18446744073709551615}"#,
        r#"{"children": [{"gpus": 9223372036854775807, "slots_per_gpu": 2}, {"slots": 3}]}"#,
    ] {
        let e = Topology::from_json_str(text).unwrap_err().to_string();
        assert!(!e.is_empty());
    }
}
