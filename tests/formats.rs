//! File formats: every load format in, every placement format out and back, malformed files.

use std::path::Path;

use eplb::formats::{
    csv::{gpu_loads_csv, loads_from_csv},
    npy::loads_from_npy,
    read_placement, sglang, trtllm, PlacementFormat,
};
use eplb::{evaluate, solve, strategies::Greedy, Cluster, Placement, PolicyChoice, Problem};

/// The bytes of an `.npy` file (format 1.0).
fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("{one},"),
        _ => shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    npy_with_dims(descr, fortran, &dims, data)
}

/// An `.npy` file whose shape tuple is written as `dims` verbatim.
fn npy_with_dims(descr: &str, fortran: bool, dims: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': ({dims}), }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

#[test]
fn npy_integer_and_float_two_and_three_dimensional() {
    let p = Path::new("x.npy");
    let ints = npy(
        "<i8",
        false,
        &[2, 3],
        &le(&[1i64, 2, 3, 4, 5, 6], i64::to_le_bytes),
    );
    let f = loads_from_npy(p, &ints).unwrap();
    assert_eq!(f.loads.layer(1), &[4.0, 5.0, 6.0]);
    let small = npy("|u1", false, &[1, 2], &[7, 9]);
    assert_eq!(
        loads_from_npy(p, &small).unwrap().loads.layer(0),
        &[7.0, 9.0]
    );
    // 3-D float32 is summed over the first axis.
    let steps = npy(
        "<f4",
        false,
        &[2, 1, 2],
        &le(&[1.5f32, 2.0, 10.0, 20.0], f32::to_le_bytes),
    );
    assert_eq!(
        loads_from_npy(p, &steps).unwrap().loads.layer(0),
        &[11.5, 22.0]
    );
    // Fortran order: column-major storage of [[1, 2, 3], [4, 5, 6]].
    let fortran = npy(
        "<f8",
        true,
        &[2, 3],
        &le(&[1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0], f64::to_le_bytes),
    );
    let f = loads_from_npy(p, &fortran).unwrap();
    assert_eq!(
        (f.loads.layer(0), f.loads.layer(1)),
        (&[1.0, 2.0, 3.0][..], &[4.0, 5.0, 6.0][..])
    );
}

#[test]
fn npy_wrong_shape_type_or_bytes_name_the_problem() {
    let p = Path::new("stats.npy");
    let cases = [
        (
            npy("<i8", false, &[3], &le(&[1i64, 2, 3], i64::to_le_bytes)),
            "shape [3]",
        ),
        (npy("|b1", false, &[1, 2], &[1, 0]), "dtype"),
        (
            npy("<i4", false, &[1, 2], &le(&[1i32, -2], i32::to_le_bytes)),
            "negative",
        ),
        (
            npy(
                "<f8",
                false,
                &[1, 2],
                &le(&[1.0f64, f64::NAN], f64::to_le_bytes),
            ),
            "NaN",
        ),
        (b"not numpy at all".to_vec(), "not a valid .npy file"),
    ];
    for (bytes, needle) in cases {
        let err = loads_from_npy(p, &bytes).unwrap_err().to_string();
        assert!(
            err.contains("stats.npy") && err.contains(needle),
            "expected {needle:?} in {err:?}"
        );
    }
}

#[test]
fn csv_loads_with_header_and_comments() {
    let p = Path::new("x.csv");
    let f = loads_from_csv(p, "# exported\nexpert_0, expert_1\n1, 2\n3.5, 4\n").unwrap();
    assert_eq!(f.loads.num_layers(), 2);
    assert_eq!(f.loads.layer(1), &[3.5, 4.0]);
    let err = loads_from_csv(p, "1,2\n3,x\n").unwrap_err().to_string();
    assert!(
        err.contains("line 2, column 2: `x` is not a number"),
        "{err}"
    );
    let err = loads_from_csv(p, "1,2\n3\n").unwrap_err().to_string();
    assert!(err.contains("ragged"), "{err}");
    let err = loads_from_csv(p, "a,b\n").unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
}

fn readme_problem() -> Problem {
    let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
    Problem::new(
        eplb::synthetic::readme_example(),
        cluster,
        PolicyChoice::Auto,
    )
    .unwrap()
}

#[test]
fn every_placement_format_round_trips() {
    let problem = readme_problem();
    let solution = solve(&problem, &Greedy, &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (e, l) = (problem.num_experts(), problem.num_layers());
    for first_layer in [0, 3] {
        let sg = dir.path().join("sglang.json");
        std::fs::write(
            &sg,
            sglang::to_json(&solution.placement, first_layer).to_string(),
        )
        .unwrap();
        let (back, format) = read_placement(&sg, e, l, first_layer).unwrap();
        assert_eq!(format, PlacementFormat::Sglang);
        assert_eq!(phy2log(&back), phy2log(&solution.placement));

        let yaml = dir.path().join("eplb.yaml");
        std::fs::write(&yaml, trtllm::to_yaml(&solution.placement, first_layer)).unwrap();
        let (back, format) = read_placement(&yaml, e, l, first_layer).unwrap();
        assert_eq!(format, PlacementFormat::TrtLlm);
        assert_eq!(phy2log(&back), phy2log(&solution.placement));
    }
    let arrays = solution.placement.to_deepseek().unwrap();
    let ds = dir.path().join("deepseek.json");
    std::fs::write(&ds, serde_json::to_string(&arrays).unwrap()).unwrap();
    let (back, format) = read_placement(&ds, e, l, 0).unwrap();
    assert_eq!(format, PlacementFormat::DeepSeek);
    assert_eq!(
        back, solution.placement,
        "replica ranks survive through log2phy"
    );
}

fn phy2log(p: &Placement) -> Vec<Vec<usize>> {
    p.layers().iter().map(|l| l.phy2log().to_vec()).collect()
}

#[test]
fn sglang_file_has_exactly_the_key_sglang_passes_on_and_trivial_dense_layers() {
    let p = Placement::from_phy2log(3, vec![vec![2, 1, 0, 2]]).unwrap();
    let v = sglang::to_json(&p, 2);
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["physical_to_logical_map"]
    );
    assert_eq!(
        v["physical_to_logical_map"],
        serde_json::json!([[0, 1, 2, 0], [0, 1, 2, 0], [2, 1, 0, 2]])
    );
}

#[test]
fn malformed_placement_formats() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a.yaml", "num_slots: 2\n", "initial_global_assignments"),
        (
            "b.yaml",
            "num_slots: 3\ninitial_global_assignments:\n  0: [0, 1]\n",
            "lists 2 slots but num_slots is 3",
        ),
        (
            "c.yaml",
            "num_slots: 2\ninitial_global_assignments:\n  0: [0, -1]\n",
            ">= 0",
        ),
        (
            "d.json",
            r#"{"physical_to_logical_map": [[0, "x"]]}"#,
            "[layers][slots] of integers",
        ),
        (
            "e.json",
            r#"{"physical_to_logical_map": [[0, -3]]}"#,
            ">= 0",
        ),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = read_placement(&path, 2, 1, 0).unwrap_err().to_string();
        assert!(
            err.contains(name) || err.contains("invalid placement"),
            "names the file: {err}"
        );
        assert!(
            err.contains(needle),
            "{name}: expected {needle:?} in {err:?}"
        );
    }
}

#[test]
fn per_gpu_csv_has_one_row_per_layer_and_one_column_per_gpu() {
    let problem = readme_problem();
    let solution = solve(&problem, &Greedy, &Default::default()).unwrap();
    let evaluation = evaluate(&problem, &solution.placement, &[]).unwrap();
    let text = gpu_loads_csv(&evaluation, 3);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("layer,max_load,mean_load,balancedness,lower_bound,gap,gpu_0,"));
    assert_eq!(lines[0].split(',').count(), 6 + 8);
    assert!(lines[1].starts_with("3,156,129.125,"), "{}", lines[1]);
    let loads: f64 = lines[1]
        .split(',')
        .skip(6)
        .map(|x| x.parse::<f64>().unwrap())
        .sum();
    assert_eq!(loads, problem.loads().layer(0).iter().sum::<f64>());
}

#[test]
fn npy_keeps_the_step_axis_fortran_order_included() {
    let p = Path::new("s.npy");
    // [2][1][2]: step 0 = [1, 2], step 1 = [3, 0.5].
    let c = npy(
        "<f8",
        false,
        &[2, 1, 2],
        &le(&[1.0f64, 2.0, 3.0, 0.5], f64::to_le_bytes),
    );
    let f = npy(
        "<f8",
        true,
        &[2, 1, 2],
        &le(&[1.0f64, 3.0, 2.0, 0.5], f64::to_le_bytes),
    );
    for bytes in [c, f] {
        let file = loads_from_npy(p, &bytes).unwrap();
        assert_eq!(file.loads.layer(0), &[4.0, 2.5]);
        let steps = file.steps.expect("a step axis");
        assert_eq!(steps.layer_steps(0), vec![vec![1.0, 2.0], vec![3.0, 0.5]]);
    }
    let flat = npy("<f8", false, &[1, 2], &le(&[1.0f64, 2.0], f64::to_le_bytes));
    assert!(loads_from_npy(p, &flat).unwrap().steps.is_none());
}

#[test]
fn npy_shapes_written_unusually_that_overflow_are_refused() {
    // Python literals allow `_` in numbers: a shape the simple pre-check does not read still
    // reaches the reader's product of the dimensions (a panic in debug builds before).
    let p = Path::new("big.npy");
    for dims in [
        "4_294_967_296, 4_294_967_296, 16",
        "0x100000000, 0x100000000, 16",
    ] {
        let bytes = npy_with_dims("<f8", false, dims, &[0; 64]);
        let message = loads_from_npy(p, &bytes).unwrap_err().to_string();
        assert!(message.contains("big.npy"), "{dims}: {message}");
    }
}

#[test]
fn npy_empty_dimensions_are_refused_before_anything_is_sized_by_the_others() {
    // `(2^62, 0)` holds no values, so it needs no data: the other dimension is then not bounded
    // by the file and sized the rows before (a capacity overflow, found by the parser fuzz test).
    let p = Path::new("empty.npy");
    for shape in [
        vec![4_611_686_018_427_387_904, 0],
        vec![0, 4_611_686_018_427_387_904],
        vec![3, 0, 5],
        vec![0, 0],
    ] {
        let bytes = npy("<f8", false, &shape, &[]);
        let message = loads_from_npy(p, &bytes).unwrap_err().to_string();
        assert!(
            message.contains("empty.npy") && message.contains("at least 1"),
            "{shape:?}: {message}"
        );
    }
}
