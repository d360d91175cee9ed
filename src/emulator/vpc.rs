//! The VPC BGP operations: validation with the documented error codes, and their effect on
//! [`Resources`].

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::action::Action;
use super::config::TotalCountMode;
use super::error::ApiError;
use super::model::{GroupSnapshot, IpVersion, PeerSnapshot, Status};
use super::params::Params;
use super::resources::{
    DEFAULT_BFD_MULTI_HOP, DEFAULT_HOLD, DEFAULT_KEEPALIVE, Resources, transition,
};

/// Alibaba Cloud's own ASN; a peer ASN must differ.
pub const ALIYUN_ASN: u32 = 45104;

/// What an operation needs besides the resources.
#[derive(Clone, Debug)]
pub struct OpContext<'a> {
    /// Known regions.
    pub regions: &'a [String],
    /// Pending → Available.
    pub pending_delay: Duration,
    /// Modifying → Available.
    pub modify_delay: Duration,
    /// Deleting → gone.
    pub delete_delay: Duration,
    /// New peers are hidden from DescribeBgpPeers this long.
    pub visibility_lag: Duration,
    /// What TotalCount counts.
    pub total_count: TotalCountMode,
    /// Now.
    pub now: Timestamp,
    /// The call's ClientToken (recorded on created resources).
    pub client_token: Option<&'a str>,
    /// The calling account's uid (empty for unsigned calls).
    pub account: &'a str,
}

/// The result of an operation: response fields (without `RequestId`) and whether state changed.
#[derive(Clone, Debug, PartialEq)]
pub struct OpResult {
    /// Response fields.
    pub fields: Map<String, Value>,
    /// Whether resources changed.
    pub mutated: bool,
}

pub(super) fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) fn done(v: Value) -> Result<OpResult, ApiError> {
    Ok(OpResult {
        fields: fields(v),
        mutated: true,
    })
}

/// Runs a VPC action (STS actions are not handled here).
pub fn execute(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    action: Action,
    p: &Params,
) -> Result<OpResult, ApiError> {
    res.settle(ctx.now);
    match action {
        Action::CreateBgpPeer => create_bgp_peer(res, ctx, p),
        Action::DescribeBgpPeers => describe_bgp_peers(res, ctx, p),
        Action::ModifyBgpPeerAttribute => modify_bgp_peer(res, ctx, p),
        Action::DeleteBgpPeer => delete_bgp_peer(res, ctx, p),
        Action::CreateBgpGroup => create_bgp_group(res, ctx, p),
        Action::DescribeBgpGroups => describe_bgp_groups(res, ctx, p),
        Action::ModifyBgpGroupAttribute => modify_bgp_group(res, ctx, p),
        Action::DeleteBgpGroup => delete_bgp_group(res, ctx, p),
        Action::AddBgpNetwork => super::network::add(res, ctx, p),
        Action::DeleteBgpNetwork => super::network::delete(res, ctx, p),
        Action::DescribeBgpNetworks => super::network::describe(res, ctx, p),
        Action::AssumeRole | Action::AssumeRoleWithOidc | Action::GetCallerIdentity => {
            Err(ApiError::from_code("InvalidAction.NotFound"))
        }
    }
}

/// `RegionId`: required and known.
pub(super) fn region<'a>(ctx: &OpContext<'_>, p: &'a Params) -> Result<&'a str, ApiError> {
    let region = p.required("RegionId")?;
    if ctx.regions.iter().any(|r| r == region) {
        Ok(region)
    } else {
        Err(ApiError::from_code("InvalidRegionId.NotFound"))
    }
}

fn missing_group() -> ApiError {
    ApiError::from_code("InvalidBgpGroup")
}

fn missing_instance() -> ApiError {
    ApiError::new(400, "InvalidParams.NotFound", "instance not found")
}

fn cannot_operate() -> ApiError {
    ApiError::from_code("InvalidStatus.CannotOperate")
}

/// IPv6 requested on a VBR without IPv6 (no documented code; emulator-specific).
pub(super) fn vbr_without_ipv6() -> ApiError {
    ApiError::new(
        400,
        "InvalidVbr.Ipv6NotEnabled",
        "The specified vbr has not enabled ipv6.",
    )
}

/// A peer IP: well-formed and of the expected family, else `InvalidIP.Malformed`.
fn peer_ip(value: &str, version: IpVersion) -> Result<String, ApiError> {
    match value.parse::<IpAddr>() {
        Ok(addr) if version.matches(&addr) => Ok(addr.to_string()),
        _ => Err(ApiError::from_code("InvalidIP.Malformed")),
    }
}

/// A peer IP outside the VBR's peering subnets (or the VBR's own gateway address).
fn outside_subnet() -> ApiError {
    ApiError::new(
        400,
        "InvalidPeerIpAddress",
        "The specified peer IP address is not in the peering subnet of the VBR.",
    )
}

/// ModifyBgpPeerAttribute's documented refusal of a peer IP.
fn illegal_ip() -> ApiError {
    ApiError::from_code("IllegalParam.IpAddress")
}

/// A second peer with the same IP in one group (no documented code: assumed).
fn duplicate_ip() -> ApiError {
    ApiError::from_code("InvalidPeerIpAddress.AlreadyExists")
}

/// Whether `ip` may be a peer address on `vbr`: in a peering subnet and not the VBR's own
/// gateway address.
fn allowed_on_vbr(vbr: &super::model::VbrSnapshot, ip: &str) -> bool {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return false;
    };
    let own = [&vbr.local_gateway_ip, &vbr.local_ipv6_gateway_ip]
        .into_iter()
        .any(|g| g.parse::<IpAddr>().is_ok_and(|g| g == addr));
    !own && vbr.in_peering_subnet(&addr)
}

/// Whether another live peer of `group` already uses `ip`.
fn ip_taken(res: &Resources, group: &str, ip: &str, except: Option<&str>) -> bool {
    res.bgp_peers.iter().any(|p| {
        p.bgp_group_id == group
            && p.status != Status::Deleted
            && p.peer_ip_address == ip
            && except.is_none_or(|id| p.bgp_peer_id != id)
    })
}

/// `BfdMultiHop` is required when BFD is enabled (SDK model and docs); the gateway's missing
/// parameter error.
fn bfd_hop_required(enable_bfd: bool, hop: Option<u8>) -> Result<(), ApiError> {
    if enable_bfd && hop.is_none() {
        Err(ApiError::missing("BfdMultiHop"))
    } else {
        Ok(())
    }
}

/// `Name`: 2–128 characters, starts with a letter (or Chinese character), then letters,
/// digits, `.`, `_`, `-`.
pub fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    let mut chars = name.chars();
    (2..=128).contains(&len)
        && chars.next().is_some_and(char::is_alphabetic)
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `Description`: 2–256 characters, starts with a letter (or Chinese character), not with
/// `http://` or `https://`.
pub fn valid_description(description: &str) -> bool {
    let len = description.chars().count();
    let lower = description.to_ascii_lowercase();
    (2..=256).contains(&len)
        && description.chars().next().is_some_and(char::is_alphabetic)
        && !lower.starts_with("http://")
        && !lower.starts_with("https://")
}

/// `AuthKey`: 1–64 printable ASCII characters without spaces (emulator rule; the real one is
/// not documented).
pub fn valid_auth_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic())
}

/// `LocalAsn`: 45104, 64512–65534 except 65025, or 4200000000–4294967294.
pub fn valid_local_asn(asn: u32) -> bool {
    asn == ALIYUN_ASN
        || ((64512..=65534).contains(&asn) && asn != 65025)
        || (4_200_000_000..=4_294_967_294).contains(&asn)
}

fn asn(p: &Params, name: &str) -> Result<Option<u32>, ApiError> {
    match p.int::<u64>(name)? {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter(name)),
    }
}

fn peer_asn(p: &Params) -> Result<Option<u32>, ApiError> {
    match asn(p, "PeerAsn")? {
        Some(ALIYUN_ASN) => Err(ApiError::from_code("InvalidPeerAsn.Malformed")),
        other => Ok(other),
    }
}

fn local_asn(p: &Params) -> Result<Option<u32>, ApiError> {
    match asn(p, "LocalAsn")? {
        Some(v) if !valid_local_asn(v) => Err(ApiError::invalid_parameter("LocalAsn")),
        other => Ok(other),
    }
}

/// Validates the optional group text fields; `description_code` differs between create
/// (`InvalidBgpDescription.Malformed`) and the generic table (`InvalidBgpDiscription.Malformed`).
fn group_texts<'a>(p: &'a Params, description_code: &str) -> Result<GroupTexts<'a>, ApiError> {
    let name = p.get("Name");
    if name.is_some_and(|n| !valid_name(n)) {
        return Err(ApiError::from_code("InvalidBgpName.Malformed"));
    }
    let description = p.get("Description");
    if description.is_some_and(|d| !valid_description(d)) {
        return Err(ApiError::from_code(description_code));
    }
    let auth_key = p.get("AuthKey");
    if auth_key.is_some_and(|k| !valid_auth_key(k)) {
        return Err(ApiError::from_code("InvalidBgpAuthkey.Malformed"));
    }
    Ok(GroupTexts {
        name,
        description,
        auth_key,
    })
}

/// The optional text fields of a group request.
struct GroupTexts<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    auth_key: Option<&'a str>,
}

fn bfd_multi_hop(p: &Params) -> Result<Option<u8>, ApiError> {
    Ok(p.int_in::<u32>("BfdMultiHop", 1..=255)?
        .and_then(|v| u8::try_from(v).ok()))
}

fn create_bgp_peer(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let group_id = p.required("BgpGroupId")?;
    let enable_bfd = p.bool("EnableBfd")?.unwrap_or(false);
    let hop = bfd_multi_hop(p)?;
    bfd_hop_required(enable_bfd, hop)?;
    let version = p.ip_version("IpVersion")?.unwrap_or_default();
    let group = res
        .group(group_id)
        .filter(|g| g.region_id == region)
        .ok_or_else(missing_group)?;
    if group.status == Status::Deleting {
        return Err(cannot_operate());
    }
    let vbr = res
        .vbr(&group.router_id)
        .ok_or_else(|| ApiError::from_code("InvalidVbrNetwork"))?;
    if version == IpVersion::Ipv6 && !vbr.ipv6_enabled {
        return Err(vbr_without_ipv6());
    }
    let ip = p
        .get("PeerIpAddress")
        .map(|ip| peer_ip(ip, version))
        .transpose()?
        .unwrap_or_default();
    if !ip.is_empty() && !allowed_on_vbr(vbr, &ip) {
        return Err(outside_subnet());
    }
    if !ip.is_empty() && ip_taken(res, &group.bgp_group_id, &ip, None) {
        return Err(duplicate_ip());
    }
    if res.peers_on_vbr(&vbr.router_id) >= vbr.peer_quota as usize {
        return Err(ApiError::from_code("QuotaExceeded.Bgp"));
    }
    let (status, status_until) = transition(Status::Pending, ctx.pending_delay, ctx.now);
    let visible_at =
        (!ctx.visibility_lag.is_zero()).then(|| super::clock::add(ctx.now, ctx.visibility_lag));
    let id = res.fresh_id("bgp-");
    let mut peer = PeerSnapshot {
        bgp_peer_id: id.clone(),
        bgp_group_id: group.bgp_group_id.clone(),
        router_id: group.router_id.clone(),
        region_id: group.region_id.clone(),
        peer_ip_address: ip,
        ip_version: version,
        enable_bfd,
        bfd_multi_hop: hop.unwrap_or(DEFAULT_BFD_MULTI_HOP),
        name: String::new(),
        description: String::new(),
        status,
        status_until,
        bgp_status: String::new(),
        session_since: (status == Status::Available).then_some(ctx.now),
        visible_at,
        bgp_status_override: None,
        client_token: ctx.client_token.map(str::to_owned),
        created_at: ctx.now,
        gmt_modified: ctx.now,
    };
    peer.refresh_bgp_status(ctx.now, res.timing.session);
    res.bgp_peers.push(peer);
    done(json!({ "BgpPeerId": id }))
}

fn modify_bgp_peer(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let peer_id = p.required("BgpPeerId")?;
    // Documented: "false: disables BFD. This is the default value." A modify that leaves
    // EnableBfd out switches BFD off.
    let enable_bfd = p.bool("EnableBfd")?.unwrap_or(false);
    let hop = bfd_multi_hop(p)?;
    bfd_hop_required(enable_bfd, hop)?;
    let peer = res
        .peer(peer_id)
        .filter(|x| x.region_id == region)
        .ok_or_else(missing_instance)?;
    if peer.status != Status::Available {
        return Err(cannot_operate());
    }
    // BgpGroupId other than the peer's own: move the peer to that group, which must be on the
    // same VBR (so the VBR's peer count, and its quota, are unchanged). Assumed behaviour.
    let target_group = match p.get("BgpGroupId") {
        Some(gid) if gid != peer.bgp_group_id => {
            let g = res
                .group(gid)
                .filter(|g| g.region_id == region)
                .ok_or_else(missing_group)?;
            if g.router_id != peer.router_id {
                return Err(ApiError::new(
                    400,
                    "InvalidBgpGroup",
                    "The specified BGP group is not on the VBR of the BGP peer.",
                ));
            }
            if g.status != Status::Available {
                return Err(cannot_operate());
            }
            Some(g.bgp_group_id.clone())
        }
        _ => None,
    };
    let ip = match p.get("PeerIpAddress") {
        Some(ip) => {
            let ip = peer_ip(ip, peer.ip_version).map_err(|_| illegal_ip())?;
            let vbr = res
                .vbr(&peer.router_id)
                .ok_or_else(|| ApiError::from_code("InvalidVbrNetwork"))?;
            if !allowed_on_vbr(vbr, &ip) {
                return Err(illegal_ip());
            }
            Some(ip)
        }
        None => None,
    };
    let group_after = target_group
        .clone()
        .unwrap_or_else(|| peer.bgp_group_id.clone());
    let ip_after = ip.clone().unwrap_or_else(|| peer.peer_ip_address.clone());
    if !ip_after.is_empty() && ip_taken(res, &group_after, &ip_after, Some(peer_id)) {
        return Err(duplicate_ip());
    }
    let session_reset =
        ip.as_ref().is_some_and(|ip| *ip != peer.peer_ip_address) || target_group.is_some();
    let (status, status_until) = transition(Status::Modifying, ctx.modify_delay, ctx.now);
    let session = res.timing.session;
    let Some(peer) = res.peer_mut(peer_id) else {
        return Err(missing_instance());
    };
    if let Some(g) = target_group {
        peer.bgp_group_id = g;
    }
    if let Some(ip) = ip {
        peer.peer_ip_address = ip;
    }
    peer.enable_bfd = enable_bfd;
    if let Some(h) = hop {
        peer.bfd_multi_hop = h;
    }
    if session_reset {
        // A new address or group: the session starts again once the change is applied.
        peer.session_since = (status == Status::Available).then_some(ctx.now);
    }
    peer.status = status;
    peer.status_until = status_until;
    peer.gmt_modified = ctx.now;
    peer.refresh_bgp_status(ctx.now, session);
    done(json!({}))
}

fn delete_bgp_peer(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let peer_id = p.required("BgpPeerId")?;
    let Some(peer) = res.peer_mut(peer_id).filter(|x| x.region_id == region) else {
        return Err(missing_instance());
    };
    if peer.status != Status::Available {
        return Err(cannot_operate());
    }
    let (status, status_until) = transition(Status::Deleting, ctx.delete_delay, ctx.now);
    peer.status = status;
    peer.status_until = status_until;
    peer.gmt_modified = ctx.now;
    res.settle(ctx.now);
    done(json!({}))
}

fn create_bgp_group(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let router_id = p.required("RouterId")?;
    let peer_asn = peer_asn(p)?.ok_or_else(|| ApiError::missing("PeerAsn"))?;
    let local_asn = local_asn(p)?.unwrap_or(ALIYUN_ASN);
    let GroupTexts {
        name,
        description,
        auth_key,
    } = group_texts(p, "InvalidBgpDescription.Malformed")?;
    let is_fake_asn = p.bool("IsFakeAsn")?.unwrap_or(false);
    let version = p.ip_version("IpVersion")?.unwrap_or_default();
    let route_quota = p.int_in::<u32>("RouteQuota", 1..=u32::MAX)?.unwrap_or(110);
    let vbr = res
        .vbr(router_id)
        .filter(|v| v.region_id == region && owned_by(v, ctx.account))
        .ok_or_else(|| ApiError::from_code("InvalidVbrNetwork"))?;
    if version == IpVersion::Ipv6 && !vbr.ipv6_enabled {
        return Err(vbr_without_ipv6());
    }
    if res.groups_on_vbr(router_id) >= vbr.group_quota as usize {
        return Err(ApiError::new(
            400,
            "QuotaExceeded.Bgp",
            "bgp group count per vbr quota exceed.",
        ));
    }
    let (status, status_until) = transition(Status::Pending, ctx.pending_delay, ctx.now);
    // New groups lag behind reads as new peers do (a ClientToken replay still answers the ID).
    let visible_at =
        (!ctx.visibility_lag.is_zero()).then(|| super::clock::add(ctx.now, ctx.visibility_lag));
    let id = res.fresh_id("bgpg-");
    res.bgp_groups.push(GroupSnapshot {
        bgp_group_id: id.clone(),
        router_id: vbr.router_id.clone(),
        region_id: vbr.region_id.clone(),
        name: name.unwrap_or_default().to_owned(),
        description: description.unwrap_or_default().to_owned(),
        peer_asn,
        local_asn,
        auth_key: auth_key.unwrap_or_default().to_owned(),
        ip_version: version,
        is_fake_asn,
        route_quota,
        is_default: false,
        hold: DEFAULT_HOLD,
        keepalive: DEFAULT_KEEPALIVE,
        status,
        status_until,
        visible_at,
        client_token: ctx.client_token.map(str::to_owned),
        gmt_modified: ctx.now,
    });
    done(json!({ "BgpGroupId": id }))
}

fn modify_bgp_group(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let group_id = p.required("BgpGroupId")?;
    let peer_asn = peer_asn(p)?;
    let local_asn = local_asn(p)?;
    let GroupTexts {
        name,
        description,
        auth_key,
    } = group_texts(p, "InvalidBgpDiscription.Malformed")?;
    // Documented as "false (default)", the wording ModifyBgpPeerAttribute uses for EnableBfd:
    // a modify that leaves IsFakeAsn out switches the fake ASN off (the strict reading).
    let is_fake_asn = p.bool("IsFakeAsn")?.unwrap_or(false);
    let clear_auth_key = p.bool("ClearAuthKey")?.unwrap_or(false);
    let route_quota = p.int_in::<u32>("RouteQuota", 1..=u32::MAX)?;
    if !group_visible(res, group_id, ctx.account) {
        return Err(missing_group());
    }
    let Some(group) = res.group_mut(group_id).filter(|g| g.region_id == region) else {
        return Err(missing_group());
    };
    if group.status != Status::Available {
        return Err(cannot_operate());
    }
    if let Some(v) = peer_asn {
        group.peer_asn = v;
    }
    if let Some(v) = local_asn {
        group.local_asn = v;
    }
    if let Some(v) = name {
        group.name = v.to_owned();
    }
    if let Some(v) = description {
        group.description = v.to_owned();
    }
    if let Some(v) = auth_key {
        group.auth_key = v.to_owned();
    }
    if clear_auth_key {
        group.auth_key.clear();
    }
    group.is_fake_asn = is_fake_asn;
    if let Some(v) = route_quota {
        group.route_quota = v;
    }
    let (status, status_until) = transition(Status::Modifying, ctx.modify_delay, ctx.now);
    group.status = status;
    group.status_until = status_until;
    group.gmt_modified = ctx.now;
    done(json!({}))
}

fn delete_bgp_group(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let group_id = p.required("BgpGroupId")?;
    let has_peers = res.bgp_peers.iter().any(|x| x.bgp_group_id == group_id);
    if !group_visible(res, group_id, ctx.account) {
        return Err(missing_group());
    }
    let Some(group) = res.group_mut(group_id).filter(|g| g.region_id == region) else {
        return Err(missing_group());
    };
    if has_peers {
        return Err(ApiError::from_code("DependencyViolation.BgpPeer"));
    }
    if group.status != Status::Available {
        return Err(cannot_operate());
    }
    let (status, status_until) = transition(Status::Deleting, ctx.delete_delay, ctx.now);
    group.status = status;
    group.status_until = status_until;
    group.gmt_modified = ctx.now;
    res.settle(ctx.now);
    done(json!({}))
}

/// Whether `account` may see `vbr` and its groups: a VBR with an `owner` belongs to that
/// account alone (a resource is visible only to its owner); one without is everyone's.
fn owned_by(vbr: &super::model::VbrSnapshot, account: &str) -> bool {
    vbr.owner.as_deref().is_none_or(|o| o == account)
}

/// Whether `account` may see group `id` (the group is as visible as its VBR).
fn group_visible(res: &Resources, id: &str, account: &str) -> bool {
    res.group(id)
        .and_then(|g| res.vbr(&g.router_id))
        .is_none_or(|v| owned_by(v, account))
}

/// `PageNumber` (default 1, ≥ 1) and `PageSize` (default 10, 1..=50).
pub(super) fn paging(p: &Params) -> Result<(usize, usize), ApiError> {
    let number = p.int_in::<u32>("PageNumber", 1..=u32::MAX)?.unwrap_or(1);
    let size = p.int_in::<u32>("PageSize", 1..=50)?.unwrap_or(10);
    Ok((number as usize, size as usize))
}

/// `TotalCount` as the configured wording has it: all matches, or this page's entries.
pub(super) fn total_count(ctx: &OpContext<'_>, all: usize, on_page: usize) -> usize {
    match ctx.total_count {
        TotalCountMode::Total => all,
        TotalCountMode::Page => on_page,
    }
}

pub(super) fn page<T>(items: Vec<T>, number: usize, size: usize) -> Vec<T> {
    items
        .into_iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .collect()
}

/// `GmtModified` as the reference gives it: UTC `yyyy-MM-ddTHH:mmZ`.
fn gmt(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%MZ").to_string()
}

/// The IP version as DescribeBgpPeers/DescribeBgpGroups spell it (`ipv4`, as in the documented
/// example).
fn wire_ip_version(v: IpVersion) -> String {
    v.as_str().to_ascii_lowercase()
}

/// One DescribeBgpPeers item with the current SDK's wire types.
pub fn peer_item(peer: &PeerSnapshot, group: Option<&GroupSnapshot>) -> Value {
    let g = |f: fn(&GroupSnapshot) -> String| group.map(f).unwrap_or_default();
    json!({
        "AdvertisedRouteCount": 0,
        "AuthKey": g(|g| g.auth_key.clone()),
        "BfdMultiHop": peer.bfd_multi_hop,
        "BgpGroupId": peer.bgp_group_id,
        "BgpPeerId": peer.bgp_peer_id,
        "BgpStatus": peer.bgp_status,
        "Description": peer.description,
        "EnableBfd": peer.enable_bfd,
        "GmtModified": gmt(peer.gmt_modified),
        "Hold": g(|g| g.hold.to_string()),
        "IpVersion": wire_ip_version(peer.ip_version),
        "IsFake": group.is_some_and(|g| g.is_fake_asn),
        "Keepalive": g(|g| g.keepalive.to_string()),
        "LocalAsn": g(|g| g.local_asn.to_string()),
        "Name": peer.name,
        "PeerAsn": g(|g| g.peer_asn.to_string()),
        "PeerIpAddress": peer.peer_ip_address,
        "ReceivedRouteCount": 0,
        "RegionId": peer.region_id,
        "RouteLimit": g(|g| g.route_quota.to_string()),
        "RouterId": peer.router_id,
        "Status": peer.status.as_str(),
    })
}

/// One DescribeBgpGroups item (every field a string, `IsFake` included).
pub fn group_item(group: &GroupSnapshot) -> Value {
    json!({
        "AuthKey": group.auth_key,
        "BgpGroupId": group.bgp_group_id,
        "Description": group.description,
        "Hold": group.hold.to_string(),
        "IpVersion": wire_ip_version(group.ip_version),
        "IsFake": group.is_fake_asn.to_string(),
        "Keepalive": group.keepalive.to_string(),
        "LocalAsn": group.local_asn.to_string(),
        "Name": group.name,
        "PeerAsn": group.peer_asn.to_string(),
        "RegionId": group.region_id,
        "RouteLimit": group.route_quota.to_string(),
        "RouterId": group.router_id,
        "Status": group.status.as_str(),
    })
}

fn describe_bgp_peers(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let group_id = p.get("BgpGroupId");
    let peer_id = p.get("BgpPeerId");
    let router_id = p.get("RouterId");
    let is_default = p.bool("IsDefault")?;
    let (number, size) = paging(p)?;
    let matching: Vec<Value> = res
        .bgp_peers
        .iter()
        .filter(|x| x.region_id == region && x.visible(ctx.now))
        .filter(|x| group_id.is_none_or(|g| x.bgp_group_id == g))
        .filter(|x| peer_id.is_none_or(|i| x.bgp_peer_id == i))
        .filter(|x| router_id.is_none_or(|r| x.router_id == r))
        .filter(|x| {
            is_default.is_none_or(|d| res.group(&x.bgp_group_id).is_some_and(|g| g.is_default) == d)
        })
        .map(|x| peer_item(x, res.group(&x.bgp_group_id)))
        .collect();
    let total = matching.len();
    let items = page(matching, number, size);
    let total = total_count(ctx, total, items.len());
    Ok(OpResult {
        fields: fields(json!({
            "TotalCount": total,
            "PageNumber": number,
            "PageSize": size,
            "BgpPeers": { "BgpPeer": items },
        })),
        mutated: false,
    })
}

fn describe_bgp_groups(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let group_id = p.get("BgpGroupId");
    let router_id = p.get("RouterId");
    let is_default = p.bool("IsDefault")?;
    let (number, size) = paging(p)?;
    let matching: Vec<Value> = res
        .bgp_groups
        .iter()
        .filter(|g| g.region_id == region && g.visible_at.is_none_or(|t| t <= ctx.now))
        .filter(|g| {
            res.vbr(&g.router_id)
                .is_none_or(|v| owned_by(v, ctx.account))
        })
        .filter(|g| group_id.is_none_or(|i| g.bgp_group_id == i))
        .filter(|g| router_id.is_none_or(|r| g.router_id == r))
        .filter(|g| is_default.is_none_or(|d| g.is_default == d))
        .map(group_item)
        .collect();
    let total = matching.len();
    let items = page(matching, number, size);
    let total = total_count(ctx, total, items.len());
    Ok(OpResult {
        fields: fields(json!({
            "TotalCount": total,
            "PageNumber": number,
            "PageSize": size,
            "BgpGroups": { "BgpGroup": items },
        })),
        mutated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::config::{DEMO_GROUP_V4, DEMO_REGION, EmulatorConfig};
    use crate::emulator::params::params;

    #[test]
    fn name_rules() {
        assert!(valid_name("ab"));
        assert!(valid_name("core-1.a_b"));
        assert!(valid_name("中文名称"));
        assert!(!valid_name("a"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("_abc"));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(valid_name(&"a".repeat(128)));
    }

    #[test]
    fn description_rules() {
        assert!(valid_description("BGP group"));
        assert!(valid_description("描述"));
        assert!(!valid_description("x"));
        assert!(!valid_description("http://x"));
        assert!(!valid_description("HTTPS://x"));
        assert!(!valid_description("9 lives"));
        assert!(!valid_description(&"a".repeat(257)));
    }

    #[test]
    fn asn_rules() {
        for ok in [45104, 64512, 65534, 4_200_000_000, 4_294_967_294] {
            assert!(valid_local_asn(ok), "{ok}");
        }
        for bad in [1, 64511, 65025, 65535, 4_199_999_999, 4_294_967_295] {
            assert!(!valid_local_asn(bad), "{bad}");
        }
        assert_eq!(
            peer_asn(&params(&[("PeerAsn", "45104")])).unwrap_err().code,
            "InvalidPeerAsn.Malformed"
        );
        assert_eq!(
            peer_asn(&params(&[("PeerAsn", "0")])).unwrap_err().code,
            "InvalidParameter"
        );
        assert_eq!(
            peer_asn(&params(&[("PeerAsn", "4294967296")]))
                .unwrap_err()
                .code,
            "InvalidParameter"
        );
        assert_eq!(
            peer_asn(&params(&[("PeerAsn", "65001")])).unwrap(),
            Some(65001)
        );
    }

    #[test]
    fn peer_ip_normalises_and_checks_family() {
        assert_eq!(
            peer_ip("2001:DB8::0:1", IpVersion::Ipv6).unwrap(),
            "2001:db8::1"
        );
        assert!(peer_ip("10.0.0.1", IpVersion::Ipv6).is_err());
        assert!(peer_ip("10.0.0.01", IpVersion::Ipv4).is_err());
    }

    #[test]
    fn create_then_describe_without_http() {
        let now = Timestamp::UNIX_EPOCH;
        let config = EmulatorConfig::demo();
        let regions = config.all_regions();
        let mut res = Resources::from_config(&config, now);
        let ctx = OpContext {
            regions: &regions,
            pending_delay: Duration::from_secs(2),
            modify_delay: Duration::from_secs(1),
            delete_delay: Duration::from_secs(1),
            visibility_lag: Duration::ZERO,
            total_count: TotalCountMode::Total,
            now,
            client_token: Some("t"),
            account: "",
        };
        let created = execute(
            &mut res,
            &ctx,
            Action::CreateBgpPeer,
            &params(&[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", DEMO_GROUP_V4),
                ("PeerIpAddress", "10.0.0.2"),
            ]),
        )
        .unwrap();
        assert!(created.mutated);
        let id = created.fields["BgpPeerId"].as_str().unwrap().to_owned();
        assert_eq!(res.peer(&id).unwrap().client_token.as_deref(), Some("t"));
        let described = execute(
            &mut res,
            &ctx,
            Action::DescribeBgpPeers,
            &params(&[("RegionId", DEMO_REGION), ("BgpPeerId", &id)]),
        )
        .unwrap();
        assert!(!described.mutated);
        assert_eq!(
            described.fields["BgpPeers"]["BgpPeer"][0]["Status"],
            "Pending"
        );
        let later = OpContext {
            now: clock_add(now, Duration::from_secs(2)),
            ..ctx.clone()
        };
        let described = execute(
            &mut res,
            &later,
            Action::DescribeBgpPeers,
            &params(&[("RegionId", DEMO_REGION), ("BgpPeerId", &id)]),
        )
        .unwrap();
        assert_eq!(
            described.fields["BgpPeers"]["BgpPeer"][0]["Status"],
            "Available"
        );
        assert_eq!(
            execute(&mut res, &ctx, Action::AssumeRole, &params(&[]))
                .unwrap_err()
                .code,
            "InvalidAction.NotFound"
        );
    }

    fn clock_add(t: Timestamp, d: Duration) -> Timestamp {
        crate::emulator::clock::add(t, d)
    }
}
