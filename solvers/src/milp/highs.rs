//! The HiGHS backend: the model is built through good_lp, then solved with the `highs` crate
//! directly so that HiGHS's dual bound (`mip_dual_bound`) can be read when it stops early.

use highs::{HighsModelStatus, HighsSolutionStatus};

use super::{MilpOptions, Model, RawOutcome};
use crate::error::SolverError;

/// Absolute gap in the model's scaled units (the mean bin load is `1`).
const ABSOLUTE_GAP: f64 = 1e-9;

fn option_error(name: &str) -> SolverError {
    SolverError::Backend(format!("HiGHS rejected the option {name}"))
}

/// Solves `model` with HiGHS.
pub(super) fn run(model: Model, options: &MilpOptions) -> Result<RawOutcome, SolverError> {
    let Model {
        vars,
        objective,
        constraints,
        start,
        layout,
    } = model;
    let mut problem = vars.minimise(objective).using(good_lp::highs);
    for c in constraints {
        good_lp::SolverModel::add_constraint(&mut problem, c);
    }
    let mut highs = problem
        .try_into_inner()
        .map_err(|e| SolverError::Backend(e.to_string()))?;
    highs.make_quiet();
    if let Some(limit) = options.time_limit {
        highs
            .try_set_option("time_limit", limit.as_secs_f64())
            .map_err(|_| option_error("time_limit"))?;
    }
    highs
        .try_set_option("mip_rel_gap", options.mip_gap.unwrap_or(0.0))
        .map_err(|_| option_error("mip_rel_gap"))?;
    highs
        .try_set_option("mip_abs_gap", ABSOLUTE_GAP)
        .map_err(|_| option_error("mip_abs_gap"))?;
    if let Some(threads) = options.threads {
        highs
            .try_set_option("threads", i32::try_from(threads.max(1)).unwrap_or(i32::MAX))
            .map_err(|_| option_error("threads"))?;
    }
    let columns: Vec<f64> = start.iter().map(|&(_, value)| value).collect();
    highs
        .try_set_solution(Some(&columns), None, None, None)
        .map_err(|e| SolverError::Backend(format!("HiGHS rejected the start: {e:?}")))?;
    let solved = highs
        .try_solve()
        .map_err(|e| SolverError::Backend(format!("HiGHS failed: {e:?}")))?;
    let proven_optimal = match solved.status() {
        HighsModelStatus::Optimal => true,
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedMemoryLimit
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget => false,
        status => {
            return Err(SolverError::Backend(format!(
                "HiGHS ended with status {status:?}"
            )))
        }
    };
    // With a requested gap HiGHS may stop at `Optimal` before closing it.
    let proven_optimal = proven_optimal && options.mip_gap.map_or(true, |g| g == 0.0);
    let dual_bound = solved
        .double_info_value(c"mip_dual_bound")
        .ok()
        .filter(|b| b.is_finite());
    let copies = (solved.primal_solution_status() == HighsSolutionStatus::Feasible).then(|| {
        let solution = solved.get_solution();
        let values = solution.columns();
        layout.extract(|_, column| values[column])
    });
    Ok(RawOutcome {
        copies,
        proven_optimal,
        dual_bound,
    })
}
