//! Topology files: the cluster tree as JSON.
//!
//! A vertex is a GPU `{"slots": 9}`, a node with identical GPUs
//! `{"name": "node0", "gpus": 8, "slots_per_gpu": 9}`, or a level
//! `{"name": "rack0", "children": [...]}`; the file holds the root level. A vertex reads into a
//! [`TopologySpec`]; the tree's rules (uniform nodes, GPUs at one depth) are the
//! [`Topology`]'s own.
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

use serde::Deserialize;

use super::limits::MAX_TOPOLOGY_GPUS;
use crate::error::{EplbError, Result};
use crate::topology::{Topology, TopologySpec};

/// One vertex of a topology file: the file's own schema, read into a [`TopologySpec`]. (Its
/// name is in serde's messages, which the command line prints.)
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

impl SpecNode {
    /// The GPUs and slots below this vertex (`None` when a count overflows).
    fn size(&self) -> Option<(usize, usize)> {
        match self {
            SpecNode::Gpu { slots } => Some((1, *slots)),
            SpecNode::Node {
                gpus,
                slots_per_gpu,
                ..
            } => Some((*gpus, gpus.checked_mul(*slots_per_gpu)?)),
            SpecNode::Level { children, .. } => {
                children.iter().try_fold((0usize, 0usize), |(g, s), c| {
                    let (cg, cs) = c.size()?;
                    Some((g.checked_add(cg)?, s.checked_add(cs)?))
                })
            }
        }
    }
}

impl From<SpecNode> for TopologySpec {
    fn from(vertex: SpecNode) -> Self {
        match vertex {
            SpecNode::Gpu { slots } => TopologySpec::Gpu { slots },
            SpecNode::Node {
                name,
                gpus,
                slots_per_gpu,
            } => TopologySpec::Node {
                name,
                gpus,
                slots_per_gpu,
            },
            SpecNode::Level { name, children } => TopologySpec::Level {
                name,
                children: children.into_iter().map(Into::into).collect(),
            },
        }
    }
}

impl Topology {
    /// Reads a topology file (see [the format](self)).
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
        let root: SpecNode = serde_json::from_str(text).map_err(|e| EplbError::Format {
            path: "-".into(),
            message: format!(
                "not a topology ({e}): each vertex must be {{\"slots\": S}} (a GPU), {{\"gpus\": n, \"slots_per_gpu\": S}} (a node) or {{\"children\": [...]}} (a level), each optionally with a \"name\""
            ),
        })?;
        if root
            .size()
            .is_none_or(|(gpus, slots)| gpus.max(slots) > MAX_TOPOLOGY_GPUS)
        {
            return Err(EplbError::Format {
                path: "-".into(),
                message: format!(
                    "the topology describes more than {MAX_TOPOLOGY_GPUS} GPUs or slots (the cap on topology files)"
                ),
            });
        }
        Ok(Topology::from_spec(&root.into())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(slots: usize) -> TopologySpec {
        TopologySpec::Gpu { slots }
    }

    /// Each file reads as the tree (or the tree error) of the spec it spells: the tree's own
    /// rules are tested in `topology`.
    #[test]
    fn files_read_as_the_trees_they_spell() {
        let node = TopologySpec::node;
        let cases = [
            (
                r#"{"children": [
                    {"name": "r0", "children": [{"name": "a", "gpus": 2, "slots_per_gpu": 2}]},
                    {"name": "r1", "children": [{"name": "b", "children": [{"slots": 2}, {"slots": 2}]},
                                                 {"gpus": 2, "slots_per_gpu": 2}]}
                ]}"#,
                TopologySpec::root(vec![
                    TopologySpec::level(
                        "r0",
                        vec![TopologySpec::Node {
                            name: Some("a".into()),
                            gpus: 2,
                            slots_per_gpu: 2,
                        }],
                    ),
                    TopologySpec::level(
                        "r1",
                        vec![TopologySpec::level("b", vec![gpu(2), gpu(2)]), node(2, 2)],
                    ),
                ]),
            ),
            (r#"{"children": []}"#, TopologySpec::root(vec![])),
            (
                r#"{"children": [{"slots": 0}]}"#,
                TopologySpec::root(vec![gpu(0)]),
            ),
            (
                r#"{"children": [{"slots": 2}, {"gpus": 2, "slots_per_gpu": 2}]}"#,
                TopologySpec::root(vec![gpu(2), node(2, 2)]),
            ),
            (
                r#"{"children": [{"gpus": 2, "slots_per_gpu": 2}, {"children": [{"gpus": 2, "slots_per_gpu": 2}]}]}"#,
                TopologySpec::root(vec![node(2, 2), TopologySpec::root(vec![node(2, 2)])]),
            ),
            (
                r#"{"children": [{"gpus": 2, "slots_per_gpu": 2}, {"gpus": 3, "slots_per_gpu": 2}]}"#,
                TopologySpec::root(vec![node(2, 2), node(3, 2)]),
            ),
            (
                r#"{"children": [{"children": [{"slots": 2}, {"slots": 3}]}]}"#,
                TopologySpec::root(vec![TopologySpec::root(vec![gpu(2), gpu(3)])]),
            ),
        ];
        for (json, spec) in cases {
            let from_file = Topology::from_json_str(json);
            match Topology::from_spec(&spec) {
                Ok(tree) => assert_eq!(from_file.unwrap(), tree, "{json}"),
                Err(e) => assert!(
                    matches!(&from_file, Err(EplbError::Topology(f)) if *f == e),
                    "{json}: {from_file:?}, expected {e:?}"
                ),
            }
        }
    }

    #[test]
    fn what_is_not_a_topology_is_a_format_error() {
        assert!(matches!(
            Topology::from_json_str(r#"{"racks": 3}"#),
            Err(EplbError::Format { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        assert!(matches!(
            Topology::from_json(Path::new("/nonexistent/topology.json")),
            Err(EplbError::Io { .. })
        ));
    }
}
