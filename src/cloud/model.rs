//! Request and response types of the BGP operations, and lenient decoding of the wire.
//!
//! The real API is loose about types: booleans come as `true`, `"true"` or `"True"`,
//! integers as `5` or `"5"`, ASNs as strings or numbers, and unset strings as `""`. The
//! deserializers here accept all of those; unknown fields are ignored. `AuthKey` is a secret:
//! peers drop it, groups hold it in a redacting [`super::group::AuthKey`].

use serde::{Deserialize, Serialize};

use super::error::CloudError;

/// The VPC API version all operations use.
pub const VPC_API_VERSION: &str = "2016-04-28";
/// Largest `PageSize` the Describe operations accept.
pub const MAX_PAGE_SIZE: u32 = 50;
/// Longest ClientToken the API accepts.
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;

/// The request id of a successful call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// BFD hop count the API applies when none is given ("the default is 255").
pub const DEFAULT_BFD_MULTI_HOP: i32 = 255;

/// The canonical spelling of an IP version value (`ipv4`, `IPV4` → `IPv4`); other values are
/// kept verbatim.
pub fn canonical_ip_version(s: &str) -> String {
    let t = s.trim();
    if t.eq_ignore_ascii_case("ipv4") {
        "IPv4".to_owned()
    } else if t.eq_ignore_ascii_case("ipv6") {
        "IPv6".to_owned()
    } else {
        t.to_owned()
    }
}

/// API parameters of one call, in wire form (name, value).
pub(crate) type Params = Vec<(String, String)>;

pub(crate) fn push(params: &mut Params, name: &str, value: Option<impl ToString>) {
    if let Some(v) = value {
        params.push((name.to_owned(), v.to_string()));
    }
}

pub(crate) fn push_str(params: &mut Params, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        params.push((name.to_owned(), v.clone()));
    }
}

pub(crate) fn require(name: &str, value: &str) -> Result<(), CloudError> {
    if value.trim().is_empty() {
        Err(CloudError::invalid_request(format!("{name} is required")))
    } else {
        Ok(())
    }
}

pub(crate) fn check_client_token(token: &Option<String>) -> Result<(), CloudError> {
    match token {
        // Documented: only ASCII characters, at most 64. Control characters are refused here;
        // other non-ASCII is left for the server to judge (the published signature vectors use
        // one; the operator's own tokens are `abo-<uid>`).
        Some(t)
            if t.is_empty()
                || t.chars().count() > MAX_CLIENT_TOKEN_LEN
                || t.chars().any(char::is_control) =>
        {
            Err(CloudError::invalid_request(format!(
                "ClientToken must be 1 to {MAX_CLIENT_TOKEN_LEN} printable characters"
            )))
        }
        _ => Ok(()),
    }
}

/// `EnableBfd` and, with BFD on, `BfdMultiHop` (the API requires the hop count with BFD: the
/// documented default 255 when none is given).
fn push_bfd(params: &mut Params, enable_bfd: bool, hop: Option<i32>) {
    params.push(("EnableBfd".to_owned(), enable_bfd.to_string()));
    if enable_bfd {
        params.push((
            "BfdMultiHop".to_owned(),
            hop.unwrap_or(DEFAULT_BFD_MULTI_HOP).to_string(),
        ));
    }
}

pub(crate) fn check_paging(
    page_number: Option<u32>,
    page_size: Option<u32>,
) -> Result<(), CloudError> {
    if page_number == Some(0) {
        return Err(CloudError::invalid_request("PageNumber starts at 1"));
    }
    if let Some(size) = page_size
        && !(1..=MAX_PAGE_SIZE).contains(&size)
    {
        return Err(CloudError::invalid_request(format!(
            "PageSize must be between 1 and {MAX_PAGE_SIZE}, got {size}"
        )));
    }
    Ok(())
}

/// `CreateBgpPeer`: adds a BGP peer to a BGP group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateBgpPeerRequest {
    /// Region of the BGP group.
    pub region_id: String,
    /// The BGP group (`bgpg-…`).
    pub bgp_group_id: String,
    /// The peer's IP address.
    pub peer_ip_address: Option<String>,
    /// Whether to enable BFD.
    pub enable_bfd: Option<bool>,
    /// BFD hop count, 1–255.
    pub bfd_multi_hop: Option<i32>,
    /// `IPv4` or `IPv6`.
    pub ip_version: Option<String>,
    /// Idempotency token (≤ 64 ASCII characters). With a token, a failed attempt that may
    /// have reached the server (transport error, 5xx) is retried with the same token.
    pub client_token: Option<String>,
}

impl CreateBgpPeerRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("BgpGroupId", &self.bgp_group_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("BgpGroupId".to_owned(), self.bgp_group_id.clone()),
        ];
        push_str(&mut p, "PeerIpAddress", &self.peer_ip_address);
        match self.enable_bfd {
            // With BFD on the hop count is always sent (255 unless given).
            Some(true) => push_bfd(&mut p, true, self.bfd_multi_hop),
            Some(false) => p.push(("EnableBfd".to_owned(), "false".to_owned())),
            None => push(&mut p, "BfdMultiHop", self.bfd_multi_hop),
        }
        push_str(&mut p, "IpVersion", &self.ip_version);
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// The answer to `CreateBgpPeer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBgpPeerResponse {
    /// Request id.
    #[serde(rename = "RequestId", default)]
    pub request_id: String,
    /// The new peer's id (`bgp-…`).
    #[serde(rename = "BgpPeerId")]
    pub bgp_peer_id: String,
}

/// `ModifyBgpPeerAttribute`: changes a peer's group, IP or BFD settings.
///
/// The API documents `EnableBfd` as "false (default)": a modify that leaves it out switches
/// BFD off. So `enable_bfd` is not optional and is sent in every call, with the hop count
/// (255 unless given) when it is `true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyBgpPeerAttributeRequest {
    /// Region of the peer.
    pub region_id: String,
    /// The peer (`bgp-…`).
    pub bgp_peer_id: String,
    /// The peer's group (another group of the same VBR moves it there).
    pub bgp_group_id: Option<String>,
    /// New peer IP address.
    pub peer_ip_address: Option<String>,
    /// BFD on or off after the call (always sent).
    pub enable_bfd: bool,
    /// BFD hop count, 1–255 (sent only with BFD on; 255 when `None`).
    pub bfd_multi_hop: Option<i32>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl ModifyBgpPeerAttributeRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("BgpPeerId", &self.bgp_peer_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("BgpPeerId".to_owned(), self.bgp_peer_id.clone()),
        ];
        push_str(&mut p, "BgpGroupId", &self.bgp_group_id);
        push_str(&mut p, "PeerIpAddress", &self.peer_ip_address);
        push_bfd(&mut p, self.enable_bfd, self.bfd_multi_hop);
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// `DeleteBgpPeer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteBgpPeerRequest {
    /// Region of the peer.
    pub region_id: String,
    /// The peer (`bgp-…`).
    pub bgp_peer_id: String,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl DeleteBgpPeerRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("BgpPeerId", &self.bgp_peer_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("BgpPeerId".to_owned(), self.bgp_peer_id.clone()),
        ];
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// `DescribeBgpPeers`: lists peers, optionally filtered; a missing id gives an empty page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeBgpPeersRequest {
    /// Region to list.
    pub region_id: String,
    /// Only peers of this group.
    pub bgp_group_id: Option<String>,
    /// Only this peer.
    pub bgp_peer_id: Option<String>,
    /// Only peers of this VBR.
    pub router_id: Option<String>,
    /// Only default (or non-default) peers.
    pub is_default: Option<bool>,
    /// Page number, from 1 (default 1).
    pub page_number: Option<u32>,
    /// Page size, 1..=50 (default 10).
    pub page_size: Option<u32>,
}

impl DescribeBgpPeersRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        check_paging(self.page_number, self.page_size)?;
        let mut p = vec![("RegionId".to_owned(), self.region_id.clone())];
        push_str(&mut p, "BgpGroupId", &self.bgp_group_id);
        push_str(&mut p, "BgpPeerId", &self.bgp_peer_id);
        push_str(&mut p, "RouterId", &self.router_id);
        push(&mut p, "IsDefault", self.is_default);
        push(&mut p, "PageNumber", self.page_number);
        push(&mut p, "PageSize", self.page_size);
        Ok(p)
    }
}

/// `DescribeBgpGroups`: lists BGP groups, optionally filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeBgpGroupsRequest {
    /// Region to list.
    pub region_id: String,
    /// Only this group.
    pub bgp_group_id: Option<String>,
    /// Only groups of this VBR.
    pub router_id: Option<String>,
    /// Only default (or non-default) groups.
    pub is_default: Option<bool>,
    /// Page number, from 1 (default 1).
    pub page_number: Option<u32>,
    /// Page size, 1..=50 (default 10).
    pub page_size: Option<u32>,
}

impl DescribeBgpGroupsRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        check_paging(self.page_number, self.page_size)?;
        let mut p = vec![("RegionId".to_owned(), self.region_id.clone())];
        push_str(&mut p, "BgpGroupId", &self.bgp_group_id);
        push_str(&mut p, "RouterId", &self.router_id);
        push(&mut p, "IsDefault", self.is_default);
        push(&mut p, "PageNumber", self.page_number);
        push(&mut p, "PageSize", self.page_size);
        Ok(p)
    }
}

/// Lifecycle status of a BGP peer. Documented values: Pending, Available, Modifying,
/// Deleting, Deleted (older examples show lower case: parsed case-insensitively). An empty
/// value is [`PeerStatus::Unknown`]; anything else is kept in [`PeerStatus::Other`], never
/// mistaken for a known state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum PeerStatus {
    /// Being created.
    Pending,
    /// Ready for use (and for Modify/Delete).
    Available,
    /// A modification is being applied.
    Modifying,
    /// Being deleted.
    Deleting,
    /// Deleted (may still be listed for a while).
    Deleted,
    /// No status reported.
    #[default]
    Unknown,
    /// Any other value, verbatim.
    Other(String),
}

impl PeerStatus {
    /// Parses a wire value, ignoring case.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => PeerStatus::Pending,
            "available" => PeerStatus::Available,
            "modifying" => PeerStatus::Modifying,
            "deleting" => PeerStatus::Deleting,
            "deleted" => PeerStatus::Deleted,
            "" => PeerStatus::Unknown,
            _ => PeerStatus::Other(s.trim().to_owned()),
        }
    }

    /// The canonical spelling (`""` for [`PeerStatus::Unknown`]).
    pub fn as_str(&self) -> &str {
        match self {
            PeerStatus::Pending => "Pending",
            PeerStatus::Available => "Available",
            PeerStatus::Modifying => "Modifying",
            PeerStatus::Deleting => "Deleting",
            PeerStatus::Deleted => "Deleted",
            PeerStatus::Unknown => "",
            PeerStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for PeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for PeerStatus {
    fn from(s: &str) -> Self {
        PeerStatus::parse(s)
    }
}

impl Serialize for PeerStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PeerStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::string(d).map(|s| PeerStatus::parse(&s))
    }
}

/// State of a peer's BGP session. Documented values: Idle, Connect, Active, Established,
/// Down; parsed case-insensitively, anything else kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BgpSessionStatus {
    /// Idle.
    Idle,
    /// Connecting.
    Connect,
    /// Trying to connect.
    Active,
    /// Up.
    Established,
    /// Down.
    Down,
    /// Any other value, verbatim.
    Other(String),
}

impl BgpSessionStatus {
    /// Parses a wire value, ignoring case; `None` for an empty one.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "" => return None,
            "idle" => BgpSessionStatus::Idle,
            "connect" => BgpSessionStatus::Connect,
            "active" => BgpSessionStatus::Active,
            "established" => BgpSessionStatus::Established,
            "down" => BgpSessionStatus::Down,
            _ => BgpSessionStatus::Other(s.trim().to_owned()),
        })
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        match self {
            BgpSessionStatus::Idle => "Idle",
            BgpSessionStatus::Connect => "Connect",
            BgpSessionStatus::Active => "Active",
            BgpSessionStatus::Established => "Established",
            BgpSessionStatus::Down => "Down",
            BgpSessionStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for BgpSessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BgpSessionStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BgpSessionStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::string(d).map(|s| BgpSessionStatus::parse(&s).unwrap_or(BgpSessionStatus::Other(s)))
    }
}

fn de_session<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BgpSessionStatus>, D::Error> {
    de::opt_string(d).map(|s| s.as_deref().and_then(BgpSessionStatus::parse))
}

/// One BGP peer as `DescribeBgpPeers` reports it (without the `AuthKey`, a secret).
///
/// Empty strings on the wire decode as `None` for the optional fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BgpPeerInfo {
    /// Peer id (`bgp-…`).
    #[serde(default)]
    pub bgp_peer_id: String,
    /// Group id (`bgpg-…`).
    #[serde(default)]
    pub bgp_group_id: String,
    /// Peer IP address.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub peer_ip_address: Option<String>,
    /// Resource status: Pending, Available, Modifying, Deleting, Deleted.
    #[serde(default)]
    pub status: PeerStatus,
    /// BGP session state: Idle, Connect, Active, Established, Down (often empty).
    #[serde(default, deserialize_with = "de_session")]
    pub bgp_status: Option<BgpSessionStatus>,
    /// Local ASN.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub local_asn: Option<u64>,
    /// Peer ASN.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub peer_asn: Option<u64>,
    /// The VBR id.
    #[serde(default, deserialize_with = "de::string")]
    pub router_id: String,
    /// Region id.
    #[serde(default, deserialize_with = "de::string")]
    pub region_id: String,
    /// `IPv4` or `IPv6` (canonical spelling; responses say `ipv4`).
    #[serde(default, deserialize_with = "de::opt_ip_version")]
    pub ip_version: Option<String>,
    /// Whether BFD is enabled.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enable_bfd: Option<bool>,
    /// BFD hop count.
    #[serde(default, deserialize_with = "de::opt_i32")]
    pub bfd_multi_hop: Option<i32>,
    /// Routes advertised to the peer.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub advertised_route_count: Option<i64>,
    /// Routes received from the peer.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub received_route_count: Option<i64>,
    /// Name (of the group, as the API reports it).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Last modification, UTC `yyyy-MM-ddTHH:mmZ`.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub gmt_modified: Option<String>,
    /// Whether the ASN is a fake ASN.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_fake: Option<bool>,
}

/// A whole paged listing (see [`crate::cloud::VpcClient::list_bgp_peers`]).
#[derive(Debug, Clone, Default)]
pub struct PeerListing {
    /// The distinct peers returned.
    pub peers: Vec<BgpPeerInfo>,
    /// Pages fetched.
    pub pages: usize,
    /// The walk cannot have skipped a peer (except through someone else's addition between two
    /// pages, which the caller knows of when it is its own): it ended on a short page, and it
    /// was one page, or every page reported the same `TotalCount`, that count was more than one
    /// page can hold (so it counts the whole listing, not the page), and exactly that many
    /// distinct peers came back. Conservative: `false` whenever that cannot be shown.
    pub consistent: bool,
}

/// A caller's identity (STS `GetCallerIdentity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// The Alibaba Cloud account (uid) the credentials act in.
    #[serde(rename = "AccountId", default, deserialize_with = "de::string")]
    pub account_id: String,
    /// `acs:ram::<uid>:root`, `…:user/<name>` or `…:assumed-role/<role>/<session>`.
    #[serde(rename = "Arn", default, deserialize_with = "de::string")]
    pub arn: String,
    /// User id (for an assumed role `<role id>:<session>`).
    #[serde(rename = "UserId", default, deserialize_with = "de::string")]
    pub user_id: String,
}

/// One page of `DescribeBgpPeers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DescribeBgpPeersPage {
    /// Total number of matching peers.
    pub total_count: u64,
    /// This page's number.
    pub page_number: u32,
    /// This page's size.
    pub page_size: u32,
    /// The peers on this page.
    pub peers: Vec<BgpPeerInfo>,
    /// Request id.
    pub request_id: String,
}

/// One BGP group as `DescribeBgpGroups` reports it. The `AuthKey` the API answers in plain
/// text is held as a [`super::group::AuthKey`] (redacted `Debug`, never serialized).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BgpGroupInfo {
    /// Group id (`bgpg-…`).
    #[serde(default)]
    pub bgp_group_id: String,
    /// Name.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// The VBR id.
    #[serde(default, deserialize_with = "de::string")]
    pub router_id: String,
    /// Region id.
    #[serde(default, deserialize_with = "de::string")]
    pub region_id: String,
    /// Status (Pending, Available, …).
    #[serde(default, deserialize_with = "de::string")]
    pub status: String,
    /// `IPv4` or `IPv6` (canonical spelling).
    #[serde(default, deserialize_with = "de::opt_ip_version")]
    pub ip_version: Option<String>,
    /// Local ASN.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub local_asn: Option<u64>,
    /// Peer ASN.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub peer_asn: Option<u64>,
    /// Whether the ASN is fake (a string on the wire here).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_fake: Option<bool>,
    /// Hold time.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub hold: Option<String>,
    /// Keepalive interval.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub keepalive: Option<String>,
    /// Route limit per peer.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub route_limit: Option<String>,
    /// The group's MD5 key (`None` when it has none). Redacted in `Debug`, skipped when
    /// serialized.
    #[serde(
        default,
        skip_serializing,
        deserialize_with = "super::group::de_auth_key"
    )]
    pub auth_key: Option<super::group::AuthKey>,
}

/// One page of `DescribeBgpGroups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DescribeBgpGroupsPage {
    /// Total number of matching groups.
    pub total_count: u64,
    /// This page's number.
    pub page_number: u32,
    /// This page's size.
    pub page_size: u32,
    /// The groups on this page.
    pub groups: Vec<BgpGroupInfo>,
    /// Request id.
    pub request_id: String,
}

/// Wire form of a `{RequestId}`-only answer.
#[derive(Deserialize)]
pub(crate) struct RequestIdWire {
    #[serde(rename = "RequestId", default)]
    pub request_id: String,
}

/// Wire form of `DescribeBgpPeers`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeBgpPeersWire {
    #[serde(default)]
    request_id: String,
    #[serde(default, deserialize_with = "de::opt_u64")]
    total_count: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_number: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_size: Option<u64>,
    #[serde(default)]
    bgp_peers: Option<PeersWrapper>,
}

#[derive(Deserialize, Default)]
struct PeersWrapper {
    #[serde(rename = "BgpPeer", default, deserialize_with = "de::one_or_many")]
    bgp_peer: Vec<BgpPeerInfo>,
}

impl From<DescribeBgpPeersWire> for DescribeBgpPeersPage {
    fn from(w: DescribeBgpPeersWire) -> Self {
        let peers = w.bgp_peers.unwrap_or_default().bgp_peer;
        DescribeBgpPeersPage {
            total_count: w.total_count.unwrap_or(peers.len() as u64),
            page_number: clamp_u32(w.page_number.unwrap_or(1)),
            page_size: clamp_u32(w.page_size.unwrap_or(peers.len() as u64)),
            peers,
            request_id: w.request_id,
        }
    }
}

/// Wire form of `DescribeBgpGroups`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeBgpGroupsWire {
    #[serde(default)]
    request_id: String,
    #[serde(default, deserialize_with = "de::opt_u64")]
    total_count: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_number: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_size: Option<u64>,
    #[serde(default)]
    bgp_groups: Option<GroupsWrapper>,
}

#[derive(Deserialize, Default)]
struct GroupsWrapper {
    #[serde(rename = "BgpGroup", default, deserialize_with = "de::one_or_many")]
    bgp_group: Vec<BgpGroupInfo>,
}

impl From<DescribeBgpGroupsWire> for DescribeBgpGroupsPage {
    fn from(w: DescribeBgpGroupsWire) -> Self {
        let groups = w.bgp_groups.unwrap_or_default().bgp_group;
        DescribeBgpGroupsPage {
            total_count: w.total_count.unwrap_or(groups.len() as u64),
            page_number: clamp_u32(w.page_number.unwrap_or(1)),
            page_size: clamp_u32(w.page_size.unwrap_or(groups.len() as u64)),
            groups,
            request_id: w.request_id,
        }
    }
}

pub(crate) fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Lenient field deserializers.
pub(crate) mod de {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn describe(v: &Value) -> String {
        let mut s = v.to_string();
        if s.len() > 40 {
            s.truncate(40);
            s.push('…');
        }
        s
    }

    /// A string; numbers and booleans are turned into their text; null is `""`.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => String::new(),
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected a string, got {}",
                    describe(&other)
                )));
            }
        })
    }

    /// An IP version in its canonical spelling; `""` and null are `None`.
    pub fn opt_ip_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(opt_string(d)?.map(|s| super::canonical_ip_version(&s)))
    }

    /// Like [`string`], with `""` and null as `None`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let s = string(d)?;
        Ok(if s.is_empty() { None } else { Some(s) })
    }

    /// `true`, `"true"`, `"True"`, `1`, `"1"` (and the false forms); `""` and null are `None`.
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(D::Error::custom(format!("expected a boolean, got {n}"))),
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(D::Error::custom(format!("expected a boolean, got {s:?}"))),
            },
            other => Err(D::Error::custom(format!(
                "expected a boolean, got {}",
                describe(&other)
            ))),
        }
    }

    /// An integer as a number or a string; `""` and null are `None`.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}"))),
            other => Err(D::Error::custom(format!(
                "expected an integer, got {}",
                describe(&other)
            ))),
        }
    }

    /// An unsigned integer (e.g. an ASN up to 4294967294) as a number or a string.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("expected an unsigned integer, got {n}"))),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => {
                s.trim().parse::<u64>().map(Some).map_err(|_| {
                    D::Error::custom(format!("expected an unsigned integer, got {s:?}"))
                })
            }
            other => Err(D::Error::custom(format!(
                "expected an unsigned integer, got {}",
                describe(&other)
            ))),
        }
    }

    /// A 32-bit integer as a number or a string.
    pub fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        match opt_i64(d)? {
            None => Ok(None),
            Some(v) => i32::try_from(v)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("integer {v} out of range"))),
        }
    }

    /// A list, a single object (as XML-to-JSON converters produce), or null.
    pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: serde::de::DeserializeOwned,
    {
        match Value::deserialize(d)? {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .into_iter()
                .map(|v| T::deserialize(v).map_err(D::Error::custom))
                .collect(),
            obj @ Value::Object(_) => T::deserialize(obj)
                .map(|one| vec![one])
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a list, got {}",
                describe(&other)
            ))),
        }
    }
}

/// Decodes a successful JSON answer of `action`.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    action: &str,
    body: &[u8],
) -> Result<T, CloudError> {
    serde_json::from_slice(body).map_err(|e| CloudError::decode(action, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_decode_with_loose_types_and_drop_auth_key() {
        let body = br#"{
            "RequestId": "R1", "TotalCount": "2", "PageNumber": 1, "PageSize": "10",
            "BgpPeers": {"BgpPeer": [
                {"BgpPeerId": "bgp-1", "BgpGroupId": "bgpg-1", "PeerIpAddress": "10.0.0.2",
                 "Status": "Available", "BgpStatus": "Established", "LocalAsn": "45104",
                 "PeerAsn": 65001, "RouterId": "vbr-1", "RegionId": "cn-shanghai",
                 "IpVersion": "IPv4", "EnableBfd": "True", "BfdMultiHop": "3",
                 "AdvertisedRouteCount": 5, "ReceivedRouteCount": "7", "AuthKey": "s3cret",
                 "Name": "n", "Description": "", "GmtModified": "2024-01-02T03:04Z",
                 "IsFake": false, "Hold": "180", "SomethingNew": {"x": 1}},
                {"BgpPeerId": "bgp-2", "EnableBfd": true, "BfdMultiHop": 255, "IsFake": "false",
                 "LocalAsn": 4294967294, "PeerAsn": "", "Status": "Pending", "BgpStatus": ""}
            ]}
        }"#;
        let wire: DescribeBgpPeersWire = decode_json("DescribeBgpPeers", body).unwrap();
        let page = DescribeBgpPeersPage::from(wire);
        assert_eq!(page.total_count, 2);
        assert_eq!(page.page_size, 10);
        assert_eq!(page.request_id, "R1");
        let p = &page.peers[0];
        assert_eq!(p.bgp_peer_id, "bgp-1");
        assert_eq!(p.peer_ip_address.as_deref(), Some("10.0.0.2"));
        assert_eq!(p.local_asn, Some(45104));
        assert_eq!(p.peer_asn, Some(65001));
        assert_eq!(p.enable_bfd, Some(true));
        assert_eq!(p.bfd_multi_hop, Some(3));
        assert_eq!(p.advertised_route_count, Some(5));
        assert_eq!(p.received_route_count, Some(7));
        assert_eq!(p.description, None);
        assert_eq!(p.is_fake, Some(false));
        assert_eq!(p.bgp_status, Some(BgpSessionStatus::Established));
        let q = &page.peers[1];
        assert_eq!(q.local_asn, Some(4_294_967_294));
        assert_eq!(q.peer_asn, None);
        assert_eq!(q.bgp_status, None);
        assert_eq!(q.enable_bfd, Some(true));
        assert_eq!(q.is_fake, Some(false));
        // The secret is not kept anywhere.
        let json = serde_json::to_string(&page.peers).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(!format!("{page:?}").contains("s3cret"));
    }

    #[test]
    fn empty_and_single_item_pages() {
        let page: DescribeBgpPeersPage =
            decode_json::<DescribeBgpPeersWire>("X", br#"{"RequestId":"R","TotalCount":0,"PageNumber":1,"PageSize":10,"BgpPeers":{"BgpPeer":[]}}"#)
                .unwrap()
                .into();
        assert!(page.peers.is_empty());
        assert_eq!(page.total_count, 0);
        let page: DescribeBgpPeersPage =
            decode_json::<DescribeBgpPeersWire>("X", br#"{"RequestId":"R","BgpPeers":{}}"#)
                .unwrap()
                .into();
        assert!(page.peers.is_empty());
        let page: DescribeBgpPeersPage = decode_json::<DescribeBgpPeersWire>(
            "X",
            br#"{"RequestId":"R","TotalCount":1,"BgpPeers":{"BgpPeer":{"BgpPeerId":"bgp-9"}}}"#,
        )
        .unwrap()
        .into();
        assert_eq!(page.peers.len(), 1);
        assert_eq!(page.peers[0].bgp_peer_id, "bgp-9");
    }

    #[test]
    fn garbage_numbers_are_decode_errors() {
        let err = decode_json::<DescribeBgpPeersWire>(
            "DescribeBgpPeers",
            br#"{"BgpPeers":{"BgpPeer":[{"BfdMultiHop":"lots"}]}}"#,
        )
        .err()
        .unwrap();
        assert!(matches!(err, CloudError::Decode { .. }), "{err}");
        let err = decode_json::<DescribeBgpPeersWire>(
            "DescribeBgpPeers",
            br#"{"BgpPeers":{"BgpPeer":[{"EnableBfd":"maybe"}]}}"#,
        )
        .err()
        .unwrap();
        assert!(matches!(err, CloudError::Decode { .. }), "{err}");
    }

    #[test]
    fn groups_decode_with_string_typed_fields() {
        let body = br#"{"RequestId":"R","TotalCount":"1","PageNumber":"1","PageSize":"50",
            "BgpGroups":{"BgpGroup":[{"BgpGroupId":"bgpg-1","AuthKey":"k3y","IsFake":"true",
            "LocalAsn":"45104","PeerAsn":"65010","IpVersion":"IPv6","Status":"Available",
            "RouterId":"vbr-1","RegionId":"cn-hangzhou","Hold":"180","Keepalive":"60","RouteLimit":"110"}]}}"#;
        let page: DescribeBgpGroupsPage =
            decode_json::<DescribeBgpGroupsWire>("DescribeBgpGroups", body)
                .unwrap()
                .into();
        let g = &page.groups[0];
        assert_eq!(g.is_fake, Some(true));
        assert_eq!(g.local_asn, Some(45104));
        assert_eq!(g.peer_asn, Some(65010));
        assert_eq!(g.ip_version.as_deref(), Some("IPv6"));
        assert_eq!(g.route_limit.as_deref(), Some("110"));
        assert!(!format!("{g:?}").contains("k3y"));
    }

    #[test]
    fn create_params_and_validation() {
        let req = CreateBgpPeerRequest {
            region_id: "cn-shanghai".into(),
            bgp_group_id: "bgpg-1".into(),
            enable_bfd: Some(true),
            bfd_multi_hop: Some(3),
            client_token: Some("tok".into()),
            ..Default::default()
        };
        let p = req.to_params().unwrap();
        assert!(p.contains(&("EnableBfd".into(), "true".into())));
        assert!(p.contains(&("BfdMultiHop".into(), "3".into())));
        assert!(p.contains(&("ClientToken".into(), "tok".into())));
        assert!(!p.iter().any(|(k, _)| k == "PeerIpAddress"));

        let mut bad = req.clone();
        bad.client_token = Some("x".repeat(65));
        assert!(matches!(
            bad.to_params(),
            Err(CloudError::InvalidRequest { .. })
        ));
        let mut bad = req.clone();
        bad.region_id.clear();
        assert!(matches!(
            bad.to_params(),
            Err(CloudError::InvalidRequest { .. })
        ));
        let mut ok = req;
        ok.client_token = Some("x".repeat(64));
        assert!(ok.to_params().is_ok());
    }

    #[test]
    fn bfd_is_always_stated_with_its_hop_count() {
        let create = CreateBgpPeerRequest {
            region_id: "r".into(),
            bgp_group_id: "g".into(),
            enable_bfd: Some(true),
            ..Default::default()
        };
        let p = create.to_params().unwrap();
        assert!(p.contains(&("BfdMultiHop".into(), "255".into())), "{p:?}");
        let modify = ModifyBgpPeerAttributeRequest {
            region_id: "r".into(),
            bgp_peer_id: "bgp-1".into(),
            peer_ip_address: Some("10.0.0.3".into()),
            ..Default::default()
        };
        // BFD off is said out loud (the API's default for an absent EnableBfd is false anyway).
        let p = modify.to_params().unwrap();
        assert!(p.contains(&("EnableBfd".into(), "false".into())), "{p:?}");
        assert!(!p.iter().any(|(k, _)| k == "BfdMultiHop"), "{p:?}");
        let p = ModifyBgpPeerAttributeRequest {
            enable_bfd: true,
            bgp_group_id: Some("bgpg-2".into()),
            ..modify.clone()
        }
        .to_params()
        .unwrap();
        assert!(p.contains(&("EnableBfd".into(), "true".into())));
        assert!(p.contains(&("BfdMultiHop".into(), "255".into())));
        assert!(p.contains(&("BgpGroupId".into(), "bgpg-2".into())));
        let p = ModifyBgpPeerAttributeRequest {
            enable_bfd: true,
            bfd_multi_hop: Some(1),
            ..modify
        }
        .to_params()
        .unwrap();
        assert!(p.contains(&("BfdMultiHop".into(), "1".into())));
    }

    #[test]
    fn statuses_and_ip_versions_parse_case_insensitively() {
        let body = br#"{"BgpPeers":{"BgpPeer":[
            {"BgpPeerId":"a","Status":"available","BgpStatus":"ESTABLISHED","IpVersion":"ipv4"},
            {"BgpPeerId":"b","Status":"Deleted","BgpStatus":"","IpVersion":"IPV6"},
            {"BgpPeerId":"c","Status":"Frozen","BgpStatus":"OpenSent"},
            {"BgpPeerId":"d"}]}}"#;
        let page: DescribeBgpPeersPage = decode_json::<DescribeBgpPeersWire>("X", body)
            .unwrap()
            .into();
        let p = &page.peers;
        assert_eq!(p[0].status, PeerStatus::Available);
        assert_eq!(p[0].bgp_status, Some(BgpSessionStatus::Established));
        assert_eq!(p[0].ip_version.as_deref(), Some("IPv4"));
        assert_eq!(p[1].status.to_string(), "Deleted");
        assert_eq!(p[1].bgp_status, None);
        assert_eq!(p[1].ip_version.as_deref(), Some("IPv6"));
        assert_eq!(p[2].status, PeerStatus::Other("Frozen".into()));
        assert_eq!(
            p[2].bgp_status,
            Some(BgpSessionStatus::Other("OpenSent".into()))
        );
        assert_eq!(p[3].status.to_string(), "");
    }

    #[test]
    fn client_tokens_must_be_printable() {
        let mut req = DeleteBgpPeerRequest {
            region_id: "r".into(),
            bgp_peer_id: "bgp-1".into(),
            client_token: Some("abo\u{7f}".into()),
        };
        assert!(req.to_params().is_err());
        req.client_token = Some("abo\n1".into());
        assert!(req.to_params().is_err());
        req.client_token = Some("abo-1 *~".into());
        assert!(req.to_params().is_ok());
    }

    #[test]
    fn describe_paging_bounds() {
        let mut req = DescribeBgpPeersRequest {
            region_id: "r".into(),
            page_size: Some(50),
            ..Default::default()
        };
        assert!(req.to_params().is_ok());
        req.page_size = Some(51);
        assert!(req.to_params().is_err());
        req.page_size = Some(0);
        assert!(req.to_params().is_err());
        req.page_size = Some(1);
        req.page_number = Some(0);
        assert!(req.to_params().is_err());
        req.page_number = Some(2);
        req.is_default = Some(false);
        let p = req.to_params().unwrap();
        assert!(p.contains(&("IsDefault".into(), "false".into())));
        assert!(p.contains(&("PageNumber".into(), "2".into())));
    }
}
