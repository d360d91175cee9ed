//! The one mutex-protected state of a running emulator, and its out-of-band manipulation
//! (admin API and in-process handle).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::auth::AuthState;
use super::config::EmulatorConfig;
use super::counters::Counters;
use super::faults::FaultSet;
use super::idempotency::TokenStore;
use super::model::{PeerSnapshot, Status};
use super::persist::{FORMAT, PersistedState};
use super::resources::{Resources, Timing};
use super::throttle::Throttle;

/// Everything that changes while the emulator runs.
#[derive(Debug)]
pub struct State {
    /// The configuration (delays, latency, QPS and windows may be changed at run time).
    pub config: EmulatorConfig,
    /// Known regions.
    pub regions: Vec<String>,
    /// VBRs, groups, peers.
    pub res: Resources,
    /// Credentials, STS keys, nonces.
    pub auth: AuthState,
    /// ClientTokens.
    pub tokens: TokenStore,
    /// Fault rules.
    pub faults: FaultSet,
    /// Call counters.
    pub counters: Counters,
    /// QPS buckets.
    pub throttle: Throttle,
    /// Bumped on every change of groups, peers or tokens (state-file ordering).
    pub revision: u64,
}

/// `GET /__admin/state`: regions, VBRs, groups and peers (with status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateDump {
    /// Known regions.
    pub regions: Vec<String>,
    /// VBRs, groups and peers.
    #[serde(flatten)]
    pub resources: Resources,
}

/// An out-of-band change of a peer (fields left `None` are unchanged). A status set this way is
/// sticky: it does not transition by itself. JSON field names as in the API (`Status`,
/// `BgpStatus`, `PeerIpAddress`…), snake_case accepted too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PeerChange {
    /// Move to another group (of any VBR).
    #[serde(alias = "bgp_group_id")]
    pub bgp_group_id: Option<String>,
    /// New peer IP (not validated).
    #[serde(alias = "peer_ip_address")]
    pub peer_ip_address: Option<String>,
    /// BFD on/off.
    #[serde(alias = "enable_bfd")]
    pub enable_bfd: Option<bool>,
    /// BFD hop count.
    #[serde(alias = "bfd_multi_hop")]
    pub bfd_multi_hop: Option<u8>,
    /// Lifecycle status (sticky).
    #[serde(alias = "status")]
    pub status: Option<Status>,
    /// BGP session state shown as `BgpStatus` (e.g. `Down`, `Active`); sticky until changed
    /// again. `""` clears it: the session follows the lifecycle again.
    #[serde(alias = "bgp_status")]
    pub bgp_status: Option<String>,
    /// Name.
    #[serde(alias = "name")]
    pub name: Option<String>,
    /// Description.
    #[serde(alias = "description")]
    pub description: Option<String>,
}

/// `POST /__admin/config`: run-time knobs to change (absent fields are unchanged). Durations
/// are strings (`"2s"`) or milliseconds; `throttle_retry_after: null` is the same as absent,
/// `"0ms"`… keeps a zero hint, `qps_per_key: 0` lifts the limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// New peers hidden from DescribeBgpPeers this long.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub visibility_lag: Option<std::time::Duration>,
    /// Deleted peers listed as Deleted this long.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub deleted_linger: Option<std::time::Duration>,
    /// Pending → Available.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub pending_delay: Option<std::time::Duration>,
    /// Modifying → Available.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub modify_delay: Option<std::time::Duration>,
    /// Deleting → gone.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub delete_delay: Option<std::time::Duration>,
    /// BgpStatus Idle → Connect.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub session_connect_delay: Option<std::time::Duration>,
    /// BgpStatus Connect → Established.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub session_establish_delay: Option<std::time::Duration>,
    /// ClientToken retention.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub token_retention: Option<std::time::Duration>,
    /// `x-acs-retry-after` on Throttling answers.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub throttle_retry_after: Option<std::time::Duration>,
    /// Calls per second per access key (0: unlimited).
    #[serde(default)]
    pub qps_per_key: Option<u32>,
    /// Replaces the API rate quotas (`[]`: none).
    #[serde(default)]
    pub api_quotas: Option<Vec<super::throttle::QuotaRule>>,
    /// What TotalCount counts.
    #[serde(default)]
    pub total_count: Option<super::config::TotalCountMode>,
    /// V1 wrong secret → IncompleteSignature.
    #[serde(default)]
    pub wrong_secret_incomplete: Option<bool>,
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|ms| Some(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| serde::de::Error::custom("want milliseconds")),
        Some(serde_json::Value::String(s)) => crate::duration::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(_) => Err(serde::de::Error::custom("want a duration")),
    }
}

impl ConfigChange {
    /// Applies the change.
    pub fn apply(self, c: &mut EmulatorConfig) {
        let set = |target: &mut std::time::Duration, v: Option<std::time::Duration>| {
            if let Some(v) = v {
                *target = v;
            }
        };
        set(&mut c.visibility_lag, self.visibility_lag);
        set(&mut c.deleted_linger, self.deleted_linger);
        set(&mut c.pending_delay, self.pending_delay);
        set(&mut c.modify_delay, self.modify_delay);
        set(&mut c.delete_delay, self.delete_delay);
        set(&mut c.session_connect_delay, self.session_connect_delay);
        set(&mut c.session_establish_delay, self.session_establish_delay);
        set(&mut c.token_retention, self.token_retention);
        if self.throttle_retry_after.is_some() {
            c.throttle_retry_after = self.throttle_retry_after;
        }
        if let Some(q) = self.qps_per_key {
            c.qps_per_key = (q > 0).then_some(q);
        }
        if let Some(q) = self.api_quotas {
            c.api_quotas = q;
        }
        if let Some(t) = self.total_count {
            c.total_count = t;
        }
        if let Some(b) = self.wrong_secret_incomplete {
            c.wrong_secret_incomplete = b;
        }
    }
}

/// An out-of-band change that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No such peer.
    #[error("no BGP peer {0}")]
    PeerNotFound(String),
    /// No such group.
    #[error("no BGP group {0}")]
    GroupNotFound(String),
}

impl State {
    /// The initial state of a configuration.
    pub fn new(config: EmulatorConfig, now: Timestamp) -> Self {
        Self {
            regions: config.all_regions(),
            res: Resources::from_config(&config, now),
            auth: AuthState::from_config(&config),
            tokens: TokenStore::default(),
            faults: FaultSet::default(),
            counters: Counters::default(),
            throttle: Throttle::default(),
            revision: 0,
            config,
        }
    }

    /// Applies a run-time configuration change (and the timing it implies).
    pub fn update_config(&mut self, f: impl FnOnce(&mut EmulatorConfig)) {
        f(&mut self.config);
        self.res.timing = Timing::of(&self.config);
    }

    /// Back to the configured world: seed groups and peers only, no tokens, faults, counters or
    /// throttling history. Credentials (STS keys included) and nonces are kept.
    pub fn reset(&mut self, now: Timestamp) {
        self.res = Resources::from_config(&self.config, now);
        self.tokens = TokenStore::default();
        self.faults.clear();
        self.counters = Counters::default();
        self.throttle.clear();
        self.revision += 1;
    }

    /// Settles due transitions and returns the dump.
    pub fn dump(&mut self, now: Timestamp) -> StateDump {
        self.res.settle(now);
        StateDump {
            regions: self.regions.clone(),
            resources: self.res.clone(),
        }
    }

    /// What the state file keeps.
    pub fn persisted(&self) -> PersistedState {
        PersistedState {
            format: FORMAT,
            bgp_groups: self.res.bgp_groups.clone(),
            bgp_peers: self.res.bgp_peers.clone(),
            client_tokens: self.tokens.records(),
            bgp_networks: self.res.bgp_networks.clone(),
        }
    }

    /// Replaces groups, peers and tokens with a loaded state file.
    pub fn restore(&mut self, saved: PersistedState) {
        self.res.timing = Timing::of(&self.config);
        self.res.bgp_groups = saved.bgp_groups;
        self.res.bgp_peers = saved.bgp_peers;
        self.res.bgp_networks = saved.bgp_networks;
        self.tokens.replace(saved.client_tokens);
    }

    /// Removes a peer at once; `false` if there was none.
    pub fn delete_peer(&mut self, id: &str) -> bool {
        let before = self.res.bgp_peers.len();
        self.res.bgp_peers.retain(|p| p.bgp_peer_id != id);
        let removed = self.res.bgp_peers.len() != before;
        if removed {
            self.revision += 1;
        }
        removed
    }

    /// Applies an out-of-band change to a peer.
    pub fn modify_peer(
        &mut self,
        id: &str,
        change: PeerChange,
        now: Timestamp,
    ) -> Result<PeerSnapshot, AdminError> {
        self.res.settle(now);
        let session = self.res.timing.session;
        let group = match &change.bgp_group_id {
            Some(g) => Some(
                self.res
                    .group(g)
                    .map(|g| (g.bgp_group_id.clone(), g.router_id.clone()))
                    .ok_or_else(|| AdminError::GroupNotFound(g.clone()))?,
            ),
            None => None,
        };
        let peer = self
            .res
            .peer_mut(id)
            .ok_or_else(|| AdminError::PeerNotFound(id.to_owned()))?;
        if let Some((group_id, router_id)) = group {
            peer.bgp_group_id = group_id;
            peer.router_id = router_id;
        }
        if let Some(v) = change.peer_ip_address {
            peer.peer_ip_address = v;
        }
        if let Some(v) = change.enable_bfd {
            peer.enable_bfd = v;
        }
        if let Some(v) = change.bfd_multi_hop {
            peer.bfd_multi_hop = v;
        }
        if let Some(v) = change.name {
            peer.name = v;
        }
        if let Some(v) = change.description {
            peer.description = v;
        }
        if let Some(v) = change.status {
            peer.status = v;
            peer.status_until = None;
        }
        if let Some(v) = change.bgp_status {
            peer.bgp_status_override = (!v.is_empty()).then_some(v);
        }
        peer.gmt_modified = now;
        peer.refresh_bgp_status(now, session);
        let snapshot = peer.clone();
        self.revision += 1;
        Ok(snapshot)
    }
}
