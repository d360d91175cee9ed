//! Observing the cloud cheaply.
//!
//! `DescribeBgpPeers` takes `RegionId` alone (every peer of the account in the region, other
//! owners' included) or with a `BgpGroupId` or `BgpPeerId` filter, paged at 50. Per (account,
//! region) the observer answers the objects that want a read from the cheapest of: one
//! region-wide paged listing, a listing of a busy group, or a by-ID read ([`decide::choose`]).
//! It learns a region's size from its listings. A listing answers for a peer only if it was
//! started after the operator's last change to that peer (so our own writes are always
//! seen) and is young enough for the caller (the resync period for a settled peer, the poll
//! interval for one in transition). Settled objects are answered by one region listing per
//! resync period when that is cheapest; objects in motion while our own writes in the region
//! go on wait for a region listing until enough of them want it (bounded).
//!
//! Only one listing per scope is in flight at a time, and nobody waits for it while holding
//! a reconcile slot: a reader that finds a listing in flight registers itself and gets
//! [`Lookup::Waiting`]; when the listing lands, every registered reader is woken (through
//! [`PeerObserver::set_waker`]) and answered from it.
//!
//! Offset paging can skip peers while others are removed, so absence from a listing is
//! trusted only for a peer the operator asked to delete and only from a consistent walk (one
//! page, or the same `TotalCount` on every page with exactly that many distinct peers, and
//! none of our own creates in the scope in between) started after the delete was accepted
//! ([`decide::verdict`]). Any other absence is confirmed by ID: acting on a false absence
//! would create a second peer or release a finalizer over a live one.

pub mod decide;
pub mod listed;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::BgpPeer;
use crate::cloud::{
    BgpPeerInfo, CloudError, Credentials, DescribeBgpPeersRequest, PeerStatus, VpcClient,
};
use crate::controller::timing::ListedLearner;

use decide::{Choice, Listing, PeerRecord, ReadFacts, RegionState, Scope, Verdict, Writes};
use listed::ListingBuilder;

pub use decide::{Awaiting, PAGE_SIZE};

/// Identifies one region of one account: peers are only visible to the account that owns
/// them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RegionKey {
    access_key_id: String,
    region: String,
}

/// What the cloud says about one peer ID.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The peer exists. Answered from a listing, it carries the fields a listing keeps
    /// ([`listed::ListedPeer`]: all the controller reads); by ID, the whole answer.
    Found(Box<BgpPeerInfo>),
    /// No such peer (an empty by-ID answer, or a consistent listing after our deletion).
    /// Errors, including "region not found", are returned as errors: only the caller knows
    /// whether they mean "gone".
    Missing,
    /// No answer yet: a listing is in flight or deferred, and the caller's waiter is
    /// registered: it is woken when the listing lands.
    Waiting,
    /// No answer yet: the listing that answers the caller is due in this long (our newest
    /// peers in the region are listed by then); the caller's waiter is registered and also
    /// woken if a listing lands sooner. Look again then: that look fetches it.
    Due(Duration),
    /// No answer yet and nobody will wake the caller: the peer's absence is not yet certain
    /// (an inconsistent listing), or a listing is deferred for a caller without a waiter.
    /// Look again.
    Pending,
    /// Looked, and our own peer, created or changed moments ago, is not listed yet
    /// (read-after-write lag): "not yet", never "missing". Look again soon (at the object's
    /// pace: quickly while few objects are in motion).
    NotYetListed,
}

/// One read request.
#[derive(Clone, Copy, Debug)]
pub struct ReadRequest<'a> {
    /// The account the peer is bound to ("" when not known yet): our writes and the objects
    /// still to write are counted per account (see [`PeerObserver::set_awaiting_writes`]).
    pub account: &'a str,
    /// Region of the peer.
    pub region: &'a str,
    /// The group the peer is in.
    pub group: &'a str,
    /// The peer.
    pub id: &'a str,
    /// Oldest acceptable listing.
    pub max_age: Duration,
    /// Window over which demand for reads is counted.
    pub demand_window: Duration,
    /// Only data fetched after the data of this peer's previous read will do (for objects
    /// waiting on a transition: each look must be able to see progress).
    pub newer_than_last: bool,
    /// How long after our last accepted delete in the region its removals may still go on
    /// (the learned Deleting time): readers awaiting a delete of ours do not list a paged
    /// region before then (see [`decide::ReadFacts::removals_settle`]).
    pub removals_settle: Duration,
    /// How long after its create a new peer is likely listed Available (the learned Pending
    /// time and a margin): after our last create in the region, readers of new peers wait
    /// that long for the region listing that shows them all (see
    /// [`decide::ReadFacts::creates_settle`]).
    pub creates_settle: Duration,
    /// The object to wake when a listing in flight lands. Without one, the lookup waits for
    /// that listing instead of answering [`Lookup::Waiting`].
    pub waiter: Option<&'a ObjectRef<BgpPeer>>,
}

/// A region's state behind its lock, with the notification of landed listings for callers
/// without a waiter (tests, tools).
#[derive(Default)]
struct RegionSlot {
    state: Mutex<RegionState>,
    landed: Notify,
}

/// Shared, coalescing view of the cloud's peers.
#[derive(Default)]
pub struct PeerObserver {
    regions: Mutex<HashMap<RegionKey, Arc<RegionSlot>>>,
    /// One record per peer ID, pruned of day-old records as the map grows.
    peers: Mutex<Records>,
    /// Our writes per region and per (region, group).
    writes: Mutex<WriteLog>,
    waker: OnceLock<UnboundedSender<ObjectRef<BgpPeer>>>,
    /// Our recent creates, oldest first, for [`PeerObserver::learn_from`].
    creates: Mutex<VecDeque<RecentCreate>>,
    /// Where what region listings show of our recent creates is learned.
    learner: OnceLock<Arc<ListedLearner>>,
    /// Where what listings show of our recent deletes is learned (see
    /// [`PeerObserver::learn_removals`]).
    removals: OnceLock<Arc<ListedLearner>>,
}

/// One create of ours, accepted at `at`, by the account it was made in.
struct RecentCreate {
    at: Instant,
    id: Box<str>,
    account: Box<str>,
    region: Box<str>,
}

/// Creates older than this are not learned from (they are long listed; only the boundary
/// between "not yet" and "Available" carries information).
const LEARN_WINDOW: Duration = Duration::from_secs(60);
/// Recent creates remembered at most.
const LEARN_MAX: usize = 4096;

/// One entry per peer ID: what the observer remembers of it, and the region it was last read
/// in (an index into `regions`: a fleet has a handful of regions and thousands of peers).
#[derive(Default)]
struct Records {
    map: HashMap<Box<str>, Entry>,
    prune_above: usize,
    regions: Vec<Arc<str>>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    record: PeerRecord,
    /// The region the peer was last read in (for [`PeerObserver::note_deleted`]).
    region: Option<u16>,
}

impl Records {
    fn get(&self, id: &str) -> PeerRecord {
        self.map.get(id).map(|e| e.record).unwrap_or_default()
    }

    fn update(&mut self, id: &str, f: impl FnOnce(&mut PeerRecord)) {
        self.with_entry(id, |e| f(&mut e.record));
    }

    /// Applies `f` to the entry of `id`, made if new (day-old entries are pruned as the map
    /// grows). The ID is copied only for a new entry.
    fn with_entry(&mut self, id: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.map.get_mut(id) {
            f(entry);
            return;
        }
        if self.map.len() >= self.prune_above.max(1024) {
            let now = Instant::now();
            let day = Duration::from_secs(86_400);
            let latest = |r: &PeerRecord| {
                [r.mutated_at, r.answered_at, r.deleted_at, r.waiting_since]
                    .into_iter()
                    .flatten()
                    .max()
            };
            self.map.retain(|_, e| {
                latest(&e.record).is_some_and(|t| now.saturating_duration_since(t) < day)
            });
            self.prune_above = self.map.len() * 2;
        }
        let mut entry = Entry::default();
        f(&mut entry);
        self.map.insert(id.into(), entry);
    }

    /// Notes that `id` was read in `region`.
    fn set_region(&mut self, id: &str, region: &str) {
        let index = match self.regions.iter().position(|r| &**r == region) {
            Some(i) => i,
            None => {
                self.regions.push(region.into());
                self.regions.len() - 1
            }
        };
        // More than 65,535 regions cannot happen (there are a few dozen): such a peer is
        // simply not remembered by region.
        let index = u16::try_from(index).ok();
        self.with_entry(id, |e| e.region = index);
    }

    /// The region `id` was last read in.
    fn region_of(&self, id: &str) -> Option<Arc<str>> {
        let index = self.map.get(id)?.region?;
        self.regions.get(usize::from(index)).cloned()
    }
}

/// Our writes and the objects still to write, per (account, region) and per (account,
/// region, group). Another account's peers are invisible to these credentials: its creates
/// cannot shift our listings' pages, and its deletes are not our removals. Writes under the
/// unknown account ("") count for every account of the region, and a reader of an unknown
/// account sees every account's (the safe side: more writes only defer readers and mark
/// listings inconsistent).
#[derive(Default)]
struct WriteLog {
    regions: HashMap<(String, String), Writes>,
    /// Pruned of groups without a create for [`GROUP_WRITES_KEPT`] (see
    /// [`WriteLog::bump_creates`]): a long-running controller creates into every group of
    /// its fleet, and without pruning the map would keep one entry per group ever written.
    groups: HashMap<(String, String, String), Writes>,
    /// Objects per (account, region) that will create or delete a peer and have not started
    /// (see [`PeerObserver::set_awaiting_writes`]).
    awaiting: HashMap<(String, String), Awaiting>,
    /// The last epoch given out: every bump of any entry takes the next one, so an entry's
    /// epoch only grows, and a group entry pruned and made again starts above every epoch
    /// seen before (see [`Writes::merge`]).
    epoch: u64,
    /// When the groups were last pruned.
    pruned: Option<Instant>,
}

/// A group's entry in the write log is kept this long after its last create ended. It only
/// says whether a create of ours overlapped a listing of the group, which takes seconds; an
/// entry gone is an entry with no create in flight and an epoch below the next one.
const GROUP_WRITES_KEPT: Duration = Duration::from_secs(600);
/// How often the write log's groups are pruned (as they are written).
const GROUP_WRITES_PRUNE_EVERY: Duration = Duration::from_secs(60);

impl WriteLog {
    /// A create of `key` (account, region, group) started or ended at `now`.
    fn bump_creates(&mut self, key: &(String, String, String), start: bool, now: Instant) {
        if self
            .pruned
            .is_none_or(|t| now.saturating_duration_since(t) >= GROUP_WRITES_PRUNE_EVERY)
        {
            self.groups.retain(|_, w| {
                w.creates_in_flight > 0
                    || w.last_at
                        .is_some_and(|t| now.saturating_duration_since(t) < GROUP_WRITES_KEPT)
            });
            self.pruned = Some(now);
        }
        self.epoch += 1;
        let epoch = self.epoch;
        for w in [
            self.regions
                .entry((key.0.clone(), key.1.clone()))
                .or_default(),
            self.groups.entry(key.clone()).or_default(),
        ] {
            if start {
                w.creates_in_flight += 1;
            } else {
                w.creates_in_flight = w.creates_in_flight.saturating_sub(1);
                w.last_create_at = Some(now);
            }
            w.epoch = epoch;
            w.last_at = Some(now);
        }
    }

    fn of(&self, account: &str, region: &str, scope: &Scope) -> Writes {
        let counts = |writer: &str| sees(account, writer);
        let mut w = Writes::default();
        match scope {
            Scope::Region => {
                for ((a, r), one) in &self.regions {
                    if r == region && counts(a) {
                        w = w.merge(one);
                    }
                }
                for ((a, r), awaiting) in &self.awaiting {
                    if r == region && counts(a) {
                        w.awaiting_creates += awaiting.creates;
                        w.awaiting_deletes += awaiting.deletes;
                    }
                }
            }
            // Thousands of groups: looked up, unless the account is not known.
            Scope::Group(g) if !account.is_empty() => {
                for a in [account, ""] {
                    let key = (a.to_owned(), region.to_owned(), g.clone());
                    if let Some(one) = self.groups.get(&key) {
                        w = w.merge(one);
                    }
                }
            }
            Scope::Group(g) => {
                for ((_, r, group), one) in &self.groups {
                    if group == g && r == region {
                        w = w.merge(one);
                    }
                }
            }
        }
        w
    }

    /// Whether objects of `group` still await their deletes (in `account` or an unknown
    /// one; in any account for a reader whose account is not known).
    fn group_awaits_deletes(&self, account: &str, region: &str, group: &str) -> bool {
        self.awaiting
            .iter()
            .any(|((a, r), aw)| r == region && sees(account, a) && aw.delete_groups.contains(group))
    }
}

/// Whether a reader of account `reader` counts the writes of account `writer`: its own, and
/// the unknown account's; a reader whose account is not known yet counts every account's.
fn sees(reader: &str, writer: &str) -> bool {
    reader.is_empty() || writer.is_empty() || reader == writer
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the data consistent: a panic elsewhere cannot poison it
    // into an unusable state.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Clears the in-flight mark if a fetch is abandoned (its future dropped).
struct FetchGuard<'a> {
    observer: &'a PeerObserver,
    slot: &'a RegionSlot,
    scope: &'a Scope,
    armed: bool,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let waiters = {
                let mut state = lock(&self.slot.state);
                end_fetch(&mut state, self.scope)
            };
            self.slot.landed.notify_waiters();
            self.observer.wake(waiters);
        }
    }
}

/// Clears the in-flight mark of `scope` and takes its waiters.
fn end_fetch(state: &mut RegionState, scope: &Scope) -> Vec<ObjectRef<BgpPeer>> {
    match scope {
        Scope::Region => {
            state.fetching = None;
            // A region listing answers every reader of the region, those waiting for their
            // group's listing too (a reader awaiting its delete waits for its group's
            // listing after the group's last delete; the region's last delete may be
            // answered by this listing instead, and that group listing never come).
            let mut waiters = std::mem::take(&mut state.waiters);
            for group in state.groups.values_mut() {
                if group.fetching.is_none() && !group.waiters.is_empty() {
                    waiters.append(&mut group.waiters);
                }
            }
            waiters
        }
        Scope::Group(g) => match state.groups.get_mut(g) {
            Some(g) => {
                if g.fetching.take().is_some() {
                    state.group_fetches = state.group_fetches.saturating_sub(1);
                }
                std::mem::take(&mut g.waiters)
            }
            None => Vec::new(),
        },
    }
}

impl PeerObserver {
    /// Where to send the objects to wake when a listing they wait for lands (the
    /// controller's `reconcile_on` stream). Set once.
    pub fn set_waker(&self, waker: UnboundedSender<ObjectRef<BgpPeer>>) {
        let _ = self.waker.set(waker);
    }

    /// Where to learn how long after its create a peer is listed Available (the pace's
    /// [`ListedLearner`]). Set once.
    pub fn learn_into(&self, learner: Arc<ListedLearner>) {
        let _ = self.learner.set(learner);
    }

    /// Where to learn how long after our accepted delete a peer is gone from listings (the
    /// pace's, which times the looks and listings after deletes by it). Set once.
    pub fn learn_removals_into(&self, learner: Arc<ListedLearner>) {
        let _ = self.removals.set(learner);
    }

    /// Records that the cloud accepted our create of peer `id` in `account` and `region`: a
    /// mutation (see [`PeerObserver::note_mutation`]), and a create whose listing is learned
    /// from.
    pub fn note_created(&self, id: &str, account: &str, region: &str) {
        self.note_mutation(id);
        let now = Instant::now();
        let mut creates = lock(&self.creates);
        while creates.len() >= LEARN_MAX
            || creates
                .front()
                .is_some_and(|c| now.saturating_duration_since(c.at) > LEARN_WINDOW)
        {
            creates.pop_front();
        }
        creates.push_back(RecentCreate {
            at: now,
            id: id.into(),
            account: account.into(),
            region: region.into(),
        });
    }

    /// What a region listing shows of our recent creates in it, learned: each is a sample,
    /// Available at most its age when the listing ended, or not yet (Pending or not listed)
    /// at least its age when it started. Every recent create counts, not only the objects
    /// the listing answers: during a mass create the objects it answers are the older ones
    /// (all Available), the youngest have not looked yet. Only the listing's account's
    /// creates count (another account's peers are invisible to it, absent at every age), and
    /// none while the account is not known.
    fn learn_from(&self, account: &str, region: &str, listing: &Listing) {
        let Some(learner) = self.learner.get() else {
            return;
        };
        if account.is_empty() {
            return;
        }
        let creates = lock(&self.creates);
        let peers = lock(&self.peers);
        for c in creates.iter().filter(|c| {
            &*c.region == region
                && &*c.account == account
                && c.at < listing.started_at
                && listing.started_at.saturating_duration_since(c.at) <= LEARN_WINDOW
                // A peer we deleted since (or whose object is gone, its record forgotten)
                // is absent for another reason.
                && peers.map.get(&*c.id).is_some_and(|e| e.record.deleted_at.is_none())
        }) {
            match listing.peers.get(&c.id) {
                Some(p) if p.status == PeerStatus::Available => {
                    learner.record(listing.completed_at.saturating_duration_since(c.at), true);
                }
                _ => learner.record(listing.started_at.saturating_duration_since(c.at), false),
            }
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            // Unbounded by a poll interval (the observer knows none): the raw estimate.
            tracing::debug!(
                region,
                listed_after = ?learner.estimate(Duration::MAX),
                "learned from the listing"
            );
        }
    }

    /// What a listing of `state`'s region (one account's) shows of the peers we deleted in
    /// its scope, learned: each is a sample, still there at least its age when the listing
    /// started (present, even in an inconsistent listing: paging skips peers, it does not
    /// invent them), or gone at most its age when it ended (absent from a consistent
    /// listing, or listed as `Deleted`, which the plan takes for gone). Our deleted peers are found among the readers of the scope's groups (every
    /// object whose deletion waits for confirmation asks, and a fleet's objects asked at
    /// their last resync), so it costs no memory of its own. Deletes older than
    /// [`LEARN_WINDOW`] teach nothing (long gone).
    fn learn_removals(&self, state: &RegionState, listing: &Listing) {
        let Some(learner) = self.removals.get() else {
            return;
        };
        let groups: Vec<&decide::GroupState> = match &listing.scope {
            Scope::Region => state.groups.values().collect(),
            Scope::Group(g) => state.groups.get(g).into_iter().collect(),
        };
        // Lock order: region state (held by the caller), then records.
        let peers = lock(&self.peers);
        let (mut present, mut gone) = (0usize, 0usize);
        for id in groups.iter().flat_map(|g| g.askers.keys()) {
            let Some(deleted) = peers.get(id).deleted_at else {
                continue;
            };
            if deleted >= listing.started_at
                || listing.started_at.saturating_duration_since(deleted) > LEARN_WINDOW
            {
                continue;
            }
            let listed = listing
                .peers
                .get(id)
                .map(|p| p.status == PeerStatus::Deleted);
            if listed == Some(false) {
                learner.record(listing.started_at.saturating_duration_since(deleted), false);
                present += 1;
            } else if listed == Some(true) || listing.consistent {
                learner.record(
                    listing.completed_at.saturating_duration_since(deleted),
                    true,
                );
                gone += 1;
            }
        }
        if present + gone > 0 && tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                scope = ?listing.scope,
                present,
                gone,
                removed_after = ?learner.estimate_probing(Duration::MAX),
                "learned removals from the listing"
            );
        }
    }

    /// What a by-ID read of `id` showed (`found`: listed, and not as `Deleted`; read between
    /// `fetched` and `answered`) of our delete of it, learned like
    /// [`PeerObserver::learn_removals`].
    fn learn_removal_by_id(&self, id: &str, found: bool, fetched: Instant, answered: Instant) {
        let Some(learner) = self.removals.get() else {
            return;
        };
        let Some(deleted) = lock(&self.peers).get(id).deleted_at else {
            return;
        };
        if deleted >= fetched || fetched.saturating_duration_since(deleted) > LEARN_WINDOW {
            return;
        }
        if found {
            learner.record(fetched.saturating_duration_since(deleted), false);
        } else {
            learner.record(answered.saturating_duration_since(deleted), true);
        }
    }

    fn wake(&self, waiters: Vec<ObjectRef<BgpPeer>>) {
        if let Some(waker) = self.waker.get() {
            for w in waiters {
                // A closed channel means the controller stopped: nobody to wake.
                let _ = waker.unbounded_send(w);
            }
        }
    }

    /// Looks up `read.id` from a shared region or group listing when one is acceptable or
    /// cheap enough to fetch, otherwise by ID.
    pub async fn lookup(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        read: ReadRequest<'_>,
    ) -> Result<Lookup, CloudError> {
        let key = RegionKey {
            access_key_id: creds.access_key_id().to_owned(),
            region: read.region.to_owned(),
        };
        let slot = self.slot(&key);
        let mut facts = ReadFacts {
            group: read.group,
            max_age: read.max_age,
            demand_window: read.demand_window,
            newer_than_last: read.newer_than_last,
            removals_settle: read.removals_settle,
            creates_settle: read.creates_settle,
            reads_own_budget: vpc
                .config()
                .rate_limit
                .as_ref()
                .is_none_or(|c| c.model == crate::cloud::QuotaModel::PerOperation),
            group_last_delete: None,
            group_awaits_deletes: false,
        };
        {
            lock(&self.peers).set_region(read.id, read.region);
        }
        let mut counted = false;
        loop {
            let now = Instant::now();
            let record = lock(&self.peers).get(read.id);
            let (writes, group_awaits_deletes) = {
                let log = lock(&self.writes);
                let awaits = log.group_awaits_deletes(read.account, read.region, read.group);
                (log.of(read.account, read.region, &Scope::Region), awaits)
            };
            facts.group_awaits_deletes = group_awaits_deletes;
            let (choice, listing) = {
                let mut state = lock(&slot.state);
                state.demand_horizon = state.demand_horizon.max(read.demand_window);
                let known = state.group_sizes.get(read.group).copied();
                let group = state.groups.entry(read.group.to_owned()).or_default();
                if !counted {
                    counted = true;
                    group.askers.insert(read.id.to_owned(), now);
                }
                if group.size.is_none() {
                    group.size = known;
                }
                if record.deleted_at.is_some() && group.size.is_some_and(|n| n <= PAGE_SIZE) {
                    // Our last delete in the group (a page of peers at most; lock order:
                    // region state, then records).
                    let peers = lock(&self.peers);
                    facts.group_last_delete = group
                        .askers
                        .keys()
                        .filter_map(|id| peers.get(id).deleted_at)
                        .max();
                }
                let choice = decide::choose(&state, &writes, &record, &facts, now);
                if choice == Choice::Fetch(Scope::Region)
                    && tracing::enabled!(tracing::Level::DEBUG)
                {
                    let first = state.deferred.values().min().copied();
                    tracing::debug!(
                        region = read.region,
                        deferred = state.deferred.len(),
                        pages = state.region_cost(),
                        writes_ongoing = writes.ongoing(now),
                        creates_in_flight = writes.creates_in_flight,
                        since_first_deferred = ?first.map(|t| now.saturating_duration_since(t)),
                        since_last_create = ?writes.last_create_at.map(|t| now.saturating_duration_since(t)),
                        newer_than_last = facts.newer_than_last,
                        "region listing chosen"
                    );
                }
                let listing = self.enact(&mut state, &choice, &read, now);
                (choice, listing)
            };
            let waiting = matches!(choice, Choice::Wait(_) | Choice::Defer(_));
            lock(&self.peers).update(read.id, |r| {
                r.waiting_since = if waiting {
                    Some(r.waiting_since.map_or(now, |t| t.min(now)))
                } else {
                    None
                };
            });
            match choice {
                Choice::Answer(_) => {
                    // `enact` returns the listing chosen (decided under the same lock).
                    if let Some(listing) = listing {
                        return self.answer(vpc, creds, read, &listing).await;
                    }
                }
                Choice::Defer(Some(due)) if read.waiter.is_some() => {
                    return Ok(Lookup::Due(due.saturating_duration_since(now)));
                }
                Choice::Defer(_) | Choice::Wait(_) if read.waiter.is_some() => {
                    return Ok(Lookup::Waiting);
                }
                Choice::Defer(_) => return Ok(Lookup::Pending),
                Choice::Wait(scope) => {
                    let notified = slot.landed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    // The fetch may have landed between the decision and `enable`.
                    if in_flight(&lock(&slot.state), &scope) {
                        notified.await;
                    }
                }
                Choice::ById => return self.lookup_by_id(vpc, creds, read.region, read.id).await,
                Choice::Fetch(scope) => {
                    let listing = self
                        .fetch(vpc, creds, read.account, &key, &slot, &scope)
                        .await?;
                    return self.answer(vpc, creds, read, &listing).await;
                }
            }
        }
    }

    /// Applies the bookkeeping of `choice` to the region state (under its lock): waiters
    /// registered, deferrals noted, a fetch marked in flight. Returns the listing an answer
    /// is given from.
    fn enact(
        &self,
        state: &mut RegionState,
        choice: &Choice,
        read: &ReadRequest<'_>,
        now: Instant,
    ) -> Option<Listing> {
        let register = |waiters: &mut Vec<ObjectRef<BgpPeer>>| {
            if let Some(w) = read.waiter
                && !waiters.contains(w)
            {
                waiters.push(w.clone());
            }
        };
        match choice {
            Choice::Answer(Scope::Region) => state.listing.clone(),
            Choice::Answer(Scope::Group(g)) => state.groups.get(g).and_then(|g| g.listing.clone()),
            Choice::Wait(Scope::Region) => {
                register(&mut state.waiters);
                None
            }
            Choice::Wait(Scope::Group(g)) => {
                if let Some(g) = state.groups.get_mut(g) {
                    register(&mut g.waiters);
                }
                None
            }
            Choice::Defer(_) => {
                state.deferred.entry(read.id.to_owned()).or_insert(now);
                register(&mut state.waiters);
                None
            }
            Choice::ById => None,
            Choice::Fetch(Scope::Region) => {
                state.fetching = Some(now);
                None
            }
            Choice::Fetch(Scope::Group(g)) => {
                if let Some(g) = state.groups.get_mut(g) {
                    g.fetching = Some(now);
                    state.group_fetches += 1;
                }
                None
            }
        }
    }

    /// Fetches a listing of `scope` (the caller has marked it in flight), stores it, and wakes
    /// the readers that waited for it.
    async fn fetch(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        account: &str,
        key: &RegionKey,
        slot: &RegionSlot,
        scope: &Scope,
    ) -> Result<Listing, CloudError> {
        let mut guard = FetchGuard {
            observer: self,
            slot,
            scope,
            armed: true,
        };
        let before = lock(&self.writes).of(account, &key.region, scope);
        let req = DescribeBgpPeersRequest {
            region_id: key.region.clone(),
            bgp_group_id: match scope {
                Scope::Region => None,
                Scope::Group(g) => Some(g.clone()),
            },
            ..Default::default()
        };
        let started_at = Instant::now();
        // Built straight from the pages (see `listed`).
        let mut peers = ListingBuilder::default();
        let result = vpc
            .walk_bgp_peers(creds, &req, |total, page| peers.page(total, page))
            .await;
        let after = lock(&self.writes).of(account, &key.region, scope);
        guard.armed = false;
        let (result, waiters) = {
            let mut state = lock(&slot.state);
            let result = result.map(|walk| {
                let listing = Listing {
                    scope: scope.clone(),
                    started_at,
                    completed_at: Instant::now(),
                    consistent: walk.consistent && !after.overlapped(&before),
                    peers: Arc::new(peers.finish()),
                };
                store(&mut state, &listing);
                listing
            });
            (result, end_fetch(&mut state, scope))
        };
        if let Ok(listing) = &result {
            tracing::debug!(
                region = %key.region,
                scope = ?listing.scope,
                peers = listing.peers.len(),
                consistent = listing.consistent,
                waiters = waiters.len(),
                "listing landed"
            );
            if listing.scope == Scope::Region {
                self.learn_from(account, &key.region, listing);
            }
            self.learn_removals(&lock(&slot.state), listing);
        }
        slot.landed.notify_waiters();
        self.wake(waiters);
        result
    }

    /// The answer a listing gives for `read.id` ([`decide::verdict`]).
    async fn answer(
        &self,
        vpc: &VpcClient,
        creds: &Credentials,
        read: ReadRequest<'_>,
        listing: &Listing,
    ) -> Result<Lookup, CloudError> {
        let now = Instant::now();
        let record = lock(&self.peers).get(read.id);
        let writes = lock(&self.writes).of(read.account, read.region, &Scope::Region);
        let verdict = decide::verdict(listing, read.id, &record, &writes, now);
        lock(&self.peers).update(read.id, |r| {
            r.answered_at = Some(listing.started_at);
            r.answered_until = Some(listing.completed_at);
            r.absent_since = match verdict {
                Verdict::Unsure { absent_since } => Some(absent_since),
                _ => None,
            };
        });
        match verdict {
            Verdict::Found(peer) => Ok(Lookup::Found(Box::new(peer.to_info(read.id, read.region)))),
            Verdict::Missing => Ok(Lookup::Missing),
            // Our own new peer, not listed yet (read-after-write lag): the next look.
            Verdict::NotYetListed => Ok(Lookup::NotYetListed),
            // Removals went on while the listing was paged (as in a mass deletion): wait for
            // a consistent one.
            Verdict::Unsure { .. } => Ok(Lookup::Pending),
            Verdict::ConfirmById => self.lookup_by_id(vpc, creds, read.region, read.id).await,
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
        let answered_until = Instant::now();
        lock(&self.peers).update(id, |r| {
            r.answered_at = Some(fetched_at);
            r.answered_until = Some(answered_until);
            r.absent_since = None;
        });
        let peer = page.peers.into_iter().find(|p| p.bgp_peer_id == id);
        let still_there = peer
            .as_ref()
            .is_some_and(|p| p.status != PeerStatus::Deleted);
        self.learn_removal_by_id(id, still_there, fetched_at, answered_until);
        Ok(match peer {
            Some(peer) => Lookup::Found(Box::new(peer)),
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
        account: &str,
        region: &str,
        group: &str,
    ) -> Result<Option<Vec<BgpPeerInfo>>, CloudError> {
        let scope = Scope::Group(group.to_owned());
        let before = lock(&self.writes).of(account, region, &scope);
        let req = DescribeBgpPeersRequest {
            region_id: region.to_owned(),
            bgp_group_id: Some(group.to_owned()),
            ..Default::default()
        };
        let walk = vpc.list_bgp_peers(creds, &req).await?;
        let after = lock(&self.writes).of(account, region, &scope);
        let consistent = walk.consistent && !after.overlapped(&before);
        Ok(consistent.then_some(walk.peers))
    }

    /// How many objects per (account, region) will create or delete a peer and have not
    /// started (counted from the cache; see [`crate::controller::peer::awaits_create`] and
    /// [`crate::controller::peer::awaits_delete`]). While creates remain, our writes in the
    /// region count as ongoing, so a pause between creates does not list the region for a
    /// few readers; while deletes remain, readers awaiting our deletes do not list a paged
    /// region (it would be inconsistent). Keyed by the account the object is bound to
    /// (`status.accountId`; "" before it is known, which counts for every account of the
    /// region): with one region name in two accounts, one account's pending deletes held the
    /// other's confirmations until they ended (N = 1,000, one shared quota: 333 deleted
    /// peers unconfirmed for 15 s, then ~700 finalizers released in one burst).
    pub fn set_awaiting_writes(&self, counts: HashMap<(String, String), Awaiting>) {
        lock(&self.writes).awaiting = counts;
    }

    /// Records that the operator just changed peer `id` (created, modified, deleted): only
    /// listings started after now answer for it.
    pub fn note_mutation(&self, id: &str) {
        let now = Instant::now();
        lock(&self.peers).update(id, |r| r.mutated_at = Some(now));
    }

    /// Records that the cloud accepted our DeleteBgpPeer for `id`: its absence from a
    /// consistent listing started after now is trusted.
    pub fn note_deleted(&self, id: &str, account: &str) {
        let now = Instant::now();
        let region = {
            let mut peers = lock(&self.peers);
            peers.update(id, |r| {
                r.mutated_at = Some(now);
                r.deleted_at = Some(now);
            });
            peers.region_of(id)
        };
        if let Some(region) = region {
            let mut writes = lock(&self.writes);
            let w = writes
                .regions
                .entry((account.to_owned(), region.to_string()))
                .or_default();
            w.last_at = Some(now);
            w.last_delete_at = Some(now);
        }
    }

    /// When the data last given for peer `id` was read: between the start and the end of
    /// its listing or call (for the pace's learning: the age of what a look saw is the age
    /// of the data, not of the reconcile that read it).
    pub fn answered_window(&self, id: &str) -> Option<(Instant, Instant)> {
        let record = lock(&self.peers).get(id);
        record.answered_at.zip(record.answered_until)
    }

    /// Forgets a peer whose object is gone.
    pub fn forget(&self, id: &str) {
        let mut peers = lock(&self.peers);
        peers.map.remove(id);
    }

    /// Marks a create of `account` in `group` as in flight until the returned guard is
    /// dropped: listings of the group or its region overlapping it are not consistent (an
    /// addition can hide a removal from the paging).
    pub fn creating(&self, account: &str, region: &str, group: &str) -> CreateGuard<'_> {
        let key = (account.to_owned(), region.to_owned(), group.to_owned());
        self.bump_creates(&key, true);
        CreateGuard {
            observer: self,
            key,
        }
    }

    fn bump_creates(&self, key: &(String, String, String), start: bool) {
        lock(&self.writes).bump_creates(key, start, Instant::now());
    }

    fn slot(&self, key: &RegionKey) -> Arc<RegionSlot> {
        lock(&self.regions).entry(key.clone()).or_default().clone()
    }
}

/// Stores a listing that landed, with the sizes it shows; a region listing answers every
/// reader it was deferring.
fn store(state: &mut RegionState, listing: &Listing) {
    match &listing.scope {
        Scope::Region => {
            let mut sizes: HashMap<String, usize> = HashMap::new();
            for p in listing.peers.values() {
                match sizes.get_mut(&*p.bgp_group_id) {
                    Some(n) => *n += 1,
                    None => {
                        sizes.insert(p.bgp_group_id.to_string(), 1);
                    }
                }
            }
            for (id, g) in &mut state.groups {
                g.size = Some(sizes.get(id).copied().unwrap_or(0));
            }
            state.size = Some(listing.peers.len());
            state.group_sizes = sizes;
            state.deferred.clear();
            state.listing = Some(listing.clone());
            state.forget_idle_groups(listing.started_at, listing.completed_at);
        }
        Scope::Group(g) => {
            let group = state.groups.entry(g.clone()).or_default();
            group.size = Some(listing.peers.len());
            group.listing = Some(listing.clone());
        }
    }
}

fn in_flight(state: &RegionState, scope: &Scope) -> bool {
    match scope {
        Scope::Region => state.fetching.is_some(),
        Scope::Group(g) => state.groups.get(g).is_some_and(|g| g.fetching.is_some()),
    }
}

/// A create in flight (see [`PeerObserver::creating`]).
pub struct CreateGuard<'a> {
    observer: &'a PeerObserver,
    key: (String, String, String),
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        self.observer.bump_creates(&self.key, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, status: PeerStatus) -> BgpPeerInfo {
        BgpPeerInfo {
            bgp_peer_id: id.to_owned(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn a_region_listing_wakes_the_readers_waiting_for_their_groups_too() {
        let obj = |name: &str| ObjectRef::<BgpPeer>::new(name).within("ns");
        let mut state = RegionState {
            fetching: Some(Instant::now()),
            waiters: vec![obj("region-reader")],
            ..Default::default()
        };
        // One waits for its group's listing after the group's last delete (none in flight);
        // another's group listing is in flight and wakes it when it lands.
        state.groups.insert(
            "bgpg-1".into(),
            decide::GroupState {
                waiters: vec![obj("group-reader")],
                ..Default::default()
            },
        );
        state.groups.insert(
            "bgpg-2".into(),
            decide::GroupState {
                fetching: Some(Instant::now()),
                waiters: vec![obj("fetching-group-reader")],
                ..Default::default()
            },
        );
        let woken = end_fetch(&mut state, &Scope::Region);
        assert_eq!(woken, vec![obj("region-reader"), obj("group-reader")]);
        assert_eq!(state.fetching, None);
        assert_eq!(state.groups["bgpg-2"].waiters.len(), 1);
        // The in-flight group listing ends: its reader is woken, the count of group listings
        // in flight goes down.
        state.group_fetches = 1;
        let woken = end_fetch(&mut state, &Scope::Group("bgpg-2".into()));
        assert_eq!(woken, vec![obj("fetching-group-reader")]);
        assert_eq!(state.group_fetches, 0);
    }

    #[test]
    fn a_region_listing_forgets_the_groups_nobody_reads_and_keeps_the_others() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let obj = |name: &str| ObjectRef::<BgpPeer>::new(name).within("ns");
        let group_listing = |started: u64| Listing {
            scope: Scope::Group("g".into()),
            started_at: at(started),
            completed_at: at(started),
            peers: Arc::new(listed::ListedPeers::default()),
            consistent: true,
        };
        let asked = |s: u64| decide::GroupState {
            askers: HashMap::from([("bgp-1".to_owned(), at(s))]),
            ..Default::default()
        };
        let mut state = RegionState {
            demand_horizon: Duration::from_secs(600),
            ..Default::default()
        };
        let groups = [
            // Asked 11 minutes before the listing landed, nothing else: forgotten.
            ("idle", asked(0)),
            // Asked within the horizon: kept.
            ("asked", asked(100)),
            // Idle, but a listing of it is in flight, or somebody waits for one: kept.
            (
                "fetching",
                decide::GroupState {
                    fetching: Some(at(650)),
                    ..asked(0)
                },
            ),
            (
                "waited-for",
                decide::GroupState {
                    waiters: vec![obj("reader")],
                    ..asked(0)
                },
            ),
            // Idle, with a listing older than the region listing: forgotten; with one that
            // started after it: kept (it is the fresher answer).
            (
                "old-listing",
                decide::GroupState {
                    listing: Some(group_listing(10)),
                    ..asked(0)
                },
            ),
            (
                "newer-listing",
                decide::GroupState {
                    listing: Some(group_listing(655)),
                    ..asked(0)
                },
            ),
        ];
        for (name, g) in groups {
            state.groups.insert(name.to_owned(), g);
        }
        let region = Listing {
            scope: Scope::Region,
            started_at: at(650),
            completed_at: at(660),
            peers: Arc::new(listed::ListedPeers::default()),
            consistent: true,
        };
        store(&mut state, &region);
        let mut kept: Vec<&str> = state.groups.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["asked", "fetching", "newer-listing", "waited-for"]);
        // A shorter horizon forgets the group asked 9 minutes before too.
        state.demand_horizon = Duration::from_secs(60);
        store(&mut state, &region);
        let mut kept: Vec<&str> = state.groups.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["fetching", "newer-listing", "waited-for"]);
    }

    #[test]
    fn our_writes_are_counted_per_account() {
        let observer = PeerObserver::default();
        // Account A deleted a peer read in cn-shanghai, has 5 objects still to delete there
        // and a create in flight in group g1.
        lock(&observer.peers).set_region("bgp-a1", "cn-shanghai");
        observer.note_deleted("bgp-a1", "A");
        let key = |a: &str| (a.to_owned(), "cn-shanghai".to_owned());
        observer.set_awaiting_writes(HashMap::from([(
            key("A"),
            Awaiting {
                creates: 0,
                deletes: 5,
                delete_groups: ["g1".to_owned()].into(),
            },
        )]));
        let _create = observer.creating("A", "cn-shanghai", "g1");
        let g1 = Scope::Group("g1".into());
        {
            let log = lock(&observer.writes);
            let a = log.of("A", "cn-shanghai", &Scope::Region);
            assert_eq!((a.awaiting_deletes, a.creates_in_flight), (5, 1), "{a:?}");
            assert!(a.last_delete_at.is_some());
            assert!(log.group_awaits_deletes("A", "cn-shanghai", "g1"));
            assert_eq!(log.of("A", "cn-shanghai", &g1).creates_in_flight, 1);
            // Account B, same region name: none of it (A's peers are invisible to B).
            assert_eq!(
                log.of("B", "cn-shanghai", &Scope::Region),
                Writes::default()
            );
            assert_eq!(log.of("B", "cn-shanghai", &g1), Writes::default());
            assert!(!log.group_awaits_deletes("B", "cn-shanghai", "g1"));
            assert_eq!(log.of("A", "cn-beijing", &Scope::Region), Writes::default());
        }
        // A write of an unknown account ("") counts for every account of the region.
        let _unknown = observer.creating("", "cn-shanghai", "g1");
        let log = lock(&observer.writes);
        assert_eq!(
            log.of("B", "cn-shanghai", &Scope::Region).creates_in_flight,
            1
        );
        assert_eq!(
            log.of("A", "cn-shanghai", &Scope::Region).creates_in_flight,
            2
        );
        assert_eq!(log.of("B", "cn-shanghai", &g1).creates_in_flight, 1);
        // A reader whose account is not known sees every account's writes.
        assert_eq!(log.of("", "cn-shanghai", &g1).creates_in_flight, 2);
        assert_eq!(
            log.of("", "cn-shanghai", &Scope::Region).awaiting_deletes,
            5
        );
        assert!(log.group_awaits_deletes("", "cn-shanghai", "g1"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_write_log_forgets_idle_groups_without_hiding_a_create_from_a_listing() {
        let observer = PeerObserver::default();
        let g2 = Scope::Group("g2".into());
        let key = |g: &str| ("A".to_owned(), "r".to_owned(), g.to_owned());
        // A create in g1 stays in flight; one in g2 starts and ends.
        let in_flight = observer.creating("A", "r", "g1");
        drop(observer.creating("A", "r", "g2"));
        tokio::time::advance(GROUP_WRITES_KEPT).await;
        // A listing of g2 starts.
        let before = lock(&observer.writes).of("A", "r", &g2);
        // A create in g3 prunes g2, idle for GROUP_WRITES_KEPT, and keeps g1 (in flight).
        drop(observer.creating("A", "r", "g3"));
        {
            let log = lock(&observer.writes);
            assert!(!log.groups.contains_key(&key("g2")));
            assert!(log.groups.contains_key(&key("g1")));
            assert_eq!(log.groups.len(), 2);
        }
        // A create in g2 starts and ends during the listing: the listing is not consistent,
        // though g2's entry is new (with an epoch per entry, its second start and end would
        // give it the epoch it had when the listing started).
        drop(observer.creating("A", "r", "g2"));
        let after = lock(&observer.writes).of("A", "r", &g2);
        assert_eq!(after.creates_in_flight, 0);
        assert!(after.overlapped(&before));
        // Nothing written meanwhile: consistent.
        let again = lock(&observer.writes).of("A", "r", &g2);
        assert!(!again.overlapped(&after));
        drop(in_flight);
    }

    #[tokio::test(start_paused = true)]
    async fn a_region_listing_teaches_when_our_new_peers_are_listed() {
        let observer = PeerObserver::default();
        let learner = Arc::new(ListedLearner::default());
        observer.learn_into(learner.clone());
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // Creates at 0, 1, 2 and 3 s in cn-shanghai, one at 0 s in another region, one at
        // 0 s by another account in the same region, and two at 0.5 s: one we deleted since,
        // one whose object is gone.
        observer.note_created("bgp-a", "A", "cn-shanghai");
        observer.note_created("bgp-other-region", "A", "cn-beijing");
        observer.note_created("bgp-other-account", "B", "cn-shanghai");
        tokio::time::advance(ms(500)).await;
        observer.note_created("bgp-deleted", "A", "cn-shanghai");
        observer.note_deleted("bgp-deleted", "A");
        // And one whose object is gone since (its record forgotten).
        observer.note_created("bgp-forgotten", "A", "cn-shanghai");
        observer.forget("bgp-forgotten");
        tokio::time::advance(ms(500)).await;
        observer.note_created("bgp-b", "A", "cn-shanghai");
        tokio::time::advance(ms(1000)).await;
        observer.note_created("bgp-c", "A", "cn-shanghai");
        tokio::time::advance(ms(1000)).await;
        observer.note_created("bgp-d", "A", "cn-shanghai");
        // A listing of account A read from 3.5 to 3.7 s: "a" and "b" Available, "c"
        // Pending, "d" not listed yet (read-after-write lag).
        let listing = Listing {
            scope: Scope::Region,
            started_at: t0 + ms(3500),
            completed_at: t0 + ms(3700),
            peers: Arc::new(listed::ListedPeers::from_peers([
                listed("bgp-a", PeerStatus::Available),
                listed("bgp-b", PeerStatus::Available),
                listed("bgp-c", PeerStatus::Pending),
            ])),
            consistent: true,
        };
        // Only "not yet" samples so far would teach nothing: nothing learned before.
        assert_eq!(learner.estimate(Duration::from_secs(5)), None);
        // A listing whose account is not known teaches nothing.
        observer.learn_from("", "cn-shanghai", &listing);
        assert_eq!(learner.estimate(Duration::from_secs(5)), None);
        observer.learn_from("A", "cn-shanghai", &listing);
        // Available at most 2.7 s ("b"), not yet at least 1.5 s ("c") and 0.5 s ("d"): just
        // above 1.5 s (the gap is wide). The absence of the deleted and the forgotten peers,
        // the other region's and the other account's (invisible to A) taught nothing (else
        // "not yet" at 3 s or 3.5 s would push it up).
        assert_eq!(learner.estimate(Duration::from_secs(5)), Some(ms(1750)));
    }

    #[tokio::test(start_paused = true)]
    async fn listings_teach_when_our_deleted_peers_are_gone() {
        let observer = PeerObserver::default();
        let learner = Arc::new(ListedLearner::default());
        observer.learn_removals_into(learner.clone());
        let ms = Duration::from_millis;
        let poll = Duration::from_secs(5);
        let t0 = Instant::now();
        let group = |ids: &[&str]| decide::GroupState {
            askers: ids.iter().map(|id| ((*id).to_owned(), t0)).collect(),
            ..Default::default()
        };
        let mut state = RegionState::default();
        state
            .groups
            .insert("g1".into(), group(&["bgp-1", "bgp-2", "bgp-kept"]));
        state.groups.insert("g2".into(), group(&["bgp-3", "bgp-4"]));
        let listing = |scope: Scope, at: u64, ids: &[&str], consistent: bool| Listing {
            scope,
            started_at: t0 + ms(at),
            completed_at: t0 + ms(at + 100),
            peers: Arc::new(listed::ListedPeers::from_peers(
                ids.iter().map(|id| listed(id, PeerStatus::Deleting)),
            )),
            consistent,
        };
        // Deletes at 0 s (bgp-1, bgp-3) and 1 s (bgp-2, bgp-4); bgp-kept is not deleted.
        for id in ["bgp-1", "bgp-2", "bgp-kept", "bgp-3", "bgp-4"] {
            lock(&observer.peers).set_region(id, "cn-shanghai");
        }
        observer.note_deleted("bgp-1", "A");
        observer.note_deleted("bgp-3", "A");
        tokio::time::advance(ms(1000)).await;
        observer.note_deleted("bgp-2", "A");
        observer.note_deleted("bgp-4", "A");
        // Nothing seen yet: nothing learned (the pace falls back to its per-object looks).
        assert_eq!(learner.estimate_probing(poll), None);
        // A consistent listing of g1 from 4.0 to 4.1 s shows both gone (bgp-kept listed):
        // gone by 4.1 s and 3.1 s. Upper bounds only: the estimate probes at half the
        // youngest, 1.55 s; g2's peers, not in the scope, taught nothing.
        let g1 = Scope::Group("g1".into());
        observer.learn_removals(&state, &listing(g1.clone(), 4000, &["bgp-kept"], true));
        assert_eq!(learner.estimate_probing(poll), Some(ms(1550)));
        assert_eq!(learner.estimate(poll), None);
        // An inconsistent region listing from 2.5 to 2.6 s shows bgp-4 still there (at least
        // 1.5 s after its delete), bgp-1 listed as Deleted (gone by 2.6 s: the plan takes it
        // for gone), and not bgp-3: absence from it proves nothing.
        let region = Listing {
            peers: Arc::new(listed::ListedPeers::from_peers([
                listed("bgp-kept", PeerStatus::Available),
                listed("bgp-4", PeerStatus::Deleting),
                listed("bgp-1", PeerStatus::Deleted),
            ])),
            ..listing(Scope::Region, 2500, &[], false)
        };
        observer.learn_removals(&state, &region);
        // Still there at 1.5 s, gone by 2.6 s, 3.1 s and 4.1 s: just above 1.5 s.
        assert_eq!(learner.estimate(poll), Some(ms(1750)));
        assert_eq!(learner.estimate_probing(poll), Some(ms(1750)));
        assert_eq!(learner.samples(), (1, 3));
        // A by-ID read of a deleted peer counts the same way (here: bgp-3 gone by 2.7 s);
        // one of a peer we never deleted, or fetched before our delete, not at all.
        observer.learn_removal_by_id("bgp-3", false, t0 + ms(2600), t0 + ms(2700));
        observer.learn_removal_by_id("bgp-kept", true, t0 + ms(2600), t0 + ms(2700));
        observer.learn_removal_by_id("bgp-2", true, t0 + ms(900), t0 + ms(950));
        assert_eq!(learner.samples(), (1, 4));
        assert_eq!(learner.estimate(poll), Some(ms(1750)));
        // A listing started when bgp-2 and bgp-4 were deleted teaches nothing of them, only
        // of the older deletes (bgp-1 and bgp-3 still there 1 s after theirs).
        observer.learn_removals(
            &state,
            &listing(Scope::Region, 1000, &["bgp-kept", "bgp-1", "bgp-3"], true),
        );
        assert_eq!(learner.samples(), (3, 4));
        assert_eq!(learner.estimate(poll), Some(ms(1750)));
    }
}
