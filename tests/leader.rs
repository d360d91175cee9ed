//! Two controller processes against one control plane: exactly one reconciles; killing it
//! hands over within the lease duration; nothing is created twice; a SIGTERM while a cloud
//! write is in flight never lets the standby start before that write has landed. Also the
//! /livez, /readyz and /metrics endpoints of the real binary.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::server;

use common::cloud_proxy::CloudProxy;
use common::operator::{GROUP, REGION, test_emulator_config};

const BIN: &str = env!("CARGO_BIN_EXE_alicloud-bgp-operator");
const LEASE_SECONDS: u64 = 4;

struct Replica {
    name: String,
    child: Child,
    metrics: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_replica(name: &str, ns: &str, endpoint: &str) -> Replica {
    start_replica_with(name, ns, endpoint, &[])
}

/// A replica with extra `run` arguments.
fn start_replica_with(name: &str, ns: &str, endpoint: &str, extra: &[&str]) -> Replica {
    let port = free_port();
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
            "--leader-elect",
            "--lease-namespace",
            ns,
            "--lease-duration",
            &format!("{LEASE_SECONDS}s"),
            "--poll-interval",
            "1s",
            "--resync-period",
            "30s",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--instance",
            name,
        ])
        .args(extra)
        .env("KUBECONFIG", common::controlplane::kubeconfig_path())
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
        .env("ABO_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the operator binary");
    Replica {
        name: name.to_owned(),
        child,
        metrics: format!("http://127.0.0.1:{port}"),
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let resp = reqwest::get(url).await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// Sum of `cloud_api_calls_total` samples of a replica.
async fn cloud_calls(r: &Replica) -> f64 {
    let Some((_, text)) = get(&format!("{}/metrics", r.metrics)).await else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with("alicloud_bgp_operator_cloud_api_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("alicloud-bgp-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn one_leader_reconciles_and_a_standby_takes_over() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "leader").await;
    let emu = server::start(test_emulator_config(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let a = start_replica("replica-a", &ns, &emu.endpoint());
    let b = start_replica("replica-b", &ns, &emu.endpoint());
    let mut replicas = vec![a, b];

    // Both are alive and ready (a standby is ready: it needs no cache).
    for r in &replicas {
        let livez = format!("{}/livez", r.metrics);
        common::wait_for("livez", Duration::from_secs(30), || async {
            get(&livez).await.filter(|(s, _)| *s == 200)
        })
        .await;
        let readyz = format!("{}/readyz", r.metrics);
        common::wait_for("readyz", Duration::from_secs(30), || async {
            get(&readyz).await.filter(|(s, _)| *s == 200)
        })
        .await;
    }

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let leader = common::wait_for("a leader", Duration::from_secs(30), || holder(&leases)).await;
    let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
    assert!(
        names.contains(&leader),
        "holder {leader} is one of {names:?}"
    );

    let peers: Api<alicloud_bgp_operator::api::BgpPeer> = Api::namespaced(client.clone(), &ns);
    let make = |name: &str, ip: &str| -> alicloud_bgp_operator::api::BgpPeer {
        serde_json::from_value(json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
            "metadata": {"name": name},
            "spec": {"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip},
        }))
        .expect("object")
    };
    let ready = |name: String| {
        let peers = peers.clone();
        async move {
            let obj = peers.get_opt(&name).await.ok()??;
            obj.status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        }
    };
    for i in 0..3 {
        peers
            .create(
                &Default::default(),
                &make(&format!("p{i}"), &format!("10.30.0.{}", i + 2)),
            )
            .await
            .expect("create");
    }
    for i in 0..3 {
        common::wait_for(
            "Ready under the first leader",
            Duration::from_secs(60),
            || ready(format!("p{i}")),
        )
        .await;
    }

    // Only the leader talked to the cloud.
    let (lead_idx, standby_idx) = if replicas[0].name == leader {
        (0, 1)
    } else {
        (1, 0)
    };
    assert!(
        cloud_calls(&replicas[lead_idx]).await > 0.0,
        "the leader made the calls"
    );
    assert_eq!(
        cloud_calls(&replicas[standby_idx]).await,
        0.0,
        "the standby made none"
    );
    let metrics = get(&format!("{}/metrics", replicas[lead_idx].metrics))
        .await
        .expect("metrics")
        .1;
    for needle in [
        "alicloud_bgp_operator_reconciles_total{result=\"success\"",
        "alicloud_bgp_operator_cloud_api_calls_total{action=\"CreateBgpPeer\",code=\"Success\"} 3",
        "alicloud_bgp_operator_bgppeers{condition=\"Ready\",status=\"True\"} 3",
        "alicloud_bgp_operator_cloud_api_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // The process's own resource use, read at the scrape: the standard `process_*` names, and
    // the allocator's counters of the shipped jemalloc build (live heap within what it holds,
    // and both within the process's resident memory).
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} sample in\n{metrics}"))
    };
    let rss = sample("process_resident_memory_bytes");
    let allocated = sample("alicloud_bgp_operator_allocator_allocated_bytes");
    let held = sample("alicloud_bgp_operator_allocator_resident_bytes");
    assert!(sample("process_cpu_seconds_total") > 0.0);
    assert!(sample("process_threads") >= 2.0);
    assert!(
        allocated > 1024.0 * 1024.0 && allocated <= held && allocated < rss,
        "allocated {allocated}, allocator resident {held}, process RSS {rss}"
    );

    // kill -9 the leader: the standby takes over within the lease duration (plus grace and
    // the standby's retry period).
    let killed_at = Instant::now();
    {
        let leader_replica = replicas.remove(lead_idx);
        drop(leader_replica); // kills the process
    }
    let standby = &replicas[0];
    let new_leader = common::wait_for("takeover", Duration::from_secs(60), || async {
        holder(&leases).await.filter(|h| *h == standby.name)
    })
    .await;
    let handover = killed_at.elapsed();
    assert_eq!(new_leader, standby.name);
    assert!(
        handover < Duration::from_secs(LEASE_SECONDS * 4),
        "handover took {handover:?} with a {LEASE_SECONDS}s lease"
    );
    peers
        .create(&Default::default(), &make("p3", "10.30.0.9"))
        .await
        .expect("create");
    common::wait_for(
        "Ready under the new leader",
        Duration::from_secs(60),
        || ready("p3".to_owned()),
    )
    .await;

    // Nothing was created twice across the handover.
    let cloud = emu.peers();
    assert_eq!(cloud.len(), 4, "{cloud:?}");
    let mut tokens: Vec<_> = cloud
        .iter()
        .filter_map(|p| p.client_token.clone())
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 4);
    assert_eq!(emu.counters().calls("CreateBgpPeer"), 4);
    drop(replicas);
    emu.shutdown().await;
}

fn lease_holder_and_acquired(lease: &Lease) -> (Option<String>, Option<i64>) {
    let spec = lease.spec.as_ref();
    (
        spec.and_then(|s| s.holder_identity.clone()),
        spec.and_then(|s| s.acquire_time.as_ref())
            .map(|t| t.0.as_millisecond()),
    )
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// SIGTERM while the leader's `CreateBgpPeer` is held in flight (by its cloud proxy) for
/// longer than the shutdown timeout: the leader aborts its reconciles, and the Lease must not
/// name anyone else (released or taken over) before that write, which the cloud still
/// carries out, has landed. The standby then takes over and the object ends with one peer.
#[tokio::test]
async fn a_write_in_flight_at_sigterm_lands_before_the_lease_is_free() {
    const HOLD: Duration = Duration::from_secs(2);
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "handover").await;
    let emu = server::start(test_emulator_config(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let proxy_a = CloudProxy::start(&emu.endpoint()).await;
    let proxy_b = CloudProxy::start(&emu.endpoint()).await;
    let mut a = start_replica_with(
        "replica-a",
        &ns,
        &proxy_a.endpoint(),
        &["--shutdown-timeout", "1s"],
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    common::wait_for("replica-a leads", Duration::from_secs(30), || async {
        holder(&leases).await.filter(|h| h == "replica-a")
    })
    .await;
    let b = start_replica_with("replica-b", &ns, &proxy_b.endpoint(), &[]);

    // A create held in flight for longer than the shutdown timeout.
    proxy_a.hold_writes(HOLD);
    let peers: Api<alicloud_bgp_operator::api::BgpPeer> = Api::namespaced(client.clone(), &ns);
    let obj: alicloud_bgp_operator::api::BgpPeer = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": "inflight"},
        "spec": {"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.31.0.2"},
    }))
    .expect("object");
    peers
        .create(&Default::default(), &obj)
        .await
        .expect("create");
    common::wait_for(
        "the leader's create in flight",
        Duration::from_secs(30),
        || async {
            proxy_a
                .in_flight()
                .iter()
                .any(|(action, _)| action == "CreateBgpPeer")
                .then_some(())
        },
    )
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());

    // Watch the Lease until someone else holds it: when did it stop naming replica-a?
    let mut free_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (new_holder, acquired) = loop {
        assert!(Instant::now() < deadline, "no takeover");
        if let Ok(Some(lease)) = leases.get_opt("alicloud-bgp-operator").await {
            let (h, acquired) = lease_holder_and_acquired(&lease);
            if h.as_deref() != Some("replica-a") && free_at.is_none() {
                free_at = Some(SystemTime::now());
            }
            if h.as_deref() == Some("replica-b") {
                break (h, acquired);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(new_holder.as_deref(), Some("replica-b"));
    let exit = common::wait_for("replica-a exits", Duration::from_secs(30), || {
        std::future::ready(a.child.try_wait().ok().flatten())
    })
    .await;
    assert!(exit.success(), "a SIGTERM stop exits 0: {exit:?}");
    common::wait_for(
        "Ready under the new leader",
        Duration::from_secs(60),
        || {
            let peers = peers.clone();
            async move {
                let obj = peers.get_opt("inflight").await.ok()??;
                obj.status?
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
                    .then_some(())
            }
        },
    )
    .await;

    // Every write of the old leader landed before the Lease named anyone else.
    let free_at = millis(free_at.expect("observed"));
    let acquired = acquired.expect("acquireTime");
    let writes = proxy_a.writes();
    assert!(
        writes.iter().any(|w| w.action == "CreateBgpPeer"),
        "the held create was carried out: {:?}",
        proxy_a.calls()
    );
    assert!(proxy_a.in_flight().is_empty(), "{:?}", proxy_a.in_flight());
    for w in &writes {
        let answered = millis(w.answered);
        assert!(
            answered < free_at && answered < acquired,
            "replica-a's {} landed at {answered}, after the lease was free at {free_at} (replica-b acquired at {acquired}); writes of replica-a: {writes:?}",
            w.action
        );
    }
    // No call of the old leader arrived after it stopped.
    assert!(
        proxy_a.calls().iter().all(|c| millis(c.arrived) < free_at),
        "{:?}",
        proxy_a.calls()
    );
    // One peer, made once (the new leader's replay, if any, used the same ClientToken).
    let cloud = emu.peers();
    assert_eq!(cloud.len(), 1, "{cloud:?}");
    drop(b);
    emu.shutdown().await;
}
