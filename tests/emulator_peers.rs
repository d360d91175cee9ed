//! The emulator's BGP peers and groups over real HTTP: every error code of the CreateBgpPeer
//! page produced by real semantics, ClientTokens, paging and filters, the SDK wire types, the
//! status machine, groups, and the documented limits (VBR quota, peering subnets, BFD, moves
//! between groups, Deleted peers, TotalCount).

mod common;

use std::time::Duration;

use alicloud_bgp_operator::emulator::config::{
    DEMO_GROUP_V4, DEMO_GROUP_V6, DEMO_REGION, DEMO_VBR, VbrConfig,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, Secret, Status};
use common::emulator::*;
use serde_json::Value;

#[tokio::test]
async fn seed_errors_produced_by_real_semantics() {
    let mut config = EmulatorConfig::demo();
    config.pending_delay = Duration::from_secs(30);
    config.vbrs.push(VbrConfig {
        peer_quota: 1,
        group_quota: 8,
        ..VbrConfig::new("vbr-small", DEMO_REGION, false)
    });
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();

    // InvalidRegionId.NotFound.
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[("RegionId", "cn-nowhere"), ("BgpGroupId", DEMO_GROUP_V4)],
        )
        .await;
    assert_seed_error(&r, "InvalidRegionId.NotFound");

    // InvalidIP.Malformed: bad address, and family other than IpVersion.
    for (ip, version) in [
        ("10.0.0.256", "IPv4"),
        ("not-an-ip", "IPv4"),
        ("2001:db8::1", "IPv4"),
        ("10.0.0.1", "ipv6"),
    ] {
        let r = api
            .v1(
                &c,
                "CreateBgpPeer",
                &[
                    ("RegionId", DEMO_REGION),
                    ("BgpGroupId", DEMO_GROUP_V6),
                    ("PeerIpAddress", ip),
                    ("IpVersion", version),
                ],
            )
            .await;
        assert_seed_error(&r, "InvalidIP.Malformed");
    }

    // Group rules: InvalidPeerAsn.Malformed, InvalidBgpName.Malformed, InvalidBgpAuthkey.Malformed,
    // InvalidVbrNetwork; the description code of ModifyBgpGroupAttribute is the seed page's
    // InvalidBgpDiscription.Malformed.
    let group = |extra: &'static [(&'static str, &'static str)]| {
        let mut p = vec![
            ("RegionId", DEMO_REGION),
            ("RouterId", DEMO_VBR),
            ("PeerAsn", "65010"),
        ];
        p.extend_from_slice(extra);
        p
    };
    let r = api
        .v1(&c, "CreateBgpGroup", &group(&[("PeerAsn", "45104")]))
        .await;
    assert_seed_error(&r, "InvalidPeerAsn.Malformed");
    for bad in ["1abc", "a", "bad name", "x/y"] {
        let mut p = group(&[]);
        p.push(("Name", bad));
        let r = api.v1(&c, "CreateBgpGroup", &p).await;
        assert_seed_error(&r, "InvalidBgpName.Malformed");
    }
    let r = api
        .v1(&c, "CreateBgpGroup", &group(&[("AuthKey", "has space")]))
        .await;
    assert_seed_error(&r, "InvalidBgpAuthkey.Malformed");
    let r = api
        .v1(
            &c,
            "CreateBgpGroup",
            &group(&[("RouterId", "vbr-doesnotexist")]),
        )
        .await;
    assert_seed_error(&r, "InvalidVbrNetwork");
    let r = api
        .v1(
            &c,
            "ModifyBgpGroupAttribute",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", DEMO_GROUP_V4),
                ("Description", "https://example.com"),
            ],
        )
        .await;
    assert_seed_error(&r, "InvalidBgpDiscription.Malformed");
    // CreateBgpGroup spells it InvalidBgpDescription.Malformed.
    let r = api
        .v1(
            &c,
            "CreateBgpGroup",
            &group(&[("Description", "1 starts with a digit")]),
        )
        .await;
    r.assert_error(400, "InvalidBgpDescription.Malformed");

    // QuotaExceeded.Bgp: a VBR with room for one peer.
    let r = api
        .v1(
            &c,
            "CreateBgpGroup",
            &[
                ("RegionId", DEMO_REGION),
                ("RouterId", "vbr-small"),
                ("PeerAsn", "65020"),
            ],
        )
        .await;
    let small_group = r.assert_ok()["BgpGroupId"].as_str().unwrap().to_owned();
    create_peer(&api, &small_group, "10.0.0.11", None).await;
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", &small_group),
                ("PeerIpAddress", "10.0.0.12"),
            ],
        )
        .await;
    assert_seed_error(&r, "QuotaExceeded.Bgp");

    // InvalidStatus.CannotOperate: a Pending peer (30 s delay) cannot be modified or deleted.
    let pending = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    for action in ["ModifyBgpPeerAttribute", "DeleteBgpPeer"] {
        let r = api
            .v1(
                &c,
                action,
                &[
                    ("RegionId", DEMO_REGION),
                    ("BgpPeerId", &pending),
                    ("EnableBfd", "true"),
                    ("BfdMultiHop", "3"),
                ],
            )
            .await;
        assert_seed_error(&r, "InvalidStatus.CannotOperate");
    }

    // InvalidParams.NotFound: a peer that does not exist (message "instance not found", the
    // generic table's other wording).
    let r = api
        .v1(
            &c,
            "DeleteBgpPeer",
            &[("RegionId", DEMO_REGION), ("BgpPeerId", "bgp-doesnotexist")],
        )
        .await;
    r.assert_error(400, "InvalidParams.NotFound");
    assert_eq!(r.json["Message"], "instance not found");

    // InvalidBgpGroup: missing group.
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", "bgpg-doesnotexist"),
            ],
        )
        .await;
    r.assert_error(400, "InvalidBgpGroup");
    assert_eq!(r.json["Message"], "bgp group not exists");
    emu.shutdown().await;
}

#[tokio::test]
async fn client_token_idempotency() {
    let mut config = instant_config();
    config
        .accounts
        .push(alicloud_bgp_operator::emulator::config::AccountConfig {
            uid: "999".to_owned(),
            access_keys: vec![alicloud_bgp_operator::emulator::config::AccessKeyConfig {
                id: "LTAIother".to_owned(),
                secret: Secret::new("other-secret"),
                user: None,
            }],
            roles: Vec::new(),
        });
    config.timestamp_window = Duration::from_secs(3 * 24 * 3600);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let create = |ip: &'static str| {
        vec![
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", DEMO_GROUP_V4),
            ("PeerIpAddress", ip),
            ("ClientToken", "token-1"),
            ("EnableBfd", "True"),
            ("BfdMultiHop", "3"),
        ]
    };
    let first = api.v1(&c, "CreateBgpPeer", &create("10.0.0.2")).await;
    let id = first.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned();
    // Same token and parameters, through V3 with `true`: the original answer, no new peer.
    let mut v3_params = create("10.0.0.2");
    v3_params[4] = ("EnableBfd", "true");
    let again = api.v3(&c, "CreateBgpPeer", &v3_params).await;
    assert_eq!(again.assert_ok()["BgpPeerId"], id.as_str());
    assert_ne!(again.json["RequestId"], first.json["RequestId"]);
    assert_eq!(emu.peers().len(), 1);
    // Different parameters: IdempotentParameterMismatch, no effect.
    let r = api.v1(&c, "CreateBgpPeer", &create("10.0.0.7")).await;
    r.assert_error(400, "IdempotentParameterMismatch");
    assert_eq!(emu.peers().len(), 1);
    assert_eq!(emu.peers()[0].peer_ip_address, "10.0.0.2");
    // Another account has its own token space.
    let other = Creds::new("LTAIother", "other-secret");
    let r = api.v1(&other, "CreateBgpPeer", &create("10.0.0.7")).await;
    assert_ne!(r.assert_ok()["BgpPeerId"], id.as_str());
    assert_eq!(emu.peers().len(), 2);
    // Delete is idempotent too: the replay answers success although the peer is gone.
    let delete = [
        ("RegionId", DEMO_REGION),
        ("BgpPeerId", &id),
        ("ClientToken", "del-1"),
    ];
    api.v1(&c, "DeleteBgpPeer", &delete).await.assert_ok();
    api.v1(&c, "DeleteBgpPeer", &delete).await.assert_ok();
    assert_eq!(emu.peers().len(), 1);
    // After the retention (24 h) the token is forgotten: a new peer.
    emu.advance_clock(Duration::from_secs(25 * 3600));
    let r = api.v1(&c, "CreateBgpPeer", &create("10.0.0.8")).await;
    assert_ne!(r.assert_ok()["BgpPeerId"], id.as_str());
    assert_eq!(emu.peers().len(), 2);
    // A token longer than 64 characters is refused.
    let long = "x".repeat(65);
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", DEMO_GROUP_V4),
                ("ClientToken", &long),
            ],
        )
        .await;
    r.assert_error(400, "InvalidParameter");
    emu.shutdown().await;
}

#[tokio::test]
async fn paging_and_filters() {
    let mut config = instant_config();
    // 13 peers on the demo VBR: more than the documented 8 (the quota has its own tests).
    config.vbrs[0].peer_quota = 16;
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(create_peer(&api, DEMO_GROUP_V4, &format!("10.0.1.{i}"), None).await);
    }
    let v6 = {
        let r = api
            .v1(
                &c,
                "CreateBgpPeer",
                &[
                    ("RegionId", DEMO_REGION),
                    ("BgpGroupId", DEMO_GROUP_V6),
                    ("PeerIpAddress", "2408:4000:1000::9"),
                    ("IpVersion", "IPV6"),
                ],
            )
            .await;
        r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned()
    };
    // Defaults: page 1 of 10.
    let page1 = describe_peers(&api, &[]).await;
    assert_eq!(
        (
            page1["TotalCount"].as_u64(),
            page1["PageNumber"].as_u64(),
            page1["PageSize"].as_u64()
        ),
        (Some(13), Some(1), Some(10))
    );
    assert_eq!(peer_ids(&page1), ids[..10]);
    let page2 = describe_peers(&api, &[("PageNumber", "2")]).await;
    assert_eq!(
        peer_ids(&page2),
        [&ids[10..], std::slice::from_ref(&v6)].concat()
    );
    let all = describe_peers(&api, &[("PageSize", "50")]).await;
    assert_eq!(peer_ids(&all).len(), 13);
    let beyond = describe_peers(&api, &[("PageNumber", "9")]).await;
    assert_eq!(
        (beyond["TotalCount"].as_u64(), peer_ids(&beyond).len()),
        (Some(13), 0)
    );
    // Limits: 1..=50, PageNumber >= 1, integers only.
    for (k, v) in [
        ("PageSize", "51"),
        ("PageSize", "0"),
        ("PageNumber", "0"),
        ("PageSize", "ten"),
    ] {
        let r = api
            .v1(&c, "DescribeBgpPeers", &[("RegionId", DEMO_REGION), (k, v)])
            .await;
        r.assert_error(400, "InvalidParameter");
        assert_eq!(
            r.json["Message"],
            format!("The specified parameter \"{k}\" is not valid.")
        );
        let r = api
            .v1(
                &c,
                "DescribeBgpGroups",
                &[("RegionId", DEMO_REGION), (k, v)],
            )
            .await;
        r.assert_error(400, "InvalidParameter");
    }
    // Filters.
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpGroupId", DEMO_GROUP_V6)]).await),
        std::slice::from_ref(&v6)
    );
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpPeerId", &ids[3])]).await),
        [ids[3].clone()]
    );
    assert_eq!(
        describe_peers(&api, &[("RouterId", DEMO_VBR), ("PageSize", "50")]).await["TotalCount"],
        13
    );
    // The demo IPv4 group is the VBR's default group.
    assert_eq!(
        describe_peers(&api, &[("IsDefault", "false")]).await["TotalCount"],
        1
    );
    assert_eq!(
        describe_peers(&api, &[("IsDefault", "TRUE")]).await["TotalCount"],
        12
    );
    // A missing id is an empty list, not an error.
    let none = describe_peers(&api, &[("BgpPeerId", "bgp-doesnotexist")]).await;
    assert_eq!(none["TotalCount"], 0);
    assert_eq!(none["BgpPeers"]["BgpPeer"], serde_json::json!([]));
    // Another known region is empty; RegionId is required.
    let r = api
        .v1(&c, "DescribeBgpPeers", &[("RegionId", "cn-hangzhou")])
        .await;
    assert_eq!(r.assert_ok()["TotalCount"], 0);
    let r = api.v1(&c, "DescribeBgpPeers", &[]).await;
    r.assert_error(400, "MissingRegionId");
    assert_eq!(r.json["Message"], "RegionId is mandatory for this action.");
    // Groups.
    let groups = api
        .v1(
            &c,
            "DescribeBgpGroups",
            &[("RegionId", DEMO_REGION), ("IsDefault", "true")],
        )
        .await;
    let groups = groups.assert_ok();
    assert_eq!(groups["TotalCount"], 1);
    assert_eq!(
        groups["BgpGroups"]["BgpGroup"][0]["BgpGroupId"],
        DEMO_GROUP_V4
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn describe_items_have_the_sdk_wire_types() {
    let (emu, api) = emulator(instant_config()).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    let item = &body["BgpPeers"]["BgpPeer"][0];
    let expected: &[(&str, &str)] = &[
        ("AdvertisedRouteCount", "int"),
        ("AuthKey", "str"),
        ("BfdMultiHop", "int"),
        ("BgpGroupId", "str"),
        ("BgpPeerId", "str"),
        ("BgpStatus", "str"),
        ("Description", "str"),
        ("EnableBfd", "bool"),
        ("GmtModified", "str"),
        ("Hold", "str"),
        ("IpVersion", "str"),
        ("IsFake", "bool"),
        ("Keepalive", "str"),
        ("LocalAsn", "str"),
        ("Name", "str"),
        ("PeerAsn", "str"),
        ("PeerIpAddress", "str"),
        ("ReceivedRouteCount", "int"),
        ("RegionId", "str"),
        ("RouteLimit", "str"),
        ("RouterId", "str"),
        ("Status", "str"),
    ];
    let kind = |v: &Value| match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        _ => "other",
    };
    let fields: Vec<&String> = item.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), expected.len(), "{item}");
    for (name, ty) in expected {
        assert_eq!(kind(&item[*name]), *ty, "{name} in {item}");
    }
    assert_eq!(item["PeerAsn"], "65001");
    assert_eq!(item["LocalAsn"], "45104");
    assert_eq!(item["Status"], "Available");
    let gmt = item["GmtModified"].as_str().unwrap();
    assert!(
        jiff::fmt::strtime::parse("%Y-%m-%dT%H:%MZ", gmt).is_ok(),
        "{gmt}"
    );

    let groups = api
        .v1(
            &Creds::demo(),
            "DescribeBgpGroups",
            &[("RegionId", DEMO_REGION), ("BgpGroupId", DEMO_GROUP_V6)],
        )
        .await;
    let group = &groups.assert_ok()["BgpGroups"]["BgpGroup"][0];
    for name in [
        "AuthKey",
        "BgpGroupId",
        "Description",
        "Hold",
        "IpVersion",
        "IsFake",
        "Keepalive",
        "LocalAsn",
        "Name",
        "PeerAsn",
        "RegionId",
        "RouteLimit",
        "RouterId",
        "Status",
    ] {
        assert_eq!(kind(&group[name]), "str", "{name} in {group}");
    }
    assert_eq!(group["IsFake"], "false");
    assert_eq!(group["IpVersion"], "ipv6");
    assert_eq!(group.as_object().unwrap().len(), 14);
    emu.shutdown().await;
}

#[tokio::test]
async fn status_machine_with_delays() {
    let mut config = EmulatorConfig::demo();
    config.pending_delay = Duration::from_secs(2);
    config.modify_delay = Duration::from_secs(3);
    config.delete_delay = Duration::from_secs(4);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let status = |body: Value| body["BgpPeers"]["BgpPeer"][0]["Status"].clone();
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    assert_eq!(
        status(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Pending"
    );
    assert_eq!(emu.peer(&id).unwrap().bgp_status, "Idle");
    emu.advance_clock(Duration::from_millis(1900));
    assert_eq!(
        status(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Pending"
    );
    emu.advance_clock(Duration::from_millis(200));
    assert_eq!(
        status(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Available"
    );
    // The session follows: Idle for 1 s after Available, Connect for 2 s, then Established.
    let session = |body: Value| body["BgpPeers"]["BgpPeer"][0]["BgpStatus"].clone();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Idle"
    );
    emu.advance_clock(Duration::from_millis(1000));
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Connect"
    );
    emu.advance_clock(Duration::from_millis(2000));
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Established"
    );
    assert_eq!(emu.peer(&id).unwrap().bgp_status, "Established");

    let modify = [
        ("RegionId", DEMO_REGION),
        ("BgpPeerId", id.as_str()),
        ("PeerIpAddress", "10.0.0.9"),
        ("EnableBfd", "true"),
        ("BfdMultiHop", "7"),
    ];
    api.v1(&c, "ModifyBgpPeerAttribute", &modify)
        .await
        .assert_ok();
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    let item = &body["BgpPeers"]["BgpPeer"][0];
    assert_eq!(
        (
            item["Status"].as_str(),
            item["PeerIpAddress"].as_str(),
            item["BfdMultiHop"].as_u64(),
            item["EnableBfd"].as_bool()
        ),
        (Some("Modifying"), Some("10.0.0.9"), Some(7), Some(true))
    );
    // A second modification while Modifying is refused.
    api.v1(&c, "ModifyBgpPeerAttribute", &modify)
        .await
        .assert_error(400, "InvalidStatus.CannotOperate");
    emu.advance_clock(Duration::from_secs(3));
    assert_eq!(
        status(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Available"
    );

    // A group with a peer cannot be deleted.
    api.v1(
        &c,
        "DeleteBgpGroup",
        &[("RegionId", DEMO_REGION), ("BgpGroupId", DEMO_GROUP_V4)],
    )
    .await
    .assert_error(400, "DependencyViolation.BgpPeer");

    api.v1(
        &c,
        "DeleteBgpPeer",
        &[("RegionId", DEMO_REGION), ("BgpPeerId", &id)],
    )
    .await
    .assert_ok();
    assert_eq!(
        status(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Deleting"
    );
    api.v1(
        &c,
        "DeleteBgpPeer",
        &[("RegionId", DEMO_REGION), ("BgpPeerId", &id)],
    )
    .await
    .assert_error(400, "InvalidStatus.CannotOperate");
    emu.advance_clock(Duration::from_secs(4));
    assert_eq!(
        describe_peers(&api, &[("BgpPeerId", &id)]).await["TotalCount"],
        0
    );
    assert!(emu.peers().is_empty());

    // The group is deletable now: Deleting, then gone.
    api.v1(
        &c,
        "DeleteBgpGroup",
        &[("RegionId", DEMO_REGION), ("BgpGroupId", DEMO_GROUP_V4)],
    )
    .await
    .assert_ok();
    assert_eq!(
        emu.groups()
            .iter()
            .find(|g| g.bgp_group_id == DEMO_GROUP_V4)
            .unwrap()
            .status,
        Status::Deleting
    );
    emu.advance_clock(Duration::from_secs(4));
    assert!(emu.groups().iter().all(|g| g.bgp_group_id != DEMO_GROUP_V4));
    emu.shutdown().await;
}

#[tokio::test]
async fn groups_lifecycle_and_validation() {
    let mut config = instant_config();
    config.vbrs.push(VbrConfig {
        peer_quota: 4,
        group_quota: 1,
        ..VbrConfig::new("vbr-v4only", DEMO_REGION, false)
    });
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let r = api
        .v1(
            &c,
            "CreateBgpGroup",
            &[
                ("RegionId", DEMO_REGION),
                ("RouterId", DEMO_VBR),
                ("PeerAsn", "4200000001"),
                ("LocalAsn", "64512"),
                ("Name", "core-1.a_b"),
                ("Description", "中文描述 ok"),
                ("AuthKey", "s3cr3t!"),
                ("IsFakeAsn", "True"),
                ("RouteQuota", "200"),
                ("ClientToken", "g-1"),
            ],
        )
        .await;
    let gid = r.assert_ok()["BgpGroupId"].as_str().unwrap().to_owned();
    assert!(gid.starts_with("bgpg-") && gid.len() == 25, "{gid}");
    assert!(
        gid[5..]
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
    );
    let g = emu
        .groups()
        .into_iter()
        .find(|g| g.bgp_group_id == gid)
        .unwrap();
    assert_eq!(
        (g.peer_asn, g.local_asn, g.is_fake_asn, g.route_quota),
        (4_200_000_001, 64512, true, 200)
    );
    assert_eq!(g.client_token.as_deref(), Some("g-1"));

    // LocalAsn rules.
    for bad in ["65025", "100", "65535", "4294967295"] {
        api.v1(
            &c,
            "CreateBgpGroup",
            &[
                ("RegionId", DEMO_REGION),
                ("RouterId", DEMO_VBR),
                ("PeerAsn", "65010"),
                ("LocalAsn", bad),
            ],
        )
        .await
        .assert_error(400, "InvalidParameter");
    }
    // PeerAsn is required.
    api.v1(
        &c,
        "CreateBgpGroup",
        &[("RegionId", DEMO_REGION), ("RouterId", DEMO_VBR)],
    )
    .await
    .assert_error(400, "MissingPeerAsn");
    // IPv6 needs an IPv6 VBR; the group quota of a VBR.
    api.v1(
        &c,
        "CreateBgpGroup",
        &[
            ("RegionId", DEMO_REGION),
            ("RouterId", "vbr-v4only"),
            ("PeerAsn", "65010"),
            ("IpVersion", "IPv6"),
        ],
    )
    .await
    .assert_error(400, "InvalidVbr.Ipv6NotEnabled");
    let v4only = api
        .v1(
            &c,
            "CreateBgpGroup",
            &[
                ("RegionId", DEMO_REGION),
                ("RouterId", "vbr-v4only"),
                ("PeerAsn", "65010"),
            ],
        )
        .await;
    let v4only = v4only.assert_ok()["BgpGroupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api
        .v1(
            &c,
            "CreateBgpGroup",
            &[
                ("RegionId", DEMO_REGION),
                ("RouterId", "vbr-v4only"),
                ("PeerAsn", "65011"),
            ],
        )
        .await;
    r.assert_error(400, "QuotaExceeded.Bgp");
    assert_eq!(r.json["Message"], "bgp group count per vbr quota exceed.");
    // An IPv6 peer in a group of an IPv4-only VBR.
    api.v1(
        &c,
        "CreateBgpPeer",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", &v4only),
            ("PeerIpAddress", "2001:db8::1"),
            ("IpVersion", "IPv6"),
        ],
    )
    .await
    .assert_error(400, "InvalidVbr.Ipv6NotEnabled");
    // BfdMultiHop 1..=255, booleans.
    for (k, v) in [
        ("BfdMultiHop", "0"),
        ("BfdMultiHop", "256"),
        ("EnableBfd", "yes"),
        ("IpVersion", "IPv5"),
    ] {
        api.v1(
            &c,
            "CreateBgpPeer",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", DEMO_GROUP_V4),
                (k, v),
            ],
        )
        .await
        .assert_error(400, "InvalidParameter");
    }

    // Modify, clear the auth key, delete.
    api.v1(
        &c,
        "ModifyBgpGroupAttribute",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", &gid),
            ("PeerAsn", "65099"),
            ("ClearAuthKey", "true"),
            ("Name", "renamed"),
        ],
    )
    .await
    .assert_ok();
    let g = emu
        .groups()
        .into_iter()
        .find(|g| g.bgp_group_id == gid)
        .unwrap();
    assert_eq!(
        (g.peer_asn, g.auth_key.as_str(), g.name.as_str()),
        (65099, "", "renamed")
    );
    api.v1(
        &c,
        "ModifyBgpGroupAttribute",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", &gid),
            ("PeerAsn", "45104"),
        ],
    )
    .await
    .assert_error(400, "InvalidPeerAsn.Malformed");
    api.v1(
        &c,
        "DeleteBgpGroup",
        &[("RegionId", DEMO_REGION), ("BgpGroupId", &gid)],
    )
    .await
    .assert_ok();
    api.v1(
        &c,
        "DeleteBgpGroup",
        &[("RegionId", DEMO_REGION), ("BgpGroupId", &gid)],
    )
    .await
    .assert_error(400, "InvalidBgpGroup");
    assert!(emu.groups().iter().all(|g| g.bgp_group_id != gid));
    emu.shutdown().await;
}

#[tokio::test]
async fn vbr_holds_eight_peers_over_all_its_groups() {
    let mut config = instant_config();
    config.vbrs[0] = VbrConfig::new(DEMO_VBR, DEMO_REGION, true);
    assert_eq!(config.vbrs[0].peer_quota, 8);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_peer(&api, DEMO_GROUP_V4, &format!("10.0.2.{i}"), None).await);
    }
    for i in 0..3 {
        let ip = format!("2408:4000:1000::{}", i + 10);
        let r = api
            .v1(
                &c,
                "CreateBgpPeer",
                &[
                    ("RegionId", DEMO_REGION),
                    ("BgpGroupId", DEMO_GROUP_V6),
                    ("PeerIpAddress", &ip),
                    ("IpVersion", "IPv6"),
                ],
            )
            .await;
        r.assert_ok();
    }
    let ninth = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.2.9"),
    ];
    api.v1(&c, "CreateBgpPeer", &ninth)
        .await
        .assert_error(400, "QuotaExceeded.Bgp");
    api.v1(
        &c,
        "DeleteBgpPeer",
        &[("RegionId", DEMO_REGION), ("BgpPeerId", &ids[0])],
    )
    .await
    .assert_ok();
    api.v1(&c, "CreateBgpPeer", &ninth).await.assert_ok();
    emu.shutdown().await;
}

#[tokio::test]
async fn peer_ips_must_be_in_the_peering_subnet_and_unique_in_a_group() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let create = |group: &'static str, ip: &'static str, v6: bool| {
        let mut p = vec![
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", group),
            ("PeerIpAddress", ip),
        ];
        if v6 {
            p.push(("IpVersion", "IPv6"));
        }
        p
    };
    // Outside 10.0.0.0/16, or the VBR's own gateway address 10.0.0.1.
    for ip in ["192.168.1.2", "10.1.0.2", "10.0.0.1"] {
        api.v1(&c, "CreateBgpPeer", &create(DEMO_GROUP_V4, ip, false))
            .await
            .assert_error(400, "InvalidPeerIpAddress");
    }
    api.v1(
        &c,
        "CreateBgpPeer",
        &create(DEMO_GROUP_V6, "2001:db8::2", true),
    )
    .await
    .assert_error(400, "InvalidPeerIpAddress");
    let id = api
        .v1(
            &c,
            "CreateBgpPeer",
            &create(DEMO_GROUP_V4, "10.0.3.2", false),
        )
        .await
        .assert_ok()["BgpPeerId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same IP again in the group: refused; another IP is fine.
    api.v1(
        &c,
        "CreateBgpPeer",
        &create(DEMO_GROUP_V4, "10.0.3.2", false),
    )
    .await
    .assert_error(400, "InvalidPeerIpAddress.AlreadyExists");
    let other = api
        .v1(
            &c,
            "CreateBgpPeer",
            &create(DEMO_GROUP_V4, "10.0.3.3", false),
        )
        .await
        .assert_ok()["BgpPeerId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Modify: outside the subnet is ModifyBgpPeerAttribute's documented IllegalParam.IpAddress;
    // onto another peer's IP is refused as on create.
    let modify = |ip: &'static str| {
        vec![
            ("RegionId", DEMO_REGION),
            ("BgpPeerId", other.as_str()),
            ("PeerIpAddress", ip),
        ]
    };
    api.v1(&c, "ModifyBgpPeerAttribute", &modify("172.16.0.2"))
        .await
        .assert_error(400, "IllegalParam.IpAddress");
    api.v1(&c, "ModifyBgpPeerAttribute", &modify("10.0.3.2"))
        .await
        .assert_error(400, "InvalidPeerIpAddress.AlreadyExists");
    api.v1(&c, "ModifyBgpPeerAttribute", &modify("10.0.3.4"))
        .await
        .assert_ok();
    assert_eq!(emu.peer(&other).unwrap().peer_ip_address, "10.0.3.4");
    assert_eq!(emu.peer(&id).unwrap().peer_ip_address, "10.0.3.2");
    emu.shutdown().await;
}

#[tokio::test]
async fn bfd_needs_its_hop_count_and_modify_defaults_bfd_off() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let base = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.4.2"),
        ("EnableBfd", "true"),
    ];
    let r = api.v1(&c, "CreateBgpPeer", &base).await;
    r.assert_error(400, "MissingBfdMultiHop");
    assert_eq!(
        r.json["Message"],
        "BfdMultiHop is mandatory for this action."
    );
    assert!(emu.peers().is_empty());
    let mut with_hop = base.to_vec();
    with_hop.push(("BfdMultiHop", "1"));
    let id = api.v1(&c, "CreateBgpPeer", &with_hop).await.assert_ok()["BgpPeerId"]
        .as_str()
        .unwrap()
        .to_owned();
    let peer = emu.peer(&id).unwrap();
    assert!(peer.enable_bfd && peer.bfd_multi_hop == 1);
    // A modify stating BFD without its hop count is refused.
    api.v1(
        &c,
        "ModifyBgpPeerAttribute",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpPeerId", &id),
            ("EnableBfd", "true"),
        ],
    )
    .await
    .assert_error(400, "MissingBfdMultiHop");
    // A modify of the IP alone switches BFD off (documented default EnableBfd=false).
    api.v1(
        &c,
        "ModifyBgpPeerAttribute",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpPeerId", &id),
            ("PeerIpAddress", "10.0.4.3"),
        ],
    )
    .await
    .assert_ok();
    let peer = emu.peer(&id).unwrap();
    assert_eq!(
        (peer.enable_bfd, peer.peer_ip_address.as_str()),
        (false, "10.0.4.3")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn modify_moves_a_peer_between_groups_of_its_vbr_only() {
    let mut config = instant_config();
    config
        .vbrs
        .push(VbrConfig::new("vbr-other", DEMO_REGION, false));
    config
        .groups
        .push(alicloud_bgp_operator::emulator::config::GroupConfig {
            id: "bgpg-other".into(),
            vbr: "vbr-other".into(),
            ..config.groups[0].clone()
        });
    config
        .groups
        .push(alicloud_bgp_operator::emulator::config::GroupConfig {
            id: "bgpg-sibling".into(),
            is_default: false,
            ..config.groups[0].clone()
        });
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.5.2", None).await;
    let to = |group: &'static str| {
        vec![
            ("RegionId", DEMO_REGION),
            ("BgpPeerId", id.as_str()),
            ("BgpGroupId", group),
        ]
    };
    let r = api
        .v1(&c, "ModifyBgpPeerAttribute", &to("bgpg-other"))
        .await;
    r.assert_error(400, "InvalidBgpGroup");
    assert_eq!(emu.peer(&id).unwrap().bgp_group_id, DEMO_GROUP_V4);
    api.v1(&c, "ModifyBgpPeerAttribute", &to("bgpg-sibling"))
        .await
        .assert_ok();
    assert_eq!(emu.peer(&id).unwrap().bgp_group_id, "bgpg-sibling");
    let listed = describe_peers(&api, &[("BgpGroupId", "bgpg-sibling")]).await;
    assert_eq!(peer_ids(&listed), std::slice::from_ref(&id));
    emu.shutdown().await;
}

#[tokio::test]
async fn deleted_peers_are_listed_as_deleted_for_a_while() {
    let mut config = instant_config();
    config.deleted_linger = Duration::from_secs(3);
    config.vbrs[0].peer_quota = 1;
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.7.2", None).await;
    api.v1(
        &c,
        "DeleteBgpPeer",
        &[("RegionId", DEMO_REGION), ("BgpPeerId", &id)],
    )
    .await
    .assert_ok();
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    assert_eq!(body["BgpPeers"]["BgpPeer"][0]["Status"], "Deleted");
    // A Deleted peer no longer counts against the quota, nor holds its IP.
    create_peer(&api, DEMO_GROUP_V4, "10.0.7.2", None).await;
    emu.advance_clock(Duration::from_secs(3));
    assert!(peer_ids(&describe_peers(&api, &[("BgpPeerId", &id)]).await).is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn total_count_can_count_the_page() {
    let mut config = instant_config();
    config.vbrs[0].peer_quota = 16;
    config.total_count = alicloud_bgp_operator::emulator::config::TotalCountMode::Page;
    let (emu, api) = emulator(config).await;
    for i in 0..12 {
        create_peer(&api, DEMO_GROUP_V4, &format!("10.0.9.{i}"), None).await;
    }
    let mut counts = Vec::new();
    for page in ["1", "2", "3", "4"] {
        let body = describe_peers(&api, &[("PageSize", "5"), ("PageNumber", page)]).await;
        counts.push((body["TotalCount"].as_u64().unwrap(), peer_ids(&body).len()));
    }
    assert_eq!(counts, [(5, 5), (5, 5), (2, 2), (0, 0)]);
    emu.shutdown().await;
}

#[tokio::test]
async fn client_tokens_must_be_printable_ascii_by_default() {
    let mut config = instant_config();
    config.client_token_ascii_only = EmulatorConfig::default().client_token_ascii_only;
    assert!(config.client_token_ascii_only);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    for token in ["tok-é", "tok\u{7f}", "tok\ttab"] {
        api.v1(
            &c,
            "CreateBgpPeer",
            &[
                ("RegionId", DEMO_REGION),
                ("BgpGroupId", DEMO_GROUP_V4),
                ("PeerIpAddress", "10.0.10.2"),
                ("ClientToken", token),
            ],
        )
        .await
        .assert_error(400, "InvalidParameter");
    }
    assert!(emu.peers().is_empty());
    create_peer(&api, DEMO_GROUP_V4, "10.0.10.2", Some("abo-1 *~")).await;
    emu.shutdown().await;
}
