//! Retrieval's two rankings and their fusion: an exact vector index over unit vectors (the
//! reference any faster index is measured against), and reciprocal rank fusion of ranked
//! lists (vector and full text), which needs no calibration between their scores.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// Vectors of one length, kept as unit vectors in one flat array; a search is exact cosine
/// similarity against every vector.
#[derive(Debug, Clone, Default)]
pub struct FlatIndex<K> {
    dimensions: usize,
    keys: Vec<K>,
    values: Vec<f32>,
}

/// A key with its score, best first in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<K> {
    pub key: K,
    pub score: f32,
}

impl<K: Clone> FlatIndex<K> {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a vector (normalized here); `false` for one of another length or all zeros.
    pub fn add(&mut self, key: K, vector: &[f32]) -> bool {
        let Some(unit) = unit(vector).filter(|v| v.len() == self.dimensions) else {
            return false;
        };
        self.keys.push(key);
        self.values.extend_from_slice(&unit);
        true
    }

    /// Removes every vector whose key `gone` says (a document's chunks when it is deleted).
    pub fn remove_where(&mut self, gone: impl Fn(&K) -> bool) {
        let mut kept = 0;
        for idx in 0..self.keys.len() {
            if gone(&self.keys[idx]) {
                continue;
            }
            if kept != idx {
                self.keys.swap(kept, idx);
                let (from, to) = (idx * self.dimensions, kept * self.dimensions);
                self.values.copy_within(from..from + self.dimensions, to);
            }
            kept += 1;
        }
        self.keys.truncate(kept);
        self.values.truncate(kept * self.dimensions);
    }

    /// The `k` vectors most similar to `query` (cosine), best first; those `allow` refuses
    /// are skipped (a filter by knowledge base or document).
    pub fn search(&self, query: &[f32], k: usize, allow: impl Fn(&K) -> bool) -> Vec<Scored<K>> {
        let Some(query) = unit(query).filter(|q| q.len() == self.dimensions) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        // The worst of the best `k` on top, to be pushed out.
        let mut best: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
        for (idx, row) in self.values.chunks_exact(self.dimensions).enumerate() {
            if !allow(&self.keys[idx]) {
                continue;
            }
            let score = dot(&query, row);
            if best.len() < k {
                best.push(Worst { score, idx });
            } else if best.peek().is_some_and(|w| score > w.score) {
                best.pop();
                best.push(Worst { score, idx });
            }
        }
        let mut out: Vec<Scored<K>> = best
            .into_iter()
            .map(|w| Scored {
                key: self.keys[w.idx].clone(),
                score: w.score,
            })
            .collect();
        out.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal));
        out
    }
}

/// Ordered so that the heap's top is the lowest score.
pub(crate) struct Worst {
    pub score: f32,
    pub idx: usize,
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .partial_cmp(&self.score)
            .unwrap_or(Ordering::Equal)
            .then(self.idx.cmp(&other.idx))
    }
}

use crate::vector::dot;

/// The vector scaled to length 1; `None` when it is all zeros or not finite.
pub(crate) fn unit(vector: &[f32]) -> Option<Vec<f32>> {
    let norm = vector
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| {
        vector
            .iter()
            .map(|x| (f64::from(*x) / norm) as f32)
            .collect()
    })
}

/// Reciprocal rank fusion: each key scores the sum over the rankings it is in of
/// `1 / (k + rank)` (rank from 1; `k` is 60 in the original paper), best first; ties keep the
/// order of first appearance.
pub fn fuse<K: Clone + Eq + Hash>(rankings: &[Vec<K>], k: f32) -> Vec<Scored<K>> {
    let mut scores: HashMap<K, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, key) in ranking.iter().enumerate() {
            let entry = scores.entry(key.clone()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(K, f32, usize)> = scores
        .into_iter()
        .map(|(key, (s, o))| (key, s, o))
        .collect();
    out.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(Ordering::Equal)
            .then(a.2.cmp(&b.2))
    });
    out.into_iter()
        .map(|(key, score, _)| Scored { key, score })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flat_index_finds_the_nearest_vectors_exactly() {
        let mut index = FlatIndex::new(3);
        assert!(index.add("x", &[1.0, 0.0, 0.0]));
        assert!(index.add("y", &[0.0, 2.0, 0.0]));
        assert!(index.add("xy", &[1.0, 1.0, 0.0]));
        assert!(!index.add("zero", &[0.0, 0.0, 0.0]));
        assert!(!index.add("short", &[1.0]));
        let got = index.search(&[3.0, 0.1, 0.0], 2, |_| true);
        assert_eq!(got.iter().map(|s| s.key).collect::<Vec<_>>(), ["x", "xy"]);
        assert!((got[0].score - 0.99944).abs() < 1e-3, "{got:?}");
        // A filter leaves keys out; k larger than the index gives them all.
        let got = index.search(&[1.0, 0.0, 0.0], 10, |k| *k != "x");
        assert_eq!(got.iter().map(|s| s.key).collect::<Vec<_>>(), ["xy", "y"]);
        assert!(index.search(&[0.0, 0.0, 0.0], 3, |_| true).is_empty());
        assert!(index.search(&[1.0, 0.0, 0.0], 0, |_| true).is_empty());
        index.remove_where(|k| k.starts_with('x'));
        assert_eq!(index.len(), 1);
        assert_eq!(index.search(&[1.0, 1.0, 0.0], 3, |_| true)[0].key, "y");
    }

    #[test]
    fn the_flat_index_agrees_with_sorting_every_score() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / u32::MAX as f32) - 0.25
        };
        let mut index = FlatIndex::new(8);
        let mut all = Vec::new();
        for key in 0..500 {
            let v: Vec<f32> = (0..8).map(|_| next()).collect();
            index.add(key, &v);
            all.push((key, v));
        }
        let query: Vec<f32> = (0..8).map(|_| next()).collect();
        let mut exact: Vec<(i32, f32)> = all
            .iter()
            .map(|(k, v)| (*k, frontdesk_cosine(&query, v)))
            .collect();
        exact.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        let got: Vec<i32> = index
            .search(&query, 10, |_| true)
            .iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(got, exact[..10].iter().map(|(k, _)| *k).collect::<Vec<_>>());
    }

    fn frontdesk_cosine(a: &[f32], b: &[f32]) -> f32 {
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot(a, b) / (n(a) * n(b))
    }

    #[test]
    fn fusion_rewards_agreement_between_rankings() {
        let vector = vec!["a", "b", "c"];
        let text = vec!["d", "b", "e"];
        let got = fuse(&[vector, text], 60.0);
        let keys: Vec<&str> = got.iter().map(|s| s.key).collect();
        // b is second in both and beats a first place in one; ties keep first appearance.
        assert_eq!(keys, ["b", "a", "d", "c", "e"]);
        assert!((got[0].score - 2.0 / 62.0).abs() < 1e-6);
        assert!(fuse::<&str>(&[], 60.0).is_empty());
    }
}
