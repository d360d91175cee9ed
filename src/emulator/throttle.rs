//! Per-access-key QPS limit (a token bucket holding one second of calls).

use std::collections::HashMap;

use jiff::Timestamp;

/// Token buckets by access key id.
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    buckets: HashMap<String, (f64, Timestamp)>,
}

impl Throttle {
    /// Takes one token for `key` at `now`; `false` means the call is over the limit.
    pub fn allow(&mut self, key: &str, qps: u32, now: Timestamp) -> bool {
        let rate = f64::from(qps.max(1));
        let (tokens, last) = self.buckets.entry(key.to_owned()).or_insert((rate, now));
        let elapsed = now.duration_since(*last).as_secs_f64().max(0.0);
        *tokens = (*tokens + elapsed * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets all buckets.
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn allows_qps_per_second_per_key() {
        let mut t = Throttle::default();
        let now = Timestamp::UNIX_EPOCH;
        assert!((0..5).all(|_| t.allow("a", 5, now)));
        assert!(!t.allow("a", 5, now));
        // Another key has its own bucket.
        assert!(t.allow("b", 5, now));
        // 200 ms later one token is back.
        let later = now + SignedDuration::from_millis(200);
        assert!(t.allow("a", 5, later));
        assert!(!t.allow("a", 5, later));
    }
}
