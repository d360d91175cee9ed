//! API rate limits, answered with `Throttling.User` (400, "Request was denied due to user flow
//! control.").
//!
//! - **Quotas** ([`QuotaRule`], seed file `api_quotas`, `POST /__admin/config`): Alibaba Cloud
//!   defines a quota per OpenAPI operation, "the maximum number of calls allowed for a specific
//!   OpenAPI operation … within a given time window" (Quota Center > API Rate Limits:
//!   `5/1 s`, `200/60 s`). A rule counts per account ([`QuotaScope::Account`]; whether the
//!   cloud's quotas span regions is not documented) or per account and region, per operation
//!   ([`QuotaModel::PerOperation`]) or for all operations of a product together
//!   ([`QuotaModel::Shared`], one account-wide rate). A window admits at most `calls` calls
//!   in **any** `window`-long span (a sliding window: the strictest reading of "N calls per
//!   window"); refused calls do not count. Every rule must admit a call.
//! - **Per access key** (`qps_per_key`, the older knob): a token bucket holding one second of
//!   calls, for all operations of the key.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cloud::ratelimit::Rate;

/// A quota: `calls` per `window`. In documents: `"5/1s"`, `"200/60s"`, or a number of calls
/// per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota(pub Rate);

impl<'de> Deserialize<'de> for Quota {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|q| q.is_finite() && *q > 0.0)
                .map(|q| Quota(Rate::per_second(q)))
                .ok_or_else(|| serde::de::Error::custom("want a positive number of calls/s")),
            serde_json::Value::String(s) => s.parse().map(Quota).map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "want a quota like \"5/1s\", \"200/60s\" or a number of calls per second",
            )),
        }
    }
}

impl Serialize for Quota {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// Per operation, or one quota for all operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaModel {
    /// Each operation has its own quota (the documented model).
    #[default]
    PerOperation,
    /// All operations of a product share `default`.
    Shared,
}

/// Who a quota counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// The account, all regions together.
    #[default]
    Account,
    /// The account in one region.
    AccountRegion,
    /// One access key (not a rule of the cloud: lets a test check each key's own rate).
    AccessKey,
}

/// One quota rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaRule {
    /// Per operation or shared.
    pub model: QuotaModel,
    /// Per account, account and region, or access key.
    pub scope: QuotaScope,
    /// The quota of every operation without its own entry (shared: of all of them); none =
    /// unlimited.
    pub default: Option<Quota>,
    /// Per-operation quotas (per-operation model only).
    pub operations: BTreeMap<String, Quota>,
}

impl QuotaRule {
    /// The quota this rule applies to `action`, if any.
    fn quota_of(&self, action: &str) -> Option<Rate> {
        match self.model {
            QuotaModel::PerOperation => self.operations.get(action).or(self.default.as_ref()),
            QuotaModel::Shared => self.default.as_ref(),
        }
        .map(|q| q.0)
    }

    /// The window key of a call under this rule.
    fn key(&self, index: usize, call: &QuotaCall<'_>) -> WindowKey {
        let who = match self.scope {
            QuotaScope::Account | QuotaScope::AccountRegion => call.account,
            QuotaScope::AccessKey => call.access_key_id,
        };
        let region = match self.scope {
            QuotaScope::AccountRegion => call.region,
            _ => "",
        };
        let action = match self.model {
            QuotaModel::PerOperation => call.action,
            QuotaModel::Shared => "",
        };
        (index, format!("{}|{who}|{region}|{action}", call.product))
    }
}

/// What the quotas look at in a call.
#[derive(Clone, Copy, Debug)]
pub struct QuotaCall<'a> {
    /// `Vpc`, `Sts`.
    pub product: &'a str,
    /// Account uid of the caller.
    pub account: &'a str,
    /// Access key id of the caller.
    pub access_key_id: &'a str,
    /// `RegionId` of the request (empty when it has none).
    pub region: &'a str,
    /// The operation.
    pub action: &'a str,
}

/// (rule index, product|who|region|action).
type WindowKey = (usize, String);

/// Windows kept before empty ones are dropped.
const MAX_IDLE_WINDOWS: usize = 4096;

/// Token buckets by access key id, and the quota windows.
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    buckets: HashMap<String, (f64, Timestamp)>,
    /// Admission times within the window, oldest first.
    windows: HashMap<WindowKey, VecDeque<Timestamp>>,
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

    /// Admits `call` at `now` if every rule has room for it (and then counts it in each);
    /// `false` means a quota is exhausted.
    pub fn admit(&mut self, rules: &[QuotaRule], call: &QuotaCall<'_>, now: Timestamp) -> bool {
        if self.windows.len() >= MAX_IDLE_WINDOWS {
            let longest = rules
                .iter()
                .flat_map(|r| r.default.iter().chain(r.operations.values()))
                .map(|q| q.0.window)
                .max()
                .unwrap_or_default();
            let cutoff = now - signed(longest);
            self.windows
                .retain(|_, w| w.back().is_some_and(|t| *t > cutoff));
        }
        let mut keys = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let Some(quota) = rule.quota_of(call.action) else {
                continue;
            };
            let key = rule.key(i, call);
            let window = self.windows.entry(key.clone()).or_default();
            let cutoff = now - signed(quota.window);
            while window.front().is_some_and(|t| *t <= cutoff) {
                window.pop_front();
            }
            if window.len() >= quota.calls as usize {
                return false;
            }
            keys.push(key);
        }
        for key in keys {
            self.windows.entry(key).or_default().push_back(now);
        }
        true
    }

    /// Forgets all buckets and windows.
    pub fn clear(&mut self) {
        self.buckets.clear();
        self.windows.clear();
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_millis(ms)
    }

    fn call<'a>(account: &'a str, region: &'a str, action: &'a str) -> QuotaCall<'a> {
        QuotaCall {
            product: "Vpc",
            account,
            access_key_id: "AK",
            region,
            action,
        }
    }

    fn rule(yaml: &str) -> QuotaRule {
        serde_saphyr::from_str(yaml).expect("rule")
    }

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

    #[test]
    fn quotas_parse_like_quota_center() {
        let r = rule(
            "{ default: 20, operations: { CreateBgpPeer: 5/1s, DescribeBgpPeers: \"200/60 s\" } }",
        );
        assert_eq!(r.model, QuotaModel::PerOperation);
        assert_eq!(r.scope, QuotaScope::Account);
        assert_eq!(
            r.quota_of("CreateBgpPeer"),
            Some(Rate::new(5, Duration::from_secs(1)))
        );
        assert_eq!(
            r.quota_of("DescribeBgpPeers"),
            Some(Rate::new(200, Duration::from_secs(60)))
        );
        assert_eq!(
            r.quota_of("DeleteBgpPeer"),
            Some(Rate::new(20, Duration::from_secs(1)))
        );
        assert!(serde_saphyr::from_str::<QuotaRule>("{ default: 0/1s }").is_err());
        assert!(serde_saphyr::from_str::<QuotaRule>("{ default: fast }").is_err());
        assert!(serde_saphyr::from_str::<QuotaRule>("{ scope: planet }").is_err());
        assert!(serde_saphyr::from_str::<QuotaRule>("{ windows: 1 }").is_err());
        // No default: only the listed operations are limited.
        let r = rule("{ operations: { CreateBgpPeer: 1 } }");
        assert_eq!(r.quota_of("DescribeBgpPeers"), None);
    }

    #[test]
    fn a_window_admits_its_calls_in_any_span_of_its_length() {
        let mut t = Throttle::default();
        let rules = [rule("{ operations: { CreateBgpPeer: 3/1s } }")];
        let c = call("A", "r1", "CreateBgpPeer");
        assert!(t.admit(&rules, &c, at(0)));
        assert!(t.admit(&rules, &c, at(600)));
        assert!(t.admit(&rules, &c, at(900)));
        // A fourth within 1 s of the first is refused; a refusal does not count.
        assert!(!t.admit(&rules, &c, at(999)));
        assert!(t.admit(&rules, &c, at(1000)));
        // Sliding, not fixed: 600 and 900 are still within 1 s of 1500.
        assert!(!t.admit(&rules, &c, at(1500)));
        assert!(t.admit(&rules, &c, at(1600)));
    }

    #[test]
    fn per_operation_quotas_are_independent_and_shared_ones_are_not() {
        let mut t = Throttle::default();
        let per_op = [rule("{ default: 1/1s }")];
        assert!(t.admit(&per_op, &call("A", "r", "CreateBgpPeer"), at(0)));
        assert!(t.admit(&per_op, &call("A", "r", "DescribeBgpPeers"), at(0)));
        assert!(!t.admit(&per_op, &call("A", "r", "CreateBgpPeer"), at(10)));
        let shared = [rule("{ model: shared, default: 1/1s }")];
        let mut t = Throttle::default();
        assert!(t.admit(&shared, &call("A", "r", "CreateBgpPeer"), at(0)));
        assert!(!t.admit(&shared, &call("A", "r", "DescribeBgpPeers"), at(0)));
        // Another product (STS) has its own budget.
        let sts = QuotaCall {
            product: "Sts",
            ..call("A", "", "GetCallerIdentity")
        };
        assert!(t.admit(&shared, &sts, at(0)));
    }

    #[test]
    fn scopes_account_region_and_access_key() {
        let account = [rule("{ default: 1/1s }")];
        let mut t = Throttle::default();
        assert!(t.admit(&account, &call("A", "r1", "X"), at(0)));
        assert!(
            !t.admit(&account, &call("A", "r2", "X"), at(0)),
            "spans regions"
        );
        assert!(
            t.admit(&account, &call("B", "r1", "X"), at(0)),
            "per account"
        );
        let regional = [rule("{ scope: account_region, default: 1/1s }")];
        let mut t = Throttle::default();
        assert!(t.admit(&regional, &call("A", "r1", "X"), at(0)));
        assert!(t.admit(&regional, &call("A", "r2", "X"), at(0)));
        assert!(!t.admit(&regional, &call("A", "r1", "X"), at(0)));
        let per_key = [rule("{ scope: access_key, default: 1/1s }")];
        let mut t = Throttle::default();
        let other_key = QuotaCall {
            access_key_id: "AK2",
            ..call("A", "r1", "X")
        };
        assert!(t.admit(&per_key, &call("A", "r1", "X"), at(0)));
        assert!(t.admit(&per_key, &other_key, at(0)));
        assert!(!t.admit(&per_key, &other_key, at(1)));
    }

    #[test]
    fn every_rule_must_admit_and_a_refusal_counts_in_none() {
        let rules = [
            rule("{ default: 2/1s }"),
            rule("{ scope: access_key, default: 1/1s }"),
        ];
        let mut t = Throttle::default();
        let k1 = call("A", "r", "X");
        let k2 = QuotaCall {
            access_key_id: "AK2",
            ..k1
        };
        assert!(t.admit(&rules, &k1, at(0)));
        // Refused by the per-key rule: the account rule must not count it.
        assert!(!t.admit(&rules, &k1, at(1)));
        assert!(t.admit(&rules, &k2, at(2)));
        // Now the account's 2/1s is spent.
        let k3 = QuotaCall {
            access_key_id: "AK3",
            ..k1
        };
        assert!(!t.admit(&rules, &k3, at(3)));
    }
}
