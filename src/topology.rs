//! The cluster as a tree: root → levels (racks, nodes, ...) → GPUs, in a `petgraph` graph.
//!
//! DeepSeek's cluster (`N` nodes of `P/N` GPUs) is the two-level case
//! ([`Topology::two_level`]); deeper trees (racks → nodes → GPUs) come from a JSON file
//! ([`Topology::from_json`]).
//!
//! # How a tree maps onto the evaluator
//! The [evaluator](mod@crate::evaluate) knows GPUs and nodes only. GPUs are numbered in
//! depth-first order of the tree (children in file order), so GPU `g` holds slots
//! `g*S .. (g+1)*S`; the **nodes** of the evaluator are the vertices whose children are
//! GPUs. Levels above the nodes (racks, pods) do not exist for the evaluator: they guide the
//! [hierarchical decomposition](crate::strategies::Hierarchical), which keeps whole expert
//! groups inside each subtree, and their loads are sums of their nodes' loads. Because the
//! evaluator's node of GPU `g` is `g / (P/N)`, every node must have the same number of GPUs,
//! and every GPU the same number of slots.
//!
//! # File format
//! A vertex is a GPU `{"slots": 9}`, a node with identical GPUs
//! `{"name": "node0", "gpus": 8, "slots_per_gpu": 9}`, or a level
//! `{"name": "rack0", "children": [...]}`; the file holds the root level.
//!
//! ```
//! use eplb::{topology::Topology, Cluster};
//! let json = r#"{"children": [
//!     {"name": "rack0", "children": [{"gpus": 4, "slots_per_gpu": 3}, {"gpus": 4, "slots_per_gpu": 3}]},
//!     {"name": "rack1", "children": [{"gpus": 4, "slots_per_gpu": 3}, {"gpus": 4, "slots_per_gpu": 3}]}
//! ]}"#;
//! let t = Topology::from_json_str(json).unwrap();
//! assert_eq!((t.num_gpus(), t.num_nodes(), t.num_slots(), t.depth()), (16, 4, 48, 3));
//! let cluster = Cluster::new(48, 16).with_nodes(4).with_groups(8);
//! t.check_cluster(&cluster).unwrap();
//! assert!(t.check_cluster(&Cluster::new(48, 16).with_nodes(2)).is_err());
//! ```

use std::path::Path;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Deserialize;
use thiserror::Error;

use crate::error::{EplbError, Result};
use crate::problem::Cluster;

/// A vertex of the topology tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyNode {
    /// The whole cluster.
    Root,
    /// An intermediate level (rack, node, ...).
    Level {
        /// A label from the file (or generated).
        name: String,
    },
    /// A GPU with its expert slots.
    Gpu {
        /// Expert slots on this GPU.
        slots: usize,
    },
}

/// Why a topology is invalid or does not fit a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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

/// The cluster tree. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Topology {
    graph: DiGraph<TopologyNode, ()>,
    root: NodeIndex,
    /// Children of each vertex in order.
    children: Vec<Vec<NodeIndex>>,
    /// Subtree summary of each vertex.
    subtrees: Vec<Subtree>,
    depth: usize,
}

/// One vertex of a topology file.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum SpecNode {
    Gpu {
        slots: usize,
    },
    Node {
        name: Option<String>,
        gpus: usize,
        slots_per_gpu: usize,
    },
    Level {
        name: Option<String>,
        children: Vec<SpecNode>,
    },
}

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
        let spec = SpecNode::Level {
            name: None,
            children: (0..cluster.nodes)
                .map(|n| SpecNode::Node {
                    name: Some(format!("node{n}")),
                    gpus: gpus_per_node,
                    slots_per_gpu: cluster.slots_per_gpu(),
                })
                .collect(),
        };
        Ok(Self::build(&spec)?)
    }

    /// Reads a topology file (see the [module docs](self) for the format).
    ///
    /// # Errors
    /// [`EplbError::Io`] when the file cannot be read, [`EplbError::Format`] when it is not a
    /// topology, [`EplbError::Topology`] when the tree is invalid.
    pub fn from_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| EplbError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            EplbError::Format { message, .. } => EplbError::Format {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses a topology from JSON text.
    ///
    /// # Errors
    /// As [`Topology::from_json`] (with `-` as the path of format errors).
    pub fn from_json_str(text: &str) -> Result<Self> {
        let spec: SpecNode = serde_json::from_str(text).map_err(|e| EplbError::Format {
            path: "-".into(),
            message: format!(
                "not a topology ({e}): each vertex must be {{\"slots\": S}} (a GPU), {{\"gpus\": n, \"slots_per_gpu\": S}} (a node) or {{\"children\": [...]}} (a level), each optionally with a \"name\""
            ),
        })?;
        Ok(Self::build(&spec)?)
    }

    fn build(spec: &SpecNode) -> std::result::Result<Self, TopologyError> {
        let mut graph = DiGraph::new();
        let root = graph.add_node(TopologyNode::Root);
        let mut children = vec![Vec::new()];
        add_children(&mut graph, &mut children, root, "root", spec)?;
        let mut topology = Self {
            graph,
            root,
            subtrees: Vec::new(),
            children,
            depth: 0,
        };
        topology.summarise()?;
        Ok(topology)
    }

    /// Computes subtree summaries and checks depths and node uniformity.
    fn summarise(&mut self) -> std::result::Result<(), TopologyError> {
        let count = self.graph.node_count();
        self.subtrees = vec![
            Subtree {
                first_gpu: 0,
                gpus: 0,
                slots: 0,
                nodes: 0,
            };
            count
        ];
        let mut next_gpu = 0;
        let mut gpu_depth = None;
        let mut node_shape: Option<(usize, usize)> = None;
        self.visit(self.root, 0, &mut next_gpu, &mut gpu_depth, &mut node_shape)?;
        self.depth = gpu_depth.unwrap_or(0);
        Ok(())
    }

    fn visit(
        &mut self,
        v: NodeIndex,
        depth: usize,
        next_gpu: &mut usize,
        gpu_depth: &mut Option<usize>,
        node_shape: &mut Option<(usize, usize)>,
    ) -> std::result::Result<(), TopologyError> {
        let first_gpu = *next_gpu;
        if let TopologyNode::Gpu { slots } = self.graph[v] {
            match *gpu_depth {
                Some(d) if d != depth => {
                    return Err(TopologyError::UnevenDepth {
                        first: d,
                        other: depth,
                    })
                }
                _ => *gpu_depth = Some(depth),
            }
            *next_gpu += 1;
            self.subtrees[v.index()] = Subtree {
                first_gpu,
                gpus: 1,
                slots,
                nodes: 0,
            };
            return Ok(());
        }
        let kids = self.children[v.index()].clone();
        let (mut gpus, mut slots, mut nodes) = (0, 0, 0);
        for &c in &kids {
            self.visit(c, depth + 1, next_gpu, gpu_depth, node_shape)?;
            let s = self.subtrees[c.index()];
            gpus += s.gpus;
            slots += s.slots;
            nodes += s.nodes;
        }
        if self.has_gpu_children(v) {
            nodes = 1;
            let shape = (kids.len(), self.subtrees[kids[0].index()].slots);
            let differs = kids
                .iter()
                .map(|c| self.subtrees[c.index()].slots)
                .find(|&s| s != shape.1);
            match (*node_shape, differs) {
                (_, Some(s)) => return Err(self.non_uniform(v, kids.len(), s, shape)),
                (Some(expected), None) if expected != shape => {
                    return Err(self.non_uniform(v, shape.0, shape.1, expected))
                }
                _ => *node_shape = Some(shape),
            }
        }
        self.subtrees[v.index()] = Subtree {
            first_gpu,
            gpus,
            slots,
            nodes,
        };
        Ok(())
    }

    fn non_uniform(
        &self,
        v: NodeIndex,
        gpus: usize,
        slots: usize,
        expected: (usize, usize),
    ) -> TopologyError {
        TopologyError::NonUniformNodes {
            name: self.label(v),
            gpus,
            slots,
            expected_gpus: expected.0,
            expected_slots: expected.1,
        }
    }

    /// A printable label of a vertex.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn label(&self, v: NodeIndex) -> String {
        match &self.graph[v] {
            TopologyNode::Root => "root".into(),
            TopologyNode::Level { name } => name.clone(),
            TopologyNode::Gpu { .. } => format!("gpu{}", self.subtrees[v.index()].first_gpu),
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
    /// let t = eplb::topology::Topology::from_json_str(
    ///     r#"{"children": [{"gpus": 8, "slots_per_gpu": 9}, {"gpus": 8, "slots_per_gpu": 9}]}"#,
    /// )?;
    /// assert_eq!(t.cluster(8), eplb::Cluster::new(144, 16).with_nodes(2).with_groups(8));
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    pub fn cluster(&self, groups: usize) -> Cluster {
        Cluster::new(self.num_slots(), self.num_gpus())
            .with_nodes(self.num_nodes())
            .with_groups(groups)
    }

    /// The underlying graph (edges point from parent to child).
    pub fn graph(&self) -> &DiGraph<TopologyNode, ()> {
        &self.graph
    }

    /// The root vertex.
    pub fn root(&self) -> NodeIndex {
        self.root
    }

    /// The children of `v`, in order.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn children(&self, v: NodeIndex) -> &[NodeIndex] {
        &self.children[v.index()]
    }

    /// What the subtree of `v` holds.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn subtree(&self, v: NodeIndex) -> Subtree {
        self.subtrees[v.index()]
    }

    /// True when the children of `v` are GPUs: `v` is a node for the evaluator.
    ///
    /// # Panics
    /// When `v` is not a vertex of this tree.
    pub fn has_gpu_children(&self, v: NodeIndex) -> bool {
        self.children(v)
            .first()
            .is_some_and(|&c| matches!(self.graph[c], TopologyNode::Gpu { .. }))
    }

    /// GPUs `P`.
    pub fn num_gpus(&self) -> usize {
        self.subtree(self.root).gpus
    }

    /// Slots `R`.
    pub fn num_slots(&self) -> usize {
        self.subtree(self.root).slots
    }

    /// Evaluator nodes `N` (vertices whose children are GPUs).
    pub fn num_nodes(&self) -> usize {
        self.subtree(self.root).nodes
    }

    /// Edges from the root to any GPU (2 for DeepSeek's nodes → GPUs).
    pub fn depth(&self) -> usize {
        self.depth
    }
}

fn add_vertex(
    graph: &mut DiGraph<TopologyNode, ()>,
    children: &mut Vec<Vec<NodeIndex>>,
    parent: NodeIndex,
    node: TopologyNode,
) -> NodeIndex {
    let v = graph.add_node(node);
    graph.add_edge(parent, v, ());
    children.push(Vec::new());
    children[parent.index()].push(v);
    v
}

/// Adds what `spec` describes under `parent`: a GPU, the GPUs of a node, or a level's children.
fn add_children(
    graph: &mut DiGraph<TopologyNode, ()>,
    children: &mut Vec<Vec<NodeIndex>>,
    parent: NodeIndex,
    parent_name: &str,
    spec: &SpecNode,
) -> std::result::Result<(), TopologyError> {
    match spec {
        SpecNode::Gpu { slots } => {
            if *slots == 0 {
                return Err(TopologyError::ZeroSlots {
                    parent: parent_name.to_string(),
                });
            }
            add_vertex(graph, children, parent, TopologyNode::Gpu { slots: *slots });
        }
        SpecNode::Node {
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
                add_children(
                    graph,
                    children,
                    parent,
                    parent_name,
                    &SpecNode::Gpu {
                        slots: *slots_per_gpu,
                    },
                )?;
            }
        }
        SpecNode::Level { children: kids, .. } => {
            if kids.is_empty() {
                return Err(TopologyError::EmptyLevel {
                    name: parent_name.to_string(),
                });
            }
            let gpu_kids = kids
                .iter()
                .filter(|k| matches!(k, SpecNode::Gpu { .. }))
                .count();
            if gpu_kids != 0 && gpu_kids != kids.len() {
                return Err(TopologyError::MixedChildren {
                    name: parent_name.to_string(),
                });
            }
            for (i, kid) in kids.iter().enumerate() {
                match kid {
                    SpecNode::Gpu { .. } => {
                        add_children(graph, children, parent, parent_name, kid)?
                    }
                    SpecNode::Node { name, .. } | SpecNode::Level { name, .. } => {
                        let label = name.clone().unwrap_or_else(|| format!("{parent_name}.{i}"));
                        let v = add_vertex(
                            graph,
                            children,
                            parent,
                            TopologyNode::Level {
                                name: label.clone(),
                            },
                        );
                        add_children(graph, children, v, &label, kid)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> TopologyError {
        match Topology::from_json_str(json) {
            Err(EplbError::Topology(e)) => e,
            other => panic!("expected a topology error, got {other:?}"),
        }
    }

    #[test]
    fn gpus_are_numbered_depth_first_and_nodes_are_gpu_parents() {
        let t = Topology::from_json_str(
            r#"{"children": [
                {"name": "r0", "children": [{"name": "a", "gpus": 2, "slots_per_gpu": 2}]},
                {"name": "r1", "children": [{"name": "b", "children": [{"slots": 2}, {"slots": 2}]},
                                             {"name": "c", "gpus": 2, "slots_per_gpu": 2}]}
            ]}"#,
        )
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
        assert_eq!(t.graph().node_count(), 1 + 2 + 3 + 6);
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
            err(r#"{"children": []}"#),
            TopologyError::EmptyLevel { .. }
        ));
        assert!(matches!(
            err(r#"{"children": [{"slots": 0}]}"#),
            TopologyError::ZeroSlots { .. }
        ));
        assert!(matches!(
            err(r#"{"children": [{"slots": 2}, {"gpus": 2, "slots_per_gpu": 2}]}"#),
            TopologyError::MixedChildren { .. }
        ));
        assert!(matches!(
            err(
                r#"{"children": [{"gpus": 2, "slots_per_gpu": 2}, {"children": [{"gpus": 2, "slots_per_gpu": 2}]}]}"#
            ),
            TopologyError::UnevenDepth { first: 2, other: 3 }
        ));
        assert!(matches!(
            err(
                r#"{"children": [{"gpus": 2, "slots_per_gpu": 2}, {"gpus": 3, "slots_per_gpu": 2}]}"#
            ),
            TopologyError::NonUniformNodes {
                gpus: 3,
                expected_gpus: 2,
                ..
            }
        ));
        assert!(matches!(
            err(r#"{"children": [{"children": [{"slots": 2}, {"slots": 3}]}]}"#),
            TopologyError::NonUniformNodes { .. }
        ));
        assert!(matches!(
            Topology::from_json_str(r#"{"racks": 3}"#),
            Err(EplbError::Format { .. })
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

    #[test]
    fn a_missing_file_is_an_io_error() {
        assert!(matches!(
            Topology::from_json(Path::new("/nonexistent/topology.json")),
            Err(EplbError::Io { .. })
        ));
    }
}
