//! A BgpGroup and the BgpPeers that refer to it (`bgpGroupRef`), applied together and deleted
//! together, against the real apiserver and the emulator (issue 19).

mod common;

use std::time::Duration;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::api::conditions::{reasons, types};
use alicloud_bgp_operator::api::group::BgpGroup;
use common::operator::{Operator, condition, test_controller_config, test_emulator_config};
use common::wait_for;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;

const VBR: &str = "vbr-grouppeers00000000001";

/// The operator with the BgpGroup CRD served before the controller starts (it starts the
/// BgpGroup controller and the group watch only for a served CRD), on a VBR of its own.
async fn operator(test: &str) -> Operator {
    let mut emu = test_emulator_config();
    let mut vbr = emu.vbrs[0].clone();
    vbr.id = VBR.to_owned();
    emu.vbrs.push(vbr);
    let client = common::client_with_crds().await;
    install_group_crd(&client).await;
    let mut op = Operator::new_with_client(test, client, emu, test_controller_config()).await;
    op.start_controller();
    op
}

async fn install_group_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        BgpGroup::crd_name(),
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(BgpGroup::crd()),
    )
    .await
    .expect("apply BgpGroup CRD");
    let groups: Api<BgpGroup> = Api::all(client.clone());
    wait_for("BgpGroup served", Duration::from_secs(30), || {
        let groups = groups.clone();
        async move { groups.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
}

fn peer_spec(ip: &str) -> serde_json::Value {
    json!({
        "regionId": "cn-shanghai",
        "bgpGroupRef": {"name": "edge"},
        "peerIpAddress": ip,
    })
}

fn ready_reason(p: &BgpPeer) -> Option<String> {
    condition(p, types::READY).map(|c| c.reason.to_string())
}

#[tokio::test]
async fn a_group_and_its_peers_converge_together_and_are_deleted_together() {
    let op = operator("group-peers").await;
    let groups: Api<BgpGroup> = Api::namespaced(op.client.clone(), &op.ns);
    // The peers first: the worst order a GitOps tool can apply them in.
    let names = ["p1", "p2", "p3"];
    for (i, name) in names.iter().enumerate() {
        op.create(name, peer_spec(&format!("10.77.0.{}", i + 2)))
            .await;
    }
    for name in names {
        let p = op
            .wait(name, "DependencyNotReady", |p| {
                ready_reason(p).as_deref() == Some(reasons::DEPENDENCY_NOT_READY)
            })
            .await;
        let reconciling = condition(&p, types::RECONCILING).expect("Reconciling");
        assert_eq!(
            reconciling.status, "True",
            "waiting is progress, not Stalled"
        );
        assert!(
            reconciling.message.contains(&format!("{}/edge", op.ns)),
            "names the group: {}",
            reconciling.message
        );
    }
    assert_eq!(op.calls("CreateBgpPeer"), 0, "no peer before its group");
    let group: BgpGroup = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpGroup",
        "metadata": {"name": "edge", "namespace": op.ns},
        "spec": {"regionId": "cn-shanghai", "routerId": VBR, "peerAsn": 65010},
    }))
    .expect("group");
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("create group");
    let mut peers = Vec::new();
    for name in names {
        peers.push(op.wait_ready(name).await);
    }
    let group = groups.get("edge").await.expect("group");
    let group_id = group
        .group_id()
        .expect("the group records its cloud ID")
        .to_owned();
    for p in &peers {
        let status = p.status.as_ref().expect("status");
        assert_eq!(status.bgp_group_id.as_deref(), Some(group_id.as_str()));
        assert_eq!(op.cloud_peers_of(p).len(), 1, "{}", p.name_any());
        assert_eq!(op.cloud_peers_of(p)[0].bgp_group_id, group_id);
    }
    assert_eq!(op.calls("CreateBgpGroup"), 1);
    assert_eq!(op.calls("CreateBgpPeer"), 3);

    // `kubectl delete -f dir/`: everything at once, the group first.
    groups
        .delete("edge", &DeleteParams::default())
        .await
        .expect("delete group");
    for name in names {
        op.delete(name).await;
    }
    for name in names {
        op.wait_gone(name).await;
    }
    wait_for("group gone", Duration::from_secs(60), || {
        let groups = groups.clone();
        async move {
            match groups.get_opt("edge").await {
                Ok(None) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    let counters = op.emu.counters();
    assert_eq!(
        counters.count("DeleteBgpGroup", "DependencyViolation.BgpPeer"),
        0,
        "the group is deleted only after its peers: {:?}",
        counters.by_action_code.get("DeleteBgpGroup")
    );
    assert_eq!(counters.count("DeleteBgpGroup", "OK"), 1);
    assert!(
        op.emu.groups().iter().all(|g| g.bgp_group_id != group_id),
        "the cloud group is gone"
    );
    assert!(
        op.emu.peers().iter().all(|p| p.bgp_group_id != group_id),
        "no peer is left in it"
    );
}

#[tokio::test]
async fn a_peer_in_another_region_than_its_group_is_stalled() {
    let op = operator("group-peers-region").await;
    let groups: Api<BgpGroup> = Api::namespaced(op.client.clone(), &op.ns);
    let group: BgpGroup = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpGroup",
        "metadata": {"name": "edge", "namespace": op.ns},
        "spec": {"regionId": "cn-shanghai", "routerId": VBR, "peerAsn": 65011},
    }))
    .expect("group");
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("create group");
    op.create(
        "far",
        json!({
            "regionId": "cn-hangzhou",
            "bgpGroupRef": {"name": "edge"},
            "peerIpAddress": "10.78.0.2",
        }),
    )
    .await;
    let p = op
        .wait("far", "Stalled", |p| {
            condition(p, types::STALLED).is_some_and(|c| c.status == "True")
        })
        .await;
    let stalled = condition(&p, types::STALLED).expect("Stalled");
    assert!(
        stalled.message.contains("cn-hangzhou") && stalled.message.contains("cn-shanghai"),
        "{}",
        stalled.message
    );
    assert_eq!(op.calls("CreateBgpPeer"), 0);
    // Deleting it needs nothing from the group.
    op.delete("far").await;
    op.wait_gone("far").await;
}
