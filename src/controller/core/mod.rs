//! The skeleton every cloud-backed kind shares: one object's reconcile is
//! **observe → plan → act → status**, and everything around those four steps lives here.
//!
//! A kind (`BgpPeer`, `BgpGroup`, …) implements [`CloudObject`]: which finalizer guards its
//! cloud resource, where its status is, and two async steps, [`CloudObject::ensure`] (make the
//! cloud match the object) and [`CloudObject::ensure_absent`] (make the cloud resource go, or
//! leave it as the deletion policy says). Each step observes, asks the kind's pure plan what
//! to do, acts, and writes status through the [`Reconciler`] it is given.
//!
//! What the skeleton does for every kind:
//! - **Finalizer**: added before the first cloud call; `ensure_absent` runs once the object is
//!   being deleted; the finalizer is removed only when it returns `Ok`, conditionally on the
//!   object being the version this reconcile saw ([`super::finalizer`]). An object with
//!   `managementPolicy: Observe` never gets a finalizer.
//! - **Status**: written once per change with server-side apply, conditional on the
//!   resourceVersion this reconcile saw, skipped when nothing changed, retried on transient
//!   failures ([`Reconciler::write_status`]).
//! - **Errors**: a failed step is written into the kstatus conditions and `lastError`, and
//!   published as a Warning event ([`Reconciler::report_error`]); the requeue follows the
//!   error's class with per-object exponential backoff ([`error_policy`]).
//! - **Metrics**: reconcile outcomes, time to Ready, time to delete.
//!
//! The recorded-token-before-create protocol is the kind's act step, with the helpers in
//! [`super::token`]: record `clientToken` (and when it was requested) in status first, then
//! call Create with it; a later reconcile that finds the token but no ID replays the create.

mod reconciler;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info};

use crate::api::{Condition, LastError, ManagementPolicy, PAUSED_ANNOTATION};

use super::context::Context;
use super::error::{Error, Step};
use super::finalizer::{self, Event as FinalizerEvent};
use super::timing::next_tick;

pub use reconciler::Reconciler;

/// The status of a cloud-backed kind, as far as the skeleton needs it.
pub trait ObjectStatus:
    Clone + Default + PartialEq + Serialize + Debug + Send + Sync + 'static
{
    /// The conditions (kstatus `Ready`/`Reconciling`/`Stalled`, and the kind's own).
    fn conditions(&self) -> &[Condition];
    /// The conditions, to change.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// The generation the status describes.
    fn observed_generation(&self) -> Option<i64>;
    /// Records the generation the status describes.
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// The last failed step (`status.lastError`).
    fn last_error_mut(&mut self) -> &mut Option<Box<LastError>>;
    /// When the cloud was last confirmed to match (`status.lastSyncTime`).
    fn last_sync_time(&self) -> Option<&Time>;
    /// `status.lastSyncTime`, to change.
    fn last_sync_time_mut(&mut self) -> &mut Option<Time>;
    /// Conditions derived from the status itself at each write (e.g. a peer's
    /// `SessionEstablished`), kept beside the kstatus three. None by default.
    fn derived_conditions(
        &self,
        _existing: &[Condition],
        _generation: Option<i64>,
        _now: &Time,
    ) -> Vec<Condition> {
        Vec::new()
    }
}

/// Implements [`ObjectStatus`] for a kind's status with the fields every kind has
/// (`conditions`, `observed_generation`, `last_error`, `last_sync_time`);
/// `derived = f` adds [`ObjectStatus::derived_conditions`] from `f(status, existing,
/// generation, now)`.
macro_rules! object_status {
    ($status:ty $(, derived = $derived:expr)?) => {
        impl $crate::controller::core::ObjectStatus for $status {
            fn conditions(&self) -> &[$crate::api::Condition] {
                &self.conditions
            }
            fn conditions_mut(
                &mut self,
            ) -> &mut Vec<$crate::api::Condition> {
                &mut self.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn last_error_mut(&mut self) -> &mut Option<Box<$crate::api::LastError>> {
                &mut self.last_error
            }
            fn last_sync_time(&self) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
                self.last_sync_time.as_ref()
            }
            fn last_sync_time_mut(
                &mut self,
            ) -> &mut Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
                &mut self.last_sync_time
            }
            $(
            fn derived_conditions(
                &self,
                existing: &[$crate::api::Condition],
                generation: Option<i64>,
                now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
            ) -> Vec<$crate::api::Condition> {
                ($derived)(self, existing, generation, now)
            }
            )?
        }
    };
}
pub(crate) use object_status;

/// Implements [`super::credentials::CredentialRefs`] for a kind whose spec has
/// `cloud_identity_ref` and `credentials_secret_ref`.
macro_rules! credential_refs {
    ($kind:ty) => {
        impl $crate::controller::credentials::CredentialRefs for $kind {
            fn cloud_identity_ref(&self) -> Option<&$crate::api::identity::CloudIdentityReference> {
                self.spec.cloud_identity_ref.as_ref()
            }
            fn credentials_secret_ref(&self) -> Option<&$crate::api::SecretReference> {
                self.spec.credentials_secret_ref.as_ref()
            }
        }
    };
}
pub(crate) use credential_refs;

/// A kind whose objects each stand for one cloud resource.
pub trait CloudObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status type.
    type Status: ObjectStatus;
    /// The kind's name in metrics and logs (`BgpPeer`).
    const KIND: &'static str;
    /// What the cloud resource is called in messages (`BGP peer`).
    const NOUN: &'static str;
    /// The finalizer that guards the cloud resource.
    const FINALIZER: &'static str;

    /// The object's status, if it has one.
    fn status(&self) -> Option<&Self::Status>;
    /// Whether the operator may write the cloud resource (`Full`) or only read it.
    fn management_policy(&self) -> ManagementPolicy;

    /// Resolves the object's references to other objects before anything else (the
    /// "dereference" step): `Ok(None)` when there is nothing to resolve, `Ok(Some(obj))` the
    /// object with each reference replaced by what it names (the steps then see that
    /// object). A reference that cannot be followed yet is [`Error::DependencyNotReady`];
    /// one that now names something else is [`Error::Refused`]. During deletion
    /// (`deleting`), what was recorded in status must suffice.
    fn dereference(
        _obj: &Self,
        _ctx: &Context,
        _deleting: bool,
    ) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        std::future::ready(Ok(None))
    }

    /// Makes the cloud resource exist and match the object (observe → plan → act → status).
    /// `Ok` carries the next look; `Err` is reported and retried by its class.
    fn ensure(r: &mut Reconciler<'_, Self>) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Makes the cloud resource go away, or leaves it as the deletion policy says. Only `Ok`
    /// releases the finalizer; progress is [`Error::CleanupPending`].
    fn ensure_absent(
        r: &mut Reconciler<'_, Self>,
    ) -> impl Future<Output = Result<Action, Error>> + Send;
}

pub use super::key::object_key;

/// Whether the object carries the pause annotation (`vpc.alicloud.dev/paused: "true"`).
pub fn is_paused<K: Resource>(obj: &K) -> bool {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The entry point given to the kube-runtime Controller for kind `K`.
pub async fn reconcile<K: CloudObject>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<K> = Api::namespaced(ctx.kube.clone(), &obj.namespace().unwrap_or_default());
    let key = backoff_key(&*obj);
    let started = Instant::now();
    let observed = obj.status().and_then(ObjectStatus::observed_generation);
    ctx.metrics.saw(obj.meta(), observed);
    let holds_finalizer = obj.finalizers().iter().any(|f| f == K::FINALIZER);
    let deleting = obj.meta().deletion_timestamp.is_some();
    let (uid, version) = (
        obj.meta().uid.as_deref(),
        obj.meta().resource_version.as_deref(),
    );
    if ctx.writes.is_behind(uid, version) {
        // The cache has not caught up with our own last write of this object: acting on this
        // copy would repeat work already recorded (see `freshness`). It looks again shortly
        // (a status-only watch event is no reconcile trigger).
        tracing::debug!(
            resource_version = version,
            "cache behind our last write; waiting for it"
        );
        return Ok(Action::requeue(super::freshness::RECHECK));
    }
    let result = if obj.management_policy() == ManagementPolicy::Observe && !holds_finalizer {
        // An Observe object never gets a finalizer (deleting it touches nothing); one that has
        // ours (it was Full before) keeps it until its deletion releases it.
        if deleting {
            return Ok(Action::await_change());
        }
        apply(&api, &obj, &ctx).await
    } else {
        with_finalizer(&api, obj.clone(), &ctx).await
    };
    if result.is_ok() && deleting && holds_finalizer {
        ctx.metrics
            .deleted(K::KIND, obj.meta(), jiff::Timestamp::now());
    }
    match &result {
        Ok(_) => {
            ctx.record_success(&key);
            ctx.metrics.reconciled(None, started.elapsed());
        }
        // Waiting in cleanup, or for a dependency, is progress, not a failure (no error
        // metric, so an alert on reconcile errors does not fire for a group and its peers
        // applied together).
        Err(Error::CleanupPending(_) | Error::DependencyNotReady(_)) => {
            ctx.metrics.reconciled(None, started.elapsed())
        }
        Err(e) => ctx
            .metrics
            .reconciled(Some(e.class().as_str()), started.elapsed()),
    }
    result
}

async fn with_finalizer<K: CloudObject>(
    api: &Api<K>,
    obj: Arc<K>,
    ctx: &Context,
) -> Result<Action, Error> {
    let result = finalizer::finalizer(api, K::FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(api, &obj, ctx).await,
            FinalizerEvent::Cleanup(obj) => cleanup(api, &obj, ctx).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e)) => {
            Err(Error::kube(Step::Finalizer)(e))
        }
        // The object changed since it was read (a write this reconcile did not see): look
        // again soon, with the object as it is now.
        Err(finalizer::Error::Stale(e)) => {
            info!(error = %e, "object changed since it was read; looking again");
            Ok(Action::requeue(finalizer::STALE_REQUEUE))
        }
        Err(finalizer::Error::UnnamedObject) => Err(Error::UnnamedObject),
    }
}

async fn apply<K: CloudObject>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action, Error> {
    let resolved = match K::dereference(obj, ctx, false).await {
        Ok(resolved) => resolved,
        Err(err) => {
            Reconciler::new(api, obj, ctx).report_error(&err).await;
            return Err(err);
        }
    };
    let mut r = Reconciler::new(api, resolved.as_ref().unwrap_or(obj), ctx);
    let result = K::ensure(&mut r).await;
    if let Err(err) = &result {
        r.report_error(err).await;
    }
    result
}

async fn cleanup<K: CloudObject>(api: &Api<K>, obj: &K, ctx: &Context) -> Result<Action, Error> {
    let resolved = match K::dereference(obj, ctx, true).await {
        Ok(resolved) => resolved,
        Err(err) => {
            Reconciler::new(api, obj, ctx).report_error(&err).await;
            return Err(err);
        }
    };
    let mut r = Reconciler::new(api, resolved.as_ref().unwrap_or(obj), ctx);
    let result = K::ensure_absent(&mut r).await;
    if let Err(err) = &result {
        r.report_error(err).await;
    }
    result
}

/// How often a `CreateUnverified` object looks again (a person may have removed the stray
/// resources in the console meanwhile).
pub const CREATE_UNVERIFIED_RECHECK: Duration = Duration::from_secs(600);

/// How often an object refused by a safety rule (account mismatch, another owner, a changed
/// immutable field) looks again by itself; a change of the object or its Secret wakes it at
/// once.
pub const REFUSED_RECHECK: Duration = Duration::from_secs(120);

/// How often an object whose dependency is not Ready looks again by itself (the
/// dependency's changes wake it at once).
pub const DEPENDENCY_RECHECK: Duration = Duration::from_secs(60);

/// Requeue policy for errors of kind `K`: per object, by class, exponential with jitter;
/// reset on success.
pub fn error_policy<K: CloudObject>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    match err {
        // Not a failure: cleanup waits for the cloud. A peer whose delete we sent looks
        // again at its pace (first when it is likely gone; quickly while few are in motion),
        // anything else at the shared tick.
        Error::CleanupPending(_) => {
            let poll = ctx.config.poll_interval;
            return Action::requeue(if K::KIND == crate::ops::metrics::KIND_BGP_PEER {
                ctx.pace.not_yet(&object_key(&*obj), poll, false)
            } else {
                next_tick(poll)
            });
        }
        // Stalled, but the stray resources may be deleted in the console meanwhile.
        Error::CreateUnverified(_) => return Action::requeue(CREATE_UNVERIFIED_RECHECK),
        // Stalled by a safety rule; what lifts it (another object's deletion, credentials
        // restored in the operator's environment) may bring no event for this object.
        Error::Refused { .. } => return Action::requeue(REFUSED_RECHECK),
        // The dependency's own changes wake the object (a watch); this is the fallback.
        Error::DependencyNotReady(_) => return Action::requeue(DEPENDENCY_RECHECK),
        _ => {}
    }
    let key = backoff_key(&*obj);
    let class = err.class();
    match ctx.record_failure(&key, class) {
        Some(delay) => {
            debug!(object = %key, class = class.as_str(), ?delay, "requeue after error");
            Action::requeue(delay)
        }
        None => Action::await_change(),
    }
}

/// The backoff of one object of one kind.
fn backoff_key<K: CloudObject>(obj: &K) -> String {
    format!("{}/{}", K::KIND, object_key(obj))
}
