//! The current placement as read from a file: which of its GPUs are dead (their slots empty,
//! `-1` in files), and whether that agrees with the GPUs that failed.

use super::failed::LiveGpus;
use crate::error::{EplbError, Result};
use crate::placement::Placement;
use crate::problem::Cluster;

/// A current placement with the GPUs that are dead in it: what
/// [`read_placement_with_empty`](crate::formats::read_placement_with_empty) reads from a file
/// that `place --failed-gpus` or `rebalance --out` wrote (dead GPUs' slots `-1`).
///
/// A GPU is either dead (all its slots empty) or alive (none empty); its empty slots hold
/// [`DEAD_SLOT_FILLER`](super::DEAD_SLOT_FILLER) in [`CurrentPlacement::placement`]. A GPU
/// dead in the current placement stays dead in a rebalance: it must be among the failed GPUs
/// ([`CurrentPlacement::check_failed`]).
///
/// ```
/// use eplb::live::{CurrentPlacement, LiveGpus};
/// use eplb::{Cluster, Placement};
/// // 3 GPUs of 2 slots; GPU 1 (slots 2 and 3) is dead.
/// let placement = Placement::from_phy2log(2, vec![vec![0, 1, 0, 0, 1, 0]])?;
/// let current = CurrentPlacement::new(&Cluster::new(6, 3), placement, &[2, 3])?;
/// assert_eq!(current.dead_gpus(), vec![1]);
/// assert!(current.check_failed(Some(&LiveGpus::with_failed(3, &[1, 2])?)).is_ok());
/// assert!(current.check_failed(Some(&LiveGpus::with_failed(3, &[2])?)).is_err());
/// assert!(current.check_failed(None).is_err());
/// // Half a GPU cannot be dead.
/// let half = Placement::from_phy2log(2, vec![vec![0, 1, 0, 0, 1, 0]])?;
/// assert!(CurrentPlacement::new(&Cluster::new(6, 3), half, &[2]).is_err());
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentPlacement {
    /// The placement (dead GPUs' slots hold the filler).
    pub placement: Placement,
    /// The GPUs alive in it.
    live: LiveGpus,
}

impl CurrentPlacement {
    /// `placement` on `cluster` whose `empty_slots` (physical slot ids) are empty.
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when an empty slot is not a slot of the cluster, when a
    /// GPU has some but not all of its slots empty, or when every GPU is dead.
    pub fn new(cluster: &Cluster, placement: Placement, empty_slots: &[usize]) -> Result<Self> {
        let s = cluster.slots_per_gpu();
        let mut empty = vec![0usize; cluster.gpus];
        for &slot in empty_slots {
            if slot >= cluster.replicas {
                return Err(EplbError::InvalidPlacement(format!(
                    "slot {slot} is -1 (empty), but the cluster has slots 0..{}",
                    cluster.replicas
                )));
            }
            empty[slot / s] += 1;
        }
        if let Some(g) = empty.iter().position(|&n| n > 0 && n < s) {
            return Err(EplbError::InvalidPlacement(format!(
                "GPU {g} has {} of its {s} slots ({}..{}) -1 (empty): a GPU is either dead (all its slots -1) or alive (none -1)",
                empty[g],
                g * s,
                (g + 1) * s
            )));
        }
        let dead: Vec<usize> = (0..cluster.gpus).filter(|&g| empty[g] > 0).collect();
        let live = LiveGpus::with_failed(cluster.gpus, &dead).map_err(|_| {
            EplbError::InvalidPlacement(format!(
                "every slot is -1 (empty): all {} GPUs are dead in the current placement",
                cluster.gpus
            ))
        })?;
        Ok(Self { placement, live })
    }

    /// The GPUs dead in the current placement, ascending.
    pub fn dead_gpus(&self) -> Vec<usize> {
        self.live.failed()
    }

    /// The GPUs alive in the current placement.
    pub fn live_gpus(&self) -> &LiveGpus {
        &self.live
    }

    /// Checks that every GPU dead in the current placement is among the failed GPUs of
    /// `failed` (`None`: no GPU failed): a dead GPU holds nothing to rebalance from, and
    /// nothing may be placed on it.
    ///
    /// # Errors
    /// [`EplbError::InvalidFailedGpus`] naming the dead GPUs missing from the list.
    pub fn check_failed(&self, failed: Option<&LiveGpus>) -> Result<()> {
        let missing: Vec<usize> = self
            .dead_gpus()
            .into_iter()
            .filter(|&g| failed.is_none_or(|f| f.is_live(g)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let listed = failed.map(LiveGpus::failed).unwrap_or_default();
        let mut needed = listed.clone();
        needed.extend(&missing);
        needed.sort_unstable();
        let needed: Vec<String> = needed.iter().map(ToString::to_string).collect();
        Err(EplbError::InvalidFailedGpus(format!(
            "GPU(s) {missing:?} are dead in the current placement (their slots are -1) but the failed GPUs are {listed:?}: a dead GPU stays dead, list it too (--failed-gpus {})",
            needed.join(",")
        )))
    }
}
