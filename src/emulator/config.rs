//! Emulator configuration: accounts, regions, VBRs, seed groups and peers, delays and realism
//! knobs. Loaded from a YAML or JSON seed file (`--config FILE`); every field is optional.
//!
//! ```yaml
//! regions: [cn-shanghai, cn-hangzhou]      # regions of the VBRs are added automatically
//! accounts:
//!   - uid: "1234567890123456"
//!     access_keys:
//!       - { id: LTAI5tEmulatorDemoKey01, secret: EmulatorDemoSecret01 }
//!     roles: ["acs:ram::1234567890123456:role/bgp-operator"]   # for STS
//! sts: { allow_any_role: true, max_duration: 12h }
//! # AssumeRoleWithOIDC: a role with trust entries accepts only tokens whose claims match one
//! # (issuer / subject / audience, each when given); the signature is not verified.
//! #   oidc_trust: [{ role: "acs:ram::1234567890123456:role/team-a",
//! #                  issuer: "https://kubernetes.default.svc.cluster.local",
//! #                  subject: "system:serviceaccount:team-a:bgp", audience: sts.aliyuncs.com }]
//! vbrs:
//!   - id: vbr-emu00000000000000001
//!     region: cn-shanghai
//!     ipv6: true
//!     peer_quota: 8                          # per VBR, all groups counted (the documented limit)
//!     group_quota: 8
//!     network_quota: 16                      # BGP networks per VBR (AddBgpNetwork)
//!     owner: "1234567890123456"             # optional: only this account's network calls see it
//!     local_gateway_ip: 10.0.0.1             # the VBR side of the peering link
//!     peer_gateway_ip: 10.0.0.2              # the customer side
//!     peering_subnets: [10.0.0.0/16]         # peer IPs must lie in one of these
//!     local_ipv6_gateway_ip: "2408:4000:1000::1"
//!     peer_ipv6_gateway_ip: "2408:4000:1000::2"
//!     peering_ipv6_subnets: ["2408:4000::/32"]
//! groups:
//!   - { id: bgpg-emu00000000000000001, vbr: vbr-emu00000000000000001, peer_asn: 65001 }
//!   - { id: bgpg-emu00000000000000002, vbr: vbr-emu00000000000000001, peer_asn: 65002, ip_version: IPv6 }
//! peers:                                     # seeded Available
//!   - { id: bgp-emu00000000000000001, group: bgpg-emu00000000000000001, peer_ip_address: 10.0.0.2 }
//! pending_delay: 2s        # Pending -> Available (also for groups)
//! modify_delay: 1s         # Modifying -> Available
//! delete_delay: 1s         # Deleting -> gone
//! latency: 10ms..50ms      # or a fixed "5ms": added to every answer, after the call is carried out
//! request_latency: 0ms..30ms  # added on the way in, before the call is counted and carried out
//! qps_per_key: 20          # Throttling.User above this rate (per access key); absent = unlimited
//! api_quotas:              # Throttling.User above a quota (see `throttle`); every rule must admit
//!   - { scope: account, default: 20/1s, operations: { CreateBgpPeer: 10/1s, DescribeBgpPeers: 200/60s } }
//!   # model: shared (one quota, `default`, for all operations); scope: account_region
//! token_retention: 24h     # how long ClientTokens are remembered (per account and action)
//! visibility_lag: 0s       # a new peer is hidden from DescribeBgpPeers this long after its create
//! deleted_linger: 0s       # a deleted peer is listed as Deleted this long before it disappears
//! session_connect_delay: 1s      # BgpStatus Idle -> Connect after the peer is Available
//! session_establish_delay: 2s    # BgpStatus Connect -> Established
//! total_count: total       # or `page`: TotalCount = the entries of this page (the other SDK wording)
//! throttle_retry_after: 1500ms   # adds `x-acs-retry-after: 1500` to Throttling answers
//! wrong_secret_incomplete: false # V1 wrong secret answers IncompleteSignature instead
//! client_token_ascii_only: true  # ClientToken: 1-64 printable ASCII (false: any printable)
//! timestamp_window: 15m    # allowed clock skew of signed requests (and nonce memory)
//! state_file: /tmp/emulator-state.json   # optional persistence
//! ```
//! Durations are strings in the one duration syntax ([`crate::duration`]: `500ms`, `2s`,
//! `1m30s`, `24h`, ISO 8601 `PT2S`; a bare number is seconds) or integer milliseconds.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::duration::parse as parse_duration;

use super::model::IpVersion;

/// Access key id of the embedded demo configuration.
pub const DEMO_ACCESS_KEY_ID: &str = "LTAI5tEmulatorDemoKey01";
/// Access key secret of the embedded demo configuration (a well-known, emulator-only value).
pub const DEMO_ACCESS_KEY_SECRET: &str = "EmulatorDemoSecretNotForProduction01";
/// Account uid of the embedded demo configuration.
pub const DEMO_ACCOUNT_UID: &str = "1234567890123456";
/// Region of the demo VBR.
pub const DEMO_REGION: &str = "cn-shanghai";
/// The demo VBR (IPv4 and IPv6).
pub const DEMO_VBR: &str = "vbr-emu00000000000000001";
/// The demo IPv4 group (PeerAsn 65001).
pub const DEMO_GROUP_V4: &str = "bgpg-emu00000000000000001";
/// The demo IPv6 group (PeerAsn 65002).
pub const DEMO_GROUP_V6: &str = "bgpg-emu00000000000000002";

/// The whole emulator configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Known region ids (the regions of the VBRs are always known too).
    pub regions: Vec<String>,
    /// Accounts and their access keys.
    pub accounts: Vec<AccountConfig>,
    /// STS behaviour.
    pub sts: StsConfig,
    /// Virtual border routers.
    pub vbrs: Vec<VbrConfig>,
    /// BGP groups present at start (Available).
    pub groups: Vec<GroupConfig>,
    /// BGP peers present at start (Available).
    pub peers: Vec<PeerConfig>,
    /// Pending → Available after this delay (peers and groups).
    #[serde(deserialize_with = "de_duration")]
    pub pending_delay: Duration,
    /// Modifying → Available after this delay.
    #[serde(deserialize_with = "de_duration")]
    pub modify_delay: Duration,
    /// Deleting → gone after this delay.
    #[serde(deserialize_with = "de_duration")]
    pub delete_delay: Duration,
    /// Added latency of every API call, on the way out (after it is counted against the
    /// quotas and carried out).
    pub latency: Latency,
    /// Added latency of every API call on the way in, before it is counted against the quotas
    /// and carried out (the network between the client and the gateway): calls sent in one
    /// order may arrive closer together, or in another order.
    pub request_latency: Latency,
    /// Calls per second allowed per access key; `None` = unlimited.
    pub qps_per_key: Option<u32>,
    /// API rate quotas (per account and operation, or shared), each of which must admit a
    /// call; none = unlimited.
    pub api_quotas: Vec<super::throttle::QuotaRule>,
    /// How long a ClientToken is remembered (per account and action; 24 h by default, the real
    /// retention is undocumented).
    #[serde(deserialize_with = "de_duration")]
    pub token_retention: Duration,
    /// A created peer is hidden from `DescribeBgpPeers` (listings and by ID) this long after its
    /// create; a ClientToken replay of the create still answers its ID. Default 0.
    #[serde(deserialize_with = "de_duration")]
    pub visibility_lag: Duration,
    /// A deleted peer is listed with `Status=Deleted` this long before it disappears. Default 0.
    #[serde(deserialize_with = "de_duration")]
    pub deleted_linger: Duration,
    /// `BgpStatus` goes Idle → Connect this long after the peer became Available.
    #[serde(deserialize_with = "de_duration")]
    pub session_connect_delay: Duration,
    /// `BgpStatus` goes Connect → Established this long after Connect.
    #[serde(deserialize_with = "de_duration")]
    pub session_establish_delay: Duration,
    /// What `TotalCount` of a Describe page counts.
    pub total_count: TotalCountMode,
    /// Adds `x-acs-retry-after` (milliseconds) with this value to every Throttling answer.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub throttle_retry_after: Option<Duration>,
    /// A V1 request with a wrong secret answers `IncompleteSignature` (as the gateway does for
    /// some wrong secrets) instead of `SignatureDoesNotMatch`.
    pub wrong_secret_incomplete: bool,
    /// ClientTokens must be printable ASCII (documented). `false` in the demo world only: the
    /// official SDK cross-tests sign a token with `é` to test canonicalisation.
    pub client_token_ascii_only: bool,
    /// Allowed distance between a request's timestamp and the server clock; nonces are kept
    /// this long.
    #[serde(deserialize_with = "de_duration")]
    pub timestamp_window: Duration,
    /// Keep groups, peers and ClientTokens in this file (written atomically on every change,
    /// loaded at start).
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for EmulatorConfig {
    /// No regions, accounts or VBRs; default delays (2 s / 1 s / 1 s), no latency, no QPS
    /// limit, 24 h token retention, 15 min timestamp window.
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            accounts: Vec::new(),
            sts: StsConfig::default(),
            vbrs: Vec::new(),
            groups: Vec::new(),
            peers: Vec::new(),
            pending_delay: Duration::from_secs(2),
            modify_delay: Duration::from_secs(1),
            delete_delay: Duration::from_secs(1),
            latency: Latency::default(),
            request_latency: Latency::default(),
            qps_per_key: None,
            api_quotas: Vec::new(),
            token_retention: Duration::from_secs(24 * 3600),
            visibility_lag: Duration::ZERO,
            deleted_linger: Duration::ZERO,
            session_connect_delay: Duration::from_secs(1),
            session_establish_delay: Duration::from_secs(2),
            total_count: TotalCountMode::Total,
            throttle_retry_after: None,
            wrong_secret_incomplete: false,
            client_token_ascii_only: true,
            timestamp_window: Duration::from_secs(15 * 60),
            state_file: None,
        }
    }
}

/// What `TotalCount` of a DescribeBgpPeers/DescribeBgpGroups page counts (the SDK models word it
/// both ways).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TotalCountMode {
    /// Every matching entry ("total entries").
    #[default]
    Total,
    /// The entries on this page ("entries returned").
    Page,
}

impl FromStr for TotalCountMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "total" => Ok(Self::Total),
            "page" => Ok(Self::Page),
            _ => Err(ConfigError::Invalid(format!(
                "total_count {s:?} (want total or page)"
            ))),
        }
    }
}

/// An account: its uid, access keys and the RAM roles STS may assume in it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    /// Account uid (used in role ARNs and to scope ClientTokens).
    pub uid: String,
    /// Long-term access keys.
    pub access_keys: Vec<AccessKeyConfig>,
    /// Role ARNs that AssumeRole / AssumeRoleWithOIDC accept.
    pub roles: Vec<String>,
}

/// An access key pair.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    /// `LTAI…`.
    pub id: String,
    /// The secret (never printed).
    pub secret: Secret,
    /// RAM user the key belongs to (`GetCallerIdentity` then says `RAMUser`); none = the
    /// account's own key (`Account`).
    #[serde(default)]
    pub user: Option<String>,
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value, for signature checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// STS (AssumeRole, AssumeRoleWithOIDC) behaviour.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StsConfig {
    /// Accept any well-formed role ARN, not only those listed under accounts.
    pub allow_any_role: bool,
    /// Longest `DurationSeconds` accepted.
    #[serde(deserialize_with = "de_duration")]
    pub max_duration: Duration,
    /// Trust conditions of roles for `AssumeRoleWithOIDC` (like the `oidc:iss`, `oidc:sub` and
    /// `oidc:aud` conditions of a RAM role's trust policy). A role with at least one entry
    /// accepts only tokens matching one of its entries; other roles accept any token.
    pub oidc_trust: Vec<OidcTrust>,
}

/// One trust condition of a role for `AssumeRoleWithOIDC`: the token's claims that must match
/// (each only when given). The emulator decodes the token's payload without verifying its
/// signature.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcTrust {
    /// The role ARN this entry belongs to.
    pub role: String,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `sub` (a ServiceAccount token's is `system:serviceaccount:<ns>:<name>`).
    pub subject: Option<String>,
    /// Required member of `aud`.
    pub audience: Option<String>,
}

impl Default for StsConfig {
    fn default() -> Self {
        Self {
            allow_any_role: true,
            max_duration: Duration::from_secs(12 * 3600),
            oidc_trust: Vec::new(),
        }
    }
}

/// A virtual border router.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VbrConfig {
    /// `vbr-…`.
    pub id: String,
    /// Region of the VBR.
    pub region: String,
    /// IPv6 enabled.
    #[serde(default)]
    pub ipv6: bool,
    /// Maximum BGP peers on the VBR, all its groups counted (default 8: "Each VBR supports a
    /// maximum of eight BGP peers").
    #[serde(default = "default_peer_quota")]
    pub peer_quota: u32,
    /// Maximum BGP groups on the VBR (default 8).
    #[serde(default = "default_group_quota")]
    pub group_quota: u32,
    /// Maximum BGP networks on the VBR (default 16; the real limit is not documented).
    #[serde(default = "default_network_quota")]
    pub network_quota: u32,
    /// Account (uid) owning the VBR: BGP network calls of other accounts do not see it.
    /// Default: none (every account sees it).
    #[serde(default)]
    pub owner: Option<String>,
    /// IPv4 address of the VBR side of the peering link.
    #[serde(default = "default_local_gateway_ip")]
    pub local_gateway_ip: std::net::Ipv4Addr,
    /// IPv4 address of the customer side of the peering link.
    #[serde(default = "default_peer_gateway_ip")]
    pub peer_gateway_ip: std::net::Ipv4Addr,
    /// IPv4 peering subnet(s): an IPv4 peer IP must lie in one (default `10.0.0.0/16`).
    #[serde(default = "default_peering_subnets", deserialize_with = "de_nets")]
    pub peering_subnets: Vec<ipnet::Ipv4Net>,
    /// IPv6 address of the VBR side (IPv6 VBRs).
    #[serde(default = "default_local_ipv6_gateway_ip")]
    pub local_ipv6_gateway_ip: std::net::Ipv6Addr,
    /// IPv6 address of the customer side (IPv6 VBRs).
    #[serde(default = "default_peer_ipv6_gateway_ip")]
    pub peer_ipv6_gateway_ip: std::net::Ipv6Addr,
    /// IPv6 peering subnet(s) (default `2408:4000::/32`).
    #[serde(default = "default_peering_ipv6_subnets", deserialize_with = "de_nets")]
    pub peering_ipv6_subnets: Vec<ipnet::Ipv6Net>,
}

impl VbrConfig {
    /// A VBR with the default quotas and peering addresses.
    pub fn new(id: impl Into<String>, region: impl Into<String>, ipv6: bool) -> Self {
        Self {
            id: id.into(),
            region: region.into(),
            ipv6,
            peer_quota: default_peer_quota(),
            group_quota: default_group_quota(),
            network_quota: default_network_quota(),
            owner: None,
            local_gateway_ip: default_local_gateway_ip(),
            peer_gateway_ip: default_peer_gateway_ip(),
            peering_subnets: default_peering_subnets(),
            local_ipv6_gateway_ip: default_local_ipv6_gateway_ip(),
            peer_ipv6_gateway_ip: default_peer_ipv6_gateway_ip(),
            peering_ipv6_subnets: default_peering_ipv6_subnets(),
        }
    }
}

/// The documented per-VBR peer limit.
pub const DEFAULT_PEER_QUOTA: u32 = 8;

fn default_peer_quota() -> u32 {
    DEFAULT_PEER_QUOTA
}
fn default_local_gateway_ip() -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(10, 0, 0, 1)
}
fn default_peer_gateway_ip() -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(10, 0, 0, 2)
}
fn default_peering_subnets() -> Vec<ipnet::Ipv4Net> {
    vec![ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 0, 0, 0), 16).expect("valid prefix")]
}
fn default_local_ipv6_gateway_ip() -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0x2408, 0x4000, 0x1000, 0, 0, 0, 0, 1)
}
fn default_peer_ipv6_gateway_ip() -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0x2408, 0x4000, 0x1000, 0, 0, 0, 0, 2)
}
fn default_peering_ipv6_subnets() -> Vec<ipnet::Ipv6Net> {
    vec![
        ipnet::Ipv6Net::new(
            std::net::Ipv6Addr::new(0x2408, 0x4000, 0, 0, 0, 0, 0, 0),
            32,
        )
        .expect("valid prefix"),
    ]
}
fn default_group_quota() -> u32 {
    8
}
pub(crate) fn default_network_quota() -> u32 {
    super::network::DEFAULT_NETWORK_QUOTA
}

/// A BGP group present at start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// `bgpg-…`.
    pub id: String,
    /// The VBR id.
    pub vbr: String,
    /// On-premises ASN.
    pub peer_asn: u32,
    /// Alibaba Cloud side ASN (default 45104).
    #[serde(default = "default_local_asn")]
    pub local_asn: u32,
    /// IPv4 (default) or IPv6.
    #[serde(default)]
    pub ip_version: IpVersion,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// BGP MD5 key.
    #[serde(default)]
    pub auth_key: String,
    /// Fake ASN.
    #[serde(default)]
    pub is_fake_asn: bool,
    /// Maximum routes per peer (default 110).
    #[serde(default = "default_route_quota")]
    pub route_quota: u32,
    /// Default group of the VBR (the `IsDefault` filter).
    #[serde(default)]
    pub is_default: bool,
}

fn default_local_asn() -> u32 {
    45104
}
fn default_route_quota() -> u32 {
    110
}

/// A BGP peer present at start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// `bgp-…`.
    pub id: String,
    /// The group id.
    pub group: String,
    /// Peer IP.
    #[serde(default)]
    pub peer_ip_address: String,
    /// IP version (default: the group's).
    #[serde(default)]
    pub ip_version: Option<IpVersion>,
    /// BFD.
    #[serde(default)]
    pub enable_bfd: bool,
    /// BFD hop count (default 255).
    #[serde(default)]
    pub bfd_multi_hop: Option<u8>,
}

/// Added per-call latency: fixed (`min == max`) or uniform in `min..=max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Lower bound.
    pub min: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Latency {
    /// A fixed latency.
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// Picks one latency.
    pub fn sample(&self) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        use rand::Rng as _;
        let ns = rand::rng().random_range(self.min.as_nanos()..=self.max.as_nanos());
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// A configuration value that could not be parsed or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A duration string is invalid.
    #[error(transparent)]
    Duration(#[from] crate::duration::DurationError),
    /// A latency string is invalid.
    #[error("invalid latency {0:?} (examples: 0ms, 20ms, 10ms..50ms)")]
    Latency(String),
    /// An `--access-key` value is not `ID:SECRET`.
    #[error("invalid access key (want ID:SECRET)")]
    AccessKey,
    /// The seed file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The seed file cannot be parsed.
    #[error("cannot parse config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl FromStr for Latency {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::Latency(s.to_owned());
        match s.split_once("..") {
            Some((min, max)) => {
                let min = parse_duration(min).map_err(|_| bad())?;
                let max = parse_duration(max.trim_start_matches('=')).map_err(|_| bad())?;
                if max < min {
                    return Err(bad());
                }
                Ok(Self { min, max })
            }
            None => parse_duration(s).map(Self::fixed).map_err(|_| bad()),
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrMillis::deserialize(d)? {
            StringOrMillis::Millis(ms) => Ok(Self::fixed(Duration::from_millis(ms))),
            StringOrMillis::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrMillis {
    Millis(u64),
    Text(String),
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match StringOrMillis::deserialize(d)? {
        StringOrMillis::Millis(ms) => Ok(Duration::from_millis(ms)),
        StringOrMillis::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// A list of CIDR blocks (`10.0.0.0/16`), or one as a plain string.
fn de_nets<'de, D: Deserializer<'de>, N: FromStr>(d: D) -> Result<Vec<N>, D::Error>
where
    N::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let list = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    list.iter()
        .map(|s| {
            s.trim()
                .parse::<N>()
                .map_err(|e| serde::de::Error::custom(format!("CIDR {s:?}: {e}")))
        })
        .collect()
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<StringOrMillis>::deserialize(d)? {
        None => Ok(None),
        Some(StringOrMillis::Millis(ms)) => Ok(Some(Duration::from_millis(ms))),
        Some(StringOrMillis::Text(s)) => parse_duration(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl EmulatorConfig {
    /// The embedded demo configuration: regions cn-shanghai and cn-hangzhou, access key
    /// [`DEMO_ACCESS_KEY_ID`] / [`DEMO_ACCESS_KEY_SECRET`], VBR [`DEMO_VBR`] (IPv4 + IPv6) in
    /// cn-shanghai with groups [`DEMO_GROUP_V4`] (IPv4, PeerAsn 65001) and [`DEMO_GROUP_V6`]
    /// (IPv6, PeerAsn 65002), Pending delay 2 s. ClientTokens may hold non-ASCII characters here
    /// (the official SDK cross-tests use one; the real API and the default config refuse them).
    pub fn demo() -> Self {
        Self {
            regions: vec![DEMO_REGION.to_owned(), "cn-hangzhou".to_owned()],
            accounts: vec![AccountConfig {
                uid: DEMO_ACCOUNT_UID.to_owned(),
                access_keys: vec![AccessKeyConfig {
                    id: DEMO_ACCESS_KEY_ID.to_owned(),
                    secret: Secret::new(DEMO_ACCESS_KEY_SECRET),
                    user: None,
                }],
                roles: vec![format!(
                    "acs:ram::{DEMO_ACCOUNT_UID}:role/alicloud-bgp-operator"
                )],
            }],
            vbrs: vec![VbrConfig::new(DEMO_VBR, DEMO_REGION, true)],
            groups: vec![
                GroupConfig {
                    id: DEMO_GROUP_V4.to_owned(),
                    vbr: DEMO_VBR.to_owned(),
                    peer_asn: 65001,
                    local_asn: default_local_asn(),
                    ip_version: IpVersion::Ipv4,
                    name: "demo-ipv4".to_owned(),
                    description: "Demo IPv4 group".to_owned(),
                    auth_key: String::new(),
                    is_fake_asn: false,
                    route_quota: default_route_quota(),
                    is_default: true,
                },
                GroupConfig {
                    id: DEMO_GROUP_V6.to_owned(),
                    vbr: DEMO_VBR.to_owned(),
                    peer_asn: 65002,
                    local_asn: default_local_asn(),
                    ip_version: IpVersion::Ipv6,
                    name: "demo-ipv6".to_owned(),
                    description: "Demo IPv6 group".to_owned(),
                    auth_key: String::new(),
                    is_fake_asn: false,
                    route_quota: default_route_quota(),
                    is_default: false,
                },
            ],
            client_token_ascii_only: false,
            ..Self::default()
        }
    }

    /// Parses a seed file: JSON if it ends in `.json`, YAML otherwise.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            Self::from_yaml(&text)
        };
        let config: Self = parsed.map_err(|message| ConfigError::Parse {
            path: display,
            message,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses YAML (or JSON, which is YAML) text.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// Adds an access key to the first account (creating an account `1000000000000000` if none
    /// exists).
    pub fn add_access_key(&mut self, id: impl Into<String>, secret: Secret) {
        if self.accounts.is_empty() {
            self.accounts.push(AccountConfig {
                uid: "1000000000000000".to_owned(),
                ..AccountConfig::default()
            });
        }
        if let Some(account) = self.accounts.first_mut() {
            account.access_keys.push(AccessKeyConfig {
                id: id.into(),
                secret,
                user: None,
            });
        }
    }

    /// Every known region: [`EmulatorConfig::regions`] plus the regions of the VBRs.
    pub fn all_regions(&self) -> Vec<String> {
        let mut out = self.regions.clone();
        for vbr in &self.vbrs {
            if !out.contains(&vbr.region) {
                out.push(vbr.region.clone());
            }
        }
        out
    }

    /// Checks ids are unique and references resolve.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let mut keys = HashSet::new();
        for account in &self.accounts {
            for key in &account.access_keys {
                if key.id.is_empty() || !keys.insert(key.id.as_str()) {
                    return invalid(format!("access key id {:?} empty or repeated", key.id));
                }
            }
        }
        let mut vbrs = HashSet::new();
        for vbr in &self.vbrs {
            if !vbrs.insert(vbr.id.as_str()) {
                return invalid(format!("VBR {} repeated", vbr.id));
            }
        }
        let mut groups = HashSet::new();
        for group in &self.groups {
            if !groups.insert(group.id.as_str()) {
                return invalid(format!("group {} repeated", group.id));
            }
            if !vbrs.contains(group.vbr.as_str()) {
                return invalid(format!("group {} on unknown VBR {}", group.id, group.vbr));
            }
        }
        let mut peers = HashSet::new();
        for peer in &self.peers {
            if !peers.insert(peer.id.as_str()) {
                return invalid(format!("peer {} repeated", peer.id));
            }
            if !groups.contains(peer.group.as_str()) {
                return invalid(format!("peer {} in unknown group {}", peer.id, peer.group));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        // The one duration syntax (crate::duration): a string without a unit is seconds; a
        // number in a document is milliseconds (what GET /__admin/config answers).
        let parse = parse_duration;
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse("PT2S").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("250").unwrap(), Duration::from_secs(250));
        assert!(parse("-1s").is_err());
        assert!(parse("soon").is_err());
        let doc = |json: &str| {
            serde_json::from_str::<EmulatorConfig>(json)
                .unwrap()
                .pending_delay
        };
        assert_eq!(doc(r#"{"pending_delay": "250"}"#), Duration::from_secs(250));
        assert_eq!(doc(r#"{"pending_delay": 250}"#), Duration::from_millis(250));
        let err = serde_json::from_str::<EmulatorConfig>(r#"{"pending_delay": "soon"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
    }

    #[test]
    fn latency_parses() {
        assert_eq!("0ms".parse::<Latency>().unwrap(), Latency::default());
        let l: Latency = "10ms..50ms".parse().unwrap();
        assert_eq!(
            (l.min, l.max),
            (Duration::from_millis(10), Duration::from_millis(50))
        );
        for _ in 0..100 {
            let s = l.sample();
            assert!(s >= l.min && s <= l.max);
        }
        assert!("50ms..10ms".parse::<Latency>().is_err());
    }

    #[test]
    fn demo_is_valid_and_matches_the_brief() {
        let demo = EmulatorConfig::demo();
        demo.validate().unwrap();
        assert_eq!(demo.all_regions(), ["cn-shanghai", "cn-hangzhou"]);
        assert_eq!(demo.pending_delay, Duration::from_secs(2));
        assert!(demo.vbrs[0].ipv6);
        assert_eq!(demo.groups[0].ip_version, IpVersion::Ipv4);
        assert_eq!(demo.groups[0].peer_asn, 65001);
        assert_eq!(demo.groups[1].ip_version, IpVersion::Ipv6);
        assert_eq!(demo.accounts[0].access_keys[0].id, DEMO_ACCESS_KEY_ID);
    }

    #[test]
    fn yaml_seed_parses_with_defaults() {
        let yaml = r#"
accounts:
  - uid: "42"
    access_keys: [{ id: AK1, secret: S1 }]
vbrs:
  - { id: vbr-a, region: cn-beijing, peer_quota: 1 }
groups:
  - { id: bgpg-a, vbr: vbr-a, peer_asn: 65010, ip_version: ipv6 }
pending_delay: 0s
latency: 1ms..2ms
qps_per_key: 5
token_retention: 1h
"#;
        let c = EmulatorConfig::from_yaml(yaml).unwrap();
        c.validate().unwrap();
        assert_eq!(c.all_regions(), ["cn-beijing"]);
        assert_eq!(c.pending_delay, Duration::ZERO);
        assert_eq!(c.modify_delay, Duration::from_secs(1));
        assert_eq!(c.groups[0].ip_version, IpVersion::Ipv6);
        assert_eq!(c.groups[0].local_asn, 45104);
        assert_eq!(c.qps_per_key, Some(5));
        assert_eq!(c.token_retention, Duration::from_secs(3600));
        assert_eq!(c.timestamp_window, Duration::from_secs(900));
        assert_eq!(c.accounts[0].access_keys[0].secret.expose(), "S1");
    }

    #[test]
    fn json_seed_parses_and_unknown_fields_are_rejected() {
        let c: EmulatorConfig =
            serde_json::from_str(r#"{"pending_delay": 1500, "vbrs": []}"#).unwrap();
        assert_eq!(c.pending_delay, Duration::from_millis(1500));
        assert!(EmulatorConfig::from_yaml("pending_dealy: 1s").is_err());
    }

    #[test]
    fn validate_catches_dangling_references() {
        let mut c = EmulatorConfig::demo();
        c.groups[0].vbr = "vbr-missing".to_owned();
        assert!(c.validate().is_err());
        let mut c = EmulatorConfig::demo();
        c.add_access_key(DEMO_ACCESS_KEY_ID, Secret::new("x"));
        assert!(c.validate().is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = EmulatorConfig::demo();
        let debug = format!("{c:?}");
        assert!(!debug.contains(DEMO_ACCESS_KEY_SECRET), "{debug}");
        assert!(debug.contains(DEMO_ACCESS_KEY_ID));
    }
}
