//! The BGP network operations: `AddBgpNetwork`, `DeleteBgpNetwork`, `DescribeBgpNetworks`
//! (request and response types, and the [`VpcClient`] calls).
//!
//! A BGP network is a prefix a VBR advertises to the on-premises side. It has **no ID**: it is
//! identified by (RouterId, DstCidrBlock), `AddBgpNetwork` answers only a RequestId, and a
//! ClientToken replay therefore cannot say which network (if any) it made. Prefixes are
//! compared as parsed networks ([`BgpNetworkInfo::cidr`]), never as strings.
//!
//! Parameters (SDK `alibabacloud-vpc20160428` models `AddBgpNetworkRequest`,
//! `DeleteBgpNetworkRequest`, `DescribeBgpNetworksRequest`; API reference pages AddBgpNetwork,
//! DeleteBgpNetwork, DescribeBgpNetworks):
//!
//! | operation | required | optional | answer |
//! |---|---|---|---|
//! | AddBgpNetwork | RegionId, RouterId, DstCidrBlock | VpcId, ClientToken | RequestId |
//! | DeleteBgpNetwork | RegionId, RouterId, DstCidrBlock | ClientToken | RequestId |
//! | DescribeBgpNetworks | RegionId | RouterId, PageNumber (1), PageSize (10, ≤ 50) | TotalCount, PageNumber, PageSize, `BgpNetworks.BgpNetwork[]` {DstCidrBlock, RouterId, Status, VpcId} |

use std::collections::HashSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::client::{Api, RetryPolicy, VpcClient, Walk, WalkStep};
use super::credentials::Credentials;
use super::error::CloudError;
use super::model::{
    MAX_PAGE_SIZE, Params, RequestId, check_client_token, check_paging, clamp_u32, de, push,
    push_str, require,
};

/// A `DstCidrBlock` as the API expects it: a prefix without host bits (`10.1.0.0/16`).
pub fn parse_cidr(value: &str) -> Result<IpNet, CloudError> {
    match value.trim().parse::<IpNet>() {
        Ok(net) if net.trunc() == net => Ok(net),
        Ok(net) => Err(CloudError::invalid_request(format!(
            "DstCidrBlock {value:?} has host bits set (the prefix is {})",
            net.trunc()
        ))),
        Err(_) => Err(CloudError::invalid_request(format!(
            "DstCidrBlock {value:?} is not a CIDR block"
        ))),
    }
}

fn cidr_param(value: &str) -> Result<String, CloudError> {
    parse_cidr(value).map(|net| net.to_string())
}

/// `AddBgpNetwork`: advertises a prefix on a VBR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddBgpNetworkRequest {
    /// Region of the VBR.
    pub region_id: String,
    /// The VBR (`vbr-…`).
    pub router_id: String,
    /// The prefix to advertise (sent in canonical form).
    pub dst_cidr_block: String,
    /// The VPC the prefix belongs to.
    pub vpc_id: Option<String>,
    /// Idempotency token (≤ 64 ASCII characters). With a token, a failed attempt that may
    /// have reached the server (transport error, 5xx) is retried with the same token.
    pub client_token: Option<String>,
}

impl AddBgpNetworkRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("RouterId", &self.router_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("RouterId".to_owned(), self.router_id.clone()),
            ("DstCidrBlock".to_owned(), cidr_param(&self.dst_cidr_block)?),
        ];
        push_str(&mut p, "VpcId", &self.vpc_id);
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// `DeleteBgpNetwork`: withdraws a prefix from a VBR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteBgpNetworkRequest {
    /// Region of the VBR.
    pub region_id: String,
    /// The VBR.
    pub router_id: String,
    /// The prefix (sent in canonical form).
    pub dst_cidr_block: String,
    /// Idempotency token.
    pub client_token: Option<String>,
}

impl DeleteBgpNetworkRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        require("RouterId", &self.router_id)?;
        check_client_token(&self.client_token)?;
        let mut p = vec![
            ("RegionId".to_owned(), self.region_id.clone()),
            ("RouterId".to_owned(), self.router_id.clone()),
            ("DstCidrBlock".to_owned(), cidr_param(&self.dst_cidr_block)?),
        ];
        push_str(&mut p, "ClientToken", &self.client_token);
        Ok(p)
    }
}

/// `DescribeBgpNetworks`: the networks of a region, or of one VBR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeBgpNetworksRequest {
    /// Region to list.
    pub region_id: String,
    /// Only networks of this VBR.
    pub router_id: Option<String>,
    /// Page number, from 1 (default 1).
    pub page_number: Option<u32>,
    /// Page size, 1..=50 (default 10).
    pub page_size: Option<u32>,
}

impl DescribeBgpNetworksRequest {
    pub(crate) fn to_params(&self) -> Result<Params, CloudError> {
        require("RegionId", &self.region_id)?;
        check_paging(self.page_number, self.page_size)?;
        let mut p = vec![("RegionId".to_owned(), self.region_id.clone())];
        push_str(&mut p, "RouterId", &self.router_id);
        push(&mut p, "PageNumber", self.page_number);
        push(&mut p, "PageSize", self.page_size);
        Ok(p)
    }
}

/// Lifecycle status of a BGP network. The documentation words the ready state both ways: the
/// DescribeBgpNetworks example shows `Enabled`, the Terraform provider waits for `Available`;
/// both are [`NetworkStatus::Available`] (parsed case-insensitively). Pending and Deleting are
/// the transitions the emulator models (undocumented); an empty value is
/// [`NetworkStatus::Unknown`] and anything else is kept in [`NetworkStatus::Other`], never
/// mistaken for a known state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum NetworkStatus {
    /// Being added.
    Pending,
    /// Advertised (`Available` or `Enabled` on the wire).
    Available,
    /// Being withdrawn.
    Deleting,
    /// No status reported.
    #[default]
    Unknown,
    /// Any other value, verbatim.
    Other(String),
}

impl NetworkStatus {
    /// Parses a wire value, ignoring case.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Self::Pending,
            "available" | "enabled" => Self::Available,
            "deleting" => Self::Deleting,
            "" => Self::Unknown,
            _ => Self::Other(s.trim().to_owned()),
        }
    }

    /// The canonical spelling (`""` for [`NetworkStatus::Unknown`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::Available => "Available",
            Self::Deleting => "Deleting",
            Self::Unknown => "",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for NetworkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NetworkStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NetworkStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::string(d).map(|s| Self::parse(&s))
    }
}

/// One BGP network as `DescribeBgpNetworks` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BgpNetworkInfo {
    /// The advertised prefix, as the API spells it.
    #[serde(default, deserialize_with = "de::string")]
    pub dst_cidr_block: String,
    /// The VBR.
    #[serde(default, deserialize_with = "de::string")]
    pub router_id: String,
    /// Lifecycle status.
    #[serde(default)]
    pub status: NetworkStatus,
    /// The VPC (`None` when empty).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub vpc_id: Option<String>,
}

impl BgpNetworkInfo {
    /// The prefix parsed (host bits cleared); `None` if the API sent something unparsable.
    pub fn cidr(&self) -> Option<IpNet> {
        self.dst_cidr_block
            .trim()
            .parse::<IpNet>()
            .ok()
            .map(|n| n.trunc())
    }

    /// Whether this is the network (`router_id`, `cidr`).
    pub fn is(&self, router_id: &str, cidr: &IpNet) -> bool {
        self.router_id == router_id && self.cidr() == Some(cidr.trunc())
    }
}

/// One page of `DescribeBgpNetworks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DescribeBgpNetworksPage {
    /// `TotalCount` as sent (a total or the page's entries: see [`VpcClient::list_bgp_networks`]).
    pub total_count: u64,
    /// This page's number.
    pub page_number: u32,
    /// This page's size.
    pub page_size: u32,
    /// The networks on this page.
    pub networks: Vec<BgpNetworkInfo>,
    /// Request id.
    pub request_id: String,
}

/// Every network of a listing and whether the walk was consistent.
#[derive(Debug, Clone, Default)]
pub struct NetworkListing {
    /// The distinct networks returned (one per (RouterId, prefix)).
    pub networks: Vec<BgpNetworkInfo>,
    /// Pages fetched.
    pub pages: usize,
    /// The walk cannot have skipped a network that existed (and was visible) during the whole
    /// walk: the same rule as [`crate::cloud::PeerListing::consistent`] (one short page, or a
    /// stable proven total equal to the distinct networks). Conservative: `false` whenever
    /// that cannot be shown.
    pub consistent: bool,
}

impl NetworkListing {
    /// The network (`router_id`, `cidr`) if listed.
    pub fn find(&self, router_id: &str, cidr: &IpNet) -> Option<&BgpNetworkInfo> {
        self.networks.iter().find(|n| n.is(router_id, cidr))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeBgpNetworksWire {
    #[serde(default)]
    request_id: String,
    #[serde(default, deserialize_with = "de::opt_u64")]
    total_count: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_number: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    page_size: Option<u64>,
    #[serde(default)]
    bgp_networks: Option<NetworksWrapper>,
}

#[derive(Deserialize, Default)]
struct NetworksWrapper {
    #[serde(rename = "BgpNetwork", default, deserialize_with = "de::one_or_many")]
    bgp_network: Vec<BgpNetworkInfo>,
}

impl From<DescribeBgpNetworksWire> for DescribeBgpNetworksPage {
    fn from(w: DescribeBgpNetworksWire) -> Self {
        let networks = w.bgp_networks.unwrap_or_default().bgp_network;
        Self {
            total_count: w.total_count.unwrap_or(networks.len() as u64),
            page_number: clamp_u32(w.page_number.unwrap_or(1)),
            page_size: clamp_u32(w.page_size.unwrap_or(networks.len() as u64)),
            networks,
            request_id: w.request_id,
        }
    }
}

impl VpcClient {
    /// `AddBgpNetwork`. Retried (same ClientToken) only if `client_token` is set and the
    /// failure was a transport error or 5xx. Success answers only a RequestId.
    pub async fn add_bgp_network(
        &self,
        creds: &Credentials,
        req: &AddBgpNetworkRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "AddBgpNetwork",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// `DeleteBgpNetwork`. Same retry rule as [`VpcClient::add_bgp_network`].
    pub async fn delete_bgp_network(
        &self,
        creds: &Credentials,
        req: &DeleteBgpNetworkRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "DeleteBgpNetwork",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// One page of `DescribeBgpNetworks`.
    pub async fn describe_bgp_networks(
        &self,
        creds: &Credentials,
        req: &DescribeBgpNetworksRequest,
    ) -> Result<DescribeBgpNetworksPage, CloudError> {
        let params = req.to_params()?;
        let wire: DescribeBgpNetworksWire = self
            .call(
                creds,
                Api::Vpc,
                "DescribeBgpNetworks",
                &req.region_id,
                params,
                RetryPolicy::Read,
            )
            .await?;
        Ok(wire.into())
    }

    /// Every network of the VBR `router_id` in `region_id`, page by page (PageSize 50), and
    /// whether the walk was consistent (see [`NetworkListing::consistent`]). Paging is by
    /// offset, so a network removed between two pages can make a later one shift out of the
    /// walk; such a walk is never called consistent. Networks are deduplicated by parsed
    /// prefix.
    pub async fn list_bgp_networks(
        &self,
        creds: &Credentials,
        region_id: &str,
        router_id: &str,
    ) -> Result<NetworkListing, CloudError> {
        /// Guards against a server that never stops returning full pages.
        const MAX_PAGES: u32 = 10_000;
        let mut networks: Vec<BgpNetworkInfo> = Vec::new();
        let mut seen = HashSet::new();
        let mut walk = Walk::default();
        let mut page_number = 1;
        loop {
            let page = self
                .describe_bgp_networks(
                    creds,
                    &DescribeBgpNetworksRequest {
                        region_id: region_id.to_owned(),
                        router_id: Some(router_id.to_owned()),
                        page_number: Some(page_number),
                        page_size: Some(MAX_PAGE_SIZE),
                    },
                )
                .await?;
            let on_page = page.networks.len();
            for network in page.networks {
                let key = (
                    network.router_id.clone(),
                    network
                        .cidr()
                        .map_or_else(|| network.dst_cidr_block.clone(), |c| c.to_string()),
                );
                if seen.insert(key) {
                    networks.push(network);
                }
            }
            let step = walk.page(page.total_count, on_page, networks.len());
            if step != WalkStep::Next || page_number >= MAX_PAGES {
                break;
            }
            page_number += 1;
        }
        Ok(NetworkListing {
            consistent: walk.consistent(networks.len()),
            pages: walk.totals.len(),
            networks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_both_wordings() {
        assert_eq!(NetworkStatus::parse("Available"), NetworkStatus::Available);
        assert_eq!(NetworkStatus::parse("enabled"), NetworkStatus::Available);
        assert_eq!(NetworkStatus::parse("ENABLED"), NetworkStatus::Available);
        assert_eq!(NetworkStatus::parse("pending"), NetworkStatus::Pending);
        assert_eq!(NetworkStatus::parse(""), NetworkStatus::Unknown);
        assert_eq!(
            NetworkStatus::parse("Disabled"),
            NetworkStatus::Other("Disabled".into())
        );
        assert_eq!(NetworkStatus::Available.to_string(), "Available");
    }

    #[test]
    fn requests_send_canonical_prefixes_and_refuse_host_bits() {
        let req = AddBgpNetworkRequest {
            region_id: "cn-shanghai".into(),
            router_id: "vbr-a".into(),
            dst_cidr_block: " 2408:4000:0000::/48".into(),
            vpc_id: Some("vpc-x".into()),
            client_token: Some("t".into()),
        };
        let p = req.to_params().unwrap();
        assert!(p.contains(&("DstCidrBlock".into(), "2408:4000::/48".into())));
        assert!(p.contains(&("VpcId".into(), "vpc-x".into())));
        let bad = AddBgpNetworkRequest {
            dst_cidr_block: "10.1.0.1/16".into(),
            ..req.clone()
        };
        assert!(
            bad.to_params()
                .unwrap_err()
                .to_string()
                .contains("10.1.0.0/16")
        );
        let del = DeleteBgpNetworkRequest {
            region_id: "cn-shanghai".into(),
            router_id: String::new(),
            dst_cidr_block: "10.1.0.0/16".into(),
            client_token: None,
        };
        assert!(del.to_params().is_err());
        let list = DescribeBgpNetworksRequest {
            region_id: "cn-shanghai".into(),
            page_size: Some(51),
            ..Default::default()
        };
        assert!(list.to_params().is_err());
    }

    #[test]
    fn pages_decode_leniently() {
        let page: DescribeBgpNetworksPage = serde_json::from_str::<DescribeBgpNetworksWire>(
            r#"{"RequestId":"R","TotalCount":"2","PageNumber":1,"PageSize":10,
                "BgpNetworks":{"BgpNetwork":{"DstCidrBlock":"10.1.0.0/16","RouterId":"vbr-a","Status":"Enabled","VpcId":""}}}"#,
        )
        .unwrap()
        .into();
        assert_eq!(page.total_count, 2);
        let n = &page.networks[0];
        assert_eq!(n.status, NetworkStatus::Available);
        assert_eq!(n.vpc_id, None);
        assert!(n.is("vbr-a", &"10.1.0.0/16".parse().unwrap()));
        assert!(!n.is("vbr-b", &"10.1.0.0/16".parse().unwrap()));
        let empty: DescribeBgpNetworksPage =
            serde_json::from_str::<DescribeBgpNetworksWire>(r#"{"RequestId":"R","TotalCount":0}"#)
                .unwrap()
                .into();
        assert!(empty.networks.is_empty());
    }
}
