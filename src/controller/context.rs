//! What every reconcile shares: clients, configuration, per-object backoff, fault hooks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::ops::events::Recorder;

use std::sync::{Arc, OnceLock};

use kube::runtime::reflector::Store;

use crate::cloud::{CallObserver, CredentialChain, ErrorClass, VpcClient};
use crate::ops::health::Readiness;
use crate::ops::metrics::Metrics;

use super::error::{Error, backoff};
use super::observe::PeerObserver;
use super::timing::Timing;
use crate::api::BgpPeer;

/// Tunables of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// How often a Ready peer is compared with the cloud (drift detection), before jitter.
    pub resync_period: Duration,
    /// How often a peer in a transition (Pending, Modifying, Deleting) is looked at.
    pub poll_interval: Duration,
    /// Server-side-apply field manager for status writes.
    pub field_manager: String,
    /// How many objects are reconciled at once.
    pub concurrency: u16,
    /// How long after its first request a create whose result was never recorded is
    /// replayed blindly with its ClientToken; after that the group is searched first.
    pub create_replay_window: Duration,
    /// Visibility grace and transition timeout (see [`Timing`]).
    pub timing: Timing,
    /// Per-namespace identities and who may use the operator-wide credentials.
    pub tenancy: super::credentials::TenancyConfig,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            resync_period: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
            field_manager: "alicloud-bgp-operator".to_owned(),
            concurrency: 64,
            create_replay_window: Duration::from_secs(3600),
            timing: Timing::default(),
            tenancy: Default::default(),
        }
    }
}

/// Failure-injection points used by crash tests; all off unless a test turns them on.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Number of times to "crash" right after CreateBgpPeer succeeded and before its peer ID
    /// is recorded: the reconcile fails as if the process had died there.
    pub crash_after_create: AtomicU32,
}

impl Hooks {
    pub(crate) fn after_create(&self) -> Result<(), Error> {
        let hit = self
            .crash_after_create
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hit {
            return Err(Error::Injected(
                "simulated crash after a create call (test hook)",
            ));
        }
        Ok(())
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// Kubernetes client.
    pub kube: kube::Client,
    /// VPC API client (pooled, rate limited).
    pub vpc: VpcClient,
    /// Operator-wide credentials, for objects without `credentialsSecretRef`.
    pub credentials: CredentialChain,
    /// Coalescing view of the cloud's peers.
    pub observer: PeerObserver,
    /// Tunables.
    pub config: ControllerConfig,
    /// Event recorder.
    pub recorder: Recorder,
    /// Failure injection (tests).
    pub hooks: Hooks,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness inputs of `/readyz`.
    pub readiness: Arc<Readiness>,
    /// The controller's cache of BgpPeers, once running.
    pub store: OnceLock<Store<BgpPeer>>,
    /// The BgpGroup controller's cache, once running (absent without the BgpGroup CRD).
    pub groups: OnceLock<Store<crate::api::group::BgpGroup>>,
    /// The BgpNetwork controller's cache, once running (two objects naming one network).
    pub networks: OnceLock<Store<crate::api::network::BgpNetwork>>,
    /// CloudIdentity cache and per-identity STS credentials.
    pub identities: super::credentials::Identities,
    /// The pace of BgpPeers in motion (first look after a create, follow-ups, shared tick).
    pub pace: super::timing::Pace,
    /// This process's last write of each object (a reconcile waits for a cache behind it).
    pub writes: super::freshness::LastWrites,
    failures: Mutex<HashMap<String, u32>>,
    accounts: Mutex<HashMap<String, (String, std::time::Instant)>>,
}

impl Context {
    /// A context from its parts. `metrics` should be the observer given to the VPC client.
    pub fn new(
        kube: kube::Client,
        vpc: VpcClient,
        credentials: CredentialChain,
        config: ControllerConfig,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Self {
        let pace = super::timing::Pace::default();
        let observer = PeerObserver::default();
        observer.learn_into(pace.listed());
        observer.learn_removals_into(pace.removed());
        Context {
            metrics,
            readiness: Arc::default(),
            store: OnceLock::new(),
            groups: OnceLock::new(),
            networks: OnceLock::new(),
            identities: Default::default(),
            pace,
            writes: Default::default(),
            kube,
            vpc,
            credentials,
            observer,
            config,
            recorder,
            hooks: Hooks::default(),
            failures: Mutex::default(),
            accounts: Mutex::default(),
        }
    }

    /// Counts a failure of `key` and returns its backoff (None: wait for a change).
    pub(crate) fn record_failure(&self, key: &str, class: ErrorClass) -> Option<Duration> {
        let failures = match self.failures.lock() {
            Ok(mut map) => {
                let n = map.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        backoff(class, failures, rand::random::<f64>())
    }

    /// Resets the backoff of `key` after a successful reconcile.
    pub(crate) fn record_success(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }

    /// The account of `access_key_id`, if looked up within [`super::credentials::ACCOUNT_TTL`].
    pub(crate) fn cached_account(&self, access_key_id: &str) -> Option<String> {
        let map = self.accounts.lock().ok()?;
        map.get(access_key_id)
            .filter(|(_, at)| at.elapsed() < super::credentials::ACCOUNT_TTL)
            .map(|(account, _)| account.clone())
    }

    pub(crate) fn remember_account(&self, access_key_id: &str, account: &str) {
        if let Ok(mut map) = self.accounts.lock() {
            if map.len() > 4096 {
                map.retain(|_, (_, at)| at.elapsed() < super::credentials::ACCOUNT_TTL);
            }
            map.insert(
                access_key_id.to_owned(),
                (account.to_owned(), std::time::Instant::now()),
            );
        }
    }

    /// The cached objects other than `obj` (empty before the cache exists).
    pub fn other_objects(&self, obj: &BgpPeer) -> Vec<Arc<BgpPeer>> {
        let Some(store) = self.store.get() else {
            return Vec::new();
        };
        let uid = obj.metadata.uid.as_deref();
        store
            .state()
            .into_iter()
            .filter(|o| o.metadata.uid.as_deref() != uid)
            .collect()
    }
}

impl CallObserver for Metrics {
    fn on_call(&self, action: &str, outcome: &str, elapsed: Duration) {
        self.cloud_call(action, outcome, elapsed);
    }

    fn on_rate_limit_wait(&self, waited: Duration) {
        self.rate_limited(waited);
    }
}

impl Context {
    /// Peer IDs that BgpPeers other than `obj` manage or are to adopt (from the cache).
    pub fn peers_claimed_by_others(&self, obj: &BgpPeer) -> std::collections::HashSet<String> {
        let Some(store) = self.store.get() else {
            return Default::default();
        };
        let uid = obj.metadata.uid.as_deref();
        store
            .state()
            .iter()
            .filter(|o| o.metadata.uid.as_deref() != uid)
            .flat_map(|o| {
                let recorded = o.status.as_ref().and_then(|s| s.bgp_peer_id.clone());
                recorded.into_iter().chain(o.spec.adopt_bgp_peer_id.clone())
            })
            .collect()
    }

    /// The BgpPeers (`ns/name`, sorted) that still hold or may make a cloud peer in `group`
    /// (see [`super::peer::references::dependents`]); empty before the peer cache exists.
    pub fn dependents_of_group(&self, group: &crate::api::group::BgpGroup) -> Vec<String> {
        let Some(store) = self.store.get() else {
            return Vec::new();
        };
        let peers = store.state();
        super::peer::references::dependents(group, peers.iter().map(|p| &**p))
    }

    /// Counts BgpPeers by condition for the `bgppeers` gauge.
    pub fn refresh_object_gauge(&self) {
        let Some(store) = self.store.get() else {
            return;
        };
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        for obj in store.state() {
            for c in obj.status.iter().flat_map(|s| s.conditions.iter()) {
                *counts
                    .entry((c.type_.to_string(), c.status.to_string()))
                    .or_default() += 1;
            }
        }
        self.metrics.set_objects(counts);
        self.metrics
            .observe_objects(&store.state(), jiff::Timestamp::now());
    }
}
