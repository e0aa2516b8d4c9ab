//! Backoff between retries of a throttled or failed HTTP call.
//!
//! Delays come from configuration so tests run with milliseconds; a server's
//! `retry-after` is obeyed but never beyond the configured maximum.

use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// No delay is longer than this, whatever the server asks.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)));
        retry_after.unwrap_or(doubled).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// `delay` shortened by up to a quarter at random, so clients that failed together do not
/// retry together. The randomness is the std hasher's per-process keys: no crate needed.
pub fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(delay.as_nanos());
    let quarter = delay / 4;
    let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
    let cut = hasher.finish().checked_rem(nanos.max(1)).unwrap_or(0);
    delay.saturating_sub(Duration::from_nanos(cut))
}

/// Seconds from a `retry-after` header (the delay-seconds form; dates are ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_shortens_a_delay_by_at_most_a_quarter() {
        for _ in 0..100 {
            let delay = jittered(Duration::from_millis(800));
            assert!(delay <= Duration::from_millis(800));
            assert!(delay >= Duration::from_millis(600));
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn delays_double_and_are_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, None), Duration::from_millis(500));
        assert_eq!(policy.delay(2, None), Duration::from_secs(2));
        assert_eq!(policy.delay(10, None), Duration::from_secs(8));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(8)
        );
        assert_eq!(
            policy.delay(3, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }
}
