//! The operator's promise under a cloud that is not shaped like the happy path: exactly one
//! cloud peer per object, never a leak, never a deletion nobody asked for, never a silent
//! wait. Real kube-apiserver + the emulator over HTTP; each test names the defect of the
//! safety issue it guards.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use alicloud_bgp_operator::api::conditions::reasons;
use alicloud_bgp_operator::api::{BgpPeer, FINALIZER, PAUSED_ANNOTATION};
use alicloud_bgp_operator::controller::timing::Timing;
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Secret as EmuSecret,
};
use alicloud_bgp_operator::emulator::faults::Fault;
use alicloud_bgp_operator::emulator::state::PeerChange;

use common::operator::{
    GROUP, Operator, REGION, condition, test_controller_config, test_emulator_config,
};

const OTHER_KEY_ID: &str = "LTAI5tOtherAccountKey0001";
const OTHER_KEY_SECRET: &str = "OtherAccountSecretNotForProduction1";

fn spec(ip: &str) -> serde_json::Value {
    json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip, "enableBfd": true, "bfdMultiHop": 3})
}

fn fault(action: &str, code: &str) -> Fault {
    Fault {
        action: action.to_owned(),
        code: Some(code.to_owned()),
        status: None,
        message: None,
        count: None,
        probability: None,
        delay_ms: None,
    }
}

fn write_calls(op: &Operator) -> u64 {
    ["CreateBgpPeer", "ModifyBgpPeerAttribute", "DeleteBgpPeer"]
        .iter()
        .map(|a| op.calls(a))
        .sum()
}

async fn stays(op: &Operator, name: &str, for_: Duration, pred: impl Fn(&BgpPeer) -> bool) {
    let deadline = tokio::time::Instant::now() + for_;
    while tokio::time::Instant::now() < deadline {
        let obj = op.api().get(name).await.expect("object still exists");
        assert!(pred(&obj), "{name} changed: {:?}", obj.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// #1: a peer has one owner. B adopting A's peer is refused with A's name, makes no write,
/// and deleting B leaves the peer (and A Ready).
#[tokio::test]
async fn adoption_of_an_owned_peer_is_refused_and_its_deletion_touches_nothing() {
    let op = Operator::start("safety-adopt-owned").await;
    op.create("a", spec("10.20.0.2")).await;
    let a = op.wait_ready("a").await;
    let id = a.peer_id().expect("id").to_owned();
    let writes = write_calls(&op);
    let mut b = spec("10.20.0.2");
    b["adoptBgpPeerId"] = json!(id);
    op.create("b", b).await;
    let obj = op
        .wait_condition("b", "Stalled", "True", reasons::ALREADY_OWNED)
        .await;
    let msg = &condition(&obj, "Stalled").expect("Stalled").message;
    assert!(msg.contains(&format!("{}/a", op.ns)), "{msg}");
    assert_eq!(
        write_calls(&op),
        writes,
        "the refused adopter wrote nothing"
    );
    op.delete("b").await;
    op.wait_gone("b").await;
    assert!(op.emu.peer(&id).is_some(), "A's peer is untouched");
    assert_eq!(op.calls("DeleteBgpPeer"), 0);
    op.wait_ready("a").await;
    assert_eq!(op.calls("CreateBgpPeer"), 1, "A never recreated its peer");
}

/// #2: read-after-write lag. A new peer hidden from Describe for a while is waited for, not
/// recreated; and deleting the object meanwhile leaks nothing.
#[tokio::test]
async fn a_peer_hidden_by_read_after_write_lag_is_never_recreated() {
    let mut emu = test_emulator_config();
    emu.visibility_lag = Duration::from_secs(3);
    let mut cfg = test_controller_config();
    cfg.timing = Timing {
        visibility_grace: Duration::from_secs(30),
        ..Timing::default()
    };
    let op = Operator::start_with("safety-lag", emu, cfg).await;
    op.create("a", spec("10.21.0.2")).await;
    let seen_lag = op
        .wait_condition("a", "Reconciling", "True", reasons::NOT_YET_VISIBLE)
        .await;
    assert!(seen_lag.peer_id().is_some(), "the ID stays recorded");
    let obj = op.wait_ready("a").await;
    assert_eq!(op.calls("CreateBgpPeer"), 1, "one create, no recreate");
    assert_eq!(op.cloud_peers_of(&obj).len(), 1);
    assert_eq!(obj.status.as_ref().map(|s| s.incarnation), Some(0));

    // Deleting right after the create, while the peer is still invisible: no leak.
    op.create("b", spec("10.21.0.3")).await;
    let b = op
        .wait("b", "peer ID recorded", |o| o.peer_id().is_some())
        .await;
    op.delete("b").await;
    op.wait_gone("b").await;
    assert!(
        op.cloud_peers_of(&b).is_empty(),
        "the invisible peer was deleted, not leaked: {:?}",
        op.cloud_peers_of(&b)
    );
}

async fn put_secret(op: &Operator, id: &str, secret: &str) {
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.ns);
    let body: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "alicloud"},
        "stringData": {"accessKeyId": id, "accessKeySecret": secret},
    }))
    .expect("secret");
    match secrets.get_opt("alicloud").await.expect("get secret") {
        None => {
            secrets
                .create(&PostParams::default(), &body)
                .await
                .expect("create secret");
        }
        Some(_) => {
            secrets
                .patch(
                    "alicloud",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"stringData": {"accessKeyId": id, "accessKeySecret": secret}}),
                    ),
                )
                .await
                .expect("patch secret");
        }
    }
}

/// #3: ownership is bound to the account. Credentials of another account never recreate the
/// (now invisible) peer, and never release the finalizer over it; restoring them resumes.
#[tokio::test]
async fn credentials_of_another_account_neither_recreate_nor_release() {
    let mut emu = test_emulator_config();
    emu.accounts.push(AccountConfig {
        uid: "2222222222222222".into(),
        access_keys: vec![AccessKeyConfig {
            id: OTHER_KEY_ID.into(),
            secret: EmuSecret::new(OTHER_KEY_SECRET),
            user: None,
        }],
        roles: vec![],
    });
    let op = Operator::start_with("safety-account", emu, test_controller_config()).await;
    put_secret(&op, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET).await;
    let mut s = spec("10.22.0.2");
    s["credentialsSecretRef"] = json!({"name": "alicloud"});
    op.create("a", s).await;
    let obj = op.wait_ready("a").await;
    let id = obj.peer_id().expect("id").to_owned();
    assert_eq!(
        obj.status.as_ref().and_then(|s| s.account_id.as_deref()),
        Some("1234567890123456"),
        "the owning account is recorded"
    );
    put_secret(&op, OTHER_KEY_ID, OTHER_KEY_SECRET).await;
    let obj = op
        .wait_condition("a", "Stalled", "True", reasons::ACCOUNT_MISMATCH)
        .await;
    let msg = &condition(&obj, "Stalled").expect("Stalled").message;
    assert!(
        msg.contains("2222222222222222") && msg.contains("Orphan"),
        "{msg}"
    );
    assert!(!msg.contains(OTHER_KEY_SECRET));
    assert_eq!(
        op.calls("CreateBgpPeer"),
        1,
        "no recreate in the other account"
    );
    // Deleting now keeps the finalizer: the peer still exists.
    op.delete("a").await;
    stays(&op, "a", Duration::from_secs(3), |o| {
        o.finalizers().contains(&FINALIZER.to_owned())
    })
    .await;
    assert!(op.emu.peer(&id).is_some());
    assert_eq!(op.calls("DeleteBgpPeer"), 0);
    // Restoring the credentials lets the deletion finish: nothing leaks.
    put_secret(&op, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET).await;
    op.wait_gone("a").await;
    assert!(op.emu.peer(&id).is_none(), "deleted in the owning account");
}

/// #4: a create that may have reached the cloud (token recorded, ID lost) keeps its token
/// when the replay is throttled; deleting the object then deletes the peer instead of
/// releasing over it.
#[tokio::test]
async fn a_throttled_replay_keeps_the_token_and_nothing_leaks() {
    let op = Operator::start("safety-throttled-replay").await;
    // Creates succeed but their ID is never recorded (a crash right after each) until the
    // fault is in place.
    op.ctx
        .hooks
        .crash_after_create
        .store(1000, Ordering::SeqCst);
    op.create("a", spec("10.23.0.2")).await;
    op.wait("a", "a create in flight without its ID", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.client_token.is_some() && s.bgp_peer_id.is_none())
    })
    .await;
    op.emu
        .inject_fault(fault("CreateBgpPeer", "Throttling.User"));
    op.ctx.hooks.crash_after_create.store(0, Ordering::SeqCst);
    let creates = op.calls("CreateBgpPeer");
    op.delete("a").await;
    // The replay is throttled: that proves nothing, so the token and the finalizer stay.
    wait_until(|| op.calls("CreateBgpPeer") > creates).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let obj = op.api().get("a").await.expect("still there");
    let status = obj.status.clone().unwrap_or_default();
    assert!(
        status.client_token.is_some(),
        "the token is kept: {status:?}"
    );
    assert!(obj.finalizers().contains(&FINALIZER.to_owned()));
    assert_eq!(
        op.emu.peers().len(),
        1,
        "the peer the first create made exists"
    );
    op.emu.clear_faults();
    op.wait_gone("a").await;
    assert!(
        op.emu.peers().is_empty(),
        "the peer was deleted, not leaked"
    );
}

async fn wait_until(f: impl Fn() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached");
}

/// #8: a transition that never ends is reported (Stalled TransitionTimeout + a Warning
/// event) and recovers by itself.
#[tokio::test]
async fn a_stuck_transition_is_reported_and_recovers() {
    let mut emu = test_emulator_config();
    emu.pending_delay = Duration::from_secs(6);
    let mut cfg = test_controller_config();
    cfg.timing = Timing {
        transition_timeout: Duration::from_secs(2),
        ..Timing::default()
    };
    let op = Operator::start_with("safety-stuck", emu, cfg).await;
    op.create("a", spec("10.24.0.2")).await;
    let obj = op
        .wait_condition("a", "Stalled", "True", reasons::TRANSITION_TIMEOUT)
        .await;
    let msg = &condition(&obj, "Stalled").expect("Stalled").message;
    assert!(msg.contains("Pending"), "{msg}");
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(op.client.clone(), &op.ns);
    let text = wait_for_events(&events, "TransitionTimeout").await;
    assert!(text.contains("Warning"));
    op.wait_ready("a").await;
    assert_eq!(op.calls("CreateBgpPeer"), 1);
}

async fn wait_for_events(
    events: &Api<k8s_openapi::api::events::v1::Event>,
    needle: &str,
) -> String {
    for _ in 0..100 {
        let all = events.list(&Default::default()).await.expect("events");
        let text = serde_json::to_string(&all).expect("json");
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no event {needle}");
}

/// #9: a peer moved to another group out of band is moved back (and the group is in status).
#[tokio::test]
async fn a_peer_moved_to_another_group_is_moved_back() {
    let mut emu = test_emulator_config();
    let mut second = emu
        .groups
        .iter()
        .find(|g| g.id == GROUP)
        .cloned()
        .expect("the IPv4 group");
    let other = "bgpg-emu00000000000000009".to_owned();
    second.id = other.clone();
    second.is_default = false;
    emu.groups.push(second);
    let op = Operator::start_with("safety-moved", emu, test_controller_config()).await;
    op.create("a", spec("10.25.0.2")).await;
    let obj = op.wait_ready("a").await;
    let id = obj.peer_id().expect("id").to_owned();
    op.emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                bgp_group_id: Some(other.clone()),
                ..Default::default()
            },
        )
        .expect("moved out of band");
    op.wait("a", "moved back", |_| {
        op.emu.peer(&id).is_some_and(|p| p.bgp_group_id == GROUP)
    })
    .await;
    let obj = op.wait_ready("a").await;
    assert_eq!(
        obj.status
            .and_then(|s| s.cloud)
            .and_then(|c| c.bgp_group_id)
            .as_deref(),
        Some(GROUP)
    );
    assert!(op.calls("ModifyBgpPeerAttribute") >= 1);
    assert_eq!(op.calls("CreateBgpPeer"), 1);
}

/// #13: pause holds every deletion, even of an object that never created anything.
#[tokio::test]
async fn pause_holds_every_deletion() {
    let op = Operator::start("safety-pause-delete").await;
    let mut ann = std::collections::HashMap::new();
    ann.insert(PAUSED_ANNOTATION.to_owned(), "true".to_owned());
    op.create_annotated("a", spec("10.26.0.2"), ann).await;
    op.wait_condition("a", "Ready", "Unknown", reasons::PAUSED)
        .await;
    op.delete("a").await;
    stays(&op, "a", Duration::from_secs(2), |o| {
        o.finalizers().contains(&FINALIZER.to_owned())
    })
    .await;
    assert_eq!(write_calls(&op), 0);
    op.annotate("a", PAUSED_ANNOTATION, None).await;
    op.wait_gone("a").await;
    assert_eq!(op.calls("CreateBgpPeer"), 0, "nothing was ever created");
}

/// #10: DeleteBgpPeer answering "not found" is not a failure (no DependencyMissing warning,
/// no backoff): the deletion is recorded and the absence confirmed by a read.
#[tokio::test]
async fn delete_answering_not_found_is_progress_not_an_error() {
    let op = Operator::start("safety-delete-notfound").await;
    op.create("a", spec("10.27.0.2")).await;
    let obj = op.wait_ready("a").await;
    let id = obj.peer_id().expect("id").to_owned();
    // The peer goes out of band, and the API says so when asked to delete it.
    op.emu.delete_peer_out_of_band(&id);
    op.emu.inject_fault(Fault {
        count: Some(1),
        ..fault("DeleteBgpPeer", "InvalidParams.NotFound")
    });
    op.delete("a").await;
    op.wait_gone("a").await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(op.client.clone(), &op.ns);
    let all = events.list(&Default::default()).await.expect("events");
    let warnings: Vec<_> = all
        .items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        !warnings.iter().any(|r| r == "DependencyMissing"),
        "no warning for a peer that is already gone: {warnings:?}"
    );
}

/// #7: a replay answered IdempotentParameterMismatch during deletion neither wedges the
/// finalizer nor loses the peer: it is verified by listing, a person names the result, and
/// the peer is deleted.
#[tokio::test]
async fn an_idempotency_mismatch_on_replay_is_settled_without_losing_the_peer() {
    let op = Operator::start("safety-mismatch").await;
    op.ctx
        .hooks
        .crash_after_create
        .store(1000, Ordering::SeqCst);
    op.create("a", spec("10.28.0.2")).await;
    let obj = op
        .wait("a", "a create in flight without its ID", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.client_token.is_some() && s.bgp_peer_id.is_none())
        })
        .await;
    let token = obj
        .status
        .as_ref()
        .and_then(|s| s.client_token.clone())
        .expect("token");
    let made = op.cloud_peers_of(&obj);
    assert_eq!(made.len(), 1);
    op.emu
        .inject_fault(fault("CreateBgpPeer", "IdempotentParameterMismatch"));
    op.ctx.hooks.crash_after_create.store(0, Ordering::SeqCst);
    op.delete("a").await;
    // The unrecorded peer is a candidate: a person must say, nothing is released or made.
    let obj = op
        .wait_condition("a", "Stalled", "True", reasons::CREATE_UNVERIFIED)
        .await;
    assert!(obj.finalizers().contains(&FINALIZER.to_owned()));
    let msg = &condition(&obj, "Stalled").expect("Stalled").message;
    assert!(msg.contains(&made[0].bgp_peer_id), "{msg}");
    op.annotate(
        "a",
        alicloud_bgp_operator::api::CREATE_RESULT_ANNOTATION,
        Some(&format!("{token}={}", made[0].bgp_peer_id)),
    )
    .await;
    op.wait_gone("a").await;
    assert!(
        op.emu.peers().is_empty(),
        "the peer was deleted, not leaked"
    );
}
