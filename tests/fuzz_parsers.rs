//! The input parsers under arbitrary bytes and under mutations of valid files (issue 15):
//! loads in JSON, CSV and NumPy `.npy`; placements in DeepSeek JSON, SGLang JSON and
//! TensorRT-LLM YAML; topology files. Every input must give a clean error or a valid result:
//! never a panic (a failed case) or an abort (the run dies). The command line's fuzz test
//! (`cli/tests/fuzz_args.rs`) runs the same readers under an address-space cap; here every reader
//! is held to the memory cap of [`MEMORY_PER_INPUT_BYTE`] by a counting allocator.
//!
//! The corpus (`tests/corpus/`) holds a valid file of every format and the inputs that broke
//! the parsers before (each named for its defect); it is replayed as an ordinary test and is
//! the seed of the mutations. Add a file there to keep a new case. It runs on stable Rust, in
//! the style of `cargo fuzz` targets replayed on their corpus.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use eplb::formats::limits::MAX_LOAD;
use eplb::formats::{
    csv::loads_from_csv, deepseek::placement_from_json, loads::loads_from_json,
    npy::loads_from_npy, sglang, trtllm::placement_from_yaml, LoadsFile, ReadOptions,
};
use eplb::topology::Topology;
use proptest::prelude::*;

/// The memory cap of the readers (README, "Guarantees and limits"): reading one input never
/// holds more than `MEMORY_PER_INPUT_BYTE` bytes per input byte plus `MEMORY_CONSTANT` at once
/// (JSON is parsed into a tree first, about 32 bytes a number and doubling vectors: a reader
/// that allocates by a size a file merely states breaks this at once).
const MEMORY_PER_INPUT_BYTE: usize = 64;
/// See [`MEMORY_PER_INPUT_BYTE`]: 1 MiB.
const MEMORY_CONSTANT: usize = 1 << 20;

/// The system allocator, counting the bytes each thread holds and their peak (the parsers run
/// on the calling thread; the test threads run in parallel, so the counts are per thread).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread's counters may be gone while it is torn down.
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting allocates
// nothing. (The test binary's only `unsafe`: a global allocator cannot be written without it.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held at once (on this thread, above
/// what the thread held before).
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

/// Asserts the memory cap for one reader on `input` bytes.
fn within_cap<T>(reader: &str, input: usize, f: impl FnOnce() -> T) -> T {
    let (out, peak) = peak_bytes(f);
    let cap = MEMORY_PER_INPUT_BYTE * input + MEMORY_CONSTANT;
    assert!(
        peak <= cap,
        "{reader} held {peak} bytes reading {input} bytes (cap {cap})"
    );
    out
}

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
/// Every reader runs within the memory cap ([`MEMORY_PER_INPUT_BYTE`]).
fn every_parser(bytes: &[u8]) {
    let path = Path::new("fuzz");
    let n = bytes.len();
    let text = String::from_utf8_lossy(bytes);
    let error = |e: eplb::EplbError| assert!(!e.to_string().is_empty());
    for options in [
        ReadOptions::default(),
        ReadOptions {
            keep_zero_layers: true,
        },
    ] {
        match within_cap("loads JSON", n, || loads_from_json(path, &text, options)) {
            Ok(f) => valid_loads(&f),
            Err(e) => error(e),
        }
    }
    match within_cap("loads CSV", n, || loads_from_csv(path, &text)) {
        Ok(f) => valid_loads(&f),
        Err(e) => error(e),
    }
    match within_cap("loads NPY", n, || loads_from_npy(path, bytes)) {
        Ok(f) => valid_loads(&f),
        Err(e) => error(e),
    }
    let placements = [
        within_cap("DeepSeek placement", n, || {
            placement_from_json(path, &text, EXPERTS)
        }),
        within_cap("TensorRT-LLM placement", n, || {
            placement_from_yaml(path, &text, EXPERTS, LAYERS, FIRST_LAYER)
        }),
        within_cap("SGLang placement", n, || {
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| eplb::EplbError::InvalidPlacement(e.to_string()))
                .and_then(|v| sglang::placement_from_value(path, &v, EXPERTS, LAYERS, FIRST_LAYER))
        }),
    ];
    // A placement read is judged by the evaluator (ids out of range are its violations).
    for placement in placements {
        if let Err(e) = placement {
            error(e);
        }
    }
    match within_cap("topology", n, || Topology::from_json_str(&text)) {
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

/// Every byte of each `.npy` file of the corpus set to values that change what a header
/// states (a version, a length, a digit, a quote, the end of a dict): the reader stays within
/// the memory cap and answers with a valid matrix or an error.
#[test]
fn every_byte_of_the_npy_files_set_to_edge_values() {
    for (path, original) in corpus() {
        if path.extension().is_none_or(|e| e != "npy") {
            continue;
        }
        for i in 0..original.len() {
            for value in [
                0u8, 1, 2, 3, 0x7f, 0xff, b'0', b'9', b'\'', b'}', b')', b',',
            ] {
                let mut bytes = original.clone();
                bytes[i] = value;
                match within_cap("loads NPY", bytes.len(), || {
                    loads_from_npy(Path::new("f"), &bytes)
                }) {
                    Ok(f) => valid_loads(&f),
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
        }
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
    // Version 2 reads a 4-byte header length: 662 MB stated in a 192-byte file.
    let e = loads_from_npy(p, &read("npy_header_length_huge.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("header states 662372470 bytes"), "{e}");
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

/// The memory cap on large valid inputs (where it is tightest: every byte is data) and on a
/// reader that would allocate by a stated size.
#[test]
fn readers_stay_within_the_memory_cap_on_large_inputs() {
    let path = Path::new("big");
    // 64 layers x 4096 experts of one-digit loads: 2 input bytes a number.
    let row = vec!["7"; 4096].join(",");
    let rows: Vec<String> = (0..64).map(|_| format!("[{row}]")).collect();
    let json = format!("[{}]", rows.join(","));
    let csv: String = (0..64).map(|_| format!("{row}\n")).collect();
    let f = within_cap("loads JSON", json.len(), || {
        loads_from_json(path, &json, ReadOptions::default())
    })
    .unwrap();
    assert_eq!((f.loads.num_layers(), f.loads.num_experts()), (64, 4096));
    let f = within_cap("loads CSV", csv.len(), || loads_from_csv(path, &csv)).unwrap();
    assert_eq!((f.loads.num_layers(), f.loads.num_experts()), (64, 4096));
    let ids = vec!["1"; 4096].join(",");
    let placement = format!(
        "{{\"phy2log\": [{}]}}",
        vec![format!("[{ids}]"); 64].join(",")
    );
    within_cap("DeepSeek placement", placement.len(), || {
        placement_from_json(path, &placement, EXPERTS)
    })
    .unwrap();
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for name in ["esft-vanilla-lite_esft-law.json", "eplb_reference.json"] {
        let text = std::fs::read_to_string(traces.join(name)).unwrap();
        let _ = within_cap(name, text.len(), || {
            loads_from_json(path, &text, ReadOptions::default())
        });
    }
}

/// The cap bites: a reader that reserved memory for a size a 16-byte header claims fails it.
#[test]
#[should_panic(expected = "held")]
fn a_reader_allocating_by_a_stated_size_breaks_the_cap() {
    let header = b"rows: 1000000000";
    within_cap("by-claim reader", header.len(), || {
        Vec::<f64>::with_capacity(1 << 20)
    });
}
