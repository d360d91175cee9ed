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
        ..Default::default()
    }
}

fn peer(status: &str) -> ObservedPeer {
    ObservedPeer {
        id: "bgp-1111".into(),
        bgp_group_id: "bgpg-aaaa".into(),
        status: PeerStatus::parse(status),
        peer_ip_address: Some("10.0.0.2".into()),
        ip_version: Some("IPv4".into()),
        enable_bfd: Some(true),
        bfd_multi_hop: Some(3),
    }
}

/// A peer the operator created and has seen (its cloud view is recorded).
fn with_id() -> BgpPeerStatus {
    BgpPeerStatus {
        bgp_peer_id: Some("bgp-1111".into()),
        client_token: Some(client_token_for(UID, 0)),
        account_id: Some(ACCOUNT.into()),
        region_id: Some("cn-shanghai".into()),
        bgp_group_id: Some("bgpg-aaaa".into()),
        ip_version: Some(IpVersion::IPv4),
        bgp_peer_id_recorded_at: Some(at(NOW - 3600)),
        cloud: Some(Default::default()),
        ..Default::default()
    }
}

/// A peer the operator just created and has not seen yet.
fn just_created(secs_ago: i64) -> BgpPeerStatus {
    BgpPeerStatus {
        cloud: None,
        bgp_peer_id_recorded_at: Some(at(NOW - secs_ago)),
        ..with_id()
    }
}

const ACCOUNT: &str = "1234567890123456";
const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(secs).expect("timestamp"),
    )
}

fn wait(status: &str) -> ApplyStep {
    ApplyStep::Wait {
        cloud_status: status.into(),
        overdue: None,
    }
}

fn wait_deleting(status: &str) -> CleanupStep {
    CleanupStep::Wait {
        cloud_status: status.into(),
        overdue: None,
    }
}

fn release(left: Left) -> CleanupStep {
    CleanupStep::ReleaseFinalizer { left }
}

struct Case {
    reason: &'static str,
    spec: BgpPeerSpec,
    status: BgpPeerStatus,
    observed: Observation,
    deleting: bool,
    paused: bool,
    replay_expired: bool,
    account: Option<&'static str>,
    claimed_by: Option<Claim>,
    protected: bool,
    want: Plan,
}

impl Case {
    fn new(reason: &'static str, want: impl Into<Plan>) -> Self {
        let want = want.into();
        Case {
            reason,
            spec: spec(),
            status: BgpPeerStatus::default(),
            observed: Observation::NotLookedUp,
            deleting: false,
            paused: false,
            replay_expired: false,
            account: Some(ACCOUNT),
            claimed_by: None,
            protected: false,
            want,
        }
    }
    fn protected(mut self) -> Self {
        self.protected = true;
        self
    }
    fn account(mut self, account: Option<&'static str>) -> Self {
        self.account = account;
        self
    }
    fn claimed_by(mut self, owner: &str) -> Self {
        self.claimed_by = Some(Claim {
            owner: owner.into(),
        });
        self
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
            ApplyStep::Create {
                client_token: format!("abo-{UID}"),
                incarnation: 0,
                recreate: false,
            },
        ),
        Case::new(
            "a token recorded without a peer ID means a create may have happened: replay it",
            ApplyStep::ReplayCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        }),
        Case::new(
            "a create older than the replay window is verified first: the API may have forgotten its token",
            ApplyStep::VerifyCreate {
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
            CleanupStep::VerifyCreate {
                client_token: format!("abo-{UID}"),
            },
        )
        .deleting()
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        })
        .replay_expired(),
        Case::new("paused objects make no cloud call", ApplyStep::Paused).paused(),
        Case::new(
            "pause holds every deletion, even of an object never created",
            CleanupStep::Paused,
        )
        .paused()
        .deleting(),
        Case::new("pause holds an Orphan deletion too", CleanupStep::Paused)
            .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
            .status(with_id())
            .paused()
            .deleting(),
        Case::new("an Available peer matching the spec is up to date", ApplyStep::UpToDate)
            .status(with_id())
            .observed(Observation::Found(peer("Available"))),
        Case::new(
            "a Pending peer is waited on, not modified",
            wait("Pending"),
        )
        .status(with_id())
        .observed(Observation::Found(peer("Pending"))),
        Case::new(
            "a Modifying peer is waited on",
            wait("Modifying"),
        )
        .status(with_id())
        .observed(Observation::Found(peer("Modifying"))),
        Case::new(
            "a changed peer IP is modified in place",
            ApplyStep::Modify(PeerDiff {
                peer_ip_address: Some("10.0.0.9".into()),
                ..Default::default()
            }),
        )
        .spec(|s| s.peer_ip_address = Some("10.0.0.9".into()))
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "BFD switched off out of band is switched back on with the hop count",
            ApplyStep::Modify(PeerDiff {
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
            ApplyStep::Modify(PeerDiff {
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
            ApplyStep::UpToDate,
        )
        .spec(|s| s.bfd_multi_hop = None)
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            bfd_multi_hop: Some(255),
            ..peer("Available")
        })),
        Case::new(
            "the hop count is ignored while BFD is off",
            ApplyStep::UpToDate,
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
            ApplyStep::UpToDate,
        )
        .spec(|s| s.peer_ip_address = Some("2408:4000:0:0::2".into()))
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            peer_ip_address: Some("2408:4000::2".into()),
            ..peer("Available")
        })),
        Case::new(
            "a peer deleted outside Kubernetes is recreated under a new incarnation",
            ApplyStep::Create {
                client_token: format!("abo-{UID}-1"),
                incarnation: 1,
                recreate: true,
            },
        )
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "a vanished adopted peer is not recreated from nothing",
            ApplyStep::AdoptionImpossible {
                message: "the adopted peer no longer exists in the cloud".into(),
                missing: true,
            },
        )
        .status(BgpPeerStatus {
            adopted: true,
            ..with_id()
        })
        .observed(Observation::NotFound),
        Case::new(
            "adoption takes the named peer when it is in the spec's group",
            ApplyStep::Adopt {
                id: "bgp-1111".into(),
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "adoption never takes a peer of another group",
            ApplyStep::AdoptionImpossible {
                message: "peer bgp-1111 to adopt is in group bgpg-other, not in spec.bgpGroupId bgpg-aaaa"
                    .into(),
                missing: false,
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::Found(ObservedPeer {
            bgp_group_id: "bgpg-other".into(),
            ..peer("Available")
        })),
        Case::new(
            "adoption of a missing peer is reported, never turned into a create",
            ApplyStep::AdoptionImpossible {
                message: "peer bgp-1111 to adopt does not exist in region cn-shanghai".into(),
                missing: true,
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .observed(Observation::NotFound),
        Case::new(
            "deleting an Available peer deletes it",
            CleanupStep::Delete {
                id: "bgp-1111".into(),
            },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "deleting waits while the cloud deletes",
            CleanupStep::WaitGone {
                id: "bgp-1111".into(),
                overdue: None,
            },
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Deleting"))),
        Case::new(
            "deleting waits for a Pending peer (the API refuses to delete it yet)",
            wait_deleting("Pending"),
        )
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Pending"))),
        Case::new(
            "the finalizer goes once the peer is gone",
            release(Left::Nothing),
        )
        .deleting()
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "cleanup of an object never created makes no cloud call",
            release(Left::Nothing),
        )
        .deleting(),
        Case::new(
            "cleanup with a create in flight learns the peer ID first, so nothing leaks",
            CleanupStep::ReplayCreate {
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
            release(Left::Orphaned("bgp-1111".into())),
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "a failed adoption leaves nothing to delete",
            release(Left::Nothing),
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .deleting(),
        // --- read-after-write lag (safety #2) ---
        Case::new(
            "a peer created moments ago and never seen is not visible yet, never 'deleted'",
            wait(reasons::NOT_YET_VISIBLE),
        )
        .status(just_created(10))
        .observed(Observation::NotFound),
        Case::new(
            "a never-seen peer absent for longer than the grace is recreated",
            ApplyStep::Create {
                client_token: format!("abo-{UID}-1"),
                incarnation: 1,
                recreate: true,
            },
        )
        .status(just_created(600))
        .observed(Observation::NotFound),
        Case::new(
            "deleting a just-created, never-seen peer waits for it instead of releasing over it",
            CleanupStep::WaitGone {
                id: "bgp-1111".into(),
                overdue: None,
            },
        )
        .deleting()
        .status(just_created(10))
        .observed(Observation::NotFound),
        Case::new(
            "a Deleted peer of a live object counts as vanished",
            ApplyStep::Create {
                client_token: format!("abo-{UID}-1"),
                incarnation: 1,
                recreate: true,
            },
        )
        .status(with_id())
        .observed(Observation::Found(peer("Deleted"))),
        // --- one owner per peer (safety #1) ---
        Case::new(
            "an adopter of a peer another object owns is refused, naming the owner",
            ApplyStep::Refuse {
                reason: reasons::ALREADY_OWNED,
                message: "BGP peer bgp-1111 is already owned by ns/a: a cloud peer has one owner in the cluster. Remove spec.adoptBgpPeerId's object or the owner first".into(),
            },
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .claimed_by("ns/a")
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "deleting a losing adopter never touches the owner's peer",
            release(Left::Owned {
                id: "bgp-1111".into(),
                owner: "ns/a".into(),
            }),
        )
        .spec(|s| s.adopt_bgp_peer_id = Some("bgp-1111".into()))
        .status(BgpPeerStatus {
            adopted: true,
            ..with_id()
        })
        .claimed_by("ns/a")
        .deleting()
        .observed(Observation::Found(peer("Available"))),
        // --- the account the peer is bound to (safety #3) ---
        Case::new(
            "credentials of another account never recreate an 'absent' peer",
            ApplyStep::Refuse {
                reason: reasons::ACCOUNT_MISMATCH,
                message: String::new(),
            },
        )
        .account(Some("999"))
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "credentials of another account never release the finalizer of a live peer",
            CleanupStep::Refuse {
                reason: reasons::ACCOUNT_MISMATCH,
                message: String::new(),
            },
        )
        .account(Some("999"))
        .deleting()
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "Orphan releases even with the wrong account (it touches nothing)",
            release(Left::Orphaned("bgp-1111".into())),
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .account(Some("999"))
        .deleting()
        .status(with_id()),
        // --- immutability without CEL (safety #12) ---
        Case::new(
            "a changed bgpGroupId (CRD rules bypassed) is refused, not a recreate",
            ApplyStep::Refuse {
                reason: reasons::IMMUTABLE_FIELD_CHANGED,
                message: String::new(),
            },
        )
        .spec(|s| s.bgp_group_id = "bgpg-bbbb".into())
        .status(with_id())
        .observed(Observation::NotFound),
        Case::new(
            "a changed regionId is refused",
            ApplyStep::Refuse {
                reason: reasons::IMMUTABLE_FIELD_CHANGED,
                message: String::new(),
            },
        )
        .spec(|s| s.region_id = "cn-beijing".into())
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        // --- a peer moved out of band (safety #9) ---
        Case::new(
            "a peer moved to another group out of band is moved back",
            ApplyStep::Modify(PeerDiff {
                bgp_group_id: Some("bgpg-aaaa".into()),
                ..Default::default()
            }),
        )
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            bgp_group_id: "bgpg-other".into(),
            ..peer("Available")
        })),
        // --- transitions that never end (safety #8) ---
        Case::new(
            "a Pending that outlasts the transition timeout is reported",
            ApplyStep::Wait {
                cloud_status: "Pending".into(),
                overdue: Some(std::time::Duration::from_secs(1200)),
            },
        )
        .status(BgpPeerStatus {
            waiting_since: Some(at(NOW - 1200)),
            ..with_id()
        })
        .observed(Observation::Found(peer("Pending"))),
        Case::new(
            "an unknown cloud status is waited on (and reported once overdue), never treated as Available",
            wait("Frozen"),
        )
        .status(with_id())
        .observed(Observation::Found(peer("Frozen"))),
        Case::new(
            "a Deleting peer of a live object is waited on with the timeout too",
            ApplyStep::Wait {
                cloud_status: "Deleting".into(),
                overdue: Some(std::time::Duration::from_secs(3600)),
            },
        )
        .status(BgpPeerStatus {
            waiting_since: Some(at(NOW - 3600)),
            ..with_id()
        })
        .observed(Observation::Found(peer("Deleting"))),
        // --- Orphan releases say what they leave (safety #13) ---
        Case::new(
            "Orphan after DeleteBgpPeer was accepted does not claim the peer was left",
            release(Left::AlreadyDeleting("bgp-1111".into())),
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .status(BgpPeerStatus {
            delete_requested_at: Some(at(NOW - 5)),
            ..with_id()
        })
        .deleting(),
        Case::new(
            "Orphan with an unrecorded create in flight names the token it leaves",
            release(Left::OrphanedUnknown(format!("abo-{UID}"))),
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .status(BgpPeerStatus {
            client_token: Some(format!("abo-{UID}")),
            ..Default::default()
        })
        .deleting(),
        // --- management policies (issue 14) ---
        Case::new(
            "Observe reports a found peer and its drift, never a write",
            ApplyStep::Observed(PeerDiff {
                bfd_multi_hop: Some(3),
                enable_bfd: Some(true),
                ..Default::default()
            }),
        )
        .spec(|s| {
            s.management_policy = crate::api::ManagementPolicy::Observe;
            s.adopt_bgp_peer_id = Some("bgp-1111".into());
        })
        .observed(Observation::Found(ObservedPeer {
            bfd_multi_hop: Some(5),
            ..peer("Available")
        })),
        Case::new(
            "Observe of a missing peer is reported missing (Stalled NotFound), never a create",
            ApplyStep::ObservedMissing {
                message: "BGP peer bgp-1111 does not exist in region cn-shanghai (managementPolicy: Observe: the operator only reads it)".into(),
            },
        )
        .spec(|s| {
            s.management_policy = crate::api::ManagementPolicy::Observe;
            s.adopt_bgp_peer_id = Some("bgp-1111".into());
        })
        .observed(Observation::NotFound),
        Case::new(
            "deleting an Observe object leaves the peer",
            release(Left::Observed("bgp-1111".into())),
        )
        .spec(|s| {
            s.management_policy = crate::api::ManagementPolicy::Observe;
            s.adopt_bgp_peer_id = Some("bgp-1111".into());
        })
        .deleting(),
        Case::new(
            "Report lists drift without modifying",
            ApplyStep::Drifted(PeerDiff {
                bfd_multi_hop: Some(3),
                enable_bfd: Some(true),
                ..Default::default()
            }),
        )
        .spec(|s| s.drift_policy = crate::api::DriftPolicy::Report)
        .status(with_id())
        .observed(Observation::Found(ObservedPeer {
            bfd_multi_hop: Some(5),
            ..peer("Available")
        })),
        Case::new(
            "a deletion-protected peer is not deleted",
            CleanupStep::Refuse {
                reason: reasons::DELETION_PROTECTED,
                message: String::new(),
            },
        )
        .protected()
        .deleting()
        .status(with_id())
        .observed(Observation::Found(peer("Available"))),
        Case::new(
            "deletion protection does not hold an object that never made anything",
            release(Left::Nothing),
        )
        .protected()
        .deleting(),
        Case::new(
            "deletion protection lets Orphan go: it deletes nothing",
            release(Left::Orphaned("bgp-1111".into())),
        )
        .spec(|s| s.deletion_policy = DeletionPolicy::Orphan)
        .protected()
        .deleting()
        .status(with_id()),
    ]
}

#[test]
fn drift_is_described_field_by_field() {
    let observed = ObservedPeer {
        bfd_multi_hop: Some(5),
        ..peer("Available")
    };
    let d = diff(&spec(), &observed);
    assert_eq!(
        describe_drift(&spec(), &observed, &d),
        vec!["bfdMultiHop: 5 → 3".to_owned()]
    );
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
            account: case.account,
            claimed_by: case.claimed_by.as_ref(),
            now: at(NOW).0,
            timing: Timing::default(),
            deletion_protected: case.protected,
        });
        match (&got, &case.want) {
            // An empty expected message: the reason is what the case is about.
            (
                Plan::Apply(ApplyStep::Refuse { reason, .. }),
                Plan::Apply(ApplyStep::Refuse {
                    reason: want,
                    message,
                }),
            )
            | (
                Plan::Cleanup(CleanupStep::Refuse { reason, .. }),
                Plan::Cleanup(CleanupStep::Refuse {
                    reason: want,
                    message,
                }),
            ) if message.is_empty() => assert_eq!(reason, want, "{}", case.reason),
            _ => assert_eq!(got, case.want, "{}", case.reason),
        }
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
            account: case.account,
            claimed_by: case.claimed_by.as_ref(),
            now: at(NOW).0,
            timing: Timing::default(),
            deletion_protected: case.protected,
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
        bgp_group_id: Some("bgpg-aaaa".into()),
    };
    assert_eq!(
        d.fields(),
        vec!["peerIpAddress", "enableBfd", "bfdMultiHop", "bgpGroupId"]
    );
    assert!(PeerDiff::default().is_empty());
}

#[test]
fn modify_always_states_bfd_and_its_hop_count() {
    let spec = spec();
    let observed = peer("Available");
    let ip_only = PeerDiff {
        peer_ip_address: Some("10.0.0.9".into()),
        ..Default::default()
    };
    // The API defaults an absent EnableBfd to false: an IP change must not switch BFD off.
    let call = modify_call(&spec, &observed, &ip_only);
    assert!(call.enable_bfd);
    assert_eq!(call.bfd_multi_hop, Some(3));
    // An omitted hop count keeps the cloud's, else the API's default.
    let mut no_hops = spec.clone();
    no_hops.bfd_multi_hop = None;
    assert_eq!(
        modify_call(&no_hops, &observed, &ip_only).bfd_multi_hop,
        Some(3)
    );
    let unknown = ObservedPeer {
        bfd_multi_hop: None,
        ..observed.clone()
    };
    assert_eq!(
        modify_call(&no_hops, &unknown, &ip_only).bfd_multi_hop,
        Some(DEFAULT_BFD_MULTI_HOP)
    );
    // BFD off: stated as off, no hop count.
    let mut off = spec;
    off.enable_bfd = false;
    off.bfd_multi_hop = None;
    let call = modify_call(&off, &observed, &ip_only);
    assert!(!call.enable_bfd);
    assert_eq!(call.bfd_multi_hop, None);
}

#[test]
fn account_and_claims_matter_only_with_a_peer_or_token() {
    // A fresh object has nothing bound yet: any account may create it.
    let input = PlanInput {
        uid: UID,
        spec: &spec(),
        status: &BgpPeerStatus::default(),
        observed: &Observation::NotLookedUp,
        deleting: false,
        paused: false,
        replay_expired: false,
        account: Some("999"),
        claimed_by: None,
        now: at(NOW).0,
        timing: Timing::default(),
        deletion_protected: false,
    };
    assert!(matches!(
        plan(&input),
        Plan::Apply(ApplyStep::Create { .. })
    ));
}
