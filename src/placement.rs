//! Placements: which logical expert every physical slot holds, per layer.
//!
//! The primary data is `phy2log` (slot → expert) plus each slot's replica rank; DeepSeek's
//! `log2phy` (expert → slots, padded with `-1`) and `logcnt` (replicas per expert) are derived.
//! A placement is *data*, possibly made elsewhere and possibly wrong: the
//! [evaluator](mod@crate::evaluate) is what judges it.

use serde::{Deserialize, Serialize};

use crate::error::{EplbError, Result};

/// One layer's placement: `phy2log[slot]` and the replica rank of every slot.
///
/// Invariant (checked at construction): for every expert id present, the ranks of its slots
/// are exactly `0..count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlacement {
    phy2log: Vec<usize>,
    rank: Vec<usize>,
}

impl LayerPlacement {
    /// A layer placement whose replica ranks follow slot order (the first slot of an expert is
    /// replica 0, the next replica 1, ...).
    ///
    /// Ids are not trusted to size a buffer: any id, up to `usize::MAX`, is accepted (the
    /// evaluator reports the ones out of range).
    pub fn from_phy2log(phy2log: Vec<usize>) -> Self {
        let ids = phy2log.iter().max().map_or(0, |&m| m.saturating_add(1));
        let rank = if ids <= phy2log.len() {
            // Every valid placement (ids below `E <= R`): one counter per id.
            let mut seen = vec![0usize; ids];
            phy2log
                .iter()
                .map(|&e| {
                    seen[e] += 1;
                    seen[e] - 1
                })
                .collect()
        } else {
            // Large ids: count through the slots sorted by id (stable, so in slot order).
            let mut order: Vec<usize> = (0..phy2log.len()).collect();
            order.sort_by_key(|&slot| phy2log[slot]);
            let mut rank = vec![0; phy2log.len()];
            for w in order.windows(2) {
                if phy2log[w[0]] == phy2log[w[1]] {
                    rank[w[1]] = rank[w[0]] + 1;
                }
            }
            rank
        };
        Self { phy2log, rank }
    }

    /// A layer placement with explicit replica ranks (`rank[slot]`).
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when lengths differ or the ranks of an expert's slots
    /// are not exactly `0..count`.
    pub fn with_ranks(phy2log: Vec<usize>, rank: Vec<usize>) -> Result<Self> {
        if phy2log.len() != rank.len() {
            return Err(EplbError::InvalidPlacement(format!(
                "{} slots but {} replica ranks",
                phy2log.len(),
                rank.len()
            )));
        }
        // Slots of expert e own the range offset[e] .. offset[e] + count[e] of `seen`; each rank
        // must land once inside its expert's range.
        let ids = phy2log.iter().max().map_or(0, |&m| m + 1);
        let mut offset = vec![0usize; ids + 1];
        for &e in &phy2log {
            offset[e + 1] += 1;
        }
        for e in 0..ids {
            offset[e + 1] += offset[e];
        }
        let mut seen = vec![false; phy2log.len()];
        for (&e, &r) in phy2log.iter().zip(&rank) {
            let count = offset[e + 1] - offset[e];
            if r >= count || std::mem::replace(&mut seen[offset[e] + r], true) {
                return Err(EplbError::InvalidPlacement(format!(
                    "expert {e} has {count} replicas but replica rank {r} is out of range or repeated; ranks must be 0..{count}"
                )));
            }
        }
        Ok(Self { phy2log, rank })
    }

    /// A layer placement from parts a strategy built correct by construction; checked in debug
    /// builds only.
    pub(crate) fn from_trusted_parts(phy2log: Vec<usize>, rank: Vec<usize>) -> Self {
        debug_assert!(Self::with_ranks(phy2log.clone(), rank.clone()).is_ok());
        Self { phy2log, rank }
    }

    /// `phy2log[slot]`: the logical expert in each slot.
    pub fn phy2log(&self) -> &[usize] {
        &self.phy2log
    }

    /// `rank[slot]`: which replica of its expert each slot holds.
    pub fn replica_ranks(&self) -> &[usize] {
        &self.rank
    }

    /// Replicas per expert for experts `0..num_experts` (ids out of range are ignored).
    pub fn logcnt(&self, num_experts: usize) -> Vec<usize> {
        let mut cnt = vec![0; num_experts];
        for &e in &self.phy2log {
            if e < num_experts {
                cnt[e] += 1;
            }
        }
        cnt
    }
}

/// A multi-layer placement for `num_experts` logical experts.
///
/// ```
/// use eplb::Placement;
/// // 1 layer, 3 experts, 4 slots: expert 0 twice.
/// let p = Placement::from_phy2log(3, vec![vec![0, 1, 0, 2]]).unwrap();
/// let arrays = p.to_deepseek().unwrap();
/// assert_eq!(arrays.logcnt, vec![vec![2, 1, 1]]);
/// assert_eq!(arrays.log2phy, vec![vec![vec![0, 2], vec![1, -1], vec![3, -1]]]);
/// assert_eq!(Placement::from_deepseek(3, &arrays).unwrap(), p);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    num_experts: usize,
    layers: Vec<LayerPlacement>,
}

/// DeepSeek's three arrays, as `eplb.py` returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeepSeekArrays {
    /// `[layers][slots]`: expert of each slot.
    pub phy2log: Vec<Vec<usize>>,
    /// `[layers][experts][max_count]`: slot of each replica rank, `-1` padded to the largest
    /// replica count over all layers.
    pub log2phy: Vec<Vec<Vec<i64>>>,
    /// `[layers][experts]`: replicas per expert.
    pub logcnt: Vec<Vec<usize>>,
}

impl Placement {
    /// A placement from per-layer [`LayerPlacement`]s.
    pub fn new(num_experts: usize, layers: Vec<LayerPlacement>) -> Self {
        Self {
            num_experts,
            layers,
        }
    }

    /// A placement from `phy2log` rows alone; replica ranks follow slot order.
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when there are no layers.
    pub fn from_phy2log(num_experts: usize, phy2log: Vec<Vec<usize>>) -> Result<Self> {
        if phy2log.is_empty() {
            return Err(EplbError::InvalidPlacement(
                "phy2log has no layers: need one row per layer".into(),
            ));
        }
        Ok(Self::new(
            num_experts,
            phy2log
                .into_iter()
                .map(LayerPlacement::from_phy2log)
                .collect(),
        ))
    }

    /// Reads DeepSeek's arrays back, checking that they agree: every `log2phy` entry is a slot
    /// holding that expert, each slot appears exactly once, padding is `-1` at the end only,
    /// and `logcnt` counts the replicas.
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] naming the first disagreement.
    pub fn from_deepseek(num_experts: usize, arrays: &DeepSeekArrays) -> Result<Self> {
        let layers = arrays.phy2log.len();
        if layers == 0 {
            return Err(EplbError::InvalidPlacement(
                "phy2log has no layers: need one row per layer".into(),
            ));
        }
        if arrays.log2phy.len() != layers || arrays.logcnt.len() != layers {
            return Err(EplbError::InvalidPlacement(format!(
                "phy2log has {layers} layers, log2phy {}, logcnt {}: they must match",
                arrays.log2phy.len(),
                arrays.logcnt.len()
            )));
        }
        let mut out = Vec::with_capacity(layers);
        for l in 0..layers {
            let phy2log = &arrays.phy2log[l];
            let log2phy = &arrays.log2phy[l];
            let logcnt = &arrays.logcnt[l];
            let bad = |msg: String| Err(EplbError::InvalidPlacement(format!("layer {l}: {msg}")));
            if log2phy.len() != num_experts || logcnt.len() != num_experts {
                return bad(format!(
                    "log2phy has {} experts and logcnt {}, expected {num_experts}",
                    log2phy.len(),
                    logcnt.len()
                ));
            }
            let mut rank = vec![usize::MAX; phy2log.len()];
            for e in 0..num_experts {
                let row = &log2phy[e];
                let used = row.iter().take_while(|&&s| s >= 0).count();
                if row[used..].iter().any(|&s| s != -1) {
                    return bad(format!(
                        "log2phy[{e}] = {row:?}: entries must be slots followed by -1 padding"
                    ));
                }
                if used != logcnt[e] {
                    return bad(format!(
                        "logcnt[{e}] = {} but log2phy[{e}] lists {used} slots",
                        logcnt[e]
                    ));
                }
                for (r, &slot) in row[..used].iter().enumerate() {
                    let slot = slot as usize;
                    if slot >= phy2log.len() || phy2log[slot] != e {
                        return bad(format!(
                            "log2phy[{e}][{r}] = {slot}, but that slot holds {}",
                            phy2log
                                .get(slot)
                                .map_or("nothing (out of range)".to_string(), |x| format!(
                                    "expert {x}"
                                ))
                        ));
                    }
                    if rank[slot] != usize::MAX {
                        return bad(format!("slot {slot} is listed twice in log2phy"));
                    }
                    rank[slot] = r;
                }
            }
            if let Some(slot) = rank.iter().position(|&r| r == usize::MAX) {
                return bad(format!(
                    "slot {slot} (expert {}) is missing from log2phy",
                    phy2log[slot]
                ));
            }
            out.push(LayerPlacement::with_ranks(phy2log.clone(), rank)?);
        }
        Ok(Self::new(num_experts, out))
    }

    /// DeepSeek's arrays: `phy2log`, `log2phy` padded with `-1` to the largest replica count
    /// over all layers, and `logcnt`.
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when a slot holds an expert id `>= num_experts`.
    pub fn to_deepseek(&self) -> Result<DeepSeekArrays> {
        let e_count = self.num_experts;
        let mut logcnt = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            if let Some(slot) = layer.phy2log.iter().position(|&e| e >= e_count) {
                return Err(EplbError::InvalidPlacement(format!(
                    "layer {l}, slot {slot} holds expert {}; ids must be < {e_count}",
                    layer.phy2log[slot]
                )));
            }
            logcnt.push(layer.logcnt(e_count));
        }
        let width = logcnt.iter().flatten().copied().max().unwrap_or(0);
        let log2phy = self
            .layers
            .iter()
            .map(|layer| {
                let mut table = vec![vec![-1i64; width]; e_count];
                for (slot, (&e, &r)) in layer.phy2log.iter().zip(&layer.rank).enumerate() {
                    table[e][r] = slot as i64;
                }
                table
            })
            .collect();
        Ok(DeepSeekArrays {
            phy2log: self.layers.iter().map(|l| l.phy2log.clone()).collect(),
            log2phy,
            logcnt,
        })
    }

    /// Number of logical experts.
    pub fn num_experts(&self) -> usize {
        self.num_experts
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The layers.
    pub fn layers(&self) -> &[LayerPlacement] {
        &self.layers
    }

    /// One layer.
    ///
    /// # Panics
    /// When `layer >= num_layers()`.
    pub fn layer(&self, layer: usize) -> &LayerPlacement {
        &self.layers[layer]
    }
}
