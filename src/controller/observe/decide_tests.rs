//! The observer's decisions at a fixed `now`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cloud::BgpPeerInfo;
use crate::controller::observe::listed::ListedPeers;

const S: Duration = Duration::from_secs(1);

fn peer(id: &str, group: &str) -> BgpPeerInfo {
    BgpPeerInfo {
        bgp_peer_id: id.to_owned(),
        bgp_group_id: group.to_owned(),
        ..Default::default()
    }
}

fn listing(scope: Scope, started_at: Instant, ids: &[(&str, &str)], consistent: bool) -> Listing {
    Listing {
        scope,
        started_at,
        completed_at: started_at + S,
        peers: Arc::new(ListedPeers::from_peers(
            ids.iter().map(|(id, g)| peer(id, g)),
        )),
        consistent,
    }
}

fn settled(group: &str) -> ReadFacts<'_> {
    ReadFacts {
        group,
        max_age: Duration::from_secs(600),
        demand_window: Duration::from_secs(600),
        newer_than_last: false,
        removals_settle: Duration::from_millis(2500),
        creates_settle: Duration::from_millis(3300),
        reads_own_budget: false,
        group_last_delete: None,
        group_awaits_deletes: false,
    }
}

fn in_motion(group: &str) -> ReadFacts<'_> {
    ReadFacts {
        group,
        max_age: Duration::from_secs(5),
        demand_window: Duration::from_secs(30),
        newer_than_last: true,
        removals_settle: Duration::from_millis(2500),
        creates_settle: Duration::from_millis(3300),
        reads_own_budget: false,
        group_last_delete: None,
        group_awaits_deletes: false,
    }
}

/// A region of `groups` groups of `size` peers, every one of whose objects asked at `at`.
fn busy_region(groups: usize, size: usize, at: Instant) -> RegionState {
    let mut state = RegionState::default();
    for g in 0..groups {
        let askers = (0..size).map(|i| (format!("bgp-{g}-{i}"), at)).collect();
        state.groups.insert(
            format!("bgpg-{g}"),
            GroupState {
                size: Some(size),
                askers,
                ..Default::default()
            },
        );
    }
    state
}

#[test]
fn many_small_busy_groups_are_read_with_one_region_listing() {
    let now = Instant::now();
    // 100 groups of 4 (a VBR each), all asking: 100 group listings, or 8 region pages.
    let mut state = busy_region(100, 4, now);
    state.size = Some(400);
    let choice = choose(
        &state,
        &Writes::default(),
        &PeerRecord::default(),
        &settled("bgpg-3"),
        now,
    );
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // A region of 5,000 peers (other owners' included) costs 100 pages: for 3 busy groups
    // their own listings are cheaper.
    let mut state = busy_region(3, 4, now);
    state.size = Some(5000);
    let choice = choose(
        &state,
        &Writes::default(),
        &PeerRecord::default(),
        &settled("bgpg-1"),
        now,
    );
    assert_eq!(choice, Choice::Fetch(Scope::Group("bgpg-1".into())));
}

#[test]
fn a_lone_reader_of_a_large_group_asks_by_id_and_one_of_an_unknown_region_never_walks_it() {
    let now = Instant::now();
    let mut state = RegionState::default();
    state.groups.insert(
        "bgpg-big".into(),
        GroupState {
            size: Some(120),
            askers: [("bgp-a".to_owned(), now)].into(),
            ..Default::default()
        },
    );
    let choice = choose(
        &state,
        &Writes::default(),
        &PeerRecord::default(),
        &settled("bgpg-big"),
        now,
    );
    assert_eq!(choice, Choice::ById, "one call instead of a 3-page listing");
    // Never read before: the region's size is unknown, priced above one reader's one call.
    let mut state = RegionState::default();
    state.groups.insert(
        "bgpg-new".into(),
        GroupState {
            askers: [("bgp-a".to_owned(), now)].into(),
            ..Default::default()
        },
    );
    let choice = choose(
        &state,
        &Writes::default(),
        &PeerRecord::default(),
        &settled("bgpg-new"),
        now,
    );
    assert_eq!(choice, Choice::Fetch(Scope::Group("bgpg-new".into())));
    assert_eq!(state.region_cost(), UNKNOWN_REGION_PAGES);
}

#[test]
fn a_listing_answers_only_reads_after_our_last_change_and_within_their_age() {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(10);
    let mut state = busy_region(100, 4, t0);
    state.size = Some(400);
    state.listing = Some(listing(Scope::Region, t0, &[("bgp-0-0", "bgpg-0")], true));
    let fresh = PeerRecord::default();
    assert_eq!(
        choose(&state, &Writes::default(), &fresh, &settled("bgpg-0"), now),
        Choice::Answer(Scope::Region)
    );
    // Changed by us after the listing started: not answered by it.
    let changed = PeerRecord {
        mutated_at: Some(t0 + S / 2),
        ..Default::default()
    };
    assert_eq!(
        choose(
            &state,
            &Writes::default(),
            &changed,
            &settled("bgpg-0"),
            now
        ),
        Choice::Fetch(Scope::Region)
    );
    // In motion: 9 s old is too old for a 5 s poll; and data no newer than the last answer
    // never answers again.
    let motion = in_motion("bgpg-0");
    assert_eq!(
        choose(&state, &Writes::default(), &fresh, &motion, now),
        Choice::Fetch(Scope::Region)
    );
    let answered = PeerRecord {
        answered_at: Some(t0),
        ..Default::default()
    };
    assert_eq!(
        choose(&state, &Writes::default(), &answered, &motion, t0 + 2 * S),
        Choice::Fetch(Scope::Region)
    );
    // A reader woken by the listing it waited for is answered by it however late it runs.
    let woken = PeerRecord {
        waiting_since: Some(t0 - S),
        ..Default::default()
    };
    assert_eq!(
        choose(
            &state,
            &Writes::default(),
            &woken,
            &motion,
            t0 + Duration::from_secs(60)
        ),
        Choice::Answer(Scope::Region)
    );
    // Of a region and a group listing, the newer answers.
    state.groups.get_mut("bgpg-0").expect("group").listing =
        Some(listing(Scope::Group("bgpg-0".into()), t0 + S, &[], true));
    assert_eq!(
        choose(&state, &Writes::default(), &fresh, &settled("bgpg-0"), now),
        Choice::Answer(Scope::Group("bgpg-0".into()))
    );
}

#[test]
fn readers_wait_for_a_listing_in_flight_that_started_after_their_change() {
    let t0 = Instant::now();
    let mut state = busy_region(100, 4, t0);
    state.size = Some(400);
    state.fetching = Some(t0);
    let before = PeerRecord {
        mutated_at: Some(t0 - S),
        ..Default::default()
    };
    assert_eq!(
        choose(
            &state,
            &Writes::default(),
            &before,
            &settled("bgpg-0"),
            t0 + S
        ),
        Choice::Wait(Scope::Region)
    );
    // Changed after it started: it cannot answer, but a second region listing is not
    // started beside it either (wait, then ask again).
    let after = PeerRecord {
        mutated_at: Some(t0 + S / 2),
        ..Default::default()
    };
    assert_eq!(
        choose(
            &state,
            &Writes::default(),
            &after,
            &settled("bgpg-0"),
            t0 + S
        ),
        Choice::Wait(Scope::Region)
    );
    // A group listing in flight serves its group's readers.
    let mut state = RegionState::default();
    state.groups.insert(
        "bgpg-x".into(),
        GroupState {
            fetching: Some(t0),
            askers: [("bgp-a".to_owned(), t0)].into(),
            ..Default::default()
        },
    );
    assert_eq!(
        choose(
            &state,
            &Writes::default(),
            &PeerRecord::default(),
            &settled("bgpg-x"),
            t0
        ),
        Choice::Wait(Scope::Group("bgpg-x".into()))
    );
}

#[test]
fn while_our_writes_go_on_objects_in_motion_wait_for_enough_of_them_or_a_bounded_time() {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(20);
    let mut state = busy_region(100, 4, now);
    state.size = Some(400); // 8 pages
    let writing = Writes {
        creates_in_flight: 2,
        epoch: 7,
        last_at: Some(now),
        ..Default::default()
    };
    let record = PeerRecord::default();
    assert_eq!(
        choose(&state, &writing, &record, &in_motion("bgpg-0"), now),
        Choice::Defer(None),
        "1 reader of an 8-page listing while creates go on"
    );
    // Settled objects are never held back.
    assert_eq!(
        choose(&state, &writing, &record, &settled("bgpg-0"), now),
        Choice::Fetch(Scope::Region)
    );
    // Enough readers: READERS_PER_PAGE per page.
    state.deferred = (0..READERS_PER_PAGE * 8 - 1)
        .map(|i| (format!("bgp-w{i}"), now))
        .collect();
    assert_eq!(
        choose(&state, &writing, &record, &in_motion("bgpg-0"), now),
        Choice::Fetch(Scope::Region)
    );
    // Or the first has waited MAX_DEFER.
    state.deferred = [("bgp-old".to_owned(), now - MAX_DEFER)].into();
    assert_eq!(
        choose(&state, &writing, &record, &in_motion("bgpg-0"), now),
        Choice::Fetch(Scope::Region)
    );
    // Once the writes stop (none in flight, the last a while ago), at once.
    state.deferred.clear();
    let stopped = Writes {
        creates_in_flight: 0,
        last_at: Some(now - WRITES_SETTLE),
        ..writing
    };
    assert_eq!(
        choose(&state, &stopped, &record, &in_motion("bgpg-0"), now),
        Choice::Fetch(Scope::Region)
    );
    // A cheap choice (a small group's listing or a by-ID read) is never held back.
    let mut small = busy_region(1, 4, now);
    small.size = Some(400);
    assert_eq!(
        choose(&small, &writing, &record, &in_motion("bgpg-0"), now),
        Choice::Fetch(Scope::Group("bgpg-0".into()))
    );
}

#[test]
fn absence_is_trusted_only_for_our_deletion_and_a_consistent_listing_started_after_it() {
    let t0 = Instant::now();
    let deleted = PeerRecord {
        mutated_at: Some(t0),
        deleted_at: Some(t0),
        ..Default::default()
    };
    let after = listing(Scope::Region, t0 + S, &[("bgp-other", "bgpg-0")], true);
    assert_eq!(
        verdict(&after, "bgp-gone", &deleted, &Writes::default(), t0 + 2 * S),
        Verdict::Missing
    );
    // Listed: found, whatever we did.
    let listed = listing(Scope::Region, t0 + S, &[("bgp-gone", "bgpg-0")], false);
    assert!(matches!(
        verdict(&listed, "bgp-gone", &deleted, &Writes::default(), t0 + 2 * S),
        Verdict::Found(p) if &*p.bgp_group_id == "bgpg-0"
    ));
    // A group listing started before (or at) our delete proves nothing: by ID.
    let before = listing(Scope::Group("bgpg-0".into()), t0, &[], true);
    assert_eq!(
        verdict(
            &before,
            "bgp-gone",
            &deleted,
            &Writes::default(),
            t0 + 2 * S
        ),
        Verdict::ConfirmById
    );
    // Never deleted by us: by ID, however consistent the listing.
    assert_eq!(
        verdict(
            &after,
            "bgp-gone",
            &PeerRecord::default(),
            &Writes::default(),
            t0 + 2 * S
        ),
        Verdict::ConfirmById
    );
    // Inconsistent: wait, from the first such listing on, for ABSENCE_PATIENCE; then by ID.
    let racing = listing(Scope::Region, t0 + S, &[], false);
    assert_eq!(
        verdict(
            &racing,
            "bgp-gone",
            &deleted,
            &Writes::default(),
            t0 + 2 * S
        ),
        Verdict::Unsure {
            absent_since: t0 + S
        }
    );
    let waited = PeerRecord {
        absent_since: Some(t0 + S),
        ..deleted
    };
    assert_eq!(
        verdict(
            &racing,
            "bgp-gone",
            &waited,
            &Writes::default(),
            t0 + S + ABSENCE_PATIENCE - S
        ),
        Verdict::Unsure {
            absent_since: t0 + S
        }
    );
    assert_eq!(
        verdict(
            &racing,
            "bgp-gone",
            &waited,
            &Writes::default(),
            t0 + S + ABSENCE_PATIENCE
        ),
        Verdict::ConfirmById
    );
}

#[test]
fn our_new_peer_absent_while_our_writes_go_on_waits_for_the_next_listing_bounded() {
    let t0 = Instant::now();
    let created = PeerRecord {
        mutated_at: Some(t0),
        ..Default::default()
    };
    let listing = listing(Scope::Region, t0 + S, &[], true);
    let writing = Writes {
        creates_in_flight: 3,
        epoch: 9,
        last_at: Some(t0 + 2 * S),
        ..Default::default()
    };
    assert_eq!(
        verdict(&listing, "bgp-new", &created, &writing, t0 + 2 * S),
        Verdict::NotYetListed,
        "no by-ID read for each new peer of a mass create"
    );
    // A region listing answers many readers, and another comes soon: not yet listed, even
    // once our writes stopped.
    assert_eq!(
        verdict(
            &listing,
            "bgp-new",
            &created,
            &Writes::default(),
            t0 + 2 * S
        ),
        Verdict::NotYetListed
    );
    // From a group listing once our writes stop, or after MAX_DEFER, its absence is
    // confirmed by ID (and the plan's visibility grace decides what it means).
    let group = Listing {
        scope: Scope::Group("bgpg-0".into()),
        ..listing.clone()
    };
    assert_eq!(
        verdict(&group, "bgp-new", &created, &Writes::default(), t0 + 2 * S),
        Verdict::ConfirmById
    );
    assert_eq!(
        verdict(&listing, "bgp-new", &created, &writing, t0 + MAX_DEFER),
        Verdict::ConfirmById
    );
    // Never changed by us: by ID.
    assert_eq!(
        verdict(
            &listing,
            "bgp-new",
            &PeerRecord::default(),
            &writing,
            t0 + 2 * S
        ),
        Verdict::ConfirmById
    );
}

#[test]
fn writes_make_listings_inconsistent_and_count_as_ongoing_briefly() {
    let t0 = Instant::now();
    let quiet = Writes {
        epoch: 4,
        last_at: Some(t0),
        ..Default::default()
    };
    assert!(!quiet.overlapped(&quiet));
    let started = Writes {
        creates_in_flight: 1,
        epoch: 5,
        last_at: Some(t0),
        ..Default::default()
    };
    assert!(started.overlapped(&quiet));
    let came_and_went = Writes { epoch: 6, ..quiet };
    assert!(
        came_and_went.overlapped(&quiet),
        "a create began and ended during the walk"
    );
    assert!(quiet.ongoing(t0 + WRITES_SETTLE / 2));
    assert!(!quiet.ongoing(t0 + WRITES_SETTLE));
    assert!(started.ongoing(t0 + Duration::from_secs(3600)));
    assert_eq!(pages(0), 1);
    assert_eq!(pages(50), 1);
    assert_eq!(pages(51), 2);
}

#[test]
fn readers_awaiting_our_deletes_do_not_list_a_paged_region_while_our_removals_go_on() {
    let now = Instant::now();
    // 100 groups of 4 all asking (8 region pages): every one awaits our delete of its peer.
    let mut state = busy_region(100, 4, now);
    state.size = Some(400);
    let deleted = PeerRecord {
        mutated_at: Some(now - 3 * S),
        deleted_at: Some(now - 3 * S),
        ..Default::default()
    };
    let deleting = |last_delete: Instant| Writes {
        last_at: Some(last_delete),
        last_delete_at: Some(last_delete),
        ..Default::default()
    };
    // Our last delete in the region 2 s ago (the learned removal time is 2.5 s): a paged
    // listing now would be inconsistent (removals shift the pages) and confirm nobody,
    // however many want it: deferred, not fetched.
    let during = deleting(now - 2 * S);
    assert!(!during.ongoing(now), "past the write settle time");
    let choice = choose(&state, &during, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Defer(None));
    // Once the removals have had their time: fetched, and it confirms everyone at once.
    let after = deleting(now - 3 * S);
    let choice = choose(&state, &after, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // Bounded: the first reader deferred a minute ago, fetched anyway.
    let mut waited = busy_region(100, 4, now);
    waited.size = Some(400);
    waited.deferred.insert("bgp-0-0".into(), now - MAX_DEFER);
    let choice = choose(&waited, &during, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // A one-page region listing is consistent whatever moves: fetched.
    let mut small = busy_region(10, 4, now);
    small.size = Some(40);
    let choice = choose(&small, &during, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // The reader of the region's last delete is not held either (the learned removal time
    // may have grown since its first look was planned): its look fetches the listing that
    // wakes everyone deferred.
    let last = PeerRecord {
        mutated_at: Some(now - 2 * S),
        deleted_at: Some(now - 2 * S),
        ..Default::default()
    };
    let choice = choose(&state, &during, &last, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // A reader not awaiting a delete (its peer is still to be deleted) is not held by it.
    let before = PeerRecord {
        answered_at: Some(now - 10 * S),
        ..Default::default()
    };
    let choice = choose(&state, &during, &before, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
}

#[test]
fn after_our_last_create_the_region_listing_waits_until_its_peer_can_be_listed() {
    let now = Instant::now();
    let mut state = busy_region(100, 4, now);
    state.size = Some(400); // 8 pages
    let reader = PeerRecord {
        mutated_at: Some(now - 10 * S),
        ..Default::default()
    };
    // Our creates stopped 2 s ago (past the write settle time); a new peer is listed about
    // 3.3 s after its create (learned, with the margin). A listing now would miss the
    // newest peers and a second listing of all 8 pages would follow: due at 3.3 s.
    let stopped = |last_create: Instant| Writes {
        epoch: 9,
        last_at: Some(last_create),
        last_create_at: Some(last_create),
        ..Default::default()
    };
    let writes = stopped(now - 2 * S);
    assert!(!writes.ongoing(now));
    let due = now - 2 * S + Duration::from_millis(3300);
    assert_eq!(
        choose(&state, &writes, &reader, &in_motion("bgpg-3"), now),
        Choice::Defer(Some(due))
    );
    // Once due: fetched.
    let writes = stopped(now - Duration::from_millis(3300));
    assert_eq!(
        choose(&state, &writes, &reader, &in_motion("bgpg-3"), now),
        Choice::Fetch(Scope::Region)
    );
    // Settled readers are never held back, nor a reader awaiting our delete (creates do not
    // hide a removal).
    let writes = stopped(now - 2 * S);
    assert_eq!(
        choose(&state, &writes, &reader, &settled("bgpg-3"), now),
        Choice::Fetch(Scope::Region)
    );
    let deleting = PeerRecord {
        deleted_at: Some(now - 5 * S),
        ..reader
    };
    assert_eq!(
        choose(&state, &writes, &deleting, &in_motion("bgpg-3"), now),
        Choice::Fetch(Scope::Region)
    );
    // Bounded: a reader deferred a minute ago is not held again.
    state.deferred.insert("bgp-0-0".into(), now - MAX_DEFER);
    assert_eq!(
        choose(&state, &writes, &reader, &in_motion("bgpg-3"), now),
        Choice::Fetch(Scope::Region)
    );
    // While the creates go on, the deferral rule of ongoing writes applies instead (enough
    // readers fetch it: the mid-create listings are not pushed back).
    state.deferred = (0..READERS_PER_PAGE * 8)
        .map(|i| (format!("bgp-w{i}"), now))
        .collect();
    let ongoing = Writes {
        creates_in_flight: 3,
        ..stopped(now)
    };
    assert_eq!(
        choose(&state, &ongoing, &reader, &in_motion("bgpg-3"), now),
        Choice::Fetch(Scope::Region)
    );
}

#[test]
fn a_pause_between_creates_does_not_list_a_large_region_while_objects_still_await_theirs() {
    let now = Instant::now();
    // 40 pages; 30 objects in motion want a listing (fewer than READERS_PER_PAGE per page). Our last create
    // in the region came 3 s ago (past the write settle time and the creates' settle time):
    // the creates paused (the account's budget went to its other region).
    let mut state = busy_region(300, 4, now);
    state.size = Some(2000);
    state.deferred = (0..30)
        .map(|i| (format!("bgp-0-{i}"), now - 5 * S))
        .collect();
    let created = PeerRecord {
        mutated_at: Some(now - 8 * S),
        ..Default::default()
    };
    let paused = Writes {
        last_at: Some(now - 4 * S),
        last_create_at: Some(now - 4 * S),
        awaiting_creates: 900,
        ..Default::default()
    };
    assert!(
        paused.ongoing(now),
        "objects still to create keep the writes going"
    );
    let choice = choose(&state, &paused, &created, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Defer(None));
    // Once no object awaits its create, the readers are answered at once.
    let done = Writes {
        awaiting_creates: 0,
        ..paused
    };
    assert!(!done.ongoing(now));
    let choice = choose(&state, &done, &created, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // And the bound holds: the first reader deferred a minute ago is answered anyway.
    state.deferred.insert("bgp-0-0".to_owned(), now - MAX_DEFER);
    let choice = choose(&state, &paused, &created, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
}

#[test]
fn a_pause_between_deletes_does_not_list_a_paged_region_while_objects_still_await_theirs() {
    let now = Instant::now();
    // 100 groups of 4 all asking (8 region pages), every reader awaiting our delete of its
    // peer. Our last accepted delete in the region was 4 s ago (past the learned removal time
    // of 2.5 s): the deletes paused, while 300 objects still await theirs.
    let mut state = busy_region(100, 4, now);
    state.size = Some(400);
    let deleted = PeerRecord {
        mutated_at: Some(now - 6 * S),
        deleted_at: Some(now - 6 * S),
        ..Default::default()
    };
    let paused = Writes {
        last_at: Some(now - 4 * S),
        last_delete_at: Some(now - 4 * S),
        awaiting_deletes: 300,
        ..Default::default()
    };
    let choice = choose(&state, &paused, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Defer(None));
    // None left to send: the listing is fetched (the removals have had their time).
    let done = Writes {
        awaiting_deletes: 0,
        ..paused
    };
    let choice = choose(&state, &done, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
    // Bounded by MAX_DEFER.
    state.deferred.insert("bgp-0-0".into(), now - MAX_DEFER);
    let choice = choose(&state, &paused, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Fetch(Scope::Region));
}

#[test]
fn with_a_read_budget_of_their_own_readers_awaiting_our_deletes_are_confirmed_by_their_group() {
    let now = Instant::now();
    // 100 groups of 4 all asking (8 region pages); our deletes go on in the region, so a
    // region listing would be inconsistent. The reader's peer was deleted 3 s ago, the last
    // of its group's 2 s ago; removals take 2.5 s.
    let mut state = busy_region(100, 4, now);
    state.size = Some(400);
    let deleted = PeerRecord {
        mutated_at: Some(now - 3 * S),
        deleted_at: Some(now - 3 * S),
        ..Default::default()
    };
    let during = Writes {
        last_at: Some(now - S / 10),
        last_delete_at: Some(now - S / 10),
        awaiting_deletes: 200,
        ..Default::default()
    };
    let own_budget = |group_last_delete: Option<Instant>| ReadFacts {
        reads_own_budget: true,
        group_last_delete,
        ..in_motion("bgpg-3")
    };
    // Objects of the group still await their deletes: the reader waits for the group's
    // listing after the last of them (woken by it), not one listing per look.
    let waiting = ReadFacts {
        group_awaits_deletes: true,
        ..own_budget(Some(now - 3 * S))
    };
    let choice = choose(&state, &during, &deleted, &waiting, now);
    assert_eq!(choice, Choice::Wait(Scope::Group("bgpg-3".into())));
    // The group's last delete is too recent for its removal: looked again when it is due.
    let choice = choose(
        &state,
        &during,
        &deleted,
        &own_budget(Some(now - 2 * S)),
        now,
    );
    assert_eq!(
        choice,
        Choice::Defer(Some(now - 2 * S + Duration::from_millis(2500)))
    );
    // Due: one listing of the group (one page: consistent whatever moves) answers it all.
    let choice = choose(
        &state,
        &during,
        &deleted,
        &own_budget(Some(now - 3 * S)),
        now,
    );
    assert_eq!(choice, Choice::Fetch(Scope::Group("bgpg-3".into())));
    // One in flight is waited for.
    state.groups.get_mut("bgpg-3").expect("group").fetching = Some(now - 4 * S);
    let choice = choose(
        &state,
        &during,
        &deleted,
        &own_budget(Some(now - 3 * S)),
        now,
    );
    assert_eq!(choice, Choice::Wait(Scope::Group("bgpg-3".into())));
    state.groups.get_mut("bgpg-3").expect("group").fetching = None;
    // Other groups' listings take the region's fetches: looked again shortly, no slot held
    // in the budget's queue.
    state.group_fetches = GROUP_FETCHES;
    let choice = choose(
        &state,
        &during,
        &deleted,
        &own_budget(Some(now - 3 * S)),
        now,
    );
    assert_eq!(choice, Choice::Defer(Some(now + GROUP_FETCH_RETRY)));
    state.group_fetches = 0;
    // One shared quota: a listing per group would slow our deletes; the region listing is
    // waited for instead.
    let choice = choose(&state, &during, &deleted, &in_motion("bgpg-3"), now);
    assert_eq!(choice, Choice::Defer(None));
    // A group of more than a page is not listed for it either.
    let mut large = busy_region(2, 60, now);
    large.size = Some(120);
    let reader = ReadFacts {
        reads_own_budget: true,
        group_last_delete: Some(now - 3 * S),
        ..in_motion("bgpg-1")
    };
    let choice = choose(&large, &during, &deleted, &reader, now);
    assert_ne!(choice, Choice::Fetch(Scope::Group("bgpg-1".into())));
    // Once the region's removals have had their time, the region listing answers everyone.
    let settled = Writes {
        last_at: Some(now - 3 * S),
        last_delete_at: Some(now - 3 * S),
        ..Default::default()
    };
    let choice = choose(
        &state,
        &settled,
        &deleted,
        &own_budget(Some(now - 3 * S)),
        now,
    );
    assert_eq!(choice, Choice::Fetch(Scope::Region));
}
