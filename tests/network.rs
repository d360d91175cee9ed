//! BgpNetwork (issue 20) against a real kube-apiserver: admission of the generated CRD, and
//! the controller against the emulator (create, crash between Add and status write, two
//! objects with one identity, quota, deletion).

mod common;

use std::time::Duration;

use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use alicloud_bgp_operator::api::conditions::reasons;
use alicloud_bgp_operator::api::network::BgpNetwork;
use alicloud_bgp_operator::emulator::config::DEMO_VBR;
use alicloud_bgp_operator::emulator::{Fault, NetworkChange, NetworkSnapshot};
use common::operator::{Operator, PATIENCE, test_controller_config, test_emulator_config};

/// The admin client with the CRDs (BgpNetwork's included) installed and served.
async fn client() -> Client {
    common::client_with_crds().await
}

fn object(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpNetwork",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("object")
}

fn good_spec() -> Value {
    json!({
        "regionId": "cn-shanghai",
        "routerId": "vbr-emu00000000000000001",
        "dstCidrBlock": "192.168.10.0/24",
    })
}

fn with(mut base: Value, patch: Value) -> Value {
    if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// The apiserver's refusal of creating `spec`, as its message.
async fn refusal(api: &Api<DynamicObject>, name: &str, spec: Value) -> String {
    match api
        .create(&PostParams::default(), &object(name, spec.clone()))
        .await
    {
        Ok(_) => panic!("{name}: the apiserver accepted a bad spec: {spec}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{name}: {}", status.message);
            status.message
        }
        Err(e) => panic!("{name}: unexpected error {e}"),
    }
}

#[tokio::test]
async fn admission_refuses_bad_networks_and_identity_changes() {
    let client = client().await;
    let ns = common::namespace(&client, "network-admission").await;
    let ar = ApiResource::erase::<BgpNetwork>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "not-a-cidr",
            with(good_spec(), json!({"dstCidrBlock": "192.168.10.300/24"})),
            "must be a CIDR block",
        ),
        (
            "no-prefix-length",
            with(good_spec(), json!({"dstCidrBlock": "192.168.10.0"})),
            "must be a CIDR block",
        ),
        (
            "host-bits",
            with(good_spec(), json!({"dstCidrBlock": "192.168.10.1/24"})),
            "must not have host bits set",
        ),
        (
            "ipv6-host-bits",
            with(good_spec(), json!({"dstCidrBlock": "2408:4000:10::1/48"})),
            "must not have host bits set",
        ),
        (
            "router-not-a-vbr",
            with(good_spec(), json!({"routerId": "vrt-bp1lhl0taikrteen8"})),
            "routerId",
        ),
        (
            "bad-region",
            with(good_spec(), json!({"regionId": "Shanghai"})),
            "regionId",
        ),
        (
            "bad-vpc",
            with(good_spec(), json!({"vpcId": "vsw-123"})),
            "vpcId",
        ),
        (
            "bad-policy",
            with(good_spec(), json!({"deletionPolicy": "Keep"})),
            "deletionPolicy",
        ),
        (
            "two-credentials",
            with(
                good_spec(),
                json!({"credentialsSecretRef": {"name": "a"}, "cloudIdentityRef": {"name": "b"}}),
            ),
            "at most one of cloudIdentityRef and credentialsSecretRef",
        ),
        (
            "no-cidr",
            with(good_spec(), json!({"dstCidrBlock": null})),
            "dstCidrBlock",
        ),
    ];
    for (name, spec, expected) in cases {
        let message = refusal(&api, name, spec).await;
        assert!(message.contains(expected), "{name}: {message}");
    }

    // Accepted: IPv4 and IPv6 prefixes, with or without a VPC.
    for (name, patch) in [
        ("ipv4", json!({})),
        (
            "ipv6",
            json!({"dstCidrBlock": "2408:4000:10::/48", "vpcId": "vpc-bp1qpo0kug3a20qqe9h7v"}),
        ),
        (
            "adopt-orphan",
            json!({"adopt": true, "deletionPolicy": "Orphan", "dstCidrBlock": "10.0.0.0/8"}),
        ),
    ] {
        api.create(
            &PostParams::default(),
            &object(name, with(good_spec(), patch)),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} refused: {e}"));
    }

    // The identity cannot change; adopt and the deletion policy can.
    for (field, value, expected) in [
        (
            "dstCidrBlock",
            json!("192.168.11.0/24"),
            "dstCidrBlock is immutable",
        ),
        (
            "routerId",
            json!("vbr-other0000000000001"),
            "routerId is immutable",
        ),
        ("regionId", json!("cn-hangzhou"), "regionId is immutable"),
        ("vpcId", json!("vpc-new"), "vpcId cannot be added"),
    ] {
        let err = api
            .patch(
                "ipv4",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {field: value}})),
            )
            .await
            .expect_err(field);
        assert!(err.to_string().contains(expected), "{field}: {err}");
    }
    api.patch(
        "ipv4",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"adopt": true, "deletionPolicy": "Orphan"}})),
    )
    .await
    .expect("adopt and deletionPolicy are mutable");
}

// ---------------------------------------------------------------------------------------------
// The controller against the emulator.
// ---------------------------------------------------------------------------------------------

/// An operator whose `controller::run` runs the BgpNetwork controller beside the others (the
/// test CRD install serves the BgpNetwork CRD).
struct Networks {
    op: Operator,
}

impl Networks {
    async fn start(test: &str) -> Self {
        client().await;
        let op = Operator::start_with(test, test_emulator_config(), test_controller_config()).await;
        Networks { op }
    }

    /// Kills the controllers at once and starts them again with a fresh context.
    async fn crash_and_restart(&mut self) {
        self.op.crash_controller().await;
        self.op.start_controller();
    }

    fn api(&self) -> Api<BgpNetwork> {
        Api::namespaced(self.op.client.clone(), &self.op.ns)
    }

    async fn create(&self, name: &str, spec: Value) -> BgpNetwork {
        let obj: BgpNetwork = serde_json::from_value(json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1",
            "kind": "BgpNetwork",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("BgpNetwork");
        self.api()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create BgpNetwork")
    }

    async fn wait(&self, name: &str, what: &str, pred: impl Fn(&BgpNetwork) -> bool) -> BgpNetwork {
        let api = self.api();
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
                    "timed out waiting for {name}: {what}; last: {}; emulator calls: {:?}",
                    obj.map(|o| serde_json::to_string_pretty(&o.status).unwrap_or_default())
                        .unwrap_or_else(|| "<object missing>".into()),
                    self.op.emu.counters().by_action_code
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> BgpNetwork {
        self.wait(name, &format!("{type_}={status} ({reason})"), |o| {
            condition(o, type_).is_some_and(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    async fn wait_ready(&self, name: &str) -> BgpNetwork {
        self.wait_condition(name, "Ready", "True", reasons::AVAILABLE)
            .await
    }

    async fn delete(&self, name: &str) {
        self.api()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete BgpNetwork");
    }

    async fn wait_gone(&self, name: &str) {
        self.wait_absent(name).await;
    }

    async fn wait_absent(&self, name: &str) {
        let api = self.api();
        common::wait_for(&format!("{name} deleted"), PATIENCE, || {
            let api = api.clone();
            async move { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }
        })
        .await
    }

    fn networks(&self) -> Vec<NetworkSnapshot> {
        self.op.emu.networks()
    }

    fn adds(&self) -> (u64, u64) {
        let c = self.op.emu.counters();
        (c.calls("AddBgpNetwork"), c.count("AddBgpNetwork", "OK"))
    }

    async fn stop(mut self) {
        self.op.stop_controller().await;
    }
}

fn condition<'a>(
    obj: &'a BgpNetwork,
    type_: &str,
) -> Option<&'a alicloud_bgp_operator::api::Condition> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn net(cidr: &str) -> Value {
    json!({"regionId": "cn-shanghai", "routerId": DEMO_VBR, "dstCidrBlock": cidr})
}

fn someone_elses(cidr: &str) -> NetworkChange {
    NetworkChange {
        router_id: DEMO_VBR.into(),
        dst_cidr_block: cidr.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_is_ready_with_exactly_one_add() {
    let n = Networks::start("network-create").await;
    let obj = n.create("lan", net("192.168.10.0/24")).await;
    let ready = n.wait_ready("lan").await;
    let status = ready.status.expect("status");
    assert!(status.owned && !status.adopted, "{status:?}");
    assert_eq!(
        status.account_id.as_deref(),
        Some(alicloud_bgp_operator::emulator::config::DEMO_ACCOUNT_UID)
    );
    assert_eq!(n.adds(), (1, 1), "exactly one AddBgpNetwork");
    let networks = n.networks();
    assert_eq!(networks.len(), 1);
    let token = networks[0].client_token.clone().unwrap_or_default();
    assert!(token.contains(&obj.uid().unwrap_or_default()), "{token}");
    assert_eq!(status.client_token.as_deref(), Some(token.as_str()));
    n.stop().await;
}

#[tokio::test]
async fn a_crash_between_add_and_status_write_settles_by_token_with_one_network() {
    let mut n = Networks::start("network-crash").await;
    n.op.ctx
        .hooks
        .crash_after_create
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let obj = n.create("lan", net("192.168.20.0/24")).await;
    // The Add succeeded; the status holds the intent recorded before it, not the result.
    common::wait_for("the Add reached the cloud", PATIENCE, || async {
        (!n.networks().is_empty()).then_some(())
    })
    .await;
    let recorded = n
        .wait("lan", "the intent recorded", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.client_token.is_some() && !s.owned)
        })
        .await
        .status
        .expect("status");
    assert!(recorded.add_requested_at.is_some() && recorded.add_observation.is_some());
    n.crash_and_restart().await;
    let ready = n.wait_ready("lan").await.status.expect("status");
    assert!(ready.owned);
    let networks = n.networks();
    assert_eq!(networks.len(), 1, "{networks:?}");
    // The one network is the first Add's; the only other Add was its token's replay.
    assert_eq!(networks[0].client_token, recorded.client_token);
    assert_eq!(ready.client_token, recorded.client_token);
    assert_eq!(ready.incarnation, 0);
    let (calls, ok) = n.adds();
    assert_eq!(
        (calls, ok),
        (2, 2),
        "the Add and its token's replay, nothing else"
    );
    assert!(obj.uid().is_some());
    n.stop().await;
}

#[tokio::test]
async fn a_network_someone_else_added_after_our_listing_is_never_adopted() {
    let n = Networks::start("network-interloper").await;
    // Our Add never gets an answer that proves anything (5xx on every attempt).
    n.op.emu.inject_fault(Fault {
        count: Some(1000),
        ..Fault::error("AddBgpNetwork", "ServiceUnavailable")
    });
    n.create("lan", net("192.168.30.0/24")).await;
    n.wait("lan", "the intent recorded and the Add unanswered", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.client_token.is_some() && !s.owned)
            && condition(o, "Ready").is_some_and(|c| c.reason == reasons::TRANSIENT_ERROR)
    })
    .await;
    // Meanwhile someone else adds the same network.
    n.op.emu
        .put_network_out_of_band(someone_elses("192.168.30.0/24"))
        .expect("out of band");
    n.op.emu.clear_faults();
    let stalled = n
        .wait_condition("lan", "Stalled", "True", reasons::ALREADY_EXISTS)
        .await;
    let status = stalled.status.expect("status");
    assert!(!status.owned && status.client_token.is_none(), "{status:?}");
    assert!(
        condition(&n.api().get("lan").await.expect("get"), "Stalled")
            .is_some_and(|c| c.message.contains("adopt: true")),
    );
    // Deleting the object leaves the other party's network alone.
    n.delete("lan").await;
    n.wait_gone("lan").await;
    assert_eq!(n.networks().len(), 1);
    assert_eq!(n.op.emu.counters().calls("DeleteBgpNetwork"), 0);
    n.stop().await;
}

#[tokio::test]
async fn an_existing_network_is_taken_over_only_with_adopt() {
    let n = Networks::start("network-adopt").await;
    n.op.emu
        .put_network_out_of_band(someone_elses("192.168.40.0/24"))
        .expect("out of band");
    n.create("lan", net("192.168.40.0/24")).await;
    n.wait_condition("lan", "Stalled", "True", reasons::ALREADY_EXISTS)
        .await;
    assert_eq!(n.adds().0, 0, "no Add over an existing network");
    n.api()
        .patch(
            "lan",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"adopt": true}})),
        )
        .await
        .expect("adopt");
    let status = n.wait_ready("lan").await.status.expect("status");
    assert!(status.owned && status.adopted, "{status:?}");
    assert_eq!(n.adds().0, 0);
    // Adopted networks are deleted like added ones.
    n.delete("lan").await;
    n.wait_gone("lan").await;
    assert!(n.networks().is_empty());
    n.stop().await;
}

#[tokio::test]
async fn two_objects_with_one_identity_one_ready_one_stalled_naming_it() {
    let n = Networks::start("network-twins").await;
    n.create("first", net("192.168.50.0/24")).await;
    n.create("second", net("192.168.50.0/24")).await;
    let names = ["first", "second"];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (ready, stalled) = loop {
        let mut ready = Vec::new();
        let mut stalled = Vec::new();
        for name in names {
            let o = n.api().get(name).await.expect("get");
            if condition(&o, "Ready").is_some_and(|c| c.status == "True") {
                ready.push(name);
            }
            if let Some(c) = condition(&o, "Stalled").filter(|c| c.status == "True") {
                stalled.push((name, c.reason.clone(), c.message.clone()));
            }
        }
        if ready.len() == 1 && stalled.len() == 1 {
            break (ready[0], stalled.remove(0));
        }
        assert!(ready.len() < 2, "both Ready");
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready {ready:?} stalled {stalled:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stalled.1, reasons::ALREADY_OWNED, "{stalled:?}");
    assert!(
        stalled.2.contains(&format!("{}/{ready}", n.op.ns)),
        "{stalled:?}"
    );
    assert_eq!(n.adds().1, 1, "one successful Add");
    assert_eq!(n.networks().len(), 1);
    // They stay so over resyncs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = n.api().get(ready).await.expect("get");
    assert!(condition(&r, "Ready").is_some_and(|c| c.status == "True"));
    let s = n.api().get(stalled.0).await.expect("get");
    assert!(condition(&s, "Ready").is_some_and(|c| c.status == "False"));
    // Deleting the refused one leaves the network; deleting the owner withdraws it.
    n.delete(stalled.0).await;
    n.wait_gone(stalled.0).await;
    assert_eq!(n.networks().len(), 1);
    n.delete(ready).await;
    n.wait_gone(ready).await;
    assert!(n.networks().is_empty());
    n.stop().await;
}

#[tokio::test]
async fn quota_exceeded_is_reported_and_recovers_when_the_quota_is_raised() {
    let n = Networks::start("network-quota").await;
    n.op.emu.set_network_quota(DEMO_VBR, 1).expect("quota");
    n.op.emu
        .put_network_out_of_band(someone_elses("10.99.0.0/16"))
        .expect("out of band");
    n.create("lan", net("192.168.60.0/24")).await;
    let o = n
        .wait_condition("lan", "Reconciling", "True", reasons::QUOTA_EXCEEDED)
        .await;
    let message = condition(&o, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("QuotaExceeded.BgpNetwork"), "{message}");
    // Raise the quota through the admin API, as an operator would with Quota Center.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/__admin/vbrs/{DEMO_VBR}/network-quota",
            n.op.emu.endpoint()
        ))
        .json(&json!({"Quota": 2}))
        .send()
        .await
        .expect("admin");
    assert!(r.status().is_success());
    // The quota class backs off for minutes; any annotation change retries at once.
    n.api()
        .patch(
            "lan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"vpc.alicloud.dev/retry": "1"}}})),
        )
        .await
        .expect("annotate");
    let status = n.wait_ready("lan").await.status.expect("status");
    assert!(status.owned);
    assert_eq!(status.incarnation, 0, "the same token, retried");
    assert_eq!(n.networks().len(), 2);
    n.stop().await;
}

#[tokio::test]
async fn deleting_every_object_empties_the_listing_and_orphan_leaves_its_network() {
    let n = Networks::start("network-delete").await;
    for (name, cidr) in [
        ("a", "192.168.71.0/24"),
        ("b", "192.168.72.0/24"),
        ("c", "2408:4000:72::/48"),
    ] {
        n.create(name, net(cidr)).await;
    }
    let mut orphan = net("192.168.73.0/24");
    orphan["deletionPolicy"] = json!("Orphan");
    n.create("keep", orphan).await;
    for name in ["a", "b", "c", "keep"] {
        n.wait_ready(name).await;
    }
    for name in ["a", "b", "c", "keep"] {
        n.delete(name).await;
    }
    for name in ["a", "b", "c", "keep"] {
        n.wait_gone(name).await;
    }
    let left = n.networks();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].dst_cidr_block, "192.168.73.0/24");
    assert_eq!(n.op.emu.counters().count("DeleteBgpNetwork", "OK"), 3);
    // The VBR's listing agrees.
    let vpc = common::operator::vpc_client(&n.op.emu);
    let creds = alicloud_bgp_operator::cloud::Credentials::new(
        alicloud_bgp_operator::emulator::config::DEMO_ACCESS_KEY_ID,
        alicloud_bgp_operator::emulator::config::DEMO_ACCESS_KEY_SECRET,
        None,
    );
    let listing = vpc
        .list_bgp_networks(&creds, "cn-shanghai", DEMO_VBR)
        .await
        .expect("list");
    assert!(listing.consistent);
    assert_eq!(listing.networks.len(), 1);
    n.stop().await;
}

#[tokio::test]
async fn the_samples_are_accepted_and_reach_ready() {
    let n = Networks::start("network-samples").await;
    let text = std::fs::read_to_string("deploy/samples/bgpnetwork.yaml").expect("sample");
    let mut names = Vec::new();
    for doc in text.split("\n---\n") {
        let obj: BgpNetwork = serde_saphyr::from_str(doc).expect("sample parses");
        let name = obj.name_any();
        n.api()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("sample {name} refused: {e}"));
        names.push(name);
    }
    assert_eq!(names, ["vpc-prod", "vpc-prod-v6"]);
    for name in &names {
        n.wait_ready(name).await;
    }
    assert_eq!(n.networks().len(), 2);
    n.stop().await;
}

#[tokio::test]
async fn an_object_deleted_while_its_add_is_unsettled_withdraws_the_network_it_made() {
    let mut n = Networks::start("network-crash-delete").await;
    n.op.ctx
        .hooks
        .crash_after_create
        .store(1, std::sync::atomic::Ordering::SeqCst);
    n.create("lan", net("192.168.80.0/24")).await;
    common::wait_for("the Add reached the cloud", PATIENCE, || async {
        (!n.networks().is_empty()).then_some(())
    })
    .await;
    n.wait("lan", "the intent recorded, unsettled", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.client_token.is_some() && !s.owned)
    })
    .await;
    // The controller is down when the object is deleted; when it is back, the token's replay
    // says the network is this object's, so it is withdrawn rather than leaked (or released
    // as someone else's).
    n.op.crash_controller().await;
    n.delete("lan").await;
    n.crash_and_restart().await;
    n.wait_gone("lan").await;
    assert!(n.networks().is_empty(), "{:?}", n.networks());
    let c = n.op.emu.counters();
    assert_eq!(c.count("AddBgpNetwork", "OK"), 2, "the Add and its replay");
    assert_eq!(c.count("DeleteBgpNetwork", "OK"), 1);
    n.stop().await;
}
