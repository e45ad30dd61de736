//! Sets of groups as bit sets: one word (the fast path, up to 64 groups) or a vector of words.

use std::hash::Hash;

/// A set of group positions.
pub(super) trait GroupSet: Clone + Eq + Hash {
    /// The empty set over `groups` positions.
    fn empty(groups: usize) -> Self;
    /// Adds `g`.
    fn insert(&mut self, g: usize);
    /// Removes `g`.
    fn remove(&mut self, g: usize);
    /// The members in ascending order, into `out` (cleared first).
    fn members(&self, out: &mut Vec<usize>);
}

impl GroupSet for u64 {
    fn empty(_: usize) -> Self {
        0
    }
    fn insert(&mut self, g: usize) {
        *self |= 1 << g;
    }
    fn remove(&mut self, g: usize) {
        *self &= !(1 << g);
    }
    fn members(&self, out: &mut Vec<usize>) {
        out.clear();
        let mut rest = *self;
        while rest != 0 {
            out.push(rest.trailing_zeros() as usize);
            rest &= rest - 1;
        }
    }
}

/// A set over any number of groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct WideSet(Vec<u64>);

impl GroupSet for WideSet {
    fn empty(groups: usize) -> Self {
        WideSet(vec![0; groups.div_ceil(64)])
    }
    fn insert(&mut self, g: usize) {
        self.0[g / 64].insert(g % 64);
    }
    fn remove(&mut self, g: usize) {
        self.0[g / 64].remove(g % 64);
    }
    fn members(&self, out: &mut Vec<usize>) {
        out.clear();
        let mut word = Vec::new();
        for (w, bits) in self.0.iter().enumerate() {
            bits.members(&mut word);
            out.extend(word.iter().map(|&g| w * 64 + g));
        }
    }
}
