//! The BGP network operations (issue 20) over real HTTP: the client (`src/cloud/network.rs`)
//! against the emulator (`src/emulator/network.rs`), with the documented validation, the
//! per-VBR quota and its admin API, status transitions, read-after-write lag, ClientToken
//! idempotency, faults, paging and account ownership of VBRs.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    AddBgpNetworkRequest, ClientConfig, CloudError, Credentials, DeleteBgpNetworkRequest,
    DescribeBgpNetworksRequest, ErrorClass, NetworkStatus, RetryConfig, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEMO_ACCOUNT_UID, DEMO_REGION, DEMO_VBR, TotalCountMode,
    VbrConfig,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, EmulatorHandle, Fault, Secret};
use common::emulator::{demo_credentials as demo, start_emulator as emulator};
use serde_json::{Value, json};

const OTHER_UID: &str = "5555000011112222";
const V4_ONLY_VBR: &str = "vbr-v4only";
const OWNED_VBR: &str = "vbr-owned";

fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig::demo();
    c.pending_delay = Duration::from_millis(300);
    c.delete_delay = Duration::from_millis(300);
    c.visibility_lag = Duration::from_millis(600);
    c.accounts.push(AccountConfig {
        uid: OTHER_UID.to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: "LTAIsecondaccount".to_owned(),
            secret: Secret::new("second-secret"),
            user: None,
        }],
        roles: Vec::new(),
    });
    c.vbrs.push(VbrConfig {
        network_quota: 2,
        ..VbrConfig::new(V4_ONLY_VBR, DEMO_REGION, false)
    });
    c.vbrs.push(VbrConfig {
        owner: Some(DEMO_ACCOUNT_UID.to_owned()),
        ..VbrConfig::new(OWNED_VBR, DEMO_REGION, true)
    });
    c
}

fn client(emu: &EmulatorHandle) -> VpcClient {
    VpcClient::new(ClientConfig {
        endpoint: Some(emu.endpoint()),
        sts_endpoint: Some(emu.endpoint()),
        rate_limit: None,
        retry: RetryConfig {
            max_read_retries: 0,
            max_mutating_retries: 0,
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    })
    .expect("client")
}

fn other() -> Credentials {
    Credentials::new("LTAIsecondaccount", "second-secret", None)
}

fn add(vbr: &str, cidr: &str, token: Option<&str>) -> AddBgpNetworkRequest {
    AddBgpNetworkRequest {
        region_id: DEMO_REGION.to_owned(),
        router_id: vbr.to_owned(),
        dst_cidr_block: cidr.to_owned(),
        vpc_id: None,
        client_token: token.map(str::to_owned),
    }
}

fn delete(vbr: &str, cidr: &str) -> DeleteBgpNetworkRequest {
    DeleteBgpNetworkRequest {
        region_id: DEMO_REGION.to_owned(),
        router_id: vbr.to_owned(),
        dst_cidr_block: cidr.to_owned(),
        client_token: None,
    }
}

fn code(r: Result<impl std::fmt::Debug, CloudError>) -> String {
    match r {
        Err(CloudError::Api(e)) => e.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn admin(emu: &EmulatorHandle, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/__admin/{path}", emu.endpoint()))
        .json(&body)
        .send()
        .await
        .expect("admin call");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls until `f` holds (the emulator's transitions follow its clock, 300–600 ms here).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn add_is_hidden_by_the_lag_then_pending_then_available_and_delete_removes_it() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    let net = "10.10.0.0/16";
    vpc.add_bgp_network(&demo(), &add(DEMO_VBR, net, Some("tok-1")))
        .await
        .expect("add");
    // Read-after-write lag: the network exists (a second Add is refused) but is not listed.
    let listing = vpc
        .list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
        .await
        .expect("list");
    assert!(
        listing.consistent && listing.networks.is_empty(),
        "{listing:?}"
    );
    assert_eq!(
        code(
            vpc.add_bgp_network(&demo(), &add(DEMO_VBR, net, Some("tok-2")))
                .await
        ),
        "InvalidParams.AlreadyExists"
    );
    // A replay of the first token answers success again, and makes nothing.
    vpc.add_bgp_network(&demo(), &add(DEMO_VBR, net, Some("tok-1")))
        .await
        .expect("replay");
    assert_eq!(emu.networks().len(), 1);
    // The same token with other parameters is a mismatch.
    let mismatch = vpc
        .add_bgp_network(&demo(), &add(DEMO_VBR, "10.11.0.0/16", Some("tok-1")))
        .await
        .unwrap_err();
    assert_eq!(
        mismatch.class(),
        ErrorClass::IdempotencyMismatch,
        "{mismatch}"
    );
    // Pending cannot be deleted.
    assert_eq!(
        code(
            vpc.delete_bgp_network(&demo(), &delete(DEMO_VBR, net))
                .await
        ),
        "InvalidStatus.CannotOperate"
    );
    eventually("the network is listed Available", || async {
        let l = vpc
            .list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
            .await
            .expect("list");
        l.find(DEMO_VBR, &net.parse().expect("cidr"))
            .is_some_and(|n| n.status == NetworkStatus::Available)
    })
    .await;
    vpc.delete_bgp_network(&demo(), &delete(DEMO_VBR, net))
        .await
        .expect("delete");
    let l = vpc
        .list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
        .await
        .expect("list");
    assert_eq!(l.networks[0].status, NetworkStatus::Deleting);
    eventually("the network is gone", || async {
        vpc.list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
            .await
            .is_ok_and(|l| l.consistent && l.networks.is_empty())
    })
    .await;
    assert_eq!(
        code(
            vpc.delete_bgp_network(&demo(), &delete(DEMO_VBR, net))
                .await
        ),
        "InvalidParams.NotFound"
    );
    let counters = emu.counters();
    assert_eq!(counters.calls("AddBgpNetwork"), 4);
    assert_eq!(counters.count("AddBgpNetwork", "OK"), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn validation_with_the_documented_codes() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    // Unknown region and VBR.
    let mut wrong_region = add(DEMO_VBR, "10.20.0.0/16", None);
    wrong_region.region_id = "cn-nowhere".into();
    assert_eq!(
        code(vpc.add_bgp_network(&demo(), &wrong_region).await),
        "InvalidRegionId.NotFound"
    );
    assert_eq!(
        code(
            vpc.add_bgp_network(&demo(), &add("vbr-nosuch", "10.20.0.0/16", None))
                .await
        ),
        "InvalidVbrNetwork"
    );
    // The VBR of another region does not exist there.
    let mut other_region = add(DEMO_VBR, "10.20.0.0/16", None);
    other_region.region_id = "cn-hangzhou".into();
    assert_eq!(
        code(vpc.add_bgp_network(&demo(), &other_region).await),
        "InvalidVbrNetwork"
    );
    // IPv6 needs a VBR with IPv6.
    assert_eq!(
        code(
            vpc.add_bgp_network(&demo(), &add(V4_ONLY_VBR, "2408:4000:10::/48", None))
                .await
        ),
        "InvalidVbr.Ipv6NotEnabled"
    );
    vpc.add_bgp_network(&demo(), &add(DEMO_VBR, "2408:4000:10::/48", None))
        .await
        .expect("IPv6 on an IPv6 VBR");
    // The same prefix spelled otherwise is the same network.
    assert_eq!(
        code(
            vpc.add_bgp_network(&demo(), &add(DEMO_VBR, "2408:4000:0010:0::/48", None))
                .await
        ),
        "InvalidParams.AlreadyExists"
    );
    // A malformed VpcId names no VPC.
    let mut bad_vpc = add(DEMO_VBR, "10.21.0.0/16", None);
    bad_vpc.vpc_id = Some("not-a-vpc".into());
    assert_eq!(
        code(vpc.add_bgp_network(&demo(), &bad_vpc).await),
        "InvalidParams.NotFound"
    );
    bad_vpc.vpc_id = Some("vpc-bp1qpo0kug3a2".into());
    vpc.add_bgp_network(&demo(), &bad_vpc).await.expect("VpcId");
    // The client refuses what is not a prefix before sending.
    let err = vpc
        .add_bgp_network(&demo(), &add(DEMO_VBR, "10.22.0.1/16", None))
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::InvalidRequest { .. }), "{err}");
    assert_eq!(emu.counters().calls("AddBgpNetwork"), 8);
    emu.shutdown().await;
}

#[tokio::test]
async fn quota_per_vbr_counts_every_network_and_is_raised_through_the_admin_api() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    for n in 0..2 {
        vpc.add_bgp_network(&demo(), &add(V4_ONLY_VBR, &format!("10.3{n}.0.0/16"), None))
            .await
            .expect("within quota");
    }
    let err = vpc
        .add_bgp_network(&demo(), &add(V4_ONLY_VBR, "10.39.0.0/16", None))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Quota);
    assert!(
        err.to_string().contains("QuotaExceeded.BgpNetwork"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("bgp network count per vbr quota exceed"),
        "{err}"
    );
    // Another VBR has its own quota.
    vpc.add_bgp_network(&demo(), &add(DEMO_VBR, "10.39.0.0/16", None))
        .await
        .expect("other VBR");
    let (status, body) = admin(
        &emu,
        &format!("vbrs/{V4_ONLY_VBR}/network-quota"),
        json!({"Quota": 3}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    vpc.add_bgp_network(&demo(), &add(V4_ONLY_VBR, "10.39.0.0/16", None))
        .await
        .expect("after the quota was raised");
    let (status, _) = admin(&emu, "vbrs/vbr-nosuch/network-quota", json!({"Quota": 3})).await;
    assert_eq!(status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn out_of_band_networks_and_the_enabled_wording() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    let (status, body) = admin(
        &emu,
        "networks",
        json!({"RouterId": DEMO_VBR, "DstCidrBlock": "192.168.0.0/24", "Status": "Enabled"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Status"], "Available");
    // Made long ago by someone else: listed at once, in the documentation's other wording.
    let page = vpc
        .describe_bgp_networks(
            &demo(),
            &DescribeBgpNetworksRequest {
                region_id: DEMO_REGION.into(),
                router_id: Some(DEMO_VBR.into()),
                ..Default::default()
            },
        )
        .await
        .expect("describe");
    assert_eq!(page.total_count, 1);
    assert_eq!(page.networks[0].status, NetworkStatus::Available);
    assert_eq!(page.networks[0].dst_cidr_block, "192.168.0.0/24");
    let (status, _) = admin(
        &emu,
        "networks",
        json!({"RouterId": DEMO_VBR, "DstCidrBlock": "192.168.0.1/24"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = admin(
        &emu,
        "networks/delete",
        json!({"RouterId": DEMO_VBR, "DstCidrBlock": "192.168.0.0/24"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(emu.networks().is_empty());
    let (status, _) = admin(
        &emu,
        "networks/delete",
        json!({"RouterId": DEMO_VBR, "DstCidrBlock": "192.168.0.0/24"}),
    )
    .await;
    assert_eq!(status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn paging_walks_every_network_and_says_when_the_walk_is_consistent() {
    let mut cfg = config();
    cfg.pending_delay = Duration::ZERO;
    cfg.visibility_lag = Duration::ZERO;
    let emu = emulator(cfg).await;
    emu.set_network_quota(DEMO_VBR, 120).expect("quota");
    let vpc = client(&emu);
    for n in 0..60 {
        vpc.add_bgp_network(&demo(), &add(DEMO_VBR, &format!("10.{n}.0.0/16"), None))
            .await
            .expect("add");
    }
    let l = vpc
        .list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
        .await
        .expect("list");
    assert_eq!((l.networks.len(), l.pages, l.consistent), (60, 2, true));
    // TotalCount counting the page (the other SDK wording): all are walked, never consistent.
    emu.update_config(|c| c.total_count = TotalCountMode::Page);
    let l = vpc
        .list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR)
        .await
        .expect("list");
    assert_eq!((l.networks.len(), l.consistent), (60, false));
    // PageSize above 50 is refused by the API (and by the client before sending).
    let err = vpc
        .describe_bgp_networks(
            &demo(),
            &DescribeBgpNetworksRequest {
                region_id: DEMO_REGION.into(),
                page_size: Some(51),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::InvalidRequest { .. }), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_apply_to_the_network_actions() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    emu.inject_fault(Fault {
        count: Some(1),
        ..Fault::error("AddBgpNetwork", "QuotaExceeded.BgpNetwork")
    });
    emu.inject_fault(Fault {
        count: Some(1),
        ..Fault::error("DescribeBgpNetworks", "ServiceUnavailable")
    });
    assert_eq!(
        code(
            vpc.add_bgp_network(&demo(), &add(DEMO_VBR, "10.40.0.0/16", None))
                .await
        ),
        "QuotaExceeded.BgpNetwork"
    );
    assert!(emu.networks().is_empty(), "a faulted Add makes nothing");
    vpc.add_bgp_network(&demo(), &add(DEMO_VBR, "10.40.0.0/16", None))
        .await
        .expect("next add");
    assert_eq!(
        code(vpc.list_bgp_networks(&demo(), DEMO_REGION, DEMO_VBR).await),
        "ServiceUnavailable"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_vbr_of_another_account_is_invisible_to_network_calls() {
    let emu = emulator(config()).await;
    let vpc = client(&emu);
    vpc.add_bgp_network(&demo(), &add(OWNED_VBR, "10.50.0.0/16", None))
        .await
        .expect("owner adds");
    assert_eq!(
        code(
            vpc.add_bgp_network(&other(), &add(OWNED_VBR, "10.51.0.0/16", None))
                .await
        ),
        "InvalidVbrNetwork"
    );
    assert_eq!(
        code(
            vpc.delete_bgp_network(&other(), &delete(OWNED_VBR, "10.50.0.0/16"))
                .await
        ),
        "InvalidVbrNetwork"
    );
    // The other account's listing is empty and looks consistent: absence in a listing proves
    // nothing unless the credentials are the owning account's.
    let mut cfg_lag_free = false;
    for _ in 0..40 {
        let mine = vpc
            .list_bgp_networks(&demo(), DEMO_REGION, OWNED_VBR)
            .await
            .expect("list");
        if !mine.networks.is_empty() {
            cfg_lag_free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cfg_lag_free, "the owner sees its network");
    let theirs = vpc
        .list_bgp_networks(&other(), DEMO_REGION, OWNED_VBR)
        .await
        .expect("list");
    assert!(
        theirs.consistent && theirs.networks.is_empty(),
        "{theirs:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn networks_survive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config();
    cfg.state_file = Some(dir.path().join("state.json"));
    let emu = emulator(cfg.clone()).await;
    client(&emu)
        .add_bgp_network(&demo(), &add(DEMO_VBR, "10.60.0.0/16", Some("persist-1")))
        .await
        .expect("add");
    emu.shutdown().await;
    let emu = emulator(cfg).await;
    let networks = emu.networks();
    assert_eq!(networks.len(), 1);
    assert_eq!(networks[0].client_token.as_deref(), Some("persist-1"));
    // The token survived too: its replay is still answered.
    client(&emu)
        .add_bgp_network(&demo(), &add(DEMO_VBR, "10.60.0.0/16", Some("persist-1")))
        .await
        .expect("replay after restart");
    assert_eq!(emu.networks().len(), 1);
    emu.shutdown().await;
}
