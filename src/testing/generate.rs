//! Random problems and placements, as [`proptest`](mod@proptest) strategies.
//!
//! ```
//! use eplb::testing::generate::{arb_problem_with, sample, LoadProfile, ProblemShape};
//! let shape = ProblemShape::new(8, 4).loads(LoadProfile::HugeIntegers);
//! let problem = sample(&arb_problem_with(shape), 42);
//! assert!(problem.loads().layer(0).iter().all(|&w| (1e5..=1e9).contains(&w)));
//! ```

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::evaluate::Violation;
use crate::problem::{Cluster, LayerProblem, Loads, Policy, PolicyChoice, Problem};

/// How the loads of a generated problem are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadProfile {
    /// Integers `0..40`: zeros and ties are common (the conformance suite's default).
    SmallIntegers,
    /// Every load zero.
    Zero,
    /// Reals uniform in `[0, 1000)`.
    Uniform,
    /// A few hot experts: `1000 u^8` for uniform `u`, so most loads are tiny.
    Skewed,
    /// Integers from `1e5` to `1e9` (token counts of a long window).
    HugeIntegers,
    /// Magnitudes from `1e-6` to `1e10` in one layer.
    MixedMagnitudes,
    /// At most three distinct integer values.
    Ties,
    /// Any of the above, chosen per layer.
    Any,
}

/// The loads of one layer of `experts` experts, drawn by `profile`.
pub fn arb_loads(profile: LoadProfile, experts: usize) -> BoxedStrategy<Vec<f64>> {
    match profile {
        LoadProfile::SmallIntegers => vec((0u32..40).prop_map(f64::from), experts).boxed(),
        LoadProfile::Zero => Just(vec![0.0; experts]).boxed(),
        LoadProfile::Uniform => vec(0.0..1000.0f64, experts).boxed(),
        LoadProfile::Skewed => vec((0.0..1.0f64).prop_map(|u| 1000.0 * u.powi(8)), experts).boxed(),
        LoadProfile::HugeIntegers => {
            vec((100_000u64..=1_000_000_000).prop_map(|x| x as f64), experts).boxed()
        }
        LoadProfile::MixedMagnitudes => vec(
            (-6i32..=9, 1.0..10.0f64).prop_map(|(e, m)| m * 10f64.powi(e)),
            experts,
        )
        .boxed(),
        LoadProfile::Ties => vec(0u32..1000, 1..=3)
            .prop_flat_map(move |values| vec(select(values), experts))
            .prop_map(|row| row.into_iter().map(f64::from).collect())
            .boxed(),
        LoadProfile::Any => prop_oneof![
            arb_loads(LoadProfile::SmallIntegers, experts),
            arb_loads(LoadProfile::Zero, experts),
            arb_loads(LoadProfile::Uniform, experts),
            arb_loads(LoadProfile::Skewed, experts),
            arb_loads(LoadProfile::HugeIntegers, experts),
            arb_loads(LoadProfile::MixedMagnitudes, experts),
            arb_loads(LoadProfile::Ties, experts),
        ]
        .boxed(),
    }
}

/// The space [`arb_problem_with`] draws problems from: every dimension from 1 to its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProblemShape {
    /// Largest number of experts `E`.
    pub max_experts: usize,
    /// Largest number of GPUs `P`.
    pub max_gpus: usize,
    /// Largest number of slots per GPU.
    pub max_slots_per_gpu: usize,
    /// Largest number of layers.
    pub max_layers: usize,
    /// Largest number of nodes `N`.
    pub max_nodes: usize,
    /// Largest number of groups per node `G / N` (hierarchical policy).
    pub max_groups_per_node: usize,
    /// How loads are drawn.
    pub loads: LoadProfile,
}

impl ProblemShape {
    /// Up to `max_experts` experts on up to `max_gpus` GPUs, up to 3 slots per GPU and 3
    /// layers, up to 2 nodes and 2 groups per node, [`LoadProfile::SmallIntegers`].
    pub fn new(max_experts: usize, max_gpus: usize) -> Self {
        Self {
            max_experts,
            max_gpus,
            max_slots_per_gpu: 3,
            max_layers: 3,
            max_nodes: 2,
            max_groups_per_node: 2,
            loads: LoadProfile::SmallIntegers,
        }
    }

    /// The same shape with loads drawn by `profile`.
    #[must_use]
    pub fn loads(self, profile: LoadProfile) -> Self {
        Self {
            loads: profile,
            ..self
        }
    }

    /// The same shape with up to `max_nodes` nodes and `max_groups_per_node` groups per node.
    #[must_use]
    pub fn nodes(self, max_nodes: usize, max_groups_per_node: usize) -> Self {
        Self {
            max_nodes,
            max_groups_per_node,
            ..self
        }
    }
}

/// A random valid problem of [`ProblemShape::new`]`(max_experts, max_gpus)`: 1–3 layers,
/// integer loads `0..40` (with zeros and ties), both policies.
pub fn arb_problem(max_experts: usize, max_gpus: usize) -> BoxedStrategy<Problem> {
    arb_problem_with(ProblemShape::new(max_experts, max_gpus))
}

/// A random valid problem of `shape`: global or hierarchical policy (then `N | P`, `G | E`,
/// `G = N × groups per node`), `R >= E`.
pub fn arb_problem_with(shape: ProblemShape) -> BoxedStrategy<Problem> {
    (
        1..=shape.max_gpus,
        1..=shape.max_slots_per_gpu,
        1..=shape.max_experts,
        1..=shape.max_layers,
        any::<bool>(), // hierarchical?
        1..=shape.max_nodes,
        1..=shape.max_groups_per_node,
    )
        .prop_filter_map(
            "shape must fit",
            |(gpus, spg, experts, layers, hier, nodes, gpn)| {
                let replicas = gpus * spg;
                if replicas < experts {
                    return None;
                }
                let (nodes, groups) = if hier {
                    let groups = nodes * gpn;
                    if gpus % nodes != 0 || experts % groups != 0 {
                        return None;
                    }
                    (nodes, groups)
                } else {
                    (nodes, 1 + gpn) // arbitrary, ignored by the global policy
                };
                let policy = if hier {
                    PolicyChoice::Hierarchical
                } else {
                    PolicyChoice::Global
                };
                Some((
                    Cluster::new(replicas, gpus)
                        .with_nodes(nodes)
                        .with_groups(groups),
                    experts,
                    layers,
                    policy,
                ))
            },
        )
        .prop_flat_map(move |(cluster, experts, layers, policy)| {
            vec(arb_loads(shape.loads, experts), layers).prop_map(move |rows| {
                let loads = Loads::from_rows(&rows).expect("generated loads are valid");
                Problem::new(loads, cluster, policy).expect("generated shapes are valid")
            })
        })
        .boxed()
}

/// A random feasible `phy2log` for `layer` (its loads are not used): every expert at least
/// once, extra replicas anywhere, and under the hierarchical policy whole groups on each node.
pub fn arb_phy2log(layer: &LayerProblem<'_>) -> BoxedStrategy<Vec<usize>> {
    let experts = layer.num_experts();
    let cluster = *layer.cluster();
    if layer.policy() == Policy::Global {
        return vec(0..experts, cluster.replicas - experts)
            .prop_map(move |extra| (0..experts).chain(extra).collect::<Vec<_>>())
            .prop_shuffle()
            .boxed();
    }
    let group_size = layer.group_size();
    let groups_per_node = cluster.groups / cluster.nodes;
    let slots_per_node = cluster.replicas / cluster.nodes;
    Just((0..cluster.groups).collect::<Vec<_>>())
        .prop_shuffle()
        .prop_flat_map(move |order| {
            let nodes: Vec<BoxedStrategy<Vec<usize>>> = order
                .chunks(groups_per_node)
                .map(|groups| {
                    let members: Vec<usize> = groups
                        .iter()
                        .flat_map(|&g| g * group_size..(g + 1) * group_size)
                        .collect();
                    let extra = slots_per_node - members.len();
                    vec(select(members.clone()), extra)
                        .prop_map(move |x| members.iter().copied().chain(x).collect::<Vec<_>>())
                        .prop_shuffle()
                        .boxed()
                })
                .collect();
            nodes.prop_map(|parts| parts.concat())
        })
        .boxed()
}

/// The one constraint a [`BrokenPlacement`] is made to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Breakage {
    /// One to three slots too few or too many.
    WrongSlotCount,
    /// Every replica of one expert replaced by another expert.
    MissingExpert,
    /// One slot holds an id `>= E`, drawn up to `1e12` and `usize::MAX`.
    ExpertOutOfRange,
    /// Hierarchical policy: a group's expert copied onto a second node.
    GroupSplit,
}

impl Breakage {
    /// True when the evaluator's `violation` reports this breakage.
    pub fn is_reported_by(self, violation: &Violation) -> bool {
        matches!(
            (self, violation),
            (Breakage::WrongSlotCount, Violation::WrongSlotCount { .. })
                | (Breakage::MissingExpert, Violation::MissingExpert { .. })
                | (
                    Breakage::ExpertOutOfRange,
                    Violation::ExpertOutOfRange { .. }
                )
                | (
                    Breakage::GroupSplit,
                    Violation::GroupSplitAcrossNodes { .. }
                )
        )
    }
}

/// An infeasible `phy2log` and the constraint it was made to break (it may break others too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenPlacement {
    /// What was broken.
    pub breakage: Breakage,
    /// The slots.
    pub phy2log: Vec<usize>,
}

/// An expert id out of range for `experts` experts: just above, up to `1e12`, or near
/// `usize::MAX`.
pub fn arb_out_of_range_id(experts: usize) -> BoxedStrategy<usize> {
    prop_oneof![
        experts..experts + 8,
        (experts as u64..=1_000_000_000_000u64).prop_map(|id| id as usize),
        Just(usize::MAX),
        usize::MAX - 8..usize::MAX,
    ]
    .boxed()
}

/// A random infeasible `phy2log` for `layer`: a feasible one from [`arb_phy2log`] broken in
/// one of the ways of [`Breakage`] that the layer's shape allows.
pub fn arb_broken_phy2log(layer: &LayerProblem<'_>) -> BoxedStrategy<BrokenPlacement> {
    let experts = layer.num_experts();
    let cluster = *layer.cluster();
    let split = layer.policy() == Policy::Hierarchical && cluster.nodes >= 2;
    arb_phy2log(layer)
        .prop_flat_map(move |valid| {
            let broken = |breakage| move |phy2log| BrokenPlacement { breakage, phy2log };
            let mut ways: Vec<BoxedStrategy<BrokenPlacement>> = vec![
                (Just(valid.clone()), any::<bool>(), 1usize..=3, 0..experts)
                    .prop_map(|(mut v, grow, k, id)| {
                        if grow || v.len() <= k {
                            v.extend(std::iter::repeat_n(id, k));
                        } else {
                            v.truncate(v.len() - k);
                        }
                        v
                    })
                    .prop_map(broken(Breakage::WrongSlotCount))
                    .boxed(),
                (
                    Just(valid.clone()),
                    0..cluster.replicas,
                    arb_out_of_range_id(experts),
                )
                    .prop_map(|(mut v, slot, id)| {
                        v[slot] = id;
                        v
                    })
                    .prop_map(broken(Breakage::ExpertOutOfRange))
                    .boxed(),
            ];
            if experts >= 2 {
                ways.push(
                    (Just(valid.clone()), 0..experts, 1..experts)
                        .prop_map(move |(mut v, gone, offset)| {
                            let other = (gone + offset) % experts;
                            v.iter_mut()
                                .filter(|e| **e == gone)
                                .for_each(|e| *e = other);
                            v
                        })
                        .prop_map(broken(Breakage::MissingExpert))
                        .boxed(),
                );
            }
            if split {
                let per_node = cluster.replicas / cluster.nodes;
                ways.push(
                    (
                        Just(valid.clone()),
                        0..cluster.nodes,
                        1..cluster.nodes,
                        0..per_node,
                        0..per_node,
                    )
                        .prop_map(move |(mut v, from, offset, s, t)| {
                            let to = (from + offset) % cluster.nodes;
                            v[to * per_node + t] = v[from * per_node + s];
                            v
                        })
                        .prop_map(broken(Breakage::GroupSplit))
                        .boxed(),
                );
            }
            proptest::strategy::Union::new(ways)
        })
        .boxed()
}

/// One value of `strategy`, drawn deterministically from `seed`: the generators outside a
/// proptest (examples, benches, a command-line experiment).
///
/// # Panics
/// When `strategy` rejects every value it tries (a filter that never passes).
pub fn sample<S: Strategy>(strategy: &S, seed: u64) -> S::Value {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    strategy
        .new_tree(&mut runner)
        .expect("the strategy generates a value")
        .current()
}
