//! One hop of the token path timed from inside frontdesk: its `/metrics` histogram
//! `frontdesk_run_event_wait_seconds` (from a run showing an event to the client's connection
//! taking it), read before and after a level, so the report can tell how much of the added
//! latency that hop explains.

use std::fmt::Write as _;

/// The histogram frontdesk exports.
const METRIC: &str = "frontdesk_run_event_wait_seconds";

/// A histogram as Prometheus shows it: cumulative counts by upper bound (seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    /// Reads the histogram out of a `/metrics` page; `None` when the page has none.
    pub fn parse(page: &str) -> Option<Self> {
        let mut histogram = Histogram::default();
        let mut seen = false;
        for line in page.lines().filter(|l| l.starts_with(METRIC)) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Some(name) = name.strip_prefix(METRIC) else {
                continue;
            };
            if let Some(bound) = name
                .strip_prefix("_bucket{le=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
            {
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                histogram.buckets.push((bound, value.parse().ok()?));
            } else if name == "_count" {
                histogram.count = value.parse().ok()?;
            } else if name == "_sum" {
                histogram.sum = value.parse().ok()?;
            } else {
                continue;
            }
            seen = true;
        }
        histogram.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        seen.then_some(histogram)
    }

    /// What was added between `before` and this reading (a bucket missing before counts
    /// from zero).
    pub fn since(&self, before: &Histogram) -> Histogram {
        let earlier = |bound: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |(_, n)| *n)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, n)| (bound, n.saturating_sub(earlier(bound))))
                .collect(),
            count: self.count.saturating_sub(before.count),
            sum: self.sum - before.sum,
        }
    }

    /// The share of observations above `bound` seconds (a bound the buckets have).
    pub fn share_above(&self, bound: f64) -> Option<f64> {
        let (_, within) = self.buckets.iter().find(|(b, _)| *b == bound)?;
        (self.count > 0).then(|| 1.0 - *within as f64 / self.count as f64)
    }

    /// The smallest bucket bound that holds at least `q` of the observations: an upper
    /// bound on the quantile.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let needed = (q * self.count as f64).ceil() as u64;
        (self.count > 0)
            .then(|| self.buckets.iter().find(|(_, n)| *n >= needed))
            .flatten()
            .map(|(bound, _)| *bound)
    }

    /// One line for the report: events, mean, p99 bound and the shares over 0.5, 1 and 2 ms.
    pub fn summary(&self) -> String {
        if self.count == 0 {
            return "no events".to_owned();
        }
        let mut out = format!(
            "{} events, mean {:.3} ms",
            self.count,
            self.sum / self.count as f64 * 1e3
        );
        match self.quantile_bound(0.99) {
            Some(p99) if p99.is_finite() => {
                let _ = write!(out, ", p99 ≤ {} ms", p99 * 1e3);
            }
            Some(_) => {
                let top = self
                    .buckets
                    .iter()
                    .map(|(b, _)| *b)
                    .filter(|b| b.is_finite());
                let _ = write!(out, ", p99 > {} ms", top.fold(0.0, f64::max) * 1e3);
            }
            None => {}
        }
        for bound in [0.0005, 0.001, 0.002] {
            if let Some(share) = self.share_above(bound) {
                let _ = write!(out, ", {:.3}% over {} ms", share * 100.0, bound * 1e3);
            }
        }
        out
    }
}

/// Reads frontdesk's histogram at `base_url`: `Ok(None)` when its page has none yet.
pub async fn read(http: &reqwest::Client, base_url: &str) -> anyhow::Result<Option<Histogram>> {
    let page = http
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Histogram::parse(&page))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn page(counts: [u64; 3], sum: f64) -> String {
        format!(
            "# TYPE frontdesk_run_event_wait_seconds histogram\n\
             frontdesk_run_event_wait_seconds_bucket{{le=\"0.001\"}} {}\n\
             frontdesk_run_event_wait_seconds_bucket{{le=\"0.0005\"}} {}\n\
             frontdesk_run_event_wait_seconds_bucket{{le=\"+Inf\"}} {}\n\
             frontdesk_run_event_wait_seconds_sum {sum}\n\
             frontdesk_run_event_wait_seconds_count {}\n\
             http_requests_total{{route=\"/x\"}} 4\n",
            counts[1], counts[0], counts[2], counts[2]
        )
    }

    #[test]
    fn a_level_is_what_was_added_during_it() {
        let before = Histogram::parse(&page([10, 10, 10], 0.001)).unwrap();
        let after = Histogram::parse(&page([100, 108, 110], 0.051)).unwrap();
        let level = after.since(&before);
        assert_eq!(level.count, 100);
        assert_eq!(
            level.buckets,
            vec![(0.0005, 90), (0.001, 98), (f64::INFINITY, 100)]
        );
        assert!((level.sum - 0.05).abs() < 1e-9);
        assert!((level.share_above(0.0005).unwrap() - 0.10).abs() < 1e-9);
        assert!((level.share_above(0.001).unwrap() - 0.02).abs() < 1e-9);
        assert_eq!(level.quantile_bound(0.9), Some(0.0005));
        assert_eq!(level.quantile_bound(0.98), Some(0.001));
        assert_eq!(level.quantile_bound(0.99), Some(f64::INFINITY));
        assert!(
            level
                .summary()
                .starts_with("100 events, mean 0.500 ms, p99 > 1 ms, 10.000% over 0.5 ms"),
            "{}",
            level.summary()
        );
    }

    #[test]
    fn a_page_without_the_histogram_has_none() {
        assert_eq!(Histogram::parse("http_requests_total 3\n"), None);
        assert_eq!(
            Histogram::parse(&page([0, 0, 0], 0.0)).unwrap().summary(),
            "no events"
        );
    }
}
