//! API rate limits as the cloud defines them: a quota per OpenAPI operation, per account.
//!
//! - The emulator throttles per operation and account (across regions by default), per
//!   account and region, or with one shared quota, answering `Throttling.User` (400); quotas
//!   are set in the seed configuration or through `POST /__admin/config`.
//! - The client's limiter keeps one budget per (account, operation): at the quotas it is never
//!   throttled, creates do not wait for reads, a throttled operation slows only its own budget,
//!   and accounts do not slow each other.
//! - The controller, its limiter at the emulator's quotas, creates and deletes a burst of
//!   objects without one throttled answer, and its creates never wait for its reads.
//!
//! No wall-clock asserts: calls, throttled answers and limiter waits are counted.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use alicloud_bgp_operator::cloud::ratelimit::{QuotaScope, Rate};
use alicloud_bgp_operator::cloud::{
    CallObserver, ClientConfig, CreateBgpPeerRequest, Credentials, DescribeBgpGroupsRequest,
    DescribeBgpPeersRequest, ErrorClass, RateLimitConfig, RetryConfig, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_GROUP_V4,
    DEMO_REGION, EmulatorConfig, Secret,
};
use alicloud_bgp_operator::emulator::server::EmulatorHandle;

use common::emulator::start_emulator as emulator;
use common::operator::{ContextOptions, GROUP, Operator, REGION, test_controller_config};

const THROTTLED: &str = "Throttling.User";
const OTHER_REGION: &str = "cn-hangzhou";
const KEY_B: &str = "LTAI5tSecondAccountKey1";
const SECRET_B: &str = "SecondAccountSecretNotForProduction1";

/// The test world with a second region and a second account, room for 32 peers per VBR, and
/// these quota rules (YAML, as in a seed file).
fn world(rules: &str) -> EmulatorConfig {
    let mut cfg = common::operator::test_emulator_config();
    cfg.regions.push(OTHER_REGION.to_owned());
    cfg.accounts.push(AccountConfig {
        uid: "2000000000000002".to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: KEY_B.to_owned(),
            secret: Secret::new(SECRET_B),
            user: None,
        }],
        roles: Vec::new(),
    });
    for vbr in &mut cfg.vbrs {
        vbr.peer_quota = 32;
    }
    cfg.api_quotas = serde_saphyr::from_str(rules).expect("quota rules");
    cfg
}

fn account_a() -> Credentials {
    Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None)
}

fn account_b() -> Credentials {
    Credentials::new(KEY_B, SECRET_B, None)
}

/// Limiter waits by action.
#[derive(Default)]
struct Waits(Mutex<BTreeMap<String, Vec<Duration>>>);

impl Waits {
    fn of(&self, action: &str) -> Vec<Duration> {
        self.0
            .lock()
            .expect("lock")
            .get(action)
            .cloned()
            .unwrap_or_default()
    }
}

impl CallObserver for Waits {
    fn on_call(&self, _: &str, _: &str, _: Duration) {}
    fn on_rate_limit_wait(&self, _: Duration) {}
    fn on_rate_limit_wait_of(&self, action: &str, waited: Duration) {
        self.0
            .lock()
            .expect("lock")
            .entry(action.to_owned())
            .or_default()
            .push(waited);
    }
}

fn client(
    emu: &EmulatorHandle,
    rate_limit: Option<RateLimitConfig>,
    waits: Option<Arc<Waits>>,
) -> VpcClient {
    VpcClient::new(ClientConfig {
        endpoint: Some(emu.endpoint()),
        sts_endpoint: Some(emu.endpoint()),
        rate_limit,
        observer: waits.map(|w| w as Arc<dyn CallObserver>),
        retry: RetryConfig {
            max_read_retries: 0,
            max_mutating_retries: 0,
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    })
    .expect("client")
}

fn describe(region: &str) -> DescribeBgpPeersRequest {
    DescribeBgpPeersRequest {
        region_id: region.to_owned(),
        ..Default::default()
    }
}

fn create(i: u32) -> CreateBgpPeerRequest {
    CreateBgpPeerRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: DEMO_GROUP_V4.into(),
        peer_ip_address: Some(format!("10.77.0.{}", i + 2)),
        client_token: Some(format!("rate-limits-{i}")),
        ..Default::default()
    }
}

/// The code of a failed call, or "OK".
fn code<T>(r: &Result<T, alicloud_bgp_operator::cloud::CloudError>) -> String {
    match r {
        Ok(_) => "OK".to_owned(),
        Err(e) => e.code().unwrap_or("-").to_owned(),
    }
}

fn throttled(emu: &EmulatorHandle) -> u64 {
    emu.counters().code(THROTTLED)
}

/// Calls delayed on their way in (0–400 ms before the emulator counts them, in any order) are
/// never throttled by a sliding-window quota the limiter is set to: a call holds its place until
/// a window after its answer. (A limit on grant times alone, with its 50 ms margin, let a delayed
/// call and the next window's first one land in one server window.)
#[tokio::test]
async fn calls_delayed_on_their_way_in_are_never_throttled() {
    let mut cfg = world("[{ operations: { DescribeBgpPeers: 4/1s } }]");
    cfg.request_latency = "0ms..400ms".parse().expect("latency");
    let emu = emulator(cfg).await;
    let rate_limit = RateLimitConfig {
        operations: [("DescribeBgpPeers".to_owned(), "4/1s".parse().expect("rate"))].into(),
        burst: 4,
        ..RateLimitConfig::default()
    };
    let vpc = client(&emu, Some(rate_limit), None);
    let a = account_a();
    let calls = (0..24).map(|_| {
        let (vpc, a) = (vpc.clone(), a.clone());
        async move { code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await) }
    });
    let codes = futures::future::join_all(calls).await;
    assert!(codes.iter().all(|c| c == "OK"), "{codes:?}");
    assert_eq!(throttled(&emu), 0);
    assert_eq!(emu.counters().count("DescribeBgpPeers", "OK"), 24);
}

#[tokio::test]
async fn the_emulator_throttles_each_operation_per_account_across_regions() {
    let emu = emulator(world(
        "[{ operations: { DescribeBgpPeers: 3/60s, DescribeBgpGroups: 100/60s } }]",
    ))
    .await;
    let vpc = client(&emu, None, None);
    let a = account_a();
    for region in [REGION, REGION, OTHER_REGION] {
        vpc.describe_bgp_peers(&a, &describe(region))
            .await
            .expect("within the quota");
    }
    // The fourth call in the window, in either region: the quota spans regions.
    let err = vpc
        .describe_bgp_peers(&a, &describe(OTHER_REGION))
        .await
        .expect_err("over the quota");
    assert_eq!(err.code(), Some(THROTTLED));
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert_eq!(err.http_status(), Some(400));
    // Another operation has its own quota; an operation without one is not limited.
    let groups = DescribeBgpGroupsRequest {
        region_id: REGION.to_owned(),
        ..Default::default()
    };
    vpc.describe_bgp_groups(&a, &groups)
        .await
        .expect("DescribeBgpGroups has its own quota");
    vpc.create_bgp_peer(&a, &create(0))
        .await
        .expect("CreateBgpPeer has no quota here");
    // Another account has its own quota.
    vpc.describe_bgp_peers(&account_b(), &describe(REGION))
        .await
        .expect("account B's own quota");
    assert_eq!(emu.counters().count("DescribeBgpPeers", THROTTLED), 1);
    assert_eq!(
        throttled(&emu),
        1,
        "a refused call is not counted as admitted"
    );
}

#[tokio::test]
async fn per_region_scope_and_one_shared_quota() {
    let emu = emulator(world("[{ scope: account_region, default: 2/60s }]")).await;
    let vpc = client(&emu, None, None);
    let a = account_a();
    let results = [
        code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await),
        code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await),
        code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await),
        code(&vpc.describe_bgp_peers(&a, &describe(OTHER_REGION)).await),
    ];
    assert_eq!(results, ["OK", "OK", THROTTLED, "OK"], "per region");

    // One quota for every operation of the account (the shared model).
    let emu = emulator(world("[{ model: shared, default: 3/60s }]")).await;
    let vpc = client(&emu, None, None);
    let groups = DescribeBgpGroupsRequest {
        region_id: REGION.to_owned(),
        ..Default::default()
    };
    let results = [
        code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await),
        code(&vpc.describe_bgp_groups(&a, &groups).await),
        code(&vpc.create_bgp_peer(&a, &create(1)).await),
        code(&vpc.describe_bgp_peers(&a, &describe(OTHER_REGION)).await),
        code(&vpc.create_bgp_peer(&a, &create(2)).await),
    ];
    assert_eq!(results, ["OK", "OK", "OK", THROTTLED, THROTTLED], "shared");
}

#[tokio::test]
async fn quotas_are_set_through_the_admin_api() {
    let emu = emulator(world("[]")).await;
    let admin = reqwest::Client::new();
    let url = format!("{}/__admin/config", emu.endpoint());
    let set = |rules: serde_json::Value| {
        let (admin, url) = (admin.clone(), url.clone());
        async move {
            let r = admin
                .post(&url)
                .json(&json!({ "api_quotas": rules }))
                .send()
                .await
                .expect("admin");
            assert!(r.status().is_success(), "{:?}", r.text().await);
        }
    };
    set(json!([{ "scope": "account", "operations": { "DescribeBgpPeers": "1/60s" } }])).await;
    let knobs: serde_json::Value = admin
        .get(&url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        knobs["api_quotas"][0]["operations"]["DescribeBgpPeers"],
        "1/60000ms"
    );
    let vpc = client(&emu, None, None);
    let a = account_a();
    let first = code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await);
    let second = code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await);
    assert_eq!([first, second], ["OK", THROTTLED]);
    // A malformed quota is refused with a message; `[]` lifts the limits.
    let r = admin
        .post(&url)
        .json(&json!({ "api_quotas": [{ "default": "fast" }] }))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status().as_u16(), 400);
    set(json!([])).await;
    assert_eq!(
        code(&vpc.describe_bgp_peers(&a, &describe(REGION)).await),
        "OK"
    );
}

/// The operator's limiter at the emulator's per-operation quotas: reads saturate their own
/// budget and wait, creates issued meanwhile never wait, and nothing is throttled.
#[tokio::test]
async fn at_the_quotas_nothing_is_throttled_and_creates_do_not_wait_for_reads() {
    let emu = emulator(world(
        "[{ operations: { CreateBgpPeer: 6/1s, DescribeBgpPeers: 4/1s } }]",
    ))
    .await;
    let waits = Arc::new(Waits::default());
    let vpc = client(
        &emu,
        Some(RateLimitConfig {
            qps: 4.0,
            burst: 10,
            operations: [
                ("CreateBgpPeer".to_owned(), "6/1s".parse().expect("rate")),
                ("DescribeBgpPeers".to_owned(), "4/1s".parse().expect("rate")),
            ]
            .into(),
            ..RateLimitConfig::default()
        }),
        Some(waits.clone()),
    );
    let a = account_a();
    vpc.get_caller_identity(&a).await.expect("identity");
    // 4 readers × 4 reads against a budget of 4 per second.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (vpc, a) = (vpc.clone(), a.clone());
            tokio::spawn(async move {
                for _ in 0..4 {
                    vpc.describe_bgp_peers(&a, &describe(REGION))
                        .await
                        .expect("read");
                }
            })
        })
        .collect();
    // Once reads queue, six creates at once.
    common::wait_for("reads queue", Duration::from_secs(20), || {
        let waits = waits.clone();
        async move { (!waits.of("DescribeBgpPeers").is_empty()).then_some(()) }
    })
    .await;
    let creates: Vec<_> = (0..6)
        .map(|i| {
            let (vpc, a) = (vpc.clone(), a.clone());
            tokio::spawn(async move { vpc.create_bgp_peer(&a, &create(10 + i)).await })
        })
        .collect();
    for c in creates {
        c.await.expect("join").expect("create");
    }
    for r in readers {
        r.await.expect("reader");
    }
    assert!(
        waits.of("CreateBgpPeer").is_empty(),
        "creates waited: {:?}",
        waits.of("CreateBgpPeer")
    );
    assert!(waits.of("DescribeBgpPeers").len() >= 8, "reads queued");
    assert_eq!(emu.counters().count("CreateBgpPeer", "OK"), 6);
    assert_eq!(emu.counters().count("DescribeBgpPeers", "OK"), 16);
    assert_eq!(throttled(&emu), 0);
}

/// A throttled answer slows only the budget of that operation and account; another account
/// keeps its whole rate and its calls do not wait for the first account's.
#[tokio::test]
async fn accounts_have_their_own_budgets_and_a_throttle_slows_only_its_operation() {
    let emu = emulator(world("[{ default: 3/60s }]")).await;
    let waits = Arc::new(Waits::default());
    let vpc = client(
        &emu,
        Some(RateLimitConfig {
            qps: 3.0,
            burst: 3,
            scope: QuotaScope::Account,
            ..RateLimitConfig::default()
        }),
        Some(waits.clone()),
    );
    let (a, b) = (account_a(), account_b());
    // Binds each key to its account (the operator does this before any VPC call).
    vpc.get_caller_identity(&a).await.expect("identity A");
    vpc.get_caller_identity(&b).await.expect("identity B");
    // Someone else (another install, a script) spends account A's DescribeBgpPeers quota.
    let other = client(&emu, None, None);
    for _ in 0..3 {
        other
            .describe_bgp_peers(&a, &describe(REGION))
            .await
            .expect("spent");
    }
    let err = vpc
        .describe_bgp_peers(&a, &describe(REGION))
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some(THROTTLED));
    let rate = |creds: &Credentials, action: &str| {
        vpc.current_rate(creds.access_key_id(), REGION, action)
            .unwrap_or_default()
    };
    let slowed = rate(&a, "DescribeBgpPeers");
    assert!((1.5..1.6).contains(&slowed), "halved: {slowed}");
    assert_eq!(rate(&a, "CreateBgpPeer"), 3.0, "another operation");
    assert_eq!(rate(&b, "DescribeBgpPeers"), 3.0, "another account");
    // Account B's reads go at once although A's budget is slowed and spent.
    for _ in 0..3 {
        vpc.describe_bgp_peers(&b, &describe(REGION))
            .await
            .expect("B within its quota");
    }
    assert!(waits.of("DescribeBgpPeers").is_empty(), "B never waited");
    assert_eq!(throttled(&emu), 1, "only the one caused by someone else");
}

/// The controller with its limiter at the emulator's per-operation quotas creates and deletes
/// a burst of objects without a single throttled answer, and its creates never wait for its
/// (tightly limited) reads.
#[tokio::test]
async fn a_burst_at_the_quotas_is_never_throttled() {
    const N: u32 = 8;
    let quotas =
        "[{ default: 5/1s, operations: { CreateBgpPeer: 10/1s, DescribeBgpPeers: 2/1s } }]";
    let waits = Arc::new(Waits::default());
    let mut op = Operator::new_with_client(
        "rate-burst",
        common::client_with_crds().await,
        world(quotas),
        test_controller_config(),
    )
    .await;
    let rate_limit = RateLimitConfig {
        qps: 5.0,
        burst: 10,
        operations: [
            (
                "CreateBgpPeer".to_owned(),
                Rate::new(10, Duration::from_secs(1)),
            ),
            (
                "DescribeBgpPeers".to_owned(),
                Rate::new(2, Duration::from_secs(1)),
            ),
        ]
        .into(),
        ..RateLimitConfig::default()
    };
    op.start_controller_with(ContextOptions {
        rate_limit: Some(rate_limit),
        observer: waits.clone(),
        ..ContextOptions::default()
    });
    for i in 0..N {
        op.create(
            &format!("p{i}"),
            json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": format!("10.78.0.{}", i + 2)}),
        )
        .await;
    }
    for i in 0..N {
        op.wait_ready(&format!("p{i}")).await;
    }
    let counters = op.emu.counters();
    assert_eq!(counters.count("CreateBgpPeer", "OK"), u64::from(N));
    assert_eq!(throttled(&op.emu), 0, "{:?}", counters.by_code);
    assert!(
        waits.of("CreateBgpPeer").is_empty(),
        "creates waited: {:?}",
        waits.of("CreateBgpPeer")
    );

    for i in 0..N {
        op.delete(&format!("p{i}")).await;
    }
    for i in 0..N {
        op.wait_gone(&format!("p{i}")).await;
    }
    assert!(op.emu.peers().is_empty(), "no peer left");
    assert_eq!(throttled(&op.emu), 0, "{:?}", op.emu.counters().by_code);
    op.stop_controller().await;
}

/// Objects of two accounts in one controller (the second by per-object Secrets): each
/// account has its own budgets, so neither account's creates wait for the other's; nothing
/// is throttled. (One budget for both would make half the creates wait.)
#[tokio::test]
async fn two_accounts_in_one_controller_do_not_slow_each_other() {
    const PER_ACCOUNT: u32 = 4;
    let waits = Arc::new(Waits::default());
    let mut op = Operator::new_with_client(
        "rate-accounts",
        common::client_with_crds().await,
        world("[{ default: 4/1s }]"),
        test_controller_config(),
    )
    .await;
    op.start_controller_with(ContextOptions {
        rate_limit: Some(RateLimitConfig {
            qps: f64::from(PER_ACCOUNT),
            burst: PER_ACCOUNT,
            ..RateLimitConfig::default()
        }),
        observer: waits.clone(),
        ..ContextOptions::default()
    });
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(op.client.clone(), &op.ns);
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "account-b"},
        "stringData": {"accessKeyId": KEY_B, "accessKeySecret": SECRET_B},
    }))
    .expect("secret");
    secrets
        .create(&Default::default(), &secret)
        .await
        .expect("create secret");
    for i in 0..PER_ACCOUNT {
        let ip = |n: u32| format!("10.79.{n}.{}", i + 2);
        op.create(
            &format!("a{i}"),
            json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip(0)}),
        )
        .await;
        op.create(
            &format!("b{i}"),
            json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip(1),
                   "credentialsSecretRef": {"name": "account-b"}}),
        )
        .await;
    }
    for i in 0..PER_ACCOUNT {
        op.wait_ready(&format!("a{i}")).await;
        op.wait_ready(&format!("b{i}")).await;
    }
    let counters = op.emu.counters();
    let creates = |key: &str| {
        counters
            .by_access_key
            .get(key)
            .and_then(|k| k.by_action.get("CreateBgpPeer").copied())
            .unwrap_or(0)
    };
    assert_eq!(creates(DEMO_ACCESS_KEY_ID), u64::from(PER_ACCOUNT));
    assert_eq!(creates(KEY_B), u64::from(PER_ACCOUNT));
    assert_eq!(throttled(&op.emu), 0, "{:?}", counters.by_code);
    assert!(
        waits.of("CreateBgpPeer").is_empty(),
        "creates waited: {:?}",
        waits.of("CreateBgpPeer")
    );
    op.stop_controller().await;
}
