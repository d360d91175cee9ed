//! The emulator's clock: wall time at start plus tokio's monotonic time (so a test with paused
//! tokio time moves it too), plus a manual offset ([`Clock::advance`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The time source of every status transition, token retention and timestamp check.
#[derive(Debug)]
pub struct Clock {
    base_wall: Timestamp,
    base: tokio::time::Instant,
    offset_ms: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock reading the current wall time.
    pub fn new() -> Self {
        Self {
            base_wall: Timestamp::now(),
            base: tokio::time::Instant::now(),
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        let elapsed =
            self.base.elapsed() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed));
        add(self.base_wall, elapsed)
    }

    /// Moves the clock forward (status delays, token retention; note that signed requests
    /// then need timestamps within the window of the advanced clock).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// `ts + d`, saturating at the end of time.
pub fn add(ts: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now() {
        let clock = Clock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after.duration_since(before) >= SignedDuration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_moves_the_clock() {
        let clock = Clock::new();
        let before = clock.now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let delta = clock.now().duration_since(before);
        assert!(delta >= SignedDuration::from_secs(10), "{delta:?}");
    }
}
