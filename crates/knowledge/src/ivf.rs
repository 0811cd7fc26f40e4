//! An inverted-file vector index (IVF): the vectors are split into lists by their nearest
//! of `lists` centroids (spherical k-means on a sample), and a search scores the query
//! against the centroids first and then only the vectors of the `probes` nearest lists. Exact
//! within those lists; what it can miss is a near vector filed under a centroid that was not
//! probed, which the benchmark measures as recall against the exact [`crate::FlatIndex`].
//!
//! Below [`IVF_FROM`] vectors the exact scan is as fast, so [`VectorIndex`] keeps vectors flat
//! and builds the lists only once there are enough; adds after that go to their nearest list,
//! and the lists are trained again when the index has grown fourfold since.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::rank::{unit, Scored, Worst};

/// From how many vectors a [`VectorIndex`] builds lists.
pub const IVF_FROM: usize = 250_000;
/// k-means rounds.
const ROUNDS: usize = 8;
/// Training vectors per list at most.
const SAMPLE_PER_LIST: usize = 48;

/// Vectors of one length, searched exactly while few and through lists once many.
#[derive(Debug, Clone)]
pub struct VectorIndex<K> {
    dimensions: usize,
    keys: Vec<K>,
    /// Unit vectors, row by row.
    values: Vec<f32>,
    lists: Option<Lists>,
    /// Lists searched per query.
    probes: usize,
}

#[derive(Debug, Clone)]
struct Lists {
    centroids: Vec<f32>,
    /// Row numbers of each list.
    rows: Vec<Vec<u32>>,
    /// How many vectors there were when the lists were trained.
    trained_at: usize,
}

impl<K: Clone> VectorIndex<K> {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            keys: Vec::new(),
            values: Vec::new(),
            lists: None,
            probes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes the vectors, keys' slots and lists take (not what the keys own).
    pub fn memory(&self) -> usize {
        self.values.len() * 4
            + self.keys.len() * std::mem::size_of::<K>()
            + self.lists.as_ref().map_or(0, |l| {
                l.centroids.len() * 4 + l.rows.iter().map(|r| r.len() * 4 + 24).sum::<usize>()
            })
    }

    /// Whether searches go through lists (else they scan every vector).
    pub fn has_lists(&self) -> bool {
        self.lists.is_some()
    }

    /// Adds a vector (normalized here); `false` for one of another length or all zeros.
    pub fn add(&mut self, key: K, vector: &[f32]) -> bool {
        let Some(unit) = unit(vector).filter(|v| v.len() == self.dimensions) else {
            return false;
        };
        let row = self.keys.len() as u32;
        self.keys.push(key);
        self.values.extend_from_slice(&unit);
        if let Some(lists) = &mut self.lists {
            let nearest = nearest(&lists.centroids, self.dimensions, &unit);
            lists.rows[nearest].push(row);
        }
        self.maybe_train();
        true
    }

    /// Removes every vector whose key `gone` says.
    pub fn remove_where(&mut self, gone: impl Fn(&K) -> bool) {
        let mut kept = 0;
        let mut moved: Vec<Option<u32>> = vec![None; self.keys.len()];
        for (idx, slot) in moved.iter_mut().enumerate() {
            if gone(&self.keys[idx]) {
                continue;
            }
            if kept != idx {
                self.keys.swap(kept, idx);
                let (from, to) = (idx * self.dimensions, kept * self.dimensions);
                self.values.copy_within(from..from + self.dimensions, to);
            }
            *slot = Some(kept as u32);
            kept += 1;
        }
        self.keys.truncate(kept);
        self.values.truncate(kept * self.dimensions);
        if let Some(lists) = &mut self.lists {
            for rows in &mut lists.rows {
                *rows = rows.iter().filter_map(|r| moved[*r as usize]).collect();
            }
        }
        if self.keys.len() < IVF_FROM / 2 {
            self.lists = None;
        }
    }

    /// Trains the lists when there are enough vectors and none yet, or fourfold more than
    /// when they were trained.
    fn maybe_train(&mut self) {
        let n = self.keys.len();
        let due = match &self.lists {
            None => n >= IVF_FROM,
            Some(lists) => n >= lists.trained_at * 4,
        };
        if due {
            self.train();
        }
    }

    /// Builds the lists now (whatever the size).
    pub fn train(&mut self) {
        let n = self.keys.len();
        if n == 0 {
            return;
        }
        let d = self.dimensions;
        let count = ((n as f64).sqrt() as usize).clamp(1, 4_096);
        // The sample: evenly spaced rows.
        let sample_size = (count * SAMPLE_PER_LIST).min(n);
        let step = n as f64 / sample_size as f64;
        let sample: Vec<usize> = (0..sample_size)
            .map(|i| (i as f64 * step) as usize)
            .collect();
        let mut centroids: Vec<f32> = Vec::with_capacity(count * d);
        let pick = sample.len() as f64 / count as f64;
        for c in 0..count {
            let row = sample[((c as f64 * pick) as usize).min(sample.len() - 1)];
            centroids.extend_from_slice(&self.values[row * d..(row + 1) * d]);
        }
        for _ in 0..ROUNDS {
            let mut sums = vec![0f32; count * d];
            let mut sizes = vec![0usize; count];
            let assigned = assign(&centroids, d, &self.values, &sample);
            for (&row, &list) in sample.iter().zip(&assigned) {
                sizes[list] += 1;
                let v = &self.values[row * d..(row + 1) * d];
                for (s, x) in sums[list * d..(list + 1) * d].iter_mut().zip(v) {
                    *s += x;
                }
            }
            for c in 0..count {
                if sizes[c] == 0 {
                    continue; // keeps its old centroid
                }
                if let Some(u) = unit(&sums[c * d..(c + 1) * d]) {
                    centroids[c * d..(c + 1) * d].copy_from_slice(&u);
                }
            }
        }
        let all: Vec<usize> = (0..n).collect();
        let assigned = assign(&centroids, d, &self.values, &all);
        let mut rows = vec![Vec::new(); count];
        for (row, list) in assigned.into_iter().enumerate() {
            rows[list].push(row as u32);
        }
        self.lists = Some(Lists {
            centroids,
            rows,
            trained_at: n,
        });
        if self.probes == 0 {
            self.probes = default_probes(count);
        }
    }

    /// Sets how many lists a search probes (more: better recall, slower).
    pub fn set_probes(&mut self, probes: usize) {
        self.probes = probes.max(1);
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
            if !allow(&self.keys[row]) {
                return;
            }
            let score = dot(&query, &self.values[row * d..(row + 1) * d]);
            if best.len() < k {
                best.push(Worst { score, idx: row });
            } else if best.peek().is_some_and(|w| score > w.score) {
                best.pop();
                best.push(Worst { score, idx: row });
            }
        };
        match &self.lists {
            None => (0..self.keys.len()).for_each(&mut consider),
            Some(lists) => {
                let mut order: Vec<(f32, usize)> = lists
                    .centroids
                    .chunks_exact(d)
                    .enumerate()
                    .map(|(i, c)| (dot(&query, c), i))
                    .collect();
                let probes = self.probes.clamp(1, order.len());
                order.select_nth_unstable_by(probes - 1, |a, b| {
                    b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal)
                });
                for &(_, list) in &order[..probes] {
                    for &row in &lists.rows[list] {
                        consider(row as usize);
                    }
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

/// A sixth of the lists, at least 8 (see the `index` benchmark for the recall it gives).
fn default_probes(lists: usize) -> usize {
    (lists / 6).max(8).min(lists)
}

/// The nearest centroid of each of `rows`, on as many threads as the machine has.
fn assign(centroids: &[f32], d: usize, values: &[f32], rows: &[usize]) -> Vec<usize> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let chunk = rows.len().div_ceil(threads).max(1);
    let mut out = vec![0usize; rows.len()];
    std::thread::scope(|scope| {
        for (part, rows) in out.chunks_mut(chunk).zip(rows.chunks(chunk)) {
            scope.spawn(move || {
                for (slot, &row) in part.iter_mut().zip(rows) {
                    *slot = nearest(centroids, d, &values[row * d..(row + 1) * d]);
                }
            });
        }
    });
    out
}

fn nearest(centroids: &[f32], d: usize, v: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, c) in centroids.chunks_exact(d).enumerate() {
        let s = dot(v, c);
        if s > best.0 {
            best = (s, i);
        }
    }
    best.1
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
                centres[i % centres.len()]
                    .iter()
                    .map(|c| c + 0.3 * next())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn lists_find_what_the_exact_scan_finds_and_follow_adds_and_removals() {
        let d = 32;
        let data = vectors(4_000, d, 7);
        let mut exact = FlatIndex::new(d);
        let mut ivf = VectorIndex::new(d);
        for (i, v) in data.iter().enumerate() {
            exact.add(i, v);
            ivf.add(i, v);
        }
        assert!(!ivf.has_lists(), "few vectors stay flat");
        ivf.train();
        assert!(ivf.has_lists());
        ivf.set_probes(24);
        let queries = vectors(100, d, 99);
        let mut found = 0;
        for q in &queries {
            let truth: Vec<usize> = exact
                .search(q, 10, |_| true)
                .into_iter()
                .map(|s| s.key)
                .collect();
            let got: Vec<usize> = ivf
                .search(q, 10, |_| true)
                .into_iter()
                .map(|s| s.key)
                .collect();
            found += got.iter().filter(|k| truth.contains(k)).count();
        }
        let recall = found as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.9, "recall@10 {recall}");
        // All lists probed: exactly the exact scan.
        ivf.set_probes(usize::MAX);
        let q = &queries[0];
        let truth: Vec<usize> = exact
            .search(q, 10, |_| true)
            .into_iter()
            .map(|s| s.key)
            .collect();
        let got: Vec<usize> = ivf
            .search(q, 10, |_| true)
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(got, truth);
        // Filters, adds after training, removals.
        let odd: Vec<usize> = ivf
            .search(q, 10, |k| k % 2 == 1)
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert!(odd.iter().all(|k| k % 2 == 1) && odd.len() == 10);
        assert!(ivf.add(9_999, q));
        assert_eq!(ivf.search(q, 1, |_| true)[0].key, 9_999);
        ivf.remove_where(|k| *k == 9_999 || *k < 2_000);
        assert_eq!(ivf.len(), 2_000);
        let after = ivf.search(q, 10, |_| true);
        assert!(
            after.iter().all(|s| s.key >= 2_000 && s.key != 9_999),
            "{:?}",
            after.len()
        );
        assert!(!ivf.add(1, &[0.0; 32]), "a zero vector has no direction");
    }
}
