//! File formats: expert-load statistics in, placements in and out.
//!
//! Loads ([`read_loads`]): JSON (a bare `[[...]]`, or an object with key `loads` or
//! `logical_count`, SGLang's recorder dumps included), CSV (one layer a row) and NumPy `.npy`
//! (integer or float, 2-D or 3-D). Placements: DeepSeek's layout ([`deepseek`], what vLLM
//! consumes), SGLang's `--init-expert-location` file ([`sglang`]), TensorRT-LLM's load-balancer
//! YAML ([`trtllm`]), and a CSV of per-GPU loads ([`csv`]) for spreadsheets. Cluster trees:
//! [`topology`] files.

pub mod csv;
pub mod deepseek;
pub mod limits;
pub mod loads;
pub mod npy;
pub mod sglang;
pub mod topology;
pub mod trtllm;

use std::path::Path;

use crate::error::{EplbError, Result};
use crate::objective::StepLoads;
use crate::placement::Placement;
use crate::problem::Loads;

/// Loads read from a file, with where they sit in the model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadsFile {
    /// The load matrix (MoE layers only).
    pub loads: Loads,
    /// Model layer index of `loads` row 0 (dense layers before the first MoE layer). Placement
    /// formats keyed by model layer (SGLang, TensorRT-LLM) use it.
    pub first_layer: usize,
    /// Notices for the user (e.g. dense layers skipped).
    pub notes: Vec<String>,
    /// The loads of every step when the file has a step axis (`[steps][layers][experts]`,
    /// `loads` being their sum), for the per-step [objectives](crate::objective).
    pub steps: Option<StepLoads>,
}

/// How to read load files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Keep the leading all-zero layers of SGLang `logical_count` dumps (the model's dense
    /// layers) instead of skipping them.
    pub keep_zero_layers: bool,
}

/// Reads loads from `path` (`-` for standard input), choosing the format by extension:
/// `.csv`, `.npy`, anything else JSON.
///
/// # Errors
/// [`EplbError::Io`] or [`EplbError::Format`] naming the file, the shape or value found and
/// what is valid.
pub fn read_loads(path: &Path, options: ReadOptions) -> Result<LoadsFile> {
    match extension(path).as_deref() {
        Some("csv") => csv::read_loads_csv(path),
        Some("npy") => npy::read_loads_npy(path),
        _ => loads::loads_from_json(path, &read_text(path)?, options),
    }
}

/// Placement file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementFormat {
    /// DeepSeek's `phy2log` / `log2phy` / `logcnt` JSON with metrics.
    DeepSeek,
    /// SGLang's `{"physical_to_logical_map": [...]}`.
    Sglang,
    /// TensorRT-LLM's load-balancer YAML.
    TrtLlm,
}

/// Reads a placement in any of the [`PlacementFormat`]s (YAML by extension `.yaml`/`.yml`,
/// JSON by key: `phy2log` or `physical_to_logical_map`). Layers before `first_layer` in files
/// keyed by model layer are dropped, so the placement lines up with the loads.
///
/// # Errors
/// [`EplbError::Format`] or [`EplbError::InvalidPlacement`] naming the problem (a `-1` slot
/// included: [`read_placement_with_empty`] reads those).
pub fn read_placement(
    path: &Path,
    num_experts: usize,
    num_layers: usize,
    first_layer: usize,
) -> Result<(Placement, PlacementFormat)> {
    let read = read_any(
        path,
        num_experts,
        num_layers,
        first_layer,
        EmptySlots::Rejected,
    )?;
    Ok((read.placement, read.format))
}

/// A placement read by [`read_placement_with_empty`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlacementWithEmpty {
    /// The placement; empty slots hold [`DEAD_SLOT_FILLER`](crate::live::DEAD_SLOT_FILLER).
    pub placement: Placement,
    /// The format of the file.
    pub format: PlacementFormat,
    /// The physical slots that are `-1` (the same in every layer), ascending.
    pub empty_slots: Vec<usize>,
}

/// [`read_placement`] for a placement with dead GPUs: a `-1` slot is empty (what `place
/// --failed-gpus` and `rebalance --out` write for a failed GPU's slots), in every format.
/// The empty slots must be the same in every layer; in DeepSeek files `log2phy` and `logcnt`
/// must agree with the other slots (no `log2phy` entry names an empty slot). Which GPUs the
/// empty slots belong to is checked against a cluster by
/// [`CurrentPlacement::new`](crate::live::CurrentPlacement::new).
///
/// ```
/// use eplb::formats::read_placement_with_empty;
/// let path = std::env::temp_dir().join("eplb-doc-empty.json");
/// std::fs::write(&path, r#"{"phy2log": [[0, 1, -1, -1, 1, 0]]}"#).unwrap();
/// let read = read_placement_with_empty(&path, 2, 1, 0)?;
/// assert_eq!(read.empty_slots, vec![2, 3]);
/// assert_eq!(read.placement.layer(0).phy2log(), &[0, 1, 0, 0, 1, 0]);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// As [`read_placement`], and [`EplbError::Format`] when a slot is `-1` in one layer but not
/// in another, or `log2phy` lists an empty slot.
pub fn read_placement_with_empty(
    path: &Path,
    num_experts: usize,
    num_layers: usize,
    first_layer: usize,
) -> Result<PlacementWithEmpty> {
    read_any(
        path,
        num_experts,
        num_layers,
        first_layer,
        EmptySlots::Allowed,
    )
}

fn read_any(
    path: &Path,
    num_experts: usize,
    num_layers: usize,
    first_layer: usize,
    empty: EmptySlots,
) -> Result<PlacementWithEmpty> {
    if extension(path).as_deref() == Some("csv") {
        return Err(format_error(
            path,
            "a CSV file is not a placement (`eplb place --format csv` writes per-GPU loads): give DeepSeek JSON (`phy2log`), SGLang JSON (`physical_to_logical_map`) or TensorRT-LLM YAML",
        ));
    }
    let text = read_text(path)?;
    let (rows, format) = if matches!(extension(path).as_deref(), Some("yaml" | "yml")) {
        let rows = trtllm::rows_from_yaml(path, &text, num_layers, first_layer, empty)?;
        (rows, PlacementFormat::TrtLlm)
    } else {
        let value = parse_json(path, &text)?;
        if value.get("physical_to_logical_map").is_some() {
            let rows = sglang::rows_from_value(path, &value, num_layers, first_layer, empty)?;
            (rows, PlacementFormat::Sglang)
        } else {
            let (placement, empty_slots) = deepseek::read_value(path, &value, num_experts, empty)?;
            return Ok(PlacementWithEmpty {
                placement,
                format: PlacementFormat::DeepSeek,
                empty_slots,
            });
        }
    };
    Ok(PlacementWithEmpty {
        placement: Placement::from_phy2log(num_experts, rows.rows)?,
        format,
        empty_slots: rows.empty,
    })
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Reads a whole file (or standard input for `-`) to a string.
///
/// # Errors
/// [`EplbError::Io`] when the file cannot be read, [`EplbError::Format`] when it is empty.
pub fn read_text(path: &Path) -> Result<String> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
            EplbError::Io {
                path: path.into(),
                source,
            }
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| EplbError::Io {
            path: path.into(),
            source,
        })?
    };
    if text.trim().is_empty() {
        return Err(format_error(path, "the file is empty"));
    }
    Ok(text)
}

/// Parses JSON (after a UTF-8 byte-order mark, if any), naming the file and position on
/// failure, and why when the text uses a literal JSON does not have (`NaN`, `Infinity`).
pub(crate) fn parse_json(path: &Path, text: &str) -> Result<serde_json::Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| {
        let literal = ["NaN", "Infinity"].into_iter().find(|l| {
            text.lines()
                .nth(e.line().saturating_sub(1))
                .and_then(|line| line.get(e.column().saturating_sub(1)..))
                .is_some_and(|rest| rest.trim_start_matches('-').starts_with(l))
        });
        let what = match literal {
            Some(l) => format!(
                "not valid JSON (`{l}` is not a JSON number; loads must be finite numbers >= 0)"
            ),
            None => "not valid JSON".to_string(),
        };
        parse_error(path, what, e)
    })
}

pub(crate) fn format_error(path: &Path, message: impl Into<String>) -> EplbError {
    EplbError::Format {
        path: path.into(),
        message: message.into(),
    }
}

/// A parser's error on `path`, kept as the source, after what the file should have been.
pub(crate) fn parse_error(
    path: &Path,
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> EplbError {
    EplbError::Parse {
        path: path.into(),
        what: what.into(),
        source: Box::new(source),
    }
}

/// Validates every step's matrix (errors naming the file) into [`StepLoads`].
pub(crate) fn steps_in_file(path: &Path, steps: &[Vec<Vec<f64>>]) -> Result<StepLoads> {
    let steps = steps
        .iter()
        .map(|m| loads_in_file(path, m))
        .collect::<Result<Vec<_>>>()?;
    StepLoads::new(steps)
}

/// Turns load-matrix validation errors into format errors naming the file.
pub(crate) fn loads_in_file(path: &Path, rows: &[Vec<f64>]) -> Result<Loads> {
    for (l, row) in rows.iter().enumerate() {
        if let Some((e, x)) = row
            .iter()
            .enumerate()
            .find(|(_, x)| x.is_finite() && x.abs() > limits::MAX_LOAD)
        {
            return Err(format_error(
                path,
                format!(
                    "load of layer {l}, expert {e} is {x:e}: loads must be at most {:e} (the largest f32, the engines' arithmetic; scale the loads down)",
                    limits::MAX_LOAD
                ),
            ));
        }
    }
    Loads::from_rows(rows).map_err(|e| match e {
        EplbError::InvalidLoad { .. } | EplbError::RaggedLoads { .. } | EplbError::EmptyLoads => {
            EplbError::InFile {
                path: path.into(),
                source: Box::new(e),
            }
        }
        other => other,
    })
}

/// Whether a placement reader takes `-1` slots: the empty slots of a GPU that is dead in the
/// placement (`place --failed-gpus` writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmptySlots {
    /// A `-1` is an error (an expert id must be `>= 0`).
    Rejected,
    /// A `-1` is an empty slot; every layer must have the same ones.
    Allowed,
}

/// A `[layers][slots]` expert-id matrix read from a file: empty (`-1`) slots hold
/// [`DEAD_SLOT_FILLER`](crate::live::DEAD_SLOT_FILLER) in `rows` and are listed in `empty`.
#[derive(Debug)]
pub(crate) struct SlotRows {
    pub(crate) rows: Vec<Vec<usize>>,
    pub(crate) empty: Vec<usize>,
}

/// Checks a `[layers][slots]` expert-id matrix read from a file and drops the rows of
/// `first_layer` leading non-MoE layers when the file has them. With [`EmptySlots::Allowed`],
/// `-1` slots are empty, and must be the same slots in every layer.
pub(crate) fn phy2log_rows(
    path: &Path,
    key: &str,
    rows: Vec<Vec<i64>>,
    num_layers: usize,
    first_layer: usize,
    empty: EmptySlots,
) -> Result<SlotRows> {
    let skip = if num_layers.checked_add(first_layer) == Some(rows.len()) {
        first_layer
    } else {
        0
    };
    // The empty slots of the first kept layer, which every other layer must repeat.
    let first: Option<(usize, Vec<usize>)> = (empty == EmptySlots::Allowed)
        .then(|| {
            rows.iter().enumerate().nth(skip).map(|(l, row)| {
                let slots = row.iter().enumerate().filter(|(_, &e)| e == -1);
                (l, slots.map(|(s, _)| s).collect())
            })
        })
        .flatten();
    let is_empty = |s: usize| {
        first
            .as_ref()
            .is_some_and(|(_, f)| f.binary_search(&s).is_ok())
    };
    let rows = rows
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(|(l, row)| {
            row.into_iter()
                .enumerate()
                .map(|(s, e)| match (e, &first) {
                    (-1, Some((l0, _))) if !is_empty(s) => Err(format_error(
                        path,
                        format!(
                            "`{key}`[{l}][{s}] is -1 but the slot holds an expert in layer {l0}: a dead GPU's slots are -1 in every layer"
                        ),
                    )),
                    (-1, Some(_)) => Ok(crate::live::DEAD_SLOT_FILLER),
                    (_, Some((l0, _))) if e >= 0 && is_empty(s) => Err(format_error(
                        path,
                        format!(
                            "`{key}`[{l}][{s}] is {e} but the slot is -1 (empty) in layer {l0}: a dead GPU's slots are -1 in every layer"
                        ),
                    )),
                    _ => usize::try_from(e).map_err(|_| {
                        format_error(
                            path,
                            format!("`{key}`[{l}][{s}] is {e}: expert ids must be >= 0"),
                        )
                    }),
                })
                .collect()
        })
        .collect::<Result<Vec<Vec<usize>>>>()?;
    Ok(SlotRows {
        rows,
        empty: first.map(|(_, f)| f).unwrap_or_default(),
    })
}

/// The placement SGLang uses for layers it has no statistics for: slot `s` holds expert
/// `s % E`.
pub(crate) fn trivial_row(slots: usize, experts: usize) -> Vec<usize> {
    (0..slots).map(|s| s % experts).collect()
}
