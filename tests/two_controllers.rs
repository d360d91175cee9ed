//! Two controllers at once.
//!
//! - The finalizer is released only by a reconcile that saw the object as it is: a removal
//!   from a stale copy (a new leader's lagging cache, a second controller) is refused by the
//!   apiserver and the finalizer stays (`controller::finalizer`, against the real apiserver).
//! - Two controller processes started by mistake over the same objects and account (no
//!   leader election) under create/delete churn still end with exactly one cloud peer per
//!   live object, none for deleted objects, and no object stuck with a finalizer.

mod common;

use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use alicloud_bgp_operator::api::{BgpPeer, FINALIZER};
use alicloud_bgp_operator::controller::finalizer::{self, Error, Event};

use common::operator::{GROUP, REGION};

fn peer(name: &str, ip: &str) -> BgpPeer {
    serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": name, "finalizers": [FINALIZER]},
        "spec": {"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip},
    }))
    .expect("object")
}

/// A BgpPeer holding our finalizer, marked for deletion; returns it as read after the mark.
async fn deleting(api: &Api<BgpPeer>, name: &str, ip: &str) -> BgpPeer {
    api.create(&PostParams::default(), &peer(name, ip))
        .await
        .expect("create");
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    let obj = api.get(name).await.expect("get");
    assert!(obj.metadata.deletion_timestamp.is_some());
    obj
}

/// Another writer's status write (the other controller recording a ClientToken).
async fn write_status(api: &Api<BgpPeer>, name: &str, token: &str) -> BgpPeer {
    api.patch_status(
        name,
        &PatchParams::apply("someone-else").force(),
        &Patch::Apply(json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
            "status": {"clientToken": token},
        })),
    )
    .await
    .expect("status write")
}

async fn cleanup_ok(api: &Api<BgpPeer>, obj: BgpPeer) -> Result<Action, Error<kube::Error>> {
    finalizer::finalizer(api, FINALIZER, Arc::new(obj), |event| async move {
        assert!(
            matches!(event, Event::Cleanup(_)),
            "a deleting object is cleaned up"
        );
        Ok(Action::await_change())
    })
    .await
}

#[tokio::test]
async fn a_stale_copy_cannot_release_the_finalizer() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "stale-release").await;
    let api: Api<BgpPeer> = Api::namespaced(client.clone(), &ns);

    // The copy a stale cache holds, then a write it never saw.
    let stale = deleting(&api, "stale", "10.40.0.2").await;
    write_status(&api, "stale", "in-flight-token").await;
    let err = cleanup_ok(&api, stale.clone())
        .await
        .expect_err("a removal from a stale copy is refused");
    assert!(matches!(err, Error::Stale(_)), "{err:?}");
    let now = api.get("stale").await.expect("the object is still there");
    assert_eq!(
        now.finalizers(),
        [FINALIZER.to_owned()],
        "the finalizer stays"
    );

    // The reconcile that sees the object as it is releases it.
    cleanup_ok(&api, now).await.expect("a fresh copy releases");
    assert!(api.get_opt("stale").await.expect("get").is_none());

    // A recreated object under the same name is not released by the old one's copy.
    let old = deleting(&api, "reborn", "10.40.0.3").await;
    api.patch(
        "reborn",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release by hand");
    api.create(&PostParams::default(), &peer("reborn", "10.40.0.3"))
        .await
        .expect("recreate");
    api.delete("reborn", &DeleteParams::default())
        .await
        .expect("delete the new one");
    let mut old_with_new_rv = old.clone();
    old_with_new_rv.metadata.resource_version = api
        .get("reborn")
        .await
        .expect("get")
        .metadata
        .resource_version;
    let err = cleanup_ok(&api, old_with_new_rv)
        .await
        .expect_err("another UID is refused");
    assert!(matches!(err, Error::Stale(_)), "{err:?}");
    assert_eq!(
        api.get("reborn").await.expect("get").finalizers(),
        [FINALIZER.to_owned()]
    );
}

#[tokio::test]
async fn the_cleanups_own_writes_are_seen_when_reported() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "own-writes").await;
    let api: Api<BgpPeer> = Api::namespaced(client.clone(), &ns);

    // A cleanup that writes status and reports the response: the removal is conditional on
    // the version it wrote, and succeeds.
    let obj = deleting(&api, "reported", "10.40.0.4").await;
    let result = finalizer::finalizer(&api, FINALIZER, Arc::new(obj), |_| async {
        let written = write_status(&api, "reported", "t").await;
        finalizer::saw(&written);
        Ok::<_, kube::Error>(Action::await_change())
    })
    .await;
    result.expect("released after a reported write");
    assert!(api.get_opt("reported").await.expect("get").is_none());

    // The same write unreported: the removal is refused (safe), the next look releases.
    let obj = deleting(&api, "unreported", "10.40.0.5").await;
    let result = finalizer::finalizer(&api, FINALIZER, Arc::new(obj), |_| async {
        write_status(&api, "unreported", "t").await;
        Ok::<_, kube::Error>(Action::await_change())
    })
    .await;
    assert!(matches!(result, Err(Error::Stale(_))), "{result:?}");
    let now = api.get("unreported").await.expect("get");
    cleanup_ok(&api, now)
        .await
        .expect("released on the next look");
}
