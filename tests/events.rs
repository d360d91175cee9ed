//! The event recorder against the real apiserver: a repeat within the series window is
//! counted on the first Event (no second object), a different note is a new Event, and a
//! note over the API limit is cut rather than refused.

mod common;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;

use alicloud_bgp_operator::ops::events::{EventType, Recorder, Reporter};

#[tokio::test]
async fn repeats_are_counted_on_one_event() {
    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "events").await;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "alicloud-bgp-operator".into(),
            instance: Some("test-0".into()),
        },
    );
    let regarding = ObjectReference {
        api_version: Some("vpc.alicloud.dev/v1alpha1".into()),
        kind: Some("BgpPeer".into()),
        name: Some("peer-a".into()),
        namespace: Some(ns.clone()),
        uid: Some("00000000-0000-0000-0000-00000000000a".into()),
        ..ObjectReference::default()
    };
    for _ in 0..3 {
        recorder
            .publish(
                &regarding,
                EventType::Warning,
                "Throttled",
                "Reconcile",
                "slow down",
            )
            .await
            .expect("publish");
    }
    recorder
        .publish(
            &regarding,
            EventType::Normal,
            "Created",
            "Create",
            "Created BGP peer bgp-1",
        )
        .await
        .expect("publish");
    recorder
        .publish(
            &regarding,
            EventType::Normal,
            "Long",
            "Create",
            &"x".repeat(5000),
        )
        .await
        .expect("a long note is cut, not refused");

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let list = events.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 3, "{:#?}", list.items);
    let throttled = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Throttled"))
        .expect("the repeated event");
    assert_eq!(throttled.type_.as_deref(), Some("Warning"));
    assert_eq!(throttled.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(throttled.reporting_instance.as_deref(), Some("test-0"));
    assert_eq!(
        throttled.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("peer-a")
    );
    let created = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Created"))
        .expect("the single event");
    assert!(created.series.is_none());
    let long = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Long"))
        .expect("the long event");
    assert_eq!(long.note.as_ref().map(String::len), Some(1024));
    assert_eq!(recorder.remembered(), 3);
}

#[tokio::test]
async fn events_about_an_object_with_a_253_character_name() {
    use alicloud_bgp_operator::api::BgpPeer;
    use kube::Resource;

    let client = common::client_with_crds().await;
    let ns = common::namespace(&client, "events-long").await;
    // The longest name an object may have: labels of at most 63, joined by dots, 253 in all.
    let name = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(name.len(), 253);
    let peers: Api<BgpPeer> = Api::namespaced(client.clone(), &ns);
    let peer: BgpPeer = serde_json::from_value(serde_json::json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": name},
        "spec": {
            "regionId": common::operator::REGION,
            "bgpGroupId": common::operator::GROUP,
            "peerIpAddress": "10.50.0.2",
        },
    }))
    .expect("object");
    let peer = peers
        .create(&Default::default(), &peer)
        .await
        .expect("a 253-character BgpPeer name is valid");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "alicloud-bgp-operator".into(),
            instance: Some("test-0".into()),
        },
    );
    let regarding = peer.object_ref(&());
    for _ in 0..2 {
        recorder
            .publish(
                &regarding,
                EventType::Normal,
                "Created",
                "Create",
                "Created BGP peer bgp-1",
            )
            .await
            .expect("the Event's name is valid");
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let list = events.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1, "{:#?}", list.items);
    let event = &list.items[0];
    let event_name = event.metadata.name.clone().unwrap_or_default();
    assert!(event_name.len() <= 253, "{event_name}");
    assert_eq!(
        event.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some(name.as_str())
    );
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(2));
}
