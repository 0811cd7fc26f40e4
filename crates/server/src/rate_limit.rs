//! Per-key rate limits: a token bucket per API key, refilled continuously.
//!
//! The buckets live in this process. With several instances each enforces its share;
//! sharing counters through Redis is the scale-out issue's work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this many are pruned of full (idle) ones.
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    per_second: f64,
    capacity: f64,
    updated: Instant,
}

#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
    /// The size at which idle buckets are pruned next: twice what a pruning left, so pruning
    /// costs O(1) per check however many buckets stay busy.
    prune_at: usize,
}

/// Token buckets keyed by API key id (or visitor, page, client address).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// Takes one token for `key` with a budget of `per_minute`; `Err(seconds)` says how long
    /// until one is available.
    pub fn check(&self, key: &str, per_minute: u32) -> Result<(), u64> {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let buckets = &mut *buckets;
        if buckets.map.len() > buckets.prune_at.max(PRUNE_AT) {
            // A bucket that has refilled to its capacity is the same as no bucket.
            buckets.map.retain(|_, bucket| {
                let elapsed = now.duration_since(bucket.updated).as_secs_f64();
                bucket.tokens + elapsed * bucket.per_second < bucket.capacity
            });
            buckets.prune_at = buckets.map.len() * 2;
        }
        let bucket = buckets.map.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            per_second,
            capacity,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        // A key whose limit changed takes its new limit at once.
        bucket.per_second = per_second;
        bucket.capacity = capacity;
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }

    /// Whether `key` has a token left, without taking it (a key never seen has); `Err(seconds)`
    /// says how long until it has one.
    pub fn peek(&self, key: &str) -> Result<(), u64> {
        let buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(bucket) = buckets.map.get(key) else {
            return Ok(());
        };
        let elapsed = Instant::now().duration_since(bucket.updated).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * bucket.per_second).min(bucket.capacity);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - tokens) / bucket.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_refuses_with_a_wait() {
        let limiter = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(limiter.check("key_a", 3), Ok(()));
        }
        let wait = limiter.check("key_a", 3).err().unwrap_or(0);
        assert!((1..=20).contains(&wait), "{wait}");
        // Other keys have their own bucket.
        assert_eq!(limiter.check("key_b", 3), Ok(()));
    }

    #[test]
    fn peeking_takes_nothing() {
        let limiter = RateLimiter::default();
        assert_eq!(limiter.peek("new"), Ok(()));
        assert_eq!(limiter.check("k", 2), Ok(()));
        assert_eq!(limiter.peek("k"), Ok(()));
        assert_eq!(limiter.check("k", 2), Ok(()));
        assert!(limiter.peek("k").is_err());
        assert!(limiter.peek("k").is_err(), "peeking did not refill it");
    }

    #[test]
    fn idle_buckets_are_pruned_and_busy_ones_kept() {
        let limiter = RateLimiter::default();
        // Busy: a bucket with a budget of one, used.
        assert_eq!(limiter.check("busy", 1), Ok(()));
        for n in 0..=PRUNE_AT {
            // Idle at once: a budget far above one request refills within the check.
            let _ = limiter.check(&format!("idle{n}"), u32::MAX);
        }
        let buckets = limiter.buckets.lock().unwrap();
        assert!(buckets.map.len() < 10, "{}", buckets.map.len());
        assert!(buckets.map.contains_key("busy"));
    }
}
