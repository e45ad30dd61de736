//! Failed GPUs: which GPUs are alive.

use serde::Serialize;

use crate::error::{EplbError, Result};

/// Which GPUs of a cluster are alive: a placement puts replicas only on live GPUs (each keeps
/// its `S` slots), and a transfer plan takes weights only from live ones.
///
/// ```
/// use eplb::live::LiveGpus;
/// let live = LiveGpus::with_failed(4, &[2])?;
/// assert_eq!((live.is_live(1), live.is_live(2), live.live_count()), (true, false, 3));
/// assert!(LiveGpus::with_failed(4, &[4]).is_err()); // GPU ids are 0..4
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveGpus {
    alive: Vec<bool>,
}

impl LiveGpus {
    /// All `gpus` GPUs alive.
    pub fn all(gpus: usize) -> Self {
        Self {
            alive: vec![true; gpus],
        }
    }

    /// `gpus` GPUs of which `failed` are dead (repeats allowed).
    ///
    /// # Errors
    /// [`EplbError::InvalidFailedGpus`] when a failed GPU id is not below `gpus`, or when no
    /// GPU is left alive.
    pub fn with_failed(gpus: usize, failed: &[usize]) -> Result<Self> {
        let mut alive = vec![true; gpus];
        for &g in failed {
            if g >= gpus {
                return Err(EplbError::InvalidFailedGpus(format!(
                    "GPU {g} does not exist: GPU ids are 0..{gpus}"
                )));
            }
            alive[g] = false;
        }
        if !alive.contains(&true) {
            return Err(EplbError::InvalidFailedGpus(format!(
                "all {gpus} GPUs failed: at least one must stay alive"
            )));
        }
        Ok(Self { alive })
    }

    /// Number of GPUs (live and dead).
    pub fn gpus(&self) -> usize {
        self.alive.len()
    }

    /// True when `gpu` is alive (GPUs beyond the mask are not).
    pub fn is_live(&self, gpu: usize) -> bool {
        self.alive.get(gpu).copied().unwrap_or(false)
    }

    /// Number of live GPUs.
    pub fn live_count(&self) -> usize {
        self.alive.iter().filter(|&&a| a).count()
    }

    /// The dead GPUs, in order.
    pub fn failed(&self) -> Vec<usize> {
        (0..self.alive.len()).filter(|&g| !self.alive[g]).collect()
    }

    /// True when every GPU is alive.
    pub fn all_live(&self) -> bool {
        self.alive.iter().all(|&a| a)
    }
}
