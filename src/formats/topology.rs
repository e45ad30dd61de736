//! Topology files: the cluster tree as JSON.
//!
//! A vertex is a GPU `{"slots": 9}`, a node with identical GPUs
//! `{"name": "node0", "gpus": 8, "slots_per_gpu": 9}`, or a level
//! `{"name": "rack0", "children": [...]}`; the file holds the root level. The tree's rules
//! (uniform nodes, GPUs at one depth) are the [`Topology`]'s own.
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

use crate::error::{EplbError, Result};
use crate::topology::{Topology, TopologySpec};

/// One vertex of a topology file.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum FileVertex {
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
        children: Vec<FileVertex>,
    },
}

impl From<FileVertex> for TopologySpec {
    fn from(vertex: FileVertex) -> Self {
        match vertex {
            FileVertex::Gpu { slots } => TopologySpec::Gpu { slots },
            FileVertex::Node {
                name,
                gpus,
                slots_per_gpu,
            } => TopologySpec::Node {
                name,
                gpus,
                slots_per_gpu,
            },
            FileVertex::Level { name, children } => TopologySpec::Level {
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
        let root: FileVertex = serde_json::from_str(text).map_err(|e| EplbError::Format {
            path: "-".into(),
            message: format!(
                "not a topology ({e}): each vertex must be {{\"slots\": S}} (a GPU), {{\"gpus\": n, \"slots_per_gpu\": S}} (a node) or {{\"children\": [...]}} (a level), each optionally with a \"name\""
            ),
        })?;
        Ok(Topology::from_spec(&root.into())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::TopologyError;

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
        assert_eq!(t.num_vertices(), 1 + 2 + 3 + 6);
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
    fn a_missing_file_is_an_io_error() {
        assert!(matches!(
            Topology::from_json(Path::new("/nonexistent/topology.json")),
            Err(EplbError::Io { .. })
        ));
    }
}
