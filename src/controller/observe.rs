//! Observing the cloud cheaply: one paged `DescribeBgpPeers` per BGP group serves every
//! object of that group during a resync period, and concurrent requests for the same group
//! share one fetch. Reads that must be fresh (after our own writes, while waiting on a
//! transition) ask by peer ID instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{BgpPeerInfo, CloudError, Credentials, DescribeBgpPeersRequest, VpcClient};

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

type Slot = Arc<tokio::sync::Mutex<Option<Listing>>>;

/// What the cloud says about one peer ID.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The peer exists.
    Found(Box<BgpPeerInfo>),
    /// No such peer (an empty DescribeBgpPeers answer). Errors, including "region not
    /// found", are returned as errors: only the caller knows whether they mean "gone".
    Missing,
}

/// Shared, coalescing view of the cloud's peers.
#[derive(Default)]
pub struct PeerObserver {
    slots: Mutex<HashMap<GroupKey, Slot>>,
}

impl PeerObserver {
    /// Looks up `id` in `group`, using a group listing no older than `max_age`; a listing
    /// is fetched (all pages) when none is fresh enough, once for all concurrent callers.
    pub async fn lookup_via_group(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        region: &str,
        group: &str,
        id: &str,
        max_age: Duration,
    ) -> Result<Lookup, CloudError> {
        let key = GroupKey {
            access_key_id: creds.access_key_id().to_owned(),
            region: region.to_owned(),
            group: group.to_owned(),
        };
        let slot = self.slot(&key);
        let asked_at = Instant::now();
        let mut guard = slot.lock().await;
        let fresh = guard
            .as_ref()
            .is_some_and(|l| l.fetched_at >= asked_at || l.fetched_at.elapsed() <= max_age);
        if !fresh {
            let req = DescribeBgpPeersRequest {
                region_id: region.to_owned(),
                bgp_group_id: Some(group.to_owned()),
                ..Default::default()
            };
            let peers = vpc
                .describe_all_bgp_peers(creds, &req)
                .await?
                .into_iter()
                .map(|p| (p.bgp_peer_id.clone(), p))
                .collect();
            *guard = Some(Listing {
                fetched_at: Instant::now(),
                peers: Arc::new(peers),
            });
        }
        Ok(match guard.as_ref().and_then(|l| l.peers.get(id)) {
            Some(peer) => Lookup::Found(Box::new(peer.clone())),
            None => Lookup::Missing,
        })
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
        match vpc.describe_bgp_peers(creds, &req).await {
            Ok(page) => Ok(match page.peers.into_iter().find(|p| p.bgp_peer_id == id) {
                Some(peer) => Lookup::Found(Box::new(peer)),
                None => Lookup::Missing,
            }),
            Err(e) => Err(e),
        }
    }

    /// Forgets the listing of a group after we changed one of its peers, so the next
    /// group-level read sees our change.
    pub fn invalidate(&self, creds: &Credentials, region: &str, group: &str) {
        let key = GroupKey {
            access_key_id: creds.access_key_id().to_owned(),
            region: region.to_owned(),
            group: group.to_owned(),
        };
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(&key);
        }
    }

    fn slot(&self, key: &GroupKey) -> Slot {
        match self.slots.lock() {
            Ok(mut slots) => slots.entry(key.clone()).or_default().clone(),
            // A poisoned map only loses sharing, never correctness.
            Err(_) => Slot::default(),
        }
    }
}
