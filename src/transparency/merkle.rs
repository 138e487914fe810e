//! RFC 9162 (Certificate Transparency 2.0, section 2.1) Merkle tree hashing, inclusion proofs and
//! consistency proofs, written from the RFC's definitions.
//!
//! Leaves are hashed as `SHA-256(0x00 || entry)`, interior nodes as `SHA-256(0x01 || left ||
//! right)`; a tree of `n` leaves splits at the largest power of two smaller than `n` (the RFC's
//! MTH). Everything takes leaf hashes, so a caller hashes each entry once.

use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf, node or tree.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH: the root hash of the tree over these leaf hashes (the empty tree: SHA-256 of nothing).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof (audit path) of leaf `index`, or `None` when the index is
/// outside the tree.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// A tree whose subtree hashes are computed once, for making many inclusion proofs: every proof
/// of an `n`-leaf tree in O(n log n) in all instead of O(n) each.
pub struct Tree<'a> {
    leaves: &'a [Hash],
    memo: std::collections::HashMap<(usize, usize), Hash>,
}

impl<'a> Tree<'a> {
    /// A tree over these leaf hashes.
    pub fn new(leaves: &'a [Hash]) -> Self {
        Tree {
            leaves,
            memo: std::collections::HashMap::new(),
        }
    }

    fn root_of(&mut self, start: usize, end: usize) -> Hash {
        if end - start <= 1 {
            return root(&self.leaves[start..end]);
        }
        if let Some(h) = self.memo.get(&(start, end)) {
            return *h;
        }
        let k = split(end - start);
        let l = self.root_of(start, start + k);
        let r = self.root_of(start + k, end);
        let h = node_hash(&l, &r);
        self.memo.insert((start, end), h);
        h
    }

    /// The root hash (MTH).
    pub fn root(&mut self) -> Hash {
        self.root_of(0, self.leaves.len())
    }

    /// PATH(index, D[n]), as [`inclusion_proof`].
    pub fn inclusion_proof(&mut self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.leaves.len() {
            return None;
        }
        let mut out = Vec::new();
        let (mut start, mut end, mut m) = (0, self.leaves.len(), index);
        // Walk down recording siblings, then reverse (PATH lists the deepest sibling first).
        while end - start > 1 {
            let k = split(end - start);
            if m < k {
                out.push(self.root_of(start + k, end));
                end = start + k;
            } else {
                out.push(self.root_of(start, start + k));
                start += k;
                m -= k;
            }
        }
        out.reverse();
        Some(out)
    }
}

/// PROOF(m, D[n]): the consistency proof from the tree of the first `old_size` leaves to the tree
/// of all of them. `None` when `old_size` is 0 or larger than the tree (nothing to prove); an
/// empty proof when the sizes are equal.
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    subproof(old_size, leaves, true, &mut out);
    Some(out)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], complete, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The older tree is larger than the newer one.
    #[error("the older tree (size {old}) is larger than the newer one (size {new})")]
    Shrunk {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the sizes.
    #[error("the proof has the wrong number of hashes ({0})")]
    Length(usize),
    /// The hashes do not lead to the expected root(s).
    #[error("the proof does not lead to the expected root hash")]
    Mismatch,
}

/// RFC 9162 section 2.1.3.2: verify that `leaf` (a leaf hash) is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Length(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length(proof.len()));
    }
    if &r != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// RFC 9162 section 2.1.4.2: verify that the tree of `new_size` leaves with root `new_root`
/// extends the tree of `old_size` leaves with root `old_root`. Equal sizes need equal roots and
/// an empty proof; an empty old tree is consistent with every tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::Shrunk {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length(proof.len()))
        };
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Length(proof.len()));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    // 1. An empty proof fails.
    if proof.is_empty() {
        return Err(ProofError::Length(0));
    }
    // 2. If the old size is an exact power of two, the old root starts the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    // 3., 4.
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // 5.
    let (mut fr, mut sr) = (path[0], path[0]);
    // 6.
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::Length(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // 7.
    if snode != 0 {
        return Err(ProofError::Length(proof.len()));
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves of the RFC 6962 / CT reference test trees (C++ and Go implementations share
    /// them): the first `n` of these make the tree of size `n`.
    fn vector_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    fn hashes(n: usize) -> Vec<Hash> {
        vector_leaves()[..n].iter().map(|l| leaf_hash(l)).collect()
    }

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn roots_of_the_reference_trees_of_size_0_to_8() {
        let expected = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(hex::encode(root(&hashes(n))), *want, "tree of size {n}");
        }
    }

    #[test]
    fn reference_inclusion_proofs() {
        let leaves = hashes(8);
        let cases: [(usize, usize, &[&str]); 4] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, want) in cases {
            let proof = inclusion_proof(index, &leaves[..size]).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "leaf {index} of {size}");
            verify_inclusion(
                index as u64,
                size as u64,
                &leaves[index],
                &proof,
                &root(&leaves[..size]),
            )
            .unwrap();
        }
    }

    #[test]
    fn reference_consistency_proofs() {
        let leaves = hashes(8);
        let cases: [(usize, usize, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, want) in cases {
            let proof = consistency_proof(old, &leaves[..new]).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "{old} -> {new}");
            verify_consistency(
                old as u64,
                new as u64,
                &root(&leaves[..old]),
                &root(&leaves[..new]),
                &proof,
            )
            .unwrap();
        }
    }

    #[test]
    fn every_proof_up_to_40_leaves_verifies_and_any_change_fails() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() {
            let d = &leaves[..n];
            let r = root(d);
            for i in 0..n {
                let p = inclusion_proof(i, d).unwrap();
                verify_inclusion(i as u64, n as u64, &d[i], &p, &r).unwrap();
                assert_eq!(Tree::new(d).inclusion_proof(i), Some(p.clone()));
                // Wrong leaf, wrong index, a flipped bit in each hash, a dropped or extra hash.
                assert!(verify_inclusion(i as u64, n as u64, &leaf_hash(b"x"), &p, &r).is_err());
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(verify_inclusion(j as u64, n as u64, &d[i], &p, &r).is_err());
                }
                for k in 0..p.len() {
                    let mut q = p.clone();
                    q[k][0] ^= 1;
                    assert!(verify_inclusion(i as u64, n as u64, &d[i], &q, &r).is_err());
                }
                if !p.is_empty() {
                    assert!(verify_inclusion(i as u64, n as u64, &d[i], &p[1..], &r).is_err());
                }
                let mut longer = p.clone();
                longer.push(r);
                assert!(verify_inclusion(i as u64, n as u64, &d[i], &longer, &r).is_err());
            }
            for m in 1..=n {
                let p = consistency_proof(m, d).unwrap();
                let old = root(&d[..m]);
                verify_consistency(m as u64, n as u64, &old, &r, &p).unwrap();
                for k in 0..p.len() {
                    let mut q = p.clone();
                    q[k][5] ^= 0x80;
                    assert!(verify_consistency(m as u64, n as u64, &old, &r, &q).is_err());
                }
                if m < n {
                    // A different old tree (one leaf changed) is not extended by this one.
                    let mut forked = d[..m].to_vec();
                    forked[m - 1] = leaf_hash(b"forked");
                    assert!(
                        verify_consistency(m as u64, n as u64, &root(&forked), &r, &p).is_err()
                    );
                    assert!(
                        verify_consistency(n as u64, m as u64, &r, &old, &p).is_err(),
                        "shrinking"
                    );
                }
            }
        }
        assert!(inclusion_proof(3, &leaves[..3]).is_none());
        assert!(consistency_proof(0, &leaves[..3]).is_none());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release --lib merkle::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn every_inclusion_proof_of_a_large_log() {
        for n in [1000usize, 5000, 50_000] {
            let leaves: Vec<Hash> = (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let t = std::time::Instant::now();
            let mut tree = Tree::new(&leaves);
            let r = tree.root();
            for (i, leaf) in leaves.iter().enumerate() {
                let p = tree.inclusion_proof(i).unwrap();
                verify_inclusion(i as u64, n as u64, leaf, &p, &r).unwrap();
            }
            eprintln!(
                "{n} entries: every inclusion proof made and verified in {:?}",
                t.elapsed()
            );
        }
    }
}
