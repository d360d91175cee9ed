//! The controller against a real kube-apiserver and the VPC emulator over HTTP: the whole
//! lifecycle, crashes, drift, deletion, pause, and every error class with its condition.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;

use alicloud_bgp_operator::api::conditions::reasons;
use alicloud_bgp_operator::api::{BgpPeer, CREATE_RESULT_ANNOTATION, FINALIZER, PAUSED_ANNOTATION};
use alicloud_bgp_operator::cloud::{CreateBgpPeerRequest, Credentials};
use alicloud_bgp_operator::controller::context::ControllerConfig;
use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::faults::Fault;
use alicloud_bgp_operator::emulator::model::Status;
use alicloud_bgp_operator::emulator::state::PeerChange;

use common::operator::{
    GROUP, GROUP_V6, Operator, REGION, condition, test_controller_config, test_emulator_config,
    vpc_client,
};

fn spec(ip: &str) -> serde_json::Value {
    json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip, "enableBfd": true, "bfdMultiHop": 3})
}

fn fault(action: &str, code: &str, count: u32) -> Fault {
    Fault {
        action: action.to_owned(),
        code: Some(code.to_owned()),
        status: None,
        message: None,
        count: Some(count),
        probability: None,
        delay_ms: None,
    }
}

#[tokio::test]
async fn create_reaches_ready_with_exactly_one_peer() {
    let op = Operator::start("create-ready").await;
    op.create("a", spec("10.1.0.2")).await;
    let obj = op.wait_ready("a").await;
    let status = obj.status.clone().expect("status");
    let id = status.bgp_peer_id.clone().expect("peer id recorded");
    assert_eq!(
        status.client_token.as_deref(),
        Some(format!("abo-{}", obj.uid().expect("uid")).as_str()),
        "token derived from the UID"
    );
    assert!(obj.finalizers().contains(&FINALIZER.to_owned()));
    let peers = op.cloud_peers_of(&obj);
    assert_eq!(peers.len(), 1, "exactly one cloud peer: {peers:?}");
    let peer = &peers[0];
    assert_eq!(peer.bgp_peer_id, id);
    assert_eq!(peer.peer_ip_address, "10.1.0.2");
    assert!(peer.enable_bfd);
    assert_eq!(peer.bfd_multi_hop, 3);
    assert_eq!(op.calls("CreateBgpPeer"), 1);
    let cloud = status.cloud.expect("cloud view");
    assert_eq!(cloud.status.as_deref(), Some("Available"));
    assert_eq!(cloud.peer_asn.as_deref(), Some("65001"));
    for (t, s) in [
        ("Ready", "True"),
        ("Reconciling", "False"),
        ("Stalled", "False"),
    ] {
        assert_eq!(
            condition(&obj, t).map(|c| c.status.as_str()),
            Some(s),
            "{t}"
        );
    }
}

#[tokio::test]
async fn ipv6_peer_reaches_ready() {
    let op = Operator::start("create-v6").await;
    op.create(
        "v6",
        json!({"regionId": REGION, "bgpGroupId": GROUP_V6, "ipVersion": "IPv6", "peerIpAddress": "2408:4000:1000::2"}),
    )
    .await;
    let obj = op.wait_ready("v6").await;
    assert_eq!(op.cloud_peers_of(&obj).len(), 1);
}

#[tokio::test]
async fn a_lost_status_write_after_create_never_duplicates() {
    let op = Operator::start("crash-after-create").await;
    op.ctx.hooks.crash_after_create.store(1, Ordering::SeqCst);
    op.create("a", spec("10.2.0.2")).await;
    let obj = op.wait_ready("a").await;
    assert_eq!(
        op.cloud_peers_of(&obj).len(),
        1,
        "one peer despite the lost write"
    );
    assert_eq!(
        op.calls("CreateBgpPeer"),
        2,
        "the create was replayed with the same ClientToken"
    );
    assert_eq!(op.ctx.hooks.crash_after_create.load(Ordering::SeqCst), 0);
}

/// A create whose result was lost and that is older than the replay window is not replayed
/// (the API may have forgotten its token): the group is searched, the unclaimed peer with
/// the requested IP is named in a Stalled condition, and a person's annotation settles it.
#[tokio::test]
async fn an_old_unrecorded_create_is_verified_not_replayed() {
    let config = ControllerConfig {
        create_replay_window: Duration::ZERO,
        ..test_controller_config()
    };
    let op = Operator::start_with("verify-create", test_emulator_config(), config).await;
    op.ctx.hooks.crash_after_create.store(1, Ordering::SeqCst);
    op.create("a", spec("10.2.9.2")).await;
    let obj = op
        .wait_condition("a", "Stalled", "True", reasons::CREATE_UNVERIFIED)
        .await;
    let peers = op.cloud_peers_of(&obj);
    assert_eq!(peers.len(), 1);
    let id = peers[0].bgp_peer_id.clone();
    let message = condition(&obj, "Stalled").map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains(&id) && m.contains(CREATE_RESULT_ANNOTATION)),
        "{message:?}"
    );
    assert_eq!(op.calls("CreateBgpPeer"), 1, "never replayed blindly");

    // An answer not bound to the create's token is ignored.
    op.annotate("a", CREATE_RESULT_ANNOTATION, Some(&id)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = op.api().get("a").await.expect("get");
    assert!(condition(&still, "Stalled").is_some_and(|c| c.status == "True"));
    let token = still
        .status
        .as_ref()
        .and_then(|s| s.client_token.clone())
        .expect("token");
    assert!(
        message.as_deref().is_some_and(|m| m.contains(&token)),
        "the message names the token to answer for"
    );
    op.annotate(
        "a",
        CREATE_RESULT_ANNOTATION,
        Some(&format!("{token}={id}")),
    )
    .await;
    let obj = op.wait_ready("a").await;
    op.wait("a", "the used answer removed", |o| {
        !o.annotations().contains_key(CREATE_RESULT_ANNOTATION)
    })
    .await;
    assert_eq!(
        obj.status.as_ref().and_then(|s| s.bgp_peer_id.clone()),
        Some(id)
    );
    assert_eq!(op.cloud_peers_of(&obj).len(), 1);
    assert_eq!(op.calls("CreateBgpPeer"), 1);
}

/// The same old create, but it never reached the cloud: nothing to find, so the object
/// starts afresh under a new incarnation (a new token) and ends with exactly one peer.
#[tokio::test]
async fn an_old_create_that_made_nothing_starts_afresh() {
    let config = ControllerConfig {
        create_replay_window: Duration::ZERO,
        ..test_controller_config()
    };
    let op = Operator::start_with("verify-create-none", test_emulator_config(), config).await;
    // Every attempt of the first create (the client's own retries included) fails.
    op.emu
        .inject_fault(fault("CreateBgpPeer", "ServiceUnavailable", 3));
    op.create("a", spec("10.2.9.3")).await;
    let obj = op.wait_ready("a").await;
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.incarnation, 1, "a fresh create, not a replay");
    assert!(
        status
            .client_token
            .as_deref()
            .is_some_and(|t| t.ends_with("-1")),
        "{:?}",
        status.client_token
    );
    assert_eq!(op.cloud_peers_of(&obj).len(), 1);
}

#[tokio::test]
async fn a_killed_controller_resumes_without_duplicates() {
    let mut op = Operator::start("kill-restart").await;
    // Slow creates so the kill lands while the call is in flight.
    op.emu.inject_fault(Fault {
        action: "CreateBgpPeer".into(),
        code: None,
        status: None,
        message: None,
        count: Some(1),
        probability: None,
        delay_ms: Some(1500),
    });
    op.create("a", spec("10.3.0.2")).await;
    // The token is recorded before the call: once it is there, the call is (about to be) made.
    op.wait("a", "create in flight", |o| {
        o.status.as_ref().is_some_and(|s| s.client_token.is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    op.crash_controller().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    op.start_controller();
    let obj = op.wait_ready("a").await;
    assert_eq!(op.cloud_peers_of(&obj).len(), 1, "{:?}", op.emu.peers());
}

#[tokio::test]
async fn spec_changes_are_applied_in_place() {
    let op = Operator::start("modify").await;
    op.create("a", spec("10.4.0.2")).await;
    let before = op.wait_ready("a").await;
    let id = before.status.as_ref().and_then(|s| s.bgp_peer_id.clone());
    op.patch_spec("a", json!({"peerIpAddress": "10.4.0.9", "bfdMultiHop": 7}))
        .await;
    let after = op.wait_ready("a").await;
    assert_eq!(
        after.status.as_ref().and_then(|s| s.bgp_peer_id.clone()),
        id,
        "same peer"
    );
    let peers = op.cloud_peers_of(&after);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_ip_address, "10.4.0.9");
    assert_eq!(peers[0].bfd_multi_hop, 7);
    assert!(op.calls("ModifyBgpPeerAttribute") >= 1);
    assert_eq!(op.calls("CreateBgpPeer"), 1);
}

#[tokio::test]
async fn drift_is_repaired() {
    let op = Operator::start("drift").await;
    op.create("a", spec("10.5.0.2")).await;
    let obj = op.wait_ready("a").await;
    let id = obj
        .status
        .as_ref()
        .and_then(|s| s.bgp_peer_id.clone())
        .expect("id");
    op.emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                enable_bfd: Some(false),
                peer_ip_address: Some("10.5.0.66".into()),
                ..PeerChange::default()
            },
        )
        .expect("out-of-band change");
    // The periodic resync (2 s in tests) notices and repairs it.
    common::wait_for("drift repaired", common::operator::PATIENCE, || async {
        let p = op.emu.peer(&id)?;
        (p.enable_bfd && p.peer_ip_address == "10.5.0.2" && p.status == Status::Available)
            .then_some(())
    })
    .await;
    op.wait_ready("a").await;
    assert_eq!(
        op.calls("CreateBgpPeer"),
        1,
        "repaired in place, not recreated"
    );
}

#[tokio::test]
async fn a_peer_deleted_outside_kubernetes_is_recreated_once() {
    let op = Operator::start("drift-delete").await;
    op.create("a", spec("10.6.0.2")).await;
    let obj = op.wait_ready("a").await;
    let old = obj
        .status
        .as_ref()
        .and_then(|s| s.bgp_peer_id.clone())
        .expect("id");
    assert!(op.emu.delete_peer_out_of_band(&old));
    let obj = op
        .wait("a", "recreated", |o| {
            o.status.as_ref().is_some_and(|s| {
                s.incarnation == 1 && s.bgp_peer_id.as_ref().is_some_and(|id| *id != old)
            })
        })
        .await;
    let obj = op.wait_ready(&obj.name_any()).await;
    let peers = op.cloud_peers_of(&obj);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(
        peers[0]
            .client_token
            .as_deref()
            .is_some_and(|t| t.ends_with("-1"))
    );
}

#[tokio::test]
async fn delete_removes_the_cloud_peer_then_the_finalizer() {
    let op = Operator::start("delete").await;
    op.create("a", spec("10.7.0.2")).await;
    let obj = op.wait_ready("a").await;
    op.delete("a").await;
    op.wait_gone("a").await;
    assert!(op.cloud_peers_of(&obj).is_empty(), "{:?}", op.emu.peers());
    assert_eq!(op.calls("DeleteBgpPeer"), 1);
}

#[tokio::test]
async fn orphan_releases_without_deleting() {
    let op = Operator::start("orphan").await;
    let mut s = spec("10.8.0.2");
    s["deletionPolicy"] = json!("Orphan");
    op.create("a", s).await;
    let obj = op.wait_ready("a").await;
    op.delete("a").await;
    op.wait_gone("a").await;
    assert_eq!(
        op.cloud_peers_of(&obj).len(),
        1,
        "the peer stays in the cloud"
    );
    assert_eq!(op.calls("DeleteBgpPeer"), 0);
}

#[tokio::test]
async fn pause_stops_cloud_calls_until_removed() {
    let op = Operator::start("pause").await;
    op.create("a", spec("10.9.0.2")).await;
    let obj = op.wait_ready("a").await;
    let id = obj
        .status
        .as_ref()
        .and_then(|s| s.bgp_peer_id.clone())
        .expect("id");
    op.annotate("a", PAUSED_ANNOTATION, Some("true")).await;
    op.wait_condition("a", "Ready", "Unknown", "Paused").await;
    let calls = op.emu.counters().total;
    op.patch_spec("a", json!({"peerIpAddress": "10.9.0.7"}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(op.emu.counters().total, calls, "no cloud call while paused");
    assert_eq!(
        op.emu.peer(&id).map(|p| p.peer_ip_address),
        Some("10.9.0.2".into())
    );
    op.annotate("a", PAUSED_ANNOTATION, None).await;
    op.wait_ready("a").await;
    assert_eq!(
        op.emu.peer(&id).map(|p| p.peer_ip_address),
        Some("10.9.0.7".into())
    );
}

#[tokio::test]
async fn status_is_not_rewritten_when_nothing_changes() {
    let op = Operator::start("no-echo").await;
    op.create("a", spec("10.10.0.2")).await;
    op.wait_ready("a").await;
    // The BGP session comes up after the peer is Available (Idle, Connect, Established): a
    // change the status records. Once it is up, nothing changes.
    let obj = op
        .wait("a", "session Established", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.cloud.as_ref())
                .and_then(|c| c.bgp_status.as_deref())
                == Some("Established")
        })
        .await;
    // Three resync periods (2 s) pass: the controller looks and finds nothing to do. The only
    // write allowed is the documented refresh of `lastSyncTime`, at most once per period.
    let without_sync = |o: &BgpPeer| {
        let mut s = o.status.clone().unwrap_or_default();
        s.last_sync_time = None;
        s
    };
    let first = without_sync(&obj);
    let mut versions = std::collections::BTreeSet::new();
    versions.insert(obj.resource_version());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < deadline {
        let later = op.api().get("a").await.expect("get");
        assert_eq!(
            without_sync(&later),
            first,
            "no status change without a cloud change"
        );
        versions.insert(later.resource_version());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        versions.len() <= 4,
        "at most one lastSyncTime write per resync period: {} versions",
        versions.len()
    );
    assert!(op.calls("DescribeBgpPeers") >= 2, "but it did look");
}

#[tokio::test]
async fn adoption_is_explicit() {
    let op = Operator::start("adopt").await;
    let vpc = vpc_client(&op.emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let existing = vpc
        .create_bgp_peer(
            &creds,
            &CreateBgpPeerRequest {
                region_id: REGION.into(),
                bgp_group_id: GROUP.into(),
                peer_ip_address: Some("10.11.0.2".into()),
                ..Default::default()
            },
        )
        .await
        .expect("pre-existing peer")
        .bgp_peer_id;
    let mut s = spec("10.11.0.2");
    s["adoptBgpPeerId"] = json!(existing);
    op.create("a", s).await;
    let obj = op.wait_ready("a").await;
    let status = obj.status.expect("status");
    assert_eq!(status.bgp_peer_id.as_deref(), Some(existing.as_str()));
    assert!(status.adopted);
    assert_eq!(op.calls("CreateBgpPeer"), 1, "only the test's own create");
    // Adopting a peer that does not exist is reported, never turned into a create.
    let mut s = spec("10.11.0.3");
    s["adoptBgpPeerId"] = json!("bgp-doesnotexist000000000");
    op.create("b", s).await;
    op.wait_condition("b", "Stalled", "True", "AdoptionFailed")
        .await;
    assert_eq!(op.calls("CreateBgpPeer"), 1);
}

/// Every error class: the condition it produces, and recovery once the cause is gone.
#[tokio::test]
async fn error_classes_map_to_conditions_and_recover() {
    let op = Operator::start("error-classes").await;
    // (name, fault code, expected condition type, its reason); each fault fires twice.
    let rows = [
        ("terminal", "InvalidIP.Malformed", "Stalled", "InvalidSpec"),
        // A missing group, VBR or region is Stalled (a person must act), still re-checked.
        (
            "dependency",
            "InvalidVbrNetwork",
            "Stalled",
            "DependencyMissing",
        ),
        ("quota", "QuotaExceeded.Bgp", "Reconciling", "QuotaExceeded"),
        ("busy", "InvalidStatus.CannotOperate", "Reconciling", "Busy"),
        ("throttled", "Throttling.User", "Reconciling", "Throttled"),
        (
            "transient",
            "ServiceUnavailable",
            "Reconciling",
            "TransientError",
        ),
        (
            "credentials",
            "InvalidAccessKeyId.NotFound",
            "Stalled",
            "CredentialsError",
        ),
        (
            "idempotency",
            "IdempotentParameterMismatch",
            "Stalled",
            "IdempotencyMismatch",
        ),
        ("unknown", "Vpc.SomethingNew", "Reconciling", "UnknownError"),
    ];
    for (i, (name, code, type_, reason)) in rows.iter().enumerate() {
        op.emu.clear_faults();
        // Transient errors are retried inside the client with the same token; make the fault
        // outlast those retries so the controller sees it.
        op.emu.inject_fault(fault("CreateBgpPeer", code, 4));
        op.create(name, spec(&format!("10.12.{i}.2"))).await;
        let obj = op.wait_condition(name, type_, "True", reason).await;
        let ready = condition(&obj, "Ready").expect("Ready");
        assert_eq!(ready.status, "False", "{name}");
        assert_eq!(ready.reason, *reason, "{name}");
        assert!(
            ready.message.contains(code),
            "{name}: message names the code: {}",
            ready.message
        );
    }
    op.emu.clear_faults();
    // Retryable classes recover by themselves once the cloud stops failing. So does an
    // idempotency mismatch: a spec change cannot help (replays send the recorded
    // parameters), so it is re-checked and settled by verification.
    for name in [
        "dependency",
        "busy",
        "throttled",
        "transient",
        "unknown",
        "idempotency",
    ] {
        op.wait_ready(name).await;
    }
    // Terminal classes wait for a change of the spec; a fixed spec recovers.
    for name in ["terminal", "credentials"] {
        let before = op.calls("CreateBgpPeer");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            op.calls("CreateBgpPeer"),
            before,
            "{name}: no retry without a change"
        );
        op.patch_spec(name, json!({"bfdMultiHop": 4})).await;
        op.wait_ready(name).await;
    }
    // Quota waits longer (minutes): not asserted to recover here.
    let quota = op.api().get("quota").await.expect("quota object");
    assert!(condition(&quota, "Ready").is_some_and(|c| c.status == "False"));
    // Nothing was duplicated on the way.
    for (name, ..) in rows {
        let obj = op.api().get(name).await.expect("object");
        assert!(op.cloud_peers_of(&obj).len() <= 1, "{name}");
    }
}

#[tokio::test]
async fn a_real_missing_group_is_a_missing_dependency() {
    let op = Operator::start("missing-group").await;
    op.create(
        "a",
        json!({"regionId": REGION, "bgpGroupId": "bgpg-doesnotexist00000001", "peerIpAddress": "10.13.0.2"}),
    )
    .await;
    let obj = op
        .wait_condition("a", "Stalled", "True", "DependencyMissing")
        .await;
    let msg = &condition(&obj, "Ready").expect("Ready").message;
    assert!(msg.contains("InvalidBgpGroup"), "{msg}");
    // Cleanup of an object whose create never succeeded does not wedge.
    op.delete("a").await;
    op.wait_gone("a").await;
}

#[tokio::test]
async fn per_object_credentials_and_their_secret() {
    let op = Operator::start("secret-creds").await;
    let mut s = spec("10.14.0.2");
    s["credentialsSecretRef"] = json!({"name": "alicloud"});
    op.create("a", s).await;
    let obj = op
        .wait_condition("a", "Stalled", "True", "CredentialsError")
        .await;
    let msg = &condition(&obj, "Ready").expect("Ready").message;
    assert!(msg.contains("not found"), "{msg}");
    // Creating the Secret unsticks the object at its next credentials recheck (Secrets are
    // re-read, not watched), well before the slow retry.
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.ns);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "alicloud"},
        "stringData": {"accessKeyId": DEMO_ACCESS_KEY_ID, "accessKeySecret": DEMO_ACCESS_KEY_SECRET},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let obj = op.wait_ready("a").await;
    // The secret never shows up in status or events.
    let text = serde_json::to_string(&obj).expect("json");
    assert!(!text.contains(DEMO_ACCESS_KEY_SECRET));
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(op.client.clone(), &op.ns);
    let all = events.list(&Default::default()).await.expect("events");
    let text = serde_json::to_string(&all).expect("json");
    assert!(!text.contains(DEMO_ACCESS_KEY_SECRET));
    assert!(text.contains("Created"), "a Created event was published");
}

#[tokio::test]
async fn a_wrong_secret_is_stalled_and_never_echoed() {
    let op = Operator::start("wrong-secret").await;
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.ns);
    let mut data = BTreeMap::new();
    data.insert("accessKeyId".to_owned(), DEMO_ACCESS_KEY_ID.to_owned());
    data.insert(
        "accessKeySecret".to_owned(),
        "wrong-secret-value-0123456789".to_owned(),
    );
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("wrong".into()),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let mut s = spec("10.15.0.2");
    s["credentialsSecretRef"] = json!({"name": "wrong"});
    op.create("a", s).await;
    let obj = op
        .wait_condition("a", "Stalled", "True", "CredentialsError")
        .await;
    let text = serde_json::to_string(&obj).expect("json");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(
        !text.contains("wrong-secret-value"),
        "secret echoed: {text}"
    );
    assert!(
        !text.contains("string to sign is:POST"),
        "string-to-sign echoed: {text}"
    );
}
