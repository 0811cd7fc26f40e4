//! Vector search at 10k, 100k and 1M passages of 384 dimensions (MiniLM's length): the exact
//! scan and the sketched index the server uses from 20,000 vectors on, with its recall@10
//! against the exact scan. Vectors are synthetic and clustered (passages of one
//! document lie near each other, as real embeddings do) from a fixed seed.
//! `cargo bench -p frontdesk-knowledge --bench index` prints a Markdown table;
//! `INDEX_BENCH_SIZES=10000,100000` runs fewer sizes; `INDEX_BENCH_CANDIDATES=200,1000`
//! also measures those numbers of exactly scored candidates beside the default.
//! `INDEX_BENCH_VECTORS=FILE` (little-endian f32, 384 per vector: real embeddings) measures
//! recall on them instead: 200 of them as queries, each against the others.

#![allow(clippy::print_stdout, clippy::expect_used)] // A bench prints its table, and stops on a bad file.

use std::time::Instant;

use frontdesk_knowledge::{FlatIndex, VectorIndex};

const DIMENSIONS: usize = 384;
const QUERIES: usize = 200;
const K: usize = 10;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Roughly normal (the sum of four uniforms, centred).
    fn normal(&mut self) -> f32 {
        (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum::<f32>()
            - 2.0
    }
}

/// `n` vectors around `n / 20` centres (documents of 20 passages).
fn clustered(n: usize, centres: &[Vec<f32>], rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let centre = &centres[(rng.next() % centres.len() as u64) as usize];
            centre.iter().map(|c| c + 0.8 * rng.normal()).collect()
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("INDEX_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let extra_candidates: Vec<usize> = std::env::var("INDEX_BENCH_CANDIDATES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    if let Ok(path) = std::env::var("INDEX_BENCH_VECTORS") {
        return real(&path, &extra_candidates);
    }
    println!("| passages | index | build s | memory MiB | p50 ms | p99 ms | recall@10 vs exact |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for n in sizes {
        let mut rng = Rng(0x5EED_1234_ABCD_0001 ^ n as u64);
        let centres: Vec<Vec<f32>> = (0..(n / 20).max(1))
            .map(|_| (0..DIMENSIONS).map(|_| rng.normal()).collect())
            .collect();
        let vectors = clustered(n, &centres, &mut rng);
        let queries = clustered(QUERIES, &centres, &mut rng);
        let started = Instant::now();
        let mut exact = FlatIndex::new(DIMENSIONS);
        for (i, v) in vectors.iter().enumerate() {
            exact.add(i as u32, v);
        }
        let exact_build = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut sketched = VectorIndex::new(DIMENSIONS);
        for (i, v) in vectors.iter().enumerate() {
            sketched.add(i as u32, v);
        }
        if !sketched.is_sketched() {
            sketched.sketch_all();
        }
        let sketched_build = started.elapsed().as_secs_f64();
        drop(vectors);
        let mut truths = Vec::with_capacity(QUERIES);
        let mut times = Vec::with_capacity(QUERIES);
        for q in &queries {
            let t = Instant::now();
            let found = exact.search(q, K, |_| true);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            truths.push(found.into_iter().map(|s| s.key).collect::<Vec<_>>());
        }
        times.sort_by(f64::total_cmp);
        let exact_memory = (n * DIMENSIONS * 4 + n * 4) as f64 / (1024.0 * 1024.0);
        println!(
            "| {n} | exact | {exact_build:.1} | {exact_memory:.0} | {:.2} | {:.2} | 1 |",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
        for candidates in std::iter::once(0).chain(extra_candidates.iter().copied()) {
            sketched.set_candidates(candidates);
            let mut times = Vec::with_capacity(QUERIES);
            let mut found = 0;
            for (q, truth) in queries.iter().zip(&truths) {
                let t = Instant::now();
                let got = sketched.search(q, K, |_| true);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                found += got.iter().filter(|s| truth.contains(&s.key)).count();
            }
            times.sort_by(f64::total_cmp);
            let label = match candidates {
                0 => "sketch".to_owned(),
                n => format!("sketch, {n} candidates"),
            };
            println!(
                "| {n} | {label} | {sketched_build:.1} | {:.0} | {:.2} | {:.2} | {:.3} |",
                sketched.memory() as f64 / (1024.0 * 1024.0),
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                found as f64 / (QUERIES * K) as f64
            );
        }
    }
}

/// Recall of the sketched search on real embeddings: every 200th-ish vector asks for its ten
/// nearest others, against the exact scan.
fn real(path: &str, candidates: &[usize]) {
    let bytes = std::fs::read(path).expect("INDEX_BENCH_VECTORS names a file of f32 vectors");
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let vectors: Vec<&[f32]> = floats.chunks_exact(DIMENSIONS).collect();
    let n = vectors.len();
    let mut exact = FlatIndex::new(DIMENSIONS);
    let mut sketched = VectorIndex::new(DIMENSIONS);
    for (i, v) in vectors.iter().enumerate() {
        exact.add(i as u32, v);
        sketched.add(i as u32, v);
    }
    sketched.sketch_all();
    let step = (n / QUERIES).max(1);
    let queries: Vec<u32> = (0..n)
        .step_by(step)
        .take(QUERIES)
        .map(|i| i as u32)
        .collect();
    println!("| real vectors | candidates | share of the corpus | recall@10 vs exact |");
    println!("|---:|---:|---:|---:|");
    let mut all = vec![0];
    all.extend_from_slice(candidates);
    for count in all {
        sketched.set_candidates(count);
        let mut found = 0;
        for &q in &queries {
            let query = vectors[q as usize];
            let truth: Vec<u32> = exact
                .search(query, K + 1, |k| *k != q)
                .into_iter()
                .take(K)
                .map(|s| s.key)
                .collect();
            let got = sketched.search(query, K, |k| *k != q);
            found += got.iter().filter(|s| truth.contains(&s.key)).count();
        }
        let shown = if count == 0 {
            (K * 64).max(n / 1_000)
        } else {
            count
        };
        println!(
            "| {n} | {shown} | {:.1}% | {:.3} |",
            100.0 * shown as f64 / n as f64,
            found as f64 / (queries.len() * K) as f64
        );
    }
}
