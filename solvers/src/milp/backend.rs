//! The backends: which solver runs a model, and the model handed to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use good_lp::{Constraint, Expression, ProblemVariables, Variable};

use crate::error::SolverError;

use super::*;

/// Which MILP solver runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// good_lp's pure-Rust `microlp` (branch and bound on a dense simplex): tiny instances.
    MicroLp,
    /// HiGHS through good_lp and the `highs` crate (cargo feature `highs`).
    #[cfg(feature = "highs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "highs")))]
    Highs,
}

impl Default for Backend {
    /// HiGHS when the `highs` feature is on, `microlp` otherwise.
    fn default() -> Self {
        #[cfg(feature = "highs")]
        {
            Backend::Highs
        }
        #[cfg(not(feature = "highs"))]
        {
            Backend::MicroLp
        }
    }
}

impl Backend {
    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::MicroLp => "microlp",
            #[cfg(feature = "highs")]
            Backend::Highs => "highs",
        }
    }
}

/// How a backend run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RawStatus {
    /// Solved to the requested gap.
    Optimal,
    /// No solution exists.
    Infeasible,
    /// A limit stopped it.
    Stopped,
}

/// What a backend returns: column values (creation order), status, dual bound (model units).
pub(super) struct RawOutcome {
    pub(super) values: Option<Vec<f64>>,
    pub(super) status: RawStatus,
    pub(super) dual_bound: Option<f64>,
}

/// A model ready for a backend.
pub(super) struct LpModel {
    pub(super) vars: ProblemVariables,
    pub(super) objective: Expression,
    pub(super) constraints: Vec<Constraint>,
    /// The variables in creation order (column `c` is `columns[c]`).
    pub(super) columns: Vec<Variable>,
    /// A starting solution, one value per column.
    pub(super) start: Option<Vec<f64>>,
}

/// Runs `model` on the settings' backend with the time left, at the settings' relative gap.
pub(super) fn run(model: LpModel, ctx: &Settings) -> Result<RawOutcome, SolverError> {
    let gap = ctx.gap;
    let time_left = ctx.time_left();
    let ctx_deadline = ctx.deadline;
    // Only a deadline that has passed skips a run (a margin would stop a layer before its
    // deadline at a point that depends on the machine's speed).
    if time_left.is_some_and(|t| t.is_zero()) {
        return Ok(RawOutcome {
            values: None,
            status: RawStatus::Stopped,
            dual_bound: None,
        });
    }
    let outcome = match ctx.backend {
        Backend::MicroLp => run_until(ctx.deadline, move || microlp::run(model, ctx_deadline, gap)),
        #[cfg(feature = "highs")]
        Backend::Highs => highs::run(model, ctx.deadline, gap, ctx.threads),
    };
    failure_as_limit(outcome)
}

/// A failure inside the solver (e.g. microlp's "Singular matrix") ends a run like a limit: no
/// solution, no bound; the search keeps its incumbent and its proven bound.
pub(super) fn failure_as_limit(
    outcome: Result<RawOutcome, SolverError>,
) -> Result<RawOutcome, SolverError> {
    match outcome {
        Err(SolverError::Backend(_)) => Ok(RawOutcome::stopped()),
        other => other,
    }
}

impl RawOutcome {
    /// A run that ended without a solution or a bound.
    pub(super) fn stopped() -> Self {
        RawOutcome {
            values: None,
            status: RawStatus::Stopped,
            dual_bound: None,
        }
    }
}

/// Runs `solve` so that the caller gets an answer by `deadline` (plus [`GRACE`]): a backend
/// that checks its clock only now and then (microlp: every 1000 simplex pivots and between
/// branch-and-bound nodes) may overrun its own time limit, so it runs on a thread of its own
/// and, when it has not answered in time, the run ends like a limit (no solution, no bound) and
/// the thread is *abandoned*: left to stop at its own time limit (set to the same deadline).
/// At most [`ABANDONED_LIMIT`] abandoned runs are alive in the process at once: a new run
/// first waits (until its deadline) for one of them to end, so abandoned threads never take
/// more than that many cores. Without a deadline it runs here.
pub(super) fn run_until(
    deadline: Option<Instant>,
    solve: impl FnOnce() -> Result<RawOutcome, SolverError> + Send + 'static,
) -> Result<RawOutcome, SolverError> {
    run_gated(&ABANDONED, deadline, solve)
}

/// [`run_until`] with the abandoned runs counted by `gate`.
pub(super) fn run_gated(
    gate: &'static Abandoned,
    deadline: Option<Instant>,
    solve: impl FnOnce() -> Result<RawOutcome, SolverError> + Send + 'static,
) -> Result<RawOutcome, SolverError> {
    let Some(deadline) = deadline else {
        return solve();
    };
    if !gate.wait_for_room(deadline) {
        // The abandoned runs held the cores until the deadline: no answer, like a limit.
        return Ok(RawOutcome::stopped());
    }
    let run = Arc::new(RunState::default());
    let (send, receive) = std::sync::mpsc::channel();
    let thread_run = Arc::clone(&run);
    let spawned = std::thread::Builder::new()
        .name("eplb-microlp".into())
        .spawn(move || {
            let outcome = solve();
            gate.finish(&thread_run);
            // The receiver may be gone (the caller stopped waiting): nothing to do then.
            let _ = send.send(outcome);
        });
    if spawned.is_err() {
        // No thread to run it on: no answer, like a limit.
        return Ok(RawOutcome::stopped());
    }
    let wait = deadline.saturating_duration_since(Instant::now()) + GRACE;
    receive.recv_timeout(wait).unwrap_or_else(|_| {
        gate.abandon(&run);
        Ok(RawOutcome::stopped())
    })
}

/// How long past the deadline a backend run may take to deliver its answer.
const GRACE: Duration = Duration::from_millis(5);

/// How many abandoned backend runs may be alive in the process at once (see [`run_until`]).
pub(super) const ABANDONED_LIMIT: usize = 2;

/// The process's abandoned backend runs.
static ABANDONED: Abandoned = Abandoned::new(ABANDONED_LIMIT);

/// Whether one run has ended and whether its caller stopped waiting for it (both changed only
/// under the [`Abandoned`] lock, so that a run is counted exactly when it is abandoned alive).
#[derive(Default)]
pub(super) struct RunState {
    done: AtomicBool,
    abandoned: AtomicBool,
}

/// Counts the backend runs whose callers stopped waiting and that are still running, and lets
/// new runs wait for room.
pub(super) struct Abandoned {
    alive: Mutex<usize>,
    ended: Condvar,
    limit: usize,
}

impl Abandoned {
    /// A gate letting at most `limit` abandoned runs be alive.
    pub(super) const fn new(limit: usize) -> Self {
        Self {
            alive: Mutex::new(0),
            ended: Condvar::new(),
            limit,
        }
    }

    /// The abandoned runs alive now.
    #[cfg(test)]
    pub(super) fn alive(&self) -> usize {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // The count stays valid whatever panicked while holding the lock.
        self.alive.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until fewer than `limit` abandoned runs are alive; false when `deadline` passed
    /// first.
    fn wait_for_room(&self, deadline: Instant) -> bool {
        let mut alive = self.lock();
        while *alive >= self.limit {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            alive = match self.ended.wait_timeout(alive, left) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// The caller stopped waiting for `run`: counted while it is still running.
    fn abandon(&self, run: &RunState) {
        let mut alive = self.lock();
        if !run.done.load(Ordering::Relaxed) {
            run.abandoned.store(true, Ordering::Relaxed);
            *alive += 1;
        }
    }

    /// `run` has ended: no longer counted, and a waiting run may start.
    fn finish(&self, run: &RunState) {
        let mut alive = self.lock();
        run.done.store(true, Ordering::Relaxed);
        if run.abandoned.load(Ordering::Relaxed) {
            *alive -= 1;
            self.ended.notify_all();
        }
    }
}
