//! The RFC 9162 Merkle tree: leaf and node hashes with domain separation,
//! the compact frontier used for appends and verification, a tree with a
//! cached level store for O(log n) inclusion and consistency proofs, and the
//! proof verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.

use ring::digest::{Context, SHA256, digest};

use crate::error::{Error, Result};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

fn to_hash(d: ring::digest::Digest) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The hash of an empty tree: SHA-256 of the empty string (RFC 9162 2.1.1).
pub fn empty_root() -> Hash {
    to_hash(digest(&SHA256, b""))
}

/// `SHA-256(0x00 || data)`: the hash of one leaf (RFC 9162 2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    to_hash(ctx.finish())
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    to_hash(digest(&SHA256, &buf))
}

/// The largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The compact state of an append-only tree: the roots of its perfect
/// subtrees from left to right (one per set bit of the size). Enough to
/// append and to compute the root; `O(log n)` memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// A frontier from its size and perfect-subtree roots (largest first);
    /// `None` unless there is exactly one root per set bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (u64::from(size.count_ones()) == nodes.len() as u64).then_some(Frontier { size, nodes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash; an error if the tree already holds `2^64 - 1`
    /// leaves (a size read from a file that no log can reach).
    pub fn push(&mut self, leaf: Hash) -> Result<()> {
        let size = self.size.checked_add(1).ok_or(Error::SequenceOverflow)?;
        let mut acc = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => acc = node_hash(&left, &acc),
                None => break, // unreachable: one node per set bit
            }
            s >>= 1;
        }
        self.nodes.push(acc);
        self.size = size;
        Ok(())
    }

    /// Appends the root of a perfect subtree of `2^height` leaves, as if
    /// its leaves were pushed one by one. Returns `false` and changes
    /// nothing unless the size is a multiple of `2^height` (the subtree must
    /// sit on its own boundary) and the new size fits in a `u64`.
    pub fn push_subtree(&mut self, root: Hash, height: u32) -> bool {
        let Some(width) = 1u64.checked_shl(height) else {
            return false;
        };
        if !self.size.is_multiple_of(width) || self.size.checked_add(width).is_none() {
            return false;
        }
        let mut acc = root;
        let mut s = self.size >> height;
        while s & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => acc = node_hash(&left, &acc),
                None => break, // unreachable: one node per set bit
            }
            s >>= 1;
        }
        self.nodes.push(acc);
        self.size += width;
        true
    }

    /// The root hash of the tree (RFC 9162 MTH).
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        let mut acc = *last;
        for left in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// An append-only Merkle tree that keeps every leaf hash and every complete
/// perfect subtree root (about two hashes per leaf), so that the root at any
/// earlier size, inclusion proofs and consistency proofs all take
/// `O(log n)` hash operations.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    /// `levels[k][i]` is the root of leaves `[i * 2^k, (i + 1) * 2^k)`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        MerkleTree {
            levels: vec![Vec::new()],
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut k = 0usize;
        loop {
            if self.levels.len() <= k {
                self.levels.push(Vec::new());
            }
            let Some(level) = self.levels.get_mut(k) else {
                return;
            };
            level.push(carry);
            let n = level.len();
            if n % 2 == 1 {
                return;
            }
            match (level.get(n - 2), level.get(n - 1)) {
                (Some(l), Some(r)) => carry = node_hash(l, r),
                _ => return,
            }
            k += 1;
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.perfect(0, index)
    }

    fn perfect(&self, level: u32, index: u64) -> Option<Hash> {
        let l = self.levels.get(usize::try_from(level).ok()?)?;
        l.get(usize::try_from(index).ok()?).copied()
    }

    /// MTH of leaves `[start, end)`, where `start` is a multiple of the
    /// largest power of two below `end - start` (always so in RFC 9162's
    /// recursion) and `end <= size`.
    fn mth(&self, start: u64, end: u64) -> Option<Hash> {
        let len = end.checked_sub(start)?;
        if len == 0 {
            return Some(empty_root());
        }
        // Walk down the right spine collecting perfect left parts, then fold.
        let mut lefts: [Hash; 64] = [[0u8; 32]; 64];
        let mut count = 0usize;
        let mut lo = start;
        let acc = loop {
            let n = end - lo;
            if n.is_power_of_two() {
                let k = n.trailing_zeros();
                break self.perfect(k, lo >> k)?;
            }
            let k = split_point(n);
            let lvl = k.trailing_zeros();
            *lefts.get_mut(count)? = self.perfect(lvl, lo >> lvl)?;
            count += 1;
            lo += k;
        };
        let mut acc = acc;
        for left in lefts.get(..count)?.iter().rev() {
            acc = node_hash(left, &acc);
        }
        Some(acc)
    }

    /// The root hash at an earlier (or the current) size.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        if size > self.size() {
            return Err(Error::ProofRange {
                index: size,
                size: self.size(),
            });
        }
        self.mth(0, size).ok_or(Error::ProofRange {
            index: size,
            size: self.size(),
        })
    }

    /// The root hash of the whole tree.
    pub fn root(&self) -> Hash {
        self.mth(0, self.size()).unwrap_or_else(empty_root)
    }

    /// The frontier (perfect-subtree roots) at `size <= self.size()`.
    pub fn frontier_at(&self, size: u64) -> Option<Frontier> {
        let mut nodes = Vec::with_capacity(size.count_ones() as usize);
        let mut lo = 0u64;
        for bit in (0..64u32).rev() {
            if size & (1u64 << bit) != 0 {
                nodes.push(self.perfect(bit, lo >> bit)?);
                lo += 1u64 << bit;
            }
        }
        Frontier::from_parts(size, nodes)
    }

    /// Writes the RFC 9162 inclusion proof (audit path, bottom-up) of leaf
    /// `index` in the tree of size `size` into `out` (cleared first).
    pub fn inclusion_proof_into(&self, index: u64, size: u64, out: &mut Vec<Hash>) -> Result<()> {
        out.clear();
        let range = Error::ProofRange { index, size };
        if index >= size || size > self.size() {
            return Err(range);
        }
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > 1 {
            let n = hi - lo;
            if n.is_power_of_two() {
                // The rest of the path lies in a perfect subtree: direct lookups.
                let levels = n.trailing_zeros();
                let start = out.len();
                for lvl in 0..levels {
                    let sib = ((index - lo) >> lvl) ^ 1;
                    out.push(
                        self.perfect(lvl, (lo >> lvl) + sib)
                            .ok_or(Error::ProofRange { index, size })?,
                    );
                }
                // These were produced bottom-up; the earlier ones top-down.
                if let Some(tail) = out.get_mut(start..) {
                    tail.reverse();
                }
                break;
            }
            let k = split_point(n);
            if index < lo + k {
                out.push(
                    self.mth(lo + k, hi)
                        .ok_or(Error::ProofRange { index, size })?,
                );
                hi = lo + k;
            } else {
                out.push(
                    self.mth(lo, lo + k)
                        .ok_or(Error::ProofRange { index, size })?,
                );
                lo += k;
            }
        }
        out.reverse();
        Ok(())
    }

    /// The inclusion proof of leaf `index` in the tree of size `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let mut out = Vec::with_capacity(64);
        self.inclusion_proof_into(index, size, &mut out)?;
        Ok(out)
    }

    /// Writes the RFC 9162 consistency proof between sizes `old` and `new`
    /// (`0 < old <= new <= size`) into `out` (cleared first).
    pub fn consistency_proof_into(&self, old: u64, new: u64, out: &mut Vec<Hash>) -> Result<()> {
        out.clear();
        if old == 0 || old > new || new > self.size() {
            return Err(Error::ProofRange {
                index: old,
                size: new,
            });
        }
        let range = || Error::ProofRange {
            index: old,
            size: new,
        };
        // SUBPROOF(m, D[lo:hi], b), unrolled; siblings are pushed top-down.
        let (mut lo, mut hi, mut m, mut b) = (0u64, new, old, true);
        loop {
            let n = hi - lo;
            if m == n {
                if !b {
                    out.push(self.mth(lo, hi).ok_or_else(range)?);
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                out.push(self.mth(lo + k, hi).ok_or_else(range)?);
                hi = lo + k;
            } else {
                out.push(self.mth(lo, lo + k).ok_or_else(range)?);
                lo += k;
                m -= k;
                b = false;
            }
        }
        out.reverse();
        Ok(())
    }

    /// The consistency proof between sizes `old` and `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        let mut out = Vec::with_capacity(64);
        self.consistency_proof_into(old, new, &mut out)?;
        Ok(out)
    }
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let bad = Error::ProofInvalid("inclusion");
    if index >= size {
        return Err(bad);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(bad);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && r == *root {
        Ok(())
    } else {
        Err(bad)
    }
}

/// Verifies a consistency proof between two tree heads (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    let bad = Error::ProofInvalid("consistency");
    if old_size > new_size {
        return Err(bad);
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(bad)
        };
    }
    if old_size == 0 {
        // Every tree extends the empty one; there is nothing to prove.
        return if proof.is_empty() { Ok(()) } else { Err(bad) };
    }
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or(Error::ProofInvalid("consistency"))?
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if snode == 0 {
            return Err(bad);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(bad)
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    /// MTH straight from the RFC 9162 definition, for comparison.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn pushing_a_subtree_equals_pushing_its_leaves() {
        let leaves: Vec<Hash> = (0..64u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for height in 0..4u32 {
            let w = 1usize << height;
            for start_blocks in 0..6usize {
                let start = start_blocks * w;
                let mut one = Frontier::new();
                for h in &leaves[..start] {
                    one.push(*h).unwrap();
                }
                let mut sub = one.clone();
                let mut block = Frontier::new();
                for h in &leaves[start..start + w] {
                    one.push(*h).unwrap();
                    block.push(*h).unwrap();
                }
                assert!(sub.push_subtree(block.root(), height));
                assert_eq!(sub, one, "height {height}, start {start}");
            }
        }
        // Off its boundary, a subtree is refused and nothing changes.
        let mut f = Frontier::new();
        f.push(leaves[0]).unwrap();
        let before = f.clone();
        assert!(!f.push_subtree(leaves[1], 1));
        assert_eq!(f, before);
    }

    #[test]
    fn roots_frontiers_and_proofs_agree_with_the_definition() {
        let mut tree = MerkleTree::new();
        let mut frontier = Frontier::new();
        let mut leaves = Vec::new();
        for i in 0..70u64 {
            let h = leaf_hash(&i.to_be_bytes());
            leaves.push(h);
            tree.push(h);
            frontier.push(h).unwrap();
            let n = leaves.len() as u64;
            assert_eq!(tree.root(), reference_root(&leaves));
            assert_eq!(frontier.root(), tree.root());
            assert_eq!(tree.frontier_at(n).unwrap(), frontier);
            for m in 0..n {
                assert_eq!(
                    tree.root_at(m).unwrap(),
                    reference_root(&leaves[..m as usize])
                );
                let p = tree.inclusion_proof(m, n).unwrap();
                verify_inclusion(m, n, &leaves[m as usize], &p, &tree.root()).unwrap();
                assert!(verify_inclusion(m, n, &leaves[0], &p, &tree.root()).is_err() || m == 0);
                if m > 0 {
                    let c = tree.consistency_proof(m, n).unwrap();
                    let old = tree.root_at(m).unwrap();
                    verify_consistency(m, n, &old, &tree.root(), &c).unwrap();
                    if m < n {
                        assert!(verify_consistency(m, n, &[0xaa; 32], &tree.root(), &c).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root()[..4],
            [0xe3, 0xb0, 0xc4, 0x42],
            "RFC 9162 2.1.1: MTH({{}}) = SHA-256()"
        );
        assert_eq!(MerkleTree::new().root(), empty_root());
    }
}
