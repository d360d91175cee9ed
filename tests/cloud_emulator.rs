//! The VPC client against the project's emulator (a real HTTP server that verifies both
//! signature versions independently): the full peer lifecycle, idempotency, classified
//! errors, STS credentials and retries on injected faults.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    CreateBgpPeerRequest, CredentialChain, CredentialSource, Credentials, DeleteBgpPeerRequest,
    DescribeBgpGroupsRequest, DescribeBgpPeersRequest, ErrorClass, ModifyBgpPeerAttributeRequest,
    SignatureVersion, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_GROUP_V4, DEMO_GROUP_V6, DEMO_REGION,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, EmulatorHandle, Fault, Latency};
use common::emulator::{demo_credentials as demo_creds, start_emulator, vpc_client as client};

async fn emulator() -> EmulatorHandle {
    let config = EmulatorConfig {
        pending_delay: Duration::from_millis(100),
        modify_delay: Duration::from_millis(100),
        delete_delay: Duration::from_millis(100),
        latency: Latency::fixed(Duration::ZERO),
        ..EmulatorConfig::demo()
    };
    start_emulator(config).await
}

async fn wait_for_status(
    client: &VpcClient,
    creds: &Credentials,
    peer_id: &str,
    want: Option<&str>,
) -> Option<alicloud_bgp_operator::cloud::BgpPeerInfo> {
    let req = DescribeBgpPeersRequest {
        region_id: DEMO_REGION.into(),
        bgp_peer_id: Some(peer_id.into()),
        ..Default::default()
    };
    for _ in 0..100 {
        let page = client
            .describe_bgp_peers(creds, &req)
            .await
            .expect("describe");
        let found = page.peers.into_iter().find(|p| p.bgp_peer_id == peer_id);
        match (&found, want) {
            (None, None) => return None,
            (Some(p), Some(w)) if p.status.as_str() == w => return found,
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("peer {peer_id} never reached {want:?}");
}

async fn lifecycle(version: SignatureVersion, token: &str, ip: &str) {
    let emu = emulator().await;
    let client = client(&emu, version);
    let creds = demo_creds();
    let create = CreateBgpPeerRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: DEMO_GROUP_V4.into(),
        peer_ip_address: Some(ip.into()),
        enable_bfd: Some(true),
        bfd_multi_hop: Some(3),
        ip_version: Some("IPv4".into()),
        client_token: Some(token.into()),
    };
    let created = client
        .create_bgp_peer(&creds, &create)
        .await
        .expect("create");
    assert!(created.bgp_peer_id.starts_with("bgp-"), "{created:?}");
    assert!(!created.request_id.is_empty());

    // Same token, same parameters: the same peer, no duplicate.
    let again = client
        .create_bgp_peer(&creds, &create)
        .await
        .expect("replay");
    assert_eq!(again.bgp_peer_id, created.bgp_peer_id);

    // Same token, different parameters.
    let mismatch = CreateBgpPeerRequest {
        peer_ip_address: Some("10.9.9.9".into()),
        ..create.clone()
    };
    let err = client
        .create_bgp_peer(&creds, &mismatch)
        .await
        .expect_err("token reuse with other parameters");
    assert_eq!(err.class(), ErrorClass::IdempotencyMismatch, "{err}");

    let peer = wait_for_status(&client, &creds, &created.bgp_peer_id, Some("Available"))
        .await
        .expect("available");
    assert_eq!(peer.bgp_group_id, DEMO_GROUP_V4);
    assert_eq!(peer.peer_ip_address.as_deref(), Some(ip));
    assert_eq!(peer.enable_bfd, Some(true));
    assert_eq!(peer.bfd_multi_hop, Some(3));
    assert_eq!(peer.peer_asn, Some(65001));
    assert_eq!(peer.region_id, DEMO_REGION);

    let all = client
        .describe_all_bgp_peers(
            &creds,
            &DescribeBgpPeersRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: Some(DEMO_GROUP_V4.into()),
                ..Default::default()
            },
        )
        .await
        .expect("describe all");
    assert!(all.iter().any(|p| p.bgp_peer_id == created.bgp_peer_id));

    client
        .modify_bgp_peer_attribute(
            &creds,
            &ModifyBgpPeerAttributeRequest {
                region_id: DEMO_REGION.into(),
                bgp_peer_id: created.bgp_peer_id.clone(),
                enable_bfd: false,
                client_token: Some(format!("{token}-m")),
                ..Default::default()
            },
        )
        .await
        .expect("modify");
    let peer = wait_for_status(&client, &creds, &created.bgp_peer_id, Some("Available"))
        .await
        .expect("available after modify");
    assert_eq!(peer.enable_bfd, Some(false));

    client
        .delete_bgp_peer(
            &creds,
            &DeleteBgpPeerRequest {
                region_id: DEMO_REGION.into(),
                bgp_peer_id: created.bgp_peer_id.clone(),
                client_token: Some(format!("{token}-d")),
            },
        )
        .await
        .expect("delete");
    assert!(
        wait_for_status(&client, &creds, &created.bgp_peer_id, None)
            .await
            .is_none()
    );
    assert!(emu.peer(&created.bgp_peer_id).is_none());
}

#[tokio::test]
async fn lifecycle_v3() {
    lifecycle(SignatureVersion::V3, "uid-0001-v3 *+/~", "10.0.0.2").await;
}

#[tokio::test]
async fn lifecycle_v1() {
    lifecycle(SignatureVersion::V1, "uid-0001-v1 *+/~", "10.0.0.3").await;
}

#[tokio::test]
async fn groups_are_listed() {
    let emu = emulator().await;
    let groups = client(&emu, SignatureVersion::V3)
        .describe_all_bgp_groups(
            &demo_creds(),
            &DescribeBgpGroupsRequest {
                region_id: DEMO_REGION.into(),
                ..Default::default()
            },
        )
        .await
        .expect("groups");
    let v4 = groups
        .iter()
        .find(|g| g.bgp_group_id == DEMO_GROUP_V4)
        .expect("v4 group");
    let v6 = groups
        .iter()
        .find(|g| g.bgp_group_id == DEMO_GROUP_V6)
        .expect("v6 group");
    assert_eq!(v4.peer_asn, Some(65001));
    assert_eq!(v4.local_asn, Some(45104));
    // The API's own casing varies (IPv6 / ipv6): compare without case.
    assert!(
        v6.ip_version
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("IPv6")),
        "{v6:?}"
    );
}

#[tokio::test]
async fn errors_are_classified() {
    let emu = emulator().await;
    let creds = demo_creds();
    for version in [SignatureVersion::V1, SignatureVersion::V3] {
        let client = client(&emu, version);
        let missing_group = CreateBgpPeerRequest {
            region_id: DEMO_REGION.into(),
            bgp_group_id: "bgpg-doesnotexist0000001".into(),
            peer_ip_address: Some("10.0.0.9".into()),
            ..Default::default()
        };
        let err = client
            .create_bgp_peer(&creds, &missing_group)
            .await
            .expect_err("no such group");
        assert_eq!(err.class(), ErrorClass::DependencyMissing, "{err}");
        assert!(err.request_id().is_some());

        let wrong_secret = Credentials::new(DEMO_ACCESS_KEY_ID, "not-the-secret", None);
        let describe = DescribeBgpPeersRequest {
            region_id: DEMO_REGION.into(),
            ..Default::default()
        };
        let err = client
            .describe_bgp_peers(&wrong_secret, &describe)
            .await
            .expect_err("bad signature");
        assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err}");
        assert_eq!(err.class(), ErrorClass::Credentials);
        assert!(!err.to_string().contains("not-the-secret"));

        let unknown_key = Credentials::new("LTAIunknownkey000000", "x", None);
        let err = client
            .describe_bgp_peers(&unknown_key, &describe)
            .await
            .expect_err("unknown key");
        assert_eq!(err.class(), ErrorClass::Credentials, "{err}");
    }
}

#[tokio::test]
async fn injected_5xx_is_retried_for_token_calls_only() {
    let emu = emulator().await;
    let client = client(&emu, SignatureVersion::V3);
    let creds = demo_creds();
    let create = CreateBgpPeerRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: DEMO_GROUP_V4.into(),
        peer_ip_address: Some("10.0.1.2".into()),
        client_token: Some("retry-token-1".into()),
        ..Default::default()
    };
    emu.inject_fault(Fault::error("CreateBgpPeer", "ServiceUnavailable").times(1));
    let created = client
        .create_bgp_peer(&creds, &create)
        .await
        .expect("retried");
    assert!(created.bgp_peer_id.starts_with("bgp-"));

    emu.inject_fault(Fault::error("CreateBgpPeer", "ServiceUnavailable").times(1));
    let no_token = CreateBgpPeerRequest {
        client_token: None,
        peer_ip_address: Some("10.0.1.3".into()),
        ..create
    };
    let err = client
        .create_bgp_peer(&creds, &no_token)
        .await
        .expect_err("no retry without a token");
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    emu.clear_faults();
}

#[tokio::test]
async fn oidc_credentials_from_the_emulated_sts_work_against_the_vpc_api() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06b3AiLCJhdWQiOiJzdHMuYWxpeXVuY3MuY29tIn0.sig",
    )
    .expect("token");
    let env: HashMap<String, String> = [
        (
            "ALIBABA_CLOUD_ROLE_ARN",
            "acs:ram::1234567890123456:role/alicloud-bgp-operator".to_owned(),
        ),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "acs:ram::1234567890123456:oidc-provider/ack-rrsa".to_owned(),
        ),
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            token_file.to_string_lossy().into_owned(),
        ),
        ("HOME", dir.path().to_string_lossy().into_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let chain = CredentialChain::from_env_map(env, Some(emu.endpoint())).expect("chain");
    let (creds, source) = chain.credentials_with_source().await.expect("sts creds");
    assert!(creds.is_sts());
    assert!(matches!(source, CredentialSource::OidcRoleArn { .. }));
    for version in [SignatureVersion::V1, SignatureVersion::V3] {
        client(&emu, version)
            .describe_bgp_peers(
                &creds,
                &DescribeBgpPeersRequest {
                    region_id: DEMO_REGION.into(),
                    page_size: Some(1),
                    ..Default::default()
                },
            )
            .await
            .expect("STS credentials accepted");
    }
}
