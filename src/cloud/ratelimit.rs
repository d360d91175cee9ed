//! The client-side rate limiter, shaped like the cloud's API quotas.
//!
//! Alibaba Cloud defines a quota per OpenAPI operation: "the maximum number of calls allowed
//! for a specific OpenAPI operation … within a given time window" (Quota Center > API Rate
//! Limits, e.g. `200/60 s`, `5/1 s`). So the limiter keeps one budget per **(principal,
//! operation)** ([`QuotaModel::PerOperation`], the default), where the principal is the
//! account the access key belongs to (learned from `GetCallerIdentity`, see
//! [`RateLimiter::bind_account`]) or, until that is known, the access key itself. Whether a
//! quota spans regions is not documented, so by default a budget does
//! ([`QuotaScope::Account`]): three regions never send three times the quota.
//! [`QuotaModel::Shared`] keeps one budget per principal for every operation (the model of
//! one account-wide rate); only there do reads pass the `read_share` gate while writes queue.
//!
//! Each budget is `calls` per `window` ([`Rate`]) and enforces two things:
//! - a **window log** of the calls granted: a call holds its place from its grant until a
//!   `window` (plus `window_margin`) after **its answer came back**, and a new call is
//!   granted only while fewer than `calls` places are held. The server counts a call when it
//!   arrives, some time between the grant here and the answer there, so whatever the network
//!   and scheduling delays, no `window`-long span of arrivals holds more than `calls` calls:
//!   within the quota whether the server counts in a sliding window, fixed windows or a
//!   token bucket. (A limit on grant times alone is not: a call delayed on its way lets the
//!   next window's first call land in the same server window.) The price is the answer
//!   time: `calls` per `window + latency`;
//! - a **token bucket** of `burst` tokens refilled at `calls / window`, which spreads a
//!   large window's calls out instead of sending them all at once.
//!
//! A caller that finds no room reserves its slot and sleeps until it is due (async; waiters
//! are served in arrival order); when every place is held by a call still in flight, it
//! waits for an answer. [`RateLimiter::acquire`] returns a [`Permit`] that the caller holds
//! while the call is in flight. [`RateLimiter::slow_down`] halves one budget when the API
//! throttles that operation; it then doubles back every `recovery`. Time is tokio's, so
//! tests can pause it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A quota: `calls` per `window`. Parsed from `20` (per second), `2.5`, `200/60s`, `5/1s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate {
    /// Calls allowed in one window (at least 1).
    pub calls: u32,
    /// The window (at least 1 ms).
    pub window: Duration,
}

impl Rate {
    /// `calls` per `window`.
    pub fn new(calls: u32, window: Duration) -> Self {
        Rate {
            calls: calls.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// A rate in calls per second: whole numbers are `n/1s`; a fraction keeps at least one
    /// call per window (`2.5` is `2/800ms`, `0.5` is `1/2s`). Nonsense becomes `1/1s`.
    pub fn per_second(qps: f64) -> Self {
        if !qps.is_finite() || qps <= 0.0 {
            return Rate::new(1, Duration::from_secs(1));
        }
        if qps.fract() == 0.0 && qps <= f64::from(u32::MAX) {
            return Rate::new(qps as u32, Duration::from_secs(1));
        }
        let calls = qps.floor().clamp(1.0, f64::from(u32::MAX));
        Rate::new(calls as u32, Duration::from_secs_f64(calls / qps))
    }

    /// Calls per second.
    pub fn qps(&self) -> f64 {
        f64::from(self.calls) / self.window.as_secs_f64()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.calls, self.window.as_millis())
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a rate like 20, 2.5, 5/1s or 200/60s");
        match s.split_once('/') {
            None => {
                let qps: f64 = s.parse().map_err(|_| bad())?;
                if !qps.is_finite() || qps <= 0.0 {
                    return Err(bad());
                }
                Ok(Rate::per_second(qps))
            }
            Some((calls, window)) => {
                let calls: u32 = calls.trim().parse().map_err(|_| bad())?;
                let window = crate::duration::parse(window).map_err(|_| bad())?;
                if calls == 0 || window.is_zero() {
                    return Err(bad());
                }
                Ok(Rate::new(calls, window))
            }
        }
    }
}

/// Parses `CreateBgpPeer=10,DescribeBgpPeers=200/60s` (one `Operation=rate` per item).
pub fn parse_operation_rates(s: &str) -> Result<BTreeMap<String, Rate>, String> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (op, rate) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not Operation=rate (e.g. CreateBgpPeer=10)"))?;
        let op = op.trim();
        if op.is_empty() || !op.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{op:?} is not an API operation name"));
        }
        out.insert(op.to_owned(), rate.parse()?);
    }
    Ok(out)
}

/// How the quotas the limiter respects are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaModel {
    /// One budget per operation (the documented model).
    #[default]
    PerOperation,
    /// One budget for every operation; reads get `read_share` of it while writes queue.
    Shared,
}

impl FromStr for QuotaModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "per-operation" | "per_operation" | "operation" => Ok(QuotaModel::PerOperation),
            "shared" => Ok(QuotaModel::Shared),
            other => Err(format!(
                "unknown quota model {other:?} (per-operation or shared)"
            )),
        }
    }
}

/// Where a budget applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaScope {
    /// One budget per account across all regions (safe when the scope is unknown).
    #[default]
    Account,
    /// One budget per account and region.
    Region,
}

impl FromStr for QuotaScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "account" => Ok(QuotaScope::Account),
            "region" | "account-region" | "account_region" => Ok(QuotaScope::Region),
            other => Err(format!("unknown quota scope {other:?} (account or region)")),
        }
    }
}

/// Whether a call only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Describe*, GetCallerIdentity.
    Read,
    /// Create/Modify/Delete (or any call of unknown kind).
    Write,
}

/// Settings of the limiter.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Calls per second of every operation without its own entry in `operations` (per
    /// principal and operation; with [`QuotaModel::Shared`], for all operations together).
    pub qps: f64,
    /// Per-operation budgets (e.g. `CreateBgpPeer` → `10/1s`); per-operation model only.
    pub operations: BTreeMap<String, Rate>,
    /// Calls that may go at once after a quiet period (never more than a window's calls).
    pub burst: u32,
    /// Per operation or one shared budget.
    pub model: QuotaModel,
    /// Per account, or per account and region.
    pub scope: QuotaScope,
    /// Added to every window after a call's answer (clock granularity between here and the
    /// server; the answer time already bounds the arrival time).
    pub window_margin: Duration,
    /// After a slow-down, the time for the rate to double back (up to the configured rate).
    pub recovery: Duration,
    /// The rate never drops below `rate * min_factor`.
    pub min_factor: f64,
    /// Shared model only: share of the rate left to reads while writes are queued.
    pub read_share: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            qps: 10.0,
            operations: BTreeMap::new(),
            burst: 20,
            model: QuotaModel::PerOperation,
            scope: QuotaScope::Account,
            window_margin: Duration::from_millis(10),
            recovery: Duration::from_secs(30),
            min_factor: 1.0 / 32.0,
            read_share: 0.1,
        }
    }
}

impl RateLimitConfig {
    /// The budget of `action` under this configuration.
    pub fn rate_of(&self, action: &str) -> Rate {
        match self.model {
            QuotaModel::PerOperation => self
                .operations
                .get(action)
                .copied()
                .unwrap_or_else(|| Rate::per_second(self.qps)),
            QuotaModel::Shared => Rate::per_second(self.qps),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    last_refill: Instant,
    /// The calls that may still count in the server's window: reserved, in flight, or
    /// answered less than a window ago; in grant order.
    log: VecDeque<Grant>,
    /// The latest grant (reservations may lie in the future): grants are in arrival order.
    last_slot: Option<Instant>,
    /// Id of the next grant.
    next_id: u64,
    /// Rate factor right after the last slow-down.
    factor_base: f64,
    /// When the last slow-down happened.
    factor_since: Instant,
    /// Tokens of the reads' gate (at most one), used while writes are queued (shared model).
    read_tokens: f64,
    read_last_refill: Instant,
    /// When a write last had to wait for its slot.
    write_queued_at: Option<Instant>,
}

impl Bucket {
    fn new(rate: Rate, burst: u32, now: Instant) -> Self {
        Bucket {
            rate,
            tokens: f64::from(burst.min(rate.calls)),
            last_refill: now,
            log: VecDeque::new(),
            last_slot: None,
            next_id: 0,
            factor_base: 1.0,
            factor_since: now,
            read_tokens: 1.0,
            read_last_refill: now,
            write_queued_at: None,
        }
    }

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

    fn capacity(&self, cfg: &RateLimitConfig) -> f64 {
        f64::from(cfg.burst.min(self.rate.calls).max(1))
    }

    fn refill(&mut self, cfg: &RateLimitConfig, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        let rate = self.rate.qps() * self.factor(cfg, now);
        self.tokens = (self.tokens + elapsed * rate).min(self.capacity(cfg));
        self.last_refill = now;
    }

    /// The window a call holds its place for after its answer, stretched while slowed down.
    fn window(&self, cfg: &RateLimitConfig, factor: f64) -> Duration {
        secs((self.rate.window + cfg.window_margin).as_secs_f64() / factor)
    }

    /// Reserves the next slot, or `None` when every place of the window is held by a call
    /// still in flight (the caller waits for an answer and tries again).
    fn reserve(&mut self, cfg: &RateLimitConfig, now: Instant) -> Option<(u64, Duration)> {
        let factor = self.factor(cfg, now);
        let window = self.window(cfg, factor);
        self.forget_answered(now, window);
        let calls = self.rate.calls as usize;
        let mut slot = now;
        if self.log.len() >= calls {
            // Places free as answered calls leave the window: the earliest slot is when
            // enough of them have, counting calls in flight as holding theirs.
            let mut answered: Vec<Instant> = self.log.iter().filter_map(|g| g.answered).collect();
            let must_leave = self.log.len() + 1 - calls;
            if answered.len() < must_leave {
                return None;
            }
            answered.sort_unstable();
            slot = slot.max(answered[must_leave - 1] + window);
        }
        self.tokens -= 1.0;
        if self.tokens < 0.0 {
            slot = slot.max(now + secs((-self.tokens) / (self.rate.qps() * factor)));
        }
        if let Some(last) = self.last_slot {
            slot = slot.max(last);
        }
        self.last_slot = Some(slot);
        let id = self.next_id;
        self.next_id += 1;
        self.log.push_back(Grant { id, answered: None });
        Some((id, slot.saturating_duration_since(now)))
    }

    /// Drops the calls answered more than `window` ago: the server has stopped counting them.
    fn forget_answered(&mut self, now: Instant, window: Duration) {
        self.log.retain(|g| {
            g.answered
                .is_none_or(|t| now.saturating_duration_since(t) < window)
        });
    }

    /// The call of grant `id` was answered (or given up) at `now`.
    fn answered(&mut self, id: u64, now: Instant) {
        if let Some(g) = self.log.iter_mut().find(|g| g.id == id) {
            g.answered = Some(now);
        }
    }

    /// Idle and whole: nothing would change if it were forgotten.
    fn is_idle(&self, cfg: &RateLimitConfig, now: Instant) -> bool {
        let window = self.rate.window + cfg.window_margin;
        self.tokens >= self.capacity(cfg)
            && self.factor(cfg, now) >= 1.0
            && self.log.iter().all(|g| {
                g.answered
                    .is_some_and(|t| now.saturating_duration_since(t) > window)
            })
    }
}

/// One granted call in a budget's window log.
#[derive(Debug)]
struct Grant {
    id: u64,
    /// When its answer came back (`None`: reserved or in flight).
    answered: Option<Instant>,
}

/// A granted call: hold it while the call is in flight and drop it when the answer is back
/// (or the call was given up). Until then the call holds its place in the budget's window.
#[derive(Debug)]
#[must_use = "the call holds its place until the permit is dropped"]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    key: Key,
    id: u64,
    waited: Duration,
}

impl Permit<'_> {
    /// How long the limiter made the caller wait.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        if let Some(b) = self
            .limiter
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&self.key)
        {
            b.answered(self.id, now);
        }
        self.limiter.answers.notify_waiters();
    }
}

/// One window of `action`'s budget (the longest a caller waits between two looks).
fn cfg_window(cfg: &RateLimitConfig, action: &str) -> Duration {
    cfg.rate_of(action).window + cfg.window_margin
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// (principal, region or "", operation or "").
type Key = (String, String, String);

/// Budgets keyed by (principal, [region], [operation]), shared by all clones of a client.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: Mutex<HashMap<Key, Bucket>>,
    /// Access key id → account id, from `GetCallerIdentity`.
    accounts: Mutex<HashMap<String, String>>,
    /// Told whenever a call's answer is back (a place of a window may have freed).
    answers: Notify,
}

/// Buckets kept before idle, whole ones are dropped.
const MAX_IDLE_BUCKETS: usize = 1024;
/// Access keys whose account is remembered (temporary STS keys rotate).
const MAX_BOUND_KEYS: usize = 4096;

impl RateLimiter {
    /// A limiter with these settings (rates and `burst` are raised to sane minimums).
    pub fn new(cfg: RateLimitConfig) -> Self {
        let cfg = RateLimitConfig {
            qps: if cfg.qps.is_finite() && cfg.qps > 0.0 {
                cfg.qps
            } else {
                1.0
            },
            burst: cfg.burst.max(1),
            min_factor: cfg.min_factor.clamp(1e-6, 1.0),
            read_share: if cfg.read_share.is_finite() {
                cfg.read_share.clamp(0.01, 1.0)
            } else {
                1.0
            },
            ..cfg
        };
        RateLimiter {
            cfg,
            buckets: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            answers: Notify::new(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RateLimitConfig {
        &self.cfg
    }

    /// Records the account an access key belongs to: its calls then share the account's
    /// budgets with every other key of that account (quotas are per account).
    pub fn bind_account(&self, access_key_id: &str, account_id: &str) {
        if account_id.is_empty() {
            return;
        }
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if accounts.len() >= MAX_BOUND_KEYS && !accounts.contains_key(access_key_id) {
            // Forget an arbitrary one; it is re-bound at its next GetCallerIdentity.
            if let Some(k) = accounts.keys().next().cloned() {
                accounts.remove(&k);
            }
        }
        accounts.insert(access_key_id.to_owned(), account_id.to_owned());
    }

    fn key(&self, access_key_id: &str, region: &str, action: &str) -> Key {
        let principal = self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(access_key_id)
            .map(|a| format!("account:{a}"))
            .unwrap_or_else(|| format!("key:{access_key_id}"));
        let region = match self.cfg.scope {
            QuotaScope::Account => String::new(),
            QuotaScope::Region => region.to_owned(),
        };
        let action = match self.cfg.model {
            QuotaModel::PerOperation => action.to_owned(),
            QuotaModel::Shared => String::new(),
        };
        (principal, region, action)
    }

    fn with_bucket<R>(
        &self,
        access_key_id: &str,
        region: &str,
        action: &str,
        f: impl FnOnce(&mut Bucket, Instant) -> R,
    ) -> R {
        let key = self.key(access_key_id, region, action);
        self.with_key(&key, action, f)
    }

    fn with_key<R>(&self, key: &Key, action: &str, f: impl FnOnce(&mut Bucket, Instant) -> R) -> R {
        let now = Instant::now();
        let cfg = &self.cfg;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_IDLE_BUCKETS {
            buckets.retain(|_, b| {
                b.refill(cfg, now);
                !b.is_idle(cfg, now)
            });
        }
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(cfg.rate_of(action), cfg.burst, now));
        bucket.refill(cfg, now);
        f(bucket, now)
    }

    /// Takes a slot of the budget of `action` for (access key id, region), sleeping until it
    /// is due. Hold the permit while the call is in flight: its place in the window is held
    /// until a window after the permit is dropped.
    pub async fn acquire(
        &self,
        access_key_id: &str,
        region: &str,
        action: &str,
        kind: CallKind,
    ) -> Permit<'_> {
        let gate = if kind == CallKind::Read && self.cfg.model == QuotaModel::Shared {
            self.read_gate(access_key_id, region, action)
        } else {
            Duration::ZERO
        };
        if !gate.is_zero() {
            tokio::time::sleep(gate).await;
        }
        let cfg = &self.cfg;
        let key = self.key(access_key_id, region, action);
        let mut waited = gate;
        loop {
            // Listen before looking, so an answer between the look and the wait is not missed.
            let answer = self.answers.notified();
            tokio::pin!(answer);
            answer.as_mut().enable();
            let reserved = self.with_key(&key, action, |b, now| {
                let reserved = b.reserve(cfg, now);
                if kind == CallKind::Write && reserved.is_none_or(|(_, w)| !w.is_zero()) {
                    b.write_queued_at = Some(now);
                }
                reserved
            });
            match reserved {
                Some((id, wait)) => {
                    // The permit exists before the sleep: if this future is dropped while it
                    // waits, the place is given back (a window later) instead of held forever.
                    let permit = Permit {
                        limiter: self,
                        key,
                        id,
                        waited: waited + wait,
                    };
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    return permit;
                }
                // Every place is held by a call in flight: wait for an answer (or look again
                // after a window, whatever happens).
                None => {
                    let since = Instant::now();
                    let _ = tokio::time::timeout(cfg_window(cfg, action), answer).await;
                    waited += since.elapsed();
                }
            }
        }
    }

    /// Shared model: while writes are queued, a read first passes a gate of `read_share` of
    /// the rate, so a mass create or delete is not slowed by the status polling it causes.
    fn read_gate(&self, access_key_id: &str, region: &str, action: &str) -> Duration {
        let cfg = &self.cfg;
        self.with_bucket(access_key_id, region, action, |b, now| {
            let qps = b.rate.qps();
            let rate = qps * b.factor(cfg, now) * cfg.read_share;
            let elapsed = now
                .saturating_duration_since(b.read_last_refill)
                .as_secs_f64();
            b.read_tokens = (b.read_tokens + elapsed * rate).min(1.0);
            b.read_last_refill = now;
            // Writes are "queued" if one waited within the time two of them take.
            let window = Duration::from_secs_f64((2.0 / qps).max(2.0));
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
                secs(-b.read_tokens / rate)
            }
        })
    }

    /// Halves the budget of `action` for (access key id, region), down to `min_factor` of
    /// it; it then recovers by doubling every `recovery`. Other operations keep their rate.
    pub fn slow_down(&self, access_key_id: &str, region: &str, action: &str) {
        let cfg = &self.cfg;
        self.with_bucket(access_key_id, region, action, |b, now| {
            let current = b.factor(cfg, now);
            b.factor_base = (current / 2.0).max(cfg.min_factor);
            b.factor_since = now;
            // Tokens saved up at the old rate would defeat the slow-down.
            b.tokens = b.tokens.min(1.0);
        });
    }

    /// The current rate (calls per second, before the window margin) of the budget of
    /// `action` for (access key id, region).
    pub fn current_rate(&self, access_key_id: &str, region: &str, action: &str) -> f64 {
        let cfg = &self.cfg;
        self.with_bucket(access_key_id, region, action, |b, now| {
            b.rate.qps() * b.factor(cfg, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const W: CallKind = CallKind::Write;
    const R: CallKind = CallKind::Read;
    const OP: &str = "CreateBgpPeer";

    fn cfg(qps: f64, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            qps,
            burst,
            window_margin: Duration::ZERO,
            recovery: Duration::from_secs(10),
            min_factor: 1.0 / 8.0,
            read_share: 0.25,
            ..RateLimitConfig::default()
        }
    }

    fn limiter(qps: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(cfg(qps, burst))
    }

    #[test]
    fn rates_parse_like_quota_center() {
        assert_eq!(
            "200/60s".parse::<Rate>(),
            Ok(Rate::new(200, Duration::from_secs(60)))
        );
        assert_eq!(
            "5/1 s".parse::<Rate>(),
            Ok(Rate::new(5, Duration::from_secs(1)))
        );
        assert_eq!(
            "20".parse::<Rate>(),
            Ok(Rate::new(20, Duration::from_secs(1)))
        );
        assert_eq!(
            "2.5".parse::<Rate>(),
            Ok(Rate::new(2, Duration::from_millis(800)))
        );
        assert_eq!(
            "0.5".parse::<Rate>(),
            Ok(Rate::new(1, Duration::from_secs(2)))
        );
        for bad in ["", "0", "-1", "x", "5/", "0/1s", "5/0s", "5/1parsec", "NaN"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        let ops = parse_operation_rates("CreateBgpPeer=10, DescribeBgpPeers=200/60s").unwrap();
        assert_eq!(ops["CreateBgpPeer"], Rate::new(10, Duration::from_secs(1)));
        assert_eq!(
            ops["DescribeBgpPeers"],
            Rate::new(200, Duration::from_secs(60))
        );
        assert!(parse_operation_rates("CreateBgpPeer").is_err());
        assert!(parse_operation_rates("Create BgpPeer=1").is_err());
        assert!(parse_operation_rates("").unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let l = limiter(2.0, 3);
        let start = Instant::now();
        // The burst never exceeds a window's calls: 2 at once, not 3.
        for _ in 0..2 {
            assert_eq!(l.acquire("ak", "r", OP, W).await.waited(), Duration::ZERO);
        }
        assert_eq!(Instant::now(), start);
        // Then 2 per second: the window log lets the next two go a window after the first
        // two (the bucket alone would space them 500 ms apart).
        let mut times = Vec::new();
        for _ in 0..4 {
            l.acquire("ak", "r", OP, W).await.waited();
            times.push(Instant::now() - start);
        }
        assert_eq!(
            times,
            [1000, 1000, 2000, 2000].map(Duration::from_millis).to_vec()
        );
    }

    /// The window log: never more than `calls` grants in any `window + margin`, whatever the
    /// burst, so calls arrive within a sliding-window quota even with jitter.
    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_its_calls() {
        let l = Arc::new(RateLimiter::new(RateLimitConfig {
            burst: 100,
            window_margin: Duration::from_millis(50),
            operations: [(OP.to_owned(), Rate::new(5, Duration::from_secs(1)))].into(),
            ..cfg(1.0, 100)
        }));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..23 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire("ak", "r", OP, W).await.waited();
                Instant::now() - start
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_millis(1050))
                .count();
            assert!(in_window <= 5, "{in_window} grants within 1.05 s of {t:?}");
        }
        // And it is not slower than that: 23 calls in 4 windows of 1.05 s.
        assert_eq!(times[22], Duration::from_millis(4200));
    }

    /// A call holds its place in the window until a window after its answer: the server may
    /// have counted it as late as that.
    #[tokio::test(start_paused = true)]
    async fn a_call_holds_its_place_until_a_window_after_its_answer() {
        let l = RateLimiter::new(RateLimitConfig {
            operations: [(OP.to_owned(), "2/1s".parse().unwrap())].into(),
            ..cfg(1.0, 2)
        });
        let start = Instant::now();
        let first = l.acquire("ak", "r", OP, W).await;
        let second = l.acquire("ak", "r", OP, W).await;
        assert_eq!(Instant::now(), start);
        // The second call is answered after 100 ms, the first after 300 ms.
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(second);
        tokio::time::advance(Duration::from_millis(200)).await;
        drop(first);
        // A limit on grant times would send both at 1 s; the first place frees at 1.1 s, the
        // second at 1.3 s.
        l.acquire("ak", "r", OP, W).await.waited();
        assert_eq!(Instant::now() - start, Duration::from_millis(1100));
        l.acquire("ak", "r", OP, W).await.waited();
        assert_eq!(Instant::now() - start, Duration::from_millis(1300));
    }

    /// Calls still in flight hold their places however long they take.
    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_hold_their_places() {
        let l = Arc::new(RateLimiter::new(RateLimitConfig {
            operations: [(OP.to_owned(), "2/1s".parse().unwrap())].into(),
            ..cfg(1.0, 2)
        }));
        let start = Instant::now();
        let a = l.acquire("ak", "r", OP, W).await;
        let b = l.acquire("ak", "r", OP, W).await;
        let third = {
            let l = l.clone();
            tokio::spawn(async move {
                l.acquire("ak", "r", OP, W).await.waited();
                Instant::now() - start
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !third.is_finished(),
            "granted while both places are in flight"
        );
        drop(a);
        assert_eq!(third.await.unwrap(), Duration::from_secs(6));
        drop(b);
    }

    /// A caller that gives up while it waits for its slot gives its place back.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_gives_its_place_back() {
        let l = RateLimiter::new(RateLimitConfig {
            operations: [(OP.to_owned(), "1/1s".parse().unwrap())].into(),
            ..cfg(1.0, 1)
        });
        let start = Instant::now();
        l.acquire("ak", "r", OP, W).await.waited();
        // This caller's slot is at 1 s; it gives up at 0.5 s.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(500), l.acquire("ak", "r", OP, W)).await;
        assert!(gave_up.is_err());
        // Its place is free a window after it gave up (1.5 s), not never; the bucket, which
        // keeps the token it took, spaces the next call to 2 s.
        let next = tokio::time::timeout(Duration::from_secs(60), l.acquire("ak", "r", OP, W)).await;
        assert!(
            next.is_ok(),
            "the cancelled caller's place was never given back"
        );
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    /// Against the emulator's sliding-window quota, with calls that arrive anywhere between
    /// their grant and their answer (0–400 ms later): never refused, and not slower than a
    /// window plus the longest answer per `calls` calls.
    #[tokio::test(start_paused = true)]
    async fn never_refused_by_a_sliding_window_whatever_the_delays() {
        use crate::emulator::throttle::{Quota, QuotaCall, QuotaRule, Throttle};
        use rand::{Rng, SeedableRng};

        let rate: Rate = "5/1s".parse().unwrap();
        let l = Arc::new(RateLimiter::new(RateLimitConfig {
            operations: [(OP.to_owned(), rate)].into(),
            ..cfg(1.0, 5)
        }));
        let start = Instant::now();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for seed in 0..12u64 {
            let (l, arrivals) = (l.clone(), arrivals.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                for _ in 0..10 {
                    let permit = l.acquire("ak", "r", OP, W).await;
                    let latency = Duration::from_millis(rng.random_range(0..=400));
                    let arrival = Instant::now() + latency.mul_f64(rng.random::<f64>());
                    arrivals.lock().unwrap().push(arrival - start);
                    tokio::time::sleep(latency).await;
                    drop(permit);
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let took = Instant::now() - start;
        let mut arrivals = arrivals.lock().unwrap().clone();
        arrivals.sort();
        let rule = QuotaRule {
            operations: [(OP.to_owned(), Quota(rate))].into(),
            ..QuotaRule::default()
        };
        let call = QuotaCall {
            product: "Vpc",
            account: "a",
            access_key_id: "ak",
            region: "r",
            action: OP,
        };
        let mut server = Throttle::default();
        for (i, t) in arrivals.iter().enumerate() {
            let at = jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::try_from(*t).unwrap();
            assert!(
                server.admit(std::slice::from_ref(&rule), &call, at),
                "call {i} arriving at {t:?} refused"
            );
        }
        // 120 calls at 5 per (1 s + at most 0.4 s + margin): between 23 s and 34 s.
        assert!(took >= Duration::from_secs(23), "{took:?}");
        assert!(took <= Duration::from_secs(34), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_operation_has_its_own_budget() {
        let l = RateLimiter::new(RateLimitConfig {
            operations: [("DescribeBgpPeers".to_owned(), "3/1s".parse().unwrap())].into(),
            ..cfg(1.0, 10)
        });
        assert_eq!(l.acquire("ak", "r", OP, W).await.waited(), Duration::ZERO);
        // Creates wait for their own budget (1/s) …
        assert_eq!(
            l.acquire("ak", "r", OP, W).await.waited(),
            Duration::from_secs(1)
        );
        // … and reads do not wait behind them: their budget (3/s) is untouched.
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                l.acquire("ak", "r", "DescribeBgpPeers", R).await.waited(),
                Duration::ZERO
            );
        }
        assert_eq!(Instant::now(), start);
        assert_eq!(l.current_rate("ak", "r", "DescribeBgpPeers"), 3.0);
        assert_eq!(l.current_rate("ak", "r", "DeleteBgpPeer"), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn by_default_a_budget_spans_regions() {
        let l = limiter(1.0, 1);
        assert_eq!(l.acquire("ak", "r1", OP, W).await.waited(), Duration::ZERO);
        // Same account, same operation, another region: the same budget.
        assert_eq!(
            l.acquire("ak", "r2", OP, W).await.waited(),
            Duration::from_secs(1)
        );
        let l = RateLimiter::new(RateLimitConfig {
            scope: QuotaScope::Region,
            ..cfg(1.0, 1)
        });
        assert_eq!(l.acquire("ak", "r1", OP, W).await.waited(), Duration::ZERO);
        assert_eq!(l.acquire("ak", "r2", OP, W).await.waited(), Duration::ZERO);
        assert_eq!(
            l.acquire("ak", "r1", OP, W).await.waited(),
            Duration::from_secs(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keys_of_one_account_share_and_accounts_do_not() {
        let l = limiter(1.0, 1);
        l.bind_account("ak1", "acct-a");
        l.bind_account("ak2", "acct-a");
        l.bind_account("ak3", "acct-b");
        assert_eq!(l.acquire("ak1", "r", OP, W).await.waited(), Duration::ZERO);
        // Another key of the same account: the account's budget is spent.
        assert_eq!(
            l.acquire("ak2", "r", OP, W).await.waited(),
            Duration::from_secs(1)
        );
        // Another account, and a key whose account is not known: their own budgets.
        assert_eq!(l.acquire("ak3", "r", OP, W).await.waited(), Duration::ZERO);
        assert_eq!(l.acquire("ak4", "r", OP, W).await.waited(), Duration::ZERO);
        // A throttled account slows only itself.
        l.slow_down("ak3", "r", OP);
        assert_eq!(l.current_rate("ak3", "r", OP), 0.5);
        assert_eq!(l.current_rate("ak1", "r", OP), 1.0);
        assert_eq!(l.current_rate("ak4", "r", OP), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spaced_out() {
        let l = Arc::new(limiter(4.0, 1));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire("ak", "r", OP, W).await.waited();
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
        l.acquire("ak", "r", OP, W).await.waited();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.acquire("ak", "r", OP, W).await.waited(), Duration::ZERO);
        assert_eq!(l.acquire("ak", "r", OP, W).await.waited(), Duration::ZERO);
        assert_eq!(
            l.acquire("ak", "r", OP, W).await.waited(),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_halves_one_operation_then_recovers_gradually() {
        let l = limiter(8.0, 1);
        assert_eq!(l.current_rate("ak", "r", OP), 8.0);
        l.slow_down("ak", "r", OP);
        assert_eq!(l.current_rate("ak", "r", OP), 4.0);
        l.slow_down("ak", "r", OP);
        assert_eq!(l.current_rate("ak", "r", OP), 2.0);
        // Floor at qps * min_factor = 1.
        l.slow_down("ak", "r", OP);
        l.slow_down("ak", "r", OP);
        assert_eq!(l.current_rate("ak", "r", OP), 1.0);
        // Other operations and principals are untouched.
        assert_eq!(l.current_rate("ak", "r", "DescribeBgpPeers"), 8.0);
        assert_eq!(l.current_rate("other", "r", OP), 8.0);
        // Doubles every 10 s: 1 → 2 → 4 → 8 (capped).
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!((l.current_rate("ak", "r", OP) - 2.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(5)).await;
        let mid = l.current_rate("ak", "r", OP);
        assert!(mid > 2.0 && mid < 4.0, "{mid}");
        tokio::time::advance(Duration::from_secs(25)).await;
        assert_eq!(l.current_rate("ak", "r", OP), 8.0);
    }

    #[tokio::test(start_paused = true)]
    async fn slowed_bucket_makes_callers_wait_longer() {
        let l = limiter(10.0, 1);
        l.acquire("ak", "r", OP, W).await.waited();
        l.slow_down("ak", "r", OP);
        // Rate 5/s: the next slot takes 200 ms, not 100 ms.
        assert_eq!(
            l.acquire("ak", "r", OP, W).await.waited(),
            Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slowed_window_log_stretches_its_window() {
        let l = RateLimiter::new(RateLimitConfig {
            operations: [(OP.to_owned(), "2/1s".parse().unwrap())].into(),
            recovery: Duration::from_secs(3600),
            ..cfg(1.0, 2)
        });
        l.slow_down("ak", "r", OP);
        // Half the rate: 2 calls per 2 s (the slow-down keeps one token).
        let start = Instant::now();
        for _ in 0..5 {
            l.acquire("ak", "r", OP, W).await.waited();
        }
        // (The rate recovers very slowly meanwhile: a hair under 4 s.)
        let took = (Instant::now() - start).as_secs_f64();
        assert!((3.99..=4.0).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn shared_model_reads_get_their_share_only_while_writes_are_queued() {
        let l = Arc::new(RateLimiter::new(RateLimitConfig {
            model: QuotaModel::Shared,
            ..cfg(4.0, 1)
        }));
        // Alone, reads use the whole rate: 8 reads take 7 × 250 ms after the burst of one.
        let start = Instant::now();
        for _ in 0..8 {
            l.acquire("ak", "r", "DescribeBgpPeers", R).await.waited();
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
                    l.acquire("ak", "r", OP, W).await.waited();
                }
                Instant::now()
            })
        };
        tokio::task::yield_now().await;
        let mut reads = 0;
        while Instant::now() - start < Duration::from_secs(10) {
            l.acquire("ak", "r", "DescribeBgpPeers", R).await.waited();
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

    #[tokio::test(start_paused = true)]
    async fn per_operation_reads_pass_no_gate() {
        let l = limiter(4.0, 1);
        // A write waits: writes are queued …
        l.acquire("ak", "r", OP, W).await.waited();
        l.acquire("ak", "r", OP, W).await.waited();
        // … yet reads have their own budget and no gate.
        assert_eq!(
            l.acquire("ak", "r", "DescribeBgpPeers", R).await.waited(),
            Duration::ZERO
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
        assert_eq!(Rate::per_second(f64::INFINITY), Rate::per_second(1.0));
    }
}
