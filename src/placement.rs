//! Placements: which logical expert every physical slot holds, per layer.
//!
//! The primary data is `phy2log` (slot → expert) plus each slot's replica rank; DeepSeek's
//! `log2phy` (expert → slots, padded with `-1`) and `logcnt` (replicas per expert) are derived.
//! A placement is *data*, possibly made elsewhere and possibly wrong: the
//! [evaluator](mod@crate::evaluate) is what judges it.

use std::collections::HashMap;
use std::ops::Range;

use eplb_solvers::replicate::{LabelSlots, SlotCopies};

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
        let mut counter = ReplicaCounter::new(phy2log.len());
        let rank = phy2log.iter().map(|&e| counter.next_rank(e)).collect();
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
        // Each expert's ranks, in order, must be exactly 0..count: sort the (expert, rank)
        // pairs and walk them. Nothing is sized by an id (ids may come from user files).
        let mut pairs: Vec<(usize, usize)> =
            phy2log.iter().copied().zip(rank.iter().copied()).collect();
        pairs.sort_unstable();
        let mut start = 0;
        while start < pairs.len() {
            let e = pairs[start].0;
            let end = start + pairs[start..].partition_point(|&(x, _)| x == e);
            let count = end - start;
            if let Some(&(_, r)) = pairs[start..end]
                .iter()
                .enumerate()
                .find_map(|(k, pair)| (pair.1 != k).then_some(pair))
            {
                return Err(EplbError::InvalidPlacement(format!(
                    "expert {e} has {count} replicas but replica rank {r} is out of range or repeated; ranks must be 0..{count}"
                )));
            }
            start = end;
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

/// Counts the replicas of each expert id seen so far, without sizing anything by an id: ids
/// below the slot count (every valid placement's) are counted in a vector, any larger id (a
/// wrong placement read from a file, up to `usize::MAX`) in a map.
struct ReplicaCounter {
    dense: Vec<usize>,
    sparse: HashMap<usize, usize>,
}

impl ReplicaCounter {
    fn new(slots: usize) -> Self {
        Self {
            dense: vec![0; slots],
            sparse: HashMap::new(),
        }
    }

    /// The rank of the next replica of `expert` (0 for its first).
    fn next_rank(&mut self, expert: usize) -> usize {
        let count = match self.dense.get_mut(expert) {
            Some(c) => c,
            None => self.sparse.entry(expert).or_default(),
        };
        *count += 1;
        *count - 1
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

/// DeepSeek's three arrays in flat row-major `int64` buffers, the layout NumPy and torch hold
/// (what the Python package hands over without a further copy).
///
/// ```
/// use eplb::Placement;
/// let p = Placement::from_phy2log(3, vec![vec![0, 1, 0, 2]]).unwrap();
/// let flat = p.to_deepseek_flat().unwrap();
/// assert_eq!((flat.layers, flat.slots, flat.experts, flat.width), (1, 4, 3, 2));
/// assert_eq!(flat.log2phy, vec![0, 2, 1, -1, 3, -1]);
/// assert_eq!(flat.logcnt, vec![2, 1, 1]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepSeekFlat {
    /// Number of layers.
    pub layers: usize,
    /// Slots per layer.
    pub slots: usize,
    /// Logical experts.
    pub experts: usize,
    /// The padded width of `log2phy`: the largest replica count over all layers.
    pub width: usize,
    /// `[layers][slots]`: expert of each slot.
    pub phy2log: Vec<i64>,
    /// `[layers][experts][width]`: slot of each replica rank, `-1` padded.
    pub log2phy: Vec<i64>,
    /// `[layers][experts]`: replicas per expert.
    pub logcnt: Vec<i64>,
}

/// Which of DeepSeek's tables a solve builds ([`solve_tables`](crate::runner::solve_tables),
/// [`Placement::to_deepseek_tables`]).
///
/// A serving stack that derives `log2phy` and `logcnt` itself (vLLM's `rebalance_experts`
/// returns `phy2log` alone) asks for [`Tables::Phy2log`] and skips their cost.
///
/// ```
/// use eplb::{Placement, Tables};
/// let p = Placement::from_phy2log(3, vec![vec![0, 1, 0, 2]]).unwrap();
/// let only = p.to_deepseek_tables(Tables::Phy2log).unwrap();
/// assert_eq!(only.phy2log, vec![0, 1, 0, 2]);
/// assert!(only.log2phy.is_empty() && only.logcnt.is_empty());
/// assert_eq!(only.width, 0);
/// assert_eq!(only.phy2log, p.to_deepseek_tables(Tables::All).unwrap().phy2log);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tables {
    /// `phy2log`, `log2phy` and `logcnt`, what `eplb.py`'s `rebalance_experts` returns.
    #[default]
    All,
    /// `phy2log` only: [`DeepSeekFlat::log2phy`] and [`DeepSeekFlat::logcnt`] are left empty
    /// and [`DeepSeekFlat::width`] is 0.
    Phy2log,
}

/// DeepSeek's flat tables, built one layer at a time (for the runner's placements and for
/// strategies that solve layers in batches): `phy2log` and `logcnt` as each layer comes,
/// `log2phy` at the end, once its width (the largest replica count) is known, each layer's
/// rows written while they are in cache. With [`Tables::Phy2log`], `phy2log` alone.
///
/// (Writing `log2phy` as each layer comes, at the largest count so far, and laying out the
/// rows written so far again when a layer raises it, was measured slower: on DeepSeek-V3's
/// decode trace the largest count first appears in layer 44 of 58 under the 288-slot
/// hierarchical shape, and the late re-layout costs more than this pass.)
pub(crate) struct FlatTables {
    flat: DeepSeekFlat,
    tables: Tables,
    /// Every slot's replica rank, layer after layer.
    rank: Vec<u32>,
    /// Where each layer's slots start in `phy2log` and `rank` (layers of a [`Placement`]
    /// need not have the same slot count for [`Placement::to_deepseek`]), then the end.
    starts: Vec<usize>,
    /// Whether `logcnt` and `width` are still to be read from the ranks (layers appended by
    /// [`FlatTables::label_slots`]).
    counts_from_ranks: bool,
}

impl FlatTables {
    /// No layers yet, for `experts` experts and layers of `slots` slots, with room for
    /// `layers` layers, building `tables`.
    pub(crate) fn new(experts: usize, slots: usize, layers: usize, tables: Tables) -> Self {
        let all = tables == Tables::All;
        let layers_of_all = if all { layers } else { 0 };
        Self {
            flat: DeepSeekFlat {
                layers: 0,
                slots,
                experts,
                width: 0,
                phy2log: Vec::with_capacity(layers * slots),
                log2phy: Vec::new(),
                logcnt: Vec::with_capacity(layers_of_all * experts),
            },
            tables,
            rank: Vec::with_capacity(layers_of_all * slots),
            starts: vec![0],
            counts_from_ranks: false,
        }
    }

    /// Appends a layer: its `phy2log` and replica ranks (`0..count` for every expert, as
    /// [`LayerPlacement`] keeps them).
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when a slot holds an expert id `>= experts`.
    pub(crate) fn push_layer(&mut self, phy2log: &[usize], rank: &[usize]) -> Result<()> {
        let experts = self.flat.experts;
        let l = self.flat.layers;
        debug_assert_eq!(phy2log.len(), rank.len());
        if self.tables == Tables::Phy2log {
            if let Some(slot) = phy2log.iter().position(|&e| e >= experts) {
                return Err(EplbError::InvalidPlacement(format!(
                    "layer {l}, slot {slot} holds expert {}; ids must be < {experts}",
                    phy2log[slot]
                )));
            }
            self.flat.phy2log.extend(phy2log.iter().map(|&e| e as i64));
            self.flat.layers += 1;
            return Ok(());
        }
        self.flat.logcnt.resize((l + 1) * experts, 0);
        let counts = &mut self.flat.logcnt[l * experts..];
        for (slot, &e) in phy2log.iter().enumerate() {
            let Some(count) = counts.get_mut(e) else {
                // The caller drops the tables with the error.
                return Err(EplbError::InvalidPlacement(format!(
                    "layer {l}, slot {slot} holds expert {e}; ids must be < {experts}"
                )));
            };
            *count += 1;
            self.flat.width = self.flat.width.max(*count as usize);
        }
        // Ids and ranks are below the slot count, far below 2^31.
        self.flat.phy2log.extend(phy2log.iter().map(|&e| e as i64));
        self.rank.extend(rank.iter().map(|&r| r as u32));
        self.flat.layers += 1;
        self.starts.push(self.rank.len());
        Ok(())
    }

    /// Appends a layer solved by [`ReplicaPacker`](eplb_solvers::replicate::ReplicaPacker):
    /// the slots `slots` of `copies` (their owners are expert ids) and the items `items`,
    /// which hold every expert of the layer once (their counts are `logcnt`). Each slot's
    /// copy is read once; nothing is counted slot by slot. The owners are the caller's own
    /// expert ids, trusted (checked in debug builds).
    pub(crate) fn push_copies(
        &mut self,
        copies: &SlotCopies<'_>,
        slots: Range<usize>,
        items: Range<usize>,
    ) {
        let experts = self.flat.experts;
        debug_assert_eq!(items.len(), experts, "one item per expert");
        // The engine's owners are the caller's expert ids (every copy's owner is its item's
        // owner), trusted: an id out of range would panic on an index, never write out of
        // bounds.
        debug_assert!(copies.owner[items.clone()].iter().all(|&e| e < experts));
        if self.tables == Tables::Phy2log {
            self.flat.phy2log.extend(
                copies.copy[slots]
                    .iter()
                    .map(|&copy| copies.owner[copy as usize] as i64),
            );
            self.flat.layers += 1;
            return;
        }
        let row = self.flat.logcnt.len();
        self.flat.logcnt.resize(row + experts, 0);
        let logcnt = &mut self.flat.logcnt[row..];
        let mut width = self.flat.width;
        for (&e, &copies_of) in copies.owner[items.clone()]
            .iter()
            .zip(&copies.counts[items])
        {
            logcnt[e] = copies_of as i64;
            width = width.max(copies_of);
        }
        self.flat.width = width;
        debug_assert_eq!(
            logcnt.iter().sum::<i64>(),
            slots.len() as i64,
            "the items' counts cover the slots"
        );
        let slots = &copies.copy[slots];
        // Ids and ranks are below the slot count, far below 2^31.
        self.flat
            .phy2log
            .extend(slots.iter().map(|&copy| copies.owner[copy as usize] as i64));
        self.rank
            .extend(slots.iter().map(|&copy| copies.rank[copy as usize] as u32));
        let end = self.rank.len();
        self.flat.layers += 1;
        self.starts.push(end);
    }

    /// Counts `layers` more layers and returns where the caller appends their slots (layer
    /// after layer, every entry of `phy2log` an expert id below the expert count): `phy2log`
    /// and, for [`Tables::All`], every slot's replica rank (`0..count` for every expert;
    /// `logcnt` and the width are read from the ranks by [`FlatTables::finish`]). Not mixed
    /// with [`FlatTables::push_copies`] or [`FlatTables::push_layer`] in one table.
    pub(crate) fn label_slots(&mut self, layers: usize) -> LabelSlots<'_> {
        let slots = self.flat.slots;
        let end = self.flat.layers * slots;
        self.flat.layers += layers;
        if self.tables == Tables::Phy2log {
            return LabelSlots {
                labels: &mut self.flat.phy2log,
                ranks: None,
            };
        }
        self.counts_from_ranks = true;
        self.starts
            .extend((1..=layers).map(|layer| end + layer * slots));
        LabelSlots {
            labels: &mut self.flat.phy2log,
            ranks: Some(&mut self.rank),
        }
    }

    /// The tables of the layers pushed, `log2phy` padded with `-1` to the largest count
    /// (`width`, kept up to date as layers are pushed).
    pub(crate) fn finish(mut self) -> DeepSeekFlat {
        if self.tables == Tables::Phy2log {
            return self.flat;
        }
        debug_assert_eq!(
            self.starts.last(),
            Some(&self.flat.phy2log.len()),
            "every layer's slots"
        );
        debug_assert_eq!(self.rank.len(), self.flat.phy2log.len(), "a rank per slot");
        let flat = &mut self.flat;
        let experts = flat.experts;
        if self.counts_from_ranks {
            // Every expert's ranks are `0..count`: the count is its largest rank plus one.
            flat.width = self
                .rank
                .iter()
                .fold(0, |width, &r| width.max(r as usize + 1));
            flat.logcnt.clear();
            flat.logcnt.resize(flat.layers * experts, 0);
        }
        let width = flat.width;
        flat.log2phy.reserve_exact(flat.logcnt.len() * width);
        for (l, layer) in self.starts.windows(2).enumerate() {
            flat.log2phy.resize((l + 1) * experts * width, -1);
            let table = &mut flat.log2phy[l * experts * width..];
            let layer = layer[0]..layer[1];
            let slots = flat.phy2log[layer.clone()].iter().zip(&self.rank[layer]);
            if self.counts_from_ranks {
                let logcnt = &mut flat.logcnt[l * experts..(l + 1) * experts];
                for (slot, (&e, &r)) in slots.enumerate() {
                    table[e as usize * width + r as usize] = slot as i64;
                    let count = &mut logcnt[e as usize];
                    *count = (*count).max(i64::from(r) + 1);
                }
            } else {
                for (slot, (&e, &r)) in slots.enumerate() {
                    table[e as usize * width + r as usize] = slot as i64;
                }
            }
        }
        self.flat
    }
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
        let tables = self.replica_tables(0, Tables::All)?;
        let (experts, width) = (self.num_experts, tables.width);
        // Index ranges, not `chunks`: a layer may have no experts or a zero width.
        let log2phy = (0..self.layers.len())
            .map(|l| {
                (0..experts)
                    .map(|e| {
                        let start = (l * experts + e) * width;
                        tables.log2phy[start..start + width].to_vec()
                    })
                    .collect()
            })
            .collect();
        let logcnt = (0..self.layers.len())
            .map(|l| {
                tables.logcnt[l * experts..(l + 1) * experts]
                    .iter()
                    .map(|&c| c as usize)
                    .collect()
            })
            .collect();
        Ok(DeepSeekArrays {
            phy2log: self.layers.iter().map(|l| l.phy2log.clone()).collect(),
            log2phy,
            logcnt,
        })
    }

    /// DeepSeek's arrays as flat row-major `int64` buffers (see [`DeepSeekFlat`]).
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`] when a slot holds an expert id `>= num_experts` or the
    /// layers have different slot counts.
    pub fn to_deepseek_flat(&self) -> Result<DeepSeekFlat> {
        self.to_deepseek_tables(Tables::All)
    }

    /// [`Placement::to_deepseek_flat`], building `tables` only (with [`Tables::Phy2log`],
    /// `log2phy` and `logcnt` are empty).
    ///
    /// # Errors
    /// As [`Placement::to_deepseek_flat`], for either request.
    pub fn to_deepseek_tables(&self, tables: Tables) -> Result<DeepSeekFlat> {
        let slots = self.layers.first().map_or(0, |l| l.phy2log.len());
        if let Some(l) = self.layers.iter().position(|l| l.phy2log.len() != slots) {
            return Err(EplbError::InvalidPlacement(format!(
                "layer {l} has {} slots but layer 0 has {slots}; every layer needs the same",
                self.layers[l].phy2log.len()
            )));
        }
        self.replica_tables(slots, tables)
    }

    /// The flat `tables` of every layer (`slots` per layer, as recorded in them).
    fn replica_tables(&self, slots: usize, tables: Tables) -> Result<DeepSeekFlat> {
        let mut tables = FlatTables::new(self.num_experts, slots, self.layers.len(), tables);
        for layer in &self.layers {
            tables.push_layer(&layer.phy2log, &layer.rank)?;
        }
        Ok(tables.finish())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_follow_slot_order_for_any_id() {
        // Ids far beyond the slot count (a wrong file) are ranked without a buffer sized by them.
        let huge = usize::MAX;
        let p = LayerPlacement::from_phy2log(vec![1, huge, 1, 1_000_000_000_000, huge]);
        assert_eq!(p.replica_ranks(), &[0, 0, 1, 0, 1]);
    }

    #[test]
    fn explicit_ranks_are_checked_for_any_id() {
        let huge = usize::MAX;
        let ok = LayerPlacement::with_ranks(vec![huge, 2, huge], vec![1, 0, 0]).unwrap();
        assert_eq!(ok.replica_ranks(), &[1, 0, 0]);
        let repeated = LayerPlacement::with_ranks(vec![huge, 2, huge], vec![0, 0, 0]);
        let message = repeated.unwrap_err().to_string();
        assert!(
            message.contains(&format!("expert {huge} has 2 replicas")),
            "{message}"
        );
        let gap = LayerPlacement::with_ranks(vec![3, 3], vec![0, 2]);
        assert!(gap.unwrap_err().to_string().contains("rank 2"));
    }

    #[test]
    fn out_of_range_ids_are_refused_for_deepseek_arrays() {
        let p = Placement::from_phy2log(3, vec![vec![0, 1, usize::MAX]]).unwrap();
        let message = p.to_deepseek().unwrap_err().to_string();
        assert!(message.contains("ids must be < 3"), "{message}");
        for tables in [Tables::All, Tables::Phy2log] {
            let message = p.to_deepseek_tables(tables).unwrap_err().to_string();
            assert!(message.contains("ids must be < 3"), "{message}");
        }
    }

    /// The tables by definition: `logcnt` counts, `log2phy[e][r]` is the slot of replica `r`
    /// of `e`, `-1` padded to the largest count over all layers.
    fn reference(experts: usize, layers: &[LayerPlacement]) -> DeepSeekFlat {
        let counts: Vec<Vec<usize>> = layers.iter().map(|l| l.logcnt(experts)).collect();
        let width = counts.iter().flatten().copied().max().unwrap_or(0);
        let mut log2phy = vec![-1; layers.len() * experts * width];
        for (l, layer) in layers.iter().enumerate() {
            for (slot, (&e, &r)) in layer
                .phy2log()
                .iter()
                .zip(layer.replica_ranks())
                .enumerate()
            {
                log2phy[(l * experts + e) * width + r] = slot as i64;
            }
        }
        DeepSeekFlat {
            layers: layers.len(),
            slots: layers.first().map_or(0, |l| l.phy2log().len()),
            experts,
            width,
            phy2log: layers
                .iter()
                .flat_map(|l| l.phy2log().iter().map(|&e| e as i64))
                .collect(),
            log2phy,
            logcnt: counts.iter().flatten().map(|&c| c as i64).collect(),
        }
    }

    /// Random layers of `slots` slots over `experts` experts (every expert at least once),
    /// with replica ranks in a random order (not slot order): `(phy2log, rank)` per layer.
    fn arb_layers() -> impl Strategy<Value = (usize, Vec<LayerPlacement>)> {
        (1usize..7, 0usize..9, 1usize..9).prop_flat_map(|(experts, extra, layers)| {
            let slots = experts + extra;
            let layer = (
                proptest::collection::vec(0..experts, extra),
                Just((0..slots).collect::<Vec<usize>>()).prop_shuffle(),
                proptest::collection::vec(any::<u32>(), slots),
            )
                .prop_map(move |(extras, order, keys)| {
                    // Every expert once, then the extras, laid out in a random slot order.
                    let owners: Vec<usize> = (0..experts).chain(extras).collect();
                    let phy2log: Vec<usize> = order.iter().map(|&i| owners[i]).collect();
                    // Each expert's ranks 0..count, handed to its slots in the order of
                    // random keys.
                    let mut slots_by_key: Vec<usize> = (0..slots).collect();
                    slots_by_key.sort_by_key(|&s| (keys[s], s));
                    let mut next = vec![0; experts];
                    let mut rank = vec![0; slots];
                    for s in slots_by_key {
                        rank[s] = next[phy2log[s]];
                        next[phy2log[s]] += 1;
                    }
                    LayerPlacement::with_ranks(phy2log, rank).unwrap()
                });
            (Just(experts), proptest::collection::vec(layer, layers))
        })
    }

    proptest! {
        /// The one-pass tables (rows laid out again as the width grows) equal the tables by
        /// definition, from a placement's layers and from an engine's slot copies; the
        /// phy2log-only request gives the same `phy2log`, the other tables empty.
        #[test]
        fn one_pass_tables_equal_the_definition((experts, layers) in arb_layers()) {
            let expected = reference(experts, &layers);
            let placement = Placement::new(experts, layers.clone());
            let flat = placement.to_deepseek_flat().unwrap();
            prop_assert_eq!(&flat, &expected);
            let only = placement.to_deepseek_tables(Tables::Phy2log).unwrap();
            prop_assert_eq!(&only.phy2log, &expected.phy2log);
            prop_assert!(only.log2phy.is_empty() && only.logcnt.is_empty() && only.width == 0);
            prop_assert_eq!((only.layers, only.slots, only.experts), (flat.layers, flat.slots, flat.experts));
            let arrays = placement.to_deepseek().unwrap();
            prop_assert_eq!(Placement::from_deepseek(experts, &arrays).unwrap(), placement);

            // The same layers as an engine answers them: items (one per expert, in a
            // rotated order, labelled with their experts) are every layer's rank-0 copies,
            // numbered first; the other copies follow, layer after layer.
            let slots = expected.slots;
            let items = layers.len() * experts;
            let mut owner = vec![0; items];
            let mut rank = vec![0; items];
            let mut counts = vec![0; items];
            let mut copy = vec![0u32; layers.len() * slots];
            for (l, layer) in layers.iter().enumerate() {
                let item_of = |e: usize| l * experts + (e + l) % experts;
                for (slot, (&e, &r)) in layer.phy2log().iter().zip(layer.replica_ranks()).enumerate() {
                    let c = if r == 0 {
                        item_of(e)
                    } else {
                        owner.push(e);
                        rank.push(r);
                        owner.len() - 1
                    };
                    owner[item_of(e)] = e;
                    counts[item_of(e)] += 1;
                    copy[l * slots + slot] = c as u32;
                }
            }
            let copies = SlotCopies { copy: &copy, owner: &owner, rank: &rank, counts: &counts };
            for tables in [Tables::All, Tables::Phy2log] {
                let mut flat = FlatTables::new(experts, slots, layers.len(), tables);
                for l in 0..layers.len() {
                    flat.push_copies(&copies, l * slots..(l + 1) * slots, l * experts..(l + 1) * experts);
                }
                let flat = flat.finish();
                let want = if tables == Tables::All { &expected } else { &only };
                prop_assert_eq!(&flat, want);
            }
        }
    }
}
