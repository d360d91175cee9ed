//! Observing the cloud cheaply.
//!
//! One paged `DescribeBgpPeers` listing of a BGP group answers every object of that group.
//! A listing answers for a peer only if it was started after the operator's last change to
//! that peer (so our own writes are always seen) and is young enough for the caller (the
//! resync period for a settled peer, the poll interval for one in transition). When only a
//! few objects of a large group want a fresh read, asking by peer ID is cheaper than a
//! multi-page listing, and is used instead.
//!
//! Only one listing of a group is in flight at a time, and nobody waits for it while holding
//! a reconcile slot: a reader that finds a listing in flight registers itself and gets
//! [`Lookup::Later`]; when the listing lands, every registered reader is woken (through
//! [`PeerObserver::set_waker`]) and answered from it.
//!
//! Offset paging can skip peers while others are removed, so absence from a listing is
//! trusted only for a peer the operator asked to delete and only from a consistent walk (one
//! page, or the same `TotalCount` on every page with none of our own creates in the group in
//! between). Any other absence is confirmed by ID: acting on a false absence would create a
//! second peer or release a finalizer over a live one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::BgpPeer;
use crate::cloud::{BgpPeerInfo, CloudError, Credentials, DescribeBgpPeersRequest, VpcClient};

/// Peers per DescribeBgpPeers page (the API's maximum).
pub const PAGE_SIZE: usize = 50;

/// How long a peer we deleted may stay unconfirmed (absent only from inconsistent listings)
/// before it is confirmed by ID. During a mass deletion every listing is inconsistent until
/// the removals stop, and the group then shrinks to a consistent listing: waiting for it
/// costs nothing, while confirming each peer by ID would cost a call per peer (and the
/// reconcile slots those calls wait in). The bound only matters for a group that never
/// stops changing.
const ABSENCE_PATIENCE: Duration = Duration::from_secs(300);

/// Identifies one group listing: peers are only visible to the account that owns them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct GroupKey {
    access_key_id: String,
    region: String,
    group: String,
}

#[derive(Clone)]
struct Listing {
    /// When the first page was asked for: the listing shows no change made before this.
    started_at: Instant,
    /// When the last page came back: its age.
    completed_at: Instant,
    peers: Arc<HashMap<String, BgpPeerInfo>>,
    /// No peer can have been skipped by the paging, except by someone else's addition.
    consistent: bool,
}

#[derive(Default)]
struct GroupState {
    listing: Option<Listing>,
    /// Size of the group at the last listing.
    last_size: Option<usize>,
    /// When each object of this group last asked for a read (for the listing-or-by-ID
    /// choice): distinct objects, so that a slow reconcile rate does not make a busy group
    /// look idle.
    askers: IdTimes,
    /// A listing is in flight.
    fetching: bool,
    /// Objects to wake when the listing in flight lands.
    waiters: Vec<ObjectRef<BgpPeer>>,
    /// Wakes in-process callers without a waiter (tests, tools) when the listing lands.
    landed: Arc<Notify>,
}

/// Creates of the operator in one group, for the consistency of listings.
#[derive(Default, Clone, Copy)]
struct CreateActivity {
    in_flight: usize,
    /// Bumped when a create starts and when it ends.
    epoch: u64,
}

/// What the cloud says about one peer ID.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The peer exists.
    Found(Box<BgpPeerInfo>),
    /// No such peer (an empty by-ID answer, or a consistent listing after our deletion).
    /// Errors, including "region not found", are returned as errors: only the caller knows
    /// whether they mean "gone".
    Missing,
    /// No answer yet: a listing is in flight (the caller's waiter is woken when it lands) or
    /// the peer's absence is not yet certain. Look again at the next poll tick.
    Later,
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
    /// The object to wake when a listing in flight lands. Without one, the lookup waits for
    /// that listing instead of answering [`Lookup::Later`].
    pub waiter: Option<&'a ObjectRef<BgpPeer>>,
}

/// Instants per peer ID, pruned of day-old entries as the map grows (amortised O(1)).
#[derive(Default)]
struct IdTimes {
    map: HashMap<String, Instant>,
    prune_above: usize,
}

impl IdTimes {
    fn get(&self, id: &str) -> Option<Instant> {
        self.map.get(id).copied()
    }

    fn insert(&mut self, id: &str, at: Instant) {
        if self.map.len() >= self.prune_above.max(1024) {
            let now = Instant::now();
            self.map
                .retain(|_, t| now.saturating_duration_since(*t) < Duration::from_secs(86_400));
            self.prune_above = self.map.len() * 2;
        }
        self.map.insert(id.to_owned(), at);
    }

    fn remove(&mut self, id: &str) {
        self.map.remove(id);
    }

    /// Entries no older than `window` at `now`.
    fn count_since(&self, now: Instant, window: Duration) -> usize {
        self.map
            .values()
            .filter(|t| now.saturating_duration_since(**t) <= window)
            .count()
    }
}

/// Shared, coalescing view of the cloud's peers.
#[derive(Default)]
pub struct PeerObserver {
    groups: Mutex<HashMap<GroupKey, Arc<Mutex<GroupState>>>>,
    /// When the operator last changed each peer.
    mutated_at: Mutex<IdTimes>,
    /// When the data last given for each peer was fetched.
    answered_at: Mutex<IdTimes>,
    /// Peers the operator asked the cloud to delete (the request was accepted).
    deleted: Mutex<IdTimes>,
    /// Since when a deleted peer has been absent from inconsistent listings only.
    absent_since: Mutex<IdTimes>,
    /// Since when a peer's object has been waiting for a listing in flight: the listing that
    /// lands after that answers it, however late its woken reconcile runs.
    waiting_since: Mutex<IdTimes>,
    /// The operator's creates per (region, group).
    creates: Mutex<HashMap<(String, String), CreateActivity>>,
    waker: OnceLock<UnboundedSender<ObjectRef<BgpPeer>>>,
}

fn pages(size: usize) -> usize {
    size.div_ceil(PAGE_SIZE).max(1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the data consistent: a panic elsewhere cannot poison it
    // into an unusable state.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What to do after looking at a group's state.
enum Step {
    Answer(Listing),
    Later,
    WaitLanded(Arc<Notify>),
    ById,
    Fetch,
}

/// Clears the in-flight mark if a fetch is abandoned (its future dropped).
struct FetchGuard<'a> {
    observer: &'a PeerObserver,
    slot: &'a Arc<Mutex<GroupState>>,
    armed: bool,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let waiters = {
                let mut state = lock(self.slot);
                state.fetching = false;
                state.landed.notify_waiters();
                std::mem::take(&mut state.waiters)
            };
            self.observer.wake(waiters);
        }
    }
}

impl PeerObserver {
    /// Where to send the objects to wake when a listing they wait for lands (the
    /// controller's `reconcile_on` stream). Set once.
    pub fn set_waker(&self, waker: UnboundedSender<ObjectRef<BgpPeer>>) {
        let _ = self.waker.set(waker);
    }

    fn wake(&self, waiters: Vec<ObjectRef<BgpPeer>>) {
        if let Some(waker) = self.waker.get() {
            for w in waiters {
                // A closed channel means the controller stopped: nobody to wake.
                let _ = waker.unbounded_send(w);
            }
        }
    }

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
        let now = Instant::now();
        let asked_at = lock(&self.waiting_since)
            .get(read.id)
            .map_or(now, |t| t.min(now));
        let mut not_before = lock(&self.mutated_at).get(read.id);
        if read.newer_than_last {
            not_before = not_before.max(lock(&self.answered_at).get(read.id));
        }
        let mut counted = false;
        loop {
            let step = {
                let mut state = lock(&slot);
                if !counted {
                    counted = true;
                    state.askers.insert(read.id, now);
                }
                match &state.listing {
                    Some(listing)
                        if not_before.is_none_or(|t| listing.started_at > t)
                            && (listing.completed_at >= asked_at
                                || listing.completed_at.elapsed() <= read.max_age) =>
                    {
                        Step::Answer(listing.clone())
                    }
                    _ if state.fetching => match read.waiter {
                        Some(waiter) => {
                            if !state.waiters.contains(waiter) {
                                state.waiters.push(waiter.clone());
                            }
                            let mut waiting = lock(&self.waiting_since);
                            if waiting.get(read.id).is_none() {
                                waiting.insert(read.id, asked_at);
                            }
                            Step::Later
                        }
                        None => Step::WaitLanded(state.landed.clone()),
                    },
                    // A listing would cost more calls than the objects waiting for it.
                    _ if pages(state.last_size.unwrap_or(0))
                        > state.askers.count_since(now, read.demand_window) =>
                    {
                        Step::ById
                    }
                    _ => {
                        state.fetching = true;
                        Step::Fetch
                    }
                }
            };
            if !matches!(step, Step::Later | Step::WaitLanded(_)) {
                lock(&self.waiting_since).remove(read.id);
            }
            match step {
                Step::Answer(listing) => return self.answer(vpc, creds, read, &listing).await,
                Step::Later => return Ok(Lookup::Later),
                Step::ById => return self.lookup_by_id(vpc, creds, read.region, read.id).await,
                Step::WaitLanded(landed) => {
                    let notified = landed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    // The fetch may have landed between the state check and `enable`.
                    if lock(&slot).fetching {
                        notified.await;
                    }
                }
                Step::Fetch => {
                    let listing = self.fetch(vpc, creds, &key, &slot).await?;
                    return self.answer(vpc, creds, read, &listing).await;
                }
            }
        }
    }

    /// Fetches the group's listing (the caller has set `fetching`), stores it, and wakes the
    /// readers that waited for it.
    async fn fetch(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        key: &GroupKey,
        slot: &Arc<Mutex<GroupState>>,
    ) -> Result<Listing, CloudError> {
        let mut guard = FetchGuard {
            observer: self,
            slot,
            armed: true,
        };
        let group_key = (key.region.clone(), key.group.clone());
        let before = self.create_activity(&group_key);
        let req = DescribeBgpPeersRequest {
            region_id: key.region.clone(),
            bgp_group_id: Some(key.group.clone()),
            ..Default::default()
        };
        let started_at = Instant::now();
        let result = vpc.list_bgp_peers(creds, &req).await;
        let after = self.create_activity(&group_key);
        guard.armed = false;
        let (result, waiters) = {
            let mut state = lock(slot);
            state.fetching = false;
            let result = result.map(|walk| {
                let listing = Listing {
                    started_at,
                    completed_at: Instant::now(),
                    consistent: walk.consistent
                        && before.in_flight == 0
                        && after.in_flight == 0
                        && before.epoch == after.epoch,
                    peers: Arc::new(
                        walk.peers
                            .into_iter()
                            .map(|p| (p.bgp_peer_id.clone(), p))
                            .collect(),
                    ),
                };
                state.last_size = Some(listing.peers.len());
                state.listing = Some(listing.clone());
                listing
            });
            state.landed.notify_waiters();
            (result, std::mem::take(&mut state.waiters))
        };
        self.wake(waiters);
        result
    }

    /// The answer a listing gives for `read.id`: found; or absent, which is trusted only
    /// for a peer we deleted and a consistent listing, and confirmed by ID otherwise.
    async fn answer(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        read: Read<'_>,
        listing: &Listing,
    ) -> Result<Lookup, CloudError> {
        lock(&self.answered_at).insert(read.id, listing.started_at);
        if let Some(peer) = listing.peers.get(read.id) {
            lock(&self.absent_since).remove(read.id);
            return Ok(Lookup::Found(Box::new(peer.clone())));
        }
        let deleted_by_us = lock(&self.deleted)
            .get(read.id)
            .is_some_and(|t| listing.started_at > t);
        if !deleted_by_us {
            return self.lookup_by_id(vpc, creds, read.region, read.id).await;
        }
        if listing.consistent {
            return Ok(Lookup::Missing);
        }
        // Removals went on while the listing was paged (as in a mass deletion): wait for a
        // consistent one, or confirm by ID if that takes too long.
        let since = {
            let mut absent = lock(&self.absent_since);
            match absent.get(read.id) {
                Some(t) => t,
                None => {
                    absent.insert(read.id, listing.started_at);
                    listing.started_at
                }
            }
        };
        if since.elapsed() < ABSENCE_PATIENCE {
            return Ok(Lookup::Later);
        }
        self.lookup_by_id(vpc, creds, read.region, read.id).await
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
        lock(&self.answered_at).insert(id, fetched_at);
        Ok(match page.peers.into_iter().find(|p| p.bgp_peer_id == id) {
            Some(peer) => {
                lock(&self.absent_since).remove(id);
                Lookup::Found(Box::new(peer))
            }
            None => Lookup::Missing,
        })
    }

    /// Lists `group` with a fresh paged walk and returns its peers only when the walk is
    /// consistent by the observer's rule (the paging cannot have skipped a peer, and no create
    /// of ours in the group started or ended during it); `None` otherwise.
    pub async fn list_group_consistently(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        region: &str,
        group: &str,
    ) -> Result<Option<Vec<BgpPeerInfo>>, CloudError> {
        let key = (region.to_owned(), group.to_owned());
        let before = self.create_activity(&key);
        let req = DescribeBgpPeersRequest {
            region_id: region.to_owned(),
            bgp_group_id: Some(group.to_owned()),
            ..Default::default()
        };
        let walk = vpc.list_bgp_peers(creds, &req).await?;
        let after = self.create_activity(&key);
        let consistent = walk.consistent
            && before.in_flight == 0
            && after.in_flight == 0
            && before.epoch == after.epoch;
        Ok(consistent.then_some(walk.peers))
    }

    /// Records that the operator just changed peer `id` (created, modified, deleted): only
    /// listings started after now answer for it.
    pub fn note_mutation(&self, id: &str) {
        lock(&self.mutated_at).insert(id, Instant::now());
    }

    /// Records that the cloud accepted our DeleteBgpPeer for `id`: its absence from a
    /// consistent listing started after now is trusted.
    pub fn note_deleted(&self, id: &str) {
        let now = Instant::now();
        lock(&self.mutated_at).insert(id, now);
        lock(&self.deleted).insert(id, now);
    }

    /// Forgets a peer whose object is gone.
    pub fn forget(&self, id: &str) {
        lock(&self.deleted).remove(id);
        lock(&self.absent_since).remove(id);
        lock(&self.waiting_since).remove(id);
        lock(&self.answered_at).remove(id);
        lock(&self.mutated_at).remove(id);
    }

    /// Marks a create in `group` as in flight until the returned guard is dropped: listings
    /// overlapping it are not consistent (an addition can hide a removal from the paging).
    pub fn creating(&self, region: &str, group: &str) -> CreateGuard<'_> {
        let key = (region.to_owned(), group.to_owned());
        {
            let mut creates = lock(&self.creates);
            let a = creates.entry(key.clone()).or_default();
            a.in_flight += 1;
            a.epoch += 1;
        }
        CreateGuard {
            observer: self,
            key,
        }
    }

    fn create_activity(&self, key: &(String, String)) -> CreateActivity {
        lock(&self.creates).get(key).copied().unwrap_or_default()
    }

    fn slot(&self, key: &GroupKey) -> Arc<Mutex<GroupState>> {
        lock(&self.groups).entry(key.clone()).or_default().clone()
    }
}

/// A create in flight (see [`PeerObserver::creating`]).
pub struct CreateGuard<'a> {
    observer: &'a PeerObserver,
    key: (String, String),
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        let mut creates = lock(&self.observer.creates);
        if let Some(a) = creates.get_mut(&self.key) {
            a.in_flight = a.in_flight.saturating_sub(1);
            a.epoch += 1;
        }
    }
}
