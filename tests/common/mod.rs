//! Shared helpers of the integration tests: the real control plane, CRD installation,
//! a fresh namespace per test, and polling.
#![allow(dead_code)]

pub mod cloud_proxy;
pub mod controlplane;
pub mod emulator;
pub mod mock;
pub mod operator;
pub mod signer;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};

use alicloud_bgp_operator::api::BgpPeer;

/// An admin client of the shared control plane with the BgpPeer CRD installed and served.
pub async fn client_with_crds() -> Client {
    alicloud_bgp_operator::install_crypto_provider();
    let client = controlplane::client().await;
    install_crds(&client).await;
    client
}

/// Server-side applies the CRDs (from the Rust types; the checked-in YAML is the same, which
/// unit tests guarantee) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // CloudIdentity first: the controller caches and watches them (issue 17).
    let identities = alicloud_bgp_operator::api::identity::CloudIdentity::crd();
    crds.patch(
        alicloud_bgp_operator::api::identity::CloudIdentity::crd_name(),
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(&identities),
    )
    .await
    .expect("apply CloudIdentity CRD");
    let ids: Api<alicloud_bgp_operator::api::identity::CloudIdentity> = Api::all(client.clone());
    wait_for("CloudIdentity served", Duration::from_secs(30), || {
        let ids = ids.clone();
        async move { ids.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    let crd = BgpPeer::crd();
    let name = crd.metadata.name.clone().expect("crd name");
    crds.patch(
        &name,
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    wait_for("CRD established", Duration::from_secs(30), || {
        let crds = crds.clone();
        let name = name.clone();
        async move {
            let crd = crds.get(&name).await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;
    // Established can precede discovery by a moment: wait until a list works.
    let peers: Api<BgpPeer> = Api::all(client.clone());
    wait_for("BgpPeer served", Duration::from_secs(30), || {
        let peers = peers.clone();
        async move { peers.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    // BgpGroup (issue 19): the controller starts its BgpGroup controller when it is served.
    use alicloud_bgp_operator::api::group::BgpGroup;
    crds.patch(
        BgpGroup::crd_name(),
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(&BgpGroup::crd()),
    )
    .await
    .expect("apply BgpGroup CRD");
    let groups: Api<BgpGroup> = Api::all(client.clone());
    wait_for("BgpGroup served", Duration::from_secs(30), || {
        let groups = groups.clone();
        async move { groups.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
    // BgpNetwork (issue 20).
    use alicloud_bgp_operator::api::network::BgpNetwork;
    crds.patch(
        BgpNetwork::crd_name(),
        &PatchParams::apply("abo-tests").force(),
        &Patch::Apply(&BgpNetwork::crd()),
    )
    .await
    .expect("apply BgpNetwork CRD");
    let networks: Api<BgpNetwork> = Api::all(client.clone());
    wait_for("BgpNetwork served", Duration::from_secs(30), || {
        let networks = networks.clone();
        async move { networks.list(&Default::default()).await.ok().map(|_| ()) }
    })
    .await;
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Creates a fresh namespace named after the test (namespaces never finish deleting without
/// controllers, so each test gets its own).
pub async fn namespace(client: &Client, test: &str) -> String {
    let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let name = format!("{}-{n}-{suffix}", test.replace('_', "-"))
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned();
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .expect("namespace object");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Polls `f` every 100 ms until it returns Some, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
