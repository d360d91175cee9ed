//! The emulated world: VBRs, BGP groups and BGP peers, with lazily evaluated status
//! transitions (a transitional status carries the time it ends; every read settles it).

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::clock;
use super::config::EmulatorConfig;
use super::model::{GroupSnapshot, PeerSnapshot, SessionDelays, Status, VbrSnapshot};

/// Hold time of groups (seconds), as in the documented example.
pub const DEFAULT_HOLD: u32 = 30;
/// Keepalive of groups (seconds), as in the documented example.
pub const DEFAULT_KEEPALIVE: u32 = 10;
/// BFD hop count when none is given.
pub const DEFAULT_BFD_MULTI_HOP: u8 = 255;

/// All VBRs, groups and peers, in creation order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    /// VBRs (from the configuration).
    pub vbrs: Vec<VbrSnapshot>,
    /// BGP groups.
    pub bgp_groups: Vec<GroupSnapshot>,
    /// BGP peers.
    pub bgp_peers: Vec<PeerSnapshot>,
    /// BGP networks (advertised prefixes of VBRs).
    #[serde(default)]
    pub bgp_networks: Vec<super::network::NetworkSnapshot>,
    /// Session-state delays and the Deleted linger (from the configuration, kept in sync with
    /// it by the state).
    #[serde(skip)]
    pub timing: Timing,
}

/// The time-driven behaviour [`Resources::settle`] applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// BgpStatus Idle → Connect → Established.
    pub session: SessionDelays,
    /// Deleting → Deleted (listed this long) → gone.
    pub deleted_linger: Duration,
}

impl Timing {
    /// The timing of a configuration.
    pub fn of(config: &EmulatorConfig) -> Self {
        Self {
            session: SessionDelays {
                connect: config.session_connect_delay,
                establish: config.session_establish_delay,
            },
            deleted_linger: config.deleted_linger,
        }
    }
}

/// A random id: `prefix` + 20 lower-case alphanumerics.
pub fn new_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("{prefix}{tail}")
}

/// The status a resource enters for `delay`: stable `Available` at once when the delay is zero.
pub fn transition(target: Status, delay: Duration, now: Timestamp) -> (Status, Option<Timestamp>) {
    if delay.is_zero() && target != Status::Deleting {
        (Status::Available, None)
    } else {
        (target, Some(clock::add(now, delay)))
    }
}

impl Resources {
    /// The initial world of a configuration (groups and peers Available).
    pub fn from_config(config: &EmulatorConfig, now: Timestamp) -> Self {
        let vbrs = config
            .vbrs
            .iter()
            .map(|v| VbrSnapshot {
                router_id: v.id.clone(),
                region_id: v.region.clone(),
                ipv6_enabled: v.ipv6,
                peer_quota: v.peer_quota,
                group_quota: v.group_quota,
                network_quota: v.network_quota,
                owner: v.owner.clone(),
                local_gateway_ip: v.local_gateway_ip.to_string(),
                peer_gateway_ip: v.peer_gateway_ip.to_string(),
                peering_subnets: v.peering_subnets.iter().map(ToString::to_string).collect(),
                local_ipv6_gateway_ip: v.local_ipv6_gateway_ip.to_string(),
                peer_ipv6_gateway_ip: v.peer_ipv6_gateway_ip.to_string(),
                peering_ipv6_subnets: v
                    .peering_ipv6_subnets
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect::<Vec<_>>();
        let region_of = |vbr: &str| {
            vbrs.iter()
                .find(|v| v.router_id == vbr)
                .map(|v| v.region_id.clone())
                .unwrap_or_default()
        };
        let groups = config
            .groups
            .iter()
            .map(|g| GroupSnapshot {
                bgp_group_id: g.id.clone(),
                router_id: g.vbr.clone(),
                region_id: region_of(&g.vbr),
                name: g.name.clone(),
                description: g.description.clone(),
                peer_asn: g.peer_asn,
                local_asn: g.local_asn,
                auth_key: g.auth_key.clone(),
                ip_version: g.ip_version,
                is_fake_asn: g.is_fake_asn,
                route_quota: g.route_quota,
                is_default: g.is_default,
                hold: DEFAULT_HOLD,
                keepalive: DEFAULT_KEEPALIVE,
                status: Status::Available,
                status_until: None,
                visible_at: None,
                client_token: None,
                gmt_modified: now,
            })
            .collect::<Vec<_>>();
        let timing = Timing::of(config);
        // Seeded peers have been up for long: their sessions are Established at once.
        let long_ago = Timestamp::MIN;
        let peers = config
            .peers
            .iter()
            .filter_map(|p| {
                let group = groups.iter().find(|g| g.bgp_group_id == p.group)?;
                let mut peer = PeerSnapshot {
                    bgp_peer_id: p.id.clone(),
                    bgp_group_id: group.bgp_group_id.clone(),
                    router_id: group.router_id.clone(),
                    region_id: group.region_id.clone(),
                    peer_ip_address: p.peer_ip_address.clone(),
                    ip_version: p.ip_version.unwrap_or(group.ip_version),
                    enable_bfd: p.enable_bfd,
                    bfd_multi_hop: p.bfd_multi_hop.unwrap_or(DEFAULT_BFD_MULTI_HOP),
                    name: String::new(),
                    description: String::new(),
                    status: Status::Available,
                    status_until: None,
                    bgp_status: String::new(),
                    session_since: Some(long_ago),
                    visible_at: None,
                    bgp_status_override: None,
                    client_token: None,
                    created_at: now,
                    gmt_modified: now,
                };
                peer.refresh_bgp_status(now, timing.session);
                Some(peer)
            })
            .collect();
        Self {
            vbrs,
            bgp_groups: groups,
            bgp_peers: peers,
            bgp_networks: Vec::new(),
            timing,
        }
    }

    /// Applies every transition that ended at or before `now`: Pending/Modifying → Available
    /// (the session clock starts), Deleting → Deleted (for [`Timing::deleted_linger`]) → removed;
    /// and refreshes every peer's `BgpStatus`.
    pub fn settle(&mut self, now: Timestamp) {
        let due = |until: Option<Timestamp>| until.is_some_and(|t| t <= now);
        let linger = self.timing.deleted_linger;
        for p in &mut self.bgp_peers {
            if p.status == Status::Deleting
                && let Some(until) = p.status_until.filter(|t| *t <= now)
                && !linger.is_zero()
            {
                p.status = Status::Deleted;
                p.status_until = Some(clock::add(until, linger));
            }
        }
        self.bgp_peers.retain(|p| {
            !(matches!(p.status, Status::Deleting | Status::Deleted) && due(p.status_until))
        });
        self.bgp_groups
            .retain(|g| !(g.status == Status::Deleting && due(g.status_until)));
        let session = self.timing.session;
        for p in &mut self.bgp_peers {
            if let Some(until) = p.status_until.filter(|t| *t <= now) {
                p.status = Status::Available;
                p.status_until = None;
                p.session_since.get_or_insert(until);
            }
            p.refresh_bgp_status(now, session);
        }
        super::network::settle(&mut self.bgp_networks, now);
        for g in &mut self.bgp_groups {
            if due(g.status_until) {
                g.status = Status::Available;
                g.status_until = None;
            }
        }
    }

    /// A VBR by id.
    pub fn vbr(&self, id: &str) -> Option<&VbrSnapshot> {
        self.vbrs.iter().find(|v| v.router_id == id)
    }

    /// A group by id.
    pub fn group(&self, id: &str) -> Option<&GroupSnapshot> {
        self.bgp_groups.iter().find(|g| g.bgp_group_id == id)
    }

    /// A group by id, mutable.
    pub fn group_mut(&mut self, id: &str) -> Option<&mut GroupSnapshot> {
        self.bgp_groups.iter_mut().find(|g| g.bgp_group_id == id)
    }

    /// A peer by id.
    pub fn peer(&self, id: &str) -> Option<&PeerSnapshot> {
        self.bgp_peers.iter().find(|p| p.bgp_peer_id == id)
    }

    /// A peer by id, mutable.
    pub fn peer_mut(&mut self, id: &str) -> Option<&mut PeerSnapshot> {
        self.bgp_peers.iter_mut().find(|p| p.bgp_peer_id == id)
    }

    /// Peers on a VBR that count against its quota (any status but Deleted).
    pub fn peers_on_vbr(&self, router_id: &str) -> usize {
        self.bgp_peers
            .iter()
            .filter(|p| p.router_id == router_id && p.status != Status::Deleted)
            .count()
    }

    /// Groups on a VBR (any status).
    pub fn groups_on_vbr(&self, router_id: &str) -> usize {
        self.bgp_groups
            .iter()
            .filter(|g| g.router_id == router_id)
            .count()
    }

    /// A fresh id not used by any group or peer.
    pub fn fresh_id(&self, prefix: &str) -> String {
        loop {
            let id = new_id(prefix);
            if self.group(&id).is_none() && self.peer(&id).is_none() {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn ids_have_the_real_shape() {
        let id = new_id("bgp-");
        assert_eq!(id.len(), 24);
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(new_id("bgp-"), id);
    }

    #[test]
    fn settle_applies_due_transitions_only() {
        let now = Timestamp::UNIX_EPOCH;
        let mut r = Resources::from_config(&EmulatorConfig::demo(), now);
        let mut peer = PeerSnapshot {
            bgp_peer_id: "bgp-a".into(),
            bgp_group_id: "bgpg-emu00000000000000001".into(),
            router_id: "vbr-emu00000000000000001".into(),
            region_id: "cn-shanghai".into(),
            peer_ip_address: "10.0.0.1".into(),
            ip_version: Default::default(),
            enable_bfd: false,
            bfd_multi_hop: 255,
            name: String::new(),
            description: String::new(),
            status: Status::Pending,
            status_until: Some(now + SignedDuration::from_secs(2)),
            bgp_status: String::new(),
            session_since: None,
            visible_at: None,
            bgp_status_override: None,
            client_token: None,
            created_at: now,
            gmt_modified: now,
        };
        peer.refresh_bgp_status(now, r.timing.session);
        assert_eq!(peer.bgp_status, "Idle");
        r.bgp_peers.push(peer.clone());
        r.bgp_peers.push(PeerSnapshot {
            bgp_peer_id: "bgp-b".into(),
            status: Status::Deleting,
            ..peer
        });
        r.settle(now + SignedDuration::from_secs(1));
        assert_eq!(r.bgp_peers.len(), 2);
        assert_eq!(r.peer("bgp-a").unwrap().status, Status::Pending);
        r.settle(now + SignedDuration::from_secs(2));
        assert_eq!(r.bgp_peers.len(), 1);
        let a = r.peer("bgp-a").unwrap();
        assert_eq!((a.status, a.status_until), (Status::Available, None));
        // The session starts when the peer became Available: Idle, Connect, Established.
        assert_eq!(a.bgp_status, "Idle");
        r.settle(now + SignedDuration::from_secs(3));
        assert_eq!(r.peer("bgp-a").unwrap().bgp_status, "Connect");
        r.settle(now + SignedDuration::from_secs(5));
        assert_eq!(r.peer("bgp-a").unwrap().bgp_status, "Established");
    }

    #[test]
    fn deleted_peers_linger_then_disappear() {
        let now = Timestamp::UNIX_EPOCH;
        let mut config = EmulatorConfig::demo();
        config.peers.push(crate::emulator::config::PeerConfig {
            id: "bgp-a".into(),
            group: crate::emulator::config::DEMO_GROUP_V4.into(),
            peer_ip_address: "10.0.0.9".into(),
            ip_version: None,
            enable_bfd: false,
            bfd_multi_hop: None,
        });
        config.deleted_linger = Duration::from_secs(5);
        let mut r = Resources::from_config(&config, now);
        assert_eq!(r.peer("bgp-a").unwrap().bgp_status, "Established");
        let p = r.peer_mut("bgp-a").unwrap();
        p.status = Status::Deleting;
        p.status_until = Some(now + SignedDuration::from_secs(1));
        r.settle(now + SignedDuration::from_secs(2));
        let p = r.peer("bgp-a").unwrap();
        assert_eq!(p.status, Status::Deleted);
        assert_eq!(r.peers_on_vbr(&p.router_id.clone()), 0);
        // Deleted ends 5 s after the deletion finished (1 s), however late we look.
        r.settle(now + SignedDuration::from_secs(6));
        assert!(r.peer("bgp-a").is_none());
    }

    #[test]
    fn zero_delay_is_immediately_available_except_delete() {
        let now = Timestamp::UNIX_EPOCH;
        assert_eq!(
            transition(Status::Pending, Duration::ZERO, now),
            (Status::Available, None)
        );
        assert_eq!(
            transition(Status::Deleting, Duration::ZERO, now),
            (Status::Deleting, Some(now))
        );
    }
}
