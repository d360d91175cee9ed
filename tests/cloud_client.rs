//! The VPC client against a real HTTP server (wiremock): wire shape, signatures (checked by an
//! independent verifier written here), response and error parsing, retries, paging, rate
//! limiting and the observer hook.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    CallObserver, ClientConfig, CloudError, CreateBgpPeerRequest, Credentials,
    DeleteBgpPeerRequest, DescribeBgpGroupsRequest, DescribeBgpPeersRequest, ErrorClass,
    ModifyBgpPeerAttributeRequest, RateLimitConfig, RetryConfig, SignatureVersion, VpcClient,
};
use common::mock::answer_in_turn;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const AK: &str = "LTAItestid";
const SECRET: &str = "test-secret-value";
const TOKEN: &str = "sts-token-value/with+odd=chars";

/// The two signature checks, made with the tests' own signer (`tests/common/signer.rs`, written
/// from the reference rules, not from the client's signer), to verify what the client sent.
mod verifier {
    use crate::common::signer::{
        canonical_query, sha256_hex, v1_signature, v3_canonical_request, v3_signature,
    };

    pub use crate::common::signer::decode_query;

    /// V1: recompute `Signature` from every other parameter.
    pub fn v1_expected(method: &str, raw_query: &str, secret: &str) -> (String, String) {
        let all = decode_query(raw_query);
        let sent = all
            .iter()
            .find(|(k, _)| k == "Signature")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rest: Vec<_> = all.into_iter().filter(|(k, _)| k != "Signature").collect();
        (sent, v1_signature(method, &canonical_query(rest), secret))
    }

    /// V3: rebuild the canonical request from the signed headers the client listed.
    /// Returns (sent signature, expected signature, hashed canonical request).
    pub fn v3_expected(
        method: &str,
        raw_query: &str,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        secret: &str,
    ) -> (String, String, String) {
        let auth = header("authorization").expect("authorization header");
        let rest = auth
            .strip_prefix("ACS3-HMAC-SHA256 ")
            .expect("ACS3-HMAC-SHA256 scheme");
        let mut signed_headers = "";
        let mut sent = "";
        for part in rest.split(',') {
            if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = v;
            }
            if let Some(v) = part.strip_prefix("Signature=") {
                sent = v;
            }
        }
        let canonical_headers: String = signed_headers
            .split(';')
            .map(|name| format!("{name}:{}\n", header(name).unwrap_or_default().trim()))
            .collect();
        let request = v3_canonical_request(
            method,
            &canonical_query(decode_query(raw_query)),
            &canonical_headers,
            signed_headers,
            &sha256_hex(body),
        );
        let (hashed, expected) = v3_signature(&request, secret);
        (sent.to_owned(), expected, hashed)
    }
}

/// The verifier itself must reproduce the published vectors, or it proves nothing.
#[test]
fn verifier_reproduces_published_vectors() {
    // V1 BGP vector (awkward characters).
    let q = "AccessKeyId=testid&Action=CreateBgpPeer&BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234\
             &ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&Format=JSON&PeerIpAddress=10.0.0.2\
             &RegionId=cn-shanghai&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             &SignatureVersion=1.0&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2016-04-28&Signature=x";
    let (_, expected) = verifier::v1_expected("POST", q, "testsecret");
    assert_eq!(expected, "BHRvu7OfRs7s6aPbrpijSyjCJR4=");
    // V3 BGP vector.
    let headers = [
        ("host", "vpc.cn-shanghai.aliyuncs.com"),
        ("x-acs-action", "CreateBgpPeer"),
        (
            "x-acs-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("x-acs-date", "2023-10-26T10:22:32Z"),
        ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
        ("x-acs-version", "2016-04-28"),
        (
            "authorization",
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=0",
        ),
    ];
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let (_, expected, hashed) = verifier::v3_expected(
        "POST",
        "BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&RegionId=cn-shanghai",
        &lookup,
        b"",
        "YourAccessKeySecret",
    );
    assert_eq!(
        hashed,
        "656faecb6b0054e92d1a9568cc688cc3f5d3d1acf710b46830cee4d34d38a88d"
    );
    assert_eq!(
        expected,
        "8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83"
    );
}

fn header_of(req: &Request) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        let values: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(","))
        }
    }
}

fn query_value(req: &Request, key: &str) -> Option<String> {
    verifier::decode_query(req.url.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn assert_v3_signed(req: &Request, secret: &str) {
    let (sent, expected, _) = verifier::v3_expected(
        req.method.as_str(),
        req.url.query().unwrap_or(""),
        &header_of(req),
        &req.body,
        secret,
    );
    assert_eq!(sent, expected, "V3 signature mismatch");
}

fn assert_v1_signed(req: &Request, secret: &str) {
    let (sent, expected) =
        verifier::v1_expected(req.method.as_str(), req.url.query().unwrap_or(""), secret);
    assert_eq!(sent, expected, "V1 signature mismatch");
}

fn fast_retry() -> RetryConfig {
    RetryConfig {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RetryConfig::default()
    }
}

fn client_for(server: &MockServer, version: SignatureVersion) -> VpcClient {
    VpcClient::new(ClientConfig {
        endpoint: Some(server.uri()),
        signature_version: version,
        retry: fast_retry(),
        rate_limit: None,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn creds() -> Credentials {
    Credentials::new(AK, SECRET, None)
}

fn sts_creds() -> Credentials {
    Credentials::new("STS.testid", SECRET, Some(TOKEN.to_owned()))
}

fn create_req(token: Option<&str>) -> CreateBgpPeerRequest {
    CreateBgpPeerRequest {
        region_id: "cn-shanghai".into(),
        bgp_group_id: "bgpg-wz9f62v4fbg1234".into(),
        peer_ip_address: Some("10.0.0.2".into()),
        enable_bfd: Some(true),
        bfd_multi_hop: Some(3),
        ip_version: Some("IPv4".into()),
        client_token: token.map(str::to_owned),
    }
}

fn api_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "RequestId": "REQ-ERR-1",
        "HostId": "vpc.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=Vpc"),
    }))
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

async fn setup() -> MockServer {
    alicloud_bgp_operator::install_crypto_provider();
    MockServer::start().await
}

#[tokio::test]
async fn v3_create_wire_shape_and_signature() {
    let server = setup().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-acs-action", "CreateBgpPeer"))
        .and(header("x-acs-version", "2016-04-28"))
        .and(header(
            "x-acs-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ))
        .and(query_param("RegionId", "cn-shanghai"))
        .and(query_param("BgpGroupId", "bgpg-wz9f62v4fbg1234"))
        .and(query_param("PeerIpAddress", "10.0.0.2"))
        .and(query_param("EnableBfd", "true"))
        .and(query_param("BfdMultiHop", "3"))
        .and(query_param("IpVersion", "IPv4"))
        .and(query_param("ClientToken", "a b*c~d+e/é"))
        .and(query_param_is_missing("Action"))
        .and(query_param_is_missing("Signature"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "0ED8D006-F706-4D23-88ED-E11ED28DCAC0",
            "BgpPeerId": "bgp-m5eoyp2mwegk8ce9v1234",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server, SignatureVersion::V3);
    let resp = client
        .create_bgp_peer(&creds(), &create_req(Some("a b*c~d+e/é")))
        .await
        .expect("create");
    assert_eq!(resp.bgp_peer_id, "bgp-m5eoyp2mwegk8ce9v1234");
    assert_eq!(resp.request_id, "0ED8D006-F706-4D23-88ED-E11ED28DCAC0");

    let reqs = server.received_requests().await.expect("recording");
    let req = &reqs[0];
    assert!(req.body.is_empty());
    let h = header_of(req);
    assert!(is_timestamp(&h("x-acs-date").unwrap_or_default()));
    assert!(h("x-acs-signature-nonce").is_some_and(|n| !n.is_empty()));
    assert_eq!(
        h("host").as_deref(),
        Some(server.address().to_string().as_str())
    );
    assert!(h("x-acs-security-token").is_none());
    let auth = h("authorization").unwrap_or_default();
    assert!(
        auth.starts_with(&format!(
            "ACS3-HMAC-SHA256 Credential={AK},SignedHeaders=host;x-acs-action;"
        )),
        "{auth}"
    );
    // The raw query is RFC 3986-encoded exactly as it was signed.
    assert!(
        req.url
            .query()
            .unwrap_or("")
            .contains("ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9"),
        "{:?}",
        req.url.query()
    );
    assert_v3_signed(req, SECRET);
}

#[tokio::test]
async fn v1_wire_shape_and_signature() {
    let server = setup().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("Action", "DescribeBgpPeers"))
        .and(query_param("Version", "2016-04-28"))
        .and(query_param("Format", "JSON"))
        .and(query_param("AccessKeyId", AK))
        .and(query_param("SignatureMethod", "HMAC-SHA1"))
        .and(query_param("SignatureVersion", "1.0"))
        .and(query_param("RegionId", "cn-beijing"))
        .and(query_param("BgpGroupId", "bgpg-1"))
        .and(query_param("RouterId", "vbr-1"))
        .and(query_param("IsDefault", "false"))
        .and(query_param("PageNumber", "2"))
        .and(query_param("PageSize", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "R", "TotalCount": 0, "PageNumber": 2, "PageSize": 5,
            "BgpPeers": {"BgpPeer": []}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server, SignatureVersion::V1);
    let page = client
        .describe_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-beijing".into(),
                bgp_group_id: Some("bgpg-1".into()),
                router_id: Some("vbr-1".into()),
                is_default: Some(false),
                page_number: Some(2),
                page_size: Some(5),
                ..Default::default()
            },
        )
        .await
        .expect("describe");
    assert_eq!(page.page_number, 2);
    assert!(page.peers.is_empty());
    let reqs = server.received_requests().await.expect("recording");
    let req = &reqs[0];
    assert!(is_timestamp(
        &query_value(req, "Timestamp").unwrap_or_default()
    ));
    assert!(query_value(req, "SignatureNonce").is_some_and(|n| n.len() >= 32));
    assert!(header_of(req)("authorization").is_none());
    assert_v1_signed(req, SECRET);
}

#[tokio::test]
async fn sts_token_travels_signed_in_both_versions() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "R"})))
        .mount(&server)
        .await;
    let req = DeleteBgpPeerRequest {
        region_id: "cn-shanghai".into(),
        bgp_peer_id: "bgp-1".into(),
        client_token: None,
    };
    let id = client_for(&server, SignatureVersion::V3)
        .delete_bgp_peer(&sts_creds(), &req)
        .await
        .expect("delete v3");
    assert_eq!(id.as_str(), "R");
    client_for(&server, SignatureVersion::V1)
        .delete_bgp_peer(&sts_creds(), &req)
        .await
        .expect("delete v1");
    let reqs = server.received_requests().await.expect("recording");
    let v3 = &reqs[0];
    let h = header_of(v3);
    assert_eq!(h("x-acs-security-token").as_deref(), Some(TOKEN));
    assert_eq!(h("x-acs-accesskey-id").as_deref(), Some("STS.testid"));
    assert!(
        h("authorization")
            .unwrap_or_default()
            .contains("x-acs-security-token")
    );
    assert_v3_signed(v3, SECRET);
    let v1 = &reqs[1];
    assert_eq!(query_value(v1, "SecurityToken").as_deref(), Some(TOKEN));
    assert_eq!(query_value(v1, "Action").as_deref(), Some("DeleteBgpPeer"));
    assert_v1_signed(v1, SECRET);
}

#[tokio::test]
async fn modify_sends_only_set_fields() {
    let server = setup().await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "ModifyBgpPeerAttribute"))
        .and(query_param("BgpPeerId", "bgp-1"))
        .and(query_param("EnableBfd", "false"))
        .and(query_param_is_missing("BfdMultiHop"))
        .and(query_param_is_missing("PeerIpAddress"))
        .and(query_param_is_missing("ClientToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "MOD-1"})))
        .expect(1)
        .mount(&server)
        .await;
    let id = client_for(&server, SignatureVersion::V3)
        .modify_bgp_peer_attribute(
            &creds(),
            &ModifyBgpPeerAttributeRequest {
                region_id: "cn-shanghai".into(),
                bgp_peer_id: "bgp-1".into(),
                enable_bfd: false,
                ..Default::default()
            },
        )
        .await
        .expect("modify");
    assert_eq!(id.as_str(), "MOD-1");
}

#[tokio::test]
async fn api_error_body_is_parsed_and_classified() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(400, "InvalidBgpGroup", "bgp group not exists"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .create_bgp_peer(&creds(), &create_req(Some("tok")))
        .await
        .expect_err("must fail");
    assert_eq!(err.code(), Some("InvalidBgpGroup"));
    assert_eq!(err.class(), ErrorClass::DependencyMissing);
    assert_eq!(err.request_id(), Some("REQ-ERR-1"));
    assert_eq!(err.retry_after(), None);
    let text = err.to_string();
    assert!(
        text.contains("InvalidBgpGroup")
            && text.contains("bgp group not exists")
            && text.contains("REQ-ERR-1"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_reports_retry_after_and_is_not_retried() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(
            api_error(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            )
            .insert_header("x-acs-retry-after", "1500"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .describe_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));

    // A huge hint is capped at 120 s.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"Code": "Throttling.Resource", "Message": "m"}))
                .insert_header("x-acs-retry-after", "900000")
                .insert_header("x-acs-request-id", "HDR-RID"),
        )
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .delete_bgp_peer(
            &creds(),
            &DeleteBgpPeerRequest {
                region_id: "cn-shanghai".into(),
                bgp_peer_id: "bgp-1".into(),
                client_token: Some("t".into()),
            },
        )
        .await
        .expect_err("must fail");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.request_id(), Some("HDR-RID"));
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
}

/// The client owns its rate behaviour: a throttled answer slows the limiter of that access
/// key, region and operation by itself (the controller no longer does it by hand), and only
/// that one: another region (with per-region budgets) and another operation keep their rate.
#[tokio::test]
async fn a_throttled_answer_slows_the_clients_own_limiter() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        ))
        .mount(&server)
        .await;
    let client = VpcClient::new(ClientConfig {
        endpoint: Some(server.uri()),
        retry: fast_retry(),
        rate_limit: Some(RateLimitConfig {
            qps: 20.0,
            burst: 20,
            read_share: 1.0,
            scope: alicloud_bgp_operator::cloud::ratelimit::QuotaScope::Region,
            ..RateLimitConfig::default()
        }),
        ..ClientConfig::default()
    })
    .expect("client");
    const DESCRIBE: &str = "DescribeBgpPeers";
    assert_eq!(client.current_rate(AK, "cn-shanghai", DESCRIBE), Some(20.0));
    let err = client
        .describe_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("throttled");
    assert_eq!(err.class(), ErrorClass::Throttled);
    let rate = client
        .current_rate(AK, "cn-shanghai", DESCRIBE)
        .unwrap_or_default();
    assert!((10.0..10.5).contains(&rate), "halved: {rate}");
    assert_eq!(
        client.current_rate(AK, "cn-beijing", DESCRIBE),
        Some(20.0),
        "another region keeps its rate"
    );
    assert_eq!(
        client.current_rate(AK, "cn-shanghai", "CreateBgpPeer"),
        Some(20.0),
        "another operation keeps its rate"
    );
}

#[tokio::test]
async fn mutating_call_without_token_is_never_retried() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(503, "ServiceUnavailable", "try later"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .create_bgp_peer(&creds(), &create_req(None))
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.http_status(), Some(503));
}

#[tokio::test]
async fn mutating_call_with_token_retries_5xx_with_same_token_and_fresh_nonce() {
    let server = setup().await;
    answer_in_turn(
        &server,
        [api_error(500, "InternalError", "oops")],
        ResponseTemplate::new(200).set_body_json(json!({"RequestId": "R2", "BgpPeerId": "bgp-2"})),
    )
    .await;
    let resp = client_for(&server, SignatureVersion::V3)
        .create_bgp_peer(&creds(), &create_req(Some("uid-token-1")))
        .await
        .expect("second attempt succeeds");
    assert_eq!(resp.bgp_peer_id, "bgp-2");
    let reqs = server.received_requests().await.expect("recording");
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        query_value(&reqs[0], "ClientToken").as_deref(),
        Some("uid-token-1")
    );
    assert_eq!(
        query_value(&reqs[1], "ClientToken").as_deref(),
        Some("uid-token-1")
    );
    let nonce = |r: &Request| header_of(r)("x-acs-signature-nonce");
    assert_ne!(nonce(&reqs[0]), nonce(&reqs[1]));
    for r in &reqs {
        assert_v3_signed(r, SECRET);
    }
}

#[tokio::test]
async fn mutating_retries_stop_after_two_extra_attempts() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(502, "UnknownError", "bad gateway"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V1)
        .delete_bgp_peer(
            &creds(),
            &DeleteBgpPeerRequest {
                region_id: "cn-shanghai".into(),
                bgp_peer_id: "bgp-1".into(),
                client_token: Some("del-token".into()),
            },
        )
        .await
        .expect_err("must fail");
    assert_eq!(err.code(), Some("UnknownError"));
    let reqs = server.received_requests().await.expect("recording");
    let nonces: std::collections::HashSet<_> = reqs
        .iter()
        .filter_map(|r| query_value(r, "SignatureNonce"))
        .collect();
    assert_eq!(nonces.len(), 3, "every attempt has a fresh nonce");
}

#[tokio::test]
async fn mutating_call_with_token_does_not_retry_4xx() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(400, "SignatureNonceUsed", "used"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .create_bgp_peer(&creds(), &create_req(Some("t")))
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn describe_retries_transient_failures() {
    let server = setup().await;
    answer_in_turn(
        &server,
        [
            ResponseTemplate::new(502).set_body_string("<html><body>Bad Gateway</body></html>"),
            api_error(400, "SignatureNonceUsed", "used"),
        ],
        ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "R", "TotalCount": "1", "PageNumber": "1", "PageSize": "10",
            "BgpPeers": {"BgpPeer": [{"BgpPeerId": "bgp-1", "BgpGroupId": "bgpg-1", "Status": "Available"}]}
        })),
    )
    .await;
    let page = client_for(&server, SignatureVersion::V3)
        .describe_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        )
        .await
        .expect("third attempt succeeds");
    assert_eq!(page.peers[0].bgp_peer_id, "bgp-1");
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));
}

#[tokio::test]
async fn describe_does_not_retry_terminal_errors_and_non_json_5xx_is_transient() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(
            404,
            "InvalidRegionId.NotFound",
            "Specified value of \"regionId\" is not supported.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let describe = DescribeBgpPeersRequest {
        region_id: "xx-nowhere-1".into(),
        ..Default::default()
    };
    let err = client_for(&server, SignatureVersion::V3)
        .describe_bgp_peers(&creds(), &describe)
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::DependencyMissing);

    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .describe_bgp_peers(&creds(), &describe)
        .await
        .expect_err("must fail");
    assert_eq!(err.code(), Some("HttpStatus503"));
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.to_string().contains("upstream down"));
}

#[tokio::test]
async fn timeouts_are_transport_errors_and_token_calls_retry_them() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let client = VpcClient::new(ClientConfig {
        endpoint: Some(server.uri()),
        request_timeout: Duration::from_millis(200),
        retry: fast_retry(),
        rate_limit: None,
        ..ClientConfig::default()
    })
    .expect("client");
    let err = client
        .create_bgp_peer(&sts_creds(), &create_req(Some("t1")))
        .await
        .expect_err("must time out");
    match &err {
        CloudError::Transport {
            timeout, message, ..
        } => {
            assert!(*timeout, "{message}");
            assert!(!message.contains(TOKEN), "{message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));

    // Without a token: one attempt only.
    let before = server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    client
        .create_bgp_peer(&creds(), &create_req(None))
        .await
        .expect_err("must time out");
    assert_eq!(
        server.received_requests().await.map(|r| r.len()),
        Some(before + 1)
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_without_secrets() {
    alicloud_bgp_operator::install_crypto_provider();
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let client = VpcClient::new(ClientConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        signature_version: SignatureVersion::V1,
        retry: fast_retry(),
        rate_limit: None,
        ..ClientConfig::default()
    })
    .expect("client");
    let err = client
        .describe_bgp_peers(
            &sts_creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, CloudError::Transport { timeout: false, .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains(TOKEN) && !text.contains("sts-token-value"),
            "{text}"
        );
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("Signature="), "{text}");
    }
}

#[tokio::test]
async fn server_echo_of_string_to_sign_is_scrubbed() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(api_error(
            400,
            "SignatureDoesNotMatch",
            &format!("Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3D{TOKEN}"),
        ))
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V1)
        .describe_bgp_peers(
            &sts_creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Credentials);
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("sts-token-value"), "{text}");
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    }
}

fn peer_json(i: usize) -> serde_json::Value {
    json!({
        "BgpPeerId": format!("bgp-{i:03}"), "BgpGroupId": "bgpg-1", "PeerIpAddress": format!("10.0.{}.{}", i / 200, i % 200 + 1),
        "Status": "Available", "BgpStatus": "Established", "LocalAsn": "45104", "PeerAsn": 65000 + i,
        "EnableBfd": if i.is_multiple_of(2) { json!("True") } else { json!(false) }, "BfdMultiHop": format!("{}", i % 255 + 1),
        "AuthKey": "never-decoded", "IsFake": false, "RouterId": "vbr-1", "RegionId": "cn-shanghai"
    })
}

#[tokio::test]
async fn describe_all_walks_every_page_with_page_size_50() {
    let server = setup().await;
    let total = 120usize;
    for page in 1..=3usize {
        let start = (page - 1) * 50;
        let end = (start + 50).min(total);
        let peers: Vec<_> = (start..end).map(peer_json).collect();
        Mock::given(method("POST"))
            .and(header("x-acs-action", "DescribeBgpPeers"))
            .and(query_param("PageNumber", page.to_string()))
            .and(query_param("PageSize", "50"))
            .and(query_param("BgpGroupId", "bgpg-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "RequestId": format!("R{page}"), "TotalCount": total, "PageNumber": page, "PageSize": 50,
                "BgpPeers": {"BgpPeer": peers}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let peers = client_for(&server, SignatureVersion::V3)
        .describe_all_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                bgp_group_id: Some("bgpg-1".into()),
                page_size: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("all pages");
    assert_eq!(peers.len(), total);
    assert_eq!(peers[0].bgp_peer_id, "bgp-000");
    assert_eq!(peers[119].bgp_peer_id, "bgp-119");
    assert_eq!(peers[2].enable_bfd, Some(true));
    assert_eq!(peers[3].enable_bfd, Some(false));
    assert_eq!(peers[3].bfd_multi_hop, Some(4));
    assert_eq!(peers[7].peer_asn, Some(65007));
    assert_eq!(peers[7].local_asn, Some(45104));
}

#[tokio::test]
async fn describe_bgp_groups_all_pages() {
    let server = setup().await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeBgpGroups"))
        .and(query_param("PageNumber", "1"))
        .and(query_param("RouterId", "vbr-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "RequestId": "G", "TotalCount": "2", "PageNumber": "1", "PageSize": "50",
            "BgpGroups": {"BgpGroup": [
                {"BgpGroupId": "bgpg-1", "AuthKey": "k", "IsFake": "true", "LocalAsn": "45104", "PeerAsn": "65001",
                 "IpVersion": "IPv4", "Status": "Available", "RouterId": "vbr-1", "RegionId": "cn-shanghai", "Name": "g1"},
                {"BgpGroupId": "bgpg-2", "IsFake": "false", "LocalAsn": "64512", "PeerAsn": "4200000000",
                 "IpVersion": "IPv6", "Status": "Pending", "RouterId": "vbr-1", "RegionId": "cn-shanghai"}
            ]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let groups = client_for(&server, SignatureVersion::V3)
        .describe_all_bgp_groups(
            &creds(),
            &DescribeBgpGroupsRequest {
                region_id: "cn-shanghai".into(),
                router_id: Some("vbr-1".into()),
                ..Default::default()
            },
        )
        .await
        .expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].is_fake, Some(true));
    assert_eq!(groups[1].peer_asn, Some(4_200_000_000));
    assert_eq!(groups[1].ip_version.as_deref(), Some("IPv6"));
    assert_eq!(groups[0].name.as_deref(), Some("g1"));
}

#[tokio::test]
async fn bad_json_on_success_is_a_decode_error() {
    let server = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"RequestId\": \"R\""))
        .mount(&server)
        .await;
    let err = client_for(&server, SignatureVersion::V3)
        .create_bgp_peer(&creds(), &create_req(None))
        .await
        .expect_err("must fail");
    assert!(matches!(err, CloudError::Decode { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unknown);
}

#[tokio::test]
async fn invalid_requests_are_rejected_before_sending() {
    let server = setup().await;
    let client = client_for(&server, SignatureVersion::V3);
    let err = client
        .describe_bgp_peers(
            &creds(),
            &DescribeBgpPeersRequest {
                region_id: "cn-shanghai".into(),
                page_size: Some(51),
                ..Default::default()
            },
        )
        .await
        .expect_err("page size 51");
    assert!(matches!(err, CloudError::InvalidRequest { .. }));
    let err = client
        .create_bgp_peer(&creds(), &create_req(Some(&"x".repeat(65))))
        .await
        .expect_err("token too long");
    assert_eq!(err.class(), ErrorClass::Terminal);
    let mut req = create_req(None);
    req.region_id = "evil.example.com/".into();
    assert!(client.create_bgp_peer(&creds(), &req).await.is_err());
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(0));
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String)>>,
    waits: Mutex<Vec<Duration>>,
}

impl CallObserver for Recorder {
    fn on_call(&self, action: &str, outcome: &str, _elapsed: Duration) {
        self.calls
            .lock()
            .expect("lock")
            .push((action.to_owned(), outcome.to_owned()));
    }
    fn on_rate_limit_wait(&self, waited: Duration) {
        self.waits.lock().expect("lock").push(waited);
    }
}

#[tokio::test]
async fn observer_sees_every_attempt_and_rate_limit_waits() {
    let server = setup().await;
    answer_in_turn(
        &server,
        [api_error(500, "InternalError", "x")],
        ResponseTemplate::new(200).set_body_json(json!({"RequestId": "R", "BgpPeerId": "bgp-1"})),
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let client = VpcClient::new(ClientConfig {
        endpoint: Some(server.uri()),
        retry: fast_retry(),
        rate_limit: Some(RateLimitConfig {
            qps: 20.0,
            burst: 1,
            ..RateLimitConfig::default()
        }),
        observer: Some(recorder.clone()),
        ..ClientConfig::default()
    })
    .expect("client");
    client
        .create_bgp_peer(&creds(), &create_req(Some("tok")))
        .await
        .expect("create");
    // A clone shares the limiter: back-to-back calls must wait.
    let clone = client.clone();
    clone
        .create_bgp_peer(&creds(), &create_req(Some("tok")))
        .await
        .expect("create");
    let calls = recorder.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![
            ("CreateBgpPeer".to_owned(), "InternalError".to_owned()),
            ("CreateBgpPeer".to_owned(), "Success".to_owned()),
            ("CreateBgpPeer".to_owned(), "Success".to_owned()),
        ]
    );
    assert!(!recorder.waits.lock().expect("lock").is_empty());

    // slow_down halves the bucket shared by the clones.
    const CREATE: &str = "CreateBgpPeer";
    assert_eq!(client.current_rate(AK, "cn-shanghai", CREATE), Some(20.0));
    clone.slow_down(AK, "cn-shanghai", CREATE);
    let rate = client
        .current_rate(AK, "cn-shanghai", CREATE)
        .unwrap_or_default();
    assert!((10.0..10.5).contains(&rate), "{rate}");
}
