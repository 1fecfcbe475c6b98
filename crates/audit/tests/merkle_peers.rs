//! Merkle roots and proofs checked against an independent implementation
//! of RFC 6962 / RFC 9162 trees, the `ct-merkle` crate, on random trees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use carevox_audit::merkle::{Hash, MerkleTree, leaf_hash, verify_consistency, verify_inclusion};
use ct_merkle::{CtMerkleTree, RootHash};
use sha2::Sha256;

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

fn flat(p: &[Hash]) -> Vec<u8> {
    p.concat()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn roots_and_proofs_match_ct_merkle_on_random_trees() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..12 {
        let n = 1 + (rng.next() % 300) as usize;
        let leaves: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = (rng.next() % 64) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            })
            .collect();
        let mut ours = MerkleTree::new();
        let mut theirs: CtMerkleTree<Sha256, Vec<u8>> = CtMerkleTree::new();
        for (i, leaf) in leaves.iter().enumerate() {
            ours.push(leaf_hash(leaf));
            theirs.push(leaf.clone());
            assert_eq!(
                &ours.root()[..],
                theirs.root().as_bytes().as_slice(),
                "root at size {}",
                i + 1
            );
        }
        let root = ours.root();
        let their_root = theirs.root();
        for _ in 0..40 {
            let idx = (rng.next() % n as u64) as usize;
            let p = ours.inclusion_proof(idx as u64, n as u64).unwrap();
            let tp = theirs.prove_inclusion(idx);
            assert_eq!(flat(&p), tp.as_bytes(), "inclusion proof of {idx} in {n}");
            verify_inclusion(
                idx as u64,
                n as u64,
                &leaf_hash(&leaves[idx]),
                &hashes(tp.as_bytes()),
                &root,
            )
            .unwrap();
            their_root
                .verify_inclusion(
                    &leaves[idx],
                    idx,
                    &ct_merkle::inclusion::InclusionProof::from_bytes(flat(&p)),
                )
                .unwrap();

            let old = 1 + (rng.next() % n as u64) as usize;
            let c = ours.consistency_proof(old as u64, n as u64).unwrap();
            let tc = theirs.prove_consistency(old);
            let old_root = ours.root_at(old as u64).unwrap();
            let mut prefix: CtMerkleTree<Sha256, Vec<u8>> = CtMerkleTree::new();
            for l in &leaves[..old] {
                prefix.push(l.clone());
            }
            assert_eq!(&old_root[..], prefix.root().as_bytes().as_slice());
            verify_consistency(
                old as u64,
                n as u64,
                &old_root,
                &root,
                &hashes(tc.as_bytes()),
            )
            .unwrap();
            let their_old: RootHash<Sha256> = prefix.root();
            their_root
                .verify_consistency(
                    &their_old,
                    &ct_merkle::consistency::ConsistencyProof::from_bytes(flat(&c)),
                )
                .unwrap();
            assert_eq!(flat(&c), tc.as_bytes(), "consistency proof {old} -> {n}");
        }
    }
}
