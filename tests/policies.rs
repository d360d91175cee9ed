//! Management policies against the real apiserver and the emulator: observe-only objects,
//! drift reported without repair, and deletion protection (the chart's admission policy and
//! the controller's backstop).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DeleteParams;
use serde_json::json;

use alicloud_bgp_operator::api::conditions::reasons;
use alicloud_bgp_operator::api::{BgpPeer, DELETION_PROTECTION_ANNOTATION, FINALIZER};
use alicloud_bgp_operator::cloud::{CreateBgpPeerRequest, Credentials};
use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::state::PeerChange;

use common::controlplane;
use common::operator::{GROUP, Operator, REGION, condition, vpc_client};

fn writes(op: &Operator) -> (u64, u64, u64) {
    (
        op.calls("CreateBgpPeer"),
        op.calls("ModifyBgpPeerAttribute"),
        op.calls("DeleteBgpPeer"),
    )
}

/// A peer made outside the operator (the console, Terraform), BFD with 5 hops.
async fn foreign_peer(op: &Operator, ip: &str) -> String {
    let vpc = vpc_client(&op.emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let id = vpc
        .create_bgp_peer(
            &creds,
            &CreateBgpPeerRequest {
                region_id: REGION.into(),
                bgp_group_id: GROUP.into(),
                peer_ip_address: Some(ip.into()),
                enable_bfd: Some(true),
                bfd_multi_hop: Some(5),
                ..Default::default()
            },
        )
        .await
        .expect("foreign peer")
        .bgp_peer_id;
    // Wait until the emulator lists it (read-after-write lag) and it is Available.
    for _ in 0..100 {
        if op
            .emu
            .peer(&id)
            .is_some_and(|p| p.status == alicloud_bgp_operator::emulator::model::Status::Available)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    id
}

fn up_to_date(obj: &BgpPeer) -> Option<(String, String, String)> {
    condition(obj, "UpToDate").map(|c| {
        (
            c.status.to_string(),
            c.reason.to_string(),
            c.message.to_string(),
        )
    })
}

#[tokio::test]
async fn observe_only_reads_and_reports() {
    let op = Operator::start("policy-observe").await;
    let id = foreign_peer(&op, "10.30.0.2").await;
    let before = writes(&op);
    op.create(
        "a",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.30.0.2",
               "enableBfd": true, "bfdMultiHop": 3,
               "managementPolicy": "Observe", "adoptBgpPeerId": id}),
    )
    .await;
    let obj = op
        .wait_condition("a", "Ready", "True", reasons::OBSERVED)
        .await;
    assert!(
        obj.finalizers().is_empty(),
        "no finalizer on an Observe object"
    );
    let (status, reason, message) = up_to_date(&obj).expect("UpToDate");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Drifted"));
    assert!(message.contains("bfdMultiHop: 5 → 3"), "{message}");
    // An out-of-band change shows within a resync period (2 s in tests).
    op.emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                bfd_multi_hop: Some(3),
                ..Default::default()
            },
        )
        .expect("out of band");
    op.wait("a", "UpToDate=True after the out-of-band change", |o| {
        up_to_date(o).is_some_and(|(s, _, _)| s == "True")
            && o.status
                .as_ref()
                .and_then(|s| s.cloud.as_ref())
                .and_then(|c| c.bfd_multi_hop)
                == Some(3)
    })
    .await;
    // Editing the spec reports, never modifies.
    op.patch_spec("a", json!({"peerIpAddress": "10.30.0.9"}))
        .await;
    op.wait("a", "drift of the edited IP reported", |o| {
        up_to_date(o).is_some_and(|(s, _, m)| s == "False" && m.contains("peerIpAddress"))
    })
    .await;
    // Deleting leaves the cloud untouched.
    op.delete("a").await;
    op.wait_gone("a").await;
    assert!(op.emu.peer(&id).is_some());
    assert_eq!(writes(&op), before, "0 write calls for an Observe object");
}

#[tokio::test]
async fn observe_of_a_missing_peer_is_stalled_and_full_takes_over() {
    let op = Operator::start("policy-observe-missing").await;
    op.create(
        "missing",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.31.0.3",
               "managementPolicy": "Observe", "adoptBgpPeerId": "bgp-doesnotexist00000000"}),
    )
    .await;
    op.wait_condition("missing", "Stalled", "True", reasons::NOT_FOUND)
        .await;
    let id = foreign_peer(&op, "10.31.0.2").await;
    op.create(
        "a",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.31.0.2",
               "enableBfd": true, "bfdMultiHop": 5,
               "managementPolicy": "Observe", "adoptBgpPeerId": id}),
    )
    .await;
    op.wait_condition("a", "Ready", "True", reasons::OBSERVED)
        .await;
    assert_eq!(writes(&op), (1, 0, 0), "only the test's own create");
    // Switching to Full takes the named peer over (as adoption).
    op.patch_spec("a", json!({"managementPolicy": "Full"}))
        .await;
    let obj = op
        .wait("a", "adopted", |o| {
            o.status.as_ref().is_some_and(|s| s.adopted)
                && o.finalizers().contains(&FINALIZER.to_owned())
        })
        .await;
    assert_eq!(obj.peer_id(), Some(id.as_str()));
    op.wait_ready("a").await;
}

#[tokio::test]
async fn report_lists_drift_and_repair_fixes_it_with_one_modify() {
    let op = Operator::start("policy-report").await;
    op.create(
        "a",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.32.0.2",
               "enableBfd": true, "bfdMultiHop": 3, "driftPolicy": "Report"}),
    )
    .await;
    let obj = op.wait_ready("a").await;
    let id = obj.peer_id().expect("id").to_owned();
    op.wait("a", "UpToDate=True", |o| {
        up_to_date(o).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    op.emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                bfd_multi_hop: Some(5),
                ..Default::default()
            },
        )
        .expect("out of band");
    let obj = op
        .wait("a", "drift reported", |o| {
            up_to_date(o).is_some_and(|(s, _, _)| s == "False")
        })
        .await;
    let (_, reason, message) = up_to_date(&obj).expect("UpToDate");
    assert_eq!(reason, "Drifted");
    assert!(message.contains("bfdMultiHop: 5 → 3"), "{message}");
    assert!(condition(&obj, "Ready").is_some_and(|c| c.status == "True"));
    // Three resync periods: still no Modify.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(op.calls("ModifyBgpPeerAttribute"), 0);
    op.patch_spec("a", json!({"driftPolicy": "Repair"})).await;
    op.wait("a", "repaired", |o| {
        up_to_date(o).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    assert_eq!(op.emu.peer(&id).map(|p| p.bfd_multi_hop), Some(3));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(op.calls("ModifyBgpPeerAttribute"), 1, "exactly one repair");
}

/// `kubectl apply` of the chart's deletion-protection policy (or `delete` with `remove`).
fn chart_policy(remove: bool) {
    let cp = controlplane::shared();
    let helm = cp.helm_path().expect("helm is built (hack/build-tools.sh)");
    let manifest = Command::new(helm)
        .args([
            "template",
            "policy-test",
            "charts/alicloud-bgp-operator",
            "--show-only",
            "templates/deletion-protection.yaml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("helm template");
    assert!(manifest.status.success(), "{manifest:?}");
    let mut kubectl = cp.kubectl();
    kubectl
        .args(if remove {
            vec!["delete", "--ignore-not-found", "-f", "-"]
        } else {
            vec!["apply", "-f", "-"]
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = kubectl.spawn().expect("kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&manifest.stdout)
        .expect("write");
    let out = child.wait_with_output().expect("kubectl");
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn deletion_protection_at_admission_and_in_the_controller() {
    let op = Operator::start("policy-protect").await;
    let mut ann = std::collections::HashMap::new();
    ann.insert(DELETION_PROTECTION_ANNOTATION.to_owned(), "true".to_owned());
    op.create_annotated(
        "a",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.33.0.2"}),
        ann,
    )
    .await;
    let obj = op.wait_ready("a").await;
    let id = obj.peer_id().expect("id").to_owned();

    chart_policy(false);
    // The policy takes effect once the apiserver has loaded it: probe with dry runs.
    let dry = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    let mut denied = None;
    for _ in 0..100 {
        match op.api().delete("a", &dry).await {
            Err(e) => {
                denied = Some(e.to_string());
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let message = denied.expect("the admission policy denies the deletion");
    assert!(message.contains("deletion-protection"), "{message}");
    let real = op.api().delete("a", &DeleteParams::default()).await;
    assert!(real.is_err(), "kubectl delete is denied");
    chart_policy(true);

    // Without the policy, the controller is the backstop: no Delete call.
    let mut gone = false;
    for _ in 0..100 {
        if op.api().delete("a", &DeleteParams::default()).await.is_ok() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "the deletion is accepted once the policy is removed");
    op.wait_condition("a", "Stalled", "True", reasons::DELETION_PROTECTED)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(op.calls("DeleteBgpPeer"), 0);
    assert!(op.emu.peer(&id).is_some());
    op.annotate("a", DELETION_PROTECTION_ANNOTATION, None).await;
    op.wait_gone("a").await;
    assert_eq!(op.calls("DeleteBgpPeer"), 1);
    assert!(op.emu.peer(&id).is_none());
}
