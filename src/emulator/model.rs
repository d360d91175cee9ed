//! The emulated resources (VBRs, BGP groups, BGP peers) and their public snapshots.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// IP version of a BGP group or peer. Parsed case-insensitively (`IPV4`, `ipv4`, `IPv4`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (the default).
    #[default]
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl IpVersion {
    /// The API spelling: `IPv4` or `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        }
    }

    /// Whether `addr` belongs to this family.
    pub fn matches(self, addr: &std::net::IpAddr) -> bool {
        matches!(
            (self, addr),
            (Self::Ipv4, std::net::IpAddr::V4(_)) | (Self::Ipv6, std::net::IpAddr::V6(_))
        )
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP version string other than IPv4/IPv6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown IP version {0:?} (want IPv4 or IPv6)")]
pub struct UnknownIpVersion(pub String);

impl FromStr for IpVersion {
    type Err = UnknownIpVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("ipv4") {
            Ok(Self::Ipv4)
        } else if s.eq_ignore_ascii_case("ipv6") {
            Ok(Self::Ipv6)
        } else {
            Err(UnknownIpVersion(s.to_owned()))
        }
    }
}

impl Serialize for IpVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IpVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lifecycle status of a BGP group or peer (`Status` in the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Being created.
    Pending,
    /// Ready.
    Available,
    /// A modification is being applied.
    Modifying,
    /// Being deleted; disappears when done (after [`Status::Deleted`] if configured).
    Deleting,
    /// Deleted, still listed for `deleted_linger` (peers only).
    Deleted,
}

impl Status {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Available => "Available",
            Self::Modifying => "Modifying",
            Self::Deleting => "Deleting",
            Self::Deleted => "Deleted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string other than the four known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?} (want Pending, Available, Modifying, Deleting or Deleted)")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Pending,
            Self::Available,
            Self::Modifying,
            Self::Deleting,
            Self::Deleted,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Serde helpers writing a [`Timestamp`] as an RFC 3339 string.
pub(crate) mod ts_serde {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ts)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Timestamp>`.
    pub(crate) mod option {
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            ts: &Option<Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => s.collect_str(ts),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| s.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// A virtual border router (VBR) as the emulator holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VbrSnapshot {
    /// `vbr-…`.
    pub router_id: String,
    /// Region of the VBR.
    pub region_id: String,
    /// Whether IPv6 is enabled on the VBR (IPv6 groups and peers need it).
    pub ipv6_enabled: bool,
    /// Maximum number of BGP peers on this VBR.
    pub peer_quota: u32,
    /// Maximum number of BGP groups on this VBR.
    pub group_quota: u32,
    /// Maximum number of BGP networks on this VBR.
    #[serde(default = "super::config::default_network_quota")]
    pub network_quota: u32,
    /// The account (uid) owning the VBR; `None`: visible to every account. Network calls of
    /// other accounts do not see an owned VBR.
    #[serde(default)]
    pub owner: Option<String>,
    /// IPv4 address of the VBR side of the peering link.
    #[serde(default)]
    pub local_gateway_ip: String,
    /// IPv4 address of the customer side.
    #[serde(default)]
    pub peer_gateway_ip: String,
    /// IPv4 peering subnets (CIDR): IPv4 peer IPs must lie in one.
    #[serde(default)]
    pub peering_subnets: Vec<String>,
    /// IPv6 address of the VBR side.
    #[serde(default)]
    pub local_ipv6_gateway_ip: String,
    /// IPv6 address of the customer side.
    #[serde(default)]
    pub peer_ipv6_gateway_ip: String,
    /// IPv6 peering subnets (CIDR).
    #[serde(default)]
    pub peering_ipv6_subnets: Vec<String>,
}

impl VbrSnapshot {
    /// Whether `addr` lies in one of the VBR's peering subnets of its family.
    pub fn in_peering_subnet(&self, addr: &std::net::IpAddr) -> bool {
        let subnets = match addr {
            std::net::IpAddr::V4(_) => &self.peering_subnets,
            std::net::IpAddr::V6(_) => &self.peering_ipv6_subnets,
        };
        subnets
            .iter()
            .filter_map(|s| s.parse::<ipnet::IpNet>().ok())
            .any(|net| net.contains(addr))
    }
}

/// A BGP group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupSnapshot {
    /// `bgpg-…`.
    pub bgp_group_id: String,
    /// The VBR.
    pub router_id: String,
    /// Region of the VBR.
    pub region_id: String,
    /// Group name (may be empty).
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// On-premises ASN.
    pub peer_asn: u32,
    /// Alibaba Cloud side ASN.
    pub local_asn: u32,
    /// BGP MD5 key (may be empty).
    pub auth_key: String,
    /// IPv4 or IPv6.
    pub ip_version: IpVersion,
    /// Whether a fake ASN is used.
    pub is_fake_asn: bool,
    /// Maximum routes per peer.
    pub route_quota: u32,
    /// Whether this is the VBR's default group.
    pub is_default: bool,
    /// BGP hold time (seconds).
    pub hold: u32,
    /// BGP keepalive (seconds).
    pub keepalive: u32,
    /// Lifecycle status.
    pub status: Status,
    /// When the current transitional status ends (`None` when stable).
    #[serde(with = "ts_serde::option", default)]
    pub status_until: Option<Timestamp>,
    /// Hidden from DescribeBgpGroups until then (`visibility_lag`), as new peers are.
    #[serde(with = "ts_serde::option", default)]
    pub visible_at: Option<Timestamp>,
    /// The ClientToken of the CreateBgpGroup call (if any).
    pub client_token: Option<String>,
    /// Last modification.
    #[serde(with = "ts_serde")]
    pub gmt_modified: Timestamp,
}

/// A BGP peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerSnapshot {
    /// `bgp-…`.
    pub bgp_peer_id: String,
    /// The BGP group.
    pub bgp_group_id: String,
    /// The VBR of the group.
    pub router_id: String,
    /// Region.
    pub region_id: String,
    /// Peer IP address (empty if none was given).
    pub peer_ip_address: String,
    /// IPv4 or IPv6.
    pub ip_version: IpVersion,
    /// Whether BFD is enabled.
    pub enable_bfd: bool,
    /// BFD hop count, 1–255 (255 unless set).
    pub bfd_multi_hop: u8,
    /// Peer name (may be empty).
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Lifecycle status.
    pub status: Status,
    /// When the current transitional status ends (`None` when stable).
    #[serde(with = "ts_serde::option", default)]
    pub status_until: Option<Timestamp>,
    /// BGP session state (`BgpStatus`): set out of band, else Idle → Connect → Established
    /// after the peer became Available ([`PeerSnapshot::session_since`]), Idle otherwise.
    pub bgp_status: String,
    /// When the peer (last) became Available with its current address: the session clock.
    #[serde(with = "ts_serde::option", default)]
    pub session_since: Option<Timestamp>,
    /// Hidden from DescribeBgpPeers until then (`visibility_lag`).
    #[serde(with = "ts_serde::option", default)]
    pub visible_at: Option<Timestamp>,
    /// Explicit `BgpStatus` override set through the admin API.
    #[serde(default)]
    pub bgp_status_override: Option<String>,
    /// The ClientToken of the CreateBgpPeer call (if any).
    pub client_token: Option<String>,
    /// Creation time.
    #[serde(with = "ts_serde")]
    pub created_at: Timestamp,
    /// Last modification.
    #[serde(with = "ts_serde")]
    pub gmt_modified: Timestamp,
}

/// How the session state follows the lifecycle: Idle for `connect` after the peer became
/// Available, then Connect for `establish`, then Established.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionDelays {
    /// Idle → Connect.
    pub connect: std::time::Duration,
    /// Connect → Established.
    pub establish: std::time::Duration,
}

impl PeerSnapshot {
    /// Recomputes [`PeerSnapshot::bgp_status`] from the status, the session clock and the
    /// override.
    pub(crate) fn refresh_bgp_status(&mut self, now: Timestamp, delays: SessionDelays) {
        self.bgp_status = match (&self.bgp_status_override, self.status, self.session_since) {
            (Some(s), _, _) => s.clone(),
            (None, Status::Available | Status::Modifying, Some(since)) => {
                let connect_at = super::clock::add(since, delays.connect);
                let established_at = super::clock::add(connect_at, delays.establish);
                if now >= established_at {
                    "Established"
                } else if now >= connect_at {
                    "Connect"
                } else {
                    "Idle"
                }
                .to_owned()
            }
            (None, _, _) => "Idle".to_owned(),
        };
    }

    /// Whether DescribeBgpPeers shows the peer at `now` (`visibility_lag`).
    pub fn visible(&self, now: Timestamp) -> bool {
        self.visible_at.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_version_is_case_insensitive() {
        assert_eq!("IPV4".parse::<IpVersion>().unwrap(), IpVersion::Ipv4);
        assert_eq!("ipv6".parse::<IpVersion>().unwrap(), IpVersion::Ipv6);
        assert_eq!("IPv6".parse::<IpVersion>().unwrap(), IpVersion::Ipv6);
        assert!("v4".parse::<IpVersion>().is_err());
        assert!(IpVersion::Ipv4.matches(&"10.0.0.1".parse().unwrap()));
        assert!(!IpVersion::Ipv4.matches(&"::1".parse().unwrap()));
    }

    #[test]
    fn status_parses() {
        assert_eq!("available".parse::<Status>().unwrap(), Status::Available);
        assert_eq!("deleted".parse::<Status>().unwrap(), Status::Deleted);
        assert!("Gone".parse::<Status>().is_err());
    }
}
