//! The MILP's answer certified exactly: a floating-point solver proves its bounds only to its
//! feasibility tolerances (about `1e-6` relative), so no bound or optimality claim of the
//! backend leaves the engine. The packing found is handed to the [exact search](crate::exact)
//! as its start, with the same deadline and gap; the certificate is the exact search's, whose
//! bounds and proofs are exact rational arithmetic on the weights (see
//! [`ExactSearch`](crate::exact::ExactSearch) for loads that are not dyadic rationals: their
//! bounds stay valid, optimality is then claimed only when the problem's known lower bound
//! meets the value).

use std::time::Instant;

use crate::exact::ExactSearch;
use crate::packing::{
    CertifiedPacking, ExactEngine, PackingProblem, StopReason, WithDeadline, WithGap, WithStart,
};

/// The certificate of `copies` (copies per item and bin, a valid packing of `problem`): the
/// exact search's answer started from it (never worse), or, when the exact search cannot take
/// the problem (e.g. more groups than it supports), `copies` with the problem's known bound.
pub(super) fn certify(
    problem: &PackingProblem,
    copies: &[Vec<usize>],
    gap: f64,
    deadline: Option<Instant>,
) -> CertifiedPacking {
    let slots = problem.slots_of(copies);
    let value = problem.peak_of_slots(&slots);
    let verifier = ExactSearch::default()
        .with_deadline(deadline)
        .with_gap(gap)
        .with_start(slots.clone());
    match verifier.solve(problem) {
        Ok(exact) if exact.value <= value => exact,
        Ok(exact) => CertifiedPacking {
            // The exact search's bound holds for every packing; its packing is not better.
            stop: StopReason::judge(false, value, exact.lower_bound.min(value), gap),
            lower_bound: exact.lower_bound.min(value),
            slots,
            value,
        },
        Err(_) => {
            let lower_bound = problem.lower_bound().min(value);
            CertifiedPacking {
                stop: StopReason::judge(value <= problem.lower_bound(), value, lower_bound, gap),
                slots,
                value,
                lower_bound,
            }
        }
    }
}
