//! Admission against a real kube-apiserver: the generated CRD refuses bad BgpPeers with
//! messages a user understands, and accepts the shipped samples.

mod common;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};

use alicloud_bgp_operator::api::BgpPeer;

fn api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<BgpPeer>(&());
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn peer(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpPeer",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("object")
}

fn good_spec() -> Value {
    json!({
        "regionId": "cn-shanghai",
        "bgpGroupId": "bgpg-wz9f62v4fbg2gwwwasa",
        "peerIpAddress": "10.0.0.2",
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

/// The apiserver's refusal of `spec`, as (HTTP code, message).
async fn refusal(api: &Api<DynamicObject>, name: &str, spec: Value) -> (u16, String) {
    match api
        .create(&PostParams::default(), &peer(name, spec.clone()))
        .await
    {
        Ok(_) => panic!("{name}: the apiserver accepted a bad spec: {spec}"),
        Err(kube::Error::Api(status)) => (status.code, status.message),
        Err(e) => panic!("{name}: unexpected error {e}"),
    }
}

#[tokio::test]
async fn bad_specs_are_refused_with_clear_messages() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "admission-bad").await;
    let api = api(&client, &ns);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "malformed-ipv4",
            with(good_spec(), json!({"peerIpAddress": "10.0.0.300"})),
            "must be a valid IPv4 or IPv6 address",
        ),
        (
            "not-an-ip",
            with(good_spec(), json!({"peerIpAddress": "router-a"})),
            "must be a valid IPv4 or IPv6 address",
        ),
        (
            "ipv6-address-with-ipv4",
            with(good_spec(), json!({"peerIpAddress": "2408:4000::2"})),
            "family given by ipVersion",
        ),
        (
            "ipv4-address-with-ipv6",
            with(good_spec(), json!({"ipVersion": "IPv6"})),
            "family given by ipVersion",
        ),
        (
            "loopback-ip",
            with(good_spec(), json!({"peerIpAddress": "127.0.0.1"})),
            "must be a unicast address",
        ),
        (
            "multicast-ip",
            with(good_spec(), json!({"peerIpAddress": "224.0.0.5"})),
            "must be a unicast address",
        ),
        (
            "bad-group-id",
            with(good_spec(), json!({"bgpGroupId": "vbr-123456789"})),
            "spec.bgpGroupId",
        ),
        (
            "upper-case-group-id",
            with(good_spec(), json!({"bgpGroupId": "bgpg-ABCDEF123"})),
            "spec.bgpGroupId",
        ),
        (
            "bad-region",
            with(good_spec(), json!({"regionId": "Shanghai"})),
            "spec.regionId",
        ),
        (
            "missing-group",
            with(good_spec(), json!({"bgpGroupId": null})),
            "spec.bgpGroupId: Required value: set exactly one of bgpGroupId and bgpGroupRef",
        ),
        (
            "group-id-and-ref",
            with(good_spec(), json!({"bgpGroupRef": {"name": "edge"}})),
            "set exactly one of bgpGroupId and bgpGroupRef",
        ),
        (
            "group-ref-bad-name",
            with(
                good_spec(),
                json!({"bgpGroupId": null, "bgpGroupRef": {"name": "Edge_Group"}}),
            ),
            "spec.bgpGroupRef.name",
        ),
        (
            "missing-region",
            with(good_spec(), json!({"regionId": null})),
            "spec.regionId: Required value",
        ),
        (
            "hops-too-high",
            with(good_spec(), json!({"enableBfd": true, "bfdMultiHop": 256})),
            "spec.bfdMultiHop",
        ),
        (
            "hops-zero",
            with(good_spec(), json!({"enableBfd": true, "bfdMultiHop": 0})),
            "spec.bfdMultiHop",
        ),
        (
            "hops-without-bfd",
            with(good_spec(), json!({"bfdMultiHop": 3})),
            "bfdMultiHop can only be set when enableBfd is true",
        ),
        (
            "unknown-ip-version",
            with(good_spec(), json!({"ipVersion": "IPv5"})),
            "spec.ipVersion: Unsupported value: \"IPv5\"",
        ),
        (
            "unknown-deletion-policy",
            with(good_spec(), json!({"deletionPolicy": "Retain"})),
            "spec.deletionPolicy: Unsupported value: \"Retain\"",
        ),
        (
            "bad-adopt-id",
            with(good_spec(), json!({"adoptBgpPeerId": "bgpg-notapeer"})),
            "spec.adoptBgpPeerId",
        ),
        (
            "bad-secret-name",
            with(
                good_spec(),
                json!({"credentialsSecretRef": {"name": "Bad_Name"}}),
            ),
            "spec.credentialsSecretRef.name",
        ),
        (
            "bfd-not-boolean",
            with(good_spec(), json!({"enableBfd": "yes"})),
            "spec.enableBfd",
        ),
    ];
    assert!(cases.len() >= 12);
    for (name, spec, expected) in cases {
        let (code, message) = refusal(&api, name, spec).await;
        assert_eq!(code, 422, "{name}: {message}");
        assert!(
            message.contains(expected),
            "{name}: expected {expected:?} in the apiserver's message: {message}"
        );
    }
}

#[tokio::test]
async fn immutable_fields_cannot_change() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "admission-immutable").await;
    let api = api(&client, &ns);
    api.create(&PostParams::default(), &peer("p", good_spec()))
        .await
        .expect("good spec accepted");
    let cases = [
        (json!({"regionId": "cn-hangzhou"}), "regionId is immutable"),
        (
            json!({"bgpGroupId": "bgpg-other0000000001"}),
            "bgpGroupId is immutable",
        ),
        (
            json!({"ipVersion": "IPv6", "peerIpAddress": "2408:4000::2"}),
            "ipVersion is immutable",
        ),
        (
            json!({"adoptBgpPeerId": "bgp-abc123"}),
            "adoptBgpPeerId cannot be added",
        ),
        (
            json!({"bgpGroupId": null, "bgpGroupRef": {"name": "edge"}}),
            "cannot switch between bgpGroupId and bgpGroupRef",
        ),
    ];
    for (change, expected) in cases {
        let err = api
            .patch(
                "p",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": change.clone()})),
            )
            .await
            .expect_err("immutable change refused");
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 422, "{change}");
                assert!(
                    status.message.contains(expected),
                    "{change}: {}",
                    status.message
                );
            }
            other => panic!("{change}: unexpected error {other}"),
        }
    }
    // A reference cannot be retargeted either.
    let by_ref = with(
        good_spec(),
        json!({"bgpGroupId": null, "bgpGroupRef": {"name": "edge"}}),
    );
    api.create(&PostParams::default(), &peer("by-ref", by_ref))
        .await
        .expect("a peer with bgpGroupRef alone is accepted");
    let err = api
        .patch(
            "by-ref",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"bgpGroupRef": {"name": "other"}}})),
        )
        .await
        .expect_err("retargeting refused");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("bgpGroupRef is immutable")),
        "{err}"
    );
    // Mutable fields change in place.
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"peerIpAddress": "10.0.0.3", "enableBfd": true, "bfdMultiHop": 2, "deletionPolicy": "Orphan"}})),
    )
    .await
    .expect("mutable fields can change");
}

#[tokio::test]
async fn samples_and_defaults_are_accepted() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "admission-samples").await;
    let api = api(&client, &ns);
    for path in [
        "deploy/samples/bgppeer.yaml",
        "deploy/samples/bgppeer-ipv6-bfd.yaml",
    ] {
        let text = std::fs::read_to_string(path).expect("sample");
        let obj: DynamicObject = serde_saphyr::from_str(&text).expect("sample parses");
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{path} refused: {e}"));
    }
    let created = api
        .create(
            &PostParams::default(),
            &peer(
                "minimal",
                json!({"regionId": "cn-shanghai", "bgpGroupId": "bgpg-abc123"}),
            ),
        )
        .await
        .expect("minimal spec accepted");
    let spec = &created.data["spec"];
    assert_eq!(spec["ipVersion"], "IPv4", "default applied");
    assert_eq!(spec["deletionPolicy"], "Delete", "default applied");
    assert_eq!(spec["enableBfd"], false, "default applied");
    // The printer columns and short name are served.
    let crd = BgpPeer::crd();
    assert_eq!(crd.spec.names.short_names, Some(vec!["bgpp".to_owned()]));
}
