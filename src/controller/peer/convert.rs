//! From the cloud's answer to what planning and status hold.

use crate::api::CloudPeerView;
use crate::cloud::BgpPeerInfo;

use super::plan::ObservedPeer;

impl From<&BgpPeerInfo> for ObservedPeer {
    fn from(p: &BgpPeerInfo) -> Self {
        ObservedPeer {
            id: p.bgp_peer_id.clone(),
            bgp_group_id: p.bgp_group_id.clone(),
            status: p.status.clone(),
            peer_ip_address: p.peer_ip_address.clone(),
            ip_version: p.ip_version.clone(),
            enable_bfd: p.enable_bfd,
            bfd_multi_hop: p.bfd_multi_hop,
        }
    }
}

/// The status view of a peer. Secrets (the group's auth key) are never copied.
impl From<&BgpPeerInfo> for CloudPeerView {
    fn from(p: &BgpPeerInfo) -> Self {
        let non_empty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        let text = |s: String| Some(s).filter(|v| !v.is_empty());
        CloudPeerView {
            status: text(p.status.to_string()),
            bgp_group_id: text(p.bgp_group_id.clone()),
            bgp_status: p.bgp_status.as_ref().and_then(|s| text(s.to_string())),
            local_asn: p.local_asn.map(|n| n.to_string()),
            peer_asn: p.peer_asn.map(|n| n.to_string()),
            router_id: text(p.router_id.clone()),
            peer_ip_address: non_empty(&p.peer_ip_address),
            ip_version: non_empty(&p.ip_version),
            enable_bfd: p.enable_bfd,
            bfd_multi_hop: p.bfd_multi_hop,
            advertised_route_count: p.advertised_route_count,
            received_route_count: p.received_route_count,
        }
    }
}
