//! SGLang's `--init-expert-location` file: `{"physical_to_logical_map": [layers][slots]}`.
//!
//! SGLang passes the object's keys as keyword arguments to
//! `ExpertLocationMetadata.init_by_mapping`, so the file holds exactly that one key. Its rows
//! are indexed by *model* layer: layers without statistics (the dense layers before the first
//! MoE layer) get SGLang's trivial placement, slot `s` → expert `s % E`.

use std::path::Path;

use serde_json::Value;

use super::{parse_error, phy2log_rows, trivial_row, EmptySlots, SlotRows};
use crate::error::Result;
use crate::placement::Placement;

/// The SGLang file for `placement`, whose layer 0 is model layer `first_layer`.
///
/// ```
/// let p = eplb::Placement::from_phy2log(2, vec![vec![1, 0, 1]]).unwrap();
/// let json = eplb::formats::sglang::to_json(&p, 1);
/// assert_eq!(json, serde_json::json!({"physical_to_logical_map": [[0, 1, 0], [1, 0, 1]]}));
/// ```
pub fn to_json(placement: &Placement, first_layer: usize) -> Value {
    let slots = placement.layers().first().map_or(0, |l| l.phy2log().len());
    let rows: Vec<Vec<usize>> = (0..first_layer)
        .map(|_| trivial_row(slots, placement.num_experts()))
        .chain(placement.layers().iter().map(|l| l.phy2log().to_vec()))
        .collect();
    serde_json::json!({ "physical_to_logical_map": rows })
}

/// Reads a placement from a parsed SGLang file; rows of the `first_layer` dense layers are
/// dropped when present.
///
/// # Errors
/// [`crate::EplbError::Format`] when the map is not `[layers][slots]` of ids `>= 0`.
pub fn placement_from_value(
    path: &Path,
    value: &Value,
    num_experts: usize,
    num_layers: usize,
    first_layer: usize,
) -> Result<Placement> {
    let rows = rows_from_value(path, value, num_layers, first_layer, EmptySlots::Rejected)?;
    Placement::from_phy2log(num_experts, rows.rows)
}

/// The checked rows of a parsed SGLang file.
pub(crate) fn rows_from_value(
    path: &Path,
    value: &Value,
    num_layers: usize,
    first_layer: usize,
    empty: EmptySlots,
) -> Result<SlotRows> {
    let key = "physical_to_logical_map";
    let rows: Vec<Vec<i64>> = serde_json::from_value(value[key].clone()).map_err(|e| {
        parse_error(
            path,
            format!("`{key}` must be [layers][slots] of integers"),
            e,
        )
    })?;
    phy2log_rows(path, key, rows, num_layers, first_layer, empty)
}
