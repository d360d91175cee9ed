//! The crash-chaos scenario: objects are created and a share deleted while the controller
//! process is `kill -9`ed at random moments and restarted, the apiserver is restarted once,
//! the cloud answers 503 to a share of calls for a period and throttles for another. The
//! cloud has a read-after-write lag for the whole run (a new peer is invisible to
//! DescribeBgpPeers for a few seconds) and the documented 8-peers-per-VBR quota (the objects
//! are spread over enough VBRs, each with its peering subnet). For part of the window a
//! second controller process runs at the same time as the first (no leader election, same
//! namespace and account: the mistake issue 12 item 11 says must still converge). A subset of
//! the objects uses `spec.credentialsSecretRef`; its Secret is switched from account A's keys
//! to account B's for a while (those objects must go `Stalled`/`AccountMismatch`, create
//! nothing in account B, and hold their finalizers) and back. Then everything heals, the run
//! waits for convergence and checks the end state. Every random choice comes from one seeded
//! RNG, so a seed names one schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::{Api, Client, ResourceExt};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::api::conditions::{reasons, types};
use alicloud_bgp_operator::emulator::config::{DEMO_ACCOUNT_UID, EmulatorConfig};
use alicloud_bgp_operator::emulator::throttle::QuotaModel;
use alicloud_bgp_operator::emulator::{EmulatorHandle, Fault};

use super::cluster::ControlPlane;
use super::controller::{ControllerOpts, ControllerProcess};
use super::invariants::{self, Expected, Verdict};
use super::secs;
use super::world::{self, CloudOpts, VbrLayout};

/// The Secret the credentials-switch objects name (on the fleet: those of account A).
pub const SWITCH_SECRET: &str = "chaos-credentials";
/// On the fleet, the Secret account B's credentials-switch objects name.
pub const SWITCH_SECRET_B: &str = "chaos-credentials-b";

/// Where the objects go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChaosTopology {
    /// One region and one account: `VbrLayout` groups per VBR under the 8-peer quota, each
    /// with our peers and other owners' (the chaos run's topology before issue 18).
    QuotaLayout(VbrLayout),
    /// Issue 18's fleet ([`world::Fleet::new`] of the run's objects): groups of 4 on a VBR
    /// each under the 8-peer quota, 3 regions, account A (the operator-wide key) in two and
    /// account B (per-object credentials Secrets) in the third, 20 % other owners' peers in
    /// every region.
    Fleet,
}

/// How the emulated cloud limits calls (at `CloudOpts::account_qps`, and at `throttle_qps`
/// during the throttling period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudLimit {
    /// One token bucket per access key for all operations (the emulator's `qps_per_key`).
    PerKey,
    /// Quota Center's model (`api_quotas`): every operation of every account has its own
    /// quota, all regions together.
    PerOperation,
}

impl CloudLimit {
    /// Sets the emulator's limit to `qps` calls/s (None: unlimited).
    pub fn apply(self, c: &mut EmulatorConfig, qps: Option<u32>) {
        match self {
            Self::PerKey => {
                c.qps_per_key = qps;
                c.api_quotas.clear();
            }
            Self::PerOperation => {
                c.qps_per_key = None;
                c.api_quotas = qps
                    .map(|q| vec![world::quota_rule(QuotaModel::PerOperation, q)])
                    .unwrap_or_default();
            }
        }
    }

    /// "per access key" or "per operation and account".
    pub fn describe(self) -> &'static str {
        match self {
            Self::PerKey => "per access key",
            Self::PerOperation => "per operation and account",
        }
    }
}

/// A credentials Secret of the switch: the keys it holds (`own`, of the account its objects'
/// peers are in) and the other account's it is switched to (`other`: a key nothing else uses,
/// so every write with it is a violation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchSecret {
    /// Secret name.
    pub name: &'static str,
    /// (access key id, secret) it holds normally.
    pub own: (&'static str, &'static str),
    /// (access key id, secret) of the other account, held during the switch.
    pub other: (&'static str, &'static str),
}

const A_SECRET_KEY: (&str, &str) = (
    world::ACCOUNT_A_SECRET_KEY_ID,
    world::ACCOUNT_A_SECRET_KEY_SECRET,
);
const B_KEY: (&str, &str) = (world::ACCOUNT_B_KEY_ID, world::ACCOUNT_B_KEY_SECRET);

impl ChaosTopology {
    /// `quota-layout` or `fleet`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::QuotaLayout(_) => "quota-layout",
            Self::Fleet => "fleet",
        }
    }

    /// Groups holding our objects.
    pub fn groups(&self, peers: usize) -> usize {
        match self {
            Self::QuotaLayout(layout) => layout.groups(peers),
            Self::Fleet => world::Fleet::new(peers).own_groups(),
        }
    }

    /// VBRs of the topology (ours and other owners').
    pub fn vbrs(&self, peers: usize) -> usize {
        match self {
            Self::QuotaLayout(layout) => layout.vbrs(layout.groups(peers)),
            Self::Fleet => world::Fleet::new(peers).total_groups(),
        }
    }

    /// Other owners' peers seeded in the cloud.
    pub fn foreign(&self, peers: usize) -> usize {
        match self {
            Self::QuotaLayout(layout) => layout.groups(peers) * layout.foreign_per_group,
            Self::Fleet => world::Fleet::new(peers).foreign_total(),
        }
    }

    /// The credentials Secrets of the switch: on one account, one (account A's second key,
    /// switched to account B's); on the fleet, one per account (A's objects: A's second key,
    /// switched to a second key of B; B's objects: B's key, switched to a third key of A).
    pub fn switch_secrets(&self) -> Vec<SwitchSecret> {
        match self {
            Self::QuotaLayout(_) => vec![SwitchSecret {
                name: SWITCH_SECRET,
                own: A_SECRET_KEY,
                other: B_KEY,
            }],
            Self::Fleet => vec![
                SwitchSecret {
                    name: SWITCH_SECRET,
                    own: A_SECRET_KEY,
                    other: (
                        world::ACCOUNT_B_SWITCH_KEY_ID,
                        world::ACCOUNT_B_SWITCH_KEY_SECRET,
                    ),
                },
                SwitchSecret {
                    name: SWITCH_SECRET_B,
                    own: B_KEY,
                    other: (
                        world::ACCOUNT_A_SWITCH_KEY_ID,
                        world::ACCOUNT_A_SWITCH_KEY_SECRET,
                    ),
                },
            ],
        }
    }

    /// The switch Secret object `i` names when it is a credentials-switch object: the one of
    /// the account its region belongs to.
    pub fn switch_secret_of(&self, i: usize, peers: usize) -> &'static str {
        match self {
            Self::QuotaLayout(_) => SWITCH_SECRET,
            Self::Fleet => {
                let region = world::Fleet::new(peers).place(i).region;
                if world::Fleet::is_account_b(region) {
                    SWITCH_SECRET_B
                } else {
                    SWITCH_SECRET
                }
            }
        }
    }

    /// The emulator of a run with `peers` objects: the topology, account A's second key and
    /// account B (on the fleet also the switch keys nothing else uses). The limit is set by
    /// [`CloudLimit::apply`].
    pub fn emulator_config(
        &self,
        cloud: &CloudOpts,
        peers: usize,
    ) -> anyhow::Result<EmulatorConfig> {
        match self {
            Self::QuotaLayout(layout) => {
                world::quota_emulator_config(cloud, layout, layout.groups(peers))
            }
            Self::Fleet => {
                let mut c = world::fleet_emulator_config(cloud, &world::Fleet::new(peers))?;
                for (uid, (id, secret)) in [
                    (DEMO_ACCOUNT_UID, A_SECRET_KEY),
                    (
                        DEMO_ACCOUNT_UID,
                        (
                            world::ACCOUNT_A_SWITCH_KEY_ID,
                            world::ACCOUNT_A_SWITCH_KEY_SECRET,
                        ),
                    ),
                    (
                        world::ACCOUNT_B_UID,
                        (
                            world::ACCOUNT_B_SWITCH_KEY_ID,
                            world::ACCOUNT_B_SWITCH_KEY_SECRET,
                        ),
                    ),
                ] {
                    world::add_account_key(&mut c, uid, id, secret)?;
                }
                c.validate()?;
                Ok(c)
            }
        }
    }

    /// Object `i` of a run with `peers` objects; a credentials-switch object names its
    /// [`Self::switch_secret_of`].
    pub fn object(&self, i: usize, peers: usize, switch: bool) -> anyhow::Result<BgpPeer> {
        let secret = switch.then(|| self.switch_secret_of(i, peers));
        match self {
            Self::QuotaLayout(layout) => {
                world::quota_peer_object(i, layout, layout.groups(peers), secret)
            }
            Self::Fleet => world::fleet_peer_object_with(i, &world::Fleet::new(peers), secret),
        }
    }

    /// One line on the topology (results table).
    pub fn describe(&self, peers: usize) -> String {
        match self {
            Self::QuotaLayout(layout) => format!(
                "one region and account, {} groups on {} VBRs at the 8-peer quota (per group {} of ours + {} other owners')",
                self.groups(peers),
                self.vbrs(peers),
                layout.slots_per_group,
                layout.foreign_per_group
            ),
            Self::Fleet => {
                let fleet = world::Fleet::new(peers);
                let regions: Vec<String> = world::FLEET_REGIONS
                    .iter()
                    .enumerate()
                    .map(|(r, name)| {
                        format!(
                            "{name} (account {}) {} + {}",
                            if world::Fleet::is_account_b(r) {
                                "B by Secret"
                            } else {
                                "A"
                            },
                            fleet.own_in(r),
                            fleet.foreign_in(r)
                        )
                    })
                    .collect();
                format!(
                    "fleet: {} groups of ≤ {} on a VBR each at the 8-peer quota, {} VBRs in all; own + other owners' peers per region: {}",
                    fleet.own_groups(),
                    fleet.per_group,
                    fleet.total_groups(),
                    regions.join(", ")
                )
            }
        }
    }
}

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
    /// The emulator (its `groups` and `foreign_peers_per_group` are not used: `topology`
    /// places the objects; `account_qps` is the limit of kind `limit`).
    pub cloud: CloudOpts,
    /// Where the objects go (under the real 8-peer quota).
    pub topology: ChaosTopology,
    /// How the cloud limits calls.
    pub limit: CloudLimit,
    /// Read-after-write lag of the cloud for the whole run (`visibility_lag`).
    pub visibility_lag: Duration,
    /// Share of the window during which a second controller process runs next to the first
    /// (0: never).
    pub second_controller_share: f64,
    /// Objects that use `spec.credentialsSecretRef` (created early in the window).
    pub switch_objects: usize,
    /// How long their Secret holds account B's keys.
    pub switch_period: Duration,
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
    /// The second controller: how long it ran at the same time as the first.
    pub second_controller: Option<Duration>,
    /// Exits of the second controller on its own (each restarted while it was due to run).
    pub second_controller_exits: usize,
    /// The credentials switch.
    pub switch: SwitchReport,
    /// Whole run.
    pub elapsed: Duration,
    /// The checks.
    pub verdict: Verdict,
}

/// What the credentials switch did and what was seen during it.
#[derive(Debug, Default)]
pub struct SwitchReport {
    /// Objects naming a switched Secret.
    pub objects: usize,
    /// Of them, account B's (fleet).
    pub objects_b: usize,
    /// How long the Secret held account B's keys (None: the switch did not happen).
    pub switched_for: Option<Duration>,
    /// Of them, present and not being deleted when the Secret was switched.
    pub live_at_switch: usize,
    /// Wait before the switch until every such object recorded its account.
    pub waited_before: Duration,
    /// Those objects seen `Stalled`/`AccountMismatch` while switched.
    pub mismatch_objects: usize,
    /// Of them, account B's (fleet).
    pub mismatch_objects_b: usize,
    /// Observations of that (object × poll of the namespace, about one per second).
    pub mismatch_observations: u64,
    /// Of those objects, deletions requested while switched.
    pub deletes_during: usize,
    /// Of which still present (finalizer held) when the Secret was switched back.
    pub held: usize,
    /// Deleted while switched and released before the switch back (a violation).
    pub released: Vec<String>,
    /// Creates, modifications and deletions sent with the other account's key a switch
    /// Secret held (must be 0).
    pub b_writes: u64,
    /// All calls with those keys (GetCallerIdentity, reads).
    pub b_calls: u64,
    /// Calls with the switch Secrets' own keys (on the fleet, account B's other objects share
    /// B's).
    pub a_secret_calls: u64,
}

impl SwitchReport {
    /// True when nothing was written with the other account's keys, nothing released with
    /// them, and the switch was exercised in every account that has switch objects (objects
    /// were seen refusing).
    pub fn ok(&self) -> bool {
        let objects_a = self.objects - self.objects_b;
        let mismatch_a = self.mismatch_objects - self.mismatch_objects_b;
        self.b_writes == 0
            && self.released.is_empty()
            && (self.objects == 0 || self.switched_for.is_some())
            && (objects_a == 0 || mismatch_a > 0)
            && (self.objects_b == 0 || self.mismatch_objects_b > 0)
    }
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
            "| throttling period: {} s at {} calls/s {} (else {}; controller --cloud-qps {}) | {} calls answered Throttling |",
            secs(cfg.fault_period),
            cfg.throttle_qps,
            cfg.limit.describe(),
            cfg.cloud
                .account_qps
                .map_or_else(|| "unlimited".to_owned(), |q| format!("{q}/s")),
            cfg.cloud_qps,
            self.throttled
        );
        let _ = writeln!(
            s,
            "| read-after-write lag (new peer hidden from DescribeBgpPeers) | {} s, whole run |",
            secs(cfg.visibility_lag)
        );
        let _ = writeln!(s, "| topology | {} |", cfg.topology.describe(cfg.peers));
        let _ = writeln!(
            s,
            "| second controller at the same time (no leader election) | {} |",
            match self.second_controller {
                Some(d) => format!(
                    "{} s ({} exits on its own)",
                    secs(d),
                    self.second_controller_exits
                ),
                None => "not run".to_owned(),
            }
        );
        let w = &self.switch;
        let _ = writeln!(
            s,
            "| credentials switch to the other account's keys and back | {} objects{}, {} (waited {} s for accounts recorded) |",
            w.objects,
            match cfg.topology {
                ChaosTopology::Fleet => format!(
                    " ({} of account A → B, {} of account B → A)",
                    w.objects - w.objects_b,
                    w.objects_b
                ),
                ChaosTopology::QuotaLayout(_) => String::new(),
            },
            w.switched_for
                .map(|d| format!("{} s on the other account's keys", secs(d)))
                .unwrap_or_else(|| "**not switched**".to_owned()),
            secs(w.waited_before)
        );
        let _ = writeln!(
            s,
            "| AccountMismatch seen during the switch | {} of {} objects{} ({} live at the switch), {} observations |",
            w.mismatch_objects,
            w.objects,
            if w.objects_b > 0 {
                format!(" ({} of account B's {})", w.mismatch_objects_b, w.objects_b)
            } else {
                String::new()
            },
            w.live_at_switch,
            w.mismatch_observations
        );
        let released = if w.released.is_empty() {
            "0".to_owned()
        } else {
            format!("**{}** ({})", w.released.len(), w.released.join(", "))
        };
        let _ = writeln!(
            s,
            "| their deletions during the switch: held until switched back / released | {} of {} / {} |",
            w.held, w.deletes_during, released
        );
        let _ = writeln!(
            s,
            "| writes (Create/Modify/Delete) with the switched-to account's keys | {} ({} calls in all with them; {} with the Secrets' own keys) |",
            if w.b_writes == 0 {
                "0".to_owned()
            } else {
                format!("**{}**", w.b_writes)
            },
            w.b_calls,
            w.a_secret_calls
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
        self.verdict.ok() && self.converged_after.is_some() && self.switch.ok()
    }
}

impl ChaosConfig {
    /// Groups the objects are spread over.
    pub fn groups(&self) -> usize {
        self.topology.groups(self.peers)
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
    SecondOn,
    SecondOff,
    SwitchToB,
    SwitchToA,
}

/// The seeded plan of a run.
#[derive(Debug, PartialEq)]
struct Plan {
    /// (time into the window, step), sorted.
    steps: Vec<(Duration, Step)>,
    /// Objects naming the credentials Secret.
    switch_objects: BTreeSet<usize>,
}

/// The seeded schedule.
fn schedule(cfg: &ChaosConfig) -> Plan {
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
    let delete_sample: BTreeSet<usize> = sample(&mut rng, cfg.peers, n_delete.min(cfg.peers))
        .into_iter()
        .collect();
    for &i in &delete_sample {
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
    // While the creates go on (the first 60 % of the window), where calls are densest: after
    // them the operator's calls can be too few and too spread for the lowered quota to bite.
    let t0 = rng.random_range(0.25 * w..(0.6 * w - period).max(0.25 * w + 0.1));
    steps.push((at(t0), Step::ThrottleOn));
    steps.push((at(t0 + period), Step::ThrottleOff));
    if cfg.restart_apiserver {
        steps.push((
            at(rng.random_range(0.2 * w..0.8 * w)),
            Step::RestartApiserver,
        ));
    }
    // A second controller next to the first for a share of the window.
    if cfg.second_controller_share > 0.0 {
        let len = cfg.second_controller_share.min(0.8) * w;
        let on = rng.random_range(0.1 * w..(0.9 * w - len).max(0.1 * w + 0.1));
        steps.push((at(on), Step::SecondOn));
        steps.push((at(on + len), Step::SecondOff));
    }
    // The credentials switch: objects created in the first 30 % of the window name the
    // Secret; it holds account B's keys from 40-50 % of the window for `switch_period`; a
    // third of those objects not deleted otherwise is deleted while it does.
    let mut switch_objects = BTreeSet::new();
    if cfg.switch_objects > 0 {
        let early: Vec<usize> = (0..cfg.peers).filter(|&i| created[i] < 0.3 * w).collect();
        // Each switch Secret (on the fleet, one per account) gets its share of the objects,
        // so every account's switch is exercised.
        let mut by_secret: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &early {
            by_secret
                .entry(cfg.topology.switch_secret_of(i, cfg.peers))
                .or_default()
                .push(i);
        }
        let n = cfg.switch_objects.min(early.len());
        let mut left = n;
        let last = by_secret.len().saturating_sub(1);
        for (k, candidates) in by_secret.values().enumerate() {
            let share = if k == last {
                left
            } else {
                (n * candidates.len()).div_ceil(early.len().max(1))
            }
            .min(left)
            .min(candidates.len());
            left -= share;
            switch_objects.extend(
                sample(&mut rng, candidates.len(), share)
                    .into_iter()
                    .map(|j| candidates[j]),
            );
        }
        let period = cfg.switch_period.as_secs_f64().min(0.45 * w);
        let on = rng.random_range(0.4 * w..0.5 * w);
        steps.push((at(on), Step::SwitchToB));
        steps.push((at(on + period), Step::SwitchToA));
        let spare: Vec<usize> = switch_objects
            .iter()
            .copied()
            .filter(|i| !delete_sample.contains(i))
            .collect();
        let n_during = spare.len().div_ceil(3);
        for k in sample(&mut rng, spare.len(), n_during).into_iter() {
            let t = rng.random_range(on + 0.1 * period..on + 0.8 * period);
            steps.push((at(t), Step::Delete(spare[k])));
        }
    }
    steps.sort_by_key(|s| s.0);
    Plan {
        steps,
        switch_objects,
    }
}

/// The credentials switch while it lasts: since when, and the task watching for
/// `AccountMismatch`.
struct Switched {
    since: Instant,
    stop: Arc<AtomicBool>,
    monitor: tokio::task::JoinHandle<(BTreeSet<String>, u64)>,
}

/// True when the object reports `Stalled=True` with reason `AccountMismatch`.
fn account_mismatch(obj: &BgpPeer) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == types::STALLED && c.status == "True" && c.reason == reasons::ACCOUNT_MISMATCH
        })
    })
}

/// Polls the namespace about once a second until stopped; counts the `names` seen with
/// [`account_mismatch`].
fn watch_mismatch(
    api: Arc<Api<BgpPeer>>,
    names: BTreeSet<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(BTreeSet<String>, u64)> {
    tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        let mut observations = 0;
        while !stop.load(Ordering::SeqCst) {
            if let Ok(list) = api.list(&Default::default()).await {
                for obj in list.items {
                    let name = obj.name_any();
                    if names.contains(&name) && account_mismatch(&obj) {
                        observations += 1;
                        seen.insert(name);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        (seen, observations)
    })
}

/// Calls with the access keys `keys`: (all, Create/Modify/Delete).
fn key_calls<'a>(emu: &EmulatorHandle, keys: impl IntoIterator<Item = &'a str>) -> (u64, u64) {
    let counters = emu.counters();
    let mut out = (0, 0);
    for key in keys {
        let Some(k) = counters.by_access_key.get(key) else {
            continue;
        };
        out.0 += k.total;
        out.1 += ["CreateBgpPeer", "ModifyBgpPeerAttribute", "DeleteBgpPeer"]
            .iter()
            .map(|a| k.by_action.get(*a).copied().unwrap_or(0))
            .sum::<u64>();
    }
    out
}

/// Writes every switch Secret with its own keys (`other` false) or the other account's.
async fn put_switch_secrets(
    env: &ChaosEnv<'_>,
    secrets: &[SwitchSecret],
    other: bool,
) -> anyhow::Result<()> {
    for s in secrets {
        let (id, secret) = if other { s.other } else { s.own };
        world::put_credentials_secret(&env.client, &env.namespace, s.name, id, secret).await?;
    }
    Ok(())
}

/// Runs the scenario in `env` and checks the end state.
pub async fn run(cfg: &ChaosConfig, env: ChaosEnv<'_>) -> anyhow::Result<ChaosReport> {
    let run_started = Instant::now();
    let mut report = ChaosReport {
        seed: cfg.seed,
        window: cfg.window,
        ..ChaosReport::default()
    };
    let groups = cfg.groups();
    let mut emu_cfg = cfg.topology.emulator_config(&cfg.cloud, cfg.peers)?;
    emu_cfg.visibility_lag = cfg.visibility_lag;
    cfg.limit.apply(&mut emu_cfg, cfg.cloud.account_qps);
    let emu =
        alicloud_bgp_operator::emulator::server::start(emu_cfg, "127.0.0.1:0".parse()?).await?;
    let plan = schedule(cfg);
    let switch_secrets = cfg.topology.switch_secrets();
    report.switch.objects = plan.switch_objects.len();
    report.switch.objects_b = plan
        .switch_objects
        .iter()
        .filter(|i| cfg.topology.switch_secret_of(**i, cfg.peers) == SWITCH_SECRET_B)
        .count();
    if !plan.switch_objects.is_empty() {
        put_switch_secrets(&env, &switch_secrets, false).await?;
    }
    if cfg.topology == ChaosTopology::Fleet {
        world::put_credentials_secret(
            &env.client,
            &env.namespace,
            world::ACCOUNT_B_SECRET,
            world::ACCOUNT_B_KEY_ID,
            world::ACCOUNT_B_KEY_SECRET,
        )
        .await?;
    }
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
        extra_args: Vec::new(),
    };
    // The second controller: same namespace, selector and account, its own log.
    let opts2 = ControllerOpts {
        log: env.log.with_extension("second.log"),
        ..opts.clone()
    };
    let mut controller = ControllerProcess::spawn(&opts)?;
    controller.wait_ready(Duration::from_secs(60)).await?;
    let mut second: Option<ControllerProcess> = None;
    let mut second_since: Option<Instant> = None;
    let mut switched: Option<Switched> = None;
    let mut deleted_during: Vec<usize> = Vec::new();

    let steps = plan.steps;
    let api: Arc<Api<BgpPeer>> = Arc::new(Api::namespaced(env.client.clone(), &env.namespace));
    let uids: Arc<Mutex<BTreeMap<usize, (String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut deleted = vec![false; cfg.peers];
    let mut restart_task = None;
    let start = Instant::now();
    eprintln!(
        "chaos: seed {} — {} creates, {} deletes, {} kills in a {} s window; {} topology, {} groups on {} VBRs, lag {} s, {} objects on the credentials Secrets",
        cfg.seed,
        cfg.peers,
        steps
            .iter()
            .filter(|s| matches!(s.1, Step::Delete(_)))
            .count(),
        cfg.kills,
        secs(cfg.window),
        cfg.topology.name(),
        groups,
        cfg.topology.vbrs(cfg.peers),
        secs(cfg.visibility_lag),
        plan.switch_objects.len()
    );
    for (t, step) in steps {
        // Sleep until the step is due, restarting a controller that exited on its own.
        while start.elapsed() < t {
            if !controller.is_running() {
                report.unplanned_exits += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                controller = ControllerProcess::spawn(&opts)?;
            }
            if let Some(c) = second.as_mut()
                && !c.is_running()
            {
                report.second_controller_exits += 1;
                *c = ControllerProcess::spawn(&opts2)?;
            }
            let left = t.saturating_sub(start.elapsed());
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
        match step {
            Step::Create(i) => {
                let api = api.clone();
                let uids = uids.clone();
                let obj = cfg
                    .topology
                    .object(i, cfg.peers, plan.switch_objects.contains(&i))?;
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
                if switched.is_some() && plan.switch_objects.contains(&i) {
                    deleted_during.push(i);
                }
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
                emu.update_config(|c| cfg.limit.apply(c, Some(cfg.throttle_qps)));
                eprintln!(
                    "chaos: t={} s throttling period starts",
                    secs(start.elapsed())
                );
            }
            Step::ThrottleOff => {
                emu.update_config(|c| cfg.limit.apply(c, cfg.cloud.account_qps));
                eprintln!(
                    "chaos: t={} s throttling period ends",
                    secs(start.elapsed())
                );
            }
            Step::SecondOn => {
                second = Some(ControllerProcess::spawn(&opts2)?);
                second_since = Some(Instant::now());
                eprintln!(
                    "chaos: t={} s second controller starts (both active)",
                    secs(start.elapsed())
                );
            }
            Step::SecondOff => {
                if let Some(mut c) = second.take() {
                    c.kill9();
                }
                report.second_controller = second_since.map(|s| s.elapsed());
                eprintln!(
                    "chaos: t={} s second controller killed",
                    secs(start.elapsed())
                );
            }
            Step::SwitchToB => {
                // Only objects whose peer is bound to its account may see the other account's
                // keys: an object that never started its create would rightly create there.
                let wait_started = Instant::now();
                loop {
                    if !controller.is_running() {
                        report.unplanned_exits += 1;
                        controller = ControllerProcess::spawn(&opts)?;
                    }
                    let known = uids.lock().map(|m| m.clone()).unwrap_or_default();
                    let objects = invariants::list_objects(&env.client, &env.namespace).await?;
                    let unbound: Vec<String> = plan
                        .switch_objects
                        .iter()
                        .filter_map(|i| match known.get(i) {
                            None => Some(format!("peer-{i:05} (not created yet)")),
                            Some((name, uid)) => objects
                                .iter()
                                .find(|o| o.uid().as_deref() == Some(uid.as_str()))
                                .filter(|o| {
                                    o.status
                                        .as_ref()
                                        .and_then(|s| s.account_id.as_ref())
                                        .is_none()
                                })
                                .map(|_| name.clone()),
                        })
                        .collect();
                    if unbound.is_empty() {
                        report.switch.live_at_switch = plan
                            .switch_objects
                            .iter()
                            .filter_map(|i| known.get(i))
                            .filter(|(_, uid)| {
                                objects.iter().any(|o| {
                                    o.uid().as_deref() == Some(uid.as_str())
                                        && o.metadata.deletion_timestamp.is_none()
                                })
                            })
                            .count();
                        break;
                    }
                    anyhow::ensure!(
                        wait_started.elapsed() < Duration::from_secs(120),
                        "credentials switch: objects without a recorded account after 120 s: {unbound:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                report.switch.waited_before = wait_started.elapsed();
                put_switch_secrets(&env, &switch_secrets, true).await?;
                let names: BTreeSet<String> = plan
                    .switch_objects
                    .iter()
                    .map(|i| format!("peer-{i:05}"))
                    .collect();
                let stop = Arc::new(AtomicBool::new(false));
                switched = Some(Switched {
                    since: Instant::now(),
                    monitor: watch_mismatch(api.clone(), names, stop.clone()),
                    stop,
                });
                eprintln!(
                    "chaos: t={} s credentials Secrets switched to the other account (waited {} s)",
                    secs(start.elapsed()),
                    secs(report.switch.waited_before)
                );
            }
            Step::SwitchToA => {
                let Some(sw) = switched.take() else {
                    continue;
                };
                // The wait for recorded accounts may have delayed the switch: it still lasts
                // its whole period.
                let period = cfg.switch_period.min(cfg.window.mul_f64(0.45));
                while sw.since.elapsed() < period {
                    if !controller.is_running() {
                        report.unplanned_exits += 1;
                        controller = ControllerProcess::spawn(&opts)?;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                // Deletions requested while switched must still wait for their finalizer.
                let objects = invariants::list_objects(&env.client, &env.namespace).await?;
                let known = uids.lock().map(|m| m.clone()).unwrap_or_default();
                for i in &deleted_during {
                    let Some((name, uid)) = known.get(i) else {
                        continue;
                    };
                    match objects
                        .iter()
                        .find(|o| o.uid().as_deref() == Some(uid.as_str()))
                    {
                        Some(o) if o.metadata.deletion_timestamp.is_some() => {
                            report.switch.deletes_during += 1;
                            report.switch.held += 1;
                        }
                        // The delete request has not landed yet.
                        Some(_) => {}
                        None => {
                            report.switch.deletes_during += 1;
                            report.switch.released.push(name.clone());
                        }
                    }
                }
                put_switch_secrets(&env, &switch_secrets, false).await?;
                report.switch.switched_for = Some(sw.since.elapsed());
                sw.stop.store(true, Ordering::SeqCst);
                let (seen, observations) = sw.monitor.await.context("mismatch monitor")?;
                report.switch.mismatch_objects = seen.len();
                report.switch.mismatch_objects_b = plan
                    .switch_objects
                    .iter()
                    .filter(|i| {
                        cfg.topology.switch_secret_of(**i, cfg.peers) == SWITCH_SECRET_B
                            && seen.contains(&format!("peer-{i:05}"))
                    })
                    .count();
                report.switch.mismatch_observations = observations;
                eprintln!(
                    "chaos: t={} s credentials Secrets switched back to their own account ({} objects seen AccountMismatch, {} of {} deletions held)",
                    secs(start.elapsed()),
                    seen.len(),
                    report.switch.held,
                    report.switch.deletes_during
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
    // Heal: no faults, the account limit back, one running controller.
    emu.clear_faults();
    emu.update_config(|c| cfg.limit.apply(c, cfg.cloud.account_qps));
    if let Some(mut c) = second.take() {
        c.kill9();
        report.second_controller = second_since.map(|s| s.elapsed());
    }
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
    // A moment for anything still in flight to land, and for the read-after-write lag to
    // pass, before the cloud is inspected (the emulator's own view ignores the lag).
    tokio::time::sleep(Duration::from_secs(2) + cfg.visibility_lag).await;
    objects = invariants::list_objects(&env.client, &env.namespace).await?;
    let foreign = cfg.topology.foreign(cfg.peers);
    report.verdict = invariants::check(&expected, &objects, &emu.peers(), foreign);
    // Evidence for a failed check: the cloud's and the apiserver's end state next to the log.
    let dump = |suffix: &str, value: serde_json::Value| {
        let path = env.log.with_extension(suffix);
        if let Err(e) = std::fs::write(&path, value.to_string()) {
            eprintln!("chaos: cannot write {}: {e}", path.display());
        }
    };
    dump("emulator.json", serde_json::to_value(emu.state())?);
    dump("objects.json", serde_json::to_value(&objects)?);
    (report.switch.b_calls, report.switch.b_writes) =
        key_calls(&emu, switch_secrets.iter().map(|s| s.other.0));
    report.switch.a_secret_calls = key_calls(&emu, switch_secrets.iter().map(|s| s.own.0)).0;
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
                foreign_peers_per_group: 0,
            },
            topology: ChaosTopology::QuotaLayout(VbrLayout::CHAOS),
            limit: CloudLimit::PerKey,
            visibility_lag: Duration::from_secs(3),
            second_controller_share: 0.3,
            switch_objects: 8,
            switch_period: Duration::from_secs(15),
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

    #[test]
    fn the_schedule_has_the_overlap_and_the_switch() {
        let plan = schedule(&cfg(7));
        let at = |want: Step| plan.steps.iter().find(|s| s.1 == want).map(|s| s.0);
        let (on, off) = (at(Step::SecondOn).unwrap(), at(Step::SecondOff).unwrap());
        assert!(off > on);
        let (b, a) = (at(Step::SwitchToB).unwrap(), at(Step::SwitchToA).unwrap());
        assert_eq!(a - b, Duration::from_secs(15));
        assert_eq!(plan.switch_objects.len(), 8);
        let during = plan
            .steps
            .iter()
            .filter(|(t, s)| {
                *t > b && *t < a && matches!(s, Step::Delete(i) if plan.switch_objects.contains(i))
            })
            .count();
        assert!(
            during > 0,
            "some switched objects are deleted while switched"
        );
    }

    #[test]
    fn every_object_fits_the_quota_layout() {
        let c = cfg(7);
        let emu = c.topology.emulator_config(&c.cloud, c.peers).unwrap();
        assert!(emu.vbrs.iter().all(|v| v.peer_quota == 8));
        let mut per_vbr: BTreeMap<String, usize> = BTreeMap::new();
        for p in &emu.peers {
            let g = emu.groups.iter().find(|g| g.id == p.group).unwrap();
            *per_vbr.entry(g.vbr.clone()).or_default() += 1;
        }
        for i in 0..c.peers {
            let obj = c.topology.object(i, c.peers, false).unwrap();
            let g = emu
                .groups
                .iter()
                .find(|g| g.id == obj.spec.bgp_group_id)
                .unwrap();
            let vbr = emu.vbrs.iter().find(|v| v.id == g.vbr).unwrap();
            let ip: std::net::Ipv4Addr = obj
                .spec
                .peer_ip_address
                .as_deref()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                vbr.peering_subnets.iter().any(|n| n.contains(&ip)),
                "{ip} on {}",
                vbr.id
            );
            *per_vbr.entry(g.vbr.clone()).or_default() += 1;
        }
        assert!(per_vbr.values().all(|n| *n <= 6), "{per_vbr:?}");
    }

    #[test]
    fn fleet_switch_objects_name_the_secret_of_their_account() {
        let c = ChaosConfig {
            topology: ChaosTopology::Fleet,
            limit: CloudLimit::PerOperation,
            ..cfg(7)
        };
        let fleet = world::Fleet::new(c.peers);
        let plan = schedule(&c);
        let mut secrets = BTreeSet::new();
        for i in 0..c.peers {
            let switch = plan.switch_objects.contains(&i);
            let obj = c.topology.object(i, c.peers, switch).unwrap();
            let named = obj
                .spec
                .credentials_secret_ref
                .as_ref()
                .map(|r| r.name.clone());
            let account_b = world::Fleet::is_account_b(fleet.place(i).region);
            let want = match (switch, account_b) {
                (true, false) => Some(SWITCH_SECRET),
                (true, true) => Some(SWITCH_SECRET_B),
                (false, true) => Some(world::ACCOUNT_B_SECRET),
                (false, false) => None,
            };
            assert_eq!(named.as_deref(), want, "object {i}");
            if switch {
                secrets.insert(named);
            }
        }
        assert_eq!(secrets.len(), 2, "switch objects in both accounts");
        // Every key a Secret holds or is switched to exists, in the account the switch says.
        let emu = c.topology.emulator_config(&c.cloud, c.peers).unwrap();
        let account_of = |key: &str| {
            emu.accounts
                .iter()
                .find(|a| a.access_keys.iter().any(|k| k.id == key))
                .map(|a| a.uid.clone())
                .unwrap()
        };
        for s in c.topology.switch_secrets() {
            assert_ne!(account_of(s.own.0), account_of(s.other.0), "{s:?}");
        }
        let others: BTreeSet<&str> = c
            .topology
            .switch_secrets()
            .iter()
            .map(|s| s.other.0)
            .collect();
        assert!(!others.contains(world::ACCOUNT_B_KEY_ID));
        assert!(!others.contains(alicloud_bgp_operator::emulator::config::DEMO_ACCESS_KEY_ID));
        assert_eq!(c.topology.foreign(c.peers), emu.peers.len());
    }

    #[test]
    fn the_switch_must_be_seen_in_every_account_it_covers() {
        let seen_in_a_only = SwitchReport {
            objects: 10,
            objects_b: 3,
            switched_for: Some(Duration::from_secs(70)),
            mismatch_objects: 6,
            mismatch_objects_b: 0,
            ..SwitchReport::default()
        };
        assert!(!seen_in_a_only.ok());
        let seen_in_both = SwitchReport {
            mismatch_objects_b: 2,
            ..seen_in_a_only
        };
        assert!(seen_in_both.ok());
        let b_only = SwitchReport {
            objects: 3,
            objects_b: 3,
            switched_for: Some(Duration::from_secs(70)),
            mismatch_objects: 2,
            mismatch_objects_b: 2,
            ..SwitchReport::default()
        };
        assert!(b_only.ok());
        assert!(
            !SwitchReport {
                b_writes: 1,
                ..b_only
            }
            .ok()
        );
    }

    #[test]
    fn the_throttling_period_lowers_the_per_operation_quota() {
        let mut emu = EmulatorConfig::demo();
        CloudLimit::PerOperation.apply(&mut emu, Some(20));
        assert_eq!(emu.qps_per_key, None);
        assert_eq!(
            emu.api_quotas,
            vec![world::quota_rule(QuotaModel::PerOperation, 20)]
        );
        CloudLimit::PerOperation.apply(&mut emu, Some(5));
        assert_eq!(
            emu.api_quotas,
            vec![world::quota_rule(QuotaModel::PerOperation, 5)]
        );
        CloudLimit::PerKey.apply(&mut emu, Some(5));
        assert_eq!((emu.qps_per_key, emu.api_quotas.len()), (Some(5), 0));
    }
}
