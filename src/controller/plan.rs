//! The pure heart of the reconcile: from (spec, status, what the cloud returned) to the one
//! next step. No client, no clock: everything here is unit-tested with table-driven cases.

use crate::api::{BgpPeerSpec, BgpPeerStatus, DeletionPolicy};

use super::token::client_token_for;

/// The cloud's view of a peer, reduced to what planning needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedPeer {
    /// BgpPeerId.
    pub id: String,
    /// BgpGroupId the peer is in.
    pub bgp_group_id: String,
    /// Lifecycle status (Pending, Available, Modifying, Deleting, Deleted).
    pub status: String,
    /// Peer IP address.
    pub peer_ip_address: Option<String>,
    /// IP version (`IPv4`/`IPv6`, any case).
    pub ip_version: Option<String>,
    /// BFD enabled.
    pub enable_bfd: Option<bool>,
    /// BFD hop count.
    pub bfd_multi_hop: Option<i32>,
}

/// What observing the cloud found for this object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Nothing was looked up: the object has no peer ID yet.
    NotLookedUp,
    /// The peer with the ID in status (or the one to adopt) exists.
    Found(ObservedPeer),
    /// The cloud says there is no such peer (or its group or region is gone).
    NotFound,
}

/// Everything [`plan`] decides on.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Object UID (the ClientToken's root).
    pub uid: &'a str,
    /// Desired state.
    pub spec: &'a BgpPeerSpec,
    /// Last written status.
    pub status: &'a BgpPeerStatus,
    /// What the cloud returned.
    pub observed: &'a Observation,
    /// The object has a deletion timestamp.
    pub deleting: bool,
    /// The object carries the pause annotation.
    pub paused: bool,
    /// The recorded create in flight was first requested longer ago than the replay window:
    /// its token may have expired at the API.
    pub replay_expired: bool,
}

/// Mutable attributes to change with ModifyBgpPeerAttribute (only the differing ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerDiff {
    /// New peer IP address.
    pub peer_ip_address: Option<String>,
    /// New BFD flag.
    pub enable_bfd: Option<bool>,
    /// New BFD hop count.
    pub bfd_multi_hop: Option<i32>,
}

impl PeerDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        *self == PeerDiff::default()
    }

    /// Names of the fields that differ, for messages and events.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.peer_ip_address.is_some() {
            out.push("peerIpAddress");
        }
        if self.enable_bfd.is_some() {
            out.push("enableBfd");
        }
        if self.bfd_multi_hop.is_some() {
            out.push("bfdMultiHop");
        }
        out
    }
}

/// The one next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Paused: make no cloud call, say so in the conditions.
    Paused,
    /// Record the token in status, then call CreateBgpPeer with it. `incarnation` is the one
    /// the token belongs to (bumped when a vanished peer is recreated).
    Create {
        /// The deterministic ClientToken.
        client_token: String,
        /// Incarnation number the token was derived from.
        incarnation: u32,
        /// True when the peer existed and vanished outside Kubernetes.
        recreate: bool,
    },
    /// A create with this token may have reached the cloud but its result was not recorded
    /// (crash, failed status write): replay it with the same token and the recorded
    /// parameters, which returns the same peer instead of a second one.
    ReplayCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// Like [`Plan::ReplayCreate`], but the create is older than the replay window: search the
    /// group for a peer it may have made before replaying (a replay after the API forgot the
    /// token would make a second peer).
    VerifyCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// Take over the existing peer named by `spec.adoptBgpPeerId`.
    Adopt {
        /// The peer to adopt.
        id: String,
    },
    /// The peer to adopt does not exist or is in another group: the spec must change.
    AdoptionImpossible {
        /// Why.
        message: String,
    },
    /// The peer is in a transitional state; look again later.
    Wait {
        /// The cloud status being waited on.
        cloud_status: String,
    },
    /// Change the differing mutable attributes.
    Modify(PeerDiff),
    /// Everything matches: Ready.
    UpToDate,
    /// Delete the cloud peer (deletionPolicy Delete).
    Delete {
        /// The peer to delete.
        id: String,
    },
    /// Deletion was requested and the peer is going away; wait until it is gone.
    WaitGone {
        /// The peer being deleted.
        id: String,
    },
    /// Nothing (more) to do in the cloud: remove the finalizer.
    ReleaseFinalizer {
        /// True when a peer is left in the cloud on purpose (deletionPolicy Orphan).
        orphaned: bool,
    },
}

/// Decides the next step. Pure: same input, same plan.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    if input.deleting {
        return plan_deletion(input);
    }
    if input.paused {
        return Plan::Paused;
    }
    let status = input.status;
    match (&status.bgp_peer_id, input.observed) {
        // Nothing recorded yet.
        (None, _) => {
            if let Some(id) = &input.spec.adopt_bgp_peer_id {
                return match input.observed {
                    Observation::Found(peer) if peer.bgp_group_id == input.spec.bgp_group_id => {
                        Plan::Adopt { id: id.clone() }
                    }
                    Observation::Found(peer) => Plan::AdoptionImpossible {
                        message: format!(
                            "peer {id} to adopt is in group {}, not in spec.bgpGroupId {}",
                            peer.bgp_group_id, input.spec.bgp_group_id
                        ),
                    },
                    Observation::NotFound => Plan::AdoptionImpossible {
                        message: format!(
                            "peer {id} to adopt does not exist in region {}",
                            input.spec.region_id
                        ),
                    },
                    // Look it up first.
                    Observation::NotLookedUp => Plan::Wait {
                        cloud_status: "Unknown".to_owned(),
                    },
                };
            }
            match &status.client_token {
                Some(token) => replay(token, input.replay_expired),
                None => Plan::Create {
                    client_token: client_token_for(input.uid, status.incarnation),
                    incarnation: status.incarnation,
                    recreate: false,
                },
            }
        }
        (Some(_), Observation::NotFound) => {
            if status.adopted {
                // An adopted peer that vanished is not ours to recreate from nothing: the user
                // chose a specific peer. Say so and wait for the spec to change.
                return Plan::AdoptionImpossible {
                    message: "the adopted peer no longer exists in the cloud".to_owned(),
                };
            }
            let incarnation = status.incarnation.saturating_add(1);
            Plan::Create {
                client_token: client_token_for(input.uid, incarnation),
                incarnation,
                recreate: true,
            }
        }
        (Some(_), Observation::NotLookedUp) => Plan::Wait {
            cloud_status: "Unknown".to_owned(),
        },
        (Some(_), Observation::Found(peer)) => match peer.status.as_str() {
            "Available" => {
                let diff = diff(input.spec, peer);
                if diff.is_empty() {
                    Plan::UpToDate
                } else {
                    Plan::Modify(diff)
                }
            }
            other => Plan::Wait {
                cloud_status: other.to_owned(),
            },
        },
    }
}

fn replay(token: &str, expired: bool) -> Plan {
    let client_token = token.to_owned();
    if expired {
        Plan::VerifyCreate { client_token }
    } else {
        Plan::ReplayCreate { client_token }
    }
}

fn plan_deletion(input: &PlanInput<'_>) -> Plan {
    let status = input.status;
    if input.spec.deletion_policy == DeletionPolicy::Orphan {
        return Plan::ReleaseFinalizer {
            orphaned: status.bgp_peer_id.is_some() || status.client_token.is_some(),
        };
    }
    match (&status.bgp_peer_id, input.observed) {
        // A create may be in flight: learn its peer ID first (replay with the same token),
        // so that the peer is deleted instead of leaked.
        (None, _) if status.client_token.is_some() && input.spec.adopt_bgp_peer_id.is_none() => {
            replay(
                status.client_token.as_deref().unwrap_or_default(),
                input.replay_expired,
            )
        }
        // Never created (or adoption never completed): nothing of ours in the cloud.
        (None, _) => Plan::ReleaseFinalizer { orphaned: false },
        (Some(_), Observation::NotFound) => Plan::ReleaseFinalizer { orphaned: false },
        (Some(id), Observation::NotLookedUp) => Plan::WaitGone { id: id.clone() },
        (Some(id), Observation::Found(peer)) => match peer.status.as_str() {
            "Deleting" | "Deleted" => Plan::WaitGone { id: id.clone() },
            // Pending and Modifying refuse deletion (InvalidStatus.CannotOperate): wait.
            "Pending" | "Modifying" => Plan::Wait {
                cloud_status: peer.status.clone(),
            },
            _ => Plan::Delete { id: id.clone() },
        },
    }
}

/// The mutable attributes in which the cloud differs from the spec.
pub fn diff(spec: &BgpPeerSpec, peer: &ObservedPeer) -> PeerDiff {
    let mut out = PeerDiff::default();
    if let Some(ip) = &spec.peer_ip_address
        && !same_ip(Some(ip), peer.peer_ip_address.as_deref())
    {
        out.peer_ip_address = Some(ip.clone());
    }
    if peer.enable_bfd.unwrap_or(false) != spec.enable_bfd {
        out.enable_bfd = Some(spec.enable_bfd);
    }
    // The hop count only matters with BFD on; omitted means "the cloud's default".
    if spec.enable_bfd
        && let Some(hops) = spec.bfd_multi_hop
        && peer.bfd_multi_hop != Some(hops)
    {
        out.bfd_multi_hop = Some(hops);
        // ModifyBgpPeerAttribute wants BFD stated together with the hop count.
        out.enable_bfd = Some(true);
    }
    out
}

/// Compares two IP addresses by value (`2408:4000::2` equals `2408:4000:0::2`).
fn same_ip(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            }
        }
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
