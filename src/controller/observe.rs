//! Observing the cloud cheaply.
//!
//! One paged `DescribeBgpPeers` listing of a BGP group answers every object of that group,
//! and concurrent requests share one fetch. A listing answers for a peer only if it was
//! fetched after the operator's last change to that peer (so our own writes are always seen)
//! and is young enough for the caller (the resync period for a settled peer, the poll
//! interval for one in transition). When only a few objects of a large group want a fresh
//! read, asking by peer ID is cheaper than a multi-page listing, and is used instead.
//! Absence from a listing is always confirmed by ID (offset paging can skip peers while
//! others are deleted).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{BgpPeerInfo, CloudError, Credentials, DescribeBgpPeersRequest, VpcClient};

/// Peers per DescribeBgpPeers page (the API's maximum).
pub const PAGE_SIZE: usize = 50;

/// Identifies one group listing: peers are only visible to the account that owns them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct GroupKey {
    access_key_id: String,
    region: String,
    group: String,
}

#[derive(Clone)]
struct Listing {
    fetched_at: Instant,
    peers: Arc<HashMap<String, BgpPeerInfo>>,
}

#[derive(Default)]
struct GroupState {
    listing: Option<Listing>,
    /// Size of the group at the last listing.
    last_size: Option<usize>,
    /// When objects of this group asked for a read (for the listing-or-by-ID choice).
    demand: VecDeque<Instant>,
}

/// What the cloud says about one peer ID.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The peer exists.
    Found(Box<BgpPeerInfo>),
    /// No such peer (an empty DescribeBgpPeers answer). Errors, including "region not
    /// found", are returned as errors: only the caller knows whether they mean "gone".
    Missing,
}

/// One read request.
#[derive(Clone, Copy, Debug)]
pub struct Read<'a> {
    /// Region of the group.
    pub region: &'a str,
    /// The group the peer is in.
    pub group: &'a str,
    /// The peer.
    pub id: &'a str,
    /// Oldest acceptable listing.
    pub max_age: Duration,
    /// Window over which demand for the group is counted.
    pub demand_window: Duration,
    /// Only data fetched after the data of this peer's previous read will do (for objects
    /// waiting on a transition: each look must be able to see progress).
    pub newer_than_last: bool,
}

/// Shared, coalescing view of the cloud's peers.
#[derive(Default)]
pub struct PeerObserver {
    groups: Mutex<HashMap<GroupKey, Arc<tokio::sync::Mutex<GroupState>>>>,
    mutated_at: Mutex<HashMap<String, Instant>>,
    /// When the data last given for each peer was fetched.
    answered_at: Mutex<HashMap<String, Instant>>,
}

fn pages(size: usize) -> usize {
    size.div_ceil(PAGE_SIZE).max(1)
}

impl PeerObserver {
    /// Looks up `read.id`, from a shared group listing when one is acceptable or cheap
    /// enough to fetch, otherwise by ID.
    pub async fn lookup(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        read: Read<'_>,
    ) -> Result<Lookup, CloudError> {
        let key = GroupKey {
            access_key_id: creds.access_key_id().to_owned(),
            region: read.region.to_owned(),
            group: read.group.to_owned(),
        };
        let slot = self.slot(&key);
        let asked_at = Instant::now();
        let mut not_before = self.mutated_at(read.id);
        if read.newer_than_last {
            not_before = not_before.max(self.answered_at(read.id));
        }
        let mut state = slot.lock().await;
        while state
            .demand
            .front()
            .is_some_and(|t| asked_at.duration_since(*t) > read.demand_window)
        {
            state.demand.pop_front();
        }
        state.demand.push_back(asked_at);
        if let Some(listing) = &state.listing
            && not_before.is_none_or(|t| listing.fetched_at > t)
            && (listing.fetched_at >= asked_at || listing.fetched_at.elapsed() <= read.max_age)
        {
            self.note_answer(read.id, listing.fetched_at);
            let answer = found(listing, read.id);
            drop(state);
            return self.confirm_absence(vpc, creds, read, answer).await;
        }
        let cost = pages(state.last_size.unwrap_or(0));
        if cost > state.demand.len() {
            // A listing would cost more calls than the objects waiting for it: ask by ID.
            drop(state);
            return self.lookup_by_id(vpc, creds, read.region, read.id).await;
        }
        let req = DescribeBgpPeersRequest {
            region_id: read.region.to_owned(),
            bgp_group_id: Some(read.group.to_owned()),
            ..Default::default()
        };
        let fetched_at = Instant::now();
        let peers: HashMap<String, BgpPeerInfo> = vpc
            .describe_all_bgp_peers(creds, &req)
            .await?
            .into_iter()
            .map(|p| (p.bgp_peer_id.clone(), p))
            .collect();
        state.last_size = Some(peers.len());
        let listing = Listing {
            fetched_at,
            peers: Arc::new(peers),
        };
        let answer = found(&listing, read.id);
        self.note_answer(read.id, fetched_at);
        state.listing = Some(listing);
        drop(state);
        self.confirm_absence(vpc, creds, read, answer).await
    }

    /// A listing is paged by offset: while peers of the group are deleted between two pages,
    /// later peers shift forward and some are never returned. Absence from a listing is
    /// therefore never trusted: it is confirmed by ID (absences are rare, so this is cheap),
    /// because acting on a false absence would release a finalizer over a live peer or
    /// create a second one.
    async fn confirm_absence(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        read: Read<'_>,
        answer: Lookup,
    ) -> Result<Lookup, CloudError> {
        match answer {
            Lookup::Missing => self.lookup_by_id(vpc, creds, read.region, read.id).await,
            found => Ok(found),
        }
    }

    /// Looks up one peer by ID with a fresh call (no cache).
    pub async fn lookup_by_id(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        region: &str,
        id: &str,
    ) -> Result<Lookup, CloudError> {
        let req = DescribeBgpPeersRequest {
            region_id: region.to_owned(),
            bgp_peer_id: Some(id.to_owned()),
            ..Default::default()
        };
        let fetched_at = Instant::now();
        let page = vpc.describe_bgp_peers(creds, &req).await?;
        self.note_answer(id, fetched_at);
        Ok(match page.peers.into_iter().find(|p| p.bgp_peer_id == id) {
            Some(peer) => Lookup::Found(Box::new(peer)),
            None => Lookup::Missing,
        })
    }

    /// Records that the operator just changed peer `id` (created, modified, deleted): only
    /// listings fetched after now answer for it.
    pub fn note_mutation(&self, id: &str) {
        if let Ok(mut map) = self.mutated_at.lock() {
            let now = Instant::now();
            // Entries older than a day can no longer matter to any listing we keep.
            if map.len() > 10_000 {
                map.retain(|_, t| now.duration_since(*t) < Duration::from_secs(86_400));
            }
            map.insert(id.to_owned(), now);
        }
    }

    fn mutated_at(&self, id: &str) -> Option<Instant> {
        self.mutated_at.lock().ok()?.get(id).copied()
    }

    fn answered_at(&self, id: &str) -> Option<Instant> {
        self.answered_at.lock().ok()?.get(id).copied()
    }

    fn note_answer(&self, id: &str, fetched_at: Instant) {
        if let Ok(mut map) = self.answered_at.lock() {
            if map.len() > 10_000 {
                let now = Instant::now();
                map.retain(|_, t| now.duration_since(*t) < Duration::from_secs(86_400));
            }
            map.insert(id.to_owned(), fetched_at);
        }
    }

    fn slot(&self, key: &GroupKey) -> Arc<tokio::sync::Mutex<GroupState>> {
        match self.groups.lock() {
            Ok(mut groups) => groups.entry(key.clone()).or_default().clone(),
            // A poisoned map only loses sharing, never correctness.
            Err(_) => Arc::default(),
        }
    }
}

fn found(listing: &Listing, id: &str) -> Lookup {
    match listing.peers.get(id) {
        Some(peer) => Lookup::Found(Box::new(peer.clone())),
        None => Lookup::Missing,
    }
}
