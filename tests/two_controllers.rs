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

mod churn {
    use std::collections::{BTreeMap, BTreeSet};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use kube::api::{DeleteParams, PostParams};
    use kube::{Api, ResourceExt};
    use serde_json::json;

    use alicloud_bgp_operator::api::BgpPeer;
    use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
    use alicloud_bgp_operator::emulator::server;

    use super::common;
    use super::common::cloud_proxy::CloudProxy;
    use super::common::operator::{GROUP, REGION, test_emulator_config};

    const BIN: &str = env!("CARGO_BIN_EXE_alicloud-bgp-operator");
    const OBJECTS: usize = 30;

    /// A controller process (killed on drop).
    struct Controller(Child);

    impl Drop for Controller {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A controller process without leader election, as started by mistake next to another.
    fn start(name: &str, ns: &str, endpoint: &str) -> Controller {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{ns}-{name}.log")))
            .expect("log file");
        let child = Command::new(BIN)
            .args([
                "run",
                "--endpoint",
                endpoint,
                "--sts-endpoint",
                endpoint,
                "--namespace",
                ns,
                "--poll-interval",
                "1s",
                "--resync-period",
                "10s",
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--instance",
                name,
            ])
            .env("KUBECONFIG", common::controlplane::kubeconfig_path())
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
            // ABO_TEST_CONTROLLER_LOG=debug shows every plan when a scenario needs a look.
            .env(
                "ABO_LOG",
                std::env::var("ABO_TEST_CONTROLLER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the operator binary");
        Controller(child)
    }

    fn object(name: &str, i: usize) -> BgpPeer {
        serde_json::from_value(json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
            "metadata": {"name": name},
            "spec": {
                "regionId": REGION,
                "bgpGroupId": GROUP,
                "peerIpAddress": format!("10.60.{}.{}", i / 200, i % 200 + 2),
            },
        }))
        .expect("object")
    }

    fn is_ready(obj: &BgpPeer) -> bool {
        obj.status.as_ref().is_some_and(|s| {
            s.bgp_peer_id.is_some()
                && s.observed_generation == obj.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }

    /// Every version of every object the watch delivers, one line each, for the failure
    /// report: when, uid, resourceVersion, finalizers, deletion mark, token, peer ID and the
    /// field managers.
    fn record_history(api: Api<BgpPeer>) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
        use futures::StreamExt;
        use kube::runtime::watcher;
        let history = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = history.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                let (what, obj) = match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => ("apply", o),
                    watcher::Event::Delete(o) => ("delete", o),
                    _ => continue,
                };
                let status = obj.status.as_ref();
                let managers: Vec<String> = obj
                    .managed_fields()
                    .iter()
                    .map(|m| {
                        format!(
                            "{}/{}{}",
                            m.manager.as_deref().unwrap_or("?"),
                            m.operation.as_deref().unwrap_or("?"),
                            m.subresource
                                .as_deref()
                                .map(|s| format!("/{s}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                out.lock().expect("lock").push(format!(
                    "watch {:?} {what} {} uid {} rv {} finalizers {:?} deleting {} token {:?} peer {:?} managers {managers:?}",
                    std::time::SystemTime::now(),
                    obj.name_any(),
                    obj.uid().unwrap_or_default(),
                    obj.resource_version().unwrap_or_default(),
                    obj.finalizers(),
                    obj.metadata.deletion_timestamp.is_some(),
                    status.and_then(|s| s.client_token.as_deref()),
                    status.and_then(|s| s.bgp_peer_id.as_deref()),
                ));
            }
        });
        history
    }

    /// Two controllers over the same objects and account, under churn: creates, deletes
    /// during the create, deletes later, recreations under the same name. The end state is
    /// one cloud peer per live object (the one its status names), none for deleted objects,
    /// no object left with a finalizer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_controllers_by_mistake_converge_without_duplicates_or_leaks() {
        let client = common::client_with_crds().await;
        let ns = common::namespace(&client, "two-ctl").await;
        let mut cfg = test_emulator_config();
        for vbr in &mut cfg.vbrs {
            // Room for every object at once (the documented default is 8 per VBR).
            vbr.peer_quota = 64;
        }
        let emu = server::start(cfg, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("emulator");
        let proxy_a = CloudProxy::start(&emu.endpoint()).await;
        let proxy_b = CloudProxy::start(&emu.endpoint()).await;
        let _a = start("ctl-a", &ns, &proxy_a.endpoint());
        let _b = start("ctl-b", &ns, &proxy_b.endpoint());
        let api: Api<BgpPeer> = Api::namespaced(client.clone(), &ns);
        let name = |i: usize| format!("p{i:02}");
        let history = record_history(api.clone());

        // Every UID ever created, by name, and which ones must end alive.
        let mut uids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let created = |obj: BgpPeer, uids: &mut BTreeMap<String, Vec<String>>| {
            uids.entry(obj.name_any())
                .or_default()
                .push(obj.uid().unwrap_or_default());
        };
        let create = |i: usize| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &object(&format!("p{i:02}"), i))
                    .await
                    .expect("create")
            }
        };
        let delete = |i: usize| {
            let api = api.clone();
            async move {
                api.delete(&format!("p{i:02}"), &DeleteParams::default())
                    .await
                    .expect("delete");
            }
        };

        // 0..8: deleted while being created (at once, or a few hundred ms later).
        // 8..16: deleted once Ready. 16..20: deleted once Ready, then created again under
        // the same name. 20..30: left alone.
        for i in 0..OBJECTS {
            created(create(i).await, &mut uids);
            if i < 8 {
                tokio::time::sleep(Duration::from_millis(40 * (i as u64 % 4) * 3)).await;
                delete(i).await;
            }
        }
        for i in 8..20 {
            common::wait_for(
                &format!("{} Ready", name(i)),
                Duration::from_secs(90),
                || {
                    let api = api.clone();
                    async move {
                        api.get_opt(&name(i))
                            .await
                            .ok()?
                            .filter(is_ready)
                            .map(|_| ())
                    }
                },
            )
            .await;
            delete(i).await;
        }
        for i in 16..20 {
            common::wait_for(
                &format!("{} gone", name(i)),
                Duration::from_secs(90),
                || {
                    let api = api.clone();
                    async move { api.get_opt(&name(i)).await.ok()?.is_none().then_some(()) }
                },
            )
            .await;
            created(create(i).await, &mut uids);
        }
        // A recreated object deleted again while its create is in flight.
        delete(19).await;
        let live: BTreeSet<String> = (16..19).chain(20..OBJECTS).map(name).collect();

        // Converged: the live objects Ready, every other object gone.
        let converged = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                let objects = api.list(&Default::default()).await.expect("list").items;
                let names: BTreeSet<String> = objects.iter().map(|o| o.name_any()).collect();
                if names == live && objects.iter().all(is_ready) {
                    return objects;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        let objects = api.list(&Default::default()).await.expect("list").items;
        let cloud = emu.peers();
        let report = || {
            let mut out = String::new();
            for o in &objects {
                out += &format!(
                    "object {} uid {} deleting {} status {}\n",
                    o.name_any(),
                    o.uid().unwrap_or_default(),
                    o.metadata.deletion_timestamp.is_some(),
                    serde_json::to_string(&o.status).unwrap_or_default()
                );
            }
            for p in &cloud {
                out += &format!(
                    "peer {} ip {} token {:?} status {:?}\n",
                    p.bgp_peer_id, p.peer_ip_address, p.client_token, p.status
                );
            }
            for (who, proxy) in [("ctl-a", &proxy_a), ("ctl-b", &proxy_b)] {
                for c in proxy.writes() {
                    out += &format!("{who} {} {} at {:?}\n", c.action, c.status, c.forwarded);
                }
            }
            for line in history.lock().expect("lock").iter() {
                out += line;
                out += "\n";
            }
            out += &format!(
                "uids by name: {uids:?}\nlogs: {}/{ns}-ctl-*.log\n",
                std::env::temp_dir().display()
            );
            out
        };
        assert!(
            converged.is_ok(),
            "did not converge in 120 s:\n{}",
            report()
        );
        assert!(
            !proxy_a.writes().is_empty() && !proxy_b.writes().is_empty(),
            "both controllers wrote to the cloud\n{}",
            report()
        );

        // Exactly one cloud peer per live object: the one its status names.
        for o in &objects {
            let uid = o.uid().unwrap_or_default();
            let mine: Vec<_> = cloud
                .iter()
                .filter(|p| p.client_token.as_deref().is_some_and(|t| t.contains(&uid)))
                .collect();
            assert_eq!(mine.len(), 1, "{}: {mine:?}\n{}", o.name_any(), report());
            assert_eq!(
                o.status.as_ref().and_then(|s| s.bgp_peer_id.as_deref()),
                Some(mine[0].bgp_peer_id.as_str()),
                "{}\n{}",
                o.name_any(),
                report()
            );
        }
        // No peer of a deleted object (no leak), nothing else in the group.
        let live_uids: BTreeSet<String> = objects
            .iter()
            .map(|o| o.uid().unwrap_or_default())
            .collect();
        for p in &cloud {
            let owner = live_uids.iter().find(|u| {
                p.client_token
                    .as_deref()
                    .is_some_and(|t| t.contains(u.as_str()))
            });
            assert!(
                owner.is_some(),
                "leaked peer {}\n{}",
                p.bgp_peer_id,
                report()
            );
        }
        assert_eq!(cloud.len(), live.len(), "{}", report());
        // No object stuck with a finalizer.
        assert!(
            objects
                .iter()
                .all(|o| o.metadata.deletion_timestamp.is_none()),
            "{}",
            report()
        );
        emu.shutdown().await;
    }
}
