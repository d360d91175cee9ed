//! An operator under test: the real control plane, an in-process VPC emulator reached over
//! HTTP, and the controller running in-process against both, scoped to a fresh namespace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::cloud::{ClientConfig, CredentialChain, RetryConfig, VpcClient};
use alicloud_bgp_operator::controller::timing::Timing;
use alicloud_bgp_operator::controller::{self, Context, ControllerConfig, WatchScope};
use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, EmulatorConfig,
};
use alicloud_bgp_operator::emulator::model::PeerSnapshot;
use alicloud_bgp_operator::emulator::server::{self, EmulatorHandle};
use alicloud_bgp_operator::ops::metrics::Metrics;

use super::{client_with_crds, namespace, wait_for};

/// The IPv4 group of the emulator's demo configuration.
pub const GROUP: &str = "bgpg-emu00000000000000001";
/// The IPv6 group of the emulator's demo configuration.
pub const GROUP_V6: &str = "bgpg-emu00000000000000002";
/// The demo region.
pub const REGION: &str = "cn-shanghai";

/// How long the tests wait for anything.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Operator {
    /// Admin client: what the test itself uses to arrange and inspect objects.
    pub client: Client,
    /// The client the controller talks to Kubernetes with: the admin client, or the one given
    /// to `start_with_client` (e.g. impersonating a ServiceAccount, so its RBAC applies).
    pub controller_client: Client,
    pub ns: String,
    pub emu: EmulatorHandle,
    pub ctx: Arc<Context>,
    pub config: ControllerConfig,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Fast emulator transitions for tests, with the real API's strictness (docs/cloud-fidelity.md):
/// 8 peers per VBR (the demo VBR holds both demo groups), printable-ASCII ClientTokens, and a
/// peering subnet of 10.0.0.0/8 (the tests use 10.<n>.x.y per test) and 2408:4000::/32.
pub fn test_emulator_config() -> EmulatorConfig {
    let mut cfg = EmulatorConfig::demo();
    cfg.pending_delay = Duration::from_millis(300);
    cfg.modify_delay = Duration::from_millis(300);
    cfg.delete_delay = Duration::from_millis(300);
    cfg.client_token_ascii_only = true;
    // Read-after-write lag: a new peer is invisible to DescribeBgpPeers for a while, as
    // nothing documents otherwise. Every integration test runs with it.
    cfg.visibility_lag = Duration::from_millis(800);
    for vbr in &mut cfg.vbrs {
        vbr.peering_subnets = vec!["10.0.0.0/8".parse().expect("CIDR")];
    }
    cfg
}

/// Fast controller timings for tests.
pub fn test_controller_config() -> ControllerConfig {
    ControllerConfig {
        resync_period: Duration::from_secs(2),
        poll_interval: Duration::from_millis(200),
        concurrency: 4,
        // Short, but well above the poll interval (the production default is 2 min).
        timing: Timing {
            visibility_grace: Duration::from_secs(5),
            ..Timing::default()
        },
        // Secrets are not watched: an object stalled on credentials re-reads them this often.
        tenancy: alicloud_bgp_operator::controller::credentials::TenancyConfig {
            credentials_recheck: Duration::from_secs(1),
            ..Default::default()
        },
        ..ControllerConfig::default()
    }
}

impl Operator {
    /// Control plane + emulator (demo topology, fast transitions) + controller.
    pub async fn start(test: &str) -> Self {
        Self::start_with(test, test_emulator_config(), test_controller_config()).await
    }

    pub async fn start_with(test: &str, emu_cfg: EmulatorConfig, config: ControllerConfig) -> Self {
        let client = client_with_crds().await;
        let mut op = Self::prepare(test, client.clone(), client, emu_cfg, config).await;
        op.start_controller();
        op
    }

    /// Like `start_with`, but the controller uses `controller_client` (e.g. one impersonating
    /// the chart's ServiceAccount) while the test keeps the admin client.
    pub async fn start_with_client(
        test: &str,
        controller_client: Client,
        emu_cfg: EmulatorConfig,
        config: ControllerConfig,
    ) -> Self {
        let mut op = Self::new_with_client(test, controller_client, emu_cfg, config).await;
        op.start_controller();
        op
    }

    /// `start_with_client` without starting the controller: the namespace exists, so the test
    /// can grant the controller's identity its permissions there first; then call
    /// `start_controller`.
    pub async fn new_with_client(
        test: &str,
        controller_client: Client,
        emu_cfg: EmulatorConfig,
        config: ControllerConfig,
    ) -> Self {
        let client = client_with_crds().await;
        Self::prepare(test, client, controller_client, emu_cfg, config).await
    }

    async fn prepare(
        test: &str,
        client: Client,
        controller_client: Client,
        emu_cfg: EmulatorConfig,
        config: ControllerConfig,
    ) -> Self {
        let ns = namespace(&client, test).await;
        let emu = server::start(emu_cfg, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("emulator starts");
        let ctx = new_context(&controller_client, &emu, config.clone());
        Operator {
            client,
            controller_client,
            ns,
            emu,
            ctx,
            config,
            cancel: CancellationToken::new(),
            task: None,
        }
    }

    /// Starts (or restarts) the controller with a fresh context: nothing survives from the
    /// previous instance but what is in Kubernetes and the cloud.
    pub fn start_controller(&mut self) {
        self.ctx = new_context(&self.controller_client, &self.emu, self.config.clone());
        self.cancel = CancellationToken::new();
        let ctx = self.ctx.clone();
        let scope = WatchScope {
            namespace: Some(self.ns.clone()),
            label_selector: None,
        };
        let shutdown = self.cancel.clone().cancelled_owned();
        self.task = Some(tokio::spawn(controller::run(ctx, scope, shutdown)));
    }

    /// Starts the controller with a context built from `opts` (its own rate limits, call
    /// observer or operator-wide key).
    pub fn start_controller_with(&mut self, opts: ContextOptions) {
        self.ctx = new_context_with(
            &self.controller_client,
            &self.emu,
            self.config.clone(),
            opts,
        );
        self.cancel = CancellationToken::new();
        let ctx = self.ctx.clone();
        let scope = WatchScope {
            namespace: Some(self.ns.clone()),
            label_selector: None,
        };
        let shutdown = self.cancel.clone().cancelled_owned();
        self.task = Some(tokio::spawn(controller::run(ctx, scope, shutdown)));
    }

    /// Kills the controller at once, wherever it is (like `kill -9`: in-flight calls are
    /// dropped, no cleanup runs).
    pub async fn crash_controller(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Graceful stop.
    pub async fn stop_controller(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
    }

    pub fn api(&self) -> Api<BgpPeer> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates a BgpPeer from a spec (JSON) and optional annotations.
    pub async fn create(&self, name: &str, spec: serde_json::Value) -> BgpPeer {
        self.create_annotated(name, spec, HashMap::new()).await
    }

    pub async fn create_annotated(
        &self,
        name: &str,
        spec: serde_json::Value,
        annotations: HashMap<String, String>,
    ) -> BgpPeer {
        let obj: BgpPeer = serde_json::from_value(json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1",
            "kind": "BgpPeer",
            "metadata": {"name": name, "annotations": annotations},
            "spec": spec,
        }))
        .expect("BgpPeer");
        self.api()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create BgpPeer")
    }

    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.api()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("patch spec");
    }

    pub async fn annotate(&self, name: &str, key: &str, value: Option<&str>) {
        self.api()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
            )
            .await
            .expect("annotate");
    }

    pub async fn delete(&self, name: &str) {
        self.api()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete BgpPeer");
    }

    /// Waits until `pred` holds for the object.
    pub async fn wait(&self, name: &str, what: &str, pred: impl Fn(&BgpPeer) -> bool) -> BgpPeer {
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
                let status =
                    obj.map(|o| serde_json::to_string_pretty(&o.status).unwrap_or_default());
                panic!(
                    "timed out after {PATIENCE:?} waiting for {name}: {what}; last status: {}; emulator calls: {:?}",
                    status.unwrap_or_else(|| "<object missing>".into()),
                    self.emu.counters().by_action_code
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the object's condition `type_` has `status` and `reason`.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> BgpPeer {
        self.wait(name, &format!("{type_}={status} ({reason})"), |o| {
            condition(o, type_).is_some_and(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    /// Waits until Ready=True for the current generation.
    pub async fn wait_ready(&self, name: &str) -> BgpPeer {
        self.wait(name, "Ready=True at the current generation", |o| {
            let generation = o.metadata.generation;
            o.status
                .as_ref()
                .is_some_and(|s| s.observed_generation == generation)
                && condition(o, "Ready").is_some_and(|c| c.status == "True")
        })
        .await
    }

    /// Waits until the object is gone from the apiserver.
    pub async fn wait_gone(&self, name: &str) {
        let api = self.api();
        wait_for(&format!("{name} deleted"), PATIENCE, || {
            let api = api.clone();
            async move {
                match api.get_opt(name).await {
                    Ok(None) => Some(()),
                    _ => None,
                }
            }
        })
        .await
    }

    /// The emulator's peers created with this object's ClientTokens.
    pub fn cloud_peers_of(&self, obj: &BgpPeer) -> Vec<PeerSnapshot> {
        let uid = obj.uid().unwrap_or_default();
        self.emu
            .peers()
            .into_iter()
            .filter(|p| p.client_token.as_deref().is_some_and(|t| t.contains(&uid)))
            .collect()
    }

    /// Calls of `action` the emulator has seen.
    pub fn calls(&self, action: &str) -> u64 {
        self.emu.counters().calls(action)
    }
}

/// A condition of an object.
pub fn condition<'a>(
    obj: &'a BgpPeer,
    type_: &str,
) -> Option<&'a alicloud_bgp_operator::api::Condition> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// A VPC client for the emulator with the demo key (for arranging cloud state in tests).
pub fn vpc_client(emu: &EmulatorHandle) -> VpcClient {
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
    .expect("vpc client")
}

fn new_context(client: &Client, emu: &EmulatorHandle, config: ControllerConfig) -> Arc<Context> {
    let metrics = Arc::new(Metrics::new());
    new_context_with(
        client,
        emu,
        config,
        ContextOptions {
            observer: metrics.clone(),
            metrics,
            ..ContextOptions::default()
        },
    )
}

/// What a test may change in a controller's context: its cloud client's rate limits and call
/// observer, and the operator-wide access key (default: the demo key).
pub struct ContextOptions {
    pub rate_limit: Option<alicloud_bgp_operator::cloud::RateLimitConfig>,
    pub observer: Arc<dyn alicloud_bgp_operator::cloud::CallObserver>,
    pub metrics: Arc<Metrics>,
    pub access_key: (String, String),
}

impl Default for ContextOptions {
    fn default() -> Self {
        let metrics = Arc::new(Metrics::new());
        ContextOptions {
            rate_limit: ClientConfig::default().rate_limit,
            observer: metrics.clone(),
            metrics,
            access_key: (
                DEMO_ACCESS_KEY_ID.to_owned(),
                DEMO_ACCESS_KEY_SECRET.to_owned(),
            ),
        }
    }
}

/// A controller context against `emu` with these options.
pub fn new_context_with(
    client: &Client,
    emu: &EmulatorHandle,
    config: ControllerConfig,
    opts: ContextOptions,
) -> Arc<Context> {
    let vpc = VpcClient::new(ClientConfig {
        endpoint: Some(emu.endpoint()),
        sts_endpoint: Some(emu.endpoint()),
        observer: Some(opts.observer),
        rate_limit: opts.rate_limit,
        retry: RetryConfig {
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    })
    .expect("vpc client");
    let env: HashMap<String, String> = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", opts.access_key.0.as_str()),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            opts.access_key.1.as_str(),
        ),
        ("HOME", "/nonexistent"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // STS (per-namespace RRSA identities) is the emulator too.
    let credentials =
        CredentialChain::from_env_map(env, Some(emu.endpoint())).expect("credential chain");
    let recorder = controller::recorder(client.clone(), Some("test".to_owned()));
    Arc::new(Context::new(
        client.clone(),
        vpc,
        credentials,
        config,
        recorder,
        opts.metrics,
    ))
}
