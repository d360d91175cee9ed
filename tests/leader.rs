//! Two controller processes against one control plane: exactly one reconciles; killing it
//! hands over within the lease duration; nothing is created twice. Also the /livez, /readyz
//! and /metrics endpoints of the real binary.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::server;

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
    let port = free_port();
    let log = std::fs::File::create(std::env::temp_dir().join(format!("{ns}-{name}.log")))
        .expect("log file");
    let child = Command::new(BIN)
        .args([
            "run",
            "--endpoint",
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
