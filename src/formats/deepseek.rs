//! DeepSeek's placement layout (`phy2log`, `log2phy`, `logcnt`), with per-layer metrics.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{format_error, parse_error, parse_json, phy2log_rows, EmptySlots};
use crate::bounds::NodeBoundKind;
use crate::error::Result;
use crate::evaluate::{Evaluation, Summary, Violation};
use crate::objective::{StepEvaluation, StepSummary};
use crate::placement::{DeepSeekArrays, Placement};
use crate::problem::{Cluster, Policy, Problem};
use crate::runner::Solution;
use crate::strategy::SolveStatus;

/// What `eplb place` writes: DeepSeek's arrays plus the evaluator's per-layer metrics.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlacementDocument {
    /// The strategy that made the placement (absent for placements made elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The policy it was judged under.
    pub policy: Policy,
    /// The cluster.
    pub cluster: Cluster,
    /// `phy2log`, `log2phy`, `logcnt`.
    #[serde(flatten)]
    pub arrays: DeepSeekArrays,
    /// One entry per layer.
    pub layers: Vec<LayerMetrics>,
    /// Over all layers.
    pub summary: Summary,
    /// The per-step objectives over all layers (only for per-step loads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<StepSummary>,
}

/// Per-layer metrics of a [`PlacementDocument`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LayerMetrics {
    /// Layer index.
    pub layer: usize,
    /// Largest GPU load.
    pub max_load: f64,
    /// Mean GPU load.
    pub mean_load: f64,
    /// `mean / max`.
    pub balancedness: f64,
    /// `(max - mean) / mean`.
    pub imbalance: f64,
    /// Best valid lower bound on the optimal max load.
    pub lower_bound: f64,
    /// `(max - bound) / bound`.
    pub gap: f64,
    /// Present only when the hierarchical node bound's split search was cut short by its work
    /// budget: then `closed_form`, the weaker (valid) node bound that went into `lower_bound`
    /// instead ([`NodeBoundKind`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_bound: Option<NodeBoundKind>,
    /// The strategy's claim (absent for placements made elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SolveStatus>,
    /// Solve time of the layer in milliseconds (absent for placements made elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solve_ms: Option<f64>,
    /// Extra replicas of an expert on a GPU that already holds it.
    pub colocated_replicas: usize,
    /// Per-GPU loads (only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_loads: Option<Vec<f64>>,
    /// Broken constraints.
    pub violations: Vec<Violation>,
    /// The mean over steps of each step's largest GPU load (only for per-step loads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_step_max: Option<f64>,
    /// The largest GPU load of any step (only for per-step loads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_step_max: Option<f64>,
}

impl PlacementDocument {
    /// Builds the document for `placement` as judged by `evaluation`; `solution` adds the
    /// strategy's name, per-layer status and solve times; `with_gpu_loads` adds per-GPU loads.
    ///
    /// # Errors
    /// [`crate::EplbError::InvalidPlacement`] when the placement holds out-of-range ids (it
    /// then has no DeepSeek arrays).
    pub fn new(
        problem: &Problem,
        placement: &Placement,
        evaluation: &Evaluation,
        solution: Option<&Solution>,
        with_gpu_loads: bool,
    ) -> Result<Self> {
        Ok(Self {
            strategy: solution.map(|s| s.strategy.clone()),
            policy: problem.policy(),
            cluster: *problem.cluster(),
            arrays: placement.to_deepseek()?,
            layers: Self::metrics(evaluation, solution, with_gpu_loads),
            summary: evaluation.summary.clone(),
            steps: None,
        })
    }

    /// The document with the per-step objectives of `steps` (an
    /// [`evaluate_steps`](crate::objective::evaluate_steps) of the same placement): each
    /// layer's `mean_step_max` and `worst_step_max`, and the step summary.
    #[must_use]
    pub fn with_steps(mut self, steps: &StepEvaluation) -> Self {
        for (metrics, report) in self.layers.iter_mut().zip(&steps.layers) {
            metrics.mean_step_max = Some(report.mean_step_max);
            metrics.worst_step_max = Some(report.worst_step_max);
        }
        self.steps = Some(steps.summary.clone());
        self
    }

    /// The per-layer metrics of `evaluation` (with status and times from `solution`).
    pub fn metrics(
        evaluation: &Evaluation,
        solution: Option<&Solution>,
        with_gpu_loads: bool,
    ) -> Vec<LayerMetrics> {
        evaluation
            .layers
            .iter()
            .enumerate()
            .map(|(l, r)| LayerMetrics {
                layer: r.layer,
                max_load: r.max_load,
                mean_load: r.mean_load,
                balancedness: r.balancedness,
                imbalance: r.imbalance,
                lower_bound: r.lower_bound,
                gap: r.gap,
                node_bound: r
                    .bounds
                    .node_kind
                    .filter(|&k| k == NodeBoundKind::ClosedForm),
                status: solution.map(|s| s.layers[l].status),
                solve_ms: solution.map(|s| s.layers[l].elapsed.as_secs_f64() * 1e3),
                colocated_replicas: r.colocated_replicas,
                gpu_loads: with_gpu_loads.then(|| r.gpu_loads.clone()),
                violations: r.violations.clone(),
                mean_step_max: None,
                worst_step_max: None,
            })
            .collect()
    }
}

/// Reads a DeepSeek-layout placement from parsed JSON: an object with at least `phy2log`
/// (`[layers][slots]`). When `log2phy` and `logcnt` are present too, they must agree with
/// `phy2log` (and fix the replica ranks). What `eplb place` writes is accepted as is.
///
/// # Errors
/// [`crate::EplbError::Format`] naming the file and problem; [`crate::EplbError::InvalidPlacement`]
/// when the arrays disagree.
pub fn placement_from_value(path: &Path, value: &Value, num_experts: usize) -> Result<Placement> {
    read_value(path, value, num_experts, EmptySlots::Rejected).map(|(placement, _)| placement)
}

/// [`placement_from_value`], with `-1` slots read as `empty` says: the placement (empty slots
/// hold the filler) and the empty slots. `log2phy` and `logcnt`, when present, are checked
/// against the other slots.
pub(crate) fn read_value(
    path: &Path,
    value: &Value,
    num_experts: usize,
    empty: EmptySlots,
) -> Result<(Placement, Vec<usize>)> {
    let Value::Object(map) = value else {
        return Err(format_error(
            path,
            "expected a JSON object with key `phy2log` ([layers][slots] of expert ids) or `physical_to_logical_map`",
        ));
    };
    let Some(phy2log) = map.get("phy2log") else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(format_error(
            path,
            format!(
                "no `phy2log` ([layers][slots] of expert ids) or `physical_to_logical_map` key; the object has keys {keys:?}"
            ),
        ));
    };
    let phy2log: Vec<Vec<i64>> = serde_json::from_value(phy2log.clone())
        .map_err(|e| parse_error(path, "`phy2log` must be [layers][slots] of integers", e))?;
    let read = phy2log_rows(path, "phy2log", phy2log, usize::MAX, 0, empty)?;
    let (Some(log2phy), Some(logcnt)) = (map.get("log2phy"), map.get("logcnt")) else {
        return Ok((Placement::from_phy2log(num_experts, read.rows)?, read.empty));
    };
    let log2phy: Vec<Vec<Vec<i64>>> = serde_json::from_value(log2phy.clone()).map_err(|e| {
        parse_error(
            path,
            "`log2phy` must be [layers][experts][replicas] of integers",
            e,
        )
    })?;
    let logcnt: Vec<Vec<usize>> = serde_json::from_value(logcnt.clone())
        .map_err(|e| parse_error(path, "`logcnt` must be [layers][experts] of counts >= 0", e))?;
    if read.empty.is_empty() {
        let arrays = DeepSeekArrays {
            phy2log: read.rows,
            log2phy,
            logcnt,
        };
        return Ok((Placement::from_deepseek(num_experts, &arrays)?, read.empty));
    }
    // Empty slots: check the arrays on the other slots (renumbered without the empty ones),
    // as `LiveCluster::to_deepseek_flat` writes them.
    let kept = |s: usize| read.empty.binary_search(&s).is_err();
    let renumber = |s: usize| s - read.empty.partition_point(|&x| x < s);
    let mut compact_log2phy = log2phy;
    for (l, layer) in compact_log2phy.iter_mut().enumerate() {
        for (e, row) in layer.iter_mut().enumerate() {
            for slot in row.iter_mut().filter(|s| **s >= 0) {
                let s = *slot as usize;
                if !kept(s) {
                    return Err(format_error(
                        path,
                        format!(
                            "`log2phy`[{l}][{e}] lists slot {s}, which is -1 (empty) in `phy2log`"
                        ),
                    ));
                }
                *slot = renumber(s) as i64;
            }
        }
    }
    let arrays = DeepSeekArrays {
        phy2log: read
            .rows
            .iter()
            .map(|row| {
                let live = row.iter().enumerate().filter(|&(s, _)| kept(s));
                live.map(|(_, &e)| e).collect()
            })
            .collect(),
        log2phy: compact_log2phy,
        logcnt,
    };
    Placement::from_deepseek(num_experts, &arrays)?;
    Ok((Placement::from_phy2log(num_experts, read.rows)?, read.empty))
}

/// Parses a DeepSeek-layout placement from JSON text; see [`placement_from_value`].
///
/// # Errors
/// As [`placement_from_value`], plus invalid JSON.
pub fn placement_from_json(path: &Path, text: &str, num_experts: usize) -> Result<Placement> {
    placement_from_value(path, &parse_json(path, text)?, num_experts)
}
