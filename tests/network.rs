//! BgpNetwork (issue 20) against a real kube-apiserver: admission of the generated CRD, and
//! the controller against the emulator (create, crash between Add and status write, two
//! objects with one identity, quota, deletion).

mod common;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};

use alicloud_bgp_operator::api::network::BgpNetwork;

/// The admin client with the BgpNetwork CRD installed and served.
async fn client() -> Client {
    let client = common::client_with_crds().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = BgpNetwork::crd();
    crds.patch(
        BgpNetwork::crd_name(),
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply BgpNetwork CRD");
    let all: Api<BgpNetwork> = Api::all(client.clone());
    common::wait_for("BgpNetwork served", Duration::from_secs(30), || {
        let all = all.clone();
        async move { all.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    client
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
