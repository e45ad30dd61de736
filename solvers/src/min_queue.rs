//! Small min-queues of `u64` keys for the greedy loops: each step looks at the smallest key
//! and replaces (or removes) it. Which structure is fastest depends on the number of keys, so
//! [`with_min_queue`] picks one by size and runs the caller's loop monomorphised over it:
//!
//! - up to 64 keys: chunks of eight, each chunk's minimum cached, every scan branch-free and
//!   unrolled ([`tree_min`]);
//! - more: a binary heap.
//!
//! Every key carries its entry's index (`0..len`) in its low 32 bits ([`LOW_BITS`]), and a
//! replacement key keeps it: the scans find the entry from the key itself. Keys are therefore
//! distinct and ties in the high bits go to the lowest entry. Removed entries become
//! `u64::MAX`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::partition::LOW_BITS;

/// The two operations the greedy loops need.
pub(crate) trait MinQueue {
    /// The smallest key (the queue is never empty when asked).
    fn smallest(&mut self) -> u64;
    /// Gives the entry returned by the last [`MinQueue::smallest`] a new key.
    fn replace_smallest(&mut self, key: u64);
    /// Removes the entry returned by the last [`MinQueue::smallest`].
    fn remove_smallest(&mut self) {
        self.replace_smallest(u64::MAX);
    }
}

/// A loop to run over whichever [`MinQueue`] suits the number of keys.
pub(crate) trait QueueLoop {
    /// What the loop returns.
    type Output;
    /// Runs the loop.
    fn run<Q: MinQueue>(self, queue: &mut Q) -> Self::Output;
}

/// Storage kept between calls (used for many keys only).
#[derive(Debug, Default, Clone)]
pub(crate) struct QueueBuffer {
    heap: Vec<Reverse<u64>>,
}

/// Builds the queue best suited to `len` keys from `keys` (exactly `len` of them, key `i`
/// with `i` in its low bits) and runs `body` over it.
pub(crate) fn with_min_queue<L: QueueLoop>(
    buffer: &mut QueueBuffer,
    len: usize,
    keys: impl Iterator<Item = u64>,
    body: L,
) -> L::Output {
    match len {
        0..=8 => body.run(&mut ChunkedQueue::<1>::new(keys)),
        9..=16 => body.run(&mut ChunkedQueue::<2>::new(keys)),
        17..=32 => body.run(&mut ChunkedQueue::<4>::new(keys)),
        33..=64 => body.run(&mut ChunkedQueue::<8>::new(keys)),
        _ => {
            let mut heap = std::mem::take(&mut buffer.heap);
            heap.clear();
            heap.extend(keys.map(Reverse));
            let mut queue = HeapQueue(BinaryHeap::from(heap));
            let out = body.run(&mut queue);
            buffer.heap = queue.0.into_vec();
            out
        }
    }
}

/// The smallest of `N` keys by a pairwise (tree) reduction: independent comparisons, fully
/// unrolled for a fixed power-of-two `N`.
pub(crate) fn tree_min<const N: usize>(mut keys: [u64; N]) -> u64 {
    let mut width = N;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            keys[i] = keys[i].min(keys[i + width]);
        }
    }
    keys[0]
}

/// Up to `8 * B` keys in `B` chunks of eight, with each chunk's smallest key cached: finding
/// the smallest scans the `B` chunk minima, an update rescans one chunk. Key `i` carries `i`
/// in the bits of `INDEX` (the low 32 by default; the low bits of any mask `2^k - 1`).
pub(crate) struct ChunkedQueue<const B: usize, const INDEX: u64 = LOW_BITS> {
    chunks: [[u64; 8]; B],
    chunk_min: [u64; B],
    smallest: usize,
}

impl<const B: usize, const INDEX: u64> ChunkedQueue<B, INDEX> {
    /// The queue of `keys` (at most `8 * B`; key `i` with `i` in its `INDEX` bits).
    #[inline]
    pub(crate) fn new(keys: impl Iterator<Item = u64>) -> Self {
        let mut chunks = [[u64::MAX; 8]; B];
        for (i, key) in keys.take(8 * B).enumerate() {
            chunks[i / 8][i % 8] = key;
        }
        let chunk_min = chunks.map(tree_min);
        Self {
            chunks,
            chunk_min,
            smallest: 0,
        }
    }
}

impl<const B: usize, const INDEX: u64> MinQueue for ChunkedQueue<B, INDEX> {
    fn smallest(&mut self) -> u64 {
        let best = tree_min(self.chunk_min);
        self.smallest = (best & INDEX) as usize;
        best
    }

    fn replace_smallest(&mut self, key: u64) {
        let chunk = &mut self.chunks[self.smallest / 8];
        chunk[self.smallest % 8] = key;
        self.chunk_min[self.smallest / 8] = tree_min(*chunk);
    }
}

/// Many keys: a binary min-heap.
struct HeapQueue(BinaryHeap<Reverse<u64>>);

impl MinQueue for HeapQueue {
    fn smallest(&mut self) -> u64 {
        self.0.peek().expect("the queue is not empty").0
    }

    fn replace_smallest(&mut self, key: u64) {
        *self.0.peek_mut().expect("the queue is not empty") = Reverse(key);
    }

    fn remove_smallest(&mut self) {
        self.0.pop();
    }
}

/// A winner tree over up to `2^k` keys (a tournament): every inner node holds the smaller of
/// its children, so the root is the smallest key, and replacing a leaf replays only its path
/// to the root, one load and one minimum per level without branches on the keys (a binary
/// heap's sift-down branches on every comparison, and those branches are as good as random).
/// Keeps its buffer between rebuilds.
#[derive(Debug, Default, Clone)]
pub(crate) struct WinnerTree {
    /// `nodes[1]` is the root, `nodes[k]` has children `2k` and `2k + 1`, leaf `i` is
    /// `nodes[leaves + i]`; missing leaves are `u64::MAX`.
    nodes: Vec<u64>,
    leaves: usize,
}

impl WinnerTree {
    /// Replaces the keys with `keys` (leaf `i` holds the `i`-th).
    pub(crate) fn rebuild(&mut self, keys: impl ExactSizeIterator<Item = u64>) {
        let leaves = keys.len().next_power_of_two();
        self.nodes.clear();
        self.nodes.resize(2 * leaves, u64::MAX);
        for (leaf, key) in self.nodes[leaves..].iter_mut().zip(keys) {
            *leaf = key;
        }
        for k in (1..leaves).rev() {
            self.nodes[k] = self.nodes[2 * k].min(self.nodes[2 * k + 1]);
        }
        self.leaves = leaves;
    }

    /// The smallest key (`u64::MAX` when there are none).
    pub(crate) fn smallest(&self) -> u64 {
        self.nodes.get(1).copied().unwrap_or(u64::MAX)
    }

    /// Gives leaf `position` the key `key`.
    pub(crate) fn replace(&mut self, position: usize, key: u64) {
        let mut at = self.leaves + position;
        self.nodes[at] = key;
        let mut winner = key;
        while at > 1 {
            winner = winner.min(self.nodes[at ^ 1]);
            at /= 2;
            self.nodes[at] = winner;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// After any replacements the root is the smallest leaf, for every number of keys
        /// (powers of two and not), with duplicates.
        #[test]
        fn the_winner_is_the_smallest_key(
            keys in proptest::collection::vec(0u64..50, 1..70),
            replacements in proptest::collection::vec((any::<prop::sample::Index>(), 0u64..50), 0..100),
        ) {
            let mut tree = WinnerTree::default();
            tree.rebuild(keys.iter().copied());
            let mut reference = keys.clone();
            prop_assert_eq!(tree.smallest(), *reference.iter().min().unwrap());
            for (at, key) in replacements {
                let at = at.index(reference.len());
                tree.replace(at, key);
                reference[at] = key;
                prop_assert_eq!(tree.smallest(), *reference.iter().min().unwrap());
            }
        }
    }
}
