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
use super::resources::Resources;
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
    /// BGP session state shown as `BgpStatus` (e.g. `Down`).
    #[serde(alias = "bgp_status")]
    pub bgp_status: Option<String>,
    /// Name.
    #[serde(alias = "name")]
    pub name: Option<String>,
    /// Description.
    #[serde(alias = "description")]
    pub description: Option<String>,
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
        }
    }

    /// Replaces groups, peers and tokens with a loaded state file.
    pub fn restore(&mut self, saved: PersistedState) {
        self.res.bgp_groups = saved.bgp_groups;
        self.res.bgp_peers = saved.bgp_peers;
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
            peer.bgp_status_override = Some(v);
        }
        peer.gmt_modified = now;
        peer.refresh_bgp_status();
        let snapshot = peer.clone();
        self.revision += 1;
        Ok(snapshot)
    }
}
