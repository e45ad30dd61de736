//! The pure-Rust backend: good_lp's `microlp`.

use good_lp::{
    solvers::{SolutionStatus, WithMipGap},
    ResolutionError, Solution, SolverModel, WithInitialSolution, WithTimeLimit,
};

use super::{MilpOptions, Model, RawOutcome};
use crate::error::SolverError;

/// Solves `model` with microlp. microlp reports no dual bound when it stops early.
pub(super) fn run(model: Model, options: &MilpOptions) -> Result<RawOutcome, SolverError> {
    let Model {
        vars,
        objective,
        constraints,
        start,
        layout,
    } = model;
    let mut problem = vars
        .minimise(objective)
        .using(good_lp::microlp)
        .with_initial_solution(start);
    if let Some(limit) = options.time_limit {
        problem = problem.with_time_limit(limit.as_secs_f64());
    }
    if let Some(gap) = options.mip_gap {
        problem = problem
            .with_mip_gap(gap as f32)
            .map_err(|e| SolverError::InvalidModel(e.to_string()))?;
    }
    for c in constraints {
        problem.add_constraint(c);
    }
    match problem.solve() {
        Ok(solution) => {
            let proven = matches!(solution.status(), SolutionStatus::Optimal);
            let objective_value = solution.value(objective);
            Ok(RawOutcome {
                copies: Some(layout.extract(|v, _| solution.value(v))),
                proven_optimal: proven,
                dual_bound: proven.then_some(objective_value),
            })
        }
        // Stopped before finding any solution (cannot happen with a start, but harmless).
        Err(ResolutionError::Other(_)) => Ok(RawOutcome {
            copies: None,
            proven_optimal: false,
            dual_bound: None,
        }),
        Err(e) => Err(SolverError::Backend(format!("microlp: {e}"))),
    }
}
