//! What the readers accept beyond the shape of a file: the caps of the resource model (see the
//! README's "Limits" section), each named in the error that enforces it.
//!
//! ```
//! use eplb::formats::limits::{MAX_FIRST_MODEL_LAYER, MAX_LOAD, MAX_TOPOLOGY_GPUS};
//! assert_eq!(MAX_FIRST_MODEL_LAYER, 100_000);
//! assert_eq!(MAX_TOPOLOGY_GPUS, 1 << 20);
//! assert_eq!(MAX_LOAD, f32::MAX as f64);
//! ```

/// The largest `first_model_layer` a load file may give: the placement formats keyed by model
/// layer write one row per model layer (SGLang's file lists the dense layers too), so the
/// index sizes the output. Real models have a few hundred layers at most.
pub const MAX_FIRST_MODEL_LAYER: u64 = 100_000;

/// The largest load a file may hold: the greedy engines compute in `f32`, as DeepSeek's
/// `eplb.py` does, so a finite load above `f32::MAX` would become infinite inside them.
pub const MAX_LOAD: f64 = f32::MAX as f64;

/// The most GPUs a topology file may describe (and the most slots of all of them): the tree
/// is built vertex by vertex, so a stated count sizes memory.
pub const MAX_TOPOLOGY_GPUS: usize = 1 << 20;
