//! Finalizer handling with the contract of kube-runtime's `finalizer::finalizer` (add the
//! finalizer before anything else, [`Event::Apply`] while it is held, [`Event::Cleanup`] once
//! the object is being deleted, remove it only after the cleanup returned `Ok`), except that
//! the removal is conditional on the object being the one this reconcile looked at.
//!
//! kube-runtime removes the finalizer with a JSON patch that only tests the finalizer's index.
//! A controller working from a stale cache (a new leader whose watch lags, or a second
//! controller started by mistake) can then release an object whose create another process has
//! in flight: its copy says "nothing was ever created", the live object says otherwise. Here
//! the removal tests `/metadata/uid` and `/metadata/resourceVersion` against the object as
//! last seen by this reconcile, so any write it did not see (a recorded ClientToken, a peer
//! ID) makes the apiserver refuse the removal; [`Error::Stale`] then asks for another look.
//!
//! The cleanup itself may write the object (its status); each write changes the
//! resourceVersion. Writers report the object a write returned with [`saw`]: while a cleanup
//! runs, that advances the version the removal is conditional on. A write that is not
//! reported leaves the older version, so the removal is refused and the next reconcile (with
//! the object as now stored) tries again: never unsafe, only one more round.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How soon to look again after the apiserver refused a finalizer patch because the object
/// changed: the next reconcile sees the object as it is now.
pub const STALE_REQUEUE: Duration = Duration::from_secs(1);

/// What the reconciler is asked to do.
pub enum Event<K> {
    /// The object is not being deleted: make the cloud match it (idempotent).
    Apply(Arc<K>),
    /// The object is being deleted: remove what it owns (idempotent, and it must tolerate
    /// `Apply` never having run or never having succeeded).
    Cleanup(Arc<K>),
}

/// Errors of [`finalizer`].
#[derive(Debug, thiserror::Error)]
pub enum Error<E>
where
    E: std::error::Error + 'static,
{
    /// [`Event::Apply`] failed.
    #[error("failed to apply object: {0}")]
    ApplyFailed(#[source] E),
    /// [`Event::Cleanup`] failed: the finalizer stays.
    #[error("failed to clean up object: {0}")]
    CleanupFailed(#[source] E),
    /// The patch adding the finalizer failed.
    #[error("failed to add finalizer: {0}")]
    AddFinalizer(#[source] kube::Error),
    /// The patch removing the finalizer failed (the finalizer stays).
    #[error("failed to remove finalizer: {0}")]
    RemoveFinalizer(#[source] kube::Error),
    /// The object changed since this reconcile read it (another UID, resourceVersion or
    /// finalizer list): nothing was added or released. Not a failure: look again soon.
    #[error("the object changed since it was read; finalizer not changed: {0}")]
    Stale(#[source] kube::Error),
    /// The object has no name (never the case for objects from the apiserver).
    #[error("object has no name")]
    UnnamedObject,
}

/// The identity and version of the object being cleaned up, as this reconcile last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
}

impl Seen {
    /// The identity and version of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        Seen {
            uid: obj.meta().uid.clone(),
            resource_version: obj.meta().resource_version.clone(),
        }
    }
}

/// The cell a running cleanup's writes advance (see [`saw`]).
type SeenCell = Arc<Mutex<Seen>>;

tokio::task_local! {
    static SEEN: SeenCell;
}

/// Reports an object returned by a write of it (a status patch): while a cleanup of the same
/// object (same UID) runs in this task, its finalizer removal becomes conditional on this
/// version instead of the one the reconcile started with. Outside a cleanup, does nothing.
///
/// Report only writes of the object this reconcile is working on, with the object the
/// apiserver returned for that write.
pub fn saw<K: Resource>(written: &K) {
    let _ = SEEN.try_with(|cell| {
        let mut seen = cell.lock().unwrap_or_else(|e| e.into_inner());
        if seen.uid.is_some() && seen.uid == written.meta().uid {
            seen.resource_version = written.meta().resource_version.clone();
        }
    });
}

/// Reconciles `obj` behind `finalizer_name`: see the module documentation.
///
/// - No finalizer, not deleting: adds it (nothing else; the change triggers a reconcile).
/// - Finalizer, not deleting: [`Event::Apply`].
/// - Finalizer, deleting: [`Event::Cleanup`]; on `Ok`, removes the finalizer if the object is
///   still the one last seen ([`Error::Stale`] otherwise).
/// - No finalizer, deleting: nothing to do.
pub async fn finalizer<K, E, Fut>(
    api: &Api<K>,
    finalizer_name: &str,
    obj: Arc<K>,
    reconcile: impl FnOnce(Event<K>) -> Fut,
) -> Result<Action, Error<E>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    E: std::error::Error + 'static,
    Fut: Future<Output = Result<Action, E>>,
{
    let index = obj.finalizers().iter().position(|f| f == finalizer_name);
    let deleting = obj.meta().deletion_timestamp.is_some();
    match (index, deleting) {
        (Some(_), false) => reconcile(Event::Apply(obj))
            .await
            .map_err(Error::ApplyFailed),
        (Some(index), true) => {
            let name = obj.meta().name.clone().ok_or(Error::UnnamedObject)?;
            let cell: SeenCell = Arc::new(Mutex::new(Seen::of(&*obj)));
            let action = SEEN
                .scope(cell.clone(), reconcile(Event::Cleanup(obj)))
                .await
                .map_err(Error::CleanupFailed)?;
            let seen = cell.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let patch = removal_patch(&seen, index, finalizer_name);
            tracing::debug!(%patch, "removing the finalizer");
            match json_patch(api, &name, patch).await {
                Ok(()) => {
                    tracing::debug!("finalizer removed");
                    Ok(action)
                }
                // Gone already: there is nothing left to release.
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(action),
                Err(e) if is_precondition_failure(&e) => Err(Error::Stale(e)),
                Err(e) => Err(Error::RemoveFinalizer(e)),
            }
        }
        (None, false) => {
            let name = obj.meta().name.as_deref().ok_or(Error::UnnamedObject)?;
            let patch = addition_patch(&*obj, finalizer_name);
            match json_patch(api, name, patch).await {
                // The change triggers the reconcile that applies.
                Ok(()) => Ok(Action::await_change()),
                Err(e) if is_precondition_failure(&e) => Err(Error::Stale(e)),
                Err(e) => Err(Error::AddFinalizer(e)),
            }
        }
        (None, true) => Ok(Action::await_change()),
    }
}

async fn json_patch<K>(api: &Api<K>, name: &str, ops: Value) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    // The ops are built here from plain values: they always parse as a JSON patch.
    let patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map(|_| ())
}

/// The apiserver answers a failed JSON-patch `test` with 422 (and a lost optimistic-
/// concurrency race with 409): the object is not the one the patch was written for.
fn is_precondition_failure(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_conflict() || s.code == 422)
}

/// Adds `finalizer_name`: tests the UID and the finalizer list as read (the apiserver does
/// not deduplicate finalizers, so a concurrent addition must fail, not add it twice).
fn addition_patch<K: Resource>(obj: &K, finalizer_name: &str) -> Value {
    let mut ops = Vec::new();
    if let Some(uid) = &obj.meta().uid {
        ops.push(json!({"op": "test", "path": "/metadata/uid", "value": uid}));
    }
    if obj.finalizers().is_empty() {
        ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": null}));
        ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": [finalizer_name]}));
    } else {
        ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": obj.finalizers()}));
        ops.push(json!({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer_name}));
    }
    Value::Array(ops)
}

/// Removes the finalizer at `index` if the object is still the one `seen` describes: same
/// UID, same resourceVersion (no write this reconcile did not make or see), and that index
/// still holds our finalizer.
fn removal_patch(seen: &Seen, index: usize, finalizer_name: &str) -> Value {
    let path = format!("/metadata/finalizers/{index}");
    json!([
        {"op": "test", "path": "/metadata/uid", "value": seen.uid},
        {"op": "test", "path": "/metadata/resourceVersion", "value": seen.resource_version},
        {"op": "test", "path": path, "value": finalizer_name},
        {"op": "remove", "path": path},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const FIN: &str = "vpc.alicloud.dev/bgp-peer";

    fn object(finalizers: &[&str], rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                uid: Some("uid-1".into()),
                resource_version: Some(rv.into()),
                finalizers: (!finalizers.is_empty())
                    .then(|| finalizers.iter().map(|f| (*f).to_owned()).collect()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn removal_tests_uid_resource_version_and_the_index() {
        let seen = Seen::of(&object(&["other", FIN], "42"));
        assert_eq!(
            removal_patch(&seen, 1, FIN),
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "uid-1"},
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/metadata/finalizers/1", "value": FIN},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ])
        );
        // It is a valid JSON patch.
        let parsed: Result<Patch<()>, _> =
            serde_json::from_value(removal_patch(&seen, 1, FIN)).map(Patch::<()>::Json);
        assert!(parsed.is_ok());
    }

    #[test]
    fn addition_tests_the_finalizer_list_as_read() {
        assert_eq!(
            addition_patch(&object(&[], "1"), FIN),
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "uid-1"},
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [FIN]},
            ])
        );
        assert_eq!(
            addition_patch(&object(&["other"], "1"), FIN),
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "uid-1"},
                {"op": "test", "path": "/metadata/finalizers", "value": ["other"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": FIN},
            ])
        );
    }

    #[tokio::test]
    async fn writes_during_a_cleanup_advance_the_version_of_the_same_object_only() {
        let cell: SeenCell = Arc::new(Mutex::new(Seen::of(&object(&[FIN], "7"))));
        SEEN.scope(cell.clone(), async {
            saw(&object(&[FIN], "8"));
            let mut other = object(&[FIN], "99");
            other.metadata.uid = Some("uid-2".into());
            saw(&other);
        })
        .await;
        assert_eq!(
            cell.lock().expect("lock").resource_version.as_deref(),
            Some("8")
        );
        // Outside a cleanup, reporting a write does nothing (and does not panic).
        saw(&object(&[FIN], "9"));
        assert_eq!(
            cell.lock().expect("lock").resource_version.as_deref(),
            Some("8")
        );
    }
}
