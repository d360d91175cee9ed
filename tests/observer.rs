//! The coalescing observer against the emulator: how many DescribeBgpPeers calls it makes.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::cloud::{CreateBgpPeerRequest, Credentials};
use alicloud_bgp_operator::controller::observe::{Lookup, PeerObserver, ReadRequest};
use alicloud_bgp_operator::emulator::config::EmulatorConfig;
use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::{EmulatorHandle, server};

use common::operator::{GROUP, REGION, test_emulator_config, vpc_client};

/// The account the emulator's demo key belongs to (any fixed value: the observer keys our
/// writes by it).
const ACCOUNT: &str = "1234567890123456";

/// An emulator whose VBRs take 1,000 peers, adjusted by `tune`. These tests are about paged
/// listings of one group (> 50 peers), which the documented 8 peers per VBR cannot hold: the
/// quota is lifted here on purpose (issue 18 redoes the fleet topology).
async fn emulator(tune: impl FnOnce(&mut EmulatorConfig)) -> EmulatorHandle {
    alicloud_bgp_operator::install_crypto_provider();
    let mut cfg = test_emulator_config();
    for vbr in &mut cfg.vbrs {
        vbr.peer_quota = 1000;
    }
    // These tests count the calls of the observer's paging and batching on peers made just
    // before; read-after-write lag (tests/safety.rs) would only hide them.
    cfg.visibility_lag = Duration::ZERO;
    tune(&mut cfg);
    server::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator")
}

fn read(id: &str, max_age: Duration) -> ReadRequest<'_> {
    ReadRequest {
        account: ACCOUNT,
        region: REGION,
        group: GROUP,
        id,
        max_age,
        demand_window: Duration::from_secs(60),
        newer_than_last: false,
        removals_settle: Duration::ZERO,
        creates_settle: Duration::ZERO,
        waiter: None,
    }
}

/// A read whose demand window holds only itself.
fn lone_read(id: &str, max_age: Duration) -> ReadRequest<'_> {
    ReadRequest {
        demand_window: Duration::ZERO,
        ..read(id, max_age)
    }
}

#[tokio::test]
async fn one_listing_serves_a_whole_group_and_own_writes_are_always_seen() {
    let emu = emulator(|_| {}).await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let ids = make_peers(&vpc, &creds, 60, 20).await;
    let observer = PeerObserver::default();
    emu.reset_counters();

    // 60 concurrent readers of one group: one paged listing (2 pages of 50), shared.
    let long = Duration::from_secs(600);
    let lookups = ids
        .iter()
        .map(|id| observer.lookup(&vpc, &creds, read(id, long)));
    let results = futures::future::join_all(lookups).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Lookup::Found(_)))));
    assert_eq!(
        emu.counters().calls("DescribeBgpPeers"),
        2,
        "one listing, two pages"
    );

    // Within max_age, nothing is fetched again.
    observer
        .lookup(&vpc, &creds, read(&ids[0], long))
        .await
        .expect("lookup");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), 2);

    // After our own change to a peer, the old listing no longer answers for it. With one
    // reader asking and a two-page group, a by-ID read (one call) is cheaper than a listing.
    observer.note_mutation(&ids[1]);
    observer
        .lookup(&vpc, &creds, lone_read(&ids[1], long))
        .await
        .expect("lookup");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), 3);
    // ... while the others still use the shared listing.
    observer
        .lookup(&vpc, &creds, read(&ids[2], long))
        .await
        .expect("lookup");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), 3);

    // With many recent readers, the same situation fetches one shared listing instead.
    observer.note_mutation(&ids[4]);
    observer
        .lookup(&vpc, &creds, read(&ids[4], long))
        .await
        .expect("lookup");
    assert_eq!(
        emu.counters().calls("DescribeBgpPeers"),
        5,
        "a two-page listing"
    );

    // An object waiting on a transition never gets the same data twice. Its first look is
    // served by the shared listing newer than its previous answer; each later look needs a
    // newer read (here by ID, the cheaper choice for one reader).
    let waiting = ReadRequest {
        newer_than_last: true,
        ..lone_read(&ids[5], long)
    };
    let before = emu.counters().calls("DescribeBgpPeers");
    observer
        .lookup(&vpc, &creds, waiting)
        .await
        .expect("lookup");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), before);
    observer
        .lookup(&vpc, &creds, waiting)
        .await
        .expect("lookup");
    observer
        .lookup(&vpc, &creds, waiting)
        .await
        .expect("lookup");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), before + 2);

    // A vanished peer is reported Missing once a listing fetched after its deletion is used.
    assert!(emu.delete_peer_out_of_band(&ids[3]));
    match observer
        .lookup(&vpc, &creds, read(&ids[3], Duration::ZERO))
        .await
    {
        Ok(Lookup::Missing) => {}
        other => panic!("expected Missing, got {other:?}"),
    }
    emu.shutdown().await;
}

/// Offset paging skips peers when others are deleted between two pages; the observer must
/// never report such a peer as missing (that would release a finalizer over a live peer, or
/// create a duplicate).
#[tokio::test]
async fn peers_skipped_by_a_racing_paged_listing_are_not_reported_missing() {
    use alicloud_bgp_operator::emulator::faults::Fault;

    let emu = emulator(|_| {}).await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let ids = make_peers(&vpc, &creds, 150, 21).await;
    // Each page of the listing takes 300 ms; the first 50 peers vanish while page 2 is on
    // its way, so the peers that were on page 2 shift onto page 1 and are never listed.
    emu.inject_fault(Fault::delay("DescribeBgpPeers", Duration::from_millis(300)).times(3));
    let observer = PeerObserver::default();
    let listing = observer.lookup(&vpc, &creds, read(&ids[149], Duration::from_secs(600)));
    let deleter = async {
        tokio::time::sleep(Duration::from_millis(450)).await;
        for id in &ids[..50] {
            assert!(emu.delete_peer_out_of_band(id));
        }
    };
    let (first, ()) = tokio::join!(listing, deleter);
    assert!(matches!(first, Ok(Lookup::Found(_))), "{first:?}");
    emu.clear_faults();
    for id in &ids[50..] {
        match observer
            .lookup(&vpc, &creds, read(id, Duration::from_secs(600)))
            .await
        {
            Ok(Lookup::Found(_)) => {}
            other => panic!("{id} exists but the observer said {other:?}"),
        }
    }
    // A listing fetched after the deletion reports the deleted ones missing (confirmed).
    for id in &ids[..50] {
        let lookup = observer
            .lookup(&vpc, &creds, read(id, Duration::ZERO))
            .await;
        assert!(matches!(lookup, Ok(Lookup::Missing)), "{id}: {lookup:?}");
    }
    emu.shutdown().await;
}

/// Creates `n` peers in the test group and returns their IDs.
async fn make_peers(
    vpc: &alicloud_bgp_operator::cloud::VpcClient,
    creds: &Credentials,
    n: usize,
    net: u8,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let resp = vpc
            .create_bgp_peer(
                creds,
                &CreateBgpPeerRequest {
                    region_id: REGION.into(),
                    bgp_group_id: GROUP.into(),
                    peer_ip_address: Some(format!("10.{net}.{}.{}", i / 200, i % 200 + 1)),
                    ..Default::default()
                },
            )
            .await
            .expect("create");
        ids.push(resp.bgp_peer_id);
    }
    ids
}

/// A reader that finds a listing of its group in flight does not wait for it (that would hold
/// a reconcile slot): it is told `Later`, and woken through the waker when the listing lands;
/// its next look is answered by that listing without another call.
#[tokio::test]
async fn readers_do_not_wait_for_a_listing_in_flight_and_are_woken_when_it_lands() {
    use alicloud_bgp_operator::api::BgpPeer;
    use alicloud_bgp_operator::emulator::faults::Fault;
    use futures::StreamExt;
    use kube::runtime::reflector::ObjectRef;

    let emu = emulator(|_| {}).await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let ids = make_peers(&vpc, &creds, 120, 22).await;
    let observer = PeerObserver::default();
    let (waker, mut woken) = futures::channel::mpsc::unbounded();
    observer.set_waker(waker);
    emu.reset_counters();
    emu.inject_fault(Fault::delay("DescribeBgpPeers", Duration::from_millis(300)).times(3));

    let refs: Vec<ObjectRef<BgpPeer>> = (0..4)
        .map(|i| ObjectRef::new(&format!("peer-{i}")).within("ns"))
        .collect();
    // No listing is young enough for these readers (max age 0) unless it landed after they
    // asked: a woken reader is answered by the listing it waited for however late it runs.
    let waiting = |i: usize| ReadRequest {
        waiter: Some(&refs[i]),
        ..read(&ids[i], Duration::ZERO)
    };
    // Reader 0 fetches the three-page listing; readers 1-3 arrive while it is in flight.
    let fetcher = observer.lookup(&vpc, &creds, waiting(0));
    let others = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut answers = Vec::new();
        for i in 1..4 {
            answers.push(observer.lookup(&vpc, &creds, waiting(i)).await);
        }
        answers
    };
    let (first, answers) = tokio::join!(fetcher, others);
    assert!(matches!(first, Ok(Lookup::Found(_))), "{first:?}");
    for a in &answers {
        assert!(matches!(a, Ok(Lookup::Waiting)), "{a:?}");
    }
    let mut woke = Vec::new();
    for _ in 1..4 {
        let r = tokio::time::timeout(Duration::from_secs(5), woken.next())
            .await
            .expect("woken in time")
            .expect("channel open");
        woke.push(r);
    }
    woke.sort_by_key(|r| r.name.clone());
    assert_eq!(
        woke,
        refs[1..].to_vec(),
        "exactly the waiting readers are woken"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 1..4 {
        let answer = observer.lookup(&vpc, &creds, waiting(i)).await;
        assert!(matches!(answer, Ok(Lookup::Found(_))), "{answer:?}");
    }
    assert_eq!(
        emu.counters().calls("DescribeBgpPeers"),
        3,
        "one three-page listing served all four readers"
    );
    emu.shutdown().await;
}

/// Absence of a peer we deleted is trusted from a consistent listing (no confirming call),
/// and only waited on (never trusted, never confirmed at once) while removals make the
/// listing inconsistent. A peer we did not delete is always confirmed by ID.
#[tokio::test]
async fn absence_of_a_deleted_peer_is_trusted_only_from_a_consistent_listing() {
    use alicloud_bgp_operator::cloud::DeleteBgpPeerRequest;
    use alicloud_bgp_operator::emulator::faults::Fault;

    let emu = emulator(|cfg| cfg.pending_delay = Duration::ZERO).await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let ids = make_peers(&vpc, &creds, 120, 23).await;
    let observer = PeerObserver::default();
    // Delete one through the API (as the controller does); the emulator then completes it.
    vpc.delete_bgp_peer(
        &creds,
        &DeleteBgpPeerRequest {
            region_id: REGION.into(),
            bgp_peer_id: ids[0].clone(),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    observer.note_deleted(&ids[0], ACCOUNT);
    assert!(emu.delete_peer_out_of_band(&ids[0]), "deletion completes");

    // A consistent three-page listing: ids[0] is missing with no by-ID call.
    emu.reset_counters();
    let gone = observer
        .lookup(&vpc, &creds, read(&ids[0], Duration::ZERO))
        .await
        .expect("lookup");
    assert!(matches!(gone, Lookup::Missing), "{gone:?}");
    assert_eq!(
        emu.counters().calls("DescribeBgpPeers"),
        3,
        "the listing only"
    );

    // A peer we did not delete that vanishes is never taken as gone from a listing. Here a
    // lone reader of a three-page group asks by ID straight away (the cheaper read).
    assert!(emu.delete_peer_out_of_band(&ids[1]));
    emu.reset_counters();
    let vanished = observer
        .lookup(&vpc, &creds, read(&ids[1], Duration::ZERO))
        .await
        .expect("lookup");
    assert!(matches!(vanished, Lookup::Missing), "{vanished:?}");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), 1);

    // Removals while the listing is paged make it inconsistent: our deleted peer's absence
    // is not trusted yet (Later), and costs no by-ID call.
    vpc.delete_bgp_peer(
        &creds,
        &DeleteBgpPeerRequest {
            region_id: REGION.into(),
            bgp_peer_id: ids[2].clone(),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    observer.note_deleted(&ids[2], ACCOUNT);
    assert!(emu.delete_peer_out_of_band(&ids[2]));
    emu.inject_fault(Fault::delay("DescribeBgpPeers", Duration::from_millis(300)).times(3));
    emu.reset_counters();
    let listing = observer.lookup(&vpc, &creds, read(&ids[2], Duration::ZERO));
    let remover = async {
        tokio::time::sleep(Duration::from_millis(450)).await;
        for id in &ids[100..110] {
            assert!(emu.delete_peer_out_of_band(id));
        }
    };
    let (unsure, ()) = tokio::join!(listing, remover);
    assert!(matches!(unsure, Ok(Lookup::Pending)), "{unsure:?}");
    let calls = emu.counters().calls("DescribeBgpPeers");
    assert!(calls <= 3, "no by-ID confirmation ({calls} calls)");

    // Once nothing moves, the next listing is consistent and settles it.
    emu.clear_faults();
    let gone = observer
        .lookup(&vpc, &creds, read(&ids[2], Duration::ZERO))
        .await
        .expect("lookup");
    assert!(matches!(gone, Lookup::Missing), "{gone:?}");
    emu.shutdown().await;
}

/// Verifying an unrecorded create trusts only a listing that no create of ours in the group
/// overlapped (an addition during the walk can hide a peer from offset paging), the same
/// rule as the observer's absence verdict (safety issue #6).
#[tokio::test]
async fn verification_listings_overlapping_our_own_creates_are_not_trusted() {
    let emu = emulator(|_| {}).await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    make_peers(&vpc, &creds, 3, 30).await;
    let observer = PeerObserver::default();
    let listed = observer
        .list_group_consistently(&vpc, &creds, ACCOUNT, REGION, GROUP)
        .await
        .expect("listing");
    assert_eq!(listed.map(|p| p.len()), Some(3), "a quiet group is trusted");
    let in_flight = observer.creating(ACCOUNT, REGION, GROUP);
    let listed = observer
        .list_group_consistently(&vpc, &creds, ACCOUNT, REGION, GROUP)
        .await
        .expect("listing");
    assert!(listed.is_none(), "a create of ours in flight: not trusted");
    drop(in_flight);
    // A create that started and ended during the walk counts too (the epoch moved).
    let listed = observer
        .list_group_consistently(&vpc, &creds, ACCOUNT, REGION, GROUP)
        .await
        .expect("listing");
    assert!(listed.is_some());
}

/// Many small groups (a VBR holds at most 8 peers): one region-wide listing (RegionId alone)
/// answers the readers of all of them, instead of a listing per group.
#[tokio::test]
async fn readers_of_many_small_groups_share_one_region_listing() {
    const GROUPS: usize = 30;
    let group_id = |g: usize| format!("bgpg-small{g:015}");
    let emu = emulator(|cfg| {
        let template = cfg.groups[0].clone();
        for g in 0..GROUPS {
            let mut group = template.clone();
            group.id = group_id(g);
            group.is_default = false;
            cfg.groups.push(group);
        }
    })
    .await;
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let mut peers = Vec::new();
    for g in 0..GROUPS {
        for i in 0..3 {
            let resp = vpc
                .create_bgp_peer(
                    &creds,
                    &CreateBgpPeerRequest {
                        region_id: REGION.into(),
                        bgp_group_id: group_id(g),
                        peer_ip_address: Some(format!("10.40.{g}.{}", i + 1)),
                        ..Default::default()
                    },
                )
                .await
                .expect("create");
            peers.push((group_id(g), resp.bgp_peer_id));
        }
    }
    let observer = PeerObserver::default();
    emu.reset_counters();
    let long = Duration::from_secs(600);
    let lookups = peers.iter().map(|(group, id)| {
        observer.lookup(
            &vpc,
            &creds,
            ReadRequest {
                group,
                ..read(id, long)
            },
        )
    });
    let results = futures::future::join_all(lookups).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Lookup::Found(_)))));
    // 90 peers: the first reader's group listing (the region's size was unknown), then one
    // two-page region listing for everyone else; 30 group listings without it.
    let counters = emu.counters();
    assert_eq!(counters.calls("DescribeBgpPeers"), 3, "{counters:?}");
    assert_eq!(
        counters.describe_peers_by_filter.get("region"),
        Some(&2),
        "a RegionId-only listing of 90 peers is two pages of 50: {counters:?}"
    );
    // Within max_age the region listing answers again, with no call.
    let (group, id) = &peers[40];
    let again = observer
        .lookup(
            &vpc,
            &creds,
            ReadRequest {
                group,
                ..read(id, long)
            },
        )
        .await;
    assert!(matches!(again, Ok(Lookup::Found(_))), "{again:?}");
    assert_eq!(emu.counters().calls("DescribeBgpPeers"), 3);
    emu.shutdown().await;
}
