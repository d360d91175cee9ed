//! Sharding across installs: two controllers with disjoint `--label-selector`s and their own
//! Lease names, against one apiserver and one account (each install with its own access key of
//! that account and its own `--cloud-qps`, its share of the account's quota).
//!
//! Each reconciles only its own objects (an object matching neither is never touched), both
//! make progress, and each stays within its rate: the emulator holds every access key to the
//! install's rate and the account to the sum of both, and answers not one call with
//! `Throttling.User`. No wall-clock asserts: calls and throttled answers are counted.

mod common;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use alicloud_bgp_operator::cloud::RateLimitConfig;
use alicloud_bgp_operator::controller::{self, WatchScope};
use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, EmulatorConfig, Secret,
};
use alicloud_bgp_operator::ops::leader::{self, LeaderConfig};

use common::operator::{
    ContextOptions, GROUP, Operator, PATIENCE, REGION, new_context_with, test_controller_config,
};

const KEY_B: &str = "LTAI5tShardBSameAccount";
const SECRET_B: &str = "ShardBSecretNotForProduction00001";
/// Each install's share of every operation's quota (calls per second).
const SHARE: u32 = 3;
const PER_SHARD: usize = 4;

/// The account's quota is two shares per operation; each access key is held to one share (a
/// test-only rule: the cloud counts accounts, this shows each install's own rate).
fn world() -> EmulatorConfig {
    let mut cfg = common::operator::test_emulator_config();
    cfg.add_access_key(KEY_B, Secret::new(SECRET_B));
    for vbr in &mut cfg.vbrs {
        vbr.peer_quota = 32;
    }
    cfg.api_quotas = serde_saphyr::from_str(&format!(
        "[{{ scope: account, default: {}/1s }}, {{ scope: access_key, default: {SHARE}/1s }}]",
        2 * SHARE
    ))
    .expect("quota rules");
    cfg
}

struct Install {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// One install: its Lease, then its controller over `shard=<name>` with its own key and rate.
async fn install(op: &Operator, name: &str, key: (&str, &str)) -> Install {
    let cancel = CancellationToken::new();
    let lease = LeaderConfig {
        lease_name: format!("abo-shard-{name}"),
        namespace: op.ns.clone(),
        identity: format!("install-{name}"),
        duration: Duration::from_secs(15),
        grace: Duration::from_secs(2),
    };
    let ctx = new_context_with(
        &op.controller_client,
        &op.emu,
        op.config.clone(),
        ContextOptions {
            rate_limit: Some(RateLimitConfig {
                qps: f64::from(SHARE),
                burst: SHARE,
                ..RateLimitConfig::default()
            }),
            access_key: (key.0.to_owned(), key.1.to_owned()),
            ..ContextOptions::default()
        },
    );
    let scope = WatchScope {
        namespace: Some(op.ns.clone()),
        label_selector: Some(format!("shard={name}")),
    };
    let (client, stop) = (op.controller_client.clone(), cancel.clone());
    let task = tokio::spawn(async move {
        let Some(leadership) = leader::acquire(client, &lease, &stop)
            .await
            .expect("lease manager")
        else {
            return;
        };
        controller::run(ctx, scope, stop.clone().cancelled_owned()).await;
        leadership.release().await;
    });
    Install { cancel, task }
}

impl Install {
    async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

async fn create(op: &Operator, name: &str, shard: &str, ip: &str) {
    let obj = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": name, "labels": {"shard": shard}},
        "spec": {"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip},
    }))
    .expect("object");
    op.api()
        .create(&Default::default(), &obj)
        .await
        .expect("create");
}

fn calls_of(op: &Operator, key: &str, action: &str) -> u64 {
    op.emu
        .counters()
        .by_access_key
        .get(key)
        .and_then(|k| k.by_action.get(action).copied())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_installs_with_disjoint_selectors_share_an_account_within_their_rates() {
    let op = Operator::new_with_client(
        "sharding",
        common::client_with_crds().await,
        world(),
        test_controller_config(),
    )
    .await;
    let a = install(&op, "a", (DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)).await;
    let b = install(&op, "b", (KEY_B, SECRET_B)).await;

    // Each install holds its own Lease: both lead at once.
    let leases: Api<Lease> = Api::namespaced(op.client.clone(), &op.ns);
    for (lease, holder) in [("abo-shard-a", "install-a"), ("abo-shard-b", "install-b")] {
        let got = common::wait_for(&format!("{lease} held"), PATIENCE, || {
            let leases = leases.clone();
            async move { leases.get_opt(lease).await.ok()??.spec?.holder_identity }
        })
        .await;
        assert_eq!(got, holder);
    }

    for i in 0..PER_SHARD {
        create(&op, &format!("a{i}"), "a", &format!("10.81.0.{}", i + 2)).await;
        create(&op, &format!("b{i}"), "b", &format!("10.81.1.{}", i + 2)).await;
    }
    create(&op, "nobody", "c", "10.81.2.2").await;
    for i in 0..PER_SHARD {
        op.wait_ready(&format!("a{i}")).await;
        op.wait_ready(&format!("b{i}")).await;
    }

    // Each install created exactly its own shard's peers, with its own key.
    let shard = PER_SHARD as u64;
    assert_eq!(calls_of(&op, DEMO_ACCESS_KEY_ID, "CreateBgpPeer"), shard);
    assert_eq!(calls_of(&op, KEY_B, "CreateBgpPeer"), shard);
    // The object matching neither selector was never touched: no finalizer, no status.
    let nobody = op.api().get("nobody").await.expect("get");
    assert!(nobody.metadata.finalizers.is_none(), "{nobody:?}");
    assert!(nobody.status.is_none(), "{nobody:?}");
    // Each within its share, both within the account's quota.
    let counters = op.emu.counters();
    assert_eq!(
        counters.code("Throttling.User"),
        0,
        "{:?}",
        counters.by_code
    );

    for i in 0..PER_SHARD {
        op.delete(&format!("a{i}")).await;
        op.delete(&format!("b{i}")).await;
    }
    for i in 0..PER_SHARD {
        op.wait_gone(&format!("a{i}")).await;
        op.wait_gone(&format!("b{i}")).await;
    }
    assert!(op.emu.peers().is_empty(), "no peer left");
    assert!(calls_of(&op, DEMO_ACCESS_KEY_ID, "DeleteBgpPeer") >= shard);
    assert!(calls_of(&op, KEY_B, "DeleteBgpPeer") >= shard);
    let counters = op.emu.counters();
    assert_eq!(
        counters.code("Throttling.User"),
        0,
        "{:?}",
        counters.by_code
    );
    a.stop().await;
    b.stop().await;
}
