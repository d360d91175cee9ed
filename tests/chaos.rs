//! The CI variant of the crash-chaos run (the full run is `hack/chaos.sh`): 40 BgpPeers are
//! created and a share deleted while the controller *process* is `kill -9`ed 8 times at
//! seeded random moments and restarted, the emulator answers 503 to ~30 % of calls for a
//! period and lowers its per-operation quotas for another. The topology is issue 18's fleet
//! (groups of 4 on a VBR each under the 8-peer quota, 3 regions, account A by the
//! operator-wide key in two and account B by a per-object Secret in the third, 20 % other
//! owners' peers, 20 calls/s per operation and account). The cloud hides a new peer for 2 s
//! (read-after-write lag); a second controller process runs next to the first for a third of
//! the window; 8 objects of both accounts use a credentials Secret that is switched to the
//! other account's keys for 12 s and back.
//! Afterwards: every surviving object Ready with exactly the one cloud peer its status names,
//! every deleted object gone with its peer, no duplicate, no leak, no stuck finalizer, no
//! write with the other account's key, and the switched objects seen `AccountMismatch`.
//!
//! It uses the shared test control plane and so never restarts the apiserver (the full run
//! does, on a control plane of its own). `ABO_CHAOS_SEED` picks another schedule.

mod common;
#[path = "../benches/harness/mod.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::chaos::{self, ChaosConfig, ChaosEnv, ChaosTopology, CloudLimit};
use harness::world::CloudOpts;

fn seed() -> u64 {
    std::env::var("ABO_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_801)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_cloud_faults_leave_no_duplicate_leak_or_stuck_finalizer() {
    let client = common::client_with_crds().await;
    let namespace = common::namespace(&client, "chaos").await;
    let cfg = ChaosConfig {
        seed: seed(),
        peers: 40,
        delete_share: 0.3,
        kills: 8,
        window: Duration::from_secs(40),
        restart_apiserver: false,
        fault_share: 0.3,
        fault_period: Duration::from_secs(6),
        throttle_qps: 3,
        converge_timeout: Duration::from_secs(120),
        cloud: CloudOpts {
            // Placement comes from `topology`.
            groups: 0,
            pending: Duration::from_secs(1),
            delete_delay: Duration::from_millis(500),
            latency: (Duration::from_millis(5), Duration::from_millis(20)),
            account_qps: Some(20),
            foreign_peers_per_group: 0,
        },
        topology: ChaosTopology::Fleet,
        limit: CloudLimit::PerOperation,
        visibility_lag: Duration::from_secs(2),
        second_controller_share: 0.35,
        switch_objects: 8,
        switch_period: Duration::from_secs(12),
        cloud_qps: 20.0,
        cloud_burst: 10,
        poll_secs: 1,
        resync_secs: 30,
        log_level: "info".into(),
    };
    let log = std::env::temp_dir().join(format!("abo-{namespace}-controller.log"));
    let env = ChaosEnv {
        client,
        kubeconfig: common::controlplane::kubeconfig_path().to_path_buf(),
        namespace,
        control_plane: None,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_alicloud-bgp-operator")),
        log: log.clone(),
    };
    let report = chaos::run(&cfg, env).await.expect("chaos run");
    let table = report.markdown(&cfg);
    println!("{table}");
    assert_eq!(report.kills, 8, "every planned kill happened\n{table}");
    assert!(report.injected_503 > 0, "the 503 period hit calls\n{table}");
    assert!(
        report.throttled > 0,
        "the throttling period hit calls\n{table}"
    );
    assert!(
        report.second_controller.is_some(),
        "the second controller ran\n{table}"
    );
    assert!(
        report.switch.objects_b > 0 && report.switch.objects_b < report.switch.objects,
        "switch objects in both accounts\n{table}"
    );
    assert!(
        report.switch.mismatch_objects > report.switch.mismatch_objects_b
            && report.switch.mismatch_objects_b > 0,
        "the credentials switch was seen in both accounts (AccountMismatch)\n{table}"
    );
    assert!(
        report.ok(),
        "chaos invariants violated (seed {}); controller log: {}\n{table}",
        cfg.seed,
        log.display()
    );
}
