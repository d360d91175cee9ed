//! The emulator's gateway over real HTTP: V1 and V3 signatures hand-made by the tests' own
//! signer (`tests/common/signer.rs`, independent of both `src` signers), the real gateway's
//! signature and format errors, STS credentials and GetCallerIdentity.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::emulator::Secret;
use alicloud_bgp_operator::emulator::config::{DEMO_GROUP_V4, DEMO_REGION};
use common::emulator::*;
use common::signer::{enc, utc_now};

#[tokio::test]
async fn v1_hand_signed_in_query_form_body_and_get() {
    let (emu, api) = emulator(instant_config()).await;
    let creds = Creds::demo();
    let json = Tweaks {
        format: Some("json"),
        ..Tweaks::default()
    };
    // A ClientToken with characters that canonicalisation must get right.
    let create = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.0.2"),
        ("ClientToken", "a b*c~d+e/é"),
        ("EnableBfd", "True"),
        ("BfdMultiHop", "3"),
    ];
    let r = api
        .v1_with(
            &creds,
            V1Style::PostQuery,
            "CreateBgpPeer",
            &create,
            json.clone(),
        )
        .await;
    let id = r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned();
    let request_id = r.json["RequestId"].as_str().unwrap();
    assert_eq!(request_id, request_id.to_ascii_uppercase());
    assert!(uuid::Uuid::parse_str(request_id).is_ok());

    // pop-core style: everything in a form body, `true` lower-case; same token → same peer.
    let mut lower = create;
    lower[4] = ("EnableBfd", "true");
    let r = api
        .v1_with(
            &creds,
            V1Style::PostForm,
            "CreateBgpPeer",
            &lower,
            json.clone(),
        )
        .await;
    assert_eq!(r.assert_ok()["BgpPeerId"], id.as_str());

    // GET without Format: XML, the documented default.
    let r = api
        .v1_with(
            &creds,
            V1Style::Get,
            "DescribeBgpPeers",
            &[("RegionId", DEMO_REGION)],
            Tweaks::default(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.starts_with("<?xml") && r.text.contains("<DescribeBgpPeersResponse>"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("<BgpPeer><AdvertisedRouteCount>0</AdvertisedRouteCount>")
    );
    assert!(
        r.text.contains(&format!("<BgpPeerId>{id}</BgpPeerId>")),
        "{}",
        r.text
    );
    assert!(r.text.contains("<TotalCount>1</TotalCount>"), "{}", r.text);

    let peers = emu.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].client_token.as_deref(), Some("a b*c~d+e/é"));
    assert!(peers[0].enable_bfd);
    assert_eq!(peers[0].bfd_multi_hop, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn v3_hand_signed_with_hard_characters() {
    let (emu, api) = emulator(instant_config()).await;
    let creds = Creds::demo();
    let create = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.0.3"),
        ("ClientToken", "a b*c~d+e/é v3"),
        ("EnableBfd", "true"),
        ("BfdMultiHop", "1"),
    ];
    let r = api.v3(&creds, "CreateBgpPeer", &create).await;
    let id = r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("bgp-") && id.len() == 24, "{id}");
    let r = api
        .v3(&creds, "DescribeBgpPeers", &[("RegionId", DEMO_REGION)])
        .await;
    assert_eq!(peer_ids(r.assert_ok()), [id]);
    // A V3 error is JSON by default.
    let r = api
        .v3(&creds, "DescribeBgpPeers", &[("RegionId", "cn-nowhere")])
        .await;
    r.assert_error(404, "InvalidRegionId.NotFound");
    emu.shutdown().await;
}

#[tokio::test]
async fn signature_errors_as_the_real_gateway() {
    let (emu, api) = emulator(instant_config()).await;
    let creds = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];

    // Wrong secret: 400 SignatureDoesNotMatch quoting the server's string to sign.
    for v3 in [false, true] {
        let tweaks = Tweaks {
            sign_secret: Some("wrong".to_owned()),
            format: Some("JSON"),
            ..Tweaks::default()
        };
        let r = if v3 {
            api.v3_with(&creds, "DescribeBgpPeers", &list, tweaks).await
        } else {
            api.v1_with(
                &creds,
                V1Style::PostQuery,
                "DescribeBgpPeers",
                &list,
                tweaks,
            )
            .await
        };
        r.assert_error(400, "SignatureDoesNotMatch");
        let message = r.json["Message"].as_str().unwrap();
        // V1 has the V1 gateway's wording, V3 the V3 one; both quote the string to sign.
        let wording = if v3 {
            "Specified signature does not match our calculation. server string to sign is:"
        } else {
            "Specified signature is not matched with our calculation. server string to sign is:"
        };
        assert!(message.starts_with(wording), "{message}");
        let expected_prefix = if v3 {
            "ACS3-HMAC-SHA256\n"
        } else {
            "POST&%2F&AccessKeyId%3D"
        };
        assert!(message.contains(expected_prefix), "{message}");
        // The error body of the real API.
        let request_id = r.json["RequestId"].as_str().unwrap();
        assert_eq!(r.json["HostId"], api.host.as_str());
        assert_eq!(
            r.json["Recommend"],
            format!(
                "https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch&product=Vpc&requestId={request_id}"
            )
        );
    }

    // Unknown key: 404.
    let r = api
        .v1(&Creds::new("LTAInotakey", "x"), "DescribeBgpPeers", &list)
        .await;
    r.assert_error(404, "InvalidAccessKeyId.NotFound");
    assert_eq!(r.json["Message"], "Specified access key is not found.");

    // Timestamps outside the 15-minute window, both ways; malformed.
    for ts in ["2016-02-23T12:46:24Z", "2099-01-01T00:00:00Z"] {
        let tweaks = Tweaks {
            timestamp: Some(ts.to_owned()),
            format: Some("JSON"),
            ..Tweaks::default()
        };
        api.v1_with(
            &creds,
            V1Style::PostQuery,
            "DescribeBgpPeers",
            &list,
            tweaks.clone(),
        )
        .await
        .assert_error(400, "InvalidTimeStamp.Expired");
        api.v3_with(&creds, "DescribeBgpPeers", &list, tweaks)
            .await
            .assert_error(400, "InvalidTimeStamp.Expired");
    }
    let tweaks = Tweaks {
        timestamp: Some("yesterday".to_owned()),
        format: Some("JSON"),
        ..Tweaks::default()
    };
    api.v1_with(
        &creds,
        V1Style::PostQuery,
        "DescribeBgpPeers",
        &list,
        tweaks,
    )
    .await
    .assert_error(400, "InvalidTimeStamp.Format");

    // A nonce is refused the second time (V1 and V3).
    let tweaks = Tweaks {
        nonce: Some("fixed-nonce-1".to_owned()),
        format: Some("JSON"),
        ..Tweaks::default()
    };
    api.v1_with(
        &creds,
        V1Style::PostQuery,
        "DescribeBgpPeers",
        &list,
        tweaks.clone(),
    )
    .await
    .assert_ok();
    api.v1_with(
        &creds,
        V1Style::PostQuery,
        "DescribeBgpPeers",
        &list,
        tweaks,
    )
    .await
    .assert_error(400, "SignatureNonceUsed");
    let tweaks = Tweaks {
        nonce: Some("fixed-nonce-3".to_owned()),
        ..Tweaks::default()
    };
    api.v3_with(&creds, "DescribeBgpPeers", &list, tweaks.clone())
        .await
        .assert_ok();
    api.v3_with(&creds, "DescribeBgpPeers", &list, tweaks)
        .await
        .assert_error(400, "SignatureNonceUsed");

    // Unknown action and wrong version.
    api.v1(&creds, "DescribeRegions", &list)
        .await
        .assert_error(404, "InvalidAction.NotFound");
    let tweaks = Tweaks {
        version: Some("2014-05-26"),
        format: Some("JSON"),
        ..Tweaks::default()
    };
    api.v1_with(
        &creds,
        V1Style::PostQuery,
        "DescribeBgpPeers",
        &list,
        tweaks,
    )
    .await
    .assert_error(400, "InvalidVersion");

    // Nothing of the above touched the state; every call was counted.
    assert!(emu.peers().is_empty());
    let counters = emu.counters();
    assert_eq!(
        counters.count("DescribeBgpPeers", "SignatureDoesNotMatch"),
        2
    );
    assert_eq!(counters.count("DescribeBgpPeers", "SignatureNonceUsed"), 2);
    assert_eq!(
        counters.count("DescribeRegions", "InvalidAction.NotFound"),
        1
    );
    assert_eq!(counters.by_access_key["LTAInotakey"].total, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn xml_errors_and_unsigned_requests() {
    let (emu, api) = emulator(instant_config()).await;
    // XML error body (V1 without Format).
    let r = api
        .v1_with(
            &Creds::demo(),
            V1Style::Get,
            "DescribeBgpPeers",
            &[("RegionId", "cn-nowhere")],
            Tweaks::default(),
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("<Error><RequestId>"), "{}", r.text);
    assert!(
        r.text
            .contains("<Code>InvalidRegionId.NotFound</Code><Message>"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<Recommend>https://api.aliyun.com/troubleshoot?q=InvalidRegionId.NotFound&amp;product=Vpc&amp;requestId="), "{}", r.text);

    // A VPC call with no signature at all.
    let r = api
        .send(api.http.get(format!(
            "{}/?Action=DescribeBgpPeers&Version=2016-04-28&Format=JSON&RegionId=cn-shanghai",
            api.endpoint
        )))
        .await;
    r.assert_error(400, "IncompleteSignature");
    // Only GET and POST.
    let r = api
        .send(api.http.put(format!(
            "{}/?Action=DescribeBgpPeers&Format=JSON",
            api.endpoint
        )))
        .await;
    r.assert_error(400, "UnsupportedHTTPMethod");
    emu.shutdown().await;
}

#[tokio::test]
async fn sts_credentials_authenticate_vpc_calls() {
    let mut config = instant_config();
    config.timestamp_window = Duration::from_secs(3 * 3600);
    let (emu, api) = emulator(config).await;
    let role = "acs:ram::1234567890123456:role/alicloud-bgp-operator";

    // AssumeRoleWithOIDC: unsigned, form body, as the credentials library sends it.
    let form = format!(
        "Action=AssumeRoleWithOIDC&Version=2015-04-01&Format=JSON&Timestamp={}&RoleArn={}&OIDCProviderArn={}&OIDCToken=header.e30.sig&RoleSessionName=op&DurationSeconds=3600",
        enc(&utc_now()),
        enc(role),
        enc("acs:ram::1234567890123456:oidc-provider/ack-rrsa")
    );
    let r = api
        .send(
            api.http
                .post(format!("{}/", api.endpoint))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone()),
        )
        .await;
    let body = r.assert_ok();
    let creds = &body["Credentials"];
    let sts = Creds {
        id: creds["AccessKeyId"].as_str().unwrap().to_owned(),
        secret: creds["AccessKeySecret"].as_str().unwrap().to_owned(),
        token: Some(creds["SecurityToken"].as_str().unwrap().to_owned()),
    };
    assert!(sts.id.starts_with("STS."));
    assert!(creds["Expiration"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["AssumedRoleUser"]["Arn"], format!("{role}/op"));

    // An empty token file content is refused.
    let empty = form.replace("OIDCToken=header.e30.sig", "OIDCToken=");
    let r = api
        .send(
            api.http
                .post(format!("{}/", api.endpoint))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(empty),
        )
        .await;
    r.assert_error(400, "MissingOIDCToken");
    assert!(
        r.json["Recommend"]
            .as_str()
            .unwrap()
            .contains("product=Sts")
    );

    // The STS key signs VPC calls in V1 (SecurityToken) and V3 (x-acs-security-token).
    let id = {
        let r = api
            .v1(
                &sts,
                "CreateBgpPeer",
                &[
                    ("RegionId", DEMO_REGION),
                    ("BgpGroupId", DEMO_GROUP_V4),
                    ("PeerIpAddress", "10.0.0.2"),
                ],
            )
            .await;
        r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned()
    };
    let r = api
        .v3(&sts, "DescribeBgpPeers", &[("RegionId", DEMO_REGION)])
        .await;
    assert_eq!(peer_ids(r.assert_ok()), [id]);
    // Wrong or missing token.
    // A bad signature with an STS key: the message never shows the security token.
    let r = api
        .v1_with(
            &sts,
            V1Style::PostQuery,
            "DescribeBgpPeers",
            &[("RegionId", DEMO_REGION)],
            Tweaks {
                sign_secret: Some("wrong".to_owned()),
                format: Some("JSON"),
                ..Tweaks::default()
            },
        )
        .await;
    r.assert_error(400, "SignatureDoesNotMatch");
    let token = sts.token.clone().unwrap();
    assert!(!r.text.contains(&token[..20]), "{}", r.text);
    assert!(!r.text.contains(&enc(&enc(&token))[..20]), "{}", r.text);
    assert!(r.text.contains("SecurityToken%3D***"), "{}", r.text);
    let mut wrong = sts.clone();
    wrong.token = Some("CAISwrong".to_owned());
    api.v1(&wrong, "DescribeBgpPeers", &[("RegionId", DEMO_REGION)])
        .await
        .assert_error(400, "InvalidSecurityToken.MismatchWithAccessKey");
    wrong.token = None;
    api.v3(&wrong, "DescribeBgpPeers", &[("RegionId", DEMO_REGION)])
        .await
        .assert_error(400, "InvalidSecurityToken.MismatchWithAccessKey");

    // AssumeRole, signed by the long-term key.
    let r = api
        .v1_with(
            &Creds::demo(),
            V1Style::PostQuery,
            "AssumeRole",
            &[
                ("RoleArn", role),
                ("RoleSessionName", "s2"),
                ("DurationSeconds", "900"),
            ],
            Tweaks {
                version: Some("2015-04-01"),
                format: Some("JSON"),
                ..Tweaks::default()
            },
        )
        .await;
    assert!(
        r.assert_ok()["Credentials"]["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("STS.")
    );
    // VPC version on an STS action is refused.
    api.v1(
        &Creds::demo(),
        "AssumeRole",
        &[("RoleArn", role), ("RoleSessionName", "s3")],
    )
    .await
    .assert_error(400, "InvalidVersion");

    // Expired STS credentials: "not found".
    emu.advance_clock(Duration::from_secs(3601));
    api.v1(&sts, "DescribeBgpPeers", &[("RegionId", DEMO_REGION)])
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
    emu.shutdown().await;
}

#[tokio::test]
async fn v3_refuses_unsigned_required_headers() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];
    // A signer that drops x-acs-date (or host, or any x-acs-*) from SignedHeaders.
    for header in [
        "x-acs-date",
        "host",
        "x-acs-action",
        "x-acs-signature-nonce",
    ] {
        let r = api
            .v3_with(
                &c,
                "DescribeBgpPeers",
                &list,
                Tweaks {
                    unsigned: vec![header],
                    ..tweaks()
                },
            )
            .await;
        r.assert_error(400, "IncompleteSignature");
        let message = r.json["Message"].as_str().unwrap();
        assert!(
            message.starts_with("The request signature does not conform to Aliyun standards.")
                && message.contains(header),
            "{message}"
        );
    }
    // An extra x-acs-* header and content-type must be signed too.
    let extra = vec![
        ("x-acs-extra", "1"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    for unsigned in ["x-acs-extra", "content-type"] {
        api.v3_with(
            &c,
            "DescribeBgpPeers",
            &list,
            Tweaks {
                extra: extra.clone(),
                unsigned: vec![unsigned],
                ..tweaks()
            },
        )
        .await
        .assert_error(400, "IncompleteSignature");
    }
    api.v3_with(
        &c,
        "DescribeBgpPeers",
        &list,
        Tweaks {
            extra: extra.clone(),
            ..tweaks()
        },
    )
    .await
    .assert_ok();
    // x-acs-content-sha256 is required.
    api.v3_with(
        &c,
        "DescribeBgpPeers",
        &list,
        Tweaks {
            omit: vec!["x-acs-content-sha256"],
            ..tweaks()
        },
    )
    .await
    .assert_error(400, "IncompleteSignature");
    // A repeated header: values trimmed, sorted and joined with ','. A signer that joins them
    // as sent does not match.
    let repeated = vec![("x-acs-extra", " b"), ("x-acs-extra", "a ")];
    api.v3_with(
        &c,
        "DescribeBgpPeers",
        &list,
        Tweaks {
            extra: repeated.clone(),
            ..tweaks()
        },
    )
    .await
    .assert_ok();
    api.v3_with(
        &c,
        "DescribeBgpPeers",
        &list,
        Tweaks {
            extra: repeated,
            unsorted_repeats: true,
            ..tweaks()
        },
    )
    .await
    .assert_error(400, "SignatureDoesNotMatch");
    // Headers outside the rule (user-agent, accept) may stay unsigned.
    api.v3_with(
        &c,
        "DescribeBgpPeers",
        &list,
        Tweaks {
            extra: vec![("accept", "application/json")],
            unsigned: vec!["accept"],
            ..tweaks()
        },
    )
    .await
    .assert_ok();
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_can_be_incomplete_signature() {
    let mut config = instant_config();
    config.wrong_secret_incomplete = true;
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let bad = Tweaks {
        sign_secret: Some("wrong".to_owned()),
        format: Some("JSON"),
        ..tweaks()
    };
    let list = [("RegionId", DEMO_REGION)];
    let r = api
        .v1_with(
            &c,
            V1Style::PostQuery,
            "DescribeBgpPeers",
            &list,
            bad.clone(),
        )
        .await;
    r.assert_error(400, "IncompleteSignature");
    assert!(
        r.json["Message"]
            .as_str()
            .unwrap()
            .contains("server string to sign is:POST&%2F&"),
        "{}",
        r.text
    );
    // V3 keeps SignatureDoesNotMatch.
    api.v3_with(&c, "DescribeBgpPeers", &list, bad)
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    emu.shutdown().await;
}

#[tokio::test]
async fn get_caller_identity_names_the_account_of_the_key() {
    let mut config = instant_config();
    config
        .accounts
        .push(alicloud_bgp_operator::emulator::config::AccountConfig {
            uid: "777".to_owned(),
            access_keys: vec![alicloud_bgp_operator::emulator::config::AccessKeyConfig {
                id: "LTAIops".to_owned(),
                secret: Secret::new("ops-secret"),
                user: Some("ops".to_owned()),
            }],
            roles: Vec::new(),
        });
    let (emu, api) = emulator(config).await;
    let sts = Tweaks {
        version: Some("2015-04-01"),
        ..tweaks()
    };
    let r = api
        .v3_with(&Creds::demo(), "GetCallerIdentity", &[], sts.clone())
        .await;
    let body = r.assert_ok();
    assert_eq!(body["AccountId"], "1234567890123456");
    assert_eq!(body["Arn"], "acs:ram::1234567890123456:root");
    assert_eq!(body["IdentityType"], "Account");
    let r = api
        .v3_with(
            &Creds::new("LTAIops", "ops-secret"),
            "GetCallerIdentity",
            &[],
            sts,
        )
        .await;
    let body = r.assert_ok();
    assert_eq!(
        (
            body["AccountId"].as_str(),
            body["Arn"].as_str(),
            body["IdentityType"].as_str()
        ),
        (Some("777"), Some("acs:ram::777:user/ops"), Some("RAMUser"))
    );
    for field in ["RequestId", "UserId", "PrincipalId"] {
        assert!(
            body[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {body}"
        );
    }
    // Unsigned or badly signed: refused like any call.
    api.v3_with(
        &Creds::new("LTAIops", "wrong"),
        "GetCallerIdentity",
        &[],
        Tweaks {
            version: Some("2015-04-01"),
            ..tweaks()
        },
    )
    .await
    .assert_error(400, "SignatureDoesNotMatch");
    emu.shutdown().await;
}
