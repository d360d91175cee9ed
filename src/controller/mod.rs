//! The controllers: one kube-runtime Controller per kind, each around the shared skeleton
//! [`core::reconcile`] (finalizer, status, errors, events, metrics).
//!
//! - [`core`]: the skeleton every kind shares, and the [`core::CloudObject`] trait a kind
//!   implements (its observe → plan → act → status).
//! - [`peer`], [`group`], [`network`]: the kinds (`BgpPeer`, `BgpGroup`, `BgpNetwork`), a
//!   folder each: the kind's `CloudObject` impl, its pure plan, its observe and act steps.
//! - [`credentials`]: where an object's credentials come from (Secret, CloudIdentity, the
//!   operator's chain) and which account they belong to.
//! - [`timing`]: durations, ticks, jitter, the pace of objects in motion.
//! - [`status`]: conditions as data.
//! - [`error`]: error classes and their requeue rules.
//! - [`observe`]: coalesced, cached reads of the cloud.
//! - [`token`]: the deterministic ClientToken.
//! - [`key`]: an object's `namespace/name` key and [`key::same_ip`], for every kind.

mod changes;
pub mod context;
pub mod core;
pub mod credentials;
pub mod docs;
pub mod error;
pub mod finalizer;
pub mod freshness;
pub mod group;
pub mod key;
pub mod network;
pub mod observe;
pub mod peer;
pub mod status;
pub mod timing;
pub mod token;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::api::Condition;
use crate::ops::events::{Recorder, Reporter};
use futures::TryStreamExt;
use futures::{FutureExt, StreamExt};
use kube::api::ListParams;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::BgpPeer;
use crate::api::group::BgpGroup;
use crate::api::identity::CloudIdentity;
use core::{CloudObject, ObjectStatus};

pub use context::{Context, ControllerConfig};

/// Where the controller looks for objects.
#[derive(Clone, Debug, Default)]
pub struct WatchScope {
    /// Only this namespace (all when None).
    pub namespace: Option<String>,
    /// Only objects matching this label selector (for sharding across installs).
    pub label_selector: Option<String>,
}

/// Event reporter of this controller.
pub fn reporter(instance: Option<String>) -> Reporter {
    Reporter {
        controller: "alicloud-bgp-operator".to_owned(),
        instance,
    }
}

/// A recorder for `client`.
pub fn recorder(client: kube::Client, instance: Option<String>) -> Recorder {
    Recorder::new(client, reporter(instance))
}

/// Fails with a clear message when the BgpPeer CRD is not installed or not readable.
pub async fn check_crd(client: &kube::Client, scope: &WatchScope) -> anyhow::Result<()> {
    let api: Api<BgpPeer> = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list(&ListParams::default().limit(1)).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot list BgpPeers ({e}); is the CRD installed (kubectl apply -f crds/) and may this identity list them?"
        )
    })?;
    Ok(())
}

/// Every `every`, the objects whose last reconcile stopped at their credentials
/// (`CredentialsError`, `AccountMismatch`): the bounded re-read that replaces a Secret
/// watch. One reconcile of such an object costs one Secret `get` (or none, for a cached
/// identity failure) and no cloud call.
fn credentials_recheck<K: CloudObject>(
    store: reflector::Store<K>,
    every: Duration,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send {
    let ticks = tokio_stream_interval(every.max(Duration::from_secs(1)));
    ticks.flat_map(move |_| {
        let stalled: Vec<ObjectRef<K>> = store
            .state()
            .into_iter()
            .filter(|o| stalled_on_credentials(&**o))
            .map(|o| ObjectRef::from_obj(&*o))
            .collect();
        futures::stream::iter(stalled)
    })
}

fn stalled_on_credentials<K: CloudObject>(obj: &K) -> bool {
    use crate::api::conditions::{reasons, status, types};
    obj.status().is_some_and(|s| {
        s.conditions().iter().any(|c| {
            c.type_ == types::STALLED
                && c.status == status::TRUE
                && (c.reason == reasons::CREDENTIALS_ERROR
                    // Restoring the owning account's credentials must be noticed as soon,
                    // and so must a BgpGroup's key Secret that appears.
                    || c.reason == reasons::ACCOUNT_MISMATCH
                    || c.reason == reasons::AUTH_KEY_UNAVAILABLE)
        })
    })
}

/// `controller` with the triggers of credentials: the recheck of objects stalled on them
/// (Secrets are not watched: that needs list/watch on Secrets in every namespace that uses
/// them), and the changes of the CloudIdentities they use (by name, or as their namespace's
/// `default`). `identity_changes` is a watch of CloudIdentities.
pub(crate) fn with_credential_triggers<K, S>(
    controller: Controller<K>,
    store: reflector::Store<K>,
    ctx: &Context,
    identity_changes: S,
) -> Controller<K>
where
    K: CloudObject + credentials::CredentialRefs,
    S: futures::Stream<Item = Result<CloudIdentity, watcher::Error>> + Send + 'static,
{
    let recheck = credentials_recheck(store.clone(), ctx.config.tenancy.credentials_recheck);
    controller.reconcile_on(recheck).watches_stream(
        identity_changes,
        move |identity: CloudIdentity| {
            let ns = identity.namespace();
            let name = identity.name_any();
            store
                .state()
                .into_iter()
                .filter(|o| credentials::refers_to_identity(&**o, ns.as_deref(), &name))
                .map(|o| ObjectRef::from_obj(&*o))
                .collect::<Vec<_>>()
        },
    )
}

/// Every second, the objects per (account, region) that will create or delete their peer and
/// have not started ([`peer::awaits_create`], [`peer::awaits_delete`]; the account from
/// `status.accountId`, "" before it is known), for the observer
/// ([`observe::PeerObserver::set_awaiting_writes`]).
async fn count_awaiting_writes(store: reflector::Store<BgpPeer>, ctx: Arc<Context>) {
    let mut every = tokio::time::interval(AWAITING_WRITES_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let mut counts: std::collections::HashMap<(String, String), observe::Awaiting> =
            Default::default();
        for obj in store.state() {
            let (region, group) = match (peer::awaits_create(&obj), peer::awaits_delete(&obj)) {
                (Some(region), _) => (region, None),
                (None, Some((region, group))) => (region, Some(group)),
                (None, None) => continue,
            };
            let account = obj
                .status
                .as_ref()
                .and_then(|s| s.account_id.as_deref())
                .unwrap_or("");
            let awaiting = counts
                .entry((account.to_owned(), region.to_owned()))
                .or_default();
            match group {
                None => awaiting.creates += 1,
                Some(group) => {
                    awaiting.deletes += 1;
                    if !awaiting.delete_groups.contains(group) {
                        awaiting.delete_groups.insert(group.to_owned());
                    }
                }
            }
        }
        ctx.observer.set_awaiting_writes(counts);
    }
}

/// How often [`count_awaiting_writes`] counts.
const AWAITING_WRITES_EVERY: Duration = Duration::from_secs(1);

/// Aborts a spawned task when dropped (the task ends with the controllers).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stream that yields every `every` (the first after one period).
fn tokio_stream_interval(every: Duration) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(
        tokio::time::interval_at(tokio::time::Instant::now() + every, every),
        |mut interval| async move {
            interval.tick().await;
            Some(((), interval))
        },
    )
}

/// The API of kind `K` in `scope`.
pub(crate) fn scoped_api<K>(client: kube::Client, scope: &WatchScope) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match &scope.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// A watch of the objects of kind `K` in `scope` that yields the references of the objects
/// to reconcile after changes a user (or the finalizer machinery) makes ([`changes`]), and
/// the cache (reflector store) the watch fills. A failed watch is retried with backoff
/// and logged here. Controllers take the references with [`controller_for`].
pub(crate) fn triggers<K: CloudObject + Compact>(
    api: Api<K>,
    scope: &WatchScope,
) -> (
    impl futures::Stream<Item = ObjectRef<K>> + Send + 'static,
    reflector::Store<K>,
) {
    let mut wc = watcher::Config::default().any_semantic();
    if let Some(selector) = &scope.label_selector {
        wc = wc.labels(selector);
    }
    let (store, writer) = reflector::store();
    let mut filter = changes::ChangeFilter::default();
    let stream = watcher(api, wc)
        .default_backoff()
        .modify(K::compact)
        .reflect(writer)
        .filter_map(move |event| {
            let reference = match event {
                Ok(event) => filter.on_event(event),
                Err(e) => {
                    warn!(kind = K::KIND, error = %e, "watch failed; retrying with backoff");
                    None
                }
            };
            std::future::ready(reference)
        });
    (stream, store)
}

/// The controller of kind `K` over `store`, reconciling the references `trigger` yields
/// (from [`triggers`]).
pub(crate) fn controller_for<K: CloudObject>(
    trigger: impl futures::Stream<Item = ObjectRef<K>> + Send + 'static,
    store: reflector::Store<K>,
) -> Controller<K> {
    Controller::for_stream(futures::stream::empty::<Result<K, watcher::Error>>(), store)
        .reconcile_on(trigger)
}

/// The annotation `kubectl apply` keeps a whole copy of the object in. No controller reads
/// it, and it is as large as the object itself.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a watch keeps of an object in the cache: everything the controllers read (spec,
/// status, labels, annotations, finalizers, deletion mark, resourceVersion, uid, generation),
/// in as little memory as the types allow. At N = 10,000 the BgpPeer cache is the largest
/// part of the heap (about 1.8 KB a Ready object; `cargo bench --bench cache`).
pub trait Compact: kube::Resource {
    /// The object's conditions, to shrink (None without a status).
    fn cached_conditions_mut(&mut self) -> Option<&mut Vec<Condition>>;

    /// Drops what no controller reads (managed fields, `kubectl apply`'s copy of the object)
    /// and the spare capacity that deserialization leaves in vectors (a list of 5 conditions
    /// is read into room for 8).
    fn compact(&mut self) {
        let meta = self.meta_mut();
        meta.managed_fields = None;
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.remove(LAST_APPLIED_ANNOTATION);
        }
        if let Some(finalizers) = meta.finalizers.as_mut() {
            fit(finalizers);
        }
        if let Some(conditions) = self.cached_conditions_mut() {
            fit(conditions);
        }
    }
}

/// Moves `v`'s elements into an allocation of exactly their number. `shrink_to_fit` may keep
/// the block where it is (mimalloc keeps a block that shrinks by less than half).
fn fit<T>(v: &mut Vec<T>) {
    if v.capacity() > v.len() {
        let mut exact = Vec::with_capacity(v.len());
        exact.append(v);
        *v = exact;
    }
}

macro_rules! compact_kind {
    ($($kind:ty),*) => {$(
        impl Compact for $kind {
            fn cached_conditions_mut(&mut self) -> Option<&mut Vec<Condition>> {
                self.status.as_mut().map(|s| &mut s.conditions)
            }
        }
    )*};
}
compact_kind!(BgpPeer, BgpGroup, crate::api::network::BgpNetwork);

/// Runs `controller` with the skeleton's reconcile and error policy until `shutdown`.
pub(crate) async fn drive<K: CloudObject>(
    controller: Controller<K>,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let concurrency = ctx.config.concurrency;
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(core::reconcile::<K>, core::error_policy::<K>, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(kind = K::KIND, object = %obj, "reconciled"),
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    let (class, error) = (e.class().as_str(), e.user_message());
                    info!(kind = K::KIND, object = %obj, class, %error, "reconcile failed")
                }
                // A wake-up (a listing it waited for landed) for an object gone meanwhile.
                Err(controller::Error::ObjectNotFound(obj)) => {
                    debug!(kind = K::KIND, object = %obj, "woken object is gone")
                }
                Err(e) => warn!(kind = K::KIND, error = %e, "controller error"),
            }
        })
        .await;
}

/// Runs the controllers until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    scope: WatchScope,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.kube.clone();
    let peers: Api<BgpPeer> = scoped_api(client.clone(), &scope);
    let identities: Api<CloudIdentity> = scoped_api(client, &scope);
    let (trigger, store) = triggers(peers, &scope);
    // Objects that waited for a group listing are woken when it lands.
    let (waker, woken) = futures::channel::mpsc::unbounded();
    ctx.observer.set_waker(waker);
    let controller = controller_for(trigger, store.clone()).reconcile_on(woken);
    let _ = ctx.store.set(store.clone());
    {
        let store = store.clone();
        let readiness = ctx.readiness.clone();
        tokio::spawn(async move {
            // The store's readiness signal wakes only its most recent waiter (the Controller
            // waits on it too), so poll it with a timeout instead of awaiting it once.
            loop {
                match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => {
                        info!("cache synced");
                        readiness.cache_synced.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "cache never synced");
                        return;
                    }
                    Err(_) => continue,
                }
            }
        });
    }
    // The observer learns, once a second, how many objects per region are still to create or
    // delete their peer (a count over the cache: O(objects), no API call).
    let counting = tokio::spawn(count_awaiting_writes(store.clone(), ctx.clone()));
    let _counting = AbortOnDrop(counting);
    // CloudIdentities (specs hold no secret) are cached, and a change re-triggers the
    // objects that use the identity.
    let (identity_store, identity_writer) = reflector::store();
    ctx.identities.set_store(identity_store);
    let identities_synced = ctx.clone();
    let identity_changes = watcher(
        identities.clone(),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .inspect_ok(move |event| {
        if matches!(event, watcher::Event::InitDone) {
            identities_synced.identities.mark_synced();
        }
    })
    .reflect(identity_writer)
    .touched_objects();
    let controller = with_credential_triggers(controller, store.clone(), &ctx, identity_changes);
    // Peers that refer to a BgpGroup are woken by its changes (it became Ready, got its
    // cloud ID), not left on a backoff. The watch's cache is what their references are
    // resolved from: it is updated before the peers are woken.
    let groups_api: Api<BgpGroup> = scoped_api(ctx.kube.clone(), &scope);
    let shutdown = shutdown.shared();
    if !served(&groups_api).await {
        info!(
            "the BgpGroup CRD is not served: bgpGroupRef cannot resolve, and no BgpGroup controller runs"
        );
        futures::join!(
            drive(controller, ctx.clone(), shutdown.clone()),
            network::run(ctx, scope, shutdown)
        );
        return;
    }
    let (group_store, group_writer) = reflector::store();
    let _ = ctx.groups.set(group_store);
    let group_changes = watcher(
        groups_api.clone(),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(BgpGroup::compact)
    .reflect(group_writer)
    .touched_objects();
    let peers_of_group = store.clone();
    let controller = controller.watches_stream(group_changes, move |group: BgpGroup| {
        let ns = group.namespace();
        let name = group.name_any();
        peers_of_group
            .state()
            .into_iter()
            .filter(|p| peer::references::refers_to(p, ns.as_deref(), &name))
            .map(|p| ObjectRef::from_obj(&*p))
            .collect::<Vec<_>>()
    });
    // The BgpGroup controller. A group waiting for its peers (DependentsExist) is woken
    // when one of them changes or goes.
    let (group_trigger, groups) = triggers(groups_api, &scope);
    let peers_api: Api<BgpPeer> = scoped_api(ctx.kube.clone(), &scope);
    let identity_changes = watcher(identities, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let group_controller = with_credential_triggers(
        controller_for(group_trigger, groups.clone()),
        groups.clone(),
        &ctx,
        identity_changes,
    )
    .watches(
        peers_api,
        watcher::Config::default().any_semantic(),
        move |peer: BgpPeer| {
            let recorded = peer
                .status
                .as_ref()
                .and_then(|s| s.bgp_group_id.clone())
                .unwrap_or_else(|| peer.spec.bgp_group_id.clone());
            let by_ref = peer.spec.bgp_group_ref.as_ref().map(|r| {
                ObjectRef::<BgpGroup>::new(&r.name).within(&peer.namespace().unwrap_or_default())
            });
            let by_id = groups
                .state()
                .into_iter()
                .filter(|g| !recorded.is_empty() && g.group_id() == Some(recorded.as_str()))
                .map(|g| ObjectRef::from_obj(&*g))
                .collect::<Vec<_>>();
            by_ref.into_iter().chain(by_id)
        },
    );
    futures::join!(
        drive(controller, ctx.clone(), shutdown.clone()),
        drive(group_controller, ctx.clone(), shutdown.clone()),
        network::run(ctx, scope, shutdown)
    );
}

/// Whether the apiserver serves (and lets this identity list) the kind of `api`: `false` for a
/// CRD that is not installed (404) or not readable (403), said in a log line. Any other
/// failure (the apiserver still starting, a network blip) is retried for up to
/// [`SERVED_PATIENCE`] before the kind is taken as served, so a transient error at start-up
/// never silently leaves a kind without its controller (its watch then retries on its own).
pub(crate) async fn served<K>(api: &Api<K>) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let started = std::time::Instant::now();
    loop {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                debug!(kind, "kind not served (no CRD)");
                return false;
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                warn!(kind, message = %s.message, "this identity may not list the kind: its controller does not run");
                return false;
            }
            Err(e) if started.elapsed() < SERVED_PATIENCE => {
                debug!(kind, error = %e, "cannot tell yet whether the kind is served; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                warn!(kind, error = %e, "cannot tell whether the kind is served; running its controller");
                return true;
            }
        }
    }
}

/// How long [`served`] asks again after failures that say nothing about the kind.
const SERVED_PATIENCE: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    /// A Ready BgpPeer as the apiserver sends it after `kubectl apply`.
    fn applied_peer() -> BgpPeer {
        let condition = |type_: &str| {
            serde_json::json!({"type": type_, "status": "True", "reason": "Available",
                "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2})
        };
        // Read from text, as the watcher reads the apiserver's answers (a `Value` would tell
        // the vectors' lengths in advance).
        let text = serde_json::json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1",
            "kind": "BgpPeer",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                "generation": 2, "deletionTimestamp": "2026-01-02T00:00:00Z",
                "labels": {"shard": "a"},
                "annotations": {
                    LAST_APPLIED_ANNOTATION: "{\"spec\":{}}",
                    "vpc.alicloud.dev/paused": "true"
                },
                "finalizers": ["vpc.alicloud.dev/bgp-peer"],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"regionId": "cn-shanghai", "bgpGroupId": "bgpg-1", "peerIpAddress": "10.0.0.1"},
            "status": {
                "bgpPeerId": "bgp-1",
                "conditions": [condition("Ready"), condition("Reconciling"), condition("Stalled"),
                    condition("SessionEstablished"), condition("UpToDate")]
            }
        })
        .to_string();
        serde_json::from_str(&text).expect("a valid BgpPeer")
    }

    #[test]
    fn compact_drops_only_what_no_controller_reads() {
        let original = applied_peer();
        let mut cached = original.clone();
        cached.compact();
        assert_eq!(cached.metadata.managed_fields, None);
        let mut expected = original.clone();
        expected.metadata.managed_fields = None;
        if let Some(a) = expected.metadata.annotations.as_mut() {
            a.remove(LAST_APPLIED_ANNOTATION);
        }
        // Everything else is kept: metadata the controllers read, spec, status.
        let json = |p: &BgpPeer| serde_json::to_value(p).expect("serializable");
        assert_eq!(json(&cached), json(&expected));
        assert_eq!(
            cached
                .annotations()
                .get("vpc.alicloud.dev/paused")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            changes::user_visible_change(&cached),
            changes::user_visible_change(&expected)
        );
    }

    #[test]
    fn compact_gives_back_the_spare_capacity_of_vectors() {
        let mut cached = applied_peer();
        let conditions = |p: &BgpPeer| {
            p.status
                .as_ref()
                .map(|s| (s.conditions.len(), s.conditions.capacity()))
        };
        // serde reads 5 conditions into a vector with room for 8.
        assert!(conditions(&cached).is_some_and(|(len, cap)| cap > len));
        cached.compact();
        assert_eq!(conditions(&cached), Some((5, 5)));
        let finalizers = cached
            .metadata
            .finalizers
            .as_ref()
            .map(|f| (f.len(), f.capacity()));
        assert_eq!(finalizers, Some((1, 1)));
    }
}
