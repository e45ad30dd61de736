//! The live-rebalancing calls of `eplb._eplb`: [`align`] and [`rebalance`] over
//! [`eplb::live`], the transfer plan as dicts, and DeepSeek's arrays of a placement with failed
//! GPUs (their slots `-1`).

use eplb::live::{
    self, count_transfers, LayerPlan, LiveCluster, LiveGpus, MoveBudget, RebalanceOptions,
    SearchEffort, TransferPlan, DEAD_SLOT_FILLER,
};
use eplb::{EplbError, LayerPlacement, Placement, Problem};
use numpy::{PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{
    arrays_of, arrays_of_flat, ids_of, options_of, problem_of, strategy_of, value_error, Arrays,
};

/// The rows of a current placement given to the vLLM hook, one [`LayerPlacement`] per layer:
/// an id outside `0..E` (such as `-1` for an empty slot) becomes `E`, which matches no expert,
/// so such a slot holds nothing any new replica could stay on.
///
/// # Errors
/// `ValueError` when the layer count differs from the problem's.
pub(crate) fn current_layers(
    old: &PyReadonlyArray2<'_, i64>,
    problem: &Problem,
) -> PyResult<Vec<LayerPlacement>> {
    let old = old.as_array();
    if old.nrows() != problem.num_layers() {
        return Err(PyValueError::new_err(format!(
            "old_global_expert_indices has {} layers but weight has {}",
            old.nrows(),
            problem.num_layers()
        )));
    }
    let experts = problem.num_experts();
    Ok(old
        .rows()
        .into_iter()
        .map(|row| {
            LayerPlacement::from_phy2log(
                row.iter()
                    .map(|&id| {
                        usize::try_from(id)
                            .ok()
                            .filter(|&e| e < experts)
                            .unwrap_or(experts)
                    })
                    .collect(),
            )
        })
        .collect())
}

/// The current placement of a rebalance: `[layers, num_replicas]` ids in `0..E`, and `-1`
/// (or any id) in the slots of failed GPUs, which hold nothing usable.
///
/// # Errors
/// `ValueError` naming the first wrong dimension or id.
fn current_of(
    current: &PyReadonlyArray2<'_, i64>,
    problem: &Problem,
    live: Option<&LiveGpus>,
) -> PyResult<Placement> {
    let view = current.as_array();
    let (layers, width) = view.dim();
    let cluster = problem.cluster();
    if layers != problem.num_layers() || width != cluster.replicas {
        return Err(PyValueError::new_err(format!(
            "current_phy2log has shape ({layers}, {width}) but must be ({}, {}): one row per \
             layer of weight, one entry per physical slot",
            problem.num_layers(),
            cluster.replicas
        )));
    }
    let experts = problem.num_experts();
    let slots = cluster.slots_per_gpu();
    let rows = view
        .rows()
        .into_iter()
        .enumerate()
        .map(|(l, row)| {
            row.iter()
                .enumerate()
                .map(|(s, &id)| match usize::try_from(id) {
                    Ok(e) if e < experts => Ok(e),
                    _ if live.is_some_and(|m| !m.is_live(s / slots)) => Ok(DEAD_SLOT_FILLER),
                    _ => Err(PyValueError::new_err(format!(
                        "current_phy2log[{l}][{s}] = {id}: expert ids must be in 0..{experts} \
                         (-1 only in the slots of failed_gpus)"
                    ))),
                })
                .collect::<PyResult<Vec<usize>>>()
        })
        .collect::<PyResult<Vec<_>>>()?;
    Placement::from_phy2log(experts, rows).map_err(value_error)
}

/// The live GPUs when some of the `num_gpus` failed (`None` when none did).
///
/// # Errors
/// `ValueError` (the library's) for a GPU id `>= num_gpus` or when every GPU failed.
pub(crate) fn live_of(num_gpus: usize, failed: Option<Vec<usize>>) -> PyResult<Option<LiveGpus>> {
    failed
        .filter(|f| !f.is_empty())
        .map(|f| LiveGpus::with_failed(num_gpus, &f))
        .transpose()
        .map_err(value_error)
}

/// DeepSeek's arrays of a whole-cluster `placement` made on `live`: dead GPUs' slots are `-1` in
/// `phy2log` and appear in no `log2phy` row; `logcnt` counts the live replicas.
pub(crate) fn live_arrays<'py>(
    py: Python<'py>,
    live: &LiveCluster,
    placement: &Placement,
) -> PyResult<Arrays<'py>> {
    let flat = live.to_deepseek_flat(placement).map_err(value_error)?;
    arrays_of_flat(py, flat)
}

/// One layer's transfer plan as a dict: counts, bytes, rounds and the moves.
fn plan_dict<'py>(py: Python<'py>, plan: &LayerPlan) -> PyResult<Bound<'py, PyDict>> {
    let moves = PyList::empty(py);
    for m in &plan.moves {
        moves.append(py_dict!(py, {
            "expert": m.expert,
            "from_gpu": m.from_gpu,
            "from_slot": m.from_slot,
            "to_gpu": m.to_gpu,
            "to_slot": m.to_slot,
            "round": m.round,
            "cross_node": m.cross_node,
        }))?;
    }
    Ok(py_dict!(py, {
        "layer": plan.layer,
        "transfers": plan.transfers,
        "cross_node": plan.cross_node,
        "host_reloads": plan.host_reloads,
        "local_copies": plan.local_copies,
        "bytes": plan.bytes,
        "rounds": plan.rounds,
        "rounds_lower_bound": plan.rounds_lower_bound,
        "moves": moves,
    }))
}

/// The plans of every layer as dicts.
fn plan_dicts<'py>(py: Python<'py>, plan: &TransferPlan) -> PyResult<Bound<'py, PyList>> {
    let layers = PyList::empty(py);
    for p in &plan.layers {
        layers.append(plan_dict(py, p)?)?;
    }
    Ok(layers)
}

/// What [`align`] returns: the aligned `phy2log`, one plan dict per layer, the transfers before
/// the alignment.
type AlignAnswer<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyList>, Vec<usize>);

/// `new` relabelled to need the fewest transfers from `current` ([`eplb::live::align`]): the
/// aligned `phy2log`, the plan of every layer from `current` to it, and the transfers `new`
/// needed before the alignment.
#[pyfunction]
#[pyo3(signature = (loads, current, new, num_gpus, num_nodes, num_groups, *, policy, expert_bytes))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn align<'py>(
    py: Python<'py>,
    loads: &Bound<'py, PyAny>,
    current: PyReadonlyArray2<'py, i64>,
    new: PyReadonlyArray2<'py, i64>,
    num_gpus: usize,
    num_nodes: usize,
    num_groups: usize,
    policy: &str,
    expert_bytes: u64,
) -> PyResult<AlignAnswer<'py>> {
    let (_, num_replicas) = current.as_array().dim();
    let problem = problem_of(loads, num_replicas, num_gpus, num_nodes, num_groups, policy)?;
    let experts = problem.num_experts();
    let current = Placement::from_phy2log(experts, ids_of(current.as_array(), "current_phy2log")?)
        .map_err(value_error)?;
    let new = Placement::from_phy2log(experts, ids_of(new.as_array(), "new_phy2log")?)
        .map_err(value_error)?;
    let (aligned, plan, before) = py
        .detach(|| -> Result<_, EplbError> {
            let aligned = live::align(&problem, &current, &new)?;
            let plan = TransferPlan::new(&problem, &current, &aligned, expert_bytes)?;
            let before = current
                .layers()
                .iter()
                .zip(new.layers())
                .map(|(c, n)| count_transfers(problem.cluster(), c, n).transfers)
                .collect();
            Ok((aligned, plan, before))
        })
        .map_err(value_error)?;
    let (phy2log, _, _) = arrays_of(py, &aligned)?;
    Ok((phy2log, plan_dicts(py, &plan)?, before))
}

/// The budget of a rebalance from the Python keywords (at most one of them).
fn budget_of(max_moves: Option<usize>, max_bytes: Option<u64>) -> PyResult<MoveBudget> {
    match (max_moves, max_bytes) {
        (Some(_), Some(_)) => Err(PyValueError::new_err(
            "max_moves and max_bytes cannot both be given: choose a per-layer transfer limit \
             or a byte budget over all layers",
        )),
        (Some(k), None) => Ok(MoveBudget::PerLayer(k)),
        (None, Some(b)) => Ok(MoveBudget::TotalBytes(b)),
        (None, None) => Ok(MoveBudget::Unlimited),
    }
}

/// What [`rebalance`] returns: DeepSeek's arrays of the new placement, one dict per layer
/// (the rebalance's numbers and the layer's transfer plan), the update order, the failed GPUs,
/// the policy used and why it fell back to global, if it did.
type RebalanceAnswer<'py> = (
    Arrays<'py>,
    Bound<'py, PyList>,
    Vec<usize>,
    Vec<usize>,
    String,
    Option<String>,
);

/// The budgeted search's effort named `name`.
fn effort_of(name: &str) -> PyResult<SearchEffort> {
    match name {
        "quick" => Ok(SearchEffort::Quick),
        "thorough" => Ok(SearchEffort::Thorough),
        other => Err(PyValueError::new_err(format!(
            "unknown effort {other:?}: valid efforts are \"quick\" and \"thorough\""
        ))),
    }
}

/// [`eplb::live::rebalance`] of `current` for the loads `weight`, with its transfer plan.
#[pyfunction]
#[pyo3(signature = (
    weight, current, num_replicas, num_gpus, num_nodes, num_groups, *, policy, strategy,
    sub_strategy=None, time_limit=None, mip_gap=None, threads=None, max_moves=None,
    max_bytes=None, expert_bytes, min_gain, failed_gpus=None, distinct_replicas=false,
    effort="thorough"
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rebalance<'py>(
    py: Python<'py>,
    weight: &Bound<'py, PyAny>,
    current: PyReadonlyArray2<'py, i64>,
    num_replicas: usize,
    num_gpus: usize,
    num_nodes: usize,
    num_groups: usize,
    policy: &str,
    strategy: Option<&str>,
    sub_strategy: Option<&str>,
    time_limit: Option<f64>,
    mip_gap: Option<f64>,
    threads: Option<usize>,
    max_moves: Option<usize>,
    max_bytes: Option<u64>,
    expert_bytes: u64,
    min_gain: f64,
    failed_gpus: Option<Vec<usize>>,
    distinct_replicas: bool,
    effort: &str,
) -> PyResult<RebalanceAnswer<'py>> {
    let problem = problem_of(
        weight,
        num_replicas,
        num_gpus,
        num_nodes,
        num_groups,
        policy,
    )?;
    let fresh = strategy.map(|s| strategy_of(s, sub_strategy)).transpose()?;
    let live = live_of(num_gpus, failed_gpus)?;
    let current = current_of(&current, &problem, live.as_ref())?;
    let mut options = RebalanceOptions::new(budget_of(max_moves, max_bytes)?)
        .with_min_gain(min_gain)
        .with_expert_bytes(expert_bytes)
        .with_solve_options(options_of(time_limit, mip_gap, threads)?)
        .with_distinct_replicas(distinct_replicas)
        .with_effort(effort_of(effort)?);
    if let Some(mask) = &live {
        options = options.with_live(mask.clone());
    }
    let (result, plan) = py
        .detach(|| -> Result<_, EplbError> {
            let result = live::rebalance(&problem, &current, fresh.as_deref(), &options)?;
            let all = LiveGpus::all(num_gpus);
            let mask = live.as_ref().unwrap_or(&all);
            let plan =
                TransferPlan::with_live(&problem, &current, &result.placement, expert_bytes, mask)?;
            Ok((result, plan))
        })
        .map_err(value_error)?;
    let arrays = match &result.live {
        Some(cluster) => live_arrays(py, cluster, &result.placement)?,
        None => arrays_of(py, &result.placement)?,
    };
    let layers = PyList::empty(py);
    for (r, p) in result.layers.iter().zip(&plan.layers) {
        let d = py_dict!(py, {
            "layer": r.layer,
            "old_max": r.old_max,
            "new_max": r.new_max,
            "gain": r.gain,
            "lower_bound": r.lower_bound,
            "choice": format!("{:?}", r.choice).to_lowercase(),
            "plan": plan_dict(py, p)?,
        });
        layers.append(d)?;
    }
    let (policy, fallback) = match &result.live {
        Some(cluster) => (cluster.policy, cluster.fallback.clone()),
        None => (problem.policy(), None),
    };
    let failed = live.map(|m| m.failed()).unwrap_or_default();
    Ok((
        arrays,
        layers,
        result.update_order,
        failed,
        policy.to_string(),
        fallback,
    ))
}
