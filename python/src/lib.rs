//! `eplb._eplb`: the native half of the Python package `eplb`, thin over the Rust library.
//!
//! Every function takes NumPy arrays (the Python half turns torch tensors and lists into them
//! without copying where it can), converts the loads once into the library's layout
//! ([`Loads`], `f64`), solves with the GIL released and hands back NumPy arrays. Errors of the
//! library become `ValueError` with its message; an array of a dtype or dimension the engine
//! cannot read becomes `TypeError`.
//!
//! The public, documented API is the Python one (`python/eplb/__init__.py`, stubs in
//! `python/eplb/_eplb.pyi`); these functions are its building blocks.

use std::time::Duration;

/// A new `PyDict` with these `"key": value` items (`?` on each insertion).
macro_rules! py_dict {
    ($py:expr, { $($key:literal : $value:expr),* $(,)? }) => {{
        let d = PyDict::new($py);
        $(d.set_item($key, $value)?;)*
        d
    }};
}

mod live;

use eplb::live::{align_layer, evaluate_live, place_on_live, DEAD_SLOT_FILLER};
use eplb::runner::solve_tables;
use eplb::strategies::{Registry, StrategySpec};
use eplb::{
    evaluate, solve, Claim, Cluster, DeepSeekFlat, EplbError, Evaluation, LayerPlacement, Loads,
    Placement, PlacementStrategy, PolicyChoice, Problem, Solution, SolveOptions, Tables,
};
use num_traits::AsPrimitive;
use numpy::ndarray::{Array2, Array3, ArrayView2};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The library's error as the `ValueError` Python callers catch, with the library's message
/// (which names the shape, position and what is valid).
pub(crate) fn value_error(error: EplbError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// The loads of a 2-D NumPy array of any integer or float dtype, converted once to the engine's
/// `f64` layout (strided arrays are read in place, in logical order).
///
/// # Errors
/// `TypeError` for another dimension or dtype; `ValueError` (the library's) for an empty
/// matrix or a NaN, infinite or negative load.
pub(crate) fn loads_of(array: &Bound<'_, PyAny>) -> PyResult<Loads> {
    fn convert<T: AsPrimitive<f64>>(view: ArrayView2<'_, T>) -> PyResult<Loads> {
        let (layers, experts) = view.dim();
        // `as f64`, as `numpy.astype(float64)` converts (a contiguous array as one slice).
        let data = match view.as_slice() {
            Some(values) => values.iter().map(|&x| x.as_()).collect(),
            None => view.iter().map(|&x| x.as_()).collect(),
        };
        Loads::from_flat(layers, experts, data).map_err(value_error)
    }
    macro_rules! by_dtype {
        ($($t:ty),*) => {
            $(if let Ok(a) = array.extract::<PyReadonlyArray2<'_, $t>>() {
                return convert(a.as_array());
            })*
        };
    }
    by_dtype!(i64, f32, f64, i32, u64, u32, i16, u16, i8, u8);
    Err(match array.cast::<numpy::PyUntypedArray>() {
        Ok(a) => PyTypeError::new_err(format!(
            "loads must be a 2-D array of integers or floats; got a {}-D array of dtype {}",
            a.ndim(),
            a.dtype()
        )),
        Err(_) => PyTypeError::new_err("loads must be a NumPy array"),
    })
}

/// A 2-D `int64` array of non-negative ids (a placement), rows as `usize`.
///
/// # Errors
/// `ValueError` naming the first negative entry.
pub(crate) fn ids_of(array: ArrayView2<'_, i64>, what: &str) -> PyResult<Vec<Vec<usize>>> {
    array
        .rows()
        .into_iter()
        .enumerate()
        .map(|(l, row)| {
            row.iter()
                .enumerate()
                .map(|(s, &id)| {
                    usize::try_from(id).map_err(|_| {
                        PyValueError::new_err(format!(
                            "{what}[{l}][{s}] = {id}: expert ids must be >= 0"
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

/// `"auto"`, `"hierarchical"` or `"global"`.
fn policy_of(name: &str) -> PyResult<PolicyChoice> {
    match name {
        "auto" => Ok(PolicyChoice::Auto),
        "hierarchical" => Ok(PolicyChoice::Hierarchical),
        "global" => Ok(PolicyChoice::Global),
        other => Err(PyValueError::new_err(format!(
            "unknown policy {other:?}: valid policies are \"auto\", \"hierarchical\" and \"global\""
        ))),
    }
}

/// The validated problem of the loads array `loads` on a cluster.
pub(crate) fn problem_of(
    loads: &Bound<'_, PyAny>,
    num_replicas: usize,
    num_gpus: usize,
    num_nodes: usize,
    num_groups: usize,
    policy: &str,
) -> PyResult<Problem> {
    let cluster = Cluster::new(num_replicas, num_gpus)
        .with_nodes(num_nodes)
        .with_groups(num_groups);
    Problem::new(loads_of(loads)?, cluster, policy_of(policy)?).map_err(value_error)
}

/// The limits of a solve from the Python keywords.
pub(crate) fn options_of(
    time_limit: Option<f64>,
    mip_gap: Option<f64>,
    threads: Option<usize>,
) -> PyResult<SolveOptions> {
    let time_limit = time_limit
        .map(|secs| {
            Duration::try_from_secs_f64(secs).map_err(|_| {
                PyValueError::new_err(format!(
                    "time_limit = {secs}: must be a finite number of seconds >= 0"
                ))
            })
        })
        .transpose()?;
    if let Some(gap) = mip_gap.filter(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(PyValueError::new_err(format!(
            "mip_gap = {gap}: must be a finite relative gap >= 0"
        )));
    }
    if threads == Some(0) {
        return Err(PyValueError::new_err(
            "threads = 0: must be at least 1 (or None for all cores)",
        ));
    }
    Ok(SolveOptions::new()
        .with_time_limit(time_limit)
        .with_mip_gap(mip_gap)
        .with_threads(threads))
}

/// `phy2log` `[L, R]`, `log2phy` `[L, E, X]` (`-1` padded) and `logcnt` `[L, E]` as `int64`.
pub(crate) type Arrays<'py> = (
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray3<i64>>,
    Bound<'py, PyArray2<i64>>,
);

/// DeepSeek's three arrays of `placement` as NumPy `int64` arrays that own the library's flat
/// buffers ([`Placement::to_deepseek_flat`]: no further copy).
pub(crate) fn arrays_of<'py>(py: Python<'py>, placement: &Placement) -> PyResult<Arrays<'py>> {
    arrays_of_flat(py, placement.to_deepseek_flat().map_err(value_error)?)
}

/// [`Arrays`] as [`place`] returns them: `log2phy` and `logcnt` are `None` when only `phy2log`
/// was asked for ([`Tables::Phy2log`]).
pub(crate) type PlacedArrays<'py> = (
    Bound<'py, PyArray2<i64>>,
    Option<Bound<'py, PyArray3<i64>>>,
    Option<Bound<'py, PyArray2<i64>>>,
);

/// The tables of `flat` that `tables` asked for, as NumPy arrays owning its buffers.
fn placed_arrays(
    py: Python<'_>,
    mut flat: DeepSeekFlat,
    tables: Tables,
) -> PyResult<PlacedArrays<'_>> {
    match tables {
        Tables::Phy2log => Ok((phy2log_array(py, &mut flat)?, None, None)),
        _ => {
            let (phy2log, log2phy, logcnt) = arrays_of_flat(py, flat)?;
            Ok((phy2log, Some(log2phy), Some(logcnt)))
        }
    }
}

/// The `tables` keyword: `"all"` or `"phy2log"`.
fn tables_of(tables: &str) -> PyResult<Tables> {
    match tables {
        "all" => Ok(Tables::All),
        "phy2log" => Ok(Tables::Phy2log),
        other => Err(PyValueError::new_err(format!(
            "tables = {other:?}: must be \"all\" (phy2log, log2phy, logcnt) or \"phy2log\""
        ))),
    }
}

/// The NumPy arrays that own `flat`'s buffers.
pub(crate) fn arrays_of_flat(py: Python<'_>, mut flat: DeepSeekFlat) -> PyResult<Arrays<'_>> {
    Ok((
        phy2log_array(py, &mut flat)?,
        Array3::from_shape_vec(
            (flat.layers, flat.experts, flat.width),
            std::mem::take(&mut flat.log2phy),
        )
        .map_err(shape_error)?
        .into_pyarray(py),
        Array2::from_shape_vec(
            (flat.layers, flat.experts),
            std::mem::take(&mut flat.logcnt),
        )
        .map_err(shape_error)?
        .into_pyarray(py),
    ))
}

/// `flat`'s `phy2log` `[L, R]` as a NumPy array that owns the buffer (taken from `flat`).
fn phy2log_array<'py>(
    py: Python<'py>,
    flat: &mut DeepSeekFlat,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    Ok(
        Array2::from_shape_vec((flat.layers, flat.slots), std::mem::take(&mut flat.phy2log))
            .map_err(shape_error)?
            .into_pyarray(py),
    )
}

/// A shape that does not fit its buffer, as a Python `ValueError`.
fn shape_error(e: numpy::ndarray::ShapeError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// One dict per layer: the evaluator's metrics (and the strategy's status and time).
pub(crate) fn layer_dicts<'py>(
    py: Python<'py>,
    evaluation: &Evaluation,
    solution: Option<&Solution>,
) -> PyResult<Bound<'py, PyList>> {
    let layers = PyList::empty(py);
    for (l, r) in evaluation.layers.iter().enumerate() {
        let d = py_dict!(py, {
            "layer": r.layer,
            "max_load": r.max_load,
            "mean_load": r.mean_load,
            "balancedness": r.balancedness,
            "imbalance": r.imbalance,
            "lower_bound": r.lower_bound,
            "gap": r.gap,
            "colocated_replicas": r.colocated_replicas,
            "gpu_loads": r.gpu_loads.clone(),
        });
        let violations: Vec<String> = r.violations.iter().map(ToString::to_string).collect();
        d.set_item("violations", violations)?;
        let claims: Vec<String> = r.claim_violations.iter().map(ToString::to_string).collect();
        d.set_item("claim_violations", claims)?;
        if let Some(s) = solution {
            d.set_item("status", s.layers[l].status.to_string())?;
            d.set_item("solve_ms", s.layers[l].elapsed.as_secs_f64() * 1e3)?;
        }
        layers.append(d)?;
    }
    Ok(layers)
}

/// Solves `weight` with the named strategy: DeepSeek's arrays, and with `metrics` the
/// evaluator's per-layer metrics (`None` otherwise: the drop-in call skips the bounds).
///
/// `old_phy2log` (vLLM's `old_global_expert_indices`) relabels the answer with
/// [`eplb::live::align_layer`] to need the fewest transfers from it; `failed_gpus` places on the
/// other GPUs only (their slots are `-1` in `phy2log`).
#[pyfunction]
#[pyo3(signature = (
    weight, num_replicas, num_gpus, num_nodes, num_groups, *, policy, strategy,
    sub_strategy=None, time_limit=None, mip_gap=None, threads=None, old_phy2log=None,
    failed_gpus=None, metrics=false, tables="all"
))]
#[allow(clippy::too_many_arguments)]
fn place<'py>(
    py: Python<'py>,
    weight: &Bound<'py, PyAny>,
    num_replicas: usize,
    num_gpus: usize,
    num_nodes: usize,
    num_groups: usize,
    policy: &str,
    strategy: &str,
    sub_strategy: Option<&str>,
    time_limit: Option<f64>,
    mip_gap: Option<f64>,
    threads: Option<usize>,
    old_phy2log: Option<PyReadonlyArray2<'py, i64>>,
    failed_gpus: Option<Vec<usize>>,
    metrics: bool,
    tables: &str,
) -> PyResult<(PlacedArrays<'py>, Option<Bound<'py, PyList>>)> {
    let tables = tables_of(tables)?;
    let problem = problem_of(
        weight,
        num_replicas,
        num_gpus,
        num_nodes,
        num_groups,
        policy,
    )?;
    let strategy = strategy_of(strategy, sub_strategy)?;
    let options = options_of(time_limit, mip_gap, threads)?;
    if let Some(live) = live::live_of(num_gpus, failed_gpus)? {
        if old_phy2log.is_some() {
            return Err(PyValueError::new_err(
                "failed_gpus and old_phy2log cannot be combined: use eplb.rebalance",
            ));
        }
        let placed = py
            .detach(|| place_on_live(&problem, strategy.as_ref(), &live, &options))
            .map_err(value_error)?;
        let flat = placed
            .live
            .to_deepseek_flat(&placed.placement)
            .map_err(value_error)?;
        let arrays = placed_arrays(py, flat, tables)?;
        let layers = metrics
            .then(|| layer_dicts(py, &placed.evaluation, None))
            .transpose()?;
        return Ok((arrays, layers));
    }
    if old_phy2log.is_none() && !metrics {
        // The tables alone: a strategy with a batched path (greedy) writes them straight
        // from its engine, with no per-layer placements in between.
        let flat = py
            .detach(|| solve_tables(&problem, strategy.as_ref(), &options, tables))
            .map_err(value_error)?;
        return Ok((placed_arrays(py, flat, tables)?, None));
    }
    let old = old_phy2log
        .map(|old| live::current_layers(&old, &problem))
        .transpose()?;
    let (solution, evaluation) = py
        .detach(|| -> Result<_, EplbError> {
            let solution = solve_aligned(&problem, strategy.as_ref(), &options, old)?;
            let evaluation = if metrics {
                Some(evaluate(&problem, &solution.placement, &solution.claims())?)
            } else {
                None
            };
            Ok((solution, evaluation))
        })
        .map_err(value_error)?;
    let flat = solution
        .placement
        .to_deepseek_tables(tables)
        .map_err(value_error)?;
    let arrays = placed_arrays(py, flat, tables)?;
    let layers = evaluation
        .map(|e| layer_dicts(py, &e, Some(&solution)))
        .transpose()?;
    Ok((arrays, layers))
}

/// Solves `problem` and, given the current placement `old` of the same width, relabels the
/// answer to need the fewest transfers from it ([`align_layer`]). A placement of another
/// width (GPUs added or removed) has nothing to align to.
fn solve_aligned(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
    old: Option<Vec<LayerPlacement>>,
) -> Result<Solution, EplbError> {
    let mut solution = solve(problem, strategy, options)?;
    let slots = problem.cluster().replicas;
    if let Some(old) = old.filter(|o| o.iter().all(|l| l.phy2log().len() == slots)) {
        let layers = solution
            .placement
            .layers()
            .iter()
            .zip(&old)
            .map(|(new, old)| align_layer(problem.cluster(), problem.policy(), old, new))
            .collect();
        solution.placement = Placement::new(problem.num_experts(), layers);
    }
    Ok(solution)
}

/// The built strategy `name` (with `sub_strategy` inside the nodes of `hierarchical`).
pub(crate) fn strategy_of(
    name: &str,
    sub_strategy: Option<&str>,
) -> PyResult<Box<dyn PlacementStrategy>> {
    let mut spec = StrategySpec::new(name);
    if let Some(sub) = sub_strategy {
        spec = spec.with_sub_strategy(sub);
    }
    Registry::new().build(&spec).map_err(value_error)
}

/// The evaluator on a placement made anywhere: per-layer metrics and violations (of the live
/// GPUs when some failed).
#[pyfunction]
#[pyo3(signature = (loads, phy2log, num_gpus, num_nodes, num_groups, *, policy, failed_gpus=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate_placement<'py>(
    py: Python<'py>,
    loads: &Bound<'py, PyAny>,
    phy2log: PyReadonlyArray2<'py, i64>,
    num_gpus: usize,
    num_nodes: usize,
    num_groups: usize,
    policy: &str,
    failed_gpus: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyList>> {
    let (_, num_replicas) = phy2log.as_array().dim();
    let problem = problem_of(loads, num_replicas, num_gpus, num_nodes, num_groups, policy)?;
    let live = live::live_of(num_gpus, failed_gpus)?;
    // The failed GPUs' slots carry nothing: whatever they hold (-1 too) is not read.
    let mut ids = phy2log.as_array().to_owned();
    if let Some(mask) = &live {
        let s = problem.cluster().slots_per_gpu();
        for mut row in ids.rows_mut() {
            for (slot, id) in row.iter_mut().enumerate() {
                if !mask.is_live(slot / s) {
                    *id = DEAD_SLOT_FILLER as i64;
                }
            }
        }
    }
    let rows = ids_of(ids.view(), "phy2log")?;
    if rows.len() != problem.num_layers() {
        return Err(PyValueError::new_err(format!(
            "phy2log has {} layers but loads has {}",
            rows.len(),
            problem.num_layers()
        )));
    }
    let evaluation = py
        .detach(|| {
            let placement = Placement::from_phy2log(problem.num_experts(), rows)?;
            match &live {
                Some(mask) => evaluate_live(&problem, &placement, mask),
                None => evaluate(&problem, &placement, &[] as &[Claim]),
            }
        })
        .map_err(value_error)?;
    layer_dicts(py, &evaluation, None)
}

/// `(name, description)` of every built-in strategy, in the library's order.
#[pyfunction]
fn strategies() -> Vec<(String, String)> {
    Registry::new()
        .descriptions()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

/// SGLang's `--init-expert-location` document for `phy2log`, whose row 0 is model layer
/// `first_layer` (the dense layers before it get SGLang's trivial mapping).
#[pyfunction]
#[pyo3(signature = (phy2log, num_experts, first_layer))]
fn sglang_location_json(
    phy2log: PyReadonlyArray2<'_, i64>,
    num_experts: usize,
    first_layer: usize,
) -> PyResult<String> {
    let placement = Placement::from_phy2log(num_experts, ids_of(phy2log.as_array(), "phy2log")?)
        .map_err(value_error)?;
    Ok(eplb::formats::sglang::to_json(&placement, first_layer).to_string())
}

/// The native module `eplb._eplb`.
#[pymodule]
fn _eplb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(place, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_placement, m)?)?;
    m.add_function(wrap_pyfunction!(strategies, m)?)?;
    m.add_function(wrap_pyfunction!(sglang_location_json, m)?)?;
    m.add_function(wrap_pyfunction!(live::align, m)?)?;
    m.add_function(wrap_pyfunction!(live::rebalance, m)?)?;
    m.add("DEFAULT_EXPERT_BYTES", eplb::live::DEFAULT_EXPERT_BYTES)?;
    Ok(())
}
