//! The BGP group operations of the client against the emulator, over HTTP with both signature
//! versions (issue 19): ClientToken idempotency, Pending → Available, read-after-write lag,
//! the per-VBR group quota, the documented validation codes, `DependencyViolation.BgpPeer`,
//! and the auth key: redacted when decoded, never in an error or a log line.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    AuthKey, ClientConfig, CloudError, CreateBgpGroupRequest, CreateBgpPeerRequest,
    DeleteBgpGroupRequest, DeleteBgpPeerRequest, DescribeBgpGroupsRequest, ErrorClass,
    ModifyBgpGroupAttributeRequest, RetryConfig, SignatureVersion, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{DEMO_REGION, DEMO_VBR, VbrConfig};
use alicloud_bgp_operator::emulator::{EmulatorConfig, EmulatorHandle};
use common::emulator::{
    demo_credentials as demo, start_emulator as emulator, vpc_client as client,
};

const KEY: &str = "Md5-GroupKey-7f3c91";

fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig::demo();
    c.pending_delay = Duration::ZERO;
    c.modify_delay = Duration::ZERO;
    c.delete_delay = Duration::ZERO;
    c.vbrs.push(VbrConfig {
        group_quota: 1,
        ..VbrConfig::new("vbr-onegroup", DEMO_REGION, false)
    });
    c
}

fn create(router: &str, token: Option<&str>) -> CreateBgpGroupRequest {
    CreateBgpGroupRequest {
        region_id: DEMO_REGION.into(),
        router_id: router.into(),
        peer_asn: 65010,
        local_asn: Some(64512),
        auth_key: Some(AuthKey::new(KEY)),
        name: Some("edge-a".into()),
        description: Some("Edge routers".into()),
        route_quota: Some(200),
        client_token: token.map(str::to_owned),
        ..Default::default()
    }
}

fn api_code(e: &CloudError) -> &str {
    match e {
        CloudError::Api(a) => a.code.as_str(),
        _ => "",
    }
}

#[tokio::test]
async fn create_is_idempotent_by_client_token() {
    let emu = emulator(config()).await;
    for (n, version) in [SignatureVersion::V3, SignatureVersion::V1]
        .into_iter()
        .enumerate()
    {
        let vpc = client(&emu, version);
        let token = format!("abo-group-{n}");
        let first = vpc
            .create_bgp_group(&demo(), &create(DEMO_VBR, Some(&token)))
            .await
            .expect("create");
        let again = vpc
            .create_bgp_group(&demo(), &create(DEMO_VBR, Some(&token)))
            .await
            .expect("replay");
        assert_eq!(first.bgp_group_id, again.bgp_group_id);
        let made = emu
            .groups()
            .into_iter()
            .filter(|g| g.client_token.as_deref() == Some(token.as_str()))
            .count();
        assert_eq!(made, 1, "one group per token");
        // Same token, other parameters: refused, nothing made.
        let other = CreateBgpGroupRequest {
            peer_asn: 65011,
            ..create(DEMO_VBR, Some(&token))
        };
        let err = vpc.create_bgp_group(&demo(), &other).await.unwrap_err();
        assert_eq!(api_code(&err), "IdempotentParameterMismatch", "{err}");
        assert_eq!(err.class(), ErrorClass::IdempotencyMismatch);
        // Another key with the same token is other parameters too.
        let other_key = CreateBgpGroupRequest {
            auth_key: Some(AuthKey::new("another-key")),
            ..create(DEMO_VBR, Some(&token))
        };
        let err = vpc.create_bgp_group(&demo(), &other_key).await.unwrap_err();
        assert_eq!(api_code(&err), "IdempotentParameterMismatch");
        assert!(!err.to_string().contains("another-key"), "{err}");
    }
    assert_eq!(emu.counters().count("CreateBgpGroup", "OK"), 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn pending_then_available_behind_the_read_after_write_lag() {
    let mut c = config();
    c.pending_delay = Duration::from_secs(5);
    c.visibility_lag = Duration::from_secs(2);
    let emu = emulator(c).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let created = vpc
        .create_bgp_group(&demo(), &create(DEMO_VBR, Some("abo-lag")))
        .await
        .expect("create");
    let id = created.bgp_group_id;
    // Not visible yet, by ID or in the VBR's listing: absence right after a create is "not
    // yet", which the controller must never read as "deleted".
    assert!(
        vpc.describe_bgp_group(&demo(), DEMO_REGION, &id)
            .await
            .expect("describe")
            .is_none()
    );
    let listed = vpc
        .describe_all_bgp_groups(
            &demo(),
            &DescribeBgpGroupsRequest {
                region_id: DEMO_REGION.into(),
                router_id: Some(DEMO_VBR.into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(listed.iter().all(|g| g.bgp_group_id != id));
    // A replay of the create still answers the ID during the lag.
    let replay = vpc
        .create_bgp_group(&demo(), &create(DEMO_VBR, Some("abo-lag")))
        .await
        .expect("replay");
    assert_eq!(replay.bgp_group_id, id);
    emu.advance_clock(Duration::from_secs(2));
    let seen = vpc
        .describe_bgp_group(&demo(), DEMO_REGION, &id)
        .await
        .expect("describe")
        .expect("visible after the lag");
    assert_eq!(seen.status, "Pending");
    // A busy group cannot be modified.
    let err = vpc
        .modify_bgp_group_attribute(
            &demo(),
            &ModifyBgpGroupAttributeRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: id.clone(),
                peer_asn: Some(65012),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), "InvalidStatus.CannotOperate");
    assert_eq!(err.class(), ErrorClass::Busy);
    emu.advance_clock(Duration::from_secs(3));
    let g = vpc
        .describe_bgp_group(&demo(), DEMO_REGION, &id)
        .await
        .expect("describe")
        .expect("group");
    assert_eq!(g.status, "Available");
    assert_eq!(
        (g.peer_asn, g.local_asn, g.route_limit.as_deref()),
        (Some(65010), Some(64512), Some("200"))
    );
    assert_eq!(g.name.as_deref(), Some("edge-a"));
    assert_eq!(g.router_id, DEMO_VBR);
    assert!(g.hold.is_some() && g.keepalive.is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn modify_changes_the_key_and_clears_it_and_states_fake_asn() {
    let emu = emulator(config()).await;
    let vpc = client(&emu, SignatureVersion::V1);
    let id = vpc
        .create_bgp_group(
            &demo(),
            &CreateBgpGroupRequest {
                is_fake_asn: Some(true),
                ..create(DEMO_VBR, Some("abo-modify"))
            },
        )
        .await
        .expect("create")
        .bgp_group_id;
    let read = |vpc: VpcClient, id: String| async move {
        vpc.describe_bgp_group(&demo(), DEMO_REGION, &id)
            .await
            .expect("describe")
            .expect("group")
    };
    let g = read(vpc.clone(), id.clone()).await;
    assert!(
        g.auth_key
            .as_ref()
            .is_some_and(|k| k.matches(&AuthKey::new(KEY)))
    );
    assert_eq!(g.is_fake, Some(true));
    assert!(!format!("{g:?}").contains(KEY), "{g:?}");
    assert!(!serde_json::to_string(&g).expect("json").contains(KEY));

    let modify = ModifyBgpGroupAttributeRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: id.clone(),
        peer_asn: Some(65020),
        local_asn: Some(45104),
        is_fake_asn: true,
        auth_key: Some(AuthKey::new("rotated-key-2")),
        route_quota: Some(100),
        name: Some("edge-b".into()),
        description: Some("Renamed".into()),
        ..Default::default()
    };
    vpc.modify_bgp_group_attribute(&demo(), &modify)
        .await
        .expect("modify");
    let g = read(vpc.clone(), id.clone()).await;
    assert!(
        g.auth_key
            .as_ref()
            .is_some_and(|k| k.matches(&AuthKey::new("rotated-key-2")))
    );
    assert_eq!(
        (g.peer_asn, g.local_asn, g.is_fake, g.route_limit.as_deref()),
        (Some(65020), Some(45104), Some(true), Some("100"))
    );
    assert_eq!(
        (g.name.as_deref(), g.description.as_deref()),
        (Some("edge-b"), Some("Renamed"))
    );
    // ClearAuthKey removes the key; IsFakeAsn false is stated, not left out.
    vpc.modify_bgp_group_attribute(
        &demo(),
        &ModifyBgpGroupAttributeRequest {
            region_id: DEMO_REGION.into(),
            bgp_group_id: id.clone(),
            clear_auth_key: true,
            ..Default::default()
        },
    )
    .await
    .expect("clear");
    let g = read(vpc.clone(), id.clone()).await;
    assert!(g.auth_key.is_none());
    assert_eq!(g.is_fake, Some(false));
    assert_eq!(g.peer_asn, Some(65020), "fields left out are unchanged");
    emu.shutdown().await;
}

#[tokio::test]
async fn documented_refusals_and_their_classes() {
    let emu = emulator(config()).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let cases: Vec<(CreateBgpGroupRequest, &str, ErrorClass)> = vec![
        (
            CreateBgpGroupRequest {
                peer_asn: 45104,
                ..create(DEMO_VBR, None)
            },
            "InvalidPeerAsn.Malformed",
            ErrorClass::Terminal,
        ),
        (
            CreateBgpGroupRequest {
                name: Some("1starts-with-a-digit".into()),
                ..create(DEMO_VBR, None)
            },
            "InvalidBgpName.Malformed",
            ErrorClass::Terminal,
        ),
        (
            CreateBgpGroupRequest {
                description: Some("https://example.com".into()),
                ..create(DEMO_VBR, None)
            },
            "InvalidBgpDescription.Malformed",
            ErrorClass::Terminal,
        ),
        (
            CreateBgpGroupRequest {
                auth_key: Some(AuthKey::new("has a space")),
                ..create(DEMO_VBR, None)
            },
            "InvalidBgpAuthkey.Malformed",
            ErrorClass::Terminal,
        ),
        (
            create("vbr-doesnotexist", None),
            "InvalidVbrNetwork",
            ErrorClass::DependencyMissing,
        ),
    ];
    for (req, code, class) in cases {
        let err = vpc.create_bgp_group(&demo(), &req).await.unwrap_err();
        assert_eq!(api_code(&err), code, "{err}");
        assert_eq!(err.class(), class, "{code}");
        assert!(!err.to_string().contains("has a space"), "{err}");
    }
    // ModifyBgpGroupAttribute spells the description code InvalidBgpDiscription.Malformed.
    let id = vpc
        .create_bgp_group(&demo(), &create(DEMO_VBR, None))
        .await
        .expect("create")
        .bgp_group_id;
    let err = vpc
        .modify_bgp_group_attribute(
            &demo(),
            &ModifyBgpGroupAttributeRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: id,
                description: Some("9 lives".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), "InvalidBgpDiscription.Malformed");
    assert_eq!(err.class(), ErrorClass::Terminal);
    // "bgp group count per vbr": one group fits on vbr-onegroup.
    vpc.create_bgp_group(&demo(), &create("vbr-onegroup", None))
        .await
        .expect("first group");
    let err = vpc
        .create_bgp_group(&demo(), &create("vbr-onegroup", None))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), "QuotaExceeded.Bgp");
    assert_eq!(err.class(), ErrorClass::Quota);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_group_with_peers_cannot_be_deleted_until_they_are_gone() {
    let emu = emulator(config()).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let id = vpc
        .create_bgp_group(&demo(), &create(DEMO_VBR, Some("abo-dep")))
        .await
        .expect("create")
        .bgp_group_id;
    let peer = vpc
        .create_bgp_peer(
            &demo(),
            &CreateBgpPeerRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: id.clone(),
                peer_ip_address: Some("10.0.0.21".into()),
                ..Default::default()
            },
        )
        .await
        .expect("peer")
        .bgp_peer_id;
    let delete = DeleteBgpGroupRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: id.clone(),
        client_token: None,
    };
    let err = vpc.delete_bgp_group(&demo(), &delete).await.unwrap_err();
    assert_eq!(api_code(&err), "DependencyViolation.BgpPeer");
    assert_eq!(err.class(), ErrorClass::Busy);
    vpc.delete_bgp_peer(
        &demo(),
        &DeleteBgpPeerRequest {
            region_id: DEMO_REGION.into(),
            bgp_peer_id: peer,
            client_token: None,
        },
    )
    .await
    .expect("delete peer");
    vpc.delete_bgp_group(&demo(), &delete)
        .await
        .expect("delete group");
    assert!(
        vpc.describe_bgp_group(&demo(), DEMO_REGION, &id)
            .await
            .expect("describe")
            .is_none()
    );
    // Deleting it again: the group is gone (InvalidBgpGroup, class DependencyMissing).
    let err = vpc.delete_bgp_group(&demo(), &delete).await.unwrap_err();
    assert_eq!(api_code(&err), "InvalidBgpGroup");
    assert_eq!(
        emu.counters()
            .count("DeleteBgpGroup", "DependencyViolation.BgpPeer"),
        1
    );
    emu.shutdown().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_auth_key_is_in_no_log_line_and_no_error() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut c = config();
    c.visibility_lag = Duration::ZERO;
    let emu = emulator(c).await;
    let mut errors = Vec::new();
    for version in [SignatureVersion::V3, SignatureVersion::V1] {
        let vpc = client(&emu, version);
        let id = vpc
            .create_bgp_group(&demo(), &create(DEMO_VBR, None))
            .await
            .expect("create")
            .bgp_group_id;
        let g = vpc
            .describe_bgp_group(&demo(), DEMO_REGION, &id)
            .await
            .expect("describe");
        tracing::info!(group = ?g, "described");
        let modify = ModifyBgpGroupAttributeRequest {
            region_id: DEMO_REGION.into(),
            bgp_group_id: id.clone(),
            auth_key: Some(AuthKey::new(KEY)),
            ..Default::default()
        };
        tracing::info!(request = ?modify, "modifying");
        vpc.modify_bgp_group_attribute(&demo(), &modify)
            .await
            .expect("modify");
        // Failing calls that carry the key: their errors (logged by the client) never show it.
        let bad_name = CreateBgpGroupRequest {
            name: Some("-bad".into()),
            ..create(DEMO_VBR, None)
        };
        errors.push(
            vpc.create_bgp_group(&demo(), &bad_name)
                .await
                .unwrap_err()
                .to_string(),
        );
        let busy = ModifyBgpGroupAttributeRequest {
            bgp_group_id: "bgpg-doesnotexist".into(),
            ..modify
        };
        errors.push(
            vpc.modify_bgp_group_attribute(&demo(), &busy)
                .await
                .unwrap_err()
                .to_string(),
        );
    }
    // A transport failure of a call carrying the key (nothing listens there).
    let dead = VpcClient::new(ClientConfig {
        endpoint: Some("http://127.0.0.1:9".into()),
        retry: RetryConfig {
            max_mutating_retries: 1,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    })
    .expect("client");
    errors.push(
        dead.create_bgp_group(&demo(), &create(DEMO_VBR, Some("abo-dead")))
            .await
            .unwrap_err()
            .to_string(),
    );
    emu.shutdown().await;
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        text.contains("VPC call failed"),
        "the client's failures were logged: {text}"
    );
    assert!(text.contains("AuthKey(<redacted>)"), "{text}");
    for e in &errors {
        assert!(!e.contains(KEY), "error shows the key: {e}");
    }
    assert!(!text.contains(KEY), "a log line shows the key:\n{text}");
}

/// One V1-signed call with exactly `params` (the typed client always states `IsFakeAsn`).
async fn raw_call(
    emu: &EmulatorHandle,
    action: &str,
    params: &[(&str, &str)],
) -> serde_json::Value {
    use alicloud_bgp_operator::cloud::signing::{SigningInput, sign_request};
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let host = emu.local_addr().to_string();
    let nonce = uuid::Uuid::new_v4().to_string();
    let timestamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let signed = sign_request(
        &SigningInput {
            version: SignatureVersion::V1,
            action,
            api_version: "2016-04-28",
            method: "POST",
            host: &host,
            params: &params,
            nonce: &nonce,
            timestamp: &timestamp,
        },
        &demo(),
    );
    let url = format!("{}/?{}", emu.endpoint(), signed.query);
    let mut req = reqwest::Client::new().post(url);
    for (k, v) in &signed.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.send().await.expect("send").json().await.expect("json")
}

#[tokio::test]
async fn a_modify_without_is_fake_asn_switches_it_off() {
    let emu = emulator(config()).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let id = vpc
        .create_bgp_group(
            &demo(),
            &CreateBgpGroupRequest {
                is_fake_asn: Some(true),
                ..create(DEMO_VBR, None)
            },
        )
        .await
        .expect("create")
        .bgp_group_id;
    let answer = raw_call(
        &emu,
        "ModifyBgpGroupAttribute",
        &[
            ("RegionId", DEMO_REGION),
            ("BgpGroupId", &id),
            ("PeerAsn", "65030"),
        ],
    )
    .await;
    assert!(answer["RequestId"].is_string(), "{answer}");
    let g = vpc
        .describe_bgp_group(&demo(), DEMO_REGION, &id)
        .await
        .expect("describe")
        .expect("group");
    assert_eq!((g.peer_asn, g.is_fake), (Some(65030), Some(false)));
    emu.shutdown().await;
}

#[tokio::test]
async fn groups_belong_to_the_account_of_their_vbr() {
    use alicloud_bgp_operator::emulator::Secret;
    use alicloud_bgp_operator::emulator::config::{AccessKeyConfig, AccountConfig};
    let mut c = config();
    c.accounts.push(AccountConfig {
        uid: "5555000011119999".to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: "LTAIgroupaccountb".to_owned(),
            secret: Secret::new("account-b-secret"),
            user: None,
        }],
        roles: Vec::new(),
    });
    c.vbrs.push(VbrConfig {
        owner: Some("5555000011119999".to_owned()),
        ..VbrConfig::new("vbr-ofaccountb", DEMO_REGION, false)
    });
    let emu = emulator(c).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let b = alicloud_bgp_operator::cloud::Credentials::new(
        "LTAIgroupaccountb",
        "account-b-secret",
        None,
    );
    // Account A cannot see account B's VBR, so it cannot make a group there.
    let err = vpc
        .create_bgp_group(&demo(), &create("vbr-ofaccountb", None))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), "InvalidVbrNetwork");
    let id = vpc
        .create_bgp_group(&b, &create("vbr-ofaccountb", None))
        .await
        .expect("account B's group")
        .bgp_group_id;
    // A neither lists, reads, modifies nor deletes it.
    assert!(
        vpc.describe_bgp_group(&demo(), DEMO_REGION, &id)
            .await
            .expect("describe")
            .is_none()
    );
    let modify = ModifyBgpGroupAttributeRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: id.clone(),
        peer_asn: Some(65099),
        ..Default::default()
    };
    let err = vpc
        .modify_bgp_group_attribute(&demo(), &modify)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), "InvalidBgpGroup");
    let delete = DeleteBgpGroupRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: id.clone(),
        client_token: None,
    };
    let err = vpc.delete_bgp_group(&demo(), &delete).await.unwrap_err();
    assert_eq!(api_code(&err), "InvalidBgpGroup");
    // B does all of it.
    assert!(
        vpc.describe_bgp_group(&b, DEMO_REGION, &id)
            .await
            .expect("describe")
            .is_some()
    );
    vpc.modify_bgp_group_attribute(&b, &modify)
        .await
        .expect("B modifies");
    vpc.delete_bgp_group(&b, &delete).await.expect("B deletes");
    emu.shutdown().await;
}
