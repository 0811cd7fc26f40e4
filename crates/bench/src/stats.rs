//! Percentiles of latency samples (nearest rank, no interpolation: every reported value is
//! one that was measured).

/// p50, p99 and max of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises samples given in nanoseconds; `None` when there are none.
    pub fn of_nanos(samples: &[i64]) -> Option<Summary> {
        let mut ms: Vec<f64> = samples.iter().map(|&ns| ns as f64 / 1e6).collect();
        ms.sort_by(f64::total_cmp);
        Some(Summary {
            count: ms.len(),
            p50: percentile(&ms, 50.0)?,
            p99: percentile(&ms, 99.0)?,
            max: *ms.last()?,
        })
    }
}

/// The nearest-rank percentile `p` (0–100] of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        for (samples, p, expect) in [
            (&hundred[..], 50.0, Some(50.0)),
            (&hundred[..], 99.0, Some(99.0)),
            (&hundred[..], 100.0, Some(100.0)),
            (&hundred[..], 0.1, Some(1.0)),
            (&[7.0][..], 99.0, Some(7.0)),
            (&[1.0, 2.0][..], 50.0, Some(1.0)),
            (&[1.0, 2.0][..], 99.0, Some(2.0)),
            (&[][..], 50.0, None),
        ] {
            assert_eq!(percentile(samples, p), expect, "p{p} of {samples:?}");
        }
    }

    #[test]
    fn summaries_are_in_milliseconds_and_ignore_order() {
        let summary = Summary::of_nanos(&[3_000_000, 1_000_000, 2_000_000]);
        assert_eq!(
            summary,
            Some(Summary {
                count: 3,
                p50: 2.0,
                p99: 3.0,
                max: 3.0
            })
        );
        assert_eq!(Summary::of_nanos(&[]), None);
    }
}
