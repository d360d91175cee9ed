//! The cloud side and the objects: an emulator topology sized for thousands of peers, the
//! BgpPeer objects of a run, bulk creation and deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEFAULT_PEER_QUOTA, DEMO_REGION, EmulatorConfig, Latency,
};
use alicloud_bgp_operator::emulator::{Counters, EmulatorHandle, Secret};

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
                // The fleet topology puts far more than the documented 8 peers on a VBR: the
                // quota is lifted explicitly until issue 18 redoes it. Peering subnets cover
                // the operator's 10.x and the foreign owners' 192.168.x peers.
                "  - {{ id: {}, region: {DEMO_REGION}, peer_quota: 20000, group_quota: 64, peering_subnets: [10.0.0.0/8, 192.168.0.0/16] }}\n",
                vbr_id(v)
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
    let ip = format!("10.{}.{}.{}", 100 + g, n / 250, n % 250 + 1);
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
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    anyhow::bail!("creating {name}: the apiserver did not accept it within ~4 min")
}

/// Requests deletion of one object, retrying while the apiserver is unavailable (404 is done).
pub async fn delete_object(api: &Api<BgpPeer>, name: &str) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(100);
    for _ in 0..120 {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(_) => {}
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
