//! The HiGHS backend: the model is built through good_lp, then solved with the `highs` crate
//! directly so that HiGHS's dual bound (`mip_dual_bound`) can be read when it stops early.

use std::time::Instant;

use highs::{HighsModelStatus, HighsSolutionStatus};

use super::{LpModel, RawOutcome, RawStatus};
use crate::error::SolverError;
use crate::tolerance::HIGHS_ABSOLUTE_GAP;

fn option_error(name: &str) -> SolverError {
    SolverError::Backend(format!("HiGHS rejected the option {name}"))
}

/// Solves `model` with HiGHS before `deadline` (the time to hand the model over counts),
/// stopping at the relative `gap` (default 0).
pub(super) fn run(
    model: LpModel,
    deadline: Option<Instant>,
    gap: Option<f64>,
    threads: Option<usize>,
) -> Result<RawOutcome, SolverError> {
    let LpModel {
        vars,
        objective,
        constraints,
        columns: _,
        start,
    } = model;
    let mut problem = vars.minimise(objective).using(good_lp::highs);
    for c in constraints {
        good_lp::SolverModel::add_constraint(&mut problem, c);
    }
    let mut highs = problem
        .try_into_inner()
        .map_err(|e| SolverError::Backend(e.to_string()))?;
    highs.make_quiet();
    if let Some(deadline) = deadline {
        // The whole time left and no less: a run that HiGHS stops at its time limit must end
        // at (or just past) the caller's deadline, so that only a layer that reached its
        // deadline can depend on where a run stopped (an earlier stop would leave another
        // start to the certification that follows, which may still prove an optimum in time:
        // another optimum on another run). HiGHS checks its clock between steps; the
        // overshoot is within the documented time-limit guarantee.
        let limit = deadline.saturating_duration_since(Instant::now());
        if limit.is_zero() {
            return Ok(RawOutcome {
                values: None,
                status: RawStatus::Stopped,
                dual_bound: None,
            });
        }
        highs
            .try_set_option("time_limit", limit.as_secs_f64())
            .map_err(|_| option_error("time_limit"))?;
    }
    highs
        .try_set_option("mip_rel_gap", gap.unwrap_or(0.0))
        .map_err(|_| option_error("mip_rel_gap"))?;
    highs
        .try_set_option("mip_abs_gap", HIGHS_ABSOLUTE_GAP)
        .map_err(|_| option_error("mip_abs_gap"))?;
    // One layer, one thread unless told otherwise: layers run in parallel.
    highs
        .try_set_option(
            "threads",
            i32::try_from(threads.unwrap_or(1).max(1)).unwrap_or(i32::MAX),
        )
        .map_err(|_| option_error("threads"))?;
    if let Some(columns) = start {
        highs
            .try_set_solution(Some(&columns), None, None, None)
            .map_err(|e| SolverError::Backend(format!("HiGHS rejected the start: {e:?}")))?;
    }
    let solved = highs
        .try_solve()
        .map_err(|e| SolverError::Backend(format!("HiGHS failed: {e:?}")))?;
    let status = match solved.status() {
        HighsModelStatus::Optimal => RawStatus::Optimal,
        HighsModelStatus::Infeasible => RawStatus::Infeasible,
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedMemoryLimit
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget => RawStatus::Stopped,
        status => {
            return Err(SolverError::Backend(format!(
                "HiGHS ended with status {status:?}"
            )))
        }
    };
    let dual_bound = solved
        .double_info_value(c"mip_dual_bound")
        .ok()
        .filter(|b| b.is_finite());
    let values = (status != RawStatus::Infeasible
        && solved.primal_solution_status() == HighsSolutionStatus::Feasible)
        .then(|| solved.get_solution().columns().to_vec());
    Ok(RawOutcome {
        values,
        status,
        dual_bound,
    })
}
