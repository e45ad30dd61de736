//! Deterministic synthetic load matrices, for demos and benchmarks that must not depend on
//! data files.
//!
//! Loads are log-normal (as measured MoE expert loads roughly are), scaled to integer token
//! counts. The generator is a self-contained SplitMix64 so that the same seed gives the same
//! matrix on every platform and with every version of every dependency.

use crate::problem::Loads;

/// SplitMix64: tiny, fast, and fixed forever (unlike library RNGs whose streams may change
/// between releases).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn next_normal(&mut self) -> f64 {
        let (u, v) = (self.next_unit(), self.next_unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A `[layers][experts]` matrix of integer token counts drawn log-normally with shape `sigma`
/// (0.8 gives a max/mean skew around 5–7 for 256 experts, like DeepSeek-V3 traces), each layer
/// scaled to about `tokens_per_layer` in total.
///
/// ```
/// let a = eplb::synthetic::lognormal_loads(58, 256, 0.8, 1_000_000, 7);
/// assert_eq!((a.num_layers(), a.num_experts()), (58, 256));
/// assert_eq!(a, eplb::synthetic::lognormal_loads(58, 256, 0.8, 1_000_000, 7));
/// ```
///
/// # Panics
/// When `layers` or `experts` is zero.
pub fn lognormal_loads(
    layers: usize,
    experts: usize,
    sigma: f64,
    tokens_per_layer: u64,
    seed: u64,
) -> Loads {
    let mut rng = SplitMix64(seed);
    let mut data = Vec::with_capacity(layers * experts);
    for _ in 0..layers {
        let raw: Vec<f64> = (0..experts)
            .map(|_| (sigma * rng.next_normal()).exp())
            .collect();
        let total: f64 = raw.iter().sum();
        data.extend(
            raw.iter()
                .map(|x| (x / total * tokens_per_layer as f64).round()),
        );
    }
    Loads::from_flat(layers, experts, data).expect("finite non-negative by construction")
}

/// The example of DeepSeek's EPLB README: 2 layers × 12 experts (run it with 16 replicas,
/// 4 groups, 2 nodes, 8 GPUs).
pub fn readme_example() -> Loads {
    Loads::from_rows(&[
        vec![
            90.0, 132.0, 40.0, 61.0, 104.0, 165.0, 39.0, 4.0, 73.0, 56.0, 183.0, 86.0,
        ],
        vec![
            20.0, 107.0, 104.0, 64.0, 19.0, 197.0, 187.0, 157.0, 172.0, 86.0, 16.0, 27.0,
        ],
    ])
    .expect("valid constant")
}
