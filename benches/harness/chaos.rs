//! The crash-chaos scenario: objects are created and a share deleted while the controller
//! process is `kill -9`ed at random moments and restarted, the apiserver is restarted once,
//! the cloud answers 503 to a share of calls for a period and throttles for another. Then
//! everything heals, the run waits for convergence and checks the end state. Every random
//! choice comes from one seeded RNG, so a seed names one schedule.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::{Api, Client};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::emulator::Fault;

use super::cluster::ControlPlane;
use super::controller::{ControllerOpts, ControllerProcess};
use super::invariants::{self, Expected, Verdict};
use super::secs;
use super::world::{self, CloudOpts};

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Objects created.
    pub peers: usize,
    /// Share of them deleted again.
    pub delete_share: f64,
    /// `kill -9` moments.
    pub kills: usize,
    /// Length of the chaos window (creates, deletes, kills, faults happen inside it).
    pub window: Duration,
    /// Restart the apiserver once (needs a control plane of our own).
    pub restart_apiserver: bool,
    /// Share of calls answered with HTTP 503 during the fault period.
    pub fault_share: f64,
    /// Length of the 503 period and of the throttling period.
    pub fault_period: Duration,
    /// The account's API limit during the throttling period.
    pub throttle_qps: u32,
    /// How long the healed system may take to converge.
    pub converge_timeout: Duration,
    /// The emulator.
    pub cloud: CloudOpts,
    /// Controller: `--cloud-qps`, `--cloud-burst`.
    pub cloud_qps: f64,
    /// `--cloud-burst`.
    pub cloud_burst: u32,
    /// `--poll-interval` (s).
    pub poll_secs: u64,
    /// `--resync-period` (s).
    pub resync_secs: u64,
    /// Controller log level.
    pub log_level: String,
}

/// Where a chaos run happens.
pub struct ChaosEnv<'a> {
    /// Admin client.
    pub client: Client,
    /// Its kubeconfig (for the controller process).
    pub kubeconfig: PathBuf,
    /// A fresh namespace.
    pub namespace: String,
    /// Our own control plane, for the apiserver restart.
    pub control_plane: Option<&'a ControlPlane>,
    /// The operator binary.
    pub bin: PathBuf,
    /// Controller log file.
    pub log: PathBuf,
}

/// What happened and what the checks found.
#[derive(Debug, Default)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// `kill -9`s done.
    pub kills: usize,
    /// Controller exits we did not cause (each restarted).
    pub unplanned_exits: usize,
    /// Apiserver restarts done, with their duration.
    pub apiserver_restarts: Vec<Duration>,
    /// Calls answered 503 by the fault rule.
    pub injected_503: u64,
    /// Calls answered Throttling.*.
    pub throttled: u64,
    /// CreateBgpPeer calls answered OK (first creates and ClientToken replays).
    pub create_ok: u64,
    /// All cloud calls.
    pub total_calls: u64,
    /// Chaos window.
    pub window: Duration,
    /// Time from the end of the window until converged (None: not within the timeout).
    pub converged_after: Option<Duration>,
    /// Whole run.
    pub elapsed: Duration,
    /// The checks.
    pub verdict: Verdict,
}

impl ChaosReport {
    /// The results table (markdown).
    pub fn markdown(&self, cfg: &ChaosConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| chaos run | result |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(s, "| seed | {} |", self.seed);
        let _ = writeln!(s, "| chaos window | {} s |", secs(self.window));
        let _ = writeln!(
            s,
            "| controller `kill -9` + restart | {} (plus {} exits on its own, restarted) |",
            self.kills, self.unplanned_exits
        );
        let restarts: Vec<String> = self
            .apiserver_restarts
            .iter()
            .map(|d| format!("{} s", secs(*d)))
            .collect();
        let _ = writeln!(
            s,
            "| apiserver restarts | {} {} |",
            self.apiserver_restarts.len(),
            if restarts.is_empty() {
                String::new()
            } else {
                format!("(down-to-ready {})", restarts.join(", "))
            }
        );
        let _ = writeln!(
            s,
            "| 503 period: {} s at {:.0} % of calls | {} calls answered 503 |",
            secs(cfg.fault_period),
            cfg.fault_share * 100.0,
            self.injected_503
        );
        let _ = writeln!(
            s,
            "| throttling period: {} s at {} calls/s (controller at {}) | {} calls answered Throttling |",
            secs(cfg.fault_period),
            cfg.throttle_qps,
            cfg.cloud_qps,
            self.throttled
        );
        let _ = writeln!(
            s,
            "| CreateBgpPeer answered OK (first creates + token replays) | {} |",
            self.create_ok
        );
        let _ = writeln!(s, "| cloud calls in all | {} |", self.total_calls);
        let _ = writeln!(
            s,
            "| converged after the window | {} |",
            self.converged_after
                .map(|d| format!("{} s", secs(d)))
                .unwrap_or_else(|| format!("**not within {} s**", secs(cfg.converge_timeout)))
        );
        s.push_str(&self.verdict.markdown_rows());
        let _ = writeln!(s, "| whole run | {} s |", secs(self.elapsed));
        let _ = writeln!(
            s,
            "| **verdict** | {} |",
            if self.ok() { "PASS" } else { "**FAIL**" }
        );
        s
    }

    /// True when the end state is correct and was reached in time.
    pub fn ok(&self) -> bool {
        self.verdict.ok() && self.converged_after.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Create(usize),
    Delete(usize),
    Kill { downtime: Duration },
    RestartApiserver,
    FaultsOn,
    FaultsOff,
    ThrottleOn,
    ThrottleOff,
}

/// The seeded schedule: (time into the window, step), sorted.
fn schedule(cfg: &ChaosConfig) -> Vec<(Duration, Step)> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let w = cfg.window.as_secs_f64();
    let at = |f: f64| Duration::from_secs_f64(f.max(0.0));
    let mut steps = Vec::new();
    // Creates over the first 60 % of the window.
    let created: Vec<f64> = (0..cfg.peers)
        .map(|_| rng.random_range(0.0..0.6 * w))
        .collect();
    for (i, t) in created.iter().enumerate() {
        steps.push((at(*t), Step::Create(i)));
    }
    // Deletes: a third right behind the create (racing the cloud create), the rest later.
    let n_delete = ((cfg.peers as f64) * cfg.delete_share).round() as usize;
    for i in sample(&mut rng, cfg.peers, n_delete.min(cfg.peers)).into_iter() {
        let t0 = created[i];
        let t = if rng.random_bool(1.0 / 3.0) {
            t0 + rng.random_range(0.0..1.0)
        } else {
            rng.random_range(t0 + 1.0..(0.9 * w).max(t0 + 1.5))
        };
        steps.push((at(t), Step::Delete(i)));
    }
    for _ in 0..cfg.kills {
        let t = rng.random_range(0.0..w);
        let downtime = Duration::from_millis(rng.random_range(0..1500));
        steps.push((at(t), Step::Kill { downtime }));
    }
    let period = cfg.fault_period.as_secs_f64();
    let f0 = rng.random_range(0.1 * w..(0.45 * w - period).max(0.1 * w + 0.1));
    steps.push((at(f0), Step::FaultsOn));
    steps.push((at(f0 + period), Step::FaultsOff));
    let t0 = rng.random_range(0.5 * w..(0.95 * w - period).max(0.5 * w + 0.1));
    steps.push((at(t0), Step::ThrottleOn));
    steps.push((at(t0 + period), Step::ThrottleOff));
    if cfg.restart_apiserver {
        steps.push((
            at(rng.random_range(0.2 * w..0.8 * w)),
            Step::RestartApiserver,
        ));
    }
    steps.sort_by_key(|s| s.0);
    steps
}

/// Runs the scenario in `env` and checks the end state.
pub async fn run(cfg: &ChaosConfig, env: ChaosEnv<'_>) -> anyhow::Result<ChaosReport> {
    let run_started = Instant::now();
    let mut report = ChaosReport {
        seed: cfg.seed,
        window: cfg.window,
        ..ChaosReport::default()
    };
    let emu = world::start_emulator(&cfg.cloud).await?;
    let opts = ControllerOpts {
        bin: env.bin.clone(),
        kubeconfig: env.kubeconfig.clone(),
        endpoint: emu.endpoint(),
        namespace: env.namespace.clone(),
        cloud_qps: cfg.cloud_qps,
        cloud_burst: cfg.cloud_burst,
        resync_secs: cfg.resync_secs,
        poll_secs: cfg.poll_secs,
        concurrency: 16,
        log: env.log.clone(),
        log_level: cfg.log_level.clone(),
    };
    let mut controller = ControllerProcess::spawn(&opts)?;
    controller.wait_ready(Duration::from_secs(60)).await?;

    let steps = schedule(cfg);
    let api: Arc<Api<BgpPeer>> = Arc::new(Api::namespaced(env.client.clone(), &env.namespace));
    let uids: Arc<Mutex<BTreeMap<usize, (String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut deleted = vec![false; cfg.peers];
    let mut restart_task = None;
    let start = Instant::now();
    eprintln!(
        "chaos: seed {} — {} creates, {} deletes, {} kills in a {} s window",
        cfg.seed,
        cfg.peers,
        steps
            .iter()
            .filter(|s| matches!(s.1, Step::Delete(_)))
            .count(),
        cfg.kills,
        secs(cfg.window)
    );
    for (t, step) in steps {
        // Sleep until the step is due, restarting a controller that exited on its own.
        while start.elapsed() < t {
            if !controller.is_running() {
                report.unplanned_exits += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                controller = ControllerProcess::spawn(&opts)?;
            }
            let left = t.saturating_sub(start.elapsed());
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
        match step {
            Step::Create(i) => {
                let api = api.clone();
                let uids = uids.clone();
                let obj = world::peer_object(i, cfg.cloud.groups)?;
                tasks.push(tokio::spawn(async move {
                    let (name, uid) = world::create_object(&api, &obj).await?;
                    if let Ok(mut m) = uids.lock() {
                        m.insert(i, (name, uid));
                    }
                    anyhow::Ok(())
                }));
            }
            Step::Delete(i) => {
                deleted[i] = true;
                let api = api.clone();
                let uids = uids.clone();
                tasks.push(tokio::spawn(async move {
                    // Wait for our own create to have been accepted.
                    let name = loop {
                        if let Some((name, _)) = uids.lock().ok().and_then(|m| m.get(&i).cloned()) {
                            break name;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    world::delete_object(&api, &name).await
                }));
            }
            Step::Kill { downtime } => {
                controller.kill9();
                report.kills += 1;
                tokio::time::sleep(downtime).await;
                controller = ControllerProcess::spawn(&opts)?;
            }
            Step::RestartApiserver => {
                if let Some(cp) = env.control_plane {
                    let dir = cp.dir().to_path_buf();
                    eprintln!(
                        "chaos: t={} s restarting the apiserver",
                        secs(start.elapsed())
                    );
                    restart_task = Some(tokio::task::spawn_blocking(move || {
                        super::cluster::restart_apiserver(&dir)
                    }));
                }
            }
            Step::FaultsOn => {
                emu.try_inject_fault(
                    Fault::http_status("*", 503).with_probability(cfg.fault_share),
                )?;
                eprintln!("chaos: t={} s 503 period starts", secs(start.elapsed()));
            }
            Step::FaultsOff => {
                emu.clear_faults();
                eprintln!("chaos: t={} s 503 period ends", secs(start.elapsed()));
            }
            Step::ThrottleOn => {
                let q = cfg.throttle_qps;
                emu.update_config(|c| c.qps_per_key = Some(q));
                eprintln!(
                    "chaos: t={} s throttling period starts",
                    secs(start.elapsed())
                );
            }
            Step::ThrottleOff => {
                let q = cfg.cloud.account_qps;
                emu.update_config(|c| c.qps_per_key = q);
                eprintln!(
                    "chaos: t={} s throttling period ends",
                    secs(start.elapsed())
                );
            }
        }
    }
    for task in tasks {
        task.await.context("create/delete task")??;
    }
    if let Some(task) = restart_task {
        report
            .apiserver_restarts
            .push(task.await.context("apiserver restart")??);
    }
    // Heal: no faults, the account limit back, a running controller.
    emu.clear_faults();
    let q = cfg.cloud.account_qps;
    emu.update_config(|c| c.qps_per_key = q);
    if !controller.is_running() {
        report.unplanned_exits += 1;
        controller = ControllerProcess::spawn(&opts)?;
    }
    let window_end = Instant::now();
    eprintln!(
        "chaos: window over after {} s ({} kills); waiting for convergence",
        secs(start.elapsed()),
        report.kills
    );

    let names = uids.lock().map(|m| m.clone()).unwrap_or_default();
    let expected: Vec<Expected> = names
        .iter()
        .map(|(i, (name, uid))| Expected {
            name: name.clone(),
            uid: uid.clone(),
            deleted: deleted[*i],
        })
        .collect();
    anyhow::ensure!(
        expected.len() == cfg.peers,
        "only {} of {} objects were created",
        expected.len(),
        cfg.peers
    );
    let deadline = window_end + cfg.converge_timeout;
    let mut objects;
    loop {
        if !controller.is_running() {
            report.unplanned_exits += 1;
            controller = ControllerProcess::spawn(&opts)?;
        }
        objects = invariants::list_objects(&env.client, &env.namespace).await?;
        if invariants::converged(&expected, &objects) {
            report.converged_after = Some(window_end.elapsed());
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A moment for anything still in flight to land before the cloud is inspected.
    tokio::time::sleep(Duration::from_secs(2)).await;
    objects = invariants::list_objects(&env.client, &env.namespace).await?;
    let foreign = cfg.cloud.groups * cfg.cloud.foreign_peers_per_group;
    report.verdict = invariants::check(&expected, &objects, &emu.peers(), foreign);
    let counters = emu.counters();
    report.total_calls = counters.total;
    report.injected_503 = counters.by_code.get("HTTP503").copied().unwrap_or(0);
    report.throttled = counters
        .by_code
        .iter()
        .filter(|(c, _)| c.starts_with("Throttling"))
        .map(|(_, n)| n)
        .sum();
    report.create_ok = counters
        .by_action_code
        .get("CreateBgpPeer")
        .and_then(|c| c.get("OK"))
        .copied()
        .unwrap_or(0);
    controller.terminate(Duration::from_secs(15));
    emu.shutdown().await;
    report.elapsed = run_started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> ChaosConfig {
        ChaosConfig {
            seed,
            peers: 50,
            delete_share: 0.3,
            kills: 10,
            window: Duration::from_secs(60),
            restart_apiserver: true,
            fault_share: 0.3,
            fault_period: Duration::from_secs(10),
            throttle_qps: 5,
            converge_timeout: Duration::from_secs(60),
            cloud: CloudOpts {
                groups: 3,
                pending: Duration::from_secs(1),
                delete_delay: Duration::from_secs(1),
                latency: (Duration::ZERO, Duration::ZERO),
                account_qps: Some(50),
                foreign_peers_per_group: 45,
            },
            cloud_qps: 40.0,
            cloud_burst: 10,
            poll_secs: 1,
            resync_secs: 30,
            log_level: "info".into(),
        }
    }

    #[test]
    fn a_seed_names_one_schedule() {
        assert_eq!(schedule(&cfg(7)), schedule(&cfg(7)));
        assert_ne!(schedule(&cfg(7)), schedule(&cfg(8)));
    }
}
