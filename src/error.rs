//! The library's error type: every variant names what is wrong and what would be valid.

use std::path::PathBuf;

use thiserror::Error;

/// Why a load value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadLoad {
    /// Not a number.
    NaN,
    /// Positive or negative infinity.
    Infinite,
    /// Below zero.
    Negative,
}

impl BadLoad {
    /// What is wrong with `value` as a load, or `None` when it is a valid one (finite, `>= 0`).
    pub fn of(value: f64) -> Option<Self> {
        if value.is_nan() {
            Some(Self::NaN)
        } else if value.is_infinite() {
            Some(Self::Infinite)
        } else if value < 0.0 {
            Some(Self::Negative)
        } else {
            None
        }
    }
}

impl std::fmt::Display for BadLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadLoad::NaN => "NaN",
            BadLoad::Infinite => "infinite",
            BadLoad::Negative => "negative",
        })
    }
}

/// Everything that can go wrong in `eplb`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EplbError {
    /// The load matrix has no layers or no experts.
    #[error("the load matrix is empty: need at least one layer with at least one expert")]
    EmptyLoads,
    /// Layers of different lengths.
    #[error("the load matrix is ragged: layer {layer} has {found} experts but layer 0 has {expected}; every layer needs the same number of experts")]
    RaggedLoads {
        /// The first layer whose length differs.
        layer: usize,
        /// Its length.
        found: usize,
        /// The length of layer 0.
        expected: usize,
    },
    /// A load that is NaN, infinite or negative.
    #[error("load of layer {layer}, expert {expert} is {kind} ({value}): loads must be finite numbers >= 0")]
    InvalidLoad {
        /// Layer of the value.
        layer: usize,
        /// Expert of the value.
        expert: usize,
        /// The value.
        value: f64,
        /// What is wrong with it.
        kind: BadLoad,
    },
    /// A cluster count that is zero.
    #[error("{what} is 0: it must be at least 1")]
    ZeroCount {
        /// Which count (`replicas`, `gpus`, `nodes`, `groups`).
        what: &'static str,
    },
    /// Fewer physical slots than logical experts.
    #[error("{replicas} replicas cannot hold {experts} experts: need replicas >= experts")]
    TooFewReplicas {
        /// Physical slots.
        replicas: usize,
        /// Logical experts.
        experts: usize,
    },
    /// Slots do not split evenly over GPUs.
    #[error("{replicas} replicas do not divide evenly over {gpus} GPUs: replicas must be a multiple of gpus")]
    ReplicasNotDivisibleByGpus {
        /// Physical slots.
        replicas: usize,
        /// GPUs.
        gpus: usize,
    },
    /// GPUs do not split evenly over nodes (needed by the hierarchical policy).
    #[error("{gpus} GPUs do not divide evenly over {nodes} nodes: the hierarchical policy needs gpus to be a multiple of nodes (or use --policy global)")]
    GpusNotDivisibleByNodes {
        /// GPUs.
        gpus: usize,
        /// Nodes.
        nodes: usize,
    },
    /// Experts do not split into equal groups (needed by the hierarchical policy).
    #[error("{experts} experts do not form {groups} equal groups: the hierarchical policy needs experts to be a multiple of groups (or use --policy global)")]
    ExpertsNotDivisibleByGroups {
        /// Logical experts.
        experts: usize,
        /// Groups.
        groups: usize,
    },
    /// Groups do not split evenly over nodes (needed by the hierarchical policy).
    #[error("{groups} groups do not divide evenly over {nodes} nodes: the hierarchical policy needs groups to be a multiple of nodes (or use --policy global)")]
    GroupsNotDivisibleByNodes {
        /// Groups.
        groups: usize,
        /// Nodes.
        nodes: usize,
    },
    /// A placement whose arrays are malformed or disagree with each other.
    #[error("invalid placement: {0}")]
    InvalidPlacement(String),
    /// The placement's layer count differs from the problem's.
    #[error("the placement has {found} layers but the loads have {expected}: they must match")]
    LayerCountMismatch {
        /// Layers in the placement.
        found: usize,
        /// Layers in the loads.
        expected: usize,
    },
    /// No strategy of that name.
    #[error("unknown strategy `{name}`; available: {available}")]
    UnknownStrategy {
        /// What was asked for.
        name: String,
        /// Comma-separated list of valid names.
        available: String,
    },
    /// A list of strategies that names none (e.g. `--strategies ''`).
    #[error("the list of strategies `{list}` names none; available: {available}")]
    NoStrategies {
        /// The list as given.
        list: String,
        /// Comma-separated list of valid names.
        available: String,
    },
    /// A strategy failed on one layer; the strategy's own error is the [source].
    ///
    /// [source]: std::error::Error::source
    #[error("strategy `{strategy}` failed on layer {layer}: {source}")]
    StrategyFailed {
        /// The strategy's name.
        strategy: String,
        /// The layer.
        layer: usize,
        /// What went wrong.
        source: Box<EplbError>,
    },
    /// The runner could not start its worker threads.
    #[error("cannot start {threads} worker threads: {source}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// The thread pool's error.
        source: rayon::ThreadPoolBuildError,
    },
    /// An optimisation engine rejected its input.
    #[error(transparent)]
    Solver(#[from] eplb_solvers::SolverError),
    /// A topology tree that is invalid or does not fit the cluster.
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// A plug-in component (group splitter, sub-solver) returned something unusable.
    #[error("{component} returned an invalid answer: {message}")]
    InvalidPlugin {
        /// The component's name.
        component: String,
        /// What is wrong with its answer.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A picture could not be drawn or written.
    #[error("{path}: cannot draw the plot: {message}")]
    Plot {
        /// The picture file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A file's content could not be parsed; the parser's error is the source.
    #[error("{path}: {what}: {source}")]
    Parse {
        /// The file (or `-` for standard input).
        path: PathBuf,
        /// What the file was expected to be (and what would be valid).
        what: String,
        /// The parser's error (JSON, YAML, CSV, NumPy, I/O).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file's data broke a rule of the problem (a load that is not finite and `>= 0`, ragged
    /// or empty rows); the rule's error is the source.
    #[error("{path}: {source}")]
    InFile {
        /// The file (or `-` for standard input).
        path: PathBuf,
        /// The broken rule.
        source: Box<EplbError>,
    },
    /// No objective of that name.
    #[error("unknown objective `{name}`; valid: mean, sum-of-step-max, worst-step")]
    UnknownObjective {
        /// The name asked for.
        name: String,
    },
    /// Per-step loads that do not fit together or do not fit the problem (see
    /// [`crate::objective::StepLoads`]).
    #[error("per-step loads: {reason}")]
    InvalidStepLoads {
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// A per-step objective was asked of loads without a step axis.
    #[error("objective `{objective}` needs per-step loads ([steps][layers][experts]); these loads have no step axis (use --objective mean)")]
    ObjectiveNeedsSteps {
        /// The objective asked for.
        objective: crate::objective::Objective,
    },
    /// Distinct replicas were asked, but a GPU has more slots than the experts it may hold.
    #[error("distinct replicas cannot be met: a GPU has {slots_per_gpu} slots but only {experts} experts may go on it ({policy} policy); distinct replicas need slots per GPU <= that")]
    DistinctReplicasImpossible {
        /// `S = R / P`.
        slots_per_gpu: usize,
        /// Experts a GPU may hold: `E` (global) or `E / N` (hierarchical).
        experts: usize,
        /// The policy.
        policy: crate::problem::Policy,
    },
    /// A failed-GPU list that does not fit the cluster or leaves too little alive.
    #[error("invalid failed GPUs: {0}")]
    InvalidFailedGpus(String),
    /// A move budget that is not a count or size `>= 0`.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// A file's content is not in a format `eplb` understands.
    #[error("{path}: {message}")]
    Format {
        /// The file (or `-` for standard input).
        path: PathBuf,
        /// What is wrong and what would be valid.
        message: String,
    },
}

/// `Result` with [`EplbError`].
pub type Result<T, E = EplbError> = std::result::Result<T, E>;
