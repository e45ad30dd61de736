//! The pure-Rust backend: good_lp's `microlp`.

use std::time::Instant;

use good_lp::{
    solvers::{SolutionStatus, WithMipGap},
    ResolutionError, Solution, SolverModel, WithInitialSolution, WithTimeLimit,
};

use super::{LpModel, RawOutcome, RawStatus};
use crate::error::SolverError;

/// Solves `model` with microlp. microlp reports no dual bound when it stops early; when it
/// proves optimality the objective value is the bound.
pub(super) fn run(
    model: LpModel,
    deadline: Option<Instant>,
    gap: Option<f64>,
) -> Result<RawOutcome, SolverError> {
    let LpModel {
        vars,
        objective,
        constraints,
        columns,
        start,
    } = model;
    let mut problem = vars.minimise(objective.clone()).using(good_lp::microlp);
    if let Some(start) = start {
        problem = problem.with_initial_solution(columns.iter().copied().zip(start));
    }
    if let Some(gap) = gap {
        problem = problem
            .with_mip_gap(gap as f32)
            .map_err(|e| SolverError::InvalidModel(e.to_string()))?;
    }
    for c in constraints {
        problem.add_constraint(c);
    }
    // Last, so that microlp's clock (started when it solves) stops at the layer's deadline,
    // not the model's building time later.
    if let Some(deadline) = deadline {
        let limit = deadline.saturating_duration_since(Instant::now());
        problem = problem.with_time_limit(limit.as_secs_f64());
    }
    match problem.solve() {
        Ok(solution) => {
            let proven = matches!(solution.status(), SolutionStatus::Optimal)
                && gap.is_none_or(|g| g == 0.0);
            let objective_value = solution.eval(&objective);
            Ok(RawOutcome {
                values: Some(columns.iter().map(|&v| solution.value(v)).collect()),
                status: if proven {
                    RawStatus::Optimal
                } else {
                    RawStatus::Stopped
                },
                dual_bound: proven.then_some(objective_value),
            })
        }
        Err(ResolutionError::Infeasible) => Ok(RawOutcome {
            values: None,
            status: RawStatus::Infeasible,
            dual_bound: None,
        }),
        // Stopped before finding any solution.
        Err(ResolutionError::Other(_)) => Ok(RawOutcome {
            values: None,
            status: RawStatus::Stopped,
            dual_bound: None,
        }),
        Err(e) => Err(SolverError::Backend(format!("microlp: {e}"))),
    }
}
