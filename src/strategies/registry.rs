//! The strategy registry: constructors by name, so a command line, [`compare`](crate::compare)
//! or a sweep builds every strategy from one parsed [`StrategySpec`], and downstream code adds
//! its own strategies next to the built-in ones.
//!
//! ```
//! use eplb::strategies::{Registry, StrategySpec};
//! use eplb::{LayerPlacement, LayerProblem, LayerSolution, PlacementStrategy, Result};
//!
//! /// Expert `s % E` in slot `s`.
//! struct RoundRobin;
//!
//! impl PlacementStrategy for RoundRobin {
//!     fn name(&self) -> &str { "round-robin" }
//!     fn description(&self) -> &str { "expert s % E in slot s" }
//!     fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
//!         let e = layer.num_experts();
//!         let phy2log = (0..layer.cluster().replicas).map(|s| s % e).collect();
//!         Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(phy2log)))
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.register("round-robin", "expert s % E in slot s", |_, _| Ok(Box::new(RoundRobin)));
//! let strategy = registry.build(&StrategySpec::new("round-robin"))?;
//! assert_eq!(strategy.name(), "round-robin");
//! // The built-in `hierarchical` takes any registered strategy inside each node.
//! let spec = StrategySpec::new("hierarchical").with_sub_strategy("round-robin");
//! assert_eq!(registry.build(&spec)?.name(), "hierarchical");
//! assert!(registry.build(&StrategySpec::new("nope")).is_err());
//! # Ok::<(), eplb::EplbError>(())
//! ```

use std::fmt;

use crate::error::{EplbError, Result};
use crate::strategy::PlacementStrategy;
use crate::topology::Topology;

use super::{BalancedSplit, Exact, Greedy, Hierarchical, Ilp, Refine};

/// How the `hierarchical` strategy is configured: the strategy inside each node and the
/// cluster tree.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HierarchicalSpec {
    /// The registered strategy that solves each node ([`HierarchicalSpec::DEFAULT_LEAF`]
    /// unless set).
    pub sub_strategy: String,
    /// The cluster tree; `None` means DeepSeek's two-level tree of each layer's cluster.
    pub topology: Option<Topology>,
}

impl HierarchicalSpec {
    /// The name of the strategy this configures.
    pub const STRATEGY: &'static str = "hierarchical";

    /// `sub_strategy` inside each node of DeepSeek's two-level tree.
    pub fn new(sub_strategy: impl Into<String>) -> Self {
        Self {
            sub_strategy: sub_strategy.into(),
            topology: None,
        }
    }

    /// The strategy `hierarchical` runs inside each node unless told otherwise.
    pub const DEFAULT_LEAF: &'static str = "greedy";

    /// True when this is the built-in configuration: [`Self::DEFAULT_LEAF`] inside each node of
    /// the two-level tree.
    pub fn is_default(&self) -> bool {
        self.topology.is_none() && self.sub_strategy == Self::DEFAULT_LEAF
    }
}

impl Default for HierarchicalSpec {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LEAF)
    }
}

/// Everything needed to build one strategy: its name and, for `hierarchical`, its
/// configuration (search limits are not part of a strategy: they are the runner's
/// [`SolveOptions`](crate::SolveOptions)). Parsed once (e.g. from the command line) and handed to
/// [`Registry::build`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StrategySpec {
    /// The registered name.
    pub name: String,
    /// The configuration of `hierarchical` (other strategies ignore it).
    pub hierarchical: HierarchicalSpec,
}

impl StrategySpec {
    /// The strategy called `name` with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            hierarchical: HierarchicalSpec::default(),
        }
    }

    /// With `hierarchical` as the configuration of `hierarchical`.
    #[must_use]
    pub fn with_hierarchical(self, hierarchical: HierarchicalSpec) -> Self {
        Self {
            hierarchical,
            ..self
        }
    }

    /// With `name` inside each node of `hierarchical`.
    #[must_use]
    pub fn with_sub_strategy(mut self, name: impl Into<String>) -> Self {
        self.hierarchical.sub_strategy = name.into();
        self
    }

    /// With `topology` as the cluster tree of `hierarchical`.
    #[must_use]
    pub fn with_topology(mut self, topology: Topology) -> Self {
        self.hierarchical.topology = Some(topology);
        self
    }
}

/// Builds a strategy from a spec; the registry is passed so a composition can build its parts
/// by name (as `hierarchical` builds its sub-strategy).
pub type Constructor =
    Box<dyn Fn(&StrategySpec, &Registry) -> Result<Box<dyn PlacementStrategy>> + Send + Sync>;

struct Entry {
    name: String,
    description: String,
    constructor: Constructor,
}

/// Strategy constructors by name. [`Registry::new`] holds the built-in strategies; downstream
/// code adds its own with [`Registry::register`]. See the [module docs](self).
pub struct Registry {
    entries: Vec<Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// The built-in strategies, in a stable order: `greedy`, `refine`, `refine-deep`,
    /// `hierarchical`, `exact`, `ilp`.
    ///
    /// `hierarchical` is the decomposition with the bound-minimising group split
    /// ([`BalancedSplit`]) over the spec's tree (DeepSeek's two-level tree by default) with the
    /// spec's sub-strategy (greedy by default), built by name from this registry, inside each
    /// node. `exact` and `ilp` read each layer's [budget](crate::LayerBudget): the deadline
    /// (default [`Exact::DEFAULT_TIME_LIMIT`], 10 s per layer), the gap (default: prove
    /// optimality) and, for `ilp`, the threads (`exact` searches each layer on one thread);
    /// see [`Ilp`] for its backends.
    pub fn new() -> Self {
        let mut registry = Self::empty();
        registry.builtin(|| Box::new(Greedy));
        registry.builtin(|| Box::new(Refine::default()));
        registry.builtin(|| Box::new(Refine::deep()));
        let sample = Hierarchical::two_level(BalancedSplit::default(), Greedy);
        registry.register(sample.name(), sample.description(), hierarchical);
        registry.builtin(|| Box::new(Exact::default()));
        registry.builtin(|| Box::new(Ilp::default()));
        registry
    }

    /// A registry without any strategy.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Registers `constructor` as the strategy called `name`, replacing a strategy of that
    /// name. The strategy it builds should report `name` as its [`PlacementStrategy::name`].
    pub fn register<F>(
        &mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        constructor: F,
    ) -> &mut Self
    where
        F: Fn(&StrategySpec, &Registry) -> Result<Box<dyn PlacementStrategy>>
            + Send
            + Sync
            + 'static,
    {
        let entry = Entry {
            name: name.into(),
            description: description.into(),
            constructor: Box::new(constructor),
        };
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
        self
    }

    /// Registers a built-in that needs no configuration; its name and description are the
    /// strategy's own.
    fn builtin(&mut self, make: fn() -> Box<dyn PlacementStrategy>) {
        let sample = make();
        let (name, description) = (sample.name().to_string(), sample.description().to_string());
        self.register(name, description, move |_, _| Ok(make()));
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// `(name, description)` of every registered strategy, in registration order.
    pub fn descriptions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), e.description.as_str()))
    }

    /// Builds the strategy `spec` names.
    ///
    /// # Errors
    /// [`EplbError::UnknownStrategy`] listing the registered names; the constructor's errors.
    pub fn build(&self, spec: &StrategySpec) -> Result<Box<dyn PlacementStrategy>> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == spec.name)
            .ok_or_else(|| EplbError::UnknownStrategy {
                name: spec.name.clone(),
                available: self.names().collect::<Vec<_>>().join(", "),
            })?;
        (entry.constructor)(spec, self)
    }

    /// Builds every registered strategy with its default configuration, in registration
    /// order.
    ///
    /// # Errors
    /// As [`Registry::build`].
    pub fn build_all(&self) -> Result<Vec<Box<dyn PlacementStrategy>>> {
        self.names()
            .map(|name| self.build(&StrategySpec::new(name)))
            .collect()
    }
}

/// The constructor of `hierarchical`: the bound-minimising group split over the spec's tree,
/// with the registered sub-strategy inside each node.
fn hierarchical(spec: &StrategySpec, registry: &Registry) -> Result<Box<dyn PlacementStrategy>> {
    let config = &spec.hierarchical;
    let leaf = registry.build(&StrategySpec::new(config.sub_strategy.as_str()))?;
    Ok(match &config.topology {
        Some(topology) => Box::new(Hierarchical::with_topology(
            topology.clone(),
            BalancedSplit::default(),
            leaf,
        )),
        None => Box::new(Hierarchical::two_level(BalancedSplit::default(), leaf)),
    })
}
