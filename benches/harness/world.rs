//! The cloud side and the objects: an emulator topology sized for thousands of peers, the
//! BgpPeer objects of a run, bulk creation and deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::cloud::ratelimit::Rate;
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEFAULT_PEER_QUOTA, DEMO_REGION, EmulatorConfig, Latency,
};
use alicloud_bgp_operator::emulator::{Counters, EmulatorHandle, Secret, throttle};

/// Realism knobs of the emulator for a run.
#[derive(Clone, Debug)]
pub struct CloudOpts {
    /// BGP groups the peers are spread over (two VBRs carry them).
    pub groups: usize,
    /// Pending → Available.
    pub pending: Duration,
    /// Deleting → gone.
    pub delete_delay: Duration,
    /// Per-call latency range.
    pub latency: (Duration, Duration),
    /// The account's API limit (calls per second per access key); None = unlimited.
    pub account_qps: Option<u32>,
    /// Peers of other owners already in each group (seeded, no ClientToken). They come
    /// first in the API's listing order, so the operator's peers straddle page boundaries.
    pub foreign_peers_per_group: usize,
}

/// ID of benchmark group `i` (valid `bgpg-[a-z0-9]+`).
pub fn group_id(i: usize) -> String {
    format!("bgpg-bench{i:015}")
}

fn vbr_id(i: usize) -> String {
    format!("vbr-bench{i:016}")
}

/// The emulator configuration: the demo account and key, two VBRs with room for 20,000 peers
/// each, `groups` IPv4 groups alternating between them, `foreign_peers_per_group` seeded
/// peers in each.
pub fn emulator_config(opts: &CloudOpts) -> anyhow::Result<EmulatorConfig> {
    let mut cfg = EmulatorConfig::demo();
    let foreign: String = (0..opts.groups)
        .flat_map(|g| (0..opts.foreign_peers_per_group).map(move |i| (g, i)))
        .map(|(g, i)| {
            format!(
                "  - {{ id: bgp-foreign{g:03}{i:08}, group: {}, peer_ip_address: 192.168.{}.{} }}\n",
                group_id(g),
                g % 250,
                i % 250 + 1
            )
        })
        .collect();
    let foreign = if foreign.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{foreign}")
    };
    let extra = format!(
        "vbrs:\n{}groups:\n{}peers:{foreign}",
        (0..2)
            .map(|v| format!(
                // The older `groups` topology puts far more than the documented 8 peers on a
                // VBR: the quota is lifted explicitly (the fleet topology keeps it). Peering
                // subnets cover the operator's 10.x and the foreign owners' 192.168.x peers.
                "  - {{ id: {}, region: {DEMO_REGION}, peer_quota: 20000, group_quota: {}, peering_subnets: [10.0.0.0/8, 192.168.0.0/16] }}\n",
                vbr_id(v),
                opts.groups.div_ceil(2).max(64)
            ))
            .collect::<String>(),
        (0..opts.groups)
            .map(|g| format!(
                "  - {{ id: {}, vbr: {}, peer_asn: {} }}\n",
                group_id(g),
                vbr_id(g % 2),
                65100 + g
            ))
            .collect::<String>(),
    );
    add_topology(&mut cfg, &extra, opts)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Adds the VBRs, groups and peers of `yaml` to `cfg` and applies the run's realism knobs
/// (Pending and deletion delays, latency, the account's API limit).
fn add_topology(cfg: &mut EmulatorConfig, yaml: &str, opts: &CloudOpts) -> anyhow::Result<()> {
    let topology = EmulatorConfig::from_yaml(yaml).map_err(anyhow::Error::msg)?;
    cfg.vbrs.extend(topology.vbrs);
    cfg.groups.extend(topology.groups);
    cfg.peers.extend(topology.peers);
    cfg.pending_delay = opts.pending;
    cfg.delete_delay = opts.delete_delay;
    cfg.modify_delay = Duration::from_secs(1);
    cfg.latency = Latency {
        min: opts.latency.0,
        max: opts.latency.1,
    };
    cfg.qps_per_key = opts.account_qps;
    Ok(())
}

/// Starts the emulator in this process on a free loopback port.
pub async fn start_emulator(opts: &CloudOpts) -> anyhow::Result<EmulatorHandle> {
    alicloud_bgp_operator::emulator::server::start(emulator_config(opts)?, "127.0.0.1:0".parse()?)
        .await
}

/// Object `i` of a run: name `peer-<i>`, group `i % groups`, a unique peer IP, BFD on.
pub fn peer_object(i: usize, groups: usize) -> anyhow::Result<BgpPeer> {
    let g = i % groups.max(1);
    let n = i / groups.max(1);
    // Unique within the group (all the API asks), valid for any number of groups: the
    // second octet no longer grows with the group index (10.279.0.1 above 155 groups).
    let ip = format!(
        "10.{}.{}.{}",
        100 + n / 62_500,
        (n / 250) % 250,
        n % 250 + 1
    );
    Ok(serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpPeer",
        "metadata": {"name": format!("peer-{i:05}")},
        "spec": {
            "regionId": DEMO_REGION,
            "bgpGroupId": group_id(g),
            "peerIpAddress": ip,
            "enableBfd": true,
            "bfdMultiHop": 3,
            "deletionPolicy": "Delete",
        },
    }))?)
}

/// Creates one object, retrying while the apiserver is unavailable; an AlreadyExists after
/// a lost answer returns the stored object. Returns (name, uid).
pub async fn create_object(api: &Api<BgpPeer>, obj: &BgpPeer) -> anyhow::Result<(String, String)> {
    let name = obj.name_any();
    let mut delay = Duration::from_millis(100);
    for _ in 0..120 {
        match api.create(&PostParams::default(), obj).await {
            Ok(created) => return Ok((name, created.uid().unwrap_or_default())),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if let Some(existing) = api.get_opt(&name).await.ok().flatten() {
                    return Ok((name, existing.uid().unwrap_or_default()));
                }
            }
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
                anyhow::bail!("creating {name}: rejected: {}", s.message);
            }
            // Retried, and said once per kind of error: a silent retry here once hid seconds
            // of a run's start.
            Err(e) => note_retry("create", &e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    anyhow::bail!("creating {name}: the apiserver did not accept it within ~4 min")
}

/// Prints the first retried error of each kind (HTTP code, or the error's text) to stderr.
fn note_retry(what: &str, e: &kube::Error) {
    static SEEN: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let kind = match e {
        kube::Error::Api(s) => format!("{what}: HTTP {} {}", s.code, s.reason),
        other => format!("{what}: {other}"),
    };
    if SEEN.lock().is_ok_and(|mut seen| seen.insert(kind.clone())) {
        eprintln!("   retrying ({kind}): {e}");
    }
}

/// Requests deletion of one object, retrying while the apiserver is unavailable (404 is done).
pub async fn delete_object(api: &Api<BgpPeer>, name: &str) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(100);
    for _ in 0..120 {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => note_retry("delete", &e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    anyhow::bail!("deleting {name}: the apiserver did not accept it within ~4 min")
}

/// Creates objects `0..n` with `parallel` requests in flight; returns name → uid.
pub async fn create_all(
    client: &Client,
    ns: &str,
    n: usize,
    groups: usize,
    parallel: usize,
) -> anyhow::Result<BTreeMap<String, String>> {
    create_all_with(client, ns, n, parallel, |i| peer_object(i, groups)).await
}

/// Like [`create_all`], with object `i` made by `object`.
pub async fn create_all_with(
    client: &Client,
    ns: &str,
    n: usize,
    parallel: usize,
    object: impl Fn(usize) -> anyhow::Result<BgpPeer>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let api: Arc<Api<BgpPeer>> = Arc::new(Api::namespaced(client.clone(), ns));
    let object = &object;
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move { create_object(&api, &object(i)?).await }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<BTreeMap<_, _>>()
        .await
        .context("bulk create")
}

/// Requests deletion of `names` with `parallel` requests in flight.
pub async fn delete_all(
    client: &Client,
    ns: &str,
    names: impl IntoIterator<Item = String>,
    parallel: usize,
) -> anyhow::Result<()> {
    let api: Arc<Api<BgpPeer>> = Arc::new(Api::namespaced(client.clone(), ns));
    futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move { delete_object(&api, &name).await }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Calls per (action, code) made between two counter snapshots.
pub fn calls_between(before: &Counters, after: &Counters) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for (action, codes) in &after.by_action_code {
        for (code, n) in codes {
            let was = before
                .by_action_code
                .get(action)
                .and_then(|c| c.get(code))
                .copied()
                .unwrap_or(0);
            if *n > was {
                out.insert((action.clone(), code.clone()), n - was);
            }
        }
    }
    out
}

/// Sum of calls of `action` (any code) in a per-(action, code) map.
pub fn action_total(calls: &BTreeMap<(String, String), u64>, action: &str) -> u64 {
    calls
        .iter()
        .filter(|((a, _), _)| a == action)
        .map(|(_, n)| n)
        .sum()
}

/// Sum of calls whose code starts with `prefix` (e.g. `Throttling`).
pub fn code_total(calls: &BTreeMap<(String, String), u64>, prefix: &str) -> u64 {
    calls
        .iter()
        .filter(|((_, c), _)| c.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}

/// The emulator's quota rule of a run: `qps` calls/s per account (all regions together), for
/// each operation (`PerOperation`) or for all of them (`Shared`).
pub fn quota_rule(model: throttle::QuotaModel, qps: u32) -> throttle::QuotaRule {
    throttle::QuotaRule {
        model,
        scope: throttle::QuotaScope::Account,
        default: Some(throttle::Quota(Rate::per_second(f64::from(qps.max(1))))),
        operations: BTreeMap::new(),
    }
}

/// Adds access key `id` to account `uid` of `cfg` (which must exist).
pub fn add_account_key(
    cfg: &mut EmulatorConfig,
    uid: &str,
    id: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let account = cfg
        .accounts
        .iter_mut()
        .find(|a| a.uid == uid)
        .with_context(|| format!("no account {uid} in the emulator configuration"))?;
    account.access_keys.push(AccessKeyConfig {
        id: id.to_owned(),
        secret: Secret::new(secret),
        user: None,
    });
    Ok(())
}

/// A third key of account A that the chaos run's account-B credentials Secret is switched to
/// on the fleet: never used otherwise, so any write with it is a violation.
pub const ACCOUNT_A_SWITCH_KEY_ID: &str = "LTAI5tChaosAccountAKey03";
/// Its secret.
pub const ACCOUNT_A_SWITCH_KEY_SECRET: &str = "ChaosAccountASecretNotForProduction03";
/// A second key of account B that the chaos run's account-A credentials Secret is switched
/// to on the fleet (account B's own objects use [`ACCOUNT_B_KEY_ID`]).
pub const ACCOUNT_B_SWITCH_KEY_ID: &str = "LTAI5tChaosAccountBKey02";
/// Its secret.
pub const ACCOUNT_B_SWITCH_KEY_SECRET: &str = "ChaosAccountBSecretNotForProduction02";

/// Access key of account A (the operator-wide account, [`DEMO_ACCOUNT_UID`]) that the
/// credentials Secret of the chaos run holds: a second key of the same account, so its calls
/// are counted apart from the operator-wide key's.
pub const ACCOUNT_A_SECRET_KEY_ID: &str = "LTAI5tChaosAccountAKey02";
/// Its secret.
pub const ACCOUNT_A_SECRET_KEY_SECRET: &str = "ChaosAccountASecretNotForProduction02";
/// Account B: another Alibaba Cloud account the credentials Secret is switched to.
pub const ACCOUNT_B_UID: &str = "2000000000000002";
/// Account B's access key.
pub const ACCOUNT_B_KEY_ID: &str = "LTAI5tChaosAccountBKey01";
/// Its secret.
pub const ACCOUNT_B_KEY_SECRET: &str = "ChaosAccountBSecretNotForProduction01";

/// The documented placement limits (issue 16): every VBR holds at most
/// [`DEFAULT_PEER_QUOTA`] (8) BGP peers, all its groups counted, and a peer IP must lie in the
/// VBR's peering subnet. The objects of a run are spread over as many VBRs as that needs:
/// each VBR carries `groups_per_vbr` groups, each group `slots_per_group` operator peers and
/// `foreign_per_group` peers of other owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VbrLayout {
    /// Groups on one VBR.
    pub groups_per_vbr: usize,
    /// Operator objects placed in one group.
    pub slots_per_group: usize,
    /// Seeded peers of other owners in each group.
    pub foreign_per_group: usize,
}

impl VbrLayout {
    /// The chaos runs' layout: 2 groups per VBR, each with 2 of our peers and 1 of another
    /// owner: 6 of the 8 peers a VBR may hold, 2 left free (a stray create lands instead of
    /// being refused by the quota, and is then counted as a duplicate or a leak).
    pub const CHAOS: Self = Self {
        groups_per_vbr: 2,
        slots_per_group: 2,
        foreign_per_group: 1,
    };

    /// Groups needed for `objects` objects.
    pub fn groups(&self, objects: usize) -> usize {
        objects.div_ceil(self.slots_per_group.max(1)).max(1)
    }

    /// VBRs needed for `groups` groups.
    pub fn vbrs(&self, groups: usize) -> usize {
        groups.div_ceil(self.groups_per_vbr.max(1)).max(1)
    }

    /// Peers one VBR holds when every slot is used.
    pub fn peers_per_vbr(&self) -> usize {
        self.groups_per_vbr * (self.slots_per_group + self.foreign_per_group)
    }
}

/// The /24 peering subnet of quota-layout VBR `v`: `10.<1 + v / 256>.<v % 256>.0/24`.
fn vbr_subnet(v: usize) -> (usize, usize) {
    (1 + v / 256, v % 256)
}

/// Peer IP of slot `slot` (operator) or `200 + slot` (foreign) of group `k` of VBR `v`.
fn layout_ip(v: usize, k: usize, host: usize) -> String {
    let (a, b) = vbr_subnet(v);
    format!("10.{a}.{b}.{}", 10 + k * 16 + host)
}

/// The emulator configuration of a run under the real quota: the demo account (operator-wide
/// key plus [`ACCOUNT_A_SECRET_KEY_ID`]) and account B ([`ACCOUNT_B_UID`]), `layout.vbrs(groups)`
/// VBRs with the default 8-peer quota and a /24 peering subnet each, `groups` IPv4 groups
/// (group `g` on VBR `g / groups_per_vbr`), `foreign_per_group` seeded peers in each.
pub fn quota_emulator_config(
    opts: &CloudOpts,
    layout: &VbrLayout,
    groups: usize,
) -> anyhow::Result<EmulatorConfig> {
    anyhow::ensure!(
        layout.peers_per_vbr() <= DEFAULT_PEER_QUOTA as usize,
        "layout {layout:?} puts {} peers on a VBR (quota {DEFAULT_PEER_QUOTA})",
        layout.peers_per_vbr()
    );
    anyhow::ensure!(
        layout.groups_per_vbr <= 8 && layout.slots_per_group + layout.foreign_per_group <= 16,
        "layout {layout:?} does not fit the address plan"
    );
    let mut cfg = EmulatorConfig::demo();
    cfg.add_access_key(
        ACCOUNT_A_SECRET_KEY_ID,
        Secret::new(ACCOUNT_A_SECRET_KEY_SECRET),
    );
    cfg.accounts.push(AccountConfig {
        uid: ACCOUNT_B_UID.to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: ACCOUNT_B_KEY_ID.to_owned(),
            secret: Secret::new(ACCOUNT_B_KEY_SECRET),
            user: None,
        }],
        roles: Vec::new(),
    });
    let mut yaml = String::from("vbrs:\n");
    for v in 0..layout.vbrs(groups) {
        let (a, b) = vbr_subnet(v);
        yaml.push_str(&format!(
            "  - {{ id: {}, region: {DEMO_REGION}, local_gateway_ip: 10.{a}.{b}.1, peer_gateway_ip: 10.{a}.{b}.2, peering_subnets: [10.{a}.{b}.0/24] }}\n",
            vbr_id(v)
        ));
    }
    yaml.push_str("groups:\n");
    for g in 0..groups {
        yaml.push_str(&format!(
            "  - {{ id: {}, vbr: {}, peer_asn: {} }}\n",
            group_id(g),
            vbr_id(g / layout.groups_per_vbr),
            65100 + g
        ));
    }
    yaml.push_str("peers:");
    if groups * layout.foreign_per_group == 0 {
        yaml.push_str(" []\n");
    } else {
        yaml.push('\n');
    }
    for g in 0..groups {
        let (v, k) = (g / layout.groups_per_vbr, g % layout.groups_per_vbr);
        for f in 0..layout.foreign_per_group {
            yaml.push_str(&format!(
                "  - {{ id: bgp-foreign{g:05}{f:06}, group: {}, peer_ip_address: {} }}\n",
                group_id(g),
                layout_ip(v, k, layout.slots_per_group + f)
            ));
        }
    }
    add_topology(&mut cfg, &yaml, opts)?;
    // The real API refuses non-ASCII ClientTokens; the demo world allows them for the SDK tests.
    cfg.client_token_ascii_only = true;
    cfg.validate()?;
    Ok(cfg)
}

/// Object `i` of a run under the quota layout: group `i % groups`, slot `i / groups` of it, a
/// peer IP in its VBR's peering subnet, BFD on; with `secret`, `spec.credentialsSecretRef`
/// names it.
pub fn quota_peer_object(
    i: usize,
    layout: &VbrLayout,
    groups: usize,
    secret: Option<&str>,
) -> anyhow::Result<BgpPeer> {
    let g = i % groups.max(1);
    let slot = i / groups.max(1);
    anyhow::ensure!(
        slot < layout.slots_per_group,
        "object {i} does not fit {groups} groups of {} slots",
        layout.slots_per_group
    );
    let (v, k) = (g / layout.groups_per_vbr, g % layout.groups_per_vbr);
    let mut spec = json!({
        "regionId": DEMO_REGION,
        "bgpGroupId": group_id(g),
        "peerIpAddress": layout_ip(v, k, slot),
        "enableBfd": true,
        "bfdMultiHop": 3,
        "deletionPolicy": "Delete",
    });
    if let Some(name) = secret {
        spec["credentialsSecretRef"] = json!({ "name": name });
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpPeer",
        "metadata": {"name": format!("peer-{i:05}")},
        "spec": spec,
    }))?)
}

/// Creates or overwrites Secret `name` with an AccessKey pair (`accessKeyId`,
/// `accessKeySecret`), retrying while the apiserver is unavailable.
pub async fn put_credentials_secret(
    client: &Client,
    ns: &str,
    name: &str,
    key_id: &str,
    key_secret: &str,
) -> anyhow::Result<()> {
    use alicloud_bgp_operator::api::secret_keys;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret as KubeSecret;
    use kube::api::{Patch, PatchParams};
    let api: Api<KubeSecret> = Api::namespaced(client.clone(), ns);
    let data: BTreeMap<String, ByteString> = [
        (secret_keys::ACCESS_KEY_ID, key_id),
        (secret_keys::ACCESS_KEY_SECRET, key_secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect();
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name },
        "type": "Opaque",
        "data": data,
    });
    let mut delay = Duration::from_millis(100);
    let mut last = None;
    for _ in 0..120 {
        match api
            .patch(
                name,
                &PatchParams::apply("abo-chaos").force(),
                &Patch::Apply(&secret),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    anyhow::bail!("writing Secret {ns}/{name}: {last:?}")
}

/// Regions of the fleet topology: account A (the operator-wide key) owns peers in the first
/// two, account B (a per-object credentials Secret) in the third. The emulator does not keep
/// accounts' resources apart (docs/cloud-fidelity.md row 14), so each region has one owner
/// account: a real region listing shows only the caller's peers, and here too.
pub const FLEET_REGIONS: [&str; 3] = ["cn-shanghai", "cn-hangzhou", "cn-beijing"];

/// Name of the credentials Secret of account B's objects.
pub const ACCOUNT_B_SECRET: &str = "account-b";

/// The fleet topology (issue 18): `n` operator peers spread round-robin over
/// [`FLEET_REGIONS`], in groups of `per_group` with one group per VBR (4 of the VBR's 8
/// peers), and `foreign_share` × (own peers of the region) peers of other owners in each
/// region, in groups of their own on VBRs of their own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fleet {
    /// Operator peers.
    pub n: usize,
    /// Operator peers per group (one group per VBR).
    pub per_group: usize,
    /// Other owners' peers per operator peer, per region.
    pub foreign_share: f64,
}

/// Where one operator object goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Index into [`FLEET_REGIONS`].
    pub region: usize,
    /// Global group (and VBR) index.
    pub group: usize,
    /// Slot in the group.
    pub slot: usize,
}

impl Fleet {
    /// The default: groups of 4, 20 % foreign peers.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            per_group: 4,
            foreign_share: 0.2,
        }
    }

    /// Operator peers in region `r`.
    pub fn own_in(&self, r: usize) -> usize {
        let regions = FLEET_REGIONS.len();
        self.n / regions + usize::from(r < self.n % regions)
    }

    /// Other owners' peers in region `r`.
    pub fn foreign_in(&self, r: usize) -> usize {
        (self.own_in(r) as f64 * self.foreign_share).round() as usize
    }

    /// All peers a region listing of `r` returns.
    pub fn peers_in(&self, r: usize) -> usize {
        self.own_in(r) + self.foreign_in(r)
    }

    fn groups_of(&self, peers: usize) -> usize {
        peers.div_ceil(self.per_group.max(1))
    }

    /// First global group index of region `r` (its own groups, then its foreign ones).
    fn region_base(&self, r: usize) -> usize {
        (0..r)
            .map(|q| self.groups_of(self.own_in(q)) + self.groups_of(self.foreign_in(q)))
            .sum()
    }

    /// Groups (= VBRs) of the whole topology.
    pub fn total_groups(&self) -> usize {
        self.region_base(FLEET_REGIONS.len())
    }

    /// Groups holding operator peers.
    pub fn own_groups(&self) -> usize {
        (0..FLEET_REGIONS.len())
            .map(|r| self.groups_of(self.own_in(r)))
            .sum()
    }

    /// Object `i`: region `i % 3`, then filled group by group.
    pub fn place(&self, i: usize) -> Placement {
        let regions = FLEET_REGIONS.len();
        let (region, j) = (i % regions, i / regions);
        let per = self.per_group.max(1);
        Placement {
            region,
            group: self.region_base(region) + j / per,
            slot: j % per,
        }
    }

    /// Other owners' peers in all regions.
    pub fn foreign_total(&self) -> usize {
        (0..FLEET_REGIONS.len()).map(|r| self.foreign_in(r)).sum()
    }

    /// Whether region `r` belongs to account B.
    pub fn is_account_b(r: usize) -> bool {
        r + 1 == FLEET_REGIONS.len()
    }

    /// Operator peers of account A and of account B.
    pub fn own_by_account(&self) -> [usize; 2] {
        let mut out = [0; 2];
        for r in 0..FLEET_REGIONS.len() {
            out[usize::from(Self::is_account_b(r))] += self.own_in(r);
        }
        out
    }

    /// Σ over the account's regions of ⌈(own + foreign peers in region) / 50⌉: one
    /// region-wide listing of each.
    pub fn region_pages_by_account(&self) -> [usize; 2] {
        let mut out = [0; 2];
        for r in 0..FLEET_REGIONS.len() {
            out[usize::from(Self::is_account_b(r))] += self.peers_in(r).div_ceil(50).max(1);
        }
        out
    }
}

/// The fleet's emulator: accounts A (demo key) and B ([`ACCOUNT_B_KEY_ID`]), one VBR per group
/// with the default 8-peer quota and a /24 peering subnet of its own (`10.<1 + v/256>.<v %
/// 256>.0/24`, valid for any number of VBRs), the foreign peers seeded.
pub fn fleet_emulator_config(opts: &CloudOpts, fleet: &Fleet) -> anyhow::Result<EmulatorConfig> {
    anyhow::ensure!(
        fleet.per_group <= DEFAULT_PEER_QUOTA as usize && fleet.per_group <= 16,
        "{} peers per group do not fit a VBR",
        fleet.per_group
    );
    anyhow::ensure!(
        fleet.total_groups() < 250 * 256,
        "{} VBRs do not fit the address plan",
        fleet.total_groups()
    );
    let mut cfg = EmulatorConfig::demo();
    cfg.accounts.push(AccountConfig {
        uid: ACCOUNT_B_UID.to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: ACCOUNT_B_KEY_ID.to_owned(),
            secret: Secret::new(ACCOUNT_B_KEY_SECRET),
            user: None,
        }],
        roles: Vec::new(),
    });
    for r in FLEET_REGIONS {
        if !cfg.regions.iter().any(|x| x == r) {
            cfg.regions.push(r.to_owned());
        }
    }
    let mut vbrs = String::from("vbrs:\n");
    let mut groups = String::from("groups:\n");
    let mut peers = String::new();
    for (r, region) in FLEET_REGIONS.iter().enumerate() {
        let own_groups = fleet.groups_of(fleet.own_in(r));
        let foreign_groups = fleet.groups_of(fleet.foreign_in(r));
        let base = fleet.region_base(r);
        for k in 0..own_groups + foreign_groups {
            let v = base + k;
            let (a, b) = vbr_subnet(v);
            vbrs.push_str(&format!(
                "  - {{ id: {}, region: {region}, local_gateway_ip: 10.{a}.{b}.1, peer_gateway_ip: 10.{a}.{b}.2, peering_subnets: [10.{a}.{b}.0/24] }}\n",
                vbr_id(v)
            ));
            groups.push_str(&format!(
                "  - {{ id: {}, vbr: {}, peer_asn: {} }}\n",
                group_id(v),
                vbr_id(v),
                64512 + v % 1000
            ));
        }
        for f in 0..fleet.foreign_in(r) {
            let v = base + own_groups + f / fleet.per_group.max(1);
            peers.push_str(&format!(
                "  - {{ id: bgp-foreign{v:06}{f:05}, group: {}, peer_ip_address: {} }}\n",
                group_id(v),
                layout_ip(v, 0, f % fleet.per_group.max(1))
            ));
        }
    }
    let peers = if peers.is_empty() {
        "peers: []\n".to_owned()
    } else {
        format!("peers:\n{peers}")
    };
    add_topology(&mut cfg, &format!("{vbrs}{groups}{peers}"), opts)?;
    cfg.client_token_ascii_only = true;
    cfg.validate()?;
    Ok(cfg)
}

/// Object `i` of the fleet: its region, group and slot from [`Fleet::place`], a peer IP in its
/// VBR's subnet, BFD on; account B's objects name [`ACCOUNT_B_SECRET`].
pub fn fleet_peer_object(i: usize, fleet: &Fleet) -> anyhow::Result<BgpPeer> {
    fleet_peer_object_with(i, fleet, None)
}

/// Like [`fleet_peer_object`]; with `secret`, `spec.credentialsSecretRef` names it instead
/// (whatever the region's account).
pub fn fleet_peer_object_with(
    i: usize,
    fleet: &Fleet,
    secret: Option<&str>,
) -> anyhow::Result<BgpPeer> {
    let p = fleet.place(i);
    let mut spec = json!({
        "regionId": FLEET_REGIONS[p.region],
        "bgpGroupId": group_id(p.group),
        "peerIpAddress": layout_ip(p.group, 0, p.slot),
        "enableBfd": true,
        "bfdMultiHop": 3,
        "deletionPolicy": "Delete",
    });
    let secret = secret.or(Fleet::is_account_b(p.region).then_some(ACCOUNT_B_SECRET));
    if let Some(name) = secret {
        spec["credentialsSecretRef"] = json!({ "name": name });
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1",
        "kind": "BgpPeer",
        "metadata": {"name": format!("peer-{i:05}")},
        "spec": spec,
    }))?)
}

/// The fleet's arithmetic (run by the scale bench's self-check under `cargo test`): every peer
/// placed once within the quota, the pages counted, addresses valid past 255 VBRs.
pub fn check_fleet() {
    {
        let fleet = Fleet::new(1000);
        assert_eq!(fleet.own_in(0) + fleet.own_in(1) + fleet.own_in(2), 1000);
        assert_eq!(fleet.own_by_account(), [667, 333]);
        // 334 own + 67 foreign in the first region: 9 pages.
        assert_eq!(fleet.peers_in(0), 401);
        assert_eq!(fleet.region_pages_by_account(), [9 + 8, 8]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let p = fleet.place(i);
            assert!(p.slot < 4);
            assert!(seen.insert((p.group, p.slot)), "{i} placed twice");
        }
        let cfg = fleet_emulator_config(
            &CloudOpts {
                groups: 0,
                pending: Duration::ZERO,
                delete_delay: Duration::ZERO,
                latency: (Duration::ZERO, Duration::ZERO),
                account_qps: None,
                foreign_peers_per_group: 0,
            },
            &fleet,
        )
        .expect("valid config");
        assert_eq!(cfg.vbrs.len(), fleet.total_groups() + 1, "and the demo VBR");
        assert_eq!(cfg.peers.len(), 67 + 67 + 67);
        // More than 255 VBRs: still valid addresses.
        assert_eq!(layout_ip(300, 0, 3), "10.2.44.13");
        let obj = fleet_peer_object(2, &fleet).expect("object");
        assert_eq!(obj.spec.region_id, "cn-beijing");
        assert!(obj.spec.credentials_secret_ref.is_some());
    }
}
