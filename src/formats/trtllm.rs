//! TensorRT-LLM's MoE load-balancer YAML: `num_slots`, `initial_global_assignments` keyed by
//! model layer (each a list of `num_slots` expert ids, slot order), and
//! `layer_updates_per_iter: 0` (a static placement).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{format_error, parse_error, phy2log_rows, EmptySlots, SlotRows};
use crate::error::Result;
use crate::placement::Placement;

#[derive(Debug, Serialize, Deserialize)]
struct LoadBalancerConfig {
    num_slots: usize,
    initial_global_assignments: BTreeMap<usize, Vec<i64>>,
    #[serde(default)]
    layer_updates_per_iter: usize,
}

/// The YAML for `placement`, whose layer 0 is model layer `first_layer`.
///
/// ```
/// let p = eplb::Placement::from_phy2log(2, vec![vec![1, 0, 1]]).unwrap();
/// let yaml = eplb::formats::trtllm::to_yaml(&p, 3);
/// assert!(yaml.contains("num_slots: 3"));
/// assert!(yaml.contains("3:\n  - 1\n  - 0\n  - 1"));
/// ```
pub fn to_yaml(placement: &Placement, first_layer: usize) -> String {
    let config = LoadBalancerConfig {
        num_slots: placement.layers().first().map_or(0, |l| l.phy2log().len()),
        initial_global_assignments: placement
            .layers()
            .iter()
            .enumerate()
            .map(|(l, p)| {
                (
                    l + first_layer,
                    p.phy2log().iter().map(|&e| e as i64).collect(),
                )
            })
            .collect(),
        layer_updates_per_iter: 0,
    };
    serde_yaml_ng::to_string(&config).expect("plain maps and lists serialise")
}

/// Reads a placement back from TensorRT-LLM YAML text. Layers are taken in ascending model
/// layer order; `first_layer` leading layers are dropped when the file has them.
///
/// # Errors
/// [`crate::EplbError::Format`] when the YAML does not have the keys above or a row does not
/// hold `num_slots` ids.
pub fn placement_from_yaml(
    path: &Path,
    text: &str,
    num_experts: usize,
    num_layers: usize,
    first_layer: usize,
) -> Result<Placement> {
    let rows = rows_from_yaml(path, text, num_layers, first_layer, EmptySlots::Rejected)?;
    Placement::from_phy2log(num_experts, rows.rows)
}

/// The checked rows of TensorRT-LLM YAML text.
pub(crate) fn rows_from_yaml(
    path: &Path,
    text: &str,
    num_layers: usize,
    first_layer: usize,
    empty: EmptySlots,
) -> Result<SlotRows> {
    let config: LoadBalancerConfig = serde_yaml_ng::from_str(text).map_err(|e| {
        parse_error(
            path,
            "not a TensorRT-LLM load-balancer YAML (needs `num_slots` and `initial_global_assignments`)",
            e,
        )
    })?;
    if let Some((layer, row)) = config
        .initial_global_assignments
        .iter()
        .find(|(_, row)| row.len() != config.num_slots)
    {
        return Err(format_error(
            path,
            format!(
                "layer {layer} lists {} slots but num_slots is {}",
                row.len(),
                config.num_slots
            ),
        ));
    }
    let layers: Vec<usize> = config.initial_global_assignments.keys().copied().collect();
    if let Some(w) = layers.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(format_error(
            path,
            format!(
                "`initial_global_assignments` jumps from model layer {} to {}: the layers must be consecutive",
                w[0], w[1]
            ),
        ));
    }
    let rows = config.initial_global_assignments.into_values().collect();
    phy2log_rows(
        path,
        "initial_global_assignments",
        rows,
        num_layers,
        first_layer,
        empty,
    )
}
