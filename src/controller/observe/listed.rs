//! A listing's peers, kept compact.
//!
//! A region listing holds every peer of the region (other owners' too) until the next one
//! lands, and the next one is built while it is still held: at N = 10,000 the listings were
//! the controller's largest memory after its object cache. So a listing keeps per peer only
//! what the controller reads from an observation ([`ListedPeer`]), with the group, VBR and IP
//! version strings shared between the peers of one listing, and it is built straight from the
//! pages ([`ListingBuilder`]): one allocation sized from the first page's `TotalCount`, no
//! intermediate list, no rehashing. What a listing shows (which peers, the first answer of
//! a peer listed twice, how many distinct peers) is exactly what the walk returned.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::api::Text;
use crate::cloud::{BgpPeerInfo, BgpSessionStatus, PeerStatus};

/// `TotalCount` is the server's word: never reserve room for more peers than this from it
/// (a listing with more grows as the pages come).
pub const RESERVE_LIMIT: usize = 100_000;

/// What a listing keeps of one peer: every field the controller reads from an observation
/// (the plan's view: group, status, IP address and version, BFD; the status's cloud view:
/// also the session state, ASNs, VBR and route counts). Not kept, because nothing reads
/// them from an observation: the region (the listing's own), the name, description,
/// modification time and fake-ASN flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedPeer {
    /// Group id.
    pub bgp_group_id: Text,
    /// The VBR id.
    pub router_id: Text,
    /// Peer IP address.
    pub peer_ip_address: Option<Box<str>>,
    /// `IPv4` or `IPv6`.
    pub ip_version: Option<Text>,
    /// Resource status.
    pub status: PeerStatus,
    /// BGP session state.
    pub bgp_status: Option<BgpSessionStatus>,
    /// Local ASN.
    pub local_asn: Option<u64>,
    /// Peer ASN.
    pub peer_asn: Option<u64>,
    /// Whether BFD is enabled.
    pub enable_bfd: Option<bool>,
    /// BFD hop count.
    pub bfd_multi_hop: Option<i32>,
    /// Routes advertised to the peer.
    pub advertised_route_count: Option<i64>,
    /// Routes received from the peer.
    pub received_route_count: Option<i64>,
}

impl ListedPeer {
    /// The cloud's answer for peer `id` of `region` as the callers of the observer take it:
    /// every field they read as listed; the fields a listing does not keep are empty.
    pub fn to_info(&self, id: &str, region: &str) -> BgpPeerInfo {
        // No `..Default::default()`: a field added to `BgpPeerInfo` must be decided on here.
        BgpPeerInfo {
            bgp_peer_id: id.to_owned(),
            bgp_group_id: self.bgp_group_id.to_string(),
            peer_ip_address: self.peer_ip_address.as_deref().map(str::to_owned),
            status: self.status.clone(),
            bgp_status: self.bgp_status.clone(),
            local_asn: self.local_asn,
            peer_asn: self.peer_asn,
            router_id: self.router_id.to_string(),
            region_id: region.to_owned(),
            ip_version: self.ip_version.as_deref().map(str::to_owned),
            enable_bfd: self.enable_bfd,
            bfd_multi_hop: self.bfd_multi_hop,
            advertised_route_count: self.advertised_route_count,
            received_route_count: self.received_route_count,
            name: None,
            description: None,
            gmt_modified: None,
            is_fake: None,
        }
    }
}

/// The distinct peers of a listing by ID, sorted by ID in one allocation.
#[derive(Debug, Default)]
pub struct ListedPeers {
    entries: Vec<(Box<str>, ListedPeer)>,
}

impl ListedPeers {
    /// The peers of `peers` (the first of an ID listed twice), as one page.
    pub fn from_peers(peers: impl IntoIterator<Item = BgpPeerInfo>) -> Self {
        let peers: Vec<BgpPeerInfo> = peers.into_iter().collect();
        let mut builder = ListingBuilder::default();
        builder.page(peers.len() as u64, peers);
        builder.finish()
    }

    /// Peer `id`, if listed.
    pub fn get(&self, id: &str) -> Option<&ListedPeer> {
        self.entries
            .binary_search_by(|(k, _)| (**k).cmp(id))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Distinct peers listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No peer listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The peers listed (in ID order).
    pub fn values(&self) -> impl Iterator<Item = &ListedPeer> {
        self.entries.iter().map(|(_, p)| p)
    }

    /// Room held, in peers (for tests of the allocation).
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

/// Collects a listing page by page (see [`crate::cloud::VpcClient::walk_bgp_peers`]).
#[derive(Debug, Default)]
pub struct ListingBuilder {
    entries: Vec<(Box<str>, ListedPeer)>,
    /// Hashes of the IDs taken: a peer whose hash is new is new; one whose hash was seen is
    /// compared by ID (a shifted page repeats peers; two IDs may share a hash).
    hashes: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    /// The group, VBR and IP version strings, one copy each.
    strings: HashSet<Text>,
    reserved: bool,
}

impl ListingBuilder {
    /// Takes one page (with its `TotalCount`; the first page's sizes the listing) and
    /// returns how many distinct peers have come so far. A peer listed again on a later
    /// page keeps its first answer.
    pub fn page(&mut self, total_count: u64, page: Vec<BgpPeerInfo>) -> usize {
        if !self.reserved {
            self.reserved = true;
            let expected = usize::try_from(total_count).unwrap_or(usize::MAX);
            self.entries
                .reserve_exact(expected.clamp(page.len(), RESERVE_LIMIT.max(page.len())));
            self.hashes.reserve(self.entries.capacity());
        }
        // A region that grows during the walk (our creates go on) outgrows the first page's
        // count by a few peers: grow by a page or a sixteenth, never by doubling (at N =
        // 10,000 doubling held 3.9 MB of empty room at the controller's peak).
        let room = self.entries.capacity() - self.entries.len();
        if room < page.len() {
            let more = page.len().max(self.entries.len() / 16);
            self.entries.reserve_exact(more);
            self.hashes.reserve(more);
        }
        for peer in page {
            let hash = self.hasher.hash_one(peer.bgp_peer_id.as_str());
            if !self.hashes.insert(hash)
                && self.entries.iter().any(|(k, _)| **k == *peer.bgp_peer_id)
            {
                continue;
            }
            let listed = ListedPeer {
                bgp_group_id: self.intern(peer.bgp_group_id),
                router_id: self.intern(peer.router_id),
                peer_ip_address: peer.peer_ip_address.map(String::into_boxed_str),
                ip_version: peer.ip_version.map(|v| self.intern(v)),
                status: peer.status,
                bgp_status: peer.bgp_status,
                local_asn: peer.local_asn,
                peer_asn: peer.peer_asn,
                enable_bfd: peer.enable_bfd,
                bfd_multi_hop: peer.bfd_multi_hop,
                advertised_route_count: peer.advertised_route_count,
                received_route_count: peer.received_route_count,
            };
            self.entries
                .push((peer.bgp_peer_id.into_boxed_str(), listed));
        }
        self.entries.len()
    }

    /// The listing, sorted by ID (the IDs are distinct).
    pub fn finish(mut self) -> ListedPeers {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Room for peers that never came (the region shrank during the walk, or the last
        // growth step was not used up) is given back: the listing is held until the next.
        if self.entries.capacity() - self.entries.len() > self.entries.len() / 64 {
            self.entries.shrink_to_fit();
        }
        ListedPeers {
            entries: self.entries,
        }
    }

    fn intern(&mut self, s: String) -> Text {
        if let Some(shared) = self.strings.get(s.as_str()) {
            return shared.clone();
        }
        let shared = Text::from(s);
        self.strings.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, group: &str, ip: &str) -> BgpPeerInfo {
        BgpPeerInfo {
            bgp_peer_id: id.to_owned(),
            bgp_group_id: group.to_owned(),
            router_id: "vbr-1".to_owned(),
            peer_ip_address: Some(ip.to_owned()),
            ip_version: Some("IPv4".to_owned()),
            ..Default::default()
        }
    }

    fn page(ids: std::ops::Range<usize>, ip: &str) -> Vec<BgpPeerInfo> {
        ids.map(|i| peer(&format!("bgp-{i:03}"), &format!("bgpg-{}", i / 4), ip))
            .collect()
    }

    #[test]
    fn a_listing_is_sized_from_the_first_total_count_and_never_grows() {
        let mut b = ListingBuilder::default();
        assert_eq!(b.page(120, page(0..50, "10.0.0.1")), 50);
        assert_eq!(b.page(120, page(50..100, "10.0.0.1")), 100);
        assert_eq!(b.page(120, page(100..120, "10.0.0.1")), 120);
        let listed = b.finish();
        assert_eq!(listed.len(), 120);
        assert_eq!(listed.capacity(), 120);
        assert!(listed.get("bgp-119").is_some() && listed.get("bgp-000").is_some());
        assert!(listed.get("bgp-120").is_none());
    }

    #[test]
    fn a_region_that_grows_during_the_walk_grows_the_listing_by_little() {
        // The first page counts 1,000 peers; 6 more are created before the last page.
        let mut b = ListingBuilder::default();
        for start in (0..1000).step_by(50) {
            b.page(1000, page(start..start + 50, "10.0.0.1"));
        }
        b.page(1006, page(1000..1006, "10.0.0.1"));
        let listed = b.finish();
        assert_eq!(listed.len(), 1006);
        assert!(
            listed.capacity() <= 1006 + 1006 / 64,
            "{}",
            listed.capacity()
        );
        // And one that shrank gives its room back.
        let mut b = ListingBuilder::default();
        b.page(1000, page(0..50, "10.0.0.1"));
        b.page(1000, page(50..80, "10.0.0.1"));
        assert_eq!(b.finish().capacity(), 80);
    }

    #[test]
    fn an_absurd_total_count_is_not_reserved() {
        let mut b = ListingBuilder::default();
        b.page(u64::MAX, page(0..50, "10.0.0.1"));
        assert!(b.finish().capacity() <= RESERVE_LIMIT);
    }

    #[test]
    fn a_peer_listed_twice_counts_once_and_keeps_its_first_answer() {
        // Page 2 repeats the last two peers of page 1 (a removal shifted the offsets), with
        // other data.
        let mut b = ListingBuilder::default();
        assert_eq!(b.page(60, page(0..50, "10.0.0.1")), 50);
        assert_eq!(b.page(60, page(48..58, "10.0.0.2")), 58);
        let listed = b.finish();
        assert_eq!(listed.len(), 58);
        let ip = |id: &str| listed.get(id).and_then(|p| p.peer_ip_address.as_deref());
        assert_eq!(ip("bgp-049"), Some("10.0.0.1"));
        assert_eq!(ip("bgp-050"), Some("10.0.0.2"));
    }

    #[test]
    fn the_peers_of_a_group_share_its_strings() {
        let listed = ListedPeers::from_peers(page(0..8, "10.0.0.1"));
        let (a, b) = (listed.get("bgp-000"), listed.get("bgp-003"));
        let (Some(a), Some(b)) = (a, b) else {
            panic!("both listed");
        };
        assert!(Text::ptr_eq(&a.bgp_group_id, &b.bgp_group_id));
        assert!(Text::ptr_eq(&a.router_id, &b.router_id));
        let groups: HashSet<&str> = listed.values().map(|p| &*p.bgp_group_id).collect();
        assert_eq!(groups.len(), 2);
    }
}
