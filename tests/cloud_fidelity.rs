//! The client against the stricter emulator (issue 16, docs/cloud-fidelity.md): it does not
//! lean on leniency the real API lacks. Over HTTP, with both signature versions.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    CloudError, CreateBgpPeerRequest, CredentialChain, Credentials, DescribeBgpPeersRequest,
    ErrorClass, ModifyBgpPeerAttributeRequest, SignatureVersion, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{
    AccessKeyConfig, AccountConfig, DEMO_ACCESS_KEY_ID, DEMO_ACCOUNT_UID, DEMO_GROUP_V4,
    DEMO_REGION, TotalCountMode,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, Secret};
use common::emulator::{
    demo_credentials as demo, start_emulator as emulator, vpc_client as client,
};

fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig::demo();
    c.pending_delay = Duration::ZERO;
    c.modify_delay = Duration::ZERO;
    c.delete_delay = Duration::ZERO;
    c.accounts.push(AccountConfig {
        uid: "5555000011112222".to_owned(),
        access_keys: vec![AccessKeyConfig {
            id: "LTAIsecondaccount".to_owned(),
            secret: Secret::new("second-secret"),
            user: Some("bgp-ops".to_owned()),
        }],
        roles: vec!["acs:ram::5555000011112222:role/bgp-operator".to_owned()],
    });
    c
}

#[tokio::test]
async fn caller_identity_of_two_accounts_and_an_assumed_role() {
    let emu = emulator(config()).await;
    for version in [SignatureVersion::V3, SignatureVersion::V1] {
        let vpc = client(&emu, version);
        let me = vpc.get_caller_identity(&demo()).await.expect("identity");
        assert_eq!(me.account_id, DEMO_ACCOUNT_UID);
        assert_eq!(me.arn, format!("acs:ram::{DEMO_ACCOUNT_UID}:root"));
        let other = vpc
            .get_caller_identity(&Credentials::new(
                "LTAIsecondaccount",
                "second-secret",
                None,
            ))
            .await
            .expect("identity");
        assert_eq!(other.account_id, "5555000011112222");
        assert_eq!(other.arn, "acs:ram::5555000011112222:user/bgp-ops");
        assert!(!other.user_id.is_empty());
    }
    // STS credentials (AssumeRoleWithOIDC through the credential chain): the role's account.
    let dir = std::env::temp_dir().join(format!("abo-fidelity-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.sig").unwrap();
    let env: HashMap<String, String> = [
        (
            "ALIBABA_CLOUD_ROLE_ARN",
            "acs:ram::5555000011112222:role/bgp-operator",
        ),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "acs:ram::5555000011112222:oidc-provider/ack",
        ),
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
        ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "op-session"),
        ("HOME", dir.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let chain = CredentialChain::from_env_map(env, Some(emu.endpoint())).expect("chain");
    let sts = chain.credentials().await.expect("STS credentials");
    assert!(sts.is_sts());
    let role = client(&emu, SignatureVersion::V3)
        .get_caller_identity(&sts)
        .await
        .expect("identity");
    assert_eq!(role.account_id, "5555000011112222");
    assert_eq!(
        role.arn,
        "acs:ram::5555000011112222:assumed-role/bgp-operator/op-session"
    );
    // A wrong secret is a credentials error, like any call.
    let err = client(&emu, SignatureVersion::V3)
        .get_caller_identity(&Credentials::new(DEMO_ACCESS_KEY_ID, "wrong", None))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Credentials, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

async fn fill_group(vpc: &VpcClient, n: usize) {
    for i in 0..n {
        vpc.create_bgp_peer(
            &demo(),
            &CreateBgpPeerRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: DEMO_GROUP_V4.into(),
                peer_ip_address: Some(format!("10.0.{}.{}", 20 + i / 200, i % 200 + 1)),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    }
}

#[tokio::test]
async fn every_peer_is_listed_whatever_total_count_counts() {
    for mode in [TotalCountMode::Total, TotalCountMode::Page] {
        let mut c = config();
        // 120 peers in one group: more pages than the documented 8 per VBR allows; the quota is
        // lifted for this paging test only.
        c.vbrs[0].peer_quota = 200;
        c.total_count = mode;
        let emu = emulator(c).await;
        let vpc = client(&emu, SignatureVersion::V3);
        fill_group(&vpc, 120).await;
        let req = DescribeBgpPeersRequest {
            region_id: DEMO_REGION.into(),
            bgp_group_id: Some(DEMO_GROUP_V4.into()),
            ..Default::default()
        };
        let listing = vpc.list_bgp_peers(&demo(), &req).await.expect("listing");
        assert_eq!(listing.peers.len(), 120, "{mode:?}");
        assert_eq!(listing.pages, 3, "{mode:?}");
        // Only a TotalCount that proves to count the whole listing makes it consistent.
        assert_eq!(
            listing.consistent,
            mode == TotalCountMode::Total,
            "{mode:?}"
        );
        let all = vpc
            .describe_all_bgp_peers(&demo(), &req)
            .await
            .expect("all");
        assert_eq!(all.len(), 120, "{mode:?}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn exactly_one_full_page_is_walked_to_its_end_in_page_mode() {
    let mut c = config();
    c.vbrs[0].peer_quota = 100;
    c.total_count = TotalCountMode::Page;
    let emu = emulator(c).await;
    let vpc = client(&emu, SignatureVersion::V1);
    fill_group(&vpc, 100).await;
    let req = DescribeBgpPeersRequest {
        region_id: DEMO_REGION.into(),
        bgp_group_id: Some(DEMO_GROUP_V4.into()),
        ..Default::default()
    };
    let listing = vpc.list_bgp_peers(&demo(), &req).await.expect("listing");
    // Page 1 says TotalCount 50 with 50 peers: a client trusting it would stop there.
    assert_eq!((listing.peers.len(), listing.pages), (100, 3));
    assert!(!listing.consistent);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_carry_the_retry_after_hint() {
    let mut c = config();
    c.qps_per_key = Some(1);
    c.throttle_retry_after = Some(Duration::from_millis(1500));
    let emu = emulator(c).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let req = DescribeBgpPeersRequest {
        region_id: DEMO_REGION.into(),
        ..Default::default()
    };
    vpc.describe_bgp_peers(&demo(), &req).await.expect("first");
    let err = vpc.describe_bgp_peers(&demo(), &req).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    let CloudError::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, "Throttling.User");
    emu.shutdown().await;
}

#[tokio::test]
async fn modify_states_bfd_every_time() {
    let emu = emulator(config()).await;
    let vpc = client(&emu, SignatureVersion::V3);
    let id = vpc
        .create_bgp_peer(
            &demo(),
            &CreateBgpPeerRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: DEMO_GROUP_V4.into(),
                peer_ip_address: Some("10.0.30.2".into()),
                // No hop count: the client sends the documented default 255, which the
                // emulator (like the API) requires with BFD.
                enable_bfd: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create")
        .bgp_peer_id;
    let peer = emu.peer(&id).unwrap();
    assert!(peer.enable_bfd && peer.bfd_multi_hop == 255);
    // Change only the IP, keeping BFD on with its hop count.
    vpc.modify_bgp_peer_attribute(
        &demo(),
        &ModifyBgpPeerAttributeRequest {
            region_id: DEMO_REGION.into(),
            bgp_peer_id: id.clone(),
            peer_ip_address: Some("10.0.30.3".into()),
            enable_bfd: true,
            bfd_multi_hop: Some(2),
            ..Default::default()
        },
    )
    .await
    .expect("modify");
    let peer = emu.peer(&id).unwrap();
    assert_eq!(
        (
            peer.peer_ip_address.as_str(),
            peer.enable_bfd,
            peer.bfd_multi_hop
        ),
        ("10.0.30.3", true, 2)
    );
    emu.shutdown().await;
}
