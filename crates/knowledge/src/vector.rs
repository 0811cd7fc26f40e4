//! The vector index a tenant's passages are searched with: exact while small, and from
//! [`SKETCH_FROM`] vectors on a two-step search that reads far less memory per query.
//!
//! Each vector also gets a *sketch*: one bit per dimension, whether it lies above or below the
//! mean of the vectors (centred first, since embeddings of one model share a common
//! direction). The Hamming distance between two sketches follows the angle between the
//! vectors, so a search first ranks every sketch against the query's (48 bytes per vector for
//! MiniLM instead of 1,536, compared with XOR and a bit count, on every core), keeps the
//! nearest few hundred allowed candidates, and scores only those exactly. It never reorders
//! what it returns: the `k` results are ranked by their exact cosine similarity. What it can
//! miss is a near vector whose sketch landed far away, which the `index` benchmark measures
//! as recall against the exact [`crate::FlatIndex`] (`cargo bench -p frontdesk-knowledge
//! --bench index`).
//!
//! Sketches need no training beyond the mean, so adds stay cheap; the mean is taken again
//! (and every sketch redrawn) when the index has grown fourfold since.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::rank::{unit, Scored, Worst};

/// From how many vectors a [`VectorIndex`] sketches them.
pub const SKETCH_FROM: usize = 20_000;
/// Below this many vectors a sketch scan stays on one thread.
const PARALLEL_FROM: usize = 100_000;

/// Vectors of one length, searched exactly while few and through sketches once many.
#[derive(Debug, Clone)]
pub struct VectorIndex<K> {
    dimensions: usize,
    keys: Vec<K>,
    /// Unit vectors, row by row.
    values: Vec<f32>,
    sketches: Option<Sketches>,
    /// Exactly scored candidates per query; 0 for [`default_candidates`].
    candidates: usize,
}

#[derive(Debug, Clone)]
struct Sketches {
    /// The mean the bits are taken against.
    centre: Vec<f32>,
    /// 64-bit words per sketch.
    words: usize,
    /// Sketches, row by row.
    bits: Vec<u64>,
    /// How many vectors there were when the mean was taken.
    made_at: usize,
}

impl Sketches {
    fn sketch(&self, unit: &[f32], out: &mut Vec<u64>) {
        let start = out.len();
        out.resize(start + self.words, 0);
        for (i, (x, c)) in unit.iter().zip(&self.centre).enumerate() {
            if x > c {
                out[start + i / 64] |= 1 << (i % 64);
            }
        }
    }
}

impl<K: Clone> VectorIndex<K> {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            keys: Vec::new(),
            values: Vec::new(),
            sketches: None,
            candidates: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes the vectors, keys' slots and sketches take (not what the keys own).
    pub fn memory(&self) -> usize {
        self.values.len() * 4
            + self.keys.len() * std::mem::size_of::<K>()
            + self
                .sketches
                .as_ref()
                .map_or(0, |s| s.centre.len() * 4 + s.bits.len() * 8)
    }

    /// Whether searches go through sketches (else they score every vector).
    pub fn is_sketched(&self) -> bool {
        self.sketches.is_some()
    }

    /// Adds a vector (normalized here); `false` for one of another length or all zeros.
    pub fn add(&mut self, key: K, vector: &[f32]) -> bool {
        let Some(unit) = unit(vector).filter(|v| v.len() == self.dimensions) else {
            return false;
        };
        self.keys.push(key);
        if let Some(sketches) = &mut self.sketches {
            let mut bits = std::mem::take(&mut sketches.bits);
            sketches.sketch(&unit, &mut bits);
            sketches.bits = bits;
        }
        self.values.extend_from_slice(&unit);
        let n = self.keys.len();
        let due = match &self.sketches {
            None => n >= SKETCH_FROM,
            Some(s) => n >= s.made_at * 4,
        };
        if due {
            self.sketch_all();
        }
        true
    }

    /// Removes every vector whose key `gone` says.
    pub fn remove_where(&mut self, gone: impl Fn(&K) -> bool) {
        let d = self.dimensions;
        let words = self.sketches.as_ref().map_or(0, |s| s.words);
        let mut kept = 0;
        for idx in 0..self.keys.len() {
            if gone(&self.keys[idx]) {
                continue;
            }
            if kept != idx {
                self.keys.swap(kept, idx);
                self.values.copy_within(idx * d..(idx + 1) * d, kept * d);
                if let Some(s) = &mut self.sketches {
                    s.bits
                        .copy_within(idx * words..(idx + 1) * words, kept * words);
                }
            }
            kept += 1;
        }
        self.keys.truncate(kept);
        self.values.truncate(kept * d);
        if let Some(s) = &mut self.sketches {
            s.bits.truncate(kept * words);
        }
        if kept < SKETCH_FROM / 2 {
            self.sketches = None;
        }
    }

    /// Takes the mean and sketches every vector now (whatever the size).
    pub fn sketch_all(&mut self) {
        let n = self.keys.len();
        if n == 0 {
            return;
        }
        let d = self.dimensions;
        let mut sums = vec![0f64; d];
        for row in self.values.chunks_exact(d) {
            for (s, x) in sums.iter_mut().zip(row) {
                *s += f64::from(*x);
            }
        }
        let mut sketches = Sketches {
            centre: sums.iter().map(|s| (s / n as f64) as f32).collect(),
            words: d.div_ceil(64),
            bits: Vec::with_capacity(n * d.div_ceil(64)),
            made_at: n,
        };
        let mut bits = std::mem::take(&mut sketches.bits);
        for row in self.values.chunks_exact(d) {
            sketches.sketch(row, &mut bits);
        }
        sketches.bits = bits;
        self.sketches = Some(sketches);
    }

    /// Sets how many candidates a sketched search scores exactly (more: better recall,
    /// slower); 0 goes back to the default.
    pub fn set_candidates(&mut self, candidates: usize) {
        self.candidates = candidates;
    }

    /// The `k` vectors most similar to `query`, best first; those `allow` refuses are
    /// skipped.
    pub fn search(&self, query: &[f32], k: usize, allow: impl Fn(&K) -> bool) -> Vec<Scored<K>> {
        let d = self.dimensions;
        let Some(query) = unit(query).filter(|q| q.len() == d) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let mut best: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
        let mut consider = |row: usize| {
            let score = dot(&query, &self.values[row * d..(row + 1) * d]);
            if best.len() < k {
                best.push(Worst { score, idx: row });
            } else if best.peek().is_some_and(|w| score > w.score) {
                best.pop();
                best.push(Worst { score, idx: row });
            }
        };
        match &self.sketches {
            None => (0..self.keys.len())
                .filter(|row| allow(&self.keys[*row]))
                .for_each(&mut consider),
            Some(sketches) => {
                let wanted = match self.candidates {
                    0 => default_candidates(k, self.keys.len()),
                    n => n.max(k),
                };
                let mut sketch = Vec::with_capacity(sketches.words);
                sketches.sketch(&query, &mut sketch);
                let distances = distances(&sketch, &sketches.bits);
                for row in nearest_allowed(&distances, sketch.len() * 64, wanted, |row| {
                    allow(&self.keys[row])
                }) {
                    consider(row);
                }
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

/// Candidates scored exactly: 64 per result asked for, and at least a thousandth of the
/// index (see the `index` benchmark for the recall this gives).
fn default_candidates(k: usize, n: usize) -> usize {
    (k * 64).max(n / 1_000)
}

/// The Hamming distance of every sketch in `bits` to `sketch`, on up to as many threads as
/// the machine has once there are many.
fn distances(sketch: &[u64], bits: &[u64]) -> Vec<u16> {
    let words = sketch.len();
    let n = bits.len() / words.max(1);
    let mut out = vec![0u16; n];
    let fill = |out: &mut [u16], bits: &[u64]| {
        for (slot, row) in out.iter_mut().zip(bits.chunks_exact(words)) {
            *slot = row
                .iter()
                .zip(sketch)
                .map(|(a, b)| (a ^ b).count_ones() as u16)
                .sum();
        }
    };
    let threads = if n < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |t| t.get().min(8))
    };
    if threads == 1 {
        fill(&mut out, bits);
        return out;
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        for (part, bits) in out.chunks_mut(chunk).zip(bits.chunks(chunk * words)) {
            scope.spawn(move || fill(part, bits));
        }
    });
    out
}

/// At least `wanted` rows that `allow` lets through (all of them when fewer do) with the
/// smallest distances, in row order: rows are taken a whole distance at a time, widening
/// until enough are allowed.
fn nearest_allowed(
    distances: &[u16],
    max: usize,
    wanted: usize,
    allow: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut histogram = vec![0usize; max + 1];
    for &d in distances {
        histogram[usize::from(d).min(max)] += 1;
    }
    let mut found = Vec::with_capacity(wanted.min(distances.len()));
    // Rows up to `upto` (inclusive) have been looked at.
    let mut upto: Option<usize> = None;
    let mut goal = wanted;
    loop {
        let from = upto.map_or(0, |u| u + 1);
        let mut seen: usize = histogram[..from].iter().sum();
        let mut to = from;
        while to < max && seen + histogram[to] < goal {
            seen += histogram[to];
            to += 1;
        }
        for (row, &d) in distances.iter().enumerate() {
            let d = usize::from(d);
            if d >= from && d <= to && allow(row) {
                found.push(row);
            }
        }
        upto = Some(to);
        if found.len() >= wanted || to >= max {
            return found;
        }
        // Too few allowed: look four times as far.
        goal = goal.saturating_mul(4);
    }
}

/// Dot product in eight lanes, which the compiler turns into vector instructions.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::FlatIndex;

    fn vectors(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..n / 10 + 1)
            .map(|_| (0..d).map(|_| next()).collect())
            .collect();
        (0..n)
            .map(|i| {
                // A shared offset, as one model's embeddings have.
                centres[i % centres.len()]
                    .iter()
                    .map(|c| 0.4 + c + 0.3 * next())
                    .collect()
            })
            .collect()
    }

    fn keys(found: Vec<Scored<usize>>) -> Vec<usize> {
        found.into_iter().map(|s| s.key).collect()
    }

    #[test]
    fn sketches_find_what_the_exact_scan_finds_and_follow_adds_and_removals() {
        let d = 96;
        let data = vectors(4_000, d, 7);
        let mut exact = FlatIndex::new(d);
        let mut index = VectorIndex::new(d);
        for (i, v) in data.iter().enumerate() {
            exact.add(i, v);
            index.add(i, v);
        }
        assert!(!index.is_sketched(), "few vectors stay exact");
        index.sketch_all();
        assert!(index.is_sketched());
        index.set_candidates(100);
        // Queries near stored vectors (a passage's question lies near the passage).
        let queries: Vec<Vec<f32>> = (0..100)
            .map(|i| {
                data[i * 37]
                    .iter()
                    .enumerate()
                    .map(|(j, x)| x + 0.05 * ((i * 31 + j) as f32).sin())
                    .collect()
            })
            .collect();
        let mut found = 0;
        for q in &queries {
            let truth = keys(exact.search(q, 10, |_| true));
            let got = index.search(q, 10, |_| true);
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
            found += keys(got).iter().filter(|k| truth.contains(k)).count();
        }
        let recall = found as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.9, "recall@10 {recall}");
        // Every row a candidate: exactly the exact scan, scores included.
        index.set_candidates(usize::MAX);
        let q = &queries[0];
        let truth = exact.search(q, 10, |_| true);
        assert_eq!(index.search(q, 10, |_| true), truth);
        index.set_candidates(100);
        // A filter that lets few through still fills k from further away.
        let rare = keys(index.search(q, 10, |k| k % 97 == 0));
        assert_eq!(rare.len(), 10);
        assert!(rare.iter().all(|k| k % 97 == 0));
        assert_eq!(
            keys(index.search(q, 10, |k| *k == 3_999)),
            [3_999],
            "one allowed row, however far"
        );
        assert!(index.search(q, 10, |_| false).is_empty());
        // Adds after sketching are sketched; removals keep rows and sketches together.
        assert!(index.add(9_999, q));
        assert_eq!(index.search(q, 1, |_| true)[0].key, 9_999);
        index.remove_where(|k| *k == 9_999 || *k < 2_000);
        assert_eq!(index.len(), 2_000);
        let after = index.search(q, 10, |_| true);
        assert!(after.iter().all(|s| s.key >= 2_000 && s.key != 9_999));
        let truth = keys(exact.search(q, 10, |k| *k >= 2_000));
        assert!(keys(after).iter().filter(|k| truth.contains(k)).count() >= 8);
        assert!(!index.add(1, &[0.0; 96]), "a zero vector has no direction");
    }

    #[test]
    fn distances_count_differing_bits_on_any_number_of_threads() {
        let sketch = [0b1011u64, u64::MAX];
        let bits: Vec<u64> = (0..PARALLEL_FROM as u64 + 3)
            .flat_map(|i| [i, u64::MAX])
            .collect();
        let got = distances(&sketch, &bits);
        assert_eq!(got.len(), PARALLEL_FROM + 3);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(u32::from(*d), (i as u64 ^ 0b1011).count_ones(), "row {i}");
        }
        assert_eq!(nearest_allowed(&got, 128, 1, |_| true), [11]);
        let near = nearest_allowed(&got, 128, 3, |row| row % 2 == 0);
        assert!(
            near.len() >= 3 && near.iter().all(|r| r % 2 == 0),
            "{near:?}"
        );
    }
}
