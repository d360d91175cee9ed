//! The observer's decisions, as pure functions of what it remembers and a given `now`.
//!
//! [`choose`] answers "list, by ID, wait, or answer" for one read; [`verdict`] says what a
//! listing proves about one peer. The I/O around them (locks, calls, wake-ups) is in the
//! parent module.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;

use crate::api::BgpPeer;

use super::listed::{ListedPeer, ListedPeers};

/// Peers per DescribeBgpPeers page (the API's maximum).
pub const PAGE_SIZE: usize = 50;

/// How long a peer we deleted may stay unconfirmed (absent only from inconsistent listings)
/// before it is confirmed by ID. During a mass deletion every listing is inconsistent until
/// the removals stop, and the region then shrinks to a consistent listing: waiting for it
/// costs nothing, while confirming each peer by ID would cost a call per peer. The bound
/// only matters for a region that never stops changing.
pub const ABSENCE_PATIENCE: Duration = Duration::from_secs(300);

/// A region whose size is not known yet (never listed) is priced at this many pages, or at
/// the pages of the peers its known groups hold if more: more than a lone reader's one call,
/// so a single object never walks a large region to learn its size, and as cheap as two
/// readers of small groups, so a busy region is listed (and measured) at once.
pub const UNKNOWN_REGION_PAGES: usize = 2;

/// While our own writes go on in a region, a region listing for objects in motion waits
/// until this many objects per page of it want one (each page then answers at least this
/// many reads) ...
pub const READERS_PER_PAGE: usize = 20;

/// ... or until the first of them has waited this long.
pub const MAX_DEFER: Duration = Duration::from_secs(60);

/// Our writes in a region count as ongoing for this long after the last one.
pub const WRITES_SETTLE: Duration = Duration::from_secs(1);

/// Pages of a listing of `size` peers (at least one: an empty listing is one call).
pub fn pages(size: usize) -> usize {
    size.div_ceil(PAGE_SIZE).max(1)
}

/// What a listing covers: the whole region (RegionId alone) or one group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `DescribeBgpPeers` with `RegionId` only: every peer of the account in the region,
    /// other owners' included.
    Region,
    /// `DescribeBgpPeers` with `BgpGroupId`.
    Group(String),
}

/// One paged listing.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Region or group.
    pub scope: Scope,
    /// When the first page was asked for: the listing shows no change made before this.
    pub started_at: Instant,
    /// When the last page came back: its age.
    pub completed_at: Instant,
    /// The peers listed, by ID (compact: see [`ListedPeer`]).
    pub peers: Arc<ListedPeers>,
    /// No peer can have been skipped by the paging (a consistent walk, and no create of ours
    /// in the scope started or ended during it).
    pub consistent: bool,
}

/// Everything the observer remembers about one peer (one record, not one map per fact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerRecord {
    /// When the operator last changed the peer (create, modify, delete).
    pub mutated_at: Option<Instant>,
    /// When the data last given for the peer was fetched (the start of its listing or
    /// call) ...
    pub answered_at: Option<Instant>,
    /// ... and when that fetch ended: the peer's state was read between the two.
    pub answered_until: Option<Instant>,
    /// When the cloud accepted our DeleteBgpPeer for it.
    pub deleted_at: Option<Instant>,
    /// Since when the deleted peer has been absent from inconsistent listings only.
    pub absent_since: Option<Instant>,
    /// Since when its object has been waiting for a listing: the first listing that lands
    /// after that answers it, however late its woken reconcile runs.
    pub waiting_since: Option<Instant>,
}

impl PeerRecord {
    /// Only data fetched after this may answer for the peer: after our last change, and for
    /// an object waiting on a transition also after the data of its previous answer.
    pub fn not_before(&self, newer_than_last: bool) -> Option<Instant> {
        if newer_than_last {
            self.mutated_at.max(self.answered_at)
        } else {
            self.mutated_at
        }
    }
}

/// One read as the decision sees it.
#[derive(Clone, Copy, Debug)]
pub struct ReadFacts<'a> {
    /// The peer's group.
    pub group: &'a str,
    /// Oldest acceptable listing.
    pub max_age: Duration,
    /// Window over which demand is counted.
    pub demand_window: Duration,
    /// The object waits on a transition: each look must see newer data.
    pub newer_than_last: bool,
    /// How long after our last accepted delete in the region its removals may still go on
    /// (learned): until then a paged listing of the region is likely inconsistent.
    pub removals_settle: Duration,
    /// How long after its create is accepted a new peer is likely listed Available (the
    /// learned Pending time, read-after-write lag included, plus a margin): a region listing
    /// taken sooner after our last create there misses the newest peers.
    pub creates_settle: Duration,
    /// Reads have a budget of their own (per-operation quotas): a listing call takes nothing
    /// from our creates and deletes.
    pub reads_own_budget: bool,
    /// When the cloud last accepted a delete of ours among the peers of the reader's group
    /// (known for one-page groups).
    pub group_last_delete: Option<Instant>,
    /// Objects of the reader's group still await their deletes (see [`Awaiting`]).
    pub group_awaits_deletes: bool,
}

/// One group of a region.
#[derive(Debug, Default)]
pub struct GroupState {
    /// The last listing of the group.
    pub listing: Option<Listing>,
    /// Peers in the group at the last listing of it or of the region.
    pub size: Option<usize>,
    /// When a listing of the group in flight was started.
    pub fetching: Option<Instant>,
    /// Objects to wake when it lands.
    pub waiters: Vec<ObjectRef<BgpPeer>>,
    /// When each object of the group last asked for a read: distinct objects, so that a
    /// slow reconcile rate does not make a busy group look idle.
    pub askers: HashMap<String, Instant>,
}

/// Our writes in a region, for the consistency of listings and the deferral rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Creates in flight.
    pub creates_in_flight: usize,
    /// The write log's epoch at the last start or end of a create: it grows with each, and
    /// is above every epoch the log gave out before.
    pub epoch: u64,
    /// When our last create or delete in the region started or ended.
    pub last_at: Option<Instant>,
    /// When the cloud last accepted a delete of ours in the region: its removal comes later
    /// (see [`ReadFacts::removals_settle`]).
    pub last_delete_at: Option<Instant>,
    /// When our last create in the region ended (its peer is listed later: see
    /// [`ReadFacts::creates_settle`]).
    pub last_create_at: Option<Instant>,
    /// Objects of the region that will create a peer and have not started (queued for a
    /// reconcile slot or the account's budget): more creates are coming, however long ago
    /// the last one was.
    pub awaiting_creates: usize,
    /// Objects of the region whose peer we will delete and have not asked the cloud to yet:
    /// more removals are coming.
    pub awaiting_deletes: usize,
}

/// Objects of one region that will write and have not started (counted from the cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Awaiting {
    /// Objects still to create their peer.
    pub creates: usize,
    /// Objects whose peer is still to be deleted ...
    pub deletes: usize,
    /// ... and their groups.
    pub delete_groups: std::collections::HashSet<String>,
}

impl Writes {
    /// Whether writes are going on at `now`: one in flight, one moments ago, or creates still
    /// to come. Creates of a fleet pause for seconds in one region while the account's
    /// budget or the reconcile slots serve another; a pause is not the end (at N = 5,000
    /// each pause listed a 36-page region for a few dozen readers).
    pub fn ongoing(&self, now: Instant) -> bool {
        self.creates_in_flight > 0
            || self.awaiting_creates > 0
            || self
                .last_at
                .is_some_and(|t| now.saturating_duration_since(t) < WRITES_SETTLE)
    }

    /// Our writes in two buckets of a region together (an account's and the unknown
    /// account's): counts add up, times and epochs are the latest (a create that starts or
    /// ends in either takes an epoch above both, so the merged epoch changes with it; a
    /// pruned bucket can only lower it).
    pub fn merge(&self, other: &Writes) -> Writes {
        Writes {
            creates_in_flight: self.creates_in_flight + other.creates_in_flight,
            epoch: self.epoch.max(other.epoch),
            last_at: self.last_at.max(other.last_at),
            last_delete_at: self.last_delete_at.max(other.last_delete_at),
            last_create_at: self.last_create_at.max(other.last_create_at),
            awaiting_creates: self.awaiting_creates + other.awaiting_creates,
            awaiting_deletes: self.awaiting_deletes + other.awaiting_deletes,
        }
    }

    /// Whether a listing that saw `before` when it started and `self` when it ended can have
    /// been overlapped by a create of ours (an addition can hide a removal from the paging).
    pub fn overlapped(&self, before: &Writes) -> bool {
        before.creates_in_flight > 0 || self.creates_in_flight > 0 || before.epoch != self.epoch
    }
}

/// One region of one account: its listings, its groups, the demand for reads in it.
#[derive(Debug, Default)]
pub struct RegionState {
    /// The last region-wide listing.
    pub listing: Option<Listing>,
    /// Peers in the region (all owners) at the last region listing.
    pub size: Option<usize>,
    /// When a region listing in flight was started.
    pub fetching: Option<Instant>,
    /// Group listings in flight in the region.
    pub group_fetches: usize,
    /// Objects to wake when a region listing lands.
    pub waiters: Vec<ObjectRef<BgpPeer>>,
    /// Objects in motion held back for a region listing (see [`READERS_PER_PAGE`]), and
    /// since when.
    pub deferred: HashMap<String, Instant>,
    /// The groups read in.
    pub groups: HashMap<String, GroupState>,
    /// Peers per group at the last region listing (for groups read later).
    pub group_sizes: HashMap<String, usize>,
    /// The longest demand window of the reads in the region so far: a group nobody asked
    /// about for longer is forgotten when a region listing lands (see
    /// [`RegionState::forget_idle_groups`]).
    pub demand_horizon: Duration,
}

impl RegionState {
    /// Forgets the groups that a region listing started at `listed_at` and landed at `now`
    /// supersedes and nobody reads: no listing of the group in flight, nobody waiting for
    /// one, no group listing newer than this one, and no asker within the demand horizon.
    /// Without this a region keeps a record of every group it ever read (its askers and its
    /// last listing) after the groups and their objects are gone. A group read again is
    /// recreated with its size from the region listing, and what a forgotten group held
    /// counted for nothing any more: its askers were outside every demand window, its
    /// listing older than the region's.
    pub fn forget_idle_groups(&mut self, listed_at: Instant, now: Instant) {
        let horizon = self.demand_horizon;
        self.groups.retain(|_, g| {
            g.fetching.is_some()
                || !g.waiters.is_empty()
                || g.listing.as_ref().is_some_and(|l| l.started_at > listed_at)
                || g.askers
                    .values()
                    .any(|t| now.saturating_duration_since(*t) <= horizon)
        });
    }

    /// Calls of one region-wide listing: known from the last one, else estimated (see
    /// [`UNKNOWN_REGION_PAGES`]).
    pub fn region_cost(&self) -> usize {
        self.size.map_or_else(
            || {
                let known: usize = self.groups.values().filter_map(|g| g.size).sum();
                pages(known).max(UNKNOWN_REGION_PAGES)
            },
            pages,
        )
    }

    /// Calls of answering the region's recent readers without a region listing: per group
    /// with readers, one listing of it or one by-ID read per reader, whichever is fewer.
    /// Counting stops once `enough` is reached (only the comparison matters).
    pub fn groups_cost(&self, now: Instant, window: Duration, enough: usize) -> usize {
        let mut cost = 0;
        for group in self.groups.values() {
            let readers = recent(&group.askers, now, window);
            cost += readers.min(pages(group.size.unwrap_or(0)));
            if cost >= enough {
                break;
            }
        }
        cost
    }
}

/// Entries of `times` no older than `window` at `now`.
fn recent(times: &HashMap<String, Instant>, now: Instant, window: Duration) -> usize {
    times
        .values()
        .filter(|t| now.saturating_duration_since(**t) <= window)
        .count()
}

/// What to do for one read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A listing held answers it.
    Answer(Scope),
    /// A listing of this scope is in flight: wait for it (woken when it lands).
    Wait(Scope),
    /// A region listing is worth it but not yet: our writes go on and few objects want it
    /// (`None`: look again at the object's pace), or our last create in the region is too
    /// recent for a listing to show its peer (`Some`: look again then, when the one listing
    /// that answers everyone is due). Woken if a region listing lands first.
    Defer(Option<Instant>),
    /// One by-ID read is the cheapest.
    ById,
    /// Fetch a listing of this scope.
    Fetch(Scope),
}

/// The "list, by ID, wait, answer" decision for a read of a peer with `record`, in a region
/// with `state` (the reader already counted among its group's askers) and our `writes` in
/// it, at `now`.
pub fn choose(
    state: &RegionState,
    writes: &Writes,
    record: &PeerRecord,
    read: &ReadFacts<'_>,
    now: Instant,
) -> Choice {
    let not_before = record.not_before(read.newer_than_last);
    let asked_at = record.waiting_since.map_or(now, |t| t.min(now));
    let after_change = |started: Instant| not_before.is_none_or(|t| started > t);
    let usable = |l: &Listing| {
        after_change(l.started_at)
            && (l.completed_at >= asked_at
                || now.saturating_duration_since(l.completed_at) <= read.max_age)
    };
    let group = state.groups.get(read.group);
    let held = [
        state.listing.as_ref(),
        group.and_then(|g| g.listing.as_ref()),
    ];
    if let Some(best) = held
        .into_iter()
        .flatten()
        .filter(|l| usable(l))
        .max_by_key(|l| l.started_at)
    {
        return Choice::Answer(best.scope.clone());
    }
    let group_fetching = group.and_then(|g| g.fetching);
    // A listing in flight that started after our last change answers this read.
    if state.fetching.is_some_and(after_change) {
        return Choice::Wait(Scope::Region);
    }
    if group_fetching.is_some_and(after_change) {
        return Choice::Wait(Scope::Group(read.group.to_owned()));
    }
    let region_cost = state.region_cost();
    if region_cost <= state.groups_cost(now, read.demand_window, region_cost) {
        // One region listing at a time: a reader whose change came after the one in flight
        // started waits for it and then asks again.
        if state.fetching.is_some() {
            return Choice::Wait(Scope::Region);
        }
        if read.newer_than_last {
            let removals = await_removals(state, writes, record, read, region_cost, asked_at, now);
            if removals && let Some(choice) = confirm_by_group(state, record, read, now) {
                return choice;
            }
            if removals || defer(state, writes, region_cost, asked_at, now) {
                return Choice::Defer(None);
            }
            if let Some(due) = await_creates(state, writes, record, read, asked_at, now) {
                return Choice::Defer(Some(due));
            }
        }
        return Choice::Fetch(Scope::Region);
    }
    let readers = group.map_or(1, |g| recent(&g.askers, now, read.demand_window));
    let size = group
        .and_then(|g| g.size)
        .or_else(|| state.group_sizes.get(read.group).copied())
        .unwrap_or(0);
    if pages(size) > readers {
        Choice::ById
    } else if group_fetching.is_some() {
        Choice::Wait(Scope::Group(read.group.to_owned()))
    } else {
        Choice::Fetch(Scope::Group(read.group.to_owned()))
    }
}

/// Whether a region listing for an object in motion that asked at `asked_at` waits: while
/// our own writes in the region go on, more objects will soon want the same listing, so it
/// is fetched once [`READERS_PER_PAGE`] per page want it or the first has waited
/// [`MAX_DEFER`]; once the writes stop, at once.
fn defer(
    state: &RegionState,
    writes: &Writes,
    region_cost: usize,
    asked_at: Instant,
    now: Instant,
) -> bool {
    if !writes.ongoing(now) {
        return false;
    }
    // This reader included (it may not be in `deferred` yet).
    let waiting = state.deferred.len() + 1;
    waiting < READERS_PER_PAGE * region_cost
        && now.saturating_duration_since(first_deferred(state, asked_at)) < MAX_DEFER
}

/// When the first reader deferred in the region (this one included) asked.
fn first_deferred(state: &RegionState, asked_at: Instant) -> Instant {
    state
        .deferred
        .values()
        .copied()
        .min()
        .map_or(asked_at, |t| t.min(asked_at))
}

/// Whether a region listing for a reader awaiting the confirmation of our delete waits: until
/// our removals in the region have had their time (`removals_settle` after our last accepted
/// delete there), a paged listing is likely inconsistent (each removal shifts the pages), and
/// absence from it confirms nobody, however many want it; so does a region where objects
/// still await their deletes (a pause between our deletes is not their end). Bounded by
/// [`MAX_DEFER`] like any
/// deferral; a one-page listing is consistent whatever moves, and is not held; nor is the
/// reader of the region's last delete.
fn await_removals(
    state: &RegionState,
    writes: &Writes,
    record: &PeerRecord,
    read: &ReadFacts<'_>,
    region_cost: usize,
    asked_at: Instant,
    now: Instant,
) -> bool {
    // The reader whose delete was the region's last is never held by it: its first look,
    // at the learned removal time, is the one that fetches the listing that wakes the rest.
    record
        .deleted_at
        .is_some_and(|t| writes.last_delete_at != Some(t))
        && region_cost > 1
        && (writes.awaiting_deletes > 0
            || writes
                .last_delete_at
                .is_some_and(|t| now.saturating_duration_since(t) < read.removals_settle))
        && now.saturating_duration_since(first_deferred(state, asked_at)) < MAX_DEFER
}

/// How a reader awaiting our delete is answered while a region listing would be inconsistent
/// (our removals there go on), if reads have a budget of their own: a one-page group listing
/// is consistent whatever moves, and answers every peer of the group we deleted before it
/// started. Due once no object of the group awaits its delete and the group's removals have
/// had their time (`removals_settle` after our last delete in it), so that one listing
/// answers the whole group (a reader that comes sooner waits for that listing, woken by it);
/// a listing in flight is waited for. Without a budget of their own (one shared quota), a listing per group would
/// slow our deletes, and the reader waits for the region listing instead (`None`). At
/// N = 5,000 no deleted peer was confirmed for 100 s of a mass delete, and 4,300 finalizers
/// were then released in one burst the apiserver took 28 s to absorb; listing a group at
/// each of its readers' first looks instead (before its last delete) cost 3.4 listings per
/// group and slowed the deletes.
fn confirm_by_group(
    state: &RegionState,
    record: &PeerRecord,
    read: &ReadFacts<'_>,
    now: Instant,
) -> Option<Choice> {
    let deleted = record.deleted_at?;
    let group = state.groups.get(read.group)?;
    if !read.reads_own_budget || pages(group.size.unwrap_or(0)) > 1 {
        return None;
    }
    let due = read.group_last_delete.map_or(deleted, |t| t.max(deleted)) + read.removals_settle;
    Some(if read.group_awaits_deletes {
        // The group's listing comes after its last delete: woken by it.
        Choice::Wait(Scope::Group(read.group.to_owned()))
    } else if due > now {
        Choice::Defer(Some(due))
    } else if group.fetching.is_some() {
        Choice::Wait(Scope::Group(read.group.to_owned()))
    } else if state.group_fetches >= GROUP_FETCHES {
        // A fetcher holds its reconcile slot while its call waits for the budget: many at
        // once (groups come due together at the end of a mass delete) would keep the last
        // deletes from a slot. Looked again shortly.
        Choice::Defer(Some(now + GROUP_FETCH_RETRY))
    } else {
        Choice::Fetch(Scope::Group(read.group.to_owned()))
    })
}

/// Group listings in flight at once per region for [`confirm_by_group`] ...
pub const GROUP_FETCHES: usize = 2;

/// ... and how soon a reader that found them all taken looks again.
pub const GROUP_FETCH_RETRY: Duration = Duration::from_millis(500);

/// When a region listing for an object in motion is due, if not now: once our creates in the
/// region have stopped, a listing taken before the last one's peer can be listed Available
/// (`creates_settle` after it) answers the older objects but misses the newest, which then
/// need a second listing of the whole region a poll tick later. Held until then, one listing
/// answers all of them, as soon as the last can be seen. Bounded by [`MAX_DEFER`]; a reader
/// awaiting our delete is not held by creates.
fn await_creates(
    state: &RegionState,
    writes: &Writes,
    record: &PeerRecord,
    read: &ReadFacts<'_>,
    asked_at: Instant,
    now: Instant,
) -> Option<Instant> {
    if writes.ongoing(now) || record.deleted_at.is_some() {
        return None;
    }
    let due = writes.last_create_at? + read.creates_settle;
    (due > now && now.saturating_duration_since(first_deferred(state, asked_at)) < MAX_DEFER)
        .then_some(due)
}

/// What a listing says about one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Listed.
    Found(&'a ListedPeer),
    /// Gone: we deleted it and a consistent listing started after that does not show it.
    Missing,
    /// Not listed yet: we created or changed it moments ago while our writes in the region
    /// go on (read-after-write lag, or an addition of ours shifting the paging). The next
    /// listing will do; a by-ID read now would likely not see it either.
    NotYetListed,
    /// We deleted it, but the listing is inconsistent: wait for a consistent one (since
    /// `absent_since`).
    Unsure {
        /// Since when it has been absent from inconsistent listings only.
        absent_since: Instant,
    },
    /// Absent, and the listing cannot prove it gone: ask by ID.
    ConfirmById,
}

/// What `listing` proves about peer `id` with `record`, at `now`, with our `writes` in the
/// region: found; absent, trusted only for a peer we deleted before the listing started and
/// only from a consistent listing; absent moments after our own create or change, while our
/// writes go on or from a region listing, not yet listed (bounded by [`MAX_DEFER`]);
/// otherwise a by-ID read decides
/// (a false absence would create a second peer or release a finalizer over a live one).
pub fn verdict<'a>(
    listing: &'a Listing,
    id: &str,
    record: &PeerRecord,
    writes: &Writes,
    now: Instant,
) -> Verdict<'a> {
    if let Some(peer) = listing.peers.get(id) {
        return Verdict::Found(peer);
    }
    let deleted_by_us = record.deleted_at.is_some_and(|t| listing.started_at > t);
    if !deleted_by_us {
        let recent_change = record
            .mutated_at
            .is_some_and(|t| now.saturating_duration_since(t) < MAX_DEFER);
        // A region listing was the cheapest read because many objects want one: the next
        // will come soon, and a by-ID read per new peer (the last seconds of a mass create,
        // hidden by read-after-write lag) would cost more than it. A group listing (few
        // readers) is followed by the by-ID read, whose answer the plan's visibility grace
        // reads.
        if recent_change && (writes.ongoing(now) || listing.scope == Scope::Region) {
            return Verdict::NotYetListed;
        }
        return Verdict::ConfirmById;
    }
    if listing.consistent {
        return Verdict::Missing;
    }
    let absent_since = record.absent_since.unwrap_or(listing.started_at);
    if now.saturating_duration_since(absent_since) < ABSENCE_PATIENCE {
        Verdict::Unsure { absent_since }
    } else {
        Verdict::ConfirmById
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
