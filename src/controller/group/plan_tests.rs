//! Table-driven tests of the BgpGroup [`plan`]: each case says why the expected step is right.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::*;
use crate::api::conditions::reasons;
use crate::api::group::{BgpGroupSpec, BgpGroupStatus, SecretKeyReference};
use crate::api::{DeletionPolicy, IpVersion};
use crate::cloud::PeerStatus;
use crate::controller::timing::Timing;
use crate::controller::token::client_token_for;

const UID: &str = "7d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6";
const ACCOUNT: &str = "1234567890123456";
const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).expect("timestamp"))
}

fn spec() -> BgpGroupSpec {
    BgpGroupSpec {
        region_id: "cn-shanghai".into(),
        router_id: "vbr-aaaa".into(),
        peer_asn: 65010,
        local_asn: Some(64512),
        is_fake_asn: false,
        ip_version: IpVersion::IPv4,
        route_quota: Some(200),
        name: Some("edge".into()),
        description: Some("Edge group".into()),
        auth_key_secret_ref: Some(SecretKeyReference {
            name: "bgp-md5".into(),
            key: "authKey".into(),
        }),
        ..Default::default()
    }
}

/// A group as the cloud reports it when it matches [`spec`].
fn group(status: &str) -> ObservedGroup {
    ObservedGroup {
        id: "bgpg-1111".into(),
        status: PeerStatus::parse(status),
        region_id: Some("cn-shanghai".into()),
        router_id: Some("vbr-aaaa".into()),
        ip_version: Some("IPv4".into()),
        peer_asn: Some(65010),
        local_asn: Some(64512),
        is_fake_asn: Some(false),
        route_limit: Some(200),
        name: Some("edge".into()),
        description: Some("Edge group".into()),
        auth_key_in_sync: Some(true),
        peers: None,
    }
}

/// A group the operator created and has seen.
fn with_id() -> BgpGroupStatus {
    BgpGroupStatus {
        bgp_group_id: Some("bgpg-1111".into()),
        bgp_group_id_recorded_at: Some(at(NOW - 3600)),
        client_token: Some(client_token_for(UID, 0)),
        account_id: Some(ACCOUNT.into()),
        region_id: Some("cn-shanghai".into()),
        router_id: Some("vbr-aaaa".into()),
        ip_version: Some(IpVersion::IPv4),
        cloud: Some(Default::default()),
        ..Default::default()
    }
}

/// A group the operator created `secs_ago` and has not seen yet.
fn just_created(secs_ago: i64) -> BgpGroupStatus {
    BgpGroupStatus {
        cloud: None,
        bgp_group_id_recorded_at: Some(at(NOW - secs_ago)),
        ..with_id()
    }
}

/// A create whose token is recorded but whose ID is not (a crash after CreateBgpGroup).
fn token_only() -> BgpGroupStatus {
    BgpGroupStatus {
        bgp_group_id: None,
        bgp_group_id_recorded_at: None,
        cloud: None,
        create_requested_at: Some(at(NOW - 30)),
        ..with_id()
    }
}

fn wait(status: &str) -> GroupPlan {
    GroupPlan::Wait {
        cloud_status: status.into(),
        overdue: None,
    }
}

fn release(left: Left) -> GroupPlan {
    GroupPlan::ReleaseFinalizer { left }
}

fn found(g: ObservedGroup) -> GroupObservation {
    GroupObservation::Found(Box::new(g))
}

struct Case {
    reason: &'static str,
    spec: BgpGroupSpec,
    status: BgpGroupStatus,
    observed: GroupObservation,
    deleting: bool,
    paused: bool,
    account: Option<&'static str>,
    dependents: Vec<String>,
    replay_expired: bool,
    create_result: Option<CreateResult>,
    claimed_by: Option<&'static str>,
    expected: GroupPlan,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            reason: "",
            spec: spec(),
            status: BgpGroupStatus::default(),
            observed: GroupObservation::NotLookedUp,
            deleting: false,
            paused: false,
            account: Some(ACCOUNT),
            dependents: Vec::new(),
            replay_expired: false,
            create_result: None,
            claimed_by: None,
            expected: GroupPlan::UpToDate,
        }
    }
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let input = GroupPlanInput {
            uid: UID,
            spec: &case.spec,
            status: &case.status,
            observed: &case.observed,
            deleting: case.deleting,
            paused: case.paused,
            account: case.account,
            dependents: &case.dependents,
            replay_expired: case.replay_expired,
            create_result: case.create_result.as_ref(),
            claimed_by: case.claimed_by,
            now: jiff::Timestamp::from_second(NOW).expect("now"),
            timing: Timing::default(),
        };
        assert_eq!(plan(&input), case.expected, "{}", case.reason);
    }
}

fn is_refusal(p: &GroupPlan, want: &str) -> bool {
    matches!(p, GroupPlan::Refuse { reason, .. } if *reason == want)
}

#[test]
fn apply_cases() {
    run(vec![
        Case {
            reason: "a new object creates with the token of its UID, incarnation 0",
            expected: GroupPlan::Create {
                client_token: client_token_for(UID, 0),
                incarnation: 0,
                recreate: false,
            },
            ..Default::default()
        },
        Case {
            reason: "pause holds everything",
            paused: true,
            expected: GroupPlan::Paused,
            ..Default::default()
        },
        Case {
            reason: "a recorded token without an ID is replayed, never created afresh (crash after CreateBgpGroup)",
            status: token_only(),
            expected: GroupPlan::ReplayCreate {
                client_token: client_token_for(UID, 0),
            },
            ..Default::default()
        },
        Case {
            reason: "a group created a moment ago and not visible yet is waited for, not recreated",
            status: just_created(5),
            observed: GroupObservation::NotFound,
            expected: wait(reasons::NOT_YET_VISIBLE),
            ..Default::default()
        },
        Case {
            reason: "a seen group that vanished is created again under the next incarnation",
            status: with_id(),
            observed: GroupObservation::NotFound,
            expected: GroupPlan::Create {
                client_token: client_token_for(UID, 1),
                incarnation: 1,
                recreate: true,
            },
            ..Default::default()
        },
        Case {
            reason: "a never-seen group past the visibility grace counts as vanished",
            status: just_created(600),
            observed: GroupObservation::NotFound,
            expected: GroupPlan::Create {
                client_token: client_token_for(UID, 1),
                incarnation: 1,
                recreate: true,
            },
            ..Default::default()
        },
        Case {
            reason: "Pending is waited on",
            status: with_id(),
            observed: found(group("Pending")),
            expected: wait("Pending"),
            ..Default::default()
        },
        Case {
            reason: "Available and as specified is up to date",
            status: with_id(),
            observed: found(group("Available")),
            expected: GroupPlan::UpToDate,
            ..Default::default()
        },
        Case {
            reason: "drift of ASNs and the key is modified in place",
            status: with_id(),
            observed: found(ObservedGroup {
                peer_asn: Some(65099),
                local_asn: Some(45104),
                auth_key_in_sync: Some(false),
                ..group("Available")
            }),
            expected: GroupPlan::Modify(vec![Field::PeerAsn, Field::LocalAsn, Field::AuthKey]),
            ..Default::default()
        },
        Case {
            reason: "no localAsn in the spec means the cloud's default 45104",
            spec: BgpGroupSpec {
                local_asn: None,
                ..spec()
            },
            status: with_id(),
            observed: found(ObservedGroup {
                local_asn: Some(64512),
                ..group("Available")
            }),
            expected: GroupPlan::Modify(vec![Field::LocalAsn]),
            ..Default::default()
        },
        Case {
            reason: "fields the spec leaves out are the cloud's to keep",
            spec: BgpGroupSpec {
                route_quota: None,
                name: None,
                description: None,
                ..spec()
            },
            status: with_id(),
            observed: found(ObservedGroup {
                route_limit: Some(110),
                name: None,
                description: Some("set in the console".into()),
                ..group("Available")
            }),
            expected: GroupPlan::UpToDate,
            ..Default::default()
        },
        Case {
            reason: "isFakeAsn is compared (the cloud's absent value is false)",
            spec: BgpGroupSpec {
                is_fake_asn: true,
                ..spec()
            },
            status: with_id(),
            observed: found(ObservedGroup {
                is_fake_asn: None,
                ..group("Available")
            }),
            expected: GroupPlan::Modify(vec![Field::IsFakeAsn]),
            ..Default::default()
        },
        Case {
            reason: "adoption of a matching group",
            spec: BgpGroupSpec {
                adopt_bgp_group_id: Some("bgpg-1111".into()),
                ..spec()
            },
            observed: found(group("Available")),
            expected: GroupPlan::Adopt {
                id: "bgpg-1111".into(),
            },
            ..Default::default()
        },
        Case {
            reason: "an adopted group that vanished is not created again",
            status: BgpGroupStatus {
                adopted: true,
                ..with_id()
            },
            observed: GroupObservation::NotFound,
            expected: GroupPlan::AdoptionImpossible {
                message: "the adopted BGP group bgpg-1111 no longer exists in the cloud; it is not created again (spec.adoptBgpGroupId)".into(),
                missing: true,
            },
            ..Default::default()
        },
        Case {
            reason: "a token older than the replay window with a person's answer naming the group records it",
            status: token_only(),
            replay_expired: true,
            create_result: Some(CreateResult {
                client_token: client_token_for(UID, 0),
                group_id: Some("bgpg-2222".into()),
            }),
            expected: GroupPlan::RecordCreateResult {
                id: "bgpg-2222".into(),
            },
            ..Default::default()
        },
        Case {
            reason: "a person's \"none\" for an old create starts a new incarnation",
            status: token_only(),
            replay_expired: true,
            create_result: Some(CreateResult {
                client_token: client_token_for(UID, 0),
                group_id: None,
            }),
            expected: GroupPlan::Create {
                client_token: client_token_for(UID, 1),
                incarnation: 1,
                recreate: false,
            },
            ..Default::default()
        },
    ]);
}

#[test]
fn apply_refusals() {
    let refusal = |status: BgpGroupStatus,
                   spec: BgpGroupSpec,
                   account: &'static str,
                   claimed_by: Option<&'static str>,
                   replay_expired: bool| {
        let observed = GroupObservation::NotLookedUp;
        plan(&GroupPlanInput {
            uid: UID,
            spec: &spec,
            status: &status,
            observed: &observed,
            deleting: false,
            paused: false,
            account: Some(account),
            dependents: &[],
            replay_expired,
            create_result: None,
            claimed_by,
            now: jiff::Timestamp::from_second(NOW).expect("now"),
            timing: Timing::default(),
        })
    };
    // Credentials of another account are never used for the group.
    assert!(is_refusal(
        &refusal(with_id(), spec(), "9999", None, false),
        reasons::ACCOUNT_MISMATCH
    ));
    // A spec that names another VBR than the group was made on (immutability bypassed).
    let moved = BgpGroupSpec {
        router_id: "vbr-bbbb".into(),
        ..spec()
    };
    let p = refusal(with_id(), moved, ACCOUNT, None, false);
    assert!(is_refusal(&p, reasons::IMMUTABLE_FIELD_CHANGED), "{p:?}");
    assert!(format!("{p:?}").contains("routerId vbr-aaaa → vbr-bbbb"));
    // One owner per cloud group.
    assert!(is_refusal(
        &refusal(with_id(), spec(), ACCOUNT, Some("team-a/edge"), false),
        reasons::ALREADY_OWNED
    ));
    // An unrecorded create older than the replay window is not replayed blindly.
    let p = refusal(token_only(), spec(), ACCOUNT, None, true);
    assert!(is_refusal(&p, reasons::CREATE_UNVERIFIED), "{p:?}");
    // An adoption of a group on another VBR.
    let adopt = BgpGroupSpec {
        adopt_bgp_group_id: Some("bgpg-1111".into()),
        ..spec()
    };
    let observed = found(ObservedGroup {
        router_id: Some("vbr-other".into()),
        ..group("Available")
    });
    let p = plan(&GroupPlanInput {
        uid: UID,
        spec: &adopt,
        status: &BgpGroupStatus::default(),
        observed: &observed,
        deleting: false,
        paused: false,
        account: Some(ACCOUNT),
        dependents: &[],
        replay_expired: false,
        create_result: None,
        claimed_by: None,
        now: jiff::Timestamp::from_second(NOW).expect("now"),
        timing: Timing::default(),
    });
    assert!(
        matches!(&p, GroupPlan::AdoptionImpossible { missing: false, message } if message.contains("VBR vbr-other")),
        "{p:?}"
    );
}

#[test]
fn cleanup_cases() {
    let orphan = BgpGroupSpec {
        deletion_policy: DeletionPolicy::Orphan,
        ..spec()
    };
    run(vec![
        Case {
            reason: "a group that peers still resolve to keeps its finalizer, naming them",
            deleting: true,
            status: with_id(),
            dependents: vec!["team-a/peer-1".into(), "team-a/peer-2".into()],
            expected: GroupPlan::WaitForDependents {
                names: vec!["team-a/peer-1".into(), "team-a/peer-2".into()],
                in_cloud: false,
            },
            ..Default::default()
        },
        Case {
            reason: "the dependents rule holds even before the cloud is looked at (no credentials needed)",
            deleting: true,
            status: with_id(),
            account: None,
            dependents: vec!["team-a/peer-1".into()],
            expected: GroupPlan::WaitForDependents {
                names: vec!["team-a/peer-1".into()],
                in_cloud: false,
            },
            ..Default::default()
        },
        Case {
            reason: "Orphan releases at once, with dependents too, naming the group left",
            deleting: true,
            spec: orphan.clone(),
            status: with_id(),
            dependents: vec!["team-a/peer-1".into()],
            expected: release(Left::Orphaned("bgpg-1111".into())),
            ..Default::default()
        },
        Case {
            reason: "Orphan with an unrecorded create says any group it made is left",
            deleting: true,
            spec: orphan,
            status: token_only(),
            expected: release(Left::OrphanedUnknown(client_token_for(UID, 0))),
            ..Default::default()
        },
        Case {
            reason: "nothing ever created: release without a call",
            deleting: true,
            expected: release(Left::Nothing),
            ..Default::default()
        },
        Case {
            reason: "no dependents, Available, no peers in the cloud: delete",
            deleting: true,
            status: with_id(),
            observed: found(ObservedGroup {
                peers: Some(Vec::new()),
                ..group("Available")
            }),
            expected: GroupPlan::Delete {
                id: "bgpg-1111".into(),
            },
            ..Default::default()
        },
        Case {
            reason: "peers the cluster does not manage still in the cloud group: wait, naming them (0 DependencyViolation)",
            deleting: true,
            status: with_id(),
            observed: found(ObservedGroup {
                peers: Some(vec!["bgp-9999".into()]),
                ..group("Available")
            }),
            expected: GroupPlan::WaitForDependents {
                names: vec!["bgp-9999".into()],
                in_cloud: true,
            },
            ..Default::default()
        },
        Case {
            reason: "after DeleteBgpGroup was accepted the group is waited on, not deleted again",
            deleting: true,
            status: BgpGroupStatus {
                delete_requested_at: Some(at(NOW - 2)),
                ..with_id()
            },
            observed: found(group("Available")),
            expected: GroupPlan::WaitGone {
                id: "bgpg-1111".into(),
                overdue: None,
            },
            ..Default::default()
        },
        Case {
            reason: "Deleting is waited on",
            deleting: true,
            status: with_id(),
            observed: found(group("Deleting")),
            expected: GroupPlan::WaitGone {
                id: "bgpg-1111".into(),
                overdue: None,
            },
            ..Default::default()
        },
        Case {
            reason: "gone after our delete: release",
            deleting: true,
            status: BgpGroupStatus {
                delete_requested_at: Some(at(NOW - 5)),
                ..with_id()
            },
            observed: GroupObservation::NotFound,
            expected: release(Left::Nothing),
            ..Default::default()
        },
        Case {
            reason: "a group created a moment ago and not visible yet is not released (it would leak)",
            deleting: true,
            status: just_created(3),
            observed: GroupObservation::NotFound,
            expected: wait(reasons::NOT_YET_VISIBLE),
            ..Default::default()
        },
        Case {
            reason: "an unrecorded create is replayed during deletion to learn what to delete",
            deleting: true,
            status: token_only(),
            expected: GroupPlan::ReplayCreate {
                client_token: client_token_for(UID, 0),
            },
            ..Default::default()
        },
        Case {
            reason: "a group another object owns is released without a call",
            deleting: true,
            status: with_id(),
            claimed_by: Some("team-b/edge"),
            expected: release(Left::Owned {
                id: "bgpg-1111".into(),
                owner: "team-b/edge".into(),
            }),
            ..Default::default()
        },
        Case {
            reason: "pause holds deletion too",
            deleting: true,
            paused: true,
            status: with_id(),
            expected: GroupPlan::Paused,
            ..Default::default()
        },
    ]);
}

#[test]
fn cleanup_refuses_another_account_and_reports_overdue_waits() {
    let status = with_id();
    let observed = found(group("Deleting"));
    let input = |account: &'static str, status: &BgpGroupStatus| {
        plan(&GroupPlanInput {
            uid: UID,
            spec: &spec(),
            status,
            observed: &observed,
            deleting: true,
            paused: false,
            account: Some(account),
            dependents: &[],
            replay_expired: false,
            create_result: None,
            claimed_by: None,
            now: jiff::Timestamp::from_second(NOW).expect("now"),
            timing: Timing::default(),
        })
    };
    assert!(is_refusal(
        &input("9999", &status),
        reasons::ACCOUNT_MISMATCH
    ));
    let waiting = BgpGroupStatus {
        waiting_since: Some(at(NOW - 1800)),
        ..with_id()
    };
    assert_eq!(
        input(ACCOUNT, &waiting),
        GroupPlan::WaitGone {
            id: "bgpg-1111".into(),
            overdue: Some(Duration::from_secs(1800)),
        }
    );
}

#[test]
fn drift_is_described_without_the_key() {
    let g = ObservedGroup {
        peer_asn: Some(65099),
        auth_key_in_sync: Some(false),
        ..group("Available")
    };
    let fields = diff(&spec(), &g);
    let text = describe_diff(&spec(), &g, &fields).join("; ");
    assert_eq!(
        text,
        "peerAsn: 65099 → 65010; authKey: another key → the key of spec.authKeySecretRef"
    );
}

#[test]
fn a_settled_group_is_not_read_again_before_its_resync() {
    use crate::api::Condition;
    let now = jiff::Timestamp::from_second(NOW).expect("now");
    let resync = Duration::from_secs(600);
    let ready = |generation: i64| Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Available".into(),
        message: Default::default(),
        observed_generation: Some(generation),
        last_transition_time: at(NOW - 100),
    };
    let settled = BgpGroupStatus {
        observed_generation: Some(1),
        last_sync_time: Some(at(NOW - 100)),
        conditions: vec![ready(1)],
        ..with_id()
    };
    assert_eq!(
        fresh_for(&settled, Some(1), now, resync),
        Some(Duration::from_secs(500))
    );
    // A new generation, an old confirmation, not Ready, or no ID: read now.
    assert_eq!(fresh_for(&settled, Some(2), now, resync), None);
    let old = BgpGroupStatus {
        last_sync_time: Some(at(NOW - 600)),
        ..settled.clone()
    };
    assert_eq!(fresh_for(&old, Some(1), now, resync), None);
    let pending = BgpGroupStatus {
        conditions: Vec::new(),
        ..settled.clone()
    };
    assert_eq!(fresh_for(&pending, Some(1), now, resync), None);
    let no_id = BgpGroupStatus {
        bgp_group_id: None,
        ..settled
    };
    assert_eq!(fresh_for(&no_id, Some(1), now, resync), None);
}
