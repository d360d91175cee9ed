//! The coalescing observer against the emulator: how many DescribeBgpPeers calls it makes.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::cloud::{CreateBgpPeerRequest, Credentials};
use alicloud_bgp_operator::controller::observe::{Lookup, PeerObserver, Read};
use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::emulator::server;

use common::operator::{GROUP, REGION, test_emulator_config, vpc_client};

fn read(id: &str, max_age: Duration) -> Read<'_> {
    Read {
        region: REGION,
        group: GROUP,
        id,
        max_age,
        demand_window: Duration::from_secs(60),
        newer_than_last: false,
    }
}

/// A read whose demand window holds only itself.
fn lone_read(id: &str, max_age: Duration) -> Read<'_> {
    Read {
        demand_window: Duration::ZERO,
        ..read(id, max_age)
    }
}

#[tokio::test]
async fn one_listing_serves_a_whole_group_and_own_writes_are_always_seen() {
    alicloud_bgp_operator::install_crypto_provider();
    let mut cfg = test_emulator_config();
    for vbr in &mut cfg.vbrs {
        vbr.peer_quota = 1000;
    }
    let emu = server::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let mut ids = Vec::new();
    for i in 0..60 {
        let resp = vpc
            .create_bgp_peer(
                &creds,
                &CreateBgpPeerRequest {
                    region_id: REGION.into(),
                    bgp_group_id: GROUP.into(),
                    peer_ip_address: Some(format!("10.20.{}.{}", i / 200, i % 200 + 1)),
                    ..Default::default()
                },
            )
            .await
            .expect("create");
        ids.push(resp.bgp_peer_id);
    }
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
    let waiting = Read {
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

    alicloud_bgp_operator::install_crypto_provider();
    let mut cfg = test_emulator_config();
    for vbr in &mut cfg.vbrs {
        vbr.peer_quota = 1000;
    }
    let emu = server::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    let vpc = vpc_client(&emu);
    let creds = Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None);
    let mut ids = Vec::new();
    for i in 0..150 {
        let resp = vpc
            .create_bgp_peer(
                &creds,
                &CreateBgpPeerRequest {
                    region_id: REGION.into(),
                    bgp_group_id: GROUP.into(),
                    peer_ip_address: Some(format!("10.21.{}.{}", i / 200, i % 200 + 1)),
                    ..Default::default()
                },
            )
            .await
            .expect("create");
        ids.push(resp.bgp_peer_id);
    }
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
