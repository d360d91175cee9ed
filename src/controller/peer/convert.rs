//! From the cloud's answer to what planning and status hold.

use crate::api::{CloudPeerView, Text};
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
        let text = |s: &str| (!s.is_empty()).then(|| Text::from(s));
        let non_empty = |s: &Option<String>| s.as_deref().and_then(text);
        CloudPeerView {
            status: text(&p.status.to_string()),
            bgp_group_id: text(&p.bgp_group_id),
            bgp_status: p.bgp_status.as_ref().and_then(|s| text(&s.to_string())),
            local_asn: p.local_asn.and_then(|n| text(&n.to_string())),
            peer_asn: p.peer_asn.and_then(|n| text(&n.to_string())),
            router_id: text(&p.router_id),
            peer_ip_address: non_empty(&p.peer_ip_address),
            ip_version: non_empty(&p.ip_version),
            enable_bfd: p.enable_bfd,
            bfd_multi_hop: p.bfd_multi_hop,
            advertised_route_count: p.advertised_route_count,
            received_route_count: p.received_route_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{BgpSessionStatus, PeerStatus};
    use crate::controller::observe::listed::ListedPeers;

    /// A listing keeps only some fields of a peer: the plan and the status read the same
    /// from it as from the whole answer.
    #[test]
    fn a_listed_peer_gives_the_plan_and_the_status_what_the_whole_answer_gives() {
        let full = BgpPeerInfo {
            bgp_peer_id: "bgp-1".into(),
            bgp_group_id: "bgpg-1".into(),
            peer_ip_address: Some("2001:db8::1".into()),
            status: PeerStatus::Modifying,
            bgp_status: Some(BgpSessionStatus::Established),
            local_asn: Some(45104),
            peer_asn: Some(65001),
            router_id: "vbr-1".into(),
            region_id: "cn-hangzhou".into(),
            ip_version: Some("IPv6".into()),
            enable_bfd: Some(true),
            bfd_multi_hop: Some(3),
            advertised_route_count: Some(7),
            received_route_count: Some(9),
            name: Some("n".into()),
            description: Some("d".into()),
            gmt_modified: Some("2026-12-01T10:00Z".into()),
            is_fake: Some(true),
        };
        let listed = ListedPeers::from_peers([full.clone()]);
        let Some(kept) = listed.get("bgp-1") else {
            panic!("listed");
        };
        let given = kept.to_info("bgp-1", "cn-hangzhou");
        assert_eq!(ObservedPeer::from(&given), ObservedPeer::from(&full));
        assert_eq!(CloudPeerView::from(&given), CloudPeerView::from(&full));
        assert_eq!(given.region_id, full.region_id);
    }
}
