//! Scale benchmark: N BgpPeers against an emulated VPC API with realistic latency, a Pending
//! duration, read-after-write lag and the account's API quotas, the controller running as its
//! own process.
//!
//! `cargo bench --bench scale -- --n 100 --n 1000` (or `hack/bench.sh`). The default
//! topology is the fleet of issue 18 (`--topology fleet`): groups of 4, one group per VBR,
//! over 3 regions and 2 accounts (the second through per-object credentials Secrets), 20 %
//! other owners' peers in the same regions; `--topology groups` is the older N peers over
//! `--groups` groups of one VBR pair, `--topology quota-layout` 4 peers per group and 2
//! groups per VBR in one region. `--quota-model per-operation` (default: 20 calls/s for each
//! operation of each account) or `shared` (one 20 calls/s for all of an account's calls).
//! For each N it measures the time until all are Ready against the API-rate floor, cloud
//! calls per peer by action and DescribeBgpPeers filter, throttling errors, steady-state
//! calls, controller peak RSS and CPU, and the time to delete all. Results:
//! `benches/results/scale-<topology>-<model>-n<N>.json`, `ready-<…>.csv`, `delete-<…>.csv`,
//! `rss-<…>.csv` (the controller's memory once a second), and the combined
//! `benches/results/summary.md`.
//!
//! Under `cargo test` (no `--bench` argument) it only checks its own arithmetic.

mod harness;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde::{Deserialize, Serialize};

use harness::cluster::{self, ControlPlane};
use harness::controller::{ControllerOpts, ControllerProcess, Usage};
use harness::tracker::Tracker;
use harness::world::{self, CloudOpts};

use alicloud_bgp_operator::emulator::throttle;

/// Largest DescribeBgpPeers page.
const PAGE: usize = 50;

/// Where the peers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Topology {
    /// Issue 18: groups of 4 (a VBR each), 3 regions, 2 accounts, 20 % foreign peers.
    Fleet,
    /// N peers over `--groups` groups on two VBRs (the 8-peer quota lifted), one region.
    Groups,
    /// 4 peers per group, 2 groups per VBR (the 8-peer maximum), one region and account.
    QuotaLayout,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Groups => "groups",
            Self::QuotaLayout => "quota-layout",
        }
    }
}

/// How the emulated account limits calls (and how the controller is told to budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum QuotaModel {
    /// `--account-qps` for each operation of each account (the documented model).
    PerOperation,
    /// One `--account-qps` for all operations of an account.
    Shared,
}

impl QuotaModel {
    fn name(self) -> &'static str {
        match self {
            Self::PerOperation => "per-operation",
            Self::Shared => "shared",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "scale",
    about = "BgpPeer scale benchmark against the API-rate floor"
)]
struct Args {
    /// Peer counts to run (repeatable).
    #[arg(long = "n", default_values_t = [100usize])]
    n: Vec<usize>,
    /// Where the peers are (see the module documentation).
    #[arg(long, value_enum, default_value_t = Topology::Fleet)]
    topology: Topology,
    /// BGP groups the peers are spread over (`--topology groups`).
    #[arg(long, default_value_t = 4)]
    groups: usize,
    /// Read-after-write lag of the emulator: a new peer is hidden from DescribeBgpPeers this
    /// many seconds.
    #[arg(long, default_value_t = 3.0)]
    lag: f64,
    /// Per operation or one shared quota (emulator and controller alike).
    #[arg(long, value_enum, default_value_t = QuotaModel::PerOperation)]
    quota_model: QuotaModel,
    /// The account's API quota (emulator, calls/s per account: per operation, or shared).
    #[arg(long, default_value_t = 20)]
    account_qps: u32,
    /// Controller `--cloud-qps` (at or below the account limit).
    #[arg(long, default_value_t = 20.0)]
    cloud_qps: f64,
    /// Controller `--cloud-burst`.
    #[arg(long, default_value_t = 10)]
    cloud_burst: u32,
    /// Per-call latency, lower bound (ms).
    #[arg(long, default_value_t = 20)]
    latency_min_ms: u64,
    /// Per-call latency, upper bound (ms).
    #[arg(long, default_value_t = 60)]
    latency_max_ms: u64,
    /// Pending → Available (s).
    #[arg(long, default_value_t = 3.0)]
    pending: f64,
    /// Deleting → gone (s).
    #[arg(long, default_value_t = 2.0)]
    delete_delay: f64,
    /// Controller `--poll-interval` (s).
    #[arg(long, default_value_t = 5)]
    poll: u64,
    /// Controller `--resync-period` while creating and deleting (s; the default 10 min).
    #[arg(long, default_value_t = 600)]
    resync: u64,
    /// Controller `--concurrency`.
    #[arg(long, default_value_t = 64)]
    concurrency: u16,
    /// Short resync used to measure the steady state (s).
    #[arg(long, default_value_t = 60)]
    steady_resync: u64,
    /// Resync periods in the steady-state window.
    #[arg(long, default_value_t = 3)]
    steady_periods: u32,
    /// Object creations in flight against the apiserver.
    #[arg(long, default_value_t = 32)]
    create_parallel: usize,
    /// Results directory.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// Work directory (control plane, logs).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Use this cluster instead of starting a control plane.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Single-object latency: after the run, apply this many objects one at a time and
    /// report the median time to Ready (0 = skip).
    #[arg(long, default_value_t = 0)]
    single: usize,
    /// Run nothing: write `summary.md` over the results already in `--out` (as a run does at
    /// its end) and print it. The README's results table is this output for
    /// `benches/results/current` (checked by the self-check under `cargo test`).
    #[arg(long)]
    summarize: bool,
    /// Passed by `cargo bench`; without it (under `cargo test`) only the self-check runs.
    #[arg(long)]
    bench: bool,
}

/// Everything measured for one N.
#[derive(Debug, Serialize, Deserialize)]
struct RunResult {
    n: usize,
    /// `fleet`, `groups` or `quota-layout` (empty in results of older benchmarks).
    #[serde(default)]
    topology: String,
    /// `per-operation` or `shared`.
    #[serde(default)]
    quota_model: String,
    /// Per region of the fleet: (region, own peers, foreign peers).
    #[serde(default)]
    region_peers: Vec<(String, usize, usize)>,
    groups: usize,
    account_qps: u32,
    cloud_qps: f64,
    cloud_burst: u32,
    latency_ms: (u64, u64),
    pending_s: f64,
    delete_delay_s: f64,
    poll_s: u64,
    concurrency: u16,
    load_avg_at_start: String,
    /// One listing of everything: Σ over regions of ⌈(own + foreign) / 50⌉ (fleet), or
    /// Σ_g ⌈n_g / 50⌉ (one paged listing of every group).
    listing_pages: usize,
    floor_s: f64,
    all_created_in_api_s: f64,
    /// When the emulator had answered N creates.
    #[serde(default)]
    all_created_in_cloud_s: f64,
    all_ready_s: f64,
    ready_median_s: f64,
    /// The operator's `time_to_ready_seconds_count{trigger="create"}` (checked equal to N).
    #[serde(default)]
    time_to_ready_count: u64,
    create_calls: BTreeMap<String, u64>,
    /// DescribeBgpPeers calls until all Ready by filter (region, group, id, router).
    #[serde(default)]
    create_describe_by_filter: BTreeMap<String, u64>,
    create_codes: BTreeMap<String, u64>,
    throttled_create_phase: u64,
    controller_seen_throttles: u64,
    restart_calls: BTreeMap<String, u64>,
    steady_resync_s: u64,
    steady_window_s: f64,
    steady_calls: BTreeMap<String, u64>,
    #[serde(default)]
    steady_describe_by_filter: BTreeMap<String, u64>,
    steady_cpu_s: f64,
    delete_floor_s: f64,
    all_deleted_s: f64,
    /// When the emulator had answered N DeleteBgpPeer calls.
    #[serde(default)]
    all_deletes_answered_s: f64,
    delete_calls: BTreeMap<String, u64>,
    #[serde(default)]
    delete_describe_by_filter: BTreeMap<String, u64>,
    throttled_delete_phase: u64,
    emulator_peers_left: usize,
    create_peak_rss_kib: u64,
    create_cpu_s: f64,
    peak_rss_kib: u64,
    /// Largest sampled anonymous (heap) and file-backed (binary) RSS over the run; VmHWM is
    /// at most their sum.
    #[serde(default)]
    peak_anon_kib: u64,
    #[serde(default)]
    peak_file_kib: u64,
    total_cpu_s: f64,
    /// Single objects applied one at a time: seconds to Ready, in order.
    #[serde(default)]
    single_ready_s: Vec<f64>,
}

impl RunResult {
    fn per_peer(&self, action: &str) -> f64 {
        self.create_calls.get(action).copied().unwrap_or(0) as f64 / self.n as f64
    }

    /// Steady-state calls per resync period.
    fn steady_per_period(&self) -> f64 {
        let total: u64 = self.steady_calls.values().sum();
        total as f64 * self.steady_resync_s as f64 / self.steady_window_s
    }

    /// Per hour at the default 10-minute resync, per 1,000 peers.
    fn steady_per_hour_per_1000(&self) -> f64 {
        self.steady_per_period() * 6.0 * 1000.0 / self.n as f64
    }
}

/// Σ over groups of ⌈peers in group / 50⌉, peers assigned round-robin.
fn listing_pages(n: usize, groups: usize) -> usize {
    let groups = groups.max(1);
    (0..groups)
        .map(|g| {
            let in_group = n / groups + usize::from(g < n % groups);
            in_group.div_ceil(PAGE)
        })
        .sum()
}

/// The floor of one account: the fewest calls it must make (`writes` creates or deletes,
/// and `pages` for one listing of everything to see them done) at its quota, plus the
/// Pending or deletion delay. Per operation, each operation has the quota to itself: the
/// slower one bounds; with one shared quota, they add up.
fn account_floor(writes: usize, pages: usize, model: QuotaModel, qps: u32, wait: f64) -> f64 {
    let calls = match model {
        QuotaModel::PerOperation => writes.max(pages),
        QuotaModel::Shared => writes + pages,
    };
    calls as f64 / f64::from(qps.max(1)) + wait
}

/// The floor of a run: the largest over accounts.
fn floor_secs(shape: &Shape, model: QuotaModel, qps: u32, wait: f64) -> f64 {
    shape
        .accounts
        .iter()
        .map(|&(writes, pages)| account_floor(writes, pages, model, qps, wait))
        .fold(0.0, f64::max)
}

/// What the floor needs to know of a topology: per account, (peers, listing pages).
struct Shape {
    accounts: Vec<(usize, usize)>,
    listing_pages: usize,
}

fn shape(topology: Topology, n: usize, groups: usize) -> Shape {
    match topology {
        Topology::Fleet => {
            let fleet = world::Fleet::new(n);
            let own = fleet.own_by_account();
            let pages = fleet.region_pages_by_account();
            Shape {
                accounts: vec![(own[0], pages[0]), (own[1], pages[1])],
                listing_pages: pages[0] + pages[1],
            }
        }
        Topology::Groups | Topology::QuotaLayout => {
            let pages = listing_pages(n, groups);
            Shape {
                accounts: vec![(n, pages)],
                listing_pages: pages,
            }
        }
    }
}

fn by_action(calls: &BTreeMap<(String, String), u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((a, _), n) in calls {
        *out.entry(a.clone()).or_default() += n;
    }
    out
}

/// DescribeBgpPeers calls by filter between two counter snapshots.
fn filters_between(
    before: &alicloud_bgp_operator::emulator::Counters,
    after: &alicloud_bgp_operator::emulator::Counters,
) -> BTreeMap<String, u64> {
    after
        .describe_peers_by_filter
        .iter()
        .map(|(k, v)| {
            let was = before.describe_peers_by_filter.get(k).copied().unwrap_or(0);
            (k.clone(), v.saturating_sub(was))
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// The emulator's quota rule of a run: `qps` calls/s per account, per operation or shared.
fn quota_rule(model: QuotaModel, qps: u32) -> throttle::QuotaRule {
    world::quota_rule(
        match model {
            QuotaModel::PerOperation => throttle::QuotaModel::PerOperation,
            QuotaModel::Shared => throttle::QuotaModel::Shared,
        },
        qps,
    )
}

fn by_code(calls: &BTreeMap<(String, String), u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((_, c), n) in calls {
        *out.entry(c.clone()).or_default() += n;
    }
    out
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn write_csv(path: &Path, header: &str, times: &[Duration]) -> anyhow::Result<()> {
    let mut s = format!("{header}\n0.000,0\n");
    for (i, t) in times.iter().enumerate() {
        let _ = writeln!(s, "{:.3},{}", t.as_secs_f64(), i + 1);
    }
    std::fs::write(path, s)?;
    Ok(())
}

/// `--quota-layout`: 4 of our peers per group, 2 groups per VBR = the VBR's 8-peer maximum.
const QUOTA_LAYOUT: world::VbrLayout = world::VbrLayout {
    groups_per_vbr: 2,
    slots_per_group: 4,
    foreign_per_group: 0,
};

async fn run_one(
    args: &Args,
    n: usize,
    kubeconfig: &Path,
    client: &kube::Client,
) -> anyhow::Result<RunResult> {
    let load = load_avg();
    eprintln!("\n== N = {n} (load average {load})");
    let cloud = CloudOpts {
        groups: args.groups,
        pending: Duration::from_secs_f64(args.pending),
        delete_delay: Duration::from_secs_f64(args.delete_delay),
        latency: (
            Duration::from_millis(args.latency_min_ms),
            Duration::from_millis(args.latency_max_ms),
        ),
        account_qps: Some(args.account_qps),
        foreign_peers_per_group: 0,
    };
    let fleet = world::Fleet::new(n);
    let groups = match args.topology {
        Topology::Fleet => fleet.own_groups(),
        Topology::QuotaLayout => QUOTA_LAYOUT.groups(n),
        Topology::Groups => args.groups,
    };
    let mut emu_cfg = match args.topology {
        Topology::Fleet => world::fleet_emulator_config(&cloud, &fleet)?,
        Topology::QuotaLayout => world::quota_emulator_config(&cloud, &QUOTA_LAYOUT, groups)?,
        Topology::Groups => world::emulator_config(&cloud)?,
    };
    emu_cfg.visibility_lag = Duration::from_secs_f64(args.lag);
    // The account's quotas (the emulator's older per-key rate is not used).
    emu_cfg.qps_per_key = None;
    emu_cfg.api_quotas = vec![quota_rule(args.quota_model, args.account_qps)];
    let emu =
        alicloud_bgp_operator::emulator::server::start(emu_cfg, "127.0.0.1:0".parse()?).await?;
    let tag = format!("{}-{}-n{n}", args.topology.name(), args.quota_model.name());
    let ns = cluster::create_namespace(client, &format!("bench-{tag}")).await?;
    if args.topology == Topology::Fleet {
        world::put_credentials_secret(
            client,
            &ns,
            world::ACCOUNT_B_SECRET,
            world::ACCOUNT_B_KEY_ID,
            world::ACCOUNT_B_KEY_SECRET,
        )
        .await?;
    }
    let logs = args.work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut opts = ControllerOpts {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_alicloud-bgp-operator")),
        kubeconfig: kubeconfig.to_path_buf(),
        endpoint: emu.endpoint(),
        namespace: ns.clone(),
        cloud_qps: args.cloud_qps,
        cloud_burst: args.cloud_burst,
        resync_secs: args.resync,
        poll_secs: args.poll,
        concurrency: args.concurrency,
        log: logs.join(format!("controller-{tag}.log")),
        // `ABO_BENCH_LOG` (an `ABO_LOG` filter) for a closer look at one run.
        log_level: std::env::var("ABO_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        extra_args: vec!["--cloud-quota-model".into(), args.quota_model.name().into()],
    };
    let _ = std::fs::remove_file(&opts.log);
    let mut controller = ControllerProcess::spawn(&opts)?;
    controller.wait_ready(Duration::from_secs(60)).await?;

    // ---- create N, wait until all are Ready
    let shape = shape(args.topology, n, groups);
    let floor = floor_secs(&shape, args.quota_model, args.account_qps, args.pending);
    let c0 = emu.counters();
    let t0 = Instant::now();
    let tracker = Tracker::start(client, &ns, t0);
    let uids = match args.topology {
        Topology::Fleet => {
            world::create_all_with(client, &ns, n, args.create_parallel, |i| {
                world::fleet_peer_object(i, &fleet)
            })
            .await?
        }
        Topology::QuotaLayout => {
            world::create_all_with(client, &ns, n, args.create_parallel, |i| {
                world::quota_peer_object(i, &QUOTA_LAYOUT, groups, None)
            })
            .await?
        }
        Topology::Groups => world::create_all(client, &ns, n, groups, args.create_parallel).await?,
    };
    anyhow::ensure!(uids.len() == n, "created {} of {n}", uids.len());
    let created_in_api = t0.elapsed();
    eprintln!(
        "   {n} objects in the apiserver after {:.1} s; floor {floor:.1} s",
        created_in_api.as_secs_f64()
    );
    let timeout = Duration::from_secs_f64((floor * 10.0).max(600.0));
    let mut last_print = Instant::now();
    // When the emulator has answered N creates (polled with the Ready count): separates the
    // create throughput from the time to see the peers Available.
    let creates_before = c0.count("CreateBgpPeer", "OK");
    let mut all_created_in_cloud_s = None;
    let all_ready = tracker
        .wait_until(timeout, |ready, _| {
            if all_created_in_cloud_s.is_none()
                && emu.counters().count("CreateBgpPeer", "OK") >= creates_before + n as u64
            {
                all_created_in_cloud_s = Some(t0.elapsed().as_secs_f64());
            }
            if last_print.elapsed() > Duration::from_secs(15) {
                eprintln!(
                    "   t={:.0} s: {ready}/{n} Ready",
                    t0.elapsed().as_secs_f64()
                );
                last_print = Instant::now();
            }
            ready >= n
        })
        .await;
    anyhow::ensure!(
        all_ready,
        "only {} of {n} Ready after {timeout:?}",
        tracker.ready_count()
    );
    let ready_times = tracker.ready_times();
    let all_ready_s = ready_times.last().map_or(0.0, Duration::as_secs_f64);
    let ready_median_s = ready_times.get(n / 2).map_or(0.0, Duration::as_secs_f64);
    let c1 = emu.counters();
    let create_usage: Usage = controller.usage()?;
    let controller_calls = controller.cloud_calls().await.unwrap_or_default();
    // The operator's own time-to-ready histogram must count exactly the objects the bench
    // saw reach Ready (issue 15: the metric agrees with the measurement).
    let time_to_ready_count = controller.time_to_ready_count("create").await?;
    anyhow::ensure!(
        time_to_ready_count == n as u64,
        "time_to_ready_seconds_count{{trigger=\"create\"}} is {time_to_ready_count}, but {n} objects became Ready"
    );
    let controller_seen_throttles = world::code_total(&controller_calls, "Throttling");
    let create = world::calls_between(&c0, &c1);
    eprintln!(
        "   all Ready after {all_ready_s:.1} s ({:.2}x floor); calls {:?}",
        all_ready_s / floor,
        by_action(&create)
    );
    write_csv(
        &args.out.join(format!("ready-{tag}.csv")),
        "seconds,ready",
        &ready_times,
    )?;

    // The controller's memory once a second, per process (first: the create phase; second:
    // the restart, steady state and deletes), to see in which phase the peak falls.
    let mut rss_timeline =
        String::from("process,seconds,anon_kib,file_kib,threads,heap_kib,held_kib\n");
    for line in controller.rss_timeline().lines() {
        let _ = writeln!(rss_timeline, "create,{line}");
    }

    // ---- steady state: restart with a short resync, count calls over whole periods
    controller.terminate(Duration::from_secs(20));
    opts.resync_secs = args.steady_resync;
    let mut controller = ControllerProcess::spawn(&opts)?;
    let restarted = Instant::now();
    controller.wait_ready(Duration::from_secs(60)).await?;
    // The restart reconciles every object once; the next resyncs fall due after 0.9 to 1.1
    // periods. The window starts half a period in and lasts whole periods.
    let half = Duration::from_secs(args.steady_resync) / 2;
    tokio::time::sleep(half.saturating_sub(restarted.elapsed())).await;
    let c2 = emu.counters();
    let cpu_before = controller.usage()?.cpu_secs;
    let window_start = Instant::now();
    let window = Duration::from_secs(args.steady_resync * u64::from(args.steady_periods));
    eprintln!(
        "   steady state: {} s window at resync {} s",
        window.as_secs(),
        args.steady_resync
    );
    tokio::time::sleep(window).await;
    let c3 = emu.counters();
    let steady_window_s = window_start.elapsed().as_secs_f64();
    let steady_cpu_s = controller.usage()?.cpu_secs - cpu_before;
    let restart = world::calls_between(&c1, &c2);
    let steady = world::calls_between(&c2, &c3);

    // ---- delete all
    let d0 = Instant::now();
    let gone_before = tracker.gone_count();
    world::delete_all(client, &ns, uids.keys().cloned(), args.create_parallel).await?;
    // Once a second: deletes answered, Describe calls, objects gone (why a deletion is slow:
    // the deletes themselves, or the releases after them).
    let deletes_before = c3.count("DeleteBgpPeer", "OK");
    let describes_before: u64 = c3
        .by_action_code
        .get("DescribeBgpPeers")
        .map_or(0, |m| m.values().sum());
    let mut timeline = String::from("seconds,deletes_answered,describes,gone\n");
    let mut all_deletes_answered_s = None;
    let mut next_sample = Duration::ZERO;
    let all_gone = tracker
        .wait_until(timeout, |_, gone| {
            let at = d0.elapsed();
            let counters = emu.counters();
            let deleted = counters
                .count("DeleteBgpPeer", "OK")
                .saturating_sub(deletes_before);
            if all_deletes_answered_s.is_none() && deleted >= n as u64 {
                all_deletes_answered_s = Some(at.as_secs_f64());
            }
            if at >= next_sample {
                let describes: u64 = counters
                    .by_action_code
                    .get("DescribeBgpPeers")
                    .map_or(0, |m| m.values().sum());
                let _ = writeln!(
                    timeline,
                    "{:.1},{deleted},{},{}",
                    at.as_secs_f64(),
                    describes.saturating_sub(describes_before),
                    gone - gone_before
                );
                next_sample += Duration::from_secs(1);
            }
            gone >= gone_before + n
        })
        .await;
    std::fs::write(args.out.join(format!("delete-{tag}.csv")), &timeline)?;
    for line in controller.rss_timeline().lines() {
        let _ = writeln!(rss_timeline, "restart,{line}");
    }
    std::fs::write(args.out.join(format!("rss-{tag}.csv")), &rss_timeline)?;
    anyhow::ensure!(
        all_gone,
        "only {} of {n} deleted after {timeout:?}",
        tracker.gone_count() - gone_before
    );
    let all_deleted_s = tracker.gone_times().last().map_or(0.0, |t| {
        t.saturating_sub(d0.duration_since(t0)).as_secs_f64()
    });
    let c4 = emu.counters();
    let delete = world::calls_between(&c3, &c4);
    let left = emu
        .peers()
        .iter()
        .filter(|p| {
            p.client_token
                .as_deref()
                .is_some_and(|t| t.starts_with("abo-"))
        })
        .count();
    // ---- single objects, one at a time (the fleet's first region, account A)
    let mut single_ready_s = Vec::new();
    for k in 0..args.single {
        let mut obj = match args.topology {
            Topology::Fleet => world::fleet_peer_object(0, &fleet)?,
            Topology::QuotaLayout => world::quota_peer_object(0, &QUOTA_LAYOUT, groups, None)?,
            Topology::Groups => world::peer_object(0, groups)?,
        };
        obj.metadata.name = Some(format!("single-{k:03}"));
        let api: kube::Api<alicloud_bgp_operator::api::BgpPeer> =
            kube::Api::namespaced(client.clone(), &ns);
        let started = Instant::now();
        world::create_object(&api, &obj).await?;
        let ready = tracker
            .wait_until(Duration::from_secs(120), |ready, _| ready > n + k)
            .await;
        anyhow::ensure!(ready, "single object {k} not Ready within 120 s");
        single_ready_s.push(started.elapsed().as_secs_f64());
        let gone_before = tracker.gone_count();
        world::delete_object(&api, &format!("single-{k:03}")).await?;
        let gone = tracker
            .wait_until(Duration::from_secs(120), |_, gone| gone > gone_before)
            .await;
        anyhow::ensure!(gone, "single object {k} not deleted within 120 s");
    }
    let c5 = emu.counters();
    let final_usage = controller.usage()?;
    controller.terminate(Duration::from_secs(20));
    emu.shutdown().await;
    eprintln!(
        "   all deleted after {all_deleted_s:.1} s (all deletes answered after {:.1} s); calls {:?}",
        all_deletes_answered_s.unwrap_or(all_deleted_s),
        by_action(&delete)
    );

    let region_peers = match args.topology {
        Topology::Fleet => world::FLEET_REGIONS
            .iter()
            .enumerate()
            .map(|(r, name)| ((*name).to_owned(), fleet.own_in(r), fleet.foreign_in(r)))
            .collect(),
        _ => Vec::new(),
    };
    let _ = c5;
    let result = RunResult {
        n,
        topology: args.topology.name().into(),
        quota_model: args.quota_model.name().into(),
        region_peers,
        groups,
        account_qps: args.account_qps,
        cloud_qps: args.cloud_qps,
        cloud_burst: args.cloud_burst,
        latency_ms: (args.latency_min_ms, args.latency_max_ms),
        pending_s: args.pending,
        delete_delay_s: args.delete_delay,
        poll_s: args.poll,
        concurrency: args.concurrency,
        load_avg_at_start: load,
        listing_pages: shape.listing_pages,
        floor_s: floor,
        all_created_in_api_s: created_in_api.as_secs_f64(),
        all_created_in_cloud_s: all_created_in_cloud_s.unwrap_or(all_ready_s),
        all_ready_s,
        time_to_ready_count,
        ready_median_s,
        create_calls: by_action(&create),
        create_describe_by_filter: filters_between(&c0, &c1),
        create_codes: by_code(&create),
        throttled_create_phase: world::code_total(&create, "Throttling"),
        controller_seen_throttles,
        restart_calls: by_action(&restart),
        steady_resync_s: args.steady_resync,
        steady_window_s,
        steady_calls: by_action(&steady),
        steady_describe_by_filter: filters_between(&c2, &c3),
        steady_cpu_s,
        delete_floor_s: floor_secs(
            &shape,
            args.quota_model,
            args.account_qps,
            args.delete_delay,
        ),
        all_deleted_s,
        all_deletes_answered_s: all_deletes_answered_s.unwrap_or(all_deleted_s),
        delete_calls: by_action(&delete),
        delete_describe_by_filter: filters_between(&c3, &c4),
        throttled_delete_phase: world::code_total(&delete, "Throttling"),
        emulator_peers_left: left,
        create_peak_rss_kib: create_usage.peak_rss_kib,
        create_cpu_s: create_usage.cpu_secs,
        peak_rss_kib: create_usage.peak_rss_kib.max(final_usage.peak_rss_kib),
        peak_anon_kib: create_usage.peak_anon_kib.max(final_usage.peak_anon_kib),
        peak_file_kib: create_usage.peak_file_kib.max(final_usage.peak_file_kib),
        total_cpu_s: create_usage.cpu_secs + final_usage.cpu_secs,
        single_ready_s,
    };
    Ok(result)
}

fn fmt_calls(calls: &BTreeMap<String, u64>, n: usize) -> String {
    if calls.is_empty() {
        return "none".into();
    }
    calls
        .iter()
        .map(|(a, c)| format!("{a} {:.2}", *c as f64 / n as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How one summary row renders a result.
type Row = Box<dyn Fn(&RunResult) -> String>;

/// The summary table over every result file in `out`.
fn summary(out: &Path) -> anyhow::Result<String> {
    let mut results: Vec<RunResult> = Vec::new();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let is_result = path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("scale-") && f.ends_with(".json"));
        if is_result {
            let r: RunResult = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            // Results of the benchmark before topologies (older schema) are kept as files
            // but not tabled.
            if !r.topology.is_empty() {
                results.push(r);
            }
        }
    }
    results.sort_by(|a, b| {
        (b.topology == "fleet", &a.topology, &a.quota_model, a.n).cmp(&(
            a.topology == "fleet",
            &b.topology,
            &b.quota_model,
            b.n,
        ))
    });
    let mut s = String::new();
    let col = |f: &dyn Fn(&RunResult) -> String| {
        results
            .iter()
            .map(|r| format!(" {} |", f(r)))
            .collect::<String>()
    };
    let _ = writeln!(
        s,
        "| | {}",
        results
            .iter()
            .map(|r| format!(" N = {} {} {} |", r.n, r.topology, r.quota_model))
            .collect::<String>()
    );
    let _ = writeln!(s, "|---|{}", "---|".repeat(results.len()));
    let rows: Vec<(&str, Row)> = vec![
        (
            "groups with our peers / account quota (calls/s) / controller `--cloud-qps` (burst)",
            Box::new(|r| {
                format!(
                    "{} / {} {} / {} ({})",
                    r.groups, r.account_qps, r.quota_model, r.cloud_qps, r.cloud_burst
                )
            }),
        ),
        (
            "peers per region: own + foreign",
            Box::new(|r| {
                if r.region_peers.is_empty() {
                    "one region".to_owned()
                } else {
                    r.region_peers
                        .iter()
                        .map(|(_, own, foreign)| format!("{own}+{foreign}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            }),
        ),
        (
            "floor (largest over accounts of creates and listing pages at the quota, + Pending)",
            Box::new(|r| format!("{:.1} s", r.floor_s)),
        ),
        (
            "all objects in the apiserver",
            Box::new(|r| format!("{:.1} s", r.all_created_in_api_s)),
        ),
        (
            "all created in the cloud (N CreateBgpPeer answered)",
            Box::new(|r| format!("{:.1} s", r.all_created_in_cloud_s)),
        ),
        (
            "half Ready (median)",
            Box::new(|r| format!("{:.1} s", r.ready_median_s)),
        ),
        (
            "**all Ready**",
            Box::new(|r| format!("**{:.1} s**", r.all_ready_s)),
        ),
        (
            "**all Ready / floor** (target ≤ 1.15 at N = 1,000 and 5,000; ≤ 1.3 at N = 100)",
            Box::new(|r| format!("**{:.2}×**", r.all_ready_s / r.floor_s)),
        ),
        (
            "cloud calls per peer until all Ready",
            Box::new(|r| fmt_calls(&r.create_calls, r.n)),
        ),
        (
            "**DescribeBgpPeers per peer until all Ready** (target ≤ 0.10), by filter",
            Box::new(|r| {
                format!(
                    "**{:.3}** ({})",
                    r.per_peer("DescribeBgpPeers"),
                    fmt_calls(&r.create_describe_by_filter, r.n)
                )
            }),
        ),
        (
            "**CreateBgpPeer per peer** (target 1.00)",
            Box::new(|r| format!("**{:.2}**", r.per_peer("CreateBgpPeer"))),
        ),
        (
            "throttling errors (create / delete phase)",
            Box::new(|r| {
                format!(
                    "{} / {}",
                    r.throttled_create_phase, r.throttled_delete_phase
                )
            }),
        ),
        (
            "controller restart: calls for N Ready objects",
            Box::new(|r| format!("{}", r.restart_calls.values().sum::<u64>())),
        ),
        (
            "**steady state: calls per resync period** (measured at resync {r}s; target Σ over regions ⌈peers/50⌉)",
            Box::new(|r| {
                format!(
                    "**{:.1}** (target {}); by filter per period: {}",
                    r.steady_per_period(),
                    r.listing_pages,
                    r.steady_describe_by_filter
                        .iter()
                        .map(|(k, v)| format!(
                            "{k} {:.1}",
                            *v as f64 * r.steady_resync_s as f64 / r.steady_window_s
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        ),
        (
            "**steady state: calls/hour per 1,000 peers at the default 10 min resync**",
            Box::new(|r| format!("**{:.0}**", r.steady_per_hour_per_1000())),
        ),
        (
            "steady state: controller CPU per resync period",
            Box::new(|r| {
                format!(
                    "{:.2} s",
                    r.steady_cpu_s * r.steady_resync_s as f64 / r.steady_window_s
                )
            }),
        ),
        (
            "**controller peak RSS** (target ≤ 64 MiB at N = 10,000)",
            Box::new(|r| format!("**{:.1} MiB**", r.peak_rss_kib as f64 / 1024.0)),
        ),
        (
            "of which, largest sampled: heap and stacks (anonymous) / binary pages (file)",
            Box::new(|r| {
                format!(
                    "{:.1} / {:.1} MiB",
                    r.peak_anon_kib as f64 / 1024.0,
                    r.peak_file_kib as f64 / 1024.0
                )
            }),
        ),
        (
            "controller CPU until all Ready / whole run",
            Box::new(|r| format!("{:.1} s / {:.1} s", r.create_cpu_s, r.total_cpu_s)),
        ),
        (
            "delete floor (as the floor, deletes and the delete delay)",
            Box::new(|r| format!("{:.1} s", r.delete_floor_s)),
        ),
        (
            "**time to delete all**",
            Box::new(|r| {
                format!(
                    "**{:.1} s** ({:.2}× floor)",
                    r.all_deleted_s,
                    r.all_deleted_s / r.delete_floor_s
                )
            }),
        ),
        (
            "cloud calls per peer while deleting (DescribeBgpPeers by filter)",
            Box::new(|r| {
                format!(
                    "{} ({})",
                    fmt_calls(&r.delete_calls, r.n),
                    fmt_calls(&r.delete_describe_by_filter, r.n)
                )
            }),
        ),
        (
            "operator peers left in the cloud",
            Box::new(|r| r.emulator_peers_left.to_string()),
        ),
        (
            "single object applied alone: median time to Ready (tries)",
            Box::new(|r| {
                let mut t = r.single_ready_s.clone();
                t.sort_by(f64::total_cmp);
                match t.get(t.len() / 2) {
                    Some(m) => format!("{m:.1} s ({})", t.len()),
                    None => "not measured".to_owned(),
                }
            }),
        ),
        (
            "load average when the run started (2 cores)",
            Box::new(|r| r.load_avg_at_start.clone()),
        ),
    ];
    for (name, f) in &rows {
        let name = name.replace(
            "{r}",
            &results
                .first()
                .map(|r| r.steady_resync_s.to_string())
                .unwrap_or_default(),
        );
        let _ = writeln!(s, "| {name} |{}", col(f.as_ref()));
    }
    Ok(s)
}

/// Writes `summary.md` over the results in `out` and prints it.
fn write_summary(out: &Path) -> anyhow::Result<()> {
    let table = summary(out)?;
    std::fs::write(out.join("summary.md"), &table)?;
    println!("{table}");
    Ok(())
}

async fn main_async(args: Args) -> anyhow::Result<()> {
    alicloud_bgp_operator::install_crypto_provider();
    if args.summarize {
        return write_summary(&args.out);
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::create_dir_all(&args.work)?;
    let mut own_cp = None;
    let kubeconfig = match &args.kubeconfig {
        Some(k) => k.clone(),
        None => {
            let dir = args.work.join("cp");
            let _ = std::process::Command::new("bash")
                .arg(cluster::repo_root().join("hack/controlplane.sh"))
                .arg("stop")
                .arg(&dir)
                .status();
            let cp = ControlPlane::start(&dir)?;
            let k = cp.kubeconfig().to_path_buf();
            own_cp = Some(cp);
            k
        }
    };
    let client = cluster::client(&kubeconfig).await?;
    cluster::install_crd(&client).await?;
    for &n in &args.n {
        let result = run_one(&args, n, &kubeconfig, &client)
            .await
            .with_context(|| format!("N = {n}"))?;
        std::fs::write(
            args.out.join(format!(
                "scale-{}-{}-n{n}.json",
                args.topology.name(),
                args.quota_model.name()
            )),
            serde_json::to_string_pretty(&result)?,
        )?;
    }
    write_summary(&args.out)?;
    if let Some(mut cp) = own_cp {
        cp.stop();
    }
    Ok(())
}

fn self_check() {
    // 1,000 peers in 4 groups of 250: 5 pages each.
    assert_eq!(listing_pages(1000, 4), 20);
    assert_eq!(listing_pages(101, 4), 4);
    assert_eq!(listing_pages(5000, 4), 100);
    let groups = shape(Topology::Groups, 1000, 4);
    let floor = floor_secs(&groups, QuotaModel::Shared, 20, 3.0);
    assert!((floor - 54.0).abs() < 1e-9, "{floor}");
    let floor = floor_secs(&groups, QuotaModel::PerOperation, 20, 3.0);
    assert!((floor - 53.0).abs() < 1e-9, "{floor}");
    // The fleet at N = 1,000: account A has 667 peers and 9 + 8 region pages; B 333 and 8.
    let fleet = shape(Topology::Fleet, 1000, 0);
    assert_eq!(fleet.listing_pages, 25);
    let floor = floor_secs(&fleet, QuotaModel::Shared, 20, 3.0);
    assert!((floor - (684.0 / 20.0 + 3.0)).abs() < 1e-9, "{floor}");
    let floor = floor_secs(&fleet, QuotaModel::PerOperation, 20, 3.0);
    assert!((floor - (667.0 / 20.0 + 3.0)).abs() < 1e-9, "{floor}");
    world::check_fleet();
    let calls = parse_check();
    assert_eq!(calls, 3);
    readme_table_check();
}

/// The directory whose results the README's "Performance" table shows.
const README_RESULTS: &str = "benches/results/current";
/// Marker lines around that table in README.md.
const README_BEGIN: &str = "<!-- BEGIN generated: cargo bench --bench scale -- --summarize --out benches/results/current -->";
/// See [`README_BEGIN`].
const README_END: &str = "<!-- END generated: bench summary -->";

/// The README's results table is the summary of the results in [`README_RESULTS`], so a
/// number in it is always one a run wrote (regenerate: `cargo bench --bench scale --
/// --summarize --out benches/results/current`, then paste `summary.md` between the markers).
fn readme_table_check() {
    let root = cluster::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find(README_BEGIN)
        .expect("README has the bench-summary begin marker")
        + README_BEGIN.len();
    let end = readme[start..]
        .find(README_END)
        .expect("README has the bench-summary end marker")
        + start;
    let table = summary(&root.join(README_RESULTS)).expect("the README's results summarize");
    assert_eq!(
        readme[start..end].trim(),
        table.trim(),
        "README.md's results table is not the summary of {README_RESULTS}: regenerate it"
    );
}

fn parse_check() -> u64 {
    let text = "alicloud_bgp_operator_cloud_api_calls_total{action=\"CreateBgpPeer\",code=\"Success\"} 3\n";
    harness::controller::parse_cloud_calls(text)
        .get(&("CreateBgpPeer".to_owned(), "Success".to_owned()))
        .copied()
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        self_check();
        println!(
            "scale: arithmetic self-check passed; the benchmark runs with `cargo bench --bench scale` (hack/bench.sh)"
        );
        return Ok(());
    }
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main_async(args))
}
