//! Crash-chaos run: `cargo bench --bench chaos -- --seed 1 --peers 500 --kills 50` (or
//! `hack/chaos.sh`). Starts its own control plane (the apiserver is restarted once), the
//! emulator in this process and the controller as a process; see `harness::chaos` for the
//! scenario. `--topology fleet` (the default) runs it on issue 18's fleet: groups of 4 on a VBR
//! each, 3 regions, account A (the operator-wide key) in two and account B (per-object
//! credentials Secrets) in the third, 20 % other owners' peers, per-operation quotas per
//! account; `--topology quota-layout` on the older one (one region and account, 2 groups per
//! VBR with 2 of our peers and 1 of another owner each, one per-key limit). Prints the results table and writes
//! `benches/results/chaos-fleet-seed<S>.md` (`chaos-seed<S>.md` for `quota-layout`); exits
//! non-zero when an invariant is violated.
//!
//! Under `cargo test` (no `--bench` argument) it does nothing; the CI variant is
//! `tests/chaos.rs`.

mod harness;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use harness::chaos::{self, ChaosConfig, ChaosEnv, ChaosTopology, CloudLimit};
use harness::cluster::{self, ControlPlane};
use harness::secs;
use harness::world::{CloudOpts, VbrLayout};

/// Where the objects go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Topology {
    /// Issue 18: groups of 4 (a VBR each), 3 regions, 2 accounts, 20 % foreign peers,
    /// per-operation quotas per account.
    Fleet,
    /// One region and account, 2 groups per VBR (2 of ours + 1 foreign each), a per-key limit.
    QuotaLayout,
}

#[derive(Debug, Parser)]
#[command(name = "chaos", about = "BgpPeer crash-chaos run")]
struct Args {
    /// Where the objects go (see the module documentation).
    #[arg(long, value_enum, default_value_t = Topology::Fleet)]
    topology: Topology,
    /// Seed of the schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Objects created.
    #[arg(long, default_value_t = 500)]
    peers: usize,
    /// `kill -9` moments.
    #[arg(long, default_value_t = 50)]
    kills: usize,
    /// Share of the objects deleted again.
    #[arg(long, default_value_t = 0.3)]
    delete_share: f64,
    /// Chaos window in seconds (default: 4 s per kill, at least 120 s).
    #[arg(long)]
    window: Option<u64>,
    /// Length of the 503 period and of the throttling period (s; default: 15 % of the window).
    #[arg(long)]
    fault_period: Option<u64>,
    /// How long convergence may take after the window (s).
    #[arg(long, default_value_t = 300)]
    converge_timeout: u64,
    /// Read-after-write lag of the cloud for the whole run (s).
    #[arg(long, default_value_t = 3.0)]
    lag: f64,
    /// Share of the window a second controller process runs next to the first (0: never).
    #[arg(long, default_value_t = 0.3)]
    second_controller: f64,
    /// Objects that use spec.credentialsSecretRef, switched to account B and back.
    #[arg(long, default_value_t = 40)]
    switch_objects: usize,
    /// How long their Secret holds account B's keys (s; default: 35 % of the window, longer
    /// than the resync period, so every switched object is looked at while it lasts).
    #[arg(long)]
    switch_period: Option<u64>,
    /// Results directory.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// Work directory (control plane, logs).
    #[arg(long, default_value = "target/chaos")]
    work: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long)]
    bench: bool,
}

async fn main_async(args: Args) -> anyhow::Result<bool> {
    alicloud_bgp_operator::install_crypto_provider();
    std::fs::create_dir_all(&args.work)?;
    std::fs::create_dir_all(&args.out)?;
    let dir = args.work.join("cp");
    let _ = std::process::Command::new("bash")
        .arg(cluster::repo_root().join("hack/controlplane.sh"))
        .arg("stop")
        .arg(&dir)
        .status();
    let mut cp = ControlPlane::start(&dir)?;
    let client = cluster::client(cp.kubeconfig()).await?;
    cluster::install_crd(&client).await?;
    let namespace = cluster::create_namespace(&client, &format!("chaos-s{}", args.seed)).await?;
    let window = Duration::from_secs(args.window.unwrap_or((args.kills as u64 * 4).max(120)));
    // The fleet: the 20 calls/s per operation and account, the controller at it; the
    // older topology: 50 calls/s per key, the controller at 40.
    let (topology, limit, account_qps, cloud_qps) = match args.topology {
        Topology::Fleet => (ChaosTopology::Fleet, CloudLimit::PerOperation, 20, 20.0),
        Topology::QuotaLayout => (
            ChaosTopology::QuotaLayout(VbrLayout::CHAOS),
            CloudLimit::PerKey,
            50,
            40.0,
        ),
    };
    let cfg = ChaosConfig {
        seed: args.seed,
        peers: args.peers,
        delete_share: args.delete_share,
        kills: args.kills,
        window,
        restart_apiserver: true,
        fault_share: 0.3,
        fault_period: args
            .fault_period
            .map(Duration::from_secs)
            .unwrap_or(window.mul_f64(0.15)),
        throttle_qps: 5,
        converge_timeout: Duration::from_secs(args.converge_timeout),
        cloud: CloudOpts {
            // Placement comes from `topology`.
            groups: 0,
            pending: Duration::from_secs(2),
            delete_delay: Duration::from_secs(1),
            latency: (Duration::from_millis(20), Duration::from_millis(60)),
            account_qps: Some(account_qps),
            foreign_peers_per_group: 0,
        },
        topology,
        limit,
        visibility_lag: Duration::from_secs_f64(args.lag),
        second_controller_share: args.second_controller,
        switch_objects: args.switch_objects,
        switch_period: args
            .switch_period
            .map(Duration::from_secs)
            .unwrap_or(window.mul_f64(0.35)),
        cloud_qps,
        cloud_burst: 10,
        poll_secs: 1,
        resync_secs: 60,
        log_level: "info".into(),
    };
    // `chaos-fleet-seed1`; the older topology keeps its file names (`chaos-seed1`).
    let tag = match args.topology {
        Topology::Fleet => format!("fleet-seed{}", args.seed),
        Topology::QuotaLayout => format!("seed{}", args.seed),
    };
    let log = args.work.join(format!("controller-{tag}.log"));
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(log.with_extension("second.log"));
    let env = ChaosEnv {
        client,
        kubeconfig: cp.kubeconfig().to_path_buf(),
        namespace,
        control_plane: Some(&cp),
        bin: PathBuf::from(env!("CARGO_BIN_EXE_alicloud-bgp-operator")),
        log,
    };
    let report = chaos::run(&cfg, env).await?;
    let table = format!(
        "Command: `hack/chaos.sh --topology {} --seed {} --peers {} --kills {}` (window {} s; {}; lag {} s, controller --cloud-qps {} against a limit of {}/s {}, Pending {} s, latency 20–60 ms; load average at the end {})\n\n{}",
        cfg.topology.name(),
        args.seed,
        args.peers,
        args.kills,
        window.as_secs(),
        cfg.topology.describe(cfg.peers),
        secs(cfg.visibility_lag),
        cfg.cloud_qps,
        cfg.cloud.account_qps.unwrap_or(0),
        cfg.limit.describe(),
        cfg.cloud.pending.as_secs(),
        load_avg(),
        report.markdown(&cfg)
    );
    std::fs::write(args.out.join(format!("chaos-{tag}.md")), &table)?;
    println!("{table}");
    cp.stop();
    Ok(report.ok())
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "chaos: runs with `cargo bench --bench chaos` (hack/chaos.sh); the CI variant is tests/chaos.rs"
        );
        return Ok(());
    }
    let args = Args::parse();
    let ok = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main_async(args))?;
    if !ok {
        anyhow::bail!("chaos: invariants violated (see the table above)");
    }
    Ok(())
}
