//! Table-driven tests of [`plan`]: each case says why the expected step is right.

use super::*;
use crate::api::{BgpPeerSpec, BgpPeerStatus, DeletionPolicy, IpVersion};

const UID: &str = "4f6a2b1c-3d4e-4f50-9a1b-2c3d4e5f6a7b";

fn spec() -> BgpPeerSpec {
    BgpPeerSpec {
        region_id: "cn-shanghai".into(),
        bgp_group_id: "bgpg-aaaa".into(),
        peer_ip_address: Some("10.0.0.2".into()),
        ip_version: IpVersion::IPv4,
        enable_bfd: true,
        bfd_multi_hop: Some(3),
        deletion_policy: DeletionPolicy::Delete,
        adopt_bgp_peer_id: None,
        credentials_secret_ref: None,
    }
}

fn peer(status: &str) -> ObservedPeer {
    ObservedPeer {
        id: "bgp-1111".into(),
        bgp_group_id: "bgpg-aaaa".into(),
        status: status.into(),
        peer_ip_address: Some("10.0.0.2".into()),
        ip_version: Some("IPv4".into()),
        enable_bfd: Some(true),
        bfd_multi_hop: Some(3),
    }
}

fn with_id() -> BgpPeerStatus {
    BgpPeerStatus {
        bgp_peer_id: Some("bgp-1111".into()),
        client_token: Some(client_token_for(UID, 0)),
        ..Default::default()
    }
}

struct Case {
    reason: &'static str,
    spec: BgpPeerSpec,
    status: BgpPeerStatus,
    observed: Observation,
    deleting: bool,
    paused: bool,
    replay_expired: bool,
    want: Plan,
}

impl Case {
    fn new(reason: &'static str, want: Plan) -> Self {
        Case {
            reason,
            spec: spec(),
            status: BgpPeerStatus::default(),
            observed: Observation::NotLookedUp,
            deleting: false,
            paused: false,
            replay_expired: false,
            want,
        }
    }
    fn spec(mut self, f: impl FnOnce(&mut BgpPeerSpec)) -> Self {
        f(&mut self.spec);
        self
    }
    fn status(mut self, status: BgpPeerStatus) -> Self {
        self.status = status;
        self
    }
    fn observed(mut self, observed: Observation) -> Self {
        self.observed = observed;
        self
    }
    fn deleting(mut self) -> Self {
        self.deleting = true;
        self
    }
    fn paused(mut self) -> Self {
        self.paused = true;
        self
    }
    fn replay_expired(mut self) -> Self {
        self.replay_expired = true;
        self
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "a new object creates with the token derived from its UID",
            Plan::Create {
                client_token: format!("abo-{UID}"),
                incarnation: 0,
                recreate: false,
            },
        ),
        Case::new(
            "a token recorded without a peer ID means a create may have happened: replay it",
            Plan::ReplayCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        }),
        Case::new(
            "a create older than the replay window is verified first: the API may have forgotten its token",
            Plan::VerifyCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        })
        .replay_expired(),
        Case::new(
            "cleanup of a create older than the replay window verifies it too (never a blind replay)",
            Plan::VerifyCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .deleting()
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        })
        .replay_expired(),
        Case::new("paused objects make no cloud call", Plan::Paused).paused(),
        Case::new(
            "paused does not block deletion of an object never created",
            Plan::ReleaseFinalizer { orphaned: false },
        )
        .paused()
        .deleting(),
        Case::new("an Available peer matching the spec is up to date", Plan::UpToDate)
            .status(with_id())
            .observed(Observation::Found(peer("Available"))),
        Case::new(
            "a Pending peer is waited on, not modified",
            Plan::Wait {
                cloud_status: "Pending".into(),
            },
        )
        .status(with_id())
        .observed(Observation::Found(peer("Pending"))),
        Case::new(
            "a Modifying peer is waited on",
            Plan::Wait {
                cloud_status: "Modifying".into(),
            },
        )
        .status(with_id())
        .observed(Observation::Found(peer("Modifying"))),
        Case::new(
            "a changed peer IP is modified in place",
            Plan::Modify(PeerDiff {
                peer_ip_address: Some("10.0.0.9".into()),
                ..Default::default()
            }),
        )
        .spec(|s| s.peer_ip_address = Some("10.0.0.9".into()))
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "BFD switched off out of band is switched back on with the hop count",
            Plan::Modify(PeerDiff {
                enable_bfd: Some(true),
                ..Default::default()
            }),
        )
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            enable_bfd: Some(false),
            ..peer("Available")
        })),
        Case::new(
            "a different hop count is modified together with enableBfd",
            Plan::Modify(PeerDiff {
                enable_bfd: Some(true),
                bfd_multi_hop: Some(3),
                ..Default::default()
            }),
        )
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            bfd_multi_hop: Some(255),
            ..peer("Available")
        })),
        Case::new(
            "an omitted hop count accepts the cloud's default",
            Plan::UpToDate,
        )
        .spec(|s| s.bfd_multi_hop = None)
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            bfd_multi_hop: Some(255),
            ..peer("Available")
        })),
        Case::new(
            "the hop count is ignored while BFD is off",
            Plan::UpToDate,
        )
        .spec(|s| {
            s.enable_bfd = false;
            s.bfd_multi_hop = None;
        })
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            enable_bfd: Some(false),
            bfd_multi_hop: Some(255),
            ..peer("Available")
        })),
        Case::new(
            "IPv6 addresses compare by value, not by spelling",
            Plan::UpToDate,
        )
        .spec(|s| s.peer_ip_address = Some("2408:4000:0:0::2".into()))
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            peer_ip_address: Some("2408:4000::2".into()),
            ..peer("Available")
        })),
        Case::new(
            "a peer deleted outside Kubernetes is recreated under a new incarnation",
            Plan::Create {
                client_token: format!("abo-{UID}-1"),
                incarnation: 1,
                recreate: true,
            },
        )
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "a vanished adopted peer is not recreated from nothing",
            Plan::AdoptionImpossible {
                message: "the adopted peer no longer exists in the cloud".into(),
            },
        )
        .status(BgpPeerStatus {
            adopted: true,
            ..with_id()
        })
        .observed(Observation::NotFound),
        Case::new(
            "adoption takes the named peer when it is in the spec's group",
            Plan::Adopt {
                id: "bgp-1111".into(),
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "adoption never takes a peer of another group",
            Plan::AdoptionImpossible {
                message: "peer bgp-1111 to adopt is in group bgpg-other, not in spec.bgpGroupId bgpg-aaaa"
                    .into(),
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::Found(ObservedPeer {
            bgp_group_id: "bgpg-other".into(),
            ..peer("Available")
        })),
        Case::new(
            "adoption of a missing peer is reported, never turned into a create",
            Plan::AdoptionImpossible {
                message: "peer bgp-1111 to adopt does not exist in region cn-shanghai".into(),
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::NotFound),
        Case::new(
            "deleting an Available peer deletes it",
            Plan::Delete {
                id: "bgp-1111".into(),
            },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "deleting waits while the cloud deletes",
            Plan::WaitGone {
                id: "bgp-1111".into(),
            },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Deleting"))),
        Case::new(
            "deleting waits for a Pending peer (the API refuses to delete it yet)",
            Plan::Wait {
                cloud_status: "Pending".into(),
            },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Pending"))),
        Case::new(
            "the finalizer goes once the peer is gone",
            Plan::ReleaseFinalizer { orphaned: false },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "cleanup of an object never created makes no cloud call",
            Plan::ReleaseFinalizer { orphaned: false },
        )
        .deleting(),
        Case::new(
            "cleanup with a create in flight learns the peer ID first, so nothing leaks",
            Plan::ReplayCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .deleting()
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        }),
        Case::new(
            "Orphan releases without deleting",
            Plan::ReleaseFinalizer { orphaned: true },
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "a failed adoption leaves nothing to delete",
            Plan::ReleaseFinalizer { orphaned: false },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .deleting(),
    ]
}

#[test]
fn plan_table() {
    for case in cases() {
        let got = plan(&PlanInput {
            uid: UID,
            spec: &case.spec,
            status: &case.status,
            observed: &case.observed,
            deleting: case.deleting,
            paused: case.paused,
            replay_expired: case.replay_expired,
        });
        assert_eq!(got, case.want, "{}", case.reason);
    }
}

#[test]
fn plan_is_deterministic() {
    for case in cases() {
        let input = PlanInput {
            uid: UID,
            spec: &case.spec,
            status: &case.status,
            observed: &case.observed,
            deleting: case.deleting,
            paused: case.paused,
            replay_expired: case.replay_expired,
        };
        assert_eq!(plan(&input), plan(&input), "{}", case.reason);
    }
}

#[test]
fn diff_names_fields() {
    let d = PeerDiff {
        peer_ip_address: Some("10.0.0.3".into()),
        enable_bfd: Some(true),
        bfd_multi_hop: Some(2),
    };
    assert_eq!(
        d.fields(),
        vec!["peerIpAddress", "enableBfd", "bfdMultiHop"]
    );
    assert!(PeerDiff::default().is_empty());
}
