//! Call counters: per action, per response code, per access key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The code counted for a successful call.
pub const OK: &str = "OK";

/// Counters of one access key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCounters {
    /// All calls.
    pub total: u64,
    /// Calls per action.
    pub by_action: BTreeMap<String, u64>,
    /// Calls per response code (`OK` for success, `HTTP<status>` for raw-status faults).
    pub by_code: BTreeMap<String, u64>,
}

/// Counts of API calls since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// All calls.
    pub total: u64,
    /// Calls per action (`-` when the action could not be read).
    pub by_action: BTreeMap<String, u64>,
    /// Calls per response code (`OK` for success, `HTTP<status>` for raw-status faults).
    pub by_code: BTreeMap<String, u64>,
    /// action → code → calls.
    pub by_action_code: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per access key id (`-` for unsigned calls).
    pub by_access_key: BTreeMap<String, KeyCounters>,
    /// DescribeBgpPeers calls by their narrowest filter ([`describe_filter`]): `region`
    /// (RegionId alone), `router`, `group`, `id`.
    #[serde(default)]
    pub describe_peers_by_filter: BTreeMap<String, u64>,
}

/// The narrowest filter of a DescribeBgpPeers call: `id` (BgpPeerId), `group` (BgpGroupId),
/// `router` (RouterId) or `region` (RegionId alone).
pub fn describe_filter(params: &super::params::Params) -> &'static str {
    if params.get("BgpPeerId").is_some() {
        "id"
    } else if params.get("BgpGroupId").is_some() {
        "group"
    } else if params.get("RouterId").is_some() {
        "router"
    } else {
        "region"
    }
}

impl Counters {
    /// Records one call.
    pub fn record(&mut self, action: &str, code: &str, access_key_id: &str) {
        self.total += 1;
        *self.by_action.entry(action.to_owned()).or_default() += 1;
        *self.by_code.entry(code.to_owned()).or_default() += 1;
        *self
            .by_action_code
            .entry(action.to_owned())
            .or_default()
            .entry(code.to_owned())
            .or_default() += 1;
        let key = self
            .by_access_key
            .entry(access_key_id.to_owned())
            .or_default();
        key.total += 1;
        *key.by_action.entry(action.to_owned()).or_default() += 1;
        *key.by_code.entry(code.to_owned()).or_default() += 1;
    }

    /// Records the filter of a DescribeBgpPeers call.
    pub fn record_describe_filter(&mut self, params: &super::params::Params) {
        *self
            .describe_peers_by_filter
            .entry(describe_filter(params).to_owned())
            .or_default() += 1;
    }

    /// Calls of `action`.
    pub fn calls(&self, action: &str) -> u64 {
        self.by_action.get(action).copied().unwrap_or(0)
    }

    /// Calls of `action` answered with `code`.
    pub fn count(&self, action: &str, code: &str) -> u64 {
        self.by_action_code
            .get(action)
            .and_then(|m| m.get(code))
            .copied()
            .unwrap_or(0)
    }

    /// Calls answered with `code`, any action.
    pub fn code(&self, code: &str) -> u64 {
        self.by_code.get(code).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_every_dimension() {
        let mut c = Counters::default();
        c.record("CreateBgpPeer", OK, "AK1");
        c.record("CreateBgpPeer", "Throttling.User", "AK1");
        c.record("DescribeBgpPeers", OK, "AK2");
        assert_eq!(c.total, 3);
        assert_eq!(c.calls("CreateBgpPeer"), 2);
        assert_eq!(c.count("CreateBgpPeer", OK), 1);
        assert_eq!(c.code(OK), 2);
        assert_eq!(c.by_access_key["AK1"].total, 2);
        assert_eq!(c.by_access_key["AK2"].by_action["DescribeBgpPeers"], 1);
        assert_eq!(c.count("DeleteBgpPeer", OK), 0);
    }

    #[test]
    fn describe_calls_are_counted_by_their_narrowest_filter() {
        use crate::emulator::params::params;
        let mut c = Counters::default();
        c.record_describe_filter(&params(&[("RegionId", "cn-shanghai")]));
        c.record_describe_filter(&params(&[("RegionId", "r"), ("BgpGroupId", "bgpg-1")]));
        c.record_describe_filter(&params(&[("BgpGroupId", "g"), ("BgpPeerId", "bgp-1")]));
        c.record_describe_filter(&params(&[("RegionId", "r"), ("RouterId", "vbr-1")]));
        c.record_describe_filter(&params(&[("RegionId", "r")]));
        let by: Vec<(&str, u64)> = c
            .describe_peers_by_filter
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(by, [("group", 1), ("id", 1), ("region", 2), ("router", 1)]);
    }
}
