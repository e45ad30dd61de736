//! The cluster as a tree: root → levels (racks, nodes, ...) → GPUs, stored as an arena of
//! vertices addressed by [`TopologyNodeId`].
//!
//! DeepSeek's cluster (`N` nodes of `P/N` GPUs) is the two-level case
//! ([`Topology::two_level`]); deeper trees (racks → nodes → GPUs) are built from a
//! [`TopologySpec`] ([`Topology::from_spec`]) or read from a JSON file (`Topology::from_json`,
//! with the `formats` feature; the file format is described in `formats::topology`).
//!
//! # How a tree maps onto the evaluator
//! The [evaluator](mod@crate::evaluate) knows GPUs and nodes only. GPUs are numbered in
//! depth-first order of the tree (children in the given order), so GPU `g` holds slots
//! `g*S .. (g+1)*S`; the **nodes** of the evaluator are the vertices whose children are
//! GPUs. Levels above the nodes (racks, pods) do not exist for the evaluator: they guide the
//! [hierarchical decomposition](crate::strategies::Hierarchical), which keeps whole expert
//! groups inside each subtree, and their loads are sums of their nodes' loads. Because the
//! evaluator's node of GPU `g` is `g / (P/N)`, every node must have the same number of GPUs,
//! and every GPU the same number of slots.
//!
//! ```
//! use eplb::topology::{Topology, TopologySpec};
//! use eplb::Cluster;
//! let rack = |name: &str| TopologySpec::level(name, vec![TopologySpec::node(4, 3), TopologySpec::node(4, 3)]);
//! let t = Topology::from_spec(&TopologySpec::root(vec![rack("rack0"), rack("rack1")]))?;
//! assert_eq!((t.num_gpus(), t.num_nodes(), t.num_slots(), t.depth()), (16, 4, 48, 3));
//! let cluster = Cluster::new(48, 16).with_nodes(4).with_groups(8);
//! t.check_cluster(&cluster)?;
//! assert!(t.check_cluster(&Cluster::new(48, 16).with_nodes(2)).is_err());
//! # Ok::<(), eplb::EplbError>(())
//! ```

use thiserror::Error;

use crate::error::{EplbError, Result};
use crate::problem::Cluster;

/// A vertex of the topology tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopologyNode {
    /// The whole cluster.
    Root,
    /// An intermediate level (rack, node, ...).
    Level {
        /// A label from the description (or generated).
        name: String,
    },
    /// A GPU with its expert slots.
    Gpu {
        /// Expert slots on this GPU.
        slots: usize,
    },
}

/// The id of a vertex of one [`Topology`]: its position in the tree's arena (the root is 0,
/// then vertices in depth-first order). Ids of one tree mean nothing in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopologyNodeId(usize);

impl TopologyNodeId {
    /// The position of the vertex in the arena, `0 .. topology.num_vertices()`.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A description of a tree to build with [`Topology::from_spec`]: what a vertex holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopologySpec {
    /// One GPU.
    Gpu {
        /// Its expert slots.
        slots: usize,
    },
    /// A node of identical GPUs.
    Node {
        /// A label (`parent.i` when `None`).
        name: Option<String>,
        /// Its GPUs.
        gpus: usize,
        /// Expert slots of each GPU.
        slots_per_gpu: usize,
    },
    /// A level (rack, pod, the root) and what it holds.
    Level {
        /// A label (`parent.i` when `None`).
        name: Option<String>,
        /// Its children, in GPU order.
        children: Vec<TopologySpec>,
    },
}

impl TopologySpec {
    /// The root level holding `children`.
    pub fn root(children: Vec<TopologySpec>) -> Self {
        Self::Level {
            name: None,
            children,
        }
    }

    /// A named level holding `children`.
    pub fn level(name: impl Into<String>, children: Vec<TopologySpec>) -> Self {
        Self::Level {
            name: Some(name.into()),
            children,
        }
    }

    /// An unnamed node of `gpus` GPUs with `slots_per_gpu` slots each.
    pub fn node(gpus: usize, slots_per_gpu: usize) -> Self {
        Self::Node {
            name: None,
            gpus,
            slots_per_gpu,
        }
    }
}

/// Why a topology is invalid or does not fit a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// A level without children.
    #[error("level `{name}` has no children: every level needs at least one child")]
    EmptyLevel {
        /// The level's name.
        name: String,
    },
    /// A GPU with zero slots.
    #[error("a GPU under `{parent}` has 0 slots: every GPU needs at least one slot")]
    ZeroSlots {
        /// The GPU's parent.
        parent: String,
    },
    /// A level whose children are partly GPUs and partly levels.
    #[error(
        "level `{name}` mixes GPUs and levels as children: a level holds only GPUs or only levels"
    )]
    MixedChildren {
        /// The level's name.
        name: String,
    },
    /// GPUs at different depths.
    #[error("GPUs sit at depths {first} and {other}: every GPU must be at the same depth")]
    UnevenDepth {
        /// Depth of the first GPU.
        first: usize,
        /// A different depth.
        other: usize,
    },
    /// Nodes with different GPU counts or GPUs with different slot counts.
    #[error("node `{name}` has {gpus} GPUs of {slots} slots but the first node has {expected_gpus} GPUs of {expected_slots} slots: every node needs the same GPUs (GPU g must sit on node g / (P/N))")]
    NonUniformNodes {
        /// The node that differs.
        name: String,
        /// Its GPU count.
        gpus: usize,
        /// Slots of its first differing GPU.
        slots: usize,
        /// GPUs of the first node.
        expected_gpus: usize,
        /// Slots per GPU of the first node.
        expected_slots: usize,
    },
    /// The tree does not match the cluster's counts.
    #[error("the topology has {found} {what} but the cluster has {expected}: they must match")]
    ClusterMismatch {
        /// `GPUs`, `slots` or `nodes`.
        what: &'static str,
        /// The topology's count.
        found: usize,
        /// The cluster's count.
        expected: usize,
    },
}

/// What a vertex's subtree holds, in the evaluator's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subtree {
    /// The first GPU of the subtree (GPUs of a subtree are consecutive).
    pub first_gpu: usize,
    /// GPUs in the subtree.
    pub gpus: usize,
    /// Expert slots in the subtree.
    pub slots: usize,
    /// Evaluator nodes (vertices whose children are GPUs) in the subtree.
    pub nodes: usize,
}

/// One vertex in the arena.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vertex {
    node: TopologyNode,
    children: Vec<TopologyNodeId>,
    subtree: Subtree,
}

/// The cluster tree. See the [module docs](self). Two trees are equal when they have the same
/// vertices in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The vertices; the root first.
    vertices: Vec<Vertex>,
    depth: usize,
}

/// The first vertex's GPU count and slots per GPU, which every node must repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeShape {
    gpus: usize,
    slots_per_gpu: usize,
}

/// What a depth-first summary pass carries from vertex to vertex.
#[derive(Debug, Default)]
struct Summary {
    next_gpu: usize,
    gpu_depth: Option<usize>,
    node_shape: Option<NodeShape>,
}

const ROOT: TopologyNodeId = TopologyNodeId(0);

impl Topology {
    /// DeepSeek's two-level tree: `N` nodes of `P/N` GPUs with `R/P` slots each.
    ///
    /// ```
    /// let c = eplb::Cluster::new(16, 8).with_nodes(2);
    /// let t = eplb::topology::Topology::two_level(&c).unwrap();
    /// assert_eq!((t.num_nodes(), t.num_gpus(), t.num_slots(), t.depth()), (2, 8, 16, 2));
    /// ```
    ///
    /// # Errors
    /// [`EplbError::ZeroCount`], [`EplbError::GpusNotDivisibleByNodes`] or
    /// [`EplbError::ReplicasNotDivisibleByGpus`] when the cluster has no such tree.
    pub fn two_level(cluster: &Cluster) -> Result<Self> {
        for (what, value) in [
            ("replicas", cluster.replicas),
            ("gpus", cluster.gpus),
            ("nodes", cluster.nodes),
        ] {
            if value == 0 {
                return Err(EplbError::ZeroCount { what });
            }
        }
        let gpus_per_node = cluster
            .gpus_per_node()
            .ok_or(EplbError::GpusNotDivisibleByNodes {
                gpus: cluster.gpus,
                nodes: cluster.nodes,
            })?;
        if !cluster.replicas.is_multiple_of(cluster.gpus) {
            return Err(EplbError::ReplicasNotDivisibleByGpus {
                replicas: cluster.replicas,
                gpus: cluster.gpus,
            });
        }
        let spec = TopologySpec::root(
            (0..cluster.nodes)
                .map(|n| TopologySpec::Node {
                    name: Some(format!("node{n}")),
                    gpus: gpus_per_node,
                    slots_per_gpu: cluster.slots_per_gpu(),
                })
                .collect(),
        );
        Ok(Self::from_spec(&spec)?)
    }

    /// Builds the tree `spec` describes; `spec` is the root (a level's children become the
    /// root's children, a node's GPUs hang directly under the root).
    ///
    /// # Errors
    /// [`TopologyError`] when the tree is invalid: an empty level, a GPU without slots, a level
    /// mixing GPUs and levels, GPUs at different depths or nodes of different shapes.
    pub fn from_spec(spec: &TopologySpec) -> std::result::Result<Self, TopologyError> {
        let mut topology = Self {
            vertices: Vec::new(),
            depth: 0,
        };
        topology.push(None, TopologyNode::Root);
        topology.add_children(ROOT, "root", spec)?;
        let mut summary = Summary::default();
        topology.summarise(ROOT, 0, &mut summary)?;
        topology.depth = summary.gpu_depth.unwrap_or(0);
        Ok(topology)
    }

    /// Adds a vertex under `parent` (none for the root).
    fn push(&mut self, parent: Option<TopologyNodeId>, node: TopologyNode) -> TopologyNodeId {
        let v = TopologyNodeId(self.vertices.len());
        self.vertices.push(Vertex {
            node,
            children: Vec::new(),
            subtree: Subtree {
                first_gpu: 0,
                gpus: 0,
                slots: 0,
                nodes: 0,
            },
        });
        if let Some(p) = parent {
            self.vertices[p.0].children.push(v);
        }
        v
    }

    /// Adds what `spec` describes under `parent`: a GPU, the GPUs of a node, or a level's
    /// children.
    fn add_children(
        &mut self,
        parent: TopologyNodeId,
        parent_name: &str,
        spec: &TopologySpec,
    ) -> std::result::Result<(), TopologyError> {
        match spec {
            TopologySpec::Gpu { slots } => {
                if *slots == 0 {
                    return Err(TopologyError::ZeroSlots {
                        parent: parent_name.to_string(),
                    });
                }
                self.push(Some(parent), TopologyNode::Gpu { slots: *slots });
            }
            TopologySpec::Node {
                gpus,
                slots_per_gpu,
                ..
            } => {
                if *gpus == 0 {
                    return Err(TopologyError::EmptyLevel {
                        name: parent_name.to_string(),
                    });
                }
                for _ in 0..*gpus {
                    let gpu = TopologySpec::Gpu {
                        slots: *slots_per_gpu,
                    };
                    self.add_children(parent, parent_name, &gpu)?;
                }
            }
            TopologySpec::Level { children: kids, .. } => {
                if kids.is_empty() {
                    return Err(TopologyError::EmptyLevel {
                        name: parent_name.to_string(),
                    });
                }
                let gpu_kids = kids
                    .iter()
                    .filter(|k| matches!(k, TopologySpec::Gpu { .. }))
                    .count();
                if gpu_kids != 0 && gpu_kids != kids.len() {
                    return Err(TopologyError::MixedChildren {
                        name: parent_name.to_string(),
                    });
                }
                for (i, kid) in kids.iter().enumerate() {
                    match kid {
                        TopologySpec::Gpu { .. } => self.add_children(parent, parent_name, kid)?,
                        TopologySpec::Node { name, .. } | TopologySpec::Level { name, .. } => {
                            let label =
                                name.clone().unwrap_or_else(|| format!("{parent_name}.{i}"));
                            let v = self.push(
                                Some(parent),
                                TopologyNode::Level {
                                    name: label.clone(),
                                },
                            );
                            self.add_children(v, &label, kid)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Computes the subtree summary of `v` and below, checking depths and node uniformity.
    fn summarise(
        &mut self,
        v: TopologyNodeId,
        depth: usize,
        summary: &mut Summary,
    ) -> std::result::Result<(), TopologyError> {
        let first_gpu = summary.next_gpu;
        if let TopologyNode::Gpu { slots } = self.vertices[v.0].node {
            match summary.gpu_depth {
                Some(d) if d != depth => {
                    return Err(TopologyError::UnevenDepth {
                        first: d,
                        other: depth,
                    })
                }
                _ => summary.gpu_depth = Some(depth),
            }
            summary.next_gpu += 1;
            self.vertices[v.0].subtree = Subtree {
                first_gpu,
                gpus: 1,
                slots,
                nodes: 0,
            };
            return Ok(());
        }
        let kids = self.vertices[v.0].children.clone();
        let (mut gpus, mut slots, mut nodes) = (0, 0, 0);
        for &c in &kids {
            self.summarise(c, depth + 1, summary)?;
            let s = self.subtree(c);
            gpus += s.gpus;
            slots += s.slots;
            nodes += s.nodes;
        }
        if self.has_gpu_children(v) {
            nodes = 1;
            let shape = NodeShape {
                gpus: kids.len(),
                slots_per_gpu: self.subtree(kids[0]).slots,
            };
            let differs = kids
                .iter()
                .map(|&c| self.subtree(c).slots)
                .find(|&s| s != shape.slots_per_gpu);
            match (summary.node_shape, differs) {
                (_, Some(s)) => return Err(self.non_uniform(v, kids.len(), s, shape)),
                (Some(expected), None) if expected != shape => {
                    return Err(self.non_uniform(v, shape.gpus, shape.slots_per_gpu, expected))
                }
                _ => summary.node_shape = Some(shape),
            }
        }
        self.vertices[v.0].subtree = Subtree {
            first_gpu,
            gpus,
            slots,
            nodes,
        };
        Ok(())
    }

    fn non_uniform(
        &self,
        v: TopologyNodeId,
        gpus: usize,
        slots: usize,
        expected: NodeShape,
    ) -> TopologyError {
        TopologyError::NonUniformNodes {
            name: self.label(v),
            gpus,
            slots,
            expected_gpus: expected.gpus,
            expected_slots: expected.slots_per_gpu,
        }
    }

    /// A printable label of a vertex.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn label(&self, v: TopologyNodeId) -> String {
        match self.node(v) {
            TopologyNode::Root => "root".into(),
            TopologyNode::Level { name } => name.clone(),
            TopologyNode::Gpu { .. } => format!("gpu{}", self.subtree(v).first_gpu),
        }
    }

    /// Checks that the tree fits `cluster`: `P` GPUs, `R` slots and `N` nodes.
    ///
    /// # Errors
    /// [`TopologyError::ClusterMismatch`] naming the first count that differs.
    pub fn check_cluster(&self, cluster: &Cluster) -> std::result::Result<(), TopologyError> {
        for (what, found, expected) in [
            ("GPUs", self.num_gpus(), cluster.gpus),
            ("slots", self.num_slots(), cluster.replicas),
            ("nodes", self.num_nodes(), cluster.nodes),
        ] {
            if found != expected {
                return Err(TopologyError::ClusterMismatch {
                    what,
                    found,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// The cluster this tree describes, with `groups` expert groups: `R` = all slots,
    /// `P` = all GPUs, `N` = the GPU parents.
    ///
    /// ```
    /// use eplb::topology::{Topology, TopologySpec};
    /// let t = Topology::from_spec(&TopologySpec::root(vec![TopologySpec::node(8, 9); 2]))?;
    /// assert_eq!(t.cluster(8), eplb::Cluster::new(144, 16).with_nodes(2).with_groups(8));
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    pub fn cluster(&self, groups: usize) -> Cluster {
        Cluster::new(self.num_slots(), self.num_gpus())
            .with_nodes(self.num_nodes())
            .with_groups(groups)
    }

    /// The root vertex.
    pub fn root(&self) -> TopologyNodeId {
        ROOT
    }

    /// What vertex `v` is.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn node(&self, v: TopologyNodeId) -> &TopologyNode {
        &self.vertices[v.0].node
    }

    /// The children of `v`, in order.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn children(&self, v: TopologyNodeId) -> &[TopologyNodeId] {
        &self.vertices[v.0].children
    }

    /// What the subtree of `v` holds.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn subtree(&self, v: TopologyNodeId) -> Subtree {
        self.vertices[v.0].subtree
    }

    /// True when the children of `v` are GPUs: `v` is a node for the evaluator.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn has_gpu_children(&self, v: TopologyNodeId) -> bool {
        self.children(v)
            .first()
            .is_some_and(|&c| matches!(self.node(c), TopologyNode::Gpu { .. }))
    }

    /// Every vertex, the root first, then in depth-first order.
    pub fn vertices(&self) -> impl ExactSizeIterator<Item = TopologyNodeId> {
        (0..self.vertices.len()).map(TopologyNodeId)
    }

    /// Vertices in the tree: the root, the levels and the GPUs.
    pub fn num_vertices(&self) -> usize {
        self.vertices.len()
    }

    /// GPUs `P`.
    pub fn num_gpus(&self) -> usize {
        self.subtree(ROOT).gpus
    }

    /// Slots `R`.
    pub fn num_slots(&self) -> usize {
        self.subtree(ROOT).slots
    }

    /// Evaluator nodes `N` (vertices whose children are GPUs).
    pub fn num_nodes(&self) -> usize {
        self.subtree(ROOT).nodes
    }

    /// Edges from the root to any GPU (2 for DeepSeek's nodes → GPUs).
    pub fn depth(&self) -> usize {
        self.depth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(slots: usize) -> TopologySpec {
        TopologySpec::Gpu { slots }
    }

    fn named_node(name: &str, gpus: usize, slots_per_gpu: usize) -> TopologySpec {
        TopologySpec::Node {
            name: Some(name.into()),
            gpus,
            slots_per_gpu,
        }
    }

    fn err(spec: TopologySpec) -> TopologyError {
        Topology::from_spec(&spec).expect_err("an invalid tree")
    }

    #[test]
    fn gpus_are_numbered_depth_first_and_nodes_are_gpu_parents() {
        let t = Topology::from_spec(&TopologySpec::root(vec![
            TopologySpec::level("r0", vec![named_node("a", 2, 2)]),
            TopologySpec::level(
                "r1",
                vec![
                    TopologySpec::level("b", vec![gpu(2), gpu(2)]),
                    named_node("c", 2, 2),
                ],
            ),
        ]))
        .unwrap();
        assert_eq!(
            (t.num_gpus(), t.num_nodes(), t.num_slots(), t.depth()),
            (6, 3, 12, 3)
        );
        let racks = t.children(t.root());
        assert_eq!(t.label(racks[1]), "r1");
        let r1 = t.subtree(racks[1]);
        assert_eq!((r1.first_gpu, r1.gpus, r1.nodes, r1.slots), (2, 4, 2, 8));
        let b = t.children(racks[1])[0];
        assert!(t.has_gpu_children(b) && !t.has_gpu_children(racks[1]));
        assert_eq!(t.num_vertices(), 1 + 2 + 3 + 6);
        assert_eq!(t.vertices().len(), t.num_vertices());
        assert_eq!(t.node(t.root()), &TopologyNode::Root);
        assert_eq!(t.label(t.children(b)[1]), "gpu3");
    }

    #[test]
    fn two_level_matches_the_cluster() {
        let c = Cluster::new(24, 8).with_nodes(4);
        let t = Topology::two_level(&c).unwrap();
        t.check_cluster(&c).unwrap();
        assert_eq!(t.subtree(t.children(t.root())[3]).first_gpu, 6);
        assert!(Topology::two_level(&Cluster::new(24, 8).with_nodes(3)).is_err());
        assert!(Topology::two_level(&Cluster::new(20, 8)).is_err());
    }

    #[test]
    fn invalid_trees_are_typed_errors() {
        assert!(matches!(
            err(TopologySpec::root(vec![])),
            TopologyError::EmptyLevel { .. }
        ));
        assert!(matches!(
            err(TopologySpec::root(vec![gpu(0)])),
            TopologyError::ZeroSlots { .. }
        ));
        assert!(matches!(
            err(TopologySpec::root(vec![gpu(2), TopologySpec::node(2, 2)])),
            TopologyError::MixedChildren { .. }
        ));
        assert!(matches!(
            err(TopologySpec::root(vec![
                TopologySpec::node(2, 2),
                TopologySpec::root(vec![TopologySpec::node(2, 2)]),
            ])),
            TopologyError::UnevenDepth { first: 2, other: 3 }
        ));
        assert!(matches!(
            err(TopologySpec::root(vec![
                TopologySpec::node(2, 2),
                TopologySpec::node(3, 2)
            ])),
            TopologyError::NonUniformNodes {
                gpus: 3,
                expected_gpus: 2,
                ..
            }
        ));
        assert!(matches!(
            err(TopologySpec::root(vec![TopologySpec::root(vec![
                gpu(2),
                gpu(3)
            ])])),
            TopologyError::NonUniformNodes { .. }
        ));
    }

    #[test]
    fn cluster_mismatch_names_the_count() {
        let t = Topology::two_level(&Cluster::new(16, 8).with_nodes(2)).unwrap();
        assert_eq!(
            t.check_cluster(&Cluster::new(16, 4).with_nodes(2)),
            Err(TopologyError::ClusterMismatch {
                what: "GPUs",
                found: 8,
                expected: 4
            })
        );
    }
}
