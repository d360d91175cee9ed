//! The BGP network operations (`AddBgpNetwork`, `DeleteBgpNetwork`, `DescribeBgpNetworks`): the
//! networks a VBR advertises over BGP, their validation with the documented error codes, and
//! the admin API that changes them out of band and sets a VBR's network quota.
//!
//! A network has no ID: it is identified by (RouterId, DstCidrBlock), compared as parsed
//! prefixes (`10.1.0.0/16` and `10.1.0.0/016` are one network). What the documentation does
//! not say is assumed as strictly as plausible (see `docs/cloud-fidelity.md`):
//!
//! - `DstCidrBlock` must be a prefix with no host bits set (`10.1.0.1/16` is refused with
//!   `InvalidIP.Malformed`, the table's code for a malformed address); an IPv6 prefix needs a
//!   VBR with IPv6 enabled.
//! - A network is `Pending` for the pending delay, then `Available`; deleting it makes it
//!   `Deleting` for the delete delay, then it is gone. Add of an existing network (any status
//!   but Deleting) is `InvalidParams.AlreadyExists` "bgp network already exists"; Add during
//!   its deletion and Delete while it is Pending or Deleting are `InvalidStatus.CannotOperate`;
//!   Delete of an unknown network is `InvalidParams.NotFound` "instance not found".
//! - Every network of a VBR, whatever its status, counts against the VBR's network quota
//!   (`network_quota`, default [`DEFAULT_NETWORK_QUOTA`]; `QuotaExceeded.BgpNetwork`).
//! - A new network is hidden from `DescribeBgpNetworks` for the visibility lag (as peers are);
//!   a ClientToken replay of its Add still answers success.
//! - A VBR with an `owner` account is visible only to that account: for the others Add and
//!   Delete answer `InvalidVbrNetwork` and Describe an empty list, which cannot be told apart
//!   from "no networks" (the operator checks the account before it reads).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock;
use super::error::ApiError;
use super::model::{Status, VbrSnapshot, ts_serde};
use super::params::Params;
use super::resources::{Resources, transition};
use super::server::{EmulatorHandle, Shared};
use super::vpc::{OpContext, OpResult, done, fields, page, paging, region, total_count};

/// Networks per VBR when the seed file names none (the real limit is not documented).
pub const DEFAULT_NETWORK_QUOTA: u32 = 16;

/// A BGP network as the emulator holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSnapshot {
    /// The VBR (`vbr-…`).
    pub router_id: String,
    /// Region of the VBR.
    pub region_id: String,
    /// The advertised prefix, canonical (`10.1.0.0/16`, `2408:4000::/48`).
    pub dst_cidr_block: String,
    /// `VpcId` of the Add (may be empty).
    #[serde(default)]
    pub vpc_id: String,
    /// Lifecycle status (Pending, Available, Deleting).
    pub status: Status,
    /// The status shown instead of [`NetworkSnapshot::status`] (admin API; e.g. `Enabled`,
    /// the documentation's other wording). Sticky.
    #[serde(default)]
    pub status_override: Option<String>,
    /// When the current transitional status ends (`None` when stable).
    #[serde(with = "ts_serde::option", default)]
    pub status_until: Option<Timestamp>,
    /// Hidden from DescribeBgpNetworks until then (`visibility_lag`).
    #[serde(with = "ts_serde::option", default)]
    pub visible_at: Option<Timestamp>,
    /// The ClientToken of the AddBgpNetwork call (if any; `None` for out-of-band networks).
    #[serde(default)]
    pub client_token: Option<String>,
    /// The account whose call added it (empty for out-of-band networks).
    #[serde(default)]
    pub account: String,
    /// Creation time.
    #[serde(with = "ts_serde")]
    pub created_at: Timestamp,
}

impl NetworkSnapshot {
    /// Whether DescribeBgpNetworks shows the network at `now`.
    pub fn visible(&self, now: Timestamp) -> bool {
        self.visible_at.is_none_or(|t| t <= now)
    }

    /// The `Status` on the wire.
    pub fn wire_status(&self) -> &str {
        self.status_override
            .as_deref()
            .unwrap_or(self.status.as_str())
    }

    /// Whether this is the network (`router_id`, `cidr`).
    pub fn is(&self, router_id: &str, cidr: &IpNet) -> bool {
        self.router_id == router_id && self.dst_cidr_block.parse::<IpNet>().ok() == Some(*cidr)
    }

    fn item(&self) -> Value {
        json!({
            "DstCidrBlock": self.dst_cidr_block,
            "RouterId": self.router_id,
            "Status": self.wire_status(),
            "VpcId": self.vpc_id,
        })
    }
}

/// Applies due transitions: Pending → Available, Deleting → gone.
pub fn settle(networks: &mut Vec<NetworkSnapshot>, now: Timestamp) {
    let due = |n: &NetworkSnapshot| n.status_until.is_some_and(|t| t <= now);
    networks.retain(|n| !(n.status == Status::Deleting && due(n)));
    for n in networks.iter_mut().filter(|n| due(n)) {
        n.status = Status::Available;
        n.status_until = None;
    }
}

/// A `DstCidrBlock`: a prefix without host bits, else `InvalidIP.Malformed`.
pub fn parse_cidr(value: &str) -> Result<IpNet, ApiError> {
    match value.parse::<IpNet>() {
        Ok(net) if net.trunc() == net => Ok(net),
        _ => Err(ApiError::from_code("InvalidIP.Malformed")),
    }
}

/// The VBR `router_id` in `region` as `account` sees it, else `InvalidVbrNetwork`.
fn vbr<'a>(
    res: &'a Resources,
    ctx: &OpContext<'_>,
    region: &str,
    router_id: &str,
) -> Result<&'a VbrSnapshot, ApiError> {
    res.vbr(router_id)
        .filter(|v| v.region_id == region && visible_to(v, ctx.account))
        .ok_or_else(|| ApiError::from_code("InvalidVbrNetwork"))
}

fn visible_to(vbr: &VbrSnapshot, account: &str) -> bool {
    vbr.owner.as_deref().is_none_or(|o| o == account)
}

/// `VpcId`: `vpc-` and lower-case alphanumerics, else `InvalidParams.NotFound` "vpc instance
/// not found" (VPCs are not modelled: any well-formed ID exists).
fn vpc_id(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.get("VpcId") {
        Some(v)
            if !(v.len() > 4
                && v.starts_with("vpc-")
                && v[4..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())) =>
        {
            Err(ApiError::from_code("InvalidParams.NotFound"))
        }
        other => Ok(other),
    }
}

/// `AddBgpNetwork`.
pub fn add(res: &mut Resources, ctx: &OpContext<'_>, p: &Params) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let router_id = p.required("RouterId")?;
    let cidr = parse_cidr(p.required("DstCidrBlock")?)?;
    let vpc = vpc_id(p)?;
    let vbr = vbr(res, ctx, region, router_id)?;
    if matches!(cidr, IpNet::V6(_)) && !vbr.ipv6_enabled {
        return Err(super::vpc::vbr_without_ipv6());
    }
    if let Some(existing) = res.bgp_networks.iter().find(|n| n.is(router_id, &cidr)) {
        return Err(if existing.status == Status::Deleting {
            ApiError::from_code("InvalidStatus.CannotOperate")
        } else {
            ApiError::from_code("InvalidParams.AlreadyExists")
        });
    }
    let on_vbr = res
        .bgp_networks
        .iter()
        .filter(|n| n.router_id == router_id)
        .count();
    if on_vbr >= vbr.network_quota as usize {
        return Err(ApiError::from_code("QuotaExceeded.BgpNetwork"));
    }
    let (status, status_until) = transition(Status::Pending, ctx.pending_delay, ctx.now);
    let visible_at =
        (!ctx.visibility_lag.is_zero()).then(|| clock::add(ctx.now, ctx.visibility_lag));
    let network = NetworkSnapshot {
        router_id: vbr.router_id.clone(),
        region_id: vbr.region_id.clone(),
        dst_cidr_block: cidr.to_string(),
        vpc_id: vpc.unwrap_or_default().to_owned(),
        status,
        status_override: None,
        status_until,
        visible_at,
        client_token: ctx.client_token.map(str::to_owned),
        account: ctx.account.to_owned(),
        created_at: ctx.now,
    };
    res.bgp_networks.push(network);
    done(json!({}))
}

/// `DeleteBgpNetwork`.
pub fn delete(res: &mut Resources, ctx: &OpContext<'_>, p: &Params) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let router_id = p.required("RouterId")?;
    let cidr = parse_cidr(p.required("DstCidrBlock")?)?;
    vbr(res, ctx, region, router_id)?;
    let Some(network) = res.bgp_networks.iter_mut().find(|n| n.is(router_id, &cidr)) else {
        return Err(ApiError::new(
            400,
            "InvalidParams.NotFound",
            "instance not found",
        ));
    };
    if network.status != Status::Available {
        return Err(ApiError::from_code("InvalidStatus.CannotOperate"));
    }
    let (status, status_until) = transition(Status::Deleting, ctx.delete_delay, ctx.now);
    network.status = status;
    network.status_until = status_until;
    network.status_override = None;
    settle(&mut res.bgp_networks, ctx.now);
    done(json!({}))
}

/// `DescribeBgpNetworks`: the visible networks of the region (or of `RouterId`), paged.
pub fn describe(
    res: &mut Resources,
    ctx: &OpContext<'_>,
    p: &Params,
) -> Result<OpResult, ApiError> {
    let region = region(ctx, p)?;
    let router_id = p.get("RouterId");
    let (number, size) = paging(p)?;
    let matching: Vec<Value> = res
        .bgp_networks
        .iter()
        .filter(|n| n.region_id == region && n.visible(ctx.now))
        .filter(|n| router_id.is_none_or(|r| n.router_id == r))
        .filter(|n| {
            res.vbr(&n.router_id)
                .is_none_or(|v| visible_to(v, ctx.account))
        })
        .map(NetworkSnapshot::item)
        .collect();
    let total = matching.len();
    let items = page(matching, number, size);
    let total = total_count(ctx, total, items.len());
    Ok(OpResult {
        fields: fields(json!({
            "TotalCount": total,
            "PageNumber": number,
            "PageSize": size,
            "BgpNetworks": { "BgpNetwork": items },
        })),
        mutated: false,
    })
}

/// An out-of-band network (admin API): added, or changed if it exists. No quota or VBR checks
/// beyond the VBR existing; visible at once (someone else made it long ago).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkChange {
    /// The VBR.
    pub router_id: String,
    /// The prefix.
    pub dst_cidr_block: String,
    /// `VpcId` (new networks; unchanged if absent).
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Status (sticky): `Pending`, `Available`, `Deleting`, or any other wording (`Enabled`)
    /// shown as is. Default for a new network: `Available`.
    #[serde(default)]
    pub status: Option<String>,
}

/// Why an out-of-band change cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkAdminError {
    /// No such VBR.
    #[error("no VBR {0}")]
    VbrNotFound(String),
    /// Not a prefix.
    #[error("{0:?} is not a CIDR block without host bits")]
    BadCidr(String),
    /// No such network.
    #[error("no BGP network {0} on {1}")]
    NetworkNotFound(String, String),
}

/// Applies an out-of-band add or change.
pub fn apply_change(
    res: &mut Resources,
    change: NetworkChange,
    now: Timestamp,
) -> Result<NetworkSnapshot, NetworkAdminError> {
    res.settle(now);
    let cidr = parse_cidr(&change.dst_cidr_block)
        .map_err(|_| NetworkAdminError::BadCidr(change.dst_cidr_block.clone()))?;
    let region = res
        .vbr(&change.router_id)
        .map(|v| v.region_id.clone())
        .ok_or_else(|| NetworkAdminError::VbrNotFound(change.router_id.clone()))?;
    let (status, status_override) = match change.status.as_deref().map(str::parse::<Status>) {
        None => (None, None),
        Some(Ok(s)) => (Some(s), None),
        Some(Err(_)) => (Some(Status::Available), change.status.clone()),
    };
    let index = match res
        .bgp_networks
        .iter()
        .position(|n| n.is(&change.router_id, &cidr))
    {
        Some(i) => i,
        None => {
            res.bgp_networks.push(NetworkSnapshot {
                router_id: change.router_id.clone(),
                region_id: region,
                dst_cidr_block: cidr.to_string(),
                vpc_id: String::new(),
                status: Status::Available,
                status_override: None,
                status_until: None,
                visible_at: None,
                client_token: None,
                account: String::new(),
                created_at: now,
            });
            res.bgp_networks.len() - 1
        }
    };
    let n = &mut res.bgp_networks[index];
    if let Some(v) = change.vpc_id {
        n.vpc_id = v;
    }
    if let Some(s) = status {
        n.status = s;
        n.status_until = None;
        n.status_override = status_override;
    }
    Ok(n.clone())
}

/// Removes a network at once (out of band).
pub fn remove(
    res: &mut Resources,
    router_id: &str,
    dst_cidr_block: &str,
) -> Result<NetworkSnapshot, NetworkAdminError> {
    let not_found =
        || NetworkAdminError::NetworkNotFound(dst_cidr_block.to_owned(), router_id.to_owned());
    let cidr = parse_cidr(dst_cidr_block).map_err(|_| not_found())?;
    let i = res
        .bgp_networks
        .iter()
        .position(|n| n.is(router_id, &cidr))
        .ok_or_else(not_found)?;
    Ok(res.bgp_networks.remove(i))
}

/// Sets a VBR's network quota.
pub fn set_quota(
    res: &mut Resources,
    router_id: &str,
    quota: u32,
) -> Result<(), NetworkAdminError> {
    let vbr = res
        .vbrs
        .iter_mut()
        .find(|v| v.router_id == router_id)
        .ok_or_else(|| NetworkAdminError::VbrNotFound(router_id.to_owned()))?;
    vbr.network_quota = quota;
    Ok(())
}

/// The admin routes of networks (merged into `/__admin`, loopback only):
///
/// | method and path | body | effect |
/// |---|---|---|
/// | `POST /__admin/networks` | [`NetworkChange`], e.g. `{"RouterId":"vbr-…","DstCidrBlock":"10.1.0.0/16"}` | add (Available, visible at once) or change a network out of band |
/// | `POST /__admin/networks/delete` | `{"RouterId","DstCidrBlock"}` | remove a network at once |
/// | `POST /__admin/vbrs/{id}/network-quota` | `{"Quota": 20}` | set the VBR's network quota |
pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/networks", post(admin_change))
        .route("/networks/delete", post(admin_remove))
        .route("/vbrs/{id}/network-quota", post(admin_quota))
}

fn admin_error(e: NetworkAdminError) -> Response {
    let (status, code) = match e {
        NetworkAdminError::VbrNotFound(_) => (StatusCode::NOT_FOUND, "VbrNotFound"),
        NetworkAdminError::BadCidr(_) => (StatusCode::BAD_REQUEST, "InvalidBody"),
        NetworkAdminError::NetworkNotFound(..) => (StatusCode::NOT_FOUND, "NetworkNotFound"),
    };
    (
        status,
        Json(json!({ "Code": code, "Message": e.to_string() })),
    )
        .into_response()
}

fn bad_body(e: serde_json::Error) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "Code": "InvalidBody", "Message": format!("invalid JSON body: {e}") })),
    )
        .into_response()
}

/// The identity of a network in an admin body.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct NetworkKey {
    router_id: String,
    dst_cidr_block: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Quota {
    quota: u32,
}

async fn admin_change(
    AxumState(shared): AxumState<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let change: NetworkChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_body(e),
    };
    let now = shared.clock().now();
    let result = {
        let mut state = shared.lock();
        let r = apply_change(&mut state.res, change, now);
        state.revision += u64::from(r.is_ok());
        r
    };
    match result {
        Ok(n) => {
            shared.persist().await;
            Json(n).into_response()
        }
        Err(e) => admin_error(e),
    }
}

async fn admin_remove(
    AxumState(shared): AxumState<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let key: NetworkKey = match serde_json::from_slice(&body) {
        Ok(k) => k,
        Err(e) => return bad_body(e),
    };
    let result = {
        let mut state = shared.lock();
        let r = remove(&mut state.res, &key.router_id, &key.dst_cidr_block);
        state.revision += u64::from(r.is_ok());
        r
    };
    match result {
        Ok(n) => {
            shared.persist().await;
            Json(n).into_response()
        }
        Err(e) => admin_error(e),
    }
}

async fn admin_quota(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let quota: Quota = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return bad_body(e),
    };
    let result = set_quota(&mut shared.lock().res, &id, quota.quota);
    match result {
        Ok(()) => Json(json!({ "RouterId": id, "Quota": quota.quota })).into_response(),
        Err(e) => admin_error(e),
    }
}

impl EmulatorHandle {
    /// All BGP networks (transitions due by now applied).
    pub fn networks(&self) -> Vec<NetworkSnapshot> {
        let shared = self.shared();
        let now = shared.clock().now();
        let mut state = shared.lock();
        state.res.settle(now);
        state.res.bgp_networks.clone()
    }

    /// Adds or changes a network behind the API's back (someone else's network).
    pub fn put_network_out_of_band(
        &self,
        change: NetworkChange,
    ) -> Result<NetworkSnapshot, NetworkAdminError> {
        let shared = self.shared();
        let now = shared.clock().now();
        let mut state = shared.lock();
        let r = apply_change(&mut state.res, change, now);
        state.revision += u64::from(r.is_ok());
        r
    }

    /// Removes a network at once, behind the API's back.
    pub fn delete_network_out_of_band(
        &self,
        router_id: &str,
        dst_cidr_block: &str,
    ) -> Result<NetworkSnapshot, NetworkAdminError> {
        let shared = self.shared();
        let mut state = shared.lock();
        let r = remove(&mut state.res, router_id, dst_cidr_block);
        state.revision += u64::from(r.is_ok());
        r
    }

    /// Sets a VBR's network quota (until the next reset).
    pub fn set_network_quota(&self, router_id: &str, quota: u32) -> Result<(), NetworkAdminError> {
        set_quota(&mut self.shared().lock().res, router_id, quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::action::Action;
    use crate::emulator::config::{DEMO_REGION, DEMO_VBR, EmulatorConfig, TotalCountMode};
    use crate::emulator::params::params;
    use crate::emulator::vpc::execute;
    use std::time::Duration;

    #[test]
    fn cidr_blocks_must_be_prefixes() {
        assert_eq!(
            parse_cidr("10.1.0.0/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(
            parse_cidr("2408:4000:0::/48").unwrap().to_string(),
            "2408:4000::/48"
        );
        for bad in [
            "10.1.0.1/16",
            "10.1.0.0",
            "10.1.0.0/33",
            "x/8",
            "",
            "10.1.0.0/ 16",
        ] {
            assert_eq!(
                parse_cidr(bad).unwrap_err().code,
                "InvalidIP.Malformed",
                "{bad}"
            );
        }
    }

    #[test]
    fn add_describe_delete_without_http() {
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
            account: "a",
        };
        let net = [
            ("RegionId", DEMO_REGION),
            ("RouterId", DEMO_VBR),
            ("DstCidrBlock", "10.1.0.0/16"),
        ];
        execute(&mut res, &ctx, Action::AddBgpNetwork, &params(&net)).unwrap();
        assert_eq!(
            execute(&mut res, &ctx, Action::AddBgpNetwork, &params(&net))
                .unwrap_err()
                .code,
            "InvalidParams.AlreadyExists"
        );
        // Pending: cannot be deleted yet.
        assert_eq!(
            execute(&mut res, &ctx, Action::DeleteBgpNetwork, &params(&net))
                .unwrap_err()
                .code,
            "InvalidStatus.CannotOperate"
        );
        let later = OpContext {
            now: clock::add(now, Duration::from_secs(2)),
            ..ctx.clone()
        };
        let listed = execute(
            &mut res,
            &later,
            Action::DescribeBgpNetworks,
            &params(&[("RegionId", DEMO_REGION), ("RouterId", DEMO_VBR)]),
        )
        .unwrap();
        assert_eq!(listed.fields["TotalCount"], 1);
        let item = &listed.fields["BgpNetworks"]["BgpNetwork"][0];
        assert_eq!(item["Status"], "Available");
        assert_eq!(item["DstCidrBlock"], "10.1.0.0/16");
        execute(&mut res, &later, Action::DeleteBgpNetwork, &params(&net)).unwrap();
        assert_eq!(res.bgp_networks[0].status, Status::Deleting);
        res.settle(clock::add(now, Duration::from_secs(3)));
        assert!(res.bgp_networks.is_empty());
    }
}
