//! The BgpGroup kind against the real apiserver and the emulator (issue 19): admission of
//! every spec rule, exactly one CreateBgpGroup (also across a crash right after it), key
//! rotation and removal, the deletion order with referring BgpPeers (0
//! `DependencyViolation.BgpPeer`), Orphan, and the auth key found nowhere but in its Secret
//! and the cloud.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::api::group::BgpGroup;
use alicloud_bgp_operator::cloud::{
    AuthKey, CreateBgpGroupRequest, ModifyBgpGroupAttributeRequest,
};
use alicloud_bgp_operator::emulator::Status;
use alicloud_bgp_operator::emulator::config::DEMO_VBR;

use common::operator::{Operator, PATIENCE, REGION, test_controller_config, test_emulator_config};

/// The MD5 key of these tests: it must turn up in no status, event, log line or metric.
const KEY: &str = "Grp19-Md5-Key-4c7e2a";
/// The key after a rotation.
const ROTATED: &str = "Grp19-Rotated-9d1f0b";

/// Every log line of this test binary (the controller runs in-process).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,alicloud_bgp_operator=trace",
            ))
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An operator (the test CRDs include BgpGroup, so its controller runs), logs captured.
async fn operator(test: &str) -> Operator {
    logs();
    Operator::start_with(test, test_emulator_config(), test_controller_config()).await
}

fn groups(op: &Operator) -> Api<BgpGroup> {
    Api::namespaced(op.client.clone(), &op.ns)
}

async fn create_key_secret(op: &Operator, name: &str, value: &str) {
    let secrets: Api<Secret> = Api::namespaced(op.client.clone(), &op.ns);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "authKey".to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    secrets
        .patch(
            name,
            &PatchParams::apply("abo-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("key Secret");
}

fn group_spec(extra: Value) -> Value {
    let mut spec = json!({
        "regionId": REGION,
        "routerId": DEMO_VBR,
        "peerAsn": 65010,
        "localAsn": 64512,
        "name": "edge-a",
        "description": "Edge routers",
        "authKeySecretRef": {"name": "bgp-md5", "key": "authKey"},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                s.remove(k);
            } else {
                s.insert(k.clone(), v.clone());
            }
        }
    }
    spec
}

async fn create_group(op: &Operator, name: &str, spec: Value) -> BgpGroup {
    let obj: BgpGroup = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpGroup",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("BgpGroup");
    groups(op)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create BgpGroup")
}

async fn wait_group(
    op: &Operator,
    name: &str,
    what: &str,
    pred: impl Fn(&BgpGroup) -> bool,
) -> BgpGroup {
    let api = groups(op);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let obj = api.get_opt(name).await.ok().flatten();
        if let Some(obj) = &obj
            && pred(obj)
        {
            return obj.clone();
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out waiting for BgpGroup {name}: {what}; last status: {}; emulator calls: {:?}",
                obj.map(|o| serde_json::to_string_pretty(&o.status).unwrap_or_default())
                    .unwrap_or_else(|| "<object missing>".into()),
                op.emu.counters().by_action_code
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(g: &BgpGroup) -> bool {
    let generation = g.metadata.generation;
    g.status.as_ref().is_some_and(|s| {
        s.observed_generation == generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn reason(g: &BgpGroup) -> Option<String> {
    g.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.to_string())
}

async fn wait_group_gone(op: &Operator, name: &str) {
    let api = groups(op);
    common::wait_for(&format!("BgpGroup {name} deleted"), PATIENCE, || {
        let api = api.clone();
        async move { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }
    })
    .await;
}

/// The cloud's key of group `id`.
fn cloud_key(op: &Operator, id: &str) -> Option<String> {
    op.emu
        .groups()
        .into_iter()
        .find(|g| g.bgp_group_id == id)
        .map(|g| g.auth_key)
}

#[tokio::test]
async fn a_group_becomes_ready_with_one_create_and_follows_its_key() {
    let op = operator("group-ready").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    create_group(&op, "edge", group_spec(json!({}))).await;
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let status = g.status.clone().expect("status");
    let id = status.bgp_group_id.clone().expect("bgpGroupId");
    assert!(id.starts_with("bgpg-"));
    assert_eq!(op.emu.counters().count("CreateBgpGroup", "OK"), 1);
    let token = status.client_token.clone().expect("token recorded");
    let made: Vec<_> = op
        .emu
        .groups()
        .into_iter()
        .filter(|g| g.client_token.as_deref() == Some(token.as_str()))
        .collect();
    assert_eq!(made.len(), 1, "exactly one group for the object");
    let cloud = &made[0];
    assert_eq!(
        (cloud.peer_asn, cloud.local_asn, cloud.name.as_str()),
        (65010, 64512, "edge-a")
    );
    assert_eq!(cloud.auth_key, KEY);
    let view = status.cloud.expect("cloud view");
    assert_eq!(view.status.as_deref(), Some("Available"));
    assert_eq!(view.auth_key_set, Some(true));
    assert_eq!(status.router_id.as_deref(), Some(DEMO_VBR));
    assert!(status.account_id.is_some());

    // Rotating the Secret changes the cloud key at the next resync (Secrets are not
    // watched); removing the reference clears it.
    create_key_secret(&op, "bgp-md5", ROTATED).await;
    common::wait_for("rotated key in the cloud", PATIENCE, || {
        let key = cloud_key(&op, &id);
        async move { (key.as_deref() == Some(ROTATED)).then_some(()) }
    })
    .await;
    // A spec change is modified in place.
    groups(&op)
        .patch(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"peerAsn": 65020, "authKeySecretRef": null}})),
        )
        .await
        .expect("patch");
    wait_group(&op, "edge", "Ready for generation 2", |g| {
        ready(g) && g.metadata.generation == Some(2)
    })
    .await;
    let cloud = op
        .emu
        .groups()
        .into_iter()
        .find(|g| g.bgp_group_id == id)
        .expect("group");
    assert_eq!((cloud.peer_asn, cloud.auth_key.as_str()), (65020, ""));
    assert_eq!(op.emu.counters().count("CreateBgpGroup", "OK"), 1);
    assert!(op.emu.counters().count("ModifyBgpGroupAttribute", "OK") >= 2);
}

#[tokio::test]
async fn a_crash_right_after_create_makes_exactly_one_group() {
    let op = operator("group-crash").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    // The first create succeeds in the cloud, and the reconcile dies before the ID is recorded.
    op.ctx.hooks.crash_after_create.store(1, Ordering::SeqCst);
    create_group(&op, "edge", group_spec(json!({}))).await;
    let g = wait_group(&op, "edge", "Ready", ready).await;
    assert_eq!(
        op.ctx.hooks.crash_after_create.load(Ordering::SeqCst),
        0,
        "the hook fired"
    );
    let status = g.status.expect("status");
    let token = status.client_token.expect("token");
    let made: Vec<_> = op
        .emu
        .groups()
        .into_iter()
        .filter(|g| g.client_token.as_deref() == Some(token.as_str()))
        .collect();
    assert_eq!(made.len(), 1, "the replay answered the same group");
    assert_eq!(
        status.bgp_group_id.as_deref(),
        Some(made[0].bgp_group_id.as_str())
    );
    // The create was called twice with the same token: the original and its replay.
    assert_eq!(op.emu.counters().count("CreateBgpGroup", "OK"), 2);
    let on_vbr = op
        .emu
        .groups()
        .into_iter()
        .filter(|g| g.router_id == DEMO_VBR && g.client_token.is_some())
        .count();
    assert_eq!(on_vbr, 1, "no second group on the VBR");
}

fn peer_spec(ip: &str) -> Value {
    json!({
        "regionId": REGION,
        "bgpGroupRef": {"name": "edge"},
        "peerIpAddress": ip,
    })
}

#[tokio::test]
async fn deleting_a_group_with_its_peers_waits_for_them_and_deletes_once() {
    let op = operator("group-delete-order").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    create_group(&op, "edge", group_spec(json!({}))).await;
    for (name, ip) in [
        ("p1", "10.19.0.1"),
        ("p2", "10.19.0.2"),
        ("p3", "10.19.0.3"),
    ] {
        op.create(name, peer_spec(ip)).await;
    }
    for name in ["p1", "p2", "p3"] {
        op.wait_ready(name).await;
    }
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let id = g.group_id().expect("id").to_owned();
    assert_eq!(op.emu.counters().count("CreateBgpGroup", "OK"), 1);
    assert_eq!(op.emu.counters().count("CreateBgpPeer", "OK"), 3);
    // Pause one peer so its deletion (and with it the group's) waits: deterministic.
    op.annotate("p3", "vpc.alicloud.dev/paused", Some("true"))
        .await;
    // Everything at once, as `kubectl delete -f dir/` or a GitOps prune does.
    groups(&op)
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete group");
    for name in ["p1", "p2", "p3"] {
        op.delete(name).await;
    }
    let waiting = wait_group(&op, "edge", "DependentsExist", |g| {
        reason(g).as_deref() == Some("DependentsExist")
    })
    .await;
    let message = waiting
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&format!("{}/p3", op.ns)), "{message}");
    assert_eq!(op.emu.counters().calls("DeleteBgpGroup"), 0);
    op.wait_gone("p1").await;
    op.wait_gone("p2").await;
    assert!(
        groups(&op).get_opt("edge").await.expect("get").is_some(),
        "the group waits for p3"
    );
    op.annotate("p3", "vpc.alicloud.dev/paused", None).await;
    op.wait_gone("p3").await;
    wait_group_gone(&op, "edge").await;
    let counters = op.emu.counters();
    assert_eq!(
        counters.count("DeleteBgpGroup", "OK"),
        1,
        "{:?}",
        counters.by_action_code
    );
    assert_eq!(counters.code("DependencyViolation.BgpPeer"), 0);
    assert!(
        op.emu.groups().iter().all(|g| g.bgp_group_id != id),
        "group deleted"
    );
    assert!(
        op.emu.peers().iter().all(|p| p.bgp_group_id != id),
        "peers deleted"
    );
    // The wait was said once, as an event naming the peers.
    let events: Api<Event> = Api::namespaced(op.client.clone(), &op.ns);
    let said = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("DependentsExist"))
        .count();
    assert_eq!(said, 1);
}

#[tokio::test]
async fn an_orphaned_group_is_released_at_once_and_left_in_the_cloud() {
    let op = operator("group-orphan").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    create_group(&op, "edge", group_spec(json!({"deletionPolicy": "Orphan"}))).await;
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let id = g.group_id().expect("id").to_owned();
    // A peer still uses it: Orphan does not wait for it, and the peer is unaffected.
    op.create("p1", peer_spec("10.19.1.1")).await;
    op.wait_ready("p1").await;
    groups(&op)
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete");
    wait_group_gone(&op, "edge").await;
    assert_eq!(op.emu.counters().calls("DeleteBgpGroup"), 0);
    assert!(
        op.emu.groups().iter().any(|g| g.bgp_group_id == id),
        "left in the cloud"
    );
    let peer: BgpPeer = op.api().get("p1").await.expect("peer");
    assert!(peer.metadata.deletion_timestamp.is_none());
    assert!(op.emu.peers().iter().any(|p| p.bgp_group_id == id));
}

#[tokio::test]
async fn a_missing_key_secret_stalls_before_any_create() {
    let op = operator("group-no-secret").await;
    create_group(&op, "edge", group_spec(json!({}))).await;
    let g = wait_group(&op, "edge", "Stalled AuthKeyUnavailable", |g| {
        g.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Stalled" && c.status == "True" && c.reason == "AuthKeyUnavailable"
            })
        })
    })
    .await;
    let status = g.status.expect("status");
    assert!(
        status.client_token.is_none(),
        "no token recorded without the key"
    );
    assert_eq!(op.emu.counters().calls("CreateBgpGroup"), 0);
    // The Secret appears: the group is created at the recheck (every 2 min; Secrets are not
    // watched), or at once when the object changes, as here.
    create_key_secret(&op, "bgp-md5", KEY).await;
    groups(&op)
        .patch(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/touched": "1"}}})),
        )
        .await
        .expect("touch");
    wait_group(&op, "edge", "Ready", ready).await;
    assert_eq!(op.emu.counters().count("CreateBgpGroup", "OK"), 1);
}

#[tokio::test]
async fn the_auth_key_is_found_nowhere_but_the_secret_and_the_cloud() {
    let op = operator("group-no-leak").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    create_group(&op, "edge", group_spec(json!({}))).await;
    create_group(
        &op,
        "bad-key",
        group_spec(
            json!({"authKeySecretRef": {"name": "bad-md5", "key": "authKey"}, "name": "edge-b"}),
        ),
    )
    .await;
    // A key the API refuses (a space): its refusal is written to status and events.
    create_key_secret(&op, "bad-md5", "has a space KEY").await;
    for name in ["p1", "p2"] {
        op.create(
            name,
            peer_spec(if name == "p1" {
                "10.19.2.1"
            } else {
                "10.19.2.2"
            }),
        )
        .await;
    }
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let id = g.group_id().expect("id").to_owned();
    op.wait_ready("p1").await;
    op.wait_ready("p2").await;
    wait_group(&op, "bad-key", "InvalidSpec", |g| {
        reason(g).as_deref() == Some("InvalidSpec")
    })
    .await;
    // Rotate, then delete everything.
    create_key_secret(&op, "bgp-md5", ROTATED).await;
    common::wait_for("rotated key in the cloud", PATIENCE, || {
        let key = cloud_key(&op, &id);
        async move { (key.as_deref() == Some(ROTATED)).then_some(()) }
    })
    .await;
    // Everything the operator wrote, while it still exists.
    let mut written = String::new();
    let ar = ApiResource::erase::<BgpGroup>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(op.client.clone(), &op.ns, &ar);
    for obj in dynamic
        .list(&ListParams::default())
        .await
        .expect("groups")
        .items
    {
        written.push_str(&serde_json::to_string(&obj).expect("json"));
    }
    for obj in op
        .api()
        .list(&ListParams::default())
        .await
        .expect("peers")
        .items
    {
        written.push_str(&serde_json::to_string(&obj).expect("json"));
    }
    groups(&op)
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete");
    groups(&op)
        .delete("bad-key", &DeleteParams::default())
        .await
        .expect("delete");
    op.delete("p1").await;
    op.delete("p2").await;
    wait_group_gone(&op, "edge").await;
    wait_group_gone(&op, "bad-key").await;
    let events: Api<Event> = Api::namespaced(op.client.clone(), &op.ns);
    for e in events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
    {
        written.push_str(&serde_json::to_string(&e).expect("json"));
    }
    written.push_str(&op.ctx.metrics.encode());
    let logs = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    assert!(
        logs.contains("created BGP group"),
        "the controller's logs were captured"
    );
    assert!(
        written.contains("Created BGP group"),
        "the events were read"
    );
    assert!(
        written.contains("InvalidBgpAuthkey.Malformed"),
        "the refusal was recorded"
    );
    let b64 = |k: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(k)
    };
    for key in [KEY, ROTATED, "has a space KEY"] {
        for form in [key.to_owned(), b64(key)] {
            assert!(
                !written.contains(&form),
                "{form:?} in status, events or metrics"
            );
            assert!(!logs.contains(&form), "{form:?} in the logs");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admission: every spec rule, against the real apiserver.
// ---------------------------------------------------------------------------------------------

fn dynamic_groups(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<BgpGroup>(&());
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn group_object(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpGroup",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("object")
}

fn minimal() -> Value {
    json!({"regionId": REGION, "routerId": DEMO_VBR, "peerAsn": 65010})
}

fn with(mut base: Value, patch: Value) -> Value {
    if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[tokio::test]
async fn admission_refuses_what_the_api_would_with_clear_messages() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "group-admission").await;
    let api = dynamic_groups(&client, &ns);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "peer-asn-aliyun",
            with(minimal(), json!({"peerAsn": 45104})),
            "peerAsn cannot be 45104",
        ),
        (
            "peer-asn-zero",
            with(minimal(), json!({"peerAsn": 0})),
            "spec.peerAsn",
        ),
        (
            "peer-asn-big",
            with(minimal(), json!({"peerAsn": 4_294_967_296_i64})),
            "spec.peerAsn",
        ),
        (
            "no-peer-asn",
            json!({"regionId": REGION, "routerId": DEMO_VBR}),
            "spec.peerAsn",
        ),
        (
            "local-asn-reserved",
            with(minimal(), json!({"localAsn": 65025})),
            "localAsn must be 45104",
        ),
        (
            "local-asn-gap",
            with(minimal(), json!({"localAsn": 64511})),
            "localAsn must be 45104",
        ),
        (
            "local-asn-top",
            with(minimal(), json!({"localAsn": 4_294_967_295_i64})),
            "spec.localAsn",
        ),
        (
            "name-digit",
            with(minimal(), json!({"name": "1edge"})),
            "spec.name",
        ),
        (
            "name-short",
            with(minimal(), json!({"name": "e"})),
            "spec.name",
        ),
        (
            "name-space",
            with(minimal(), json!({"name": "edge a"})),
            "spec.name",
        ),
        (
            "desc-url",
            with(minimal(), json!({"description": "https://example.com"})),
            "cannot start with http:// or https://",
        ),
        (
            "desc-url-upper",
            with(minimal(), json!({"description": "HTTP://example.com"})),
            "cannot start with http:// or https://",
        ),
        (
            "desc-digit",
            with(minimal(), json!({"description": "9 lives"})),
            "spec.description",
        ),
        (
            "router-malformed",
            with(minimal(), json!({"routerId": "bgpg-abc"})),
            "spec.routerId",
        ),
        (
            "region-malformed",
            with(minimal(), json!({"regionId": "Shanghai"})),
            "spec.regionId",
        ),
        (
            "ip-version",
            with(minimal(), json!({"ipVersion": "IPv5"})),
            "spec.ipVersion",
        ),
        (
            "route-quota",
            with(minimal(), json!({"routeQuota": 0})),
            "spec.routeQuota",
        ),
        (
            "key-ref-without-key",
            with(minimal(), json!({"authKeySecretRef": {"name": "s"}})),
            "spec.authKeySecretRef.key",
        ),
        (
            "key-ref-bad-name",
            with(
                minimal(),
                json!({"authKeySecretRef": {"name": "Bad_Name", "key": "k"}}),
            ),
            "spec.authKeySecretRef.name",
        ),
        (
            "adopt-malformed",
            with(minimal(), json!({"adoptBgpGroupId": "bgp-abc"})),
            "spec.adoptBgpGroupId",
        ),
        (
            "two-credentials",
            with(
                minimal(),
                json!({"credentialsSecretRef": {"name": "a"}, "cloudIdentityRef": {"name": "b"}}),
            ),
            "set at most one of cloudIdentityRef and credentialsSecretRef",
        ),
        (
            "deletion-policy",
            with(minimal(), json!({"deletionPolicy": "Keep"})),
            "spec.deletionPolicy",
        ),
    ];
    for (name, spec, expected) in cases {
        match api
            .create(&PostParams::default(), &group_object(name, spec.clone()))
            .await
        {
            Ok(_) => panic!("{name}: the apiserver accepted {spec}"),
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{name}: {}", status.message);
                assert!(
                    status.message.contains(expected),
                    "{name}: expected {expected:?} in {}",
                    status.message
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The API's own ranges and characters are accepted.
    for (name, spec) in [
        ("minimal", minimal()),
        (
            "full",
            with(
                minimal(),
                json!({"localAsn": 4_200_000_000_i64, "peerAsn": 4_294_967_295_i64, "name": "边缘-1.a_b", "description": "描述 of the edge", "isFakeAsn": true, "routeQuota": 200, "ipVersion": "IPv6", "authKeySecretRef": {"name": "bgp-md5", "key": "authKey"}, "adoptBgpGroupId": "bgpg-abc123", "deletionPolicy": "Orphan"}),
            ),
        ),
    ] {
        api.create(&PostParams::default(), &group_object(name, spec))
            .await
            .unwrap_or_else(|e| panic!("{name} refused: {e}"));
    }
    let created = api.get("minimal").await.expect("minimal");
    assert_eq!(created.data["spec"]["ipVersion"], "IPv4", "default applied");
    assert_eq!(created.data["spec"]["deletionPolicy"], "Delete");
    assert_eq!(created.data["spec"]["isFakeAsn"], false);
}

#[tokio::test]
async fn admission_keeps_placement_fields_immutable() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "group-immutable").await;
    let api = dynamic_groups(&client, &ns);
    api.create(&PostParams::default(), &group_object("g", minimal()))
        .await
        .expect("created");
    for (change, expected) in [
        (json!({"regionId": "cn-hangzhou"}), "regionId is immutable"),
        (
            json!({"routerId": "vbr-other0000000001"}),
            "routerId is immutable",
        ),
        (json!({"ipVersion": "IPv6"}), "ipVersion is immutable"),
        (
            json!({"adoptBgpGroupId": "bgpg-abc123"}),
            "adoptBgpGroupId cannot be added",
        ),
    ] {
        match api
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": change.clone()})),
            )
            .await
        {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{change}");
                assert!(
                    status.message.contains(expected),
                    "{change}: {}",
                    status.message
                );
            }
            other => panic!("{change}: {other:?}"),
        }
    }
    // Everything ModifyBgpGroupAttribute can change is mutable.
    api.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"peerAsn": 65020, "localAsn": 64600, "isFakeAsn": true, "routeQuota": 150, "name": "renamed", "description": "Renamed group", "authKeySecretRef": {"name": "k", "key": "v"}, "deletionPolicy": "Orphan"}})),
    )
    .await
    .expect("mutable fields change in place");
    let obj = api.get("g").await.expect("get");
    assert_eq!(obj.name_any(), "g");
}

#[tokio::test]
async fn the_group_sample_is_accepted() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "group-samples").await;
    let text = std::fs::read_to_string("deploy/samples/bgpgroup.yaml").expect("sample");
    let mut kinds = Vec::new();
    for doc in text.split("\n---\n") {
        let obj: DynamicObject = serde_saphyr::from_str(doc).expect("sample parses");
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let api: Api<DynamicObject> = match kind.as_str() {
            "Secret" => {
                Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<Secret>(&()))
            }
            "BgpGroup" => dynamic_groups(&client, &ns),
            "BgpPeer" => {
                Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<BgpPeer>(&()))
            }
            other => panic!("unexpected kind {other} in the sample"),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{kind} of the sample refused: {e}"));
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        vec!["Secret", "BgpGroup", "BgpPeer", "BgpPeer", "BgpPeer"]
    );
}

/// A change made behind the operator's back (the console), with the demo account's key.
async fn console_modify(op: &Operator, req: ModifyBgpGroupAttributeRequest) {
    common::operator::vpc_client(&op.emu)
        .modify_bgp_group_attribute(&common::emulator::demo_credentials(), &req)
        .await
        .expect("console modify");
}

#[tokio::test]
async fn drift_made_in_the_console_is_repaired_the_key_included() {
    let op = operator("group-drift").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    create_group(&op, "edge", group_spec(json!({}))).await;
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let id = g.group_id().expect("id").to_owned();
    let modifies = op.emu.counters().count("ModifyBgpGroupAttribute", "OK");
    console_modify(
        &op,
        ModifyBgpGroupAttributeRequest {
            region_id: REGION.into(),
            bgp_group_id: id.clone(),
            peer_asn: Some(65333),
            auth_key: Some(AuthKey::new("set-in-the-console")),
            is_fake_asn: false,
            ..Default::default()
        },
    )
    .await;
    // Repaired at the next resync: the spec's ASN and the Secret's key are back.
    common::wait_for("drift repaired", PATIENCE, || {
        let cloud = op.emu.groups().into_iter().find(|g| g.bgp_group_id == id);
        async move {
            cloud
                .filter(|g| g.peer_asn == 65010 && g.auth_key == KEY)
                .map(|_| ())
        }
    })
    .await;
    assert_eq!(
        op.emu.counters().count("ModifyBgpGroupAttribute", "OK"),
        modifies + 2,
        "one console change, one repair"
    );
    // Events are published in the background: wait for the repair's.
    let events: Api<Event> = Api::namespaced(op.client.clone(), &op.ns);
    let updated: Vec<String> = common::wait_for("the repair's Updated event", PATIENCE, || {
        let events = events.clone();
        async move {
            let notes: Vec<String> = events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("Updated"))
                .filter_map(|e| e.note)
                .collect();
            notes
                .iter()
                .any(|n| {
                    n.contains("peerAsn: 65333 → 65010")
                        && n.contains("authKey: another key → the key of spec.authKeySecretRef")
                })
                .then_some(notes)
        }
    })
    .await;
    assert!(
        updated
            .iter()
            .all(|n| !n.contains("set-in-the-console") && !n.contains(KEY)),
        "{updated:?}"
    );
}

#[tokio::test]
async fn an_existing_group_is_adopted_without_a_create() {
    let op = operator("group-adopt").await;
    create_key_secret(&op, "bgp-md5", KEY).await;
    // A group made outside the cluster (Terraform, the console).
    let existing = common::operator::vpc_client(&op.emu)
        .create_bgp_group(
            &common::emulator::demo_credentials(),
            &CreateBgpGroupRequest {
                region_id: REGION.into(),
                router_id: DEMO_VBR.into(),
                peer_asn: 65010,
                local_asn: Some(64512),
                name: Some("edge-a".into()),
                description: Some("Edge routers".into()),
                ..Default::default()
            },
        )
        .await
        .expect("existing group")
        .bgp_group_id;
    common::wait_for("existing group Available", PATIENCE, || {
        let available = op
            .emu
            .groups()
            .iter()
            .any(|g| g.bgp_group_id == existing && g.status == Status::Available);
        async move { available.then_some(()) }
    })
    .await;
    op.emu.reset_counters();
    create_group(
        &op,
        "edge",
        group_spec(json!({"adoptBgpGroupId": existing})),
    )
    .await;
    let g = wait_group(&op, "edge", "Ready", ready).await;
    let status = g.status.expect("status");
    assert_eq!(status.bgp_group_id.as_deref(), Some(existing.as_str()));
    assert!(status.adopted);
    assert_eq!(op.emu.counters().calls("CreateBgpGroup"), 0);
    // The spec's key was set on the adopted group.
    let cloud = op
        .emu
        .groups()
        .into_iter()
        .find(|g| g.bgp_group_id == existing)
        .expect("group");
    assert_eq!(cloud.auth_key, KEY);
    // A second object adopting the same group is refused: one owner.
    create_group(
        &op,
        "edge-twin",
        group_spec(json!({"adoptBgpGroupId": existing})),
    )
    .await;
    wait_group(&op, "edge-twin", "AlreadyOwned", |g| {
        reason(g).as_deref() == Some("AlreadyOwned")
    })
    .await;
    // Deleting the twin leaves the group alone; deleting the owner deletes it.
    groups(&op)
        .delete("edge-twin", &DeleteParams::default())
        .await
        .expect("delete twin");
    wait_group_gone(&op, "edge-twin").await;
    assert_eq!(op.emu.counters().calls("DeleteBgpGroup"), 0);
    groups(&op)
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete");
    wait_group_gone(&op, "edge").await;
    assert_eq!(op.emu.counters().count("DeleteBgpGroup", "OK"), 1);
    assert!(op.emu.groups().iter().all(|g| g.bgp_group_id != existing));
}
