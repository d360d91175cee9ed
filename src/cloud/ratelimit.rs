//! A client-side token-bucket rate limiter keyed by (access key id, region).
//!
//! Each key gets a bucket of `burst` tokens refilled at `qps` per second. A caller that finds
//! the bucket empty reserves a token (the count goes negative) and sleeps until it is due, so
//! waiting is async and waiters are served in arrival order. [`RateLimiter::slow_down`]
//! halves a bucket's rate when the API throttles; the rate then doubles back every
//! `recovery` until it is whole again. Time is tokio's, so tests can pause it.
//!
//! Reads are background work: while writes are queued (a write had to wait within the last
//! couple of seconds), reads pass a narrower gate first and get at most `read_share` of the
//! rate, so a mass create or delete is not slowed by the status polling it causes. When no
//! write waits, reads use the whole rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Settings of the limiter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained calls per second per (access key id, region).
    pub qps: f64,
    /// Calls that may go at once after a quiet period.
    pub burst: u32,
    /// After a slow-down, the time for the rate to double back (up to `qps`).
    pub recovery: Duration,
    /// The rate never drops below `qps * min_factor`.
    pub min_factor: f64,
    /// Share of the rate left to reads while writes are queued (0 < share ≤ 1).
    pub read_share: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            qps: 10.0,
            burst: 20,
            recovery: Duration::from_secs(30),
            min_factor: 1.0 / 32.0,
            read_share: 0.1,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_refill: Instant,
    /// Rate factor right after the last slow-down.
    factor_base: f64,
    /// When the last slow-down happened.
    factor_since: Instant,
    /// Tokens of the reads' gate (at most one), used while writes are queued.
    read_tokens: f64,
    read_last_refill: Instant,
    /// When a write last had to wait for its token.
    write_queued_at: Option<Instant>,
}

impl Bucket {
    fn factor(&self, cfg: &RateLimitConfig, now: Instant) -> f64 {
        if self.factor_base >= 1.0 {
            return 1.0;
        }
        let recovery = cfg.recovery.as_secs_f64().max(1e-3);
        let doublings = now
            .saturating_duration_since(self.factor_since)
            .as_secs_f64()
            / recovery;
        (self.factor_base * doublings.exp2()).min(1.0)
    }

    fn refill(&mut self, cfg: &RateLimitConfig, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        let rate = cfg.qps * self.factor(cfg, now);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(cfg.burst.max(1)));
        self.last_refill = now;
    }
}

type Key = (String, String);

/// Token buckets keyed by (access key id, region), shared by all clones of a client.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// Buckets kept before idle, full ones are dropped.
const MAX_IDLE_BUCKETS: usize = 1024;

impl RateLimiter {
    /// A limiter with these settings (`qps` and `burst` are raised to sane minimums).
    pub fn new(cfg: RateLimitConfig) -> Self {
        let cfg = RateLimitConfig {
            qps: if cfg.qps.is_finite() && cfg.qps > 0.0 {
                cfg.qps
            } else {
                1.0
            },
            burst: cfg.burst.max(1),
            recovery: cfg.recovery,
            min_factor: cfg.min_factor.clamp(1e-6, 1.0),
            read_share: if cfg.read_share.is_finite() {
                cfg.read_share.clamp(0.01, 1.0)
            } else {
                1.0
            },
        };
        RateLimiter {
            cfg,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RateLimitConfig {
        &self.cfg
    }

    fn with_bucket<R>(
        &self,
        access_key_id: &str,
        region: &str,
        f: impl FnOnce(&mut Bucket, Instant) -> R,
    ) -> R {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_IDLE_BUCKETS {
            let cfg = self.cfg;
            buckets.retain(|_, b| {
                b.refill(&cfg, now);
                b.tokens < f64::from(cfg.burst) || b.factor(&cfg, now) < 1.0
            });
        }
        let bucket = buckets
            .entry((access_key_id.to_owned(), region.to_owned()))
            .or_insert_with(|| Bucket {
                tokens: f64::from(self.cfg.burst),
                last_refill: now,
                factor_base: 1.0,
                factor_since: now,
                read_tokens: 1.0,
                read_last_refill: now,
                write_queued_at: None,
            });
        bucket.refill(&self.cfg, now);
        f(bucket, now)
    }

    /// Takes a token for a write (or any call of unknown kind) on (access key id, region),
    /// sleeping until one is available. Returns how long the caller waited.
    pub async fn acquire(&self, access_key_id: &str, region: &str) -> Duration {
        let wait = self.with_bucket(access_key_id, region, |b, now| {
            let wait = self.reserve(b, now);
            if !wait.is_zero() {
                b.write_queued_at = Some(now);
            }
            wait
        });
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Takes a token for a read: while writes are queued, first through the reads' gate
    /// (`read_share` of the rate), then from the shared bucket. Returns how long the caller
    /// waited in all.
    pub async fn acquire_read(&self, access_key_id: &str, region: &str) -> Duration {
        let cfg = self.cfg;
        let gate = self.with_bucket(access_key_id, region, |b, now| {
            let rate = cfg.qps * b.factor(&cfg, now) * cfg.read_share;
            let elapsed = now
                .saturating_duration_since(b.read_last_refill)
                .as_secs_f64();
            b.read_tokens = (b.read_tokens + elapsed * rate).min(1.0);
            b.read_last_refill = now;
            // Writes are "queued" if one waited within the time two of them take.
            let window = Duration::from_secs_f64((2.0 / cfg.qps).max(2.0));
            let pressure = b
                .write_queued_at
                .is_some_and(|t| now.saturating_duration_since(t) <= window);
            if !pressure {
                return Duration::ZERO;
            }
            b.read_tokens -= 1.0;
            if b.read_tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64((-b.read_tokens / rate).min(3600.0))
            }
        });
        if !gate.is_zero() {
            tokio::time::sleep(gate).await;
        }
        let wait = self.with_bucket(access_key_id, region, |b, now| self.reserve(b, now));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        gate + wait
    }

    /// Reserves one token of the shared bucket: the wait until it is due.
    fn reserve(&self, b: &mut Bucket, now: Instant) -> Duration {
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            let rate = self.cfg.qps * b.factor(&self.cfg, now);
            Duration::from_secs_f64((-b.tokens / rate).min(3600.0))
        }
    }

    /// Halves the rate of (access key id, region), down to `qps * min_factor`; it then
    /// recovers by doubling every `recovery`.
    pub fn slow_down(&self, access_key_id: &str, region: &str) {
        let cfg = self.cfg;
        self.with_bucket(access_key_id, region, |b, now| {
            let current = b.factor(&cfg, now);
            b.factor_base = (current / 2.0).max(cfg.min_factor);
            b.factor_since = now;
            // Tokens saved up at the old rate would defeat the slow-down.
            b.tokens = b.tokens.min(1.0);
        });
    }

    /// The current refill rate (calls per second) of (access key id, region).
    pub fn current_rate(&self, access_key_id: &str, region: &str) -> f64 {
        let cfg = self.cfg;
        self.with_bucket(access_key_id, region, |b, now| {
            cfg.qps * b.factor(&cfg, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limiter(qps: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            qps,
            burst,
            recovery: Duration::from_secs(10),
            min_factor: 1.0 / 8.0,
            read_share: 0.25,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let l = limiter(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.acquire("ak", "r").await, Duration::ZERO);
        }
        assert_eq!(Instant::now(), start);
        // The next ones come every 500 ms.
        let waited = l.acquire("ak", "r").await;
        assert_eq!(waited, Duration::from_millis(500));
        l.acquire("ak", "r").await;
        assert_eq!(Instant::now() - start, Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent() {
        let l = limiter(1.0, 1);
        assert_eq!(l.acquire("ak1", "r1").await, Duration::ZERO);
        assert_eq!(l.acquire("ak2", "r1").await, Duration::ZERO);
        assert_eq!(l.acquire("ak1", "r2").await, Duration::ZERO);
        assert_eq!(l.acquire("ak1", "r1").await, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spaced_out() {
        let l = Arc::new(limiter(4.0, 1));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire("ak", "r").await;
                Instant::now() - start
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        done.sort();
        let expected: Vec<_> = (0..5).map(|i| Duration::from_millis(250 * i)).collect();
        assert_eq!(done, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn refill_is_capped_at_burst() {
        let l = limiter(10.0, 2);
        l.acquire("ak", "r").await;
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.acquire("ak", "r").await, Duration::ZERO);
        assert_eq!(l.acquire("ak", "r").await, Duration::ZERO);
        assert_eq!(l.acquire("ak", "r").await, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_halves_then_recovers_gradually() {
        let l = limiter(8.0, 1);
        assert_eq!(l.current_rate("ak", "r"), 8.0);
        l.slow_down("ak", "r");
        assert_eq!(l.current_rate("ak", "r"), 4.0);
        l.slow_down("ak", "r");
        assert_eq!(l.current_rate("ak", "r"), 2.0);
        // Floor at qps * min_factor = 1.
        l.slow_down("ak", "r");
        l.slow_down("ak", "r");
        assert_eq!(l.current_rate("ak", "r"), 1.0);
        // Other keys are untouched.
        assert_eq!(l.current_rate("ak", "other"), 8.0);
        // Doubles every 10 s: 1 → 2 → 4 → 8 (capped).
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!((l.current_rate("ak", "r") - 2.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(5)).await;
        let mid = l.current_rate("ak", "r");
        assert!(mid > 2.0 && mid < 4.0, "{mid}");
        tokio::time::advance(Duration::from_secs(25)).await;
        assert_eq!(l.current_rate("ak", "r"), 8.0);
    }

    #[tokio::test(start_paused = true)]
    async fn slowed_bucket_makes_callers_wait_longer() {
        let l = limiter(10.0, 1);
        l.acquire("ak", "r").await;
        l.slow_down("ak", "r");
        // Rate 5/s: the next token takes 200 ms, not 100 ms.
        assert_eq!(l.acquire("ak", "r").await, Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_get_their_share_only_while_writes_are_queued() {
        let l = Arc::new(limiter(4.0, 1));
        // Alone, reads use the whole rate: 8 reads take 7 × 250 ms after the burst of one.
        let start = Instant::now();
        for _ in 0..8 {
            l.acquire_read("ak", "r").await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(1750));

        // Now writes queue continuously for 10 s (40 of them at 4/s) while a reader loops:
        // it gets at most a quarter of the rate (1/s), and the writes most of the rest.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        let writer = {
            let l = l.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    l.acquire("ak", "r").await;
                }
                Instant::now()
            })
        };
        tokio::task::yield_now().await;
        let mut reads = 0;
        while Instant::now() - start < Duration::from_secs(10) {
            l.acquire_read("ak", "r").await;
            reads += 1;
        }
        let writes_done = writer.await.expect("writer");
        assert!(
            (8..=12).contains(&reads),
            "{reads} reads in 10 s under write pressure"
        );
        // 40 writes plus ~10 reads at 4/s: the writes finish within ~12.5 s.
        assert!(
            writes_done - start <= Duration::from_millis(13_000),
            "writes took {:?}",
            writes_done - start
        );
    }

    #[test]
    fn nonsense_settings_are_sanitised() {
        let l = RateLimiter::new(RateLimitConfig {
            qps: f64::NAN,
            burst: 0,
            ..Default::default()
        });
        assert_eq!(l.config().qps, 1.0);
        assert_eq!(l.config().burst, 1);
    }
}
