//! `alicloud-bgp-operator run`: the controller process (its flags, the clients they build,
//! the metrics server, leader election and the graceful shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cloud::{ClientConfig, CredentialChain, RateLimitConfig, SignatureVersion, VpcClient};
use crate::ops::health::{self, OpsState};
use crate::ops::leader::{self, LeaderConfig};
use crate::ops::metrics::Metrics;

use crate::controller::credentials::{
    DEFAULT_CREDENTIALS_CLUSTER_ROLE, DEFAULT_TOKEN_CLUSTER_ROLE, OperatorCredentials,
    TenancyConfig,
};
use crate::controller::{self, Context, ControllerConfig, WatchScope};
use crate::duration;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// VPC API endpoint used for every region instead of `vpc.<region>.aliyuncs.com` (an
    /// emulator, a private endpoint). Without a scheme, https is assumed.
    #[arg(long, env = "ABO_VPC_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Request signature: v3 (ACS3-HMAC-SHA256, default) or v1 (HMAC-SHA1).
    #[arg(
        long,
        env = "ABO_SIGNATURE_VERSION",
        value_enum,
        ignore_case = true,
        hide_possible_values = true,
        default_value_t = SignatureVersion::V3
    )]
    pub signature_version: SignatureVersion,
    /// STS endpoint for RRSA/OIDC and RAM-role credentials.
    #[arg(long, env = "ALIBABA_CLOUD_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
    /// Client-side API rate of every operation without its own --cloud-operation-qps, in
    /// calls per second per account and operation (with --cloud-quota-model shared: for all
    /// operations together). Keep it at or below this install's share of the account's quota
    /// (Quota Center > API Rate Limits) so the operator never causes throttling on its own.
    #[arg(long, env = "ABO_CLOUD_QPS", default_value_t = 10.0)]
    pub cloud_qps: f64,
    /// Per-operation rates, as in Quota Center: `CreateBgpPeer=10,DescribeBgpPeers=200/60s`
    /// (a number is calls per second; `N/60s` is N calls per 60 s).
    #[arg(long, env = "ABO_CLOUD_OPERATION_QPS", value_parser = crate::cloud::ratelimit::parse_operation_rates)]
    pub cloud_operation_qps:
        Option<std::collections::BTreeMap<String, crate::cloud::ratelimit::Rate>>,
    /// `per-operation` (one budget per API operation, as the cloud documents its quotas) or
    /// `shared` (one budget for all operations of an account).
    #[arg(long, env = "ABO_CLOUD_QUOTA_MODEL", default_value = "per-operation")]
    pub cloud_quota_model: crate::cloud::ratelimit::QuotaModel,
    /// `account` (a budget spans all regions: safe, since the cloud does not document
    /// whether a quota does) or `region` (one budget per account and region).
    #[arg(long, env = "ABO_CLOUD_QUOTA_SCOPE", default_value = "account")]
    pub cloud_quota_scope: crate::cloud::ratelimit::QuotaScope,
    /// With --cloud-quota-model shared: share of the rate left to status reads
    /// (DescribeBgpPeers) while creates, modifications or deletions are queued; reads use all
    /// of it otherwise. (Per operation, reads have their own budget and need no share.)
    #[arg(long, env = "ABO_CLOUD_READ_SHARE", default_value_t = 0.1)]
    pub cloud_read_share: f64,
    /// Burst of the client-side rate limiter (never more than a window's calls).
    #[arg(long, env = "ABO_CLOUD_BURST", default_value_t = 10)]
    pub cloud_burst: u32,
    /// Drift-detection period of a Ready peer (jittered ±10 %).
    #[arg(long, env = "ABO_RESYNC_PERIOD", default_value = "10m", value_parser = duration::parse)]
    pub resync_period: Duration,
    /// How often a peer in transition (Pending, Modifying, Deleting) is looked at.
    #[arg(long, env = "ABO_POLL_INTERVAL", default_value = "5s", value_parser = duration::parse)]
    pub poll_interval: Duration,
    /// How long after its first request a create whose result was never recorded (a crash
    /// between the call and the status write) is replayed with its ClientToken. The API does
    /// not document how long it remembers a token; after this window the group is searched
    /// for a peer the create may have made first.
    #[arg(long, env = "ABO_CREATE_REPLAY_WINDOW", default_value = "1h", value_parser = duration::parse)]
    pub create_replay_window: Duration,
    /// How long a peer the operator created (or learned from a token replay) but has never
    /// seen may stay invisible to DescribeBgpPeers before its absence means "deleted outside
    /// Kubernetes" (read-after-write lag). Keep it well above the poll interval.
    #[arg(long, env = "ABO_VISIBILITY_GRACE", default_value = "2m", value_parser = duration::parse)]
    pub visibility_grace: Duration,
    /// How long a peer may stay Pending, Modifying, Deleting (or in an unknown status) before
    /// the object reports Stalled (TransitionTimeout) and a Warning event; polling goes on.
    #[arg(long, env = "ABO_TRANSITION_TIMEOUT", default_value = "15m", value_parser = duration::parse)]
    pub transition_timeout: Duration,
    /// Objects reconciled at once (one object is never reconciled twice at once). A reconcile
    /// mostly waits, on the apiserver and on the rate limiter, so keep it well above the
    /// cloud rate: a create holds its slot for two status writes and the call.
    #[arg(long, env = "ABO_CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "ABO_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Watch only BgpPeers matching this label selector (to shard across installs).
    #[arg(long, env = "ABO_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Address of the /metrics, /livez and /readyz server.
    #[arg(long, env = "ABO_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Forbid the operator-wide credentials to BgpPeers of every namespace not listed in
    /// --operator-credentials-namespaces: such an object must name a CloudIdentity or Secret,
    /// or its namespace must have a CloudIdentity named `default`.
    #[arg(long, env = "ABO_FORBID_OPERATOR_CREDENTIALS")]
    pub forbid_operator_credentials: bool,
    /// With --forbid-operator-credentials: the namespaces that may still use the
    /// operator-wide credentials (comma-separated).
    #[arg(
        long,
        env = "ABO_OPERATOR_CREDENTIALS_NAMESPACES",
        value_delimiter = ','
    )]
    pub operator_credentials_namespaces: Vec<String>,
    /// ClusterRole granting `get` on Secrets; a namespace opts in with a RoleBinding of the
    /// same name (named in error messages).
    #[arg(long, env = "ABO_CREDENTIALS_CLUSTER_ROLE", default_value = DEFAULT_CREDENTIALS_CLUSTER_ROLE)]
    pub credentials_cluster_role: String,
    /// ClusterRole granting `create` on `serviceaccounts/token` (RRSA CloudIdentities); a
    /// namespace enables them with a RoleBinding of the same name.
    #[arg(long, env = "ABO_TOKEN_CLUSTER_ROLE", default_value = DEFAULT_TOKEN_CLUSTER_ROLE)]
    pub token_cluster_role: String,
    /// The operator's own ServiceAccount as `namespace:name` (for the RoleBinding that error
    /// messages ask for).
    #[arg(long, env = "ABO_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
    /// How often an object stalled on its credentials (CredentialsError) re-reads its Secret
    /// or CloudIdentity (Secrets are not watched).
    #[arg(long, env = "ABO_CREDENTIALS_RECHECK", default_value = "30s", value_parser = duration::parse)]
    pub credentials_recheck: Duration,
    /// Export `bgp_session_state{namespace,name,state}`: one series per Ready BgpPeer (off by
    /// default because of its cardinality; `bgp_sessions{state}` counts them either way).
    #[arg(long, env = "ABO_PER_OBJECT_SESSION_METRICS")]
    pub per_object_session_metrics: bool,
    /// Name of this instance in events and in the leader Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Elect a leader on a Lease so that only one of several replicas reconciles.
    #[arg(long, env = "ABO_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "ABO_LEASE_NAME", default_value = "alicloud-bgp-operator")]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Lease duration: how long a standby waits after the leader stopped renewing.
    #[arg(long, env = "ABO_LEASE_DURATION", default_value = "15s", value_parser = duration::parse)]
    pub lease_duration: Duration,
    /// On SIGTERM, how long in-flight reconciles (and their cloud calls) may take to finish.
    #[arg(long, env = "ABO_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = duration::parse)]
    pub shutdown_timeout: Duration,
}

/// The limiter settings of the rate flags; refuses combinations that mean nothing.
fn rate_limit(args: &RunArgs) -> anyhow::Result<RateLimitConfig> {
    use crate::cloud::ratelimit::QuotaModel;
    if !(args.cloud_qps.is_finite() && args.cloud_qps > 0.0) {
        anyhow::bail!("--cloud-qps must be a positive number of calls per second");
    }
    let operations = args.cloud_operation_qps.clone().unwrap_or_default();
    if args.cloud_quota_model == QuotaModel::Shared && !operations.is_empty() {
        anyhow::bail!(
            "--cloud-operation-qps needs --cloud-quota-model per-operation (a shared budget has one rate, --cloud-qps)"
        );
    }
    Ok(RateLimitConfig {
        qps: args.cloud_qps,
        operations,
        burst: args.cloud_burst,
        model: args.cloud_quota_model,
        scope: args.cloud_quota_scope,
        read_share: args.cloud_read_share,
        ..RateLimitConfig::default()
    })
}

/// Runs the controller until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let kube = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::new());
    metrics.set_per_object_sessions(args.per_object_session_metrics);
    let vpc = VpcClient::new(ClientConfig {
        endpoint: args.endpoint.clone(),
        sts_endpoint: args.sts_endpoint.clone(),
        signature_version: args.signature_version,
        rate_limit: Some(rate_limit(&args)?),
        observer: Some(metrics.clone()),
        ..ClientConfig::default()
    })?;
    let credentials = CredentialChain::from_env(args.sts_endpoint.clone())?;
    let config = ControllerConfig {
        resync_period: args.resync_period,
        poll_interval: args.poll_interval,
        concurrency: args.concurrency,
        create_replay_window: args.create_replay_window,
        timing: controller::timing::Timing {
            visibility_grace: args.visibility_grace,
            transition_timeout: args.transition_timeout,
        },
        tenancy: TenancyConfig {
            operator_credentials: if args.forbid_operator_credentials {
                OperatorCredentials::Only(
                    args.operator_credentials_namespaces
                        .iter()
                        .map(|n| n.trim().to_owned())
                        .filter(|n| !n.is_empty())
                        .collect(),
                )
            } else {
                OperatorCredentials::AllNamespaces
            },
            credentials_cluster_role: args.credentials_cluster_role.clone(),
            token_cluster_role: args.token_cluster_role.clone(),
            service_account: args.service_account.clone().filter(|s| !s.is_empty()),
            credentials_recheck: args.credentials_recheck,
        },
        ..ControllerConfig::default()
    };
    let recorder = controller::recorder(kube.clone(), args.instance.clone());
    let ctx = Arc::new(Context::new(
        kube.clone(),
        vpc,
        credentials,
        config,
        recorder,
        metrics.clone(),
    ));
    let scope = WatchScope {
        namespace: args.namespace.clone(),
        label_selector: args.label_selector.clone(),
    };

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    let refresh_ctx = ctx.clone();
    let ops = OpsState {
        metrics,
        readiness: ctx.readiness.clone(),
        refresh: Some(Arc::new(move || refresh_ctx.refresh_object_gauge())),
    };
    let (addr, ops_task) =
        health::serve(args.metrics_addr, ops, shutdown.clone().cancelled_owned())
            .await
            .with_context(|| format!("binding the metrics server on {}", args.metrics_addr))?;
    info!(%addr, "serving /metrics, /livez, /readyz");

    controller::check_crd(&kube, &scope).await?;
    ctx.readiness.crd_served.store(true, Ordering::SeqCst);

    let mut leadership = None;
    if args.leader_elect {
        // A standby is healthy and ready: it needs no cache until it leads.
        ctx.readiness.cache_synced.store(true, Ordering::SeqCst);
        let cfg = LeaderConfig {
            lease_name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity: args.instance.clone().unwrap_or_else(|| {
                format!("alicloud-bgp-operator-{}", uuid::Uuid::new_v4().simple())
            }),
            duration: args.lease_duration,
            grace: Duration::from_secs(2),
        };
        match leader::acquire(kube.clone(), &cfg, &shutdown).await? {
            Some(l) => leadership = Some(l),
            None => {
                info!("stopped before becoming the leader");
                shutdown.cancel();
                let _ = ops_task.await;
                return Ok(());
            }
        }
        ctx.readiness.cache_synced.store(false, Ordering::SeqCst);
    }

    info!(endpoint = ?args.endpoint, namespace = ?scope.namespace, "controller starting");
    ctx.metrics.set_leader(true);
    let stop = CancellationToken::new();
    let mut controller = tokio::spawn(controller::run(ctx, scope, stop.clone().cancelled_owned()));
    let mut lost = false;
    match leadership.as_mut() {
        Some(l) => {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = l.lost() => lost = true,
            }
        }
        None => shutdown.cancelled().await,
    }
    stop.cancel();
    // Graceful: in-flight reconciles finish (the lease is still renewed meanwhile). Not when
    // leadership is lost (another replica may lead already) or once the timeout passed.
    let finished = !lost
        && tokio::select! {
            _ = &mut controller => true,
            _ = tokio::time::sleep(args.shutdown_timeout) => {
                warn!(timeout = ?args.shutdown_timeout, "in-flight reconciles did not finish in time; aborting them");
                false
            }
            _ = async {
                match leadership.as_mut() {
                    Some(l) => l.lost().await,
                    None => std::future::pending().await,
                }
            } => {
                lost = true;
                false
            }
        };
    if !finished {
        // Awaiting the aborted task returns once its future is dropped: from then on no
        // reconcile of this process runs, so none starts another call.
        controller.abort();
        let _ = (&mut controller).await;
    }
    if let Some(l) = leadership {
        if lost {
            l.abandon().await;
            anyhow::bail!("lost leadership: exiting so that this replica restarts as a standby");
        }
        if finished {
            // Nothing is in flight: the standby may start at once.
            l.release().await;
        } else {
            // The aborted reconciles may have sent cloud writes that the cloud still carries
            // out (a write does not stop because its client hung up). Releasing now would let
            // the standby start next to them; leaving the lease to expire gives a request
            // already on the wire the lease duration (from our last renewal, which stopped
            // only now) to land before anyone else may write.
            l.abandon().await;
        }
    }
    shutdown.cancel();
    let _ = ops_task.await;
    info!("controller stopped");
    Ok(())
}

fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        super::shutdown_signal().await;
        info!("shutdown signal received; finishing in-flight reconciles");
        token.cancel();
    });
}
