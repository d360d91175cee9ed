//! The VPC API emulator over real HTTP, driven by a small request signer written here from
//! the published algorithm (independent of both `src/emulator/sign.rs` and `src/cloud`).

use std::collections::BTreeMap;
use std::time::Duration;

use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_GROUP_V4, DEMO_GROUP_V6, DEMO_REGION,
    DEMO_VBR, VbrConfig,
};
use alicloud_bgp_operator::emulator::{
    EmulatorConfig, EmulatorHandle, Fault, PeerChange, Secret, Status, start,
};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sha2::Digest as _;

// ---------------------------------------------------------------------------------------------
// A test client that signs requests itself.
// ---------------------------------------------------------------------------------------------

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn canonical(params: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn utc_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An access key (and STS token).
#[derive(Clone)]
struct Creds {
    id: String,
    secret: String,
    token: Option<String>,
}

impl Creds {
    fn new(id: &str, secret: &str) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token: None,
        }
    }

    fn demo() -> Self {
        Self::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
    }
}

/// How a V1 request travels.
#[derive(Clone, Copy, PartialEq)]
enum V1Style {
    /// POST, everything in the query (Python SDKs).
    PostQuery,
    /// POST, everything in a form body (Node pop-core).
    PostForm,
    /// GET with a query.
    Get,
}

/// Knobs to produce broken requests.
#[derive(Clone, Default)]
struct Tweaks {
    timestamp: Option<String>,
    nonce: Option<String>,
    format: Option<&'static str>,
    version: Option<&'static str>,
    /// Sign with this secret instead of the key's.
    sign_secret: Option<String>,
    /// V3: headers sent but left out of SignedHeaders (a broken signer).
    unsigned: Vec<&'static str>,
    /// V3: headers not sent at all.
    omit: Vec<&'static str>,
    /// V3: extra headers (a name may repeat), signed unless listed in `unsigned`.
    extra: Vec<(&'static str, &'static str)>,
    /// V3: join repeated header values in the order sent, untrimmed (a broken signer).
    unsorted_repeats: bool,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    text: String,
    json: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or("")
    }

    fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.json
    }

    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
    }
}

struct Api {
    http: reqwest::Client,
    endpoint: String,
    host: String,
}

impl Api {
    fn new(emu: &EmulatorHandle) -> Self {
        Self::at(&emu.endpoint())
    }

    fn at(endpoint: &str) -> Self {
        alicloud_bgp_operator::install_crypto_provider();
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
            host: endpoint.trim_start_matches("http://").to_owned(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request reaches the emulator");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, text, json }
    }

    /// A V1 (HMAC-SHA1) call.
    async fn v1_with(
        &self,
        creds: &Creds,
        style: V1Style,
        action: &str,
        params: &[(&str, &str)],
        tweaks: Tweaks,
    ) -> Resp {
        let mut all: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let common = [
            ("Action", action.to_owned()),
            ("Version", tweaks.version.unwrap_or("2016-04-28").to_owned()),
            ("AccessKeyId", creds.id.clone()),
            ("SignatureMethod", "HMAC-SHA1".to_owned()),
            ("SignatureVersion", "1.0".to_owned()),
            (
                "SignatureNonce",
                tweaks
                    .nonce
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
            (
                "Timestamp",
                tweaks.timestamp.clone().unwrap_or_else(utc_now),
            ),
        ];
        for (k, v) in common {
            all.insert(k.to_owned(), v);
        }
        if let Some(f) = tweaks.format {
            all.insert("Format".to_owned(), f.to_owned());
        }
        if let Some(t) = &creds.token {
            all.insert("SecurityToken".to_owned(), t.clone());
        }
        let method = if style == V1Style::Get { "GET" } else { "POST" };
        let canonical = canonical(&all);
        let string_to_sign = format!("{method}&{}&{}", enc("/"), enc(&canonical));
        let secret = tweaks.sign_secret.unwrap_or_else(|| creds.secret.clone());
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("hmac key");
        mac.update(string_to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let signed = format!("{canonical}&Signature={}", enc(&signature));
        let request = match style {
            V1Style::PostQuery => self.http.post(format!("{}/?{signed}", self.endpoint)),
            V1Style::Get => self.http.get(format!("{}/?{signed}", self.endpoint)),
            V1Style::PostForm => self
                .http
                .post(format!("{}/", self.endpoint))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(signed),
        };
        self.send(request).await
    }

    /// A V1 call, JSON, parameters in the query.
    async fn v1(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Resp {
        let tweaks = Tweaks {
            format: Some("JSON"),
            ..Tweaks::default()
        };
        self.v1_with(creds, V1Style::PostQuery, action, params, tweaks)
            .await
    }

    /// A V3 (ACS3-HMAC-SHA256) call with the parameters in the query.
    async fn v3_with(
        &self,
        creds: &Creds,
        action: &str,
        params: &[(&str, &str)],
        tweaks: Tweaks,
    ) -> Resp {
        let map: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let query = canonical(&map);
        let empty_hash = hex::encode(sha2::Sha256::digest(b""));
        let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut set = |k: &'static str, v: String| {
            headers.insert(k, vec![v]);
        };
        set("host", self.host.clone());
        set("x-acs-action", action.to_owned());
        set(
            "x-acs-version",
            tweaks.version.unwrap_or("2016-04-28").to_owned(),
        );
        set(
            "x-acs-date",
            tweaks.timestamp.clone().unwrap_or_else(utc_now),
        );
        set(
            "x-acs-signature-nonce",
            tweaks
                .nonce
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        );
        set("x-acs-content-sha256", empty_hash.clone());
        if let Some(t) = &creds.token {
            set("x-acs-security-token", t.clone());
        }
        for (k, v) in &tweaks.extra {
            headers.entry(k).or_default().push((*v).to_owned());
        }
        for k in &tweaks.omit {
            headers.remove(k);
        }
        let signed: Vec<&str> = headers
            .keys()
            .copied()
            .filter(|k| !tweaks.unsigned.contains(k))
            .collect();
        let canonical_headers: String = signed
            .iter()
            .map(|k| {
                let mut values: Vec<String> = headers[k].clone();
                if !tweaks.unsorted_repeats {
                    values = values.iter().map(|v| v.trim().to_owned()).collect();
                    values.sort();
                }
                format!("{k}:{}\n", values.join(",").trim())
            })
            .collect();
        let signed_headers = signed.join(";");
        let canonical_request =
            format!("POST\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{empty_hash}");
        let string_to_sign = format!(
            "ACS3-HMAC-SHA256\n{}",
            hex::encode(sha2::Sha256::digest(canonical_request.as_bytes()))
        );
        let secret = tweaks.sign_secret.unwrap_or_else(|| creds.secret.clone());
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
        mac.update(string_to_sign.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let mut request = self.http.post(format!("{}/?{query}", self.endpoint)).header(
            "authorization",
            format!(
                "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed_headers},Signature={signature}",
                creds.id
            ),
        );
        for (k, values) in &headers {
            if *k != "host" {
                for v in values {
                    request = request.header(*k, v);
                }
            }
        }
        self.send(request).await
    }

    async fn v3(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Resp {
        self.v3_with(creds, action, params, Tweaks::default()).await
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut request = self
            .http
            .request(method, format!("{}/__admin/{path}", self.endpoint));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

/// The demo configuration with zero delays.
fn instant_config() -> EmulatorConfig {
    let mut c = EmulatorConfig::demo();
    c.pending_delay = Duration::ZERO;
    c.modify_delay = Duration::ZERO;
    c.delete_delay = Duration::ZERO;
    c
}

async fn emulator(config: EmulatorConfig) -> (EmulatorHandle, Api) {
    let emu = start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator starts");
    let api = Api::new(&emu);
    (emu, api)
}

async fn create_peer(api: &Api, group: &str, ip: &str, token: Option<&str>) -> String {
    let mut params = vec![
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", group),
        ("PeerIpAddress", ip),
    ];
    if let Some(t) = token {
        params.push(("ClientToken", t));
    }
    let r = api.v1(&Creds::demo(), "CreateBgpPeer", &params).await;
    r.assert_ok()["BgpPeerId"]
        .as_str()
        .expect("BgpPeerId")
        .to_owned()
}

async fn describe_peers(api: &Api, filters: &[(&str, &str)]) -> Value {
    let mut params = vec![("RegionId", DEMO_REGION)];
    params.extend_from_slice(filters);
    api.v1(&Creds::demo(), "DescribeBgpPeers", &params)
        .await
        .assert_ok()
        .clone()
}

fn peer_ids(body: &Value) -> Vec<String> {
    body["BgpPeers"]["BgpPeer"]
        .as_array()
        .expect("BgpPeer list")
        .iter()
        .map(|p| p["BgpPeerId"].as_str().expect("id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Wire and signatures.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Every error code of the CreateBgpPeer page.
// ---------------------------------------------------------------------------------------------

/// The seed page's error table (CreateBgpPeer.md).
const SEED_ERRORS: &[(u16, &str, &str)] = &[
    (
        404,
        "InvalidRegionId.NotFound",
        "Specified value of \"regionId\" is not supported.",
    ),
    (
        400,
        "QuotaExceeded.Bgp",
        "bgp peer count per vbr quota exceed.",
    ),
    (400, "QuotaExceeded.Nqa", "nqa count per vbr quota exceed."),
    (
        400,
        "QuotaExceeded.BgpNetwork",
        "bgp network count per vbr quota exceed.",
    ),
    (
        400,
        "InvalidPeerIpAddress",
        "multi pconn peer ip can not be null.",
    ),
    (400, "InvalidVbrNetwork", "vbr netowrk not exists"),
    (
        400,
        "InvalidBgpName.Malformed",
        "Specified Bgp Group name is not valid.",
    ),
    (
        400,
        "InvalidBgpDiscription.Malformed",
        "Specified Bgp Group description is not valid.",
    ),
    (
        400,
        "InvalidBgpAuthkey.Malformed",
        "Specified Bgp Group authkey is not valid.",
    ),
    (400, "InvalidIP.Malformed", "Ip malformed."),
    (
        400,
        "InvalidPeerAsn.Malformed",
        "invalid peer asn cannot equals aliyun asn:45104",
    ),
    (
        400,
        "InvalidParams.NotNull",
        "invalid peer asn cannot equals aliyun asn:45104",
    ),
    (400, "InvalidParams.NotFound", "vpc instance not found"),
    (
        400,
        "InvalidParams.AlreadyExists",
        "bgp network already exists",
    ),
    (
        400,
        "InvalidStatus.CannotOperate",
        "invalid status cannot operate",
    ),
];

fn seed(code: &str) -> (u16, &'static str) {
    SEED_ERRORS
        .iter()
        .find(|(_, c, _)| *c == code)
        .map(|(s, _, m)| (*s, *m))
        .unwrap_or_else(|| panic!("{code} is not on the seed page"))
}

fn assert_seed_error(r: &Resp, code: &str) {
    let (status, message) = seed(code);
    r.assert_error(status, code);
    assert_eq!(r.json["Message"], message, "{}", r.text);
}

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
async fn seed_errors_produced_by_fault_injection() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let create = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.0.2"),
    ];
    for (status, code, message) in SEED_ERRORS {
        emu.inject_fault(Fault::error("CreateBgpPeer", *code).times(1));
        for v3 in [false, true] {
            if v3 {
                emu.inject_fault(Fault::error("CreateBgpPeer", *code).times(1));
            }
            let r = if v3 {
                api.v3(&c, "CreateBgpPeer", &create).await
            } else {
                api.v1(&c, "CreateBgpPeer", &create).await
            };
            r.assert_error(*status, code);
            assert_eq!(r.json["Message"], *message);
        }
    }
    assert!(emu.faults().is_empty(), "count-limited faults are used up");
    assert!(emu.peers().is_empty(), "a faulted call has no effect");
    // The next call goes through.
    create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    assert_eq!(
        emu.counters().count("CreateBgpPeer", "QuotaExceeded.Nqa"),
        2
    );
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Semantics.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Realism knobs, admin API, STS.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_per_access_key() {
    let mut config = instant_config();
    config.qps_per_key = Some(2);
    config.add_access_key("LTAIsecond", Secret::new("second-secret"));
    let (emu, api) = emulator(config).await;
    let list = [("RegionId", DEMO_REGION)];
    let started = std::time::Instant::now();
    let mut codes = Vec::new();
    for _ in 0..8 {
        let r = api.v1(&Creds::demo(), "DescribeBgpPeers", &list).await;
        codes.push(if r.status == 200 {
            "OK".to_owned()
        } else {
            r.code().to_owned()
        });
        if r.status != 200 {
            r.assert_error(400, "Throttling.User");
            assert_eq!(
                r.json["Message"],
                "Request was denied due to user flow control."
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = codes.iter().filter(|c| *c == "OK").count();
    // A burst of 2, then 2 per second.
    assert!(ok >= 2, "{codes:?}");
    assert!(
        ok as f64 <= 2.0 + 2.0 * elapsed + 1.0,
        "{codes:?} in {elapsed}s"
    );
    assert!(codes.iter().any(|c| c == "Throttling.User"), "{codes:?}");
    // Another key has its own budget.
    api.v1(
        &Creds::new("LTAIsecond", "second-secret"),
        "DescribeBgpPeers",
        &list,
    )
    .await
    .assert_ok();
    assert!(emu.counters().by_access_key[DEMO_ACCESS_KEY_ID].by_code["Throttling.User"] >= 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_call() {
    let mut config = instant_config();
    config.latency = "150ms".parse().unwrap();
    let (emu, api) = emulator(config).await;
    let started = std::time::Instant::now();
    api.v1(
        &Creds::demo(),
        "DescribeBgpPeers",
        &[("RegionId", DEMO_REGION)],
    )
    .await
    .assert_ok();
    assert!(started.elapsed() >= Duration::from_millis(150));
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_api_faults_counters_state_and_out_of_band_changes() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];
    use reqwest::Method;

    // A raw 503 for the next call of any action, then normal service.
    let r = api
        .admin(
            Method::POST,
            "faults",
            Some(serde_json::json!({"action": "*", "status": 503, "count": 1})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.v1(&c, "DescribeBgpPeers", &list).await;
    assert_eq!(r.status, 503);
    api.v1(&c, "DescribeBgpPeers", &list).await.assert_ok();
    // An error code with an overridden status and message, with a delay.
    api.admin(
        Method::POST,
        "faults",
        Some(serde_json::json!({"action": "CreateBgpPeer", "code": "ServiceUnavailable", "count": 1, "delay_ms": 120})),
    )
    .await;
    let started = std::time::Instant::now();
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[("RegionId", DEMO_REGION), ("BgpGroupId", DEMO_GROUP_V4)],
        )
        .await;
    r.assert_error(503, "ServiceUnavailable");
    assert!(started.elapsed() >= Duration::from_millis(120));
    // Probability 1 until cleared; invalid rules are refused.
    api.admin(
        Method::POST,
        "faults",
        Some(serde_json::json!({"code": "Throttling", "probability": 1.0})),
    )
    .await;
    api.v1(&c, "DescribeBgpPeers", &list)
        .await
        .assert_error(400, "Throttling");
    let r = api.admin(Method::GET, "faults", None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1));
    assert_eq!(api.admin(Method::DELETE, "faults", None).await.status, 200);
    api.v1(&c, "DescribeBgpPeers", &list).await.assert_ok();
    let r = api
        .admin(
            Method::POST,
            "faults",
            Some(serde_json::json!({"probability": 2.0, "status": 500})),
        )
        .await;
    assert_eq!(r.status, 400);

    // Counters per action and code, per key.
    let r = api.admin(Method::GET, "counters", None).await;
    assert_eq!(r.json["by_action_code"]["DescribeBgpPeers"]["OK"], 2);
    assert_eq!(r.json["by_action_code"]["DescribeBgpPeers"]["HTTP503"], 1);
    assert_eq!(
        r.json["by_access_key"][DEMO_ACCESS_KEY_ID]["by_code"]["Throttling"],
        1
    );

    // Out-of-band changes through the admin API.
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    let r = api
        .admin(
            Method::POST,
            &format!("peers/{id}/status"),
            Some(serde_json::json!({"Status": "Modifying", "BgpStatus": "Down"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    assert_eq!(body["BgpPeers"]["BgpPeer"][0]["Status"], "Modifying");
    assert_eq!(body["BgpPeers"]["BgpPeer"][0]["BgpStatus"], "Down");
    let r = api
        .admin(
            Method::POST,
            &format!("peers/{id}"),
            Some(serde_json::json!({"peer_ip_address": "10.9.9.9", "Status": "Available"})),
        )
        .await;
    assert_eq!(r.json["PeerIpAddress"], "10.9.9.9");
    let r = api.admin(Method::GET, "state", None).await;
    assert_eq!(
        r.json["Regions"],
        serde_json::json!(["cn-shanghai", "cn-hangzhou"])
    );
    assert_eq!(r.json["Vbrs"][0]["RouterId"], DEMO_VBR);
    assert_eq!(r.json["BgpGroups"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.json["BgpPeers"][0]["BgpPeerId"], id.as_str());
    assert_eq!(r.json["BgpPeers"][0]["Status"], "Available");
    assert!(!r.text.contains(DEMO_ACCESS_KEY_SECRET));
    let r = api
        .admin(Method::DELETE, &format!("peers/{id}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        describe_peers(&api, &[("BgpPeerId", &id)]).await["TotalCount"],
        0
    );
    assert_eq!(
        api.admin(Method::DELETE, &format!("peers/{id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        api.admin(Method::POST, "peers/bgp-nope", Some(serde_json::json!({})))
            .await
            .status,
        404
    );

    // Clock and reset.
    let r = api
        .admin(
            Method::POST,
            "clock/advance",
            Some(serde_json::json!({"by": "1s"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    create_peer(&api, DEMO_GROUP_V4, "10.0.0.3", None).await;
    assert_eq!(api.admin(Method::POST, "reset", None).await.status, 200);
    assert!(emu.peers().is_empty());
    assert_eq!(emu.counters().total, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn in_process_out_of_band_changes() {
    let (emu, api) = emulator(instant_config()).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("t-1")).await;
    let changed = emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                bgp_group_id: Some(DEMO_GROUP_V6.to_owned()),
                enable_bfd: Some(true),
                bgp_status: Some("Active".to_owned()),
                ..PeerChange::default()
            },
        )
        .unwrap();
    assert_eq!(changed.bgp_group_id, DEMO_GROUP_V6);
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    let item = &body["BgpPeers"]["BgpPeer"][0];
    assert_eq!(
        (
            item["BgpGroupId"].as_str(),
            item["EnableBfd"].as_bool(),
            item["BgpStatus"].as_str(),
            item["PeerAsn"].as_str()
        ),
        (
            Some(DEMO_GROUP_V6),
            Some(true),
            Some("Active"),
            Some("65002")
        )
    );
    assert!(
        emu.modify_peer_out_of_band("bgp-nope", PeerChange::default())
            .is_err()
    );
    assert!(emu.set_peer_status(&id, Status::Pending));
    assert_eq!(emu.peer(&id).unwrap().status, Status::Pending);
    assert!(emu.delete_peer_out_of_band(&id));
    assert!(!emu.delete_peer_out_of_band(&id));
    assert_eq!(describe_peers(&api, &[]).await["TotalCount"], 0);
    // The token still answers the original create (the real API behaves the same).
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("t-1")).await,
        id
    );
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
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator-state.json");
    let mut config = instant_config();
    config.state_file = Some(path.clone());
    let (emu, api) = emulator(config.clone()).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("persist-1")).await;
    let gone = create_peer(&api, DEMO_GROUP_V4, "10.0.0.3", None).await;
    assert!(emu.delete_peer_out_of_band(&gone));
    emu.shutdown().await;
    assert!(path.exists());

    let (emu, api) = emulator(config).await;
    let peers = emu.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].bgp_peer_id, id);
    assert_eq!(peers[0].client_token.as_deref(), Some("persist-1"));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[]).await),
        std::slice::from_ref(&id)
    );
    // The ClientToken survived too.
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("persist-1")).await,
        id
    );
    assert_eq!(emu.peers().len(), 1);
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The binary.
// ---------------------------------------------------------------------------------------------

/// Kills the child process when dropped (also when an assertion fails).
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
async fn binary_with_seed_file_flags_and_print_endpoint() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        r#"
regions: [eu-central-1]
accounts:
  - uid: "4242"
    access_keys: [{ id: LTAIseed, secret: seed-secret }]
vbrs:
  - { id: vbr-seed000000000000001, region: eu-central-1, ipv6: false, peer_quota: 3, peering_subnets: [172.16.0.0/24] }
groups:
  - { id: bgpg-seed00000000000001, vbr: vbr-seed000000000000001, peer_asn: 65100, name: seeded }
peers:
  - { id: bgp-seed000000000000001, group: bgpg-seed00000000000001, peer_ip_address: 172.16.0.2 }
pending_delay: 5s
"#,
    )
    .unwrap();
    let state_file = dir.path().join("state.json");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_alicloud-bgp-operator"))
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                "--print-endpoint",
                "--config",
            ])
            .arg(&seed)
            .args([
                "--access-key",
                "LTAIflag:flag-secret",
                "--pending-delay",
                "0s",
                "--latency",
                "0ms..1ms",
                "--qps-per-key",
                "100",
                "--state-file",
            ])
            .arg(&state_file)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("endpoint printed in time")
    .unwrap();
    let endpoint = first.trim_end().to_owned();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"),
        "{first:?}"
    );
    let api = Api::at(&endpoint);

    // The seed file's world; the key from --access-key joined the seed account.
    let flag = Creds::new("LTAIflag", "flag-secret");
    let r = api
        .v1(&flag, "DescribeBgpPeers", &[("RegionId", "eu-central-1")])
        .await;
    assert_eq!(peer_ids(r.assert_ok()), ["bgp-seed000000000000001"]);
    // --pending-delay 0s overrides the file's 5s: a new peer is Available at once.
    let r = api
        .v3(
            &Creds::new("LTAIseed", "seed-secret"),
            "CreateBgpPeer",
            &[
                ("RegionId", "eu-central-1"),
                ("BgpGroupId", "bgpg-seed00000000000001"),
                ("PeerIpAddress", "172.16.0.3"),
            ],
        )
        .await;
    let id = r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned();
    let state = api.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(state.json["BgpGroups"][0]["Name"], "seeded");
    assert_eq!(state.json["BgpPeers"][1]["BgpPeerId"], id.as_str());
    assert_eq!(state.json["BgpPeers"][1]["Status"], "Available");
    // The demo key is not configured with a seed file.
    api.v1(
        &Creds::demo(),
        "DescribeBgpPeers",
        &[("RegionId", "eu-central-1")],
    )
    .await
    .assert_error(404, "InvalidAccessKeyId.NotFound");
    // The state file was written on the change.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(saved["BgpPeers"].as_array().map(Vec::len), Some(2));

    child.0.start_kill().unwrap();
    let _ = child.0.wait().await;
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(log.contains("emulator api call"), "{log}");
    for secret in ["flag-secret", "seed-secret"] {
        assert!(!log.contains(secret), "secret in the log: {log}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fidelity (issue 16, docs/cloud-fidelity.md): the emulator refuses what the real API refuses.
// ---------------------------------------------------------------------------------------------

fn tweaks() -> Tweaks {
    Tweaks::default()
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
async fn visibility_lag_hides_new_peers_but_not_their_token_replay() {
    let mut config = instant_config();
    config.visibility_lag = Duration::from_secs(2);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.6.2", Some("lag-1")).await;
    assert!(peer_ids(&describe_peers(&api, &[("BgpPeerId", &id)]).await).is_empty());
    assert!(peer_ids(&describe_peers(&api, &[("BgpGroupId", DEMO_GROUP_V4)]).await).is_empty());
    // The replay of the create answers the hidden peer's ID (no second peer).
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.6.2", Some("lag-1")).await,
        id
    );
    assert_eq!(emu.peers().len(), 1);
    emu.advance_clock(Duration::from_secs(2));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpPeerId", &id)]).await),
        std::slice::from_ref(&id)
    );
    // Through the admin API: 5 s for new peers.
    let r = api
        .admin(
            reqwest::Method::POST,
            "config",
            Some(serde_json::json!({"visibility_lag": "5s"})),
        )
        .await;
    assert_eq!(r.assert_ok()["visibility_lag"], 5000);
    let late = create_peer(&api, DEMO_GROUP_V4, "10.0.6.3", None).await;
    emu.advance_clock(Duration::from_secs(4));
    assert!(peer_ids(&describe_peers(&api, &[("BgpPeerId", &late)]).await).is_empty());
    emu.advance_clock(Duration::from_secs(1));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpPeerId", &late)]).await),
        [late]
    );
    let _ = c;
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
async fn session_state_is_settable_through_the_admin_api() {
    let mut config = instant_config();
    config.session_connect_delay = Duration::ZERO;
    config.session_establish_delay = Duration::ZERO;
    let (emu, api) = emulator(config).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.8.2", None).await;
    let session = |body: Value| body["BgpPeers"]["BgpPeer"][0]["BgpStatus"].clone();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Established"
    );
    let set = |v: &'static str| serde_json::json!({ "BgpStatus": v });
    api.admin(
        reqwest::Method::POST,
        &format!("peers/{id}"),
        Some(set("Down")),
    )
    .await
    .assert_ok();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Down"
    );
    // "" hands the session back to the lifecycle.
    api.admin(reqwest::Method::POST, &format!("peers/{id}"), Some(set("")))
        .await
        .assert_ok();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Established"
    );
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
async fn throttling_carries_the_configured_retry_after() {
    let mut config = instant_config();
    config.qps_per_key = Some(1);
    config.throttle_retry_after = Some(Duration::from_millis(1500));
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];
    let request = |nonce: String| {
        api.http.post(format!(
            "{}/?{}",
            api.endpoint,
            signed_v1_query(&c, "DescribeBgpPeers", &list, &nonce)
        ))
    };
    let first = request("n-1".to_owned()).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("x-acs-retry-after").is_none());
    let second = request("n-2".to_owned()).send().await.unwrap();
    assert_eq!(second.status(), 400);
    assert_eq!(second.headers()["x-acs-retry-after"], "1500");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["Code"], "Throttling.User");
    assert_eq!(
        body["Message"],
        "Request was denied due to user flow control."
    );
    emu.shutdown().await;
}

/// A V1-signed query string (JSON).
fn signed_v1_query(creds: &Creds, action: &str, params: &[(&str, &str)], nonce: &str) -> String {
    let mut all: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for (k, v) in [
        ("Action", action),
        ("Version", "2016-04-28"),
        ("AccessKeyId", creds.id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Format", "JSON"),
    ] {
        all.insert(k.to_owned(), v.to_owned());
    }
    all.insert("Timestamp".to_owned(), utc_now());
    let canonical = canonical(&all);
    let string_to_sign = format!("POST&{}&{}", enc("/"), enc(&canonical));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{}&", creds.secret).as_bytes())
        .expect("hmac key");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{canonical}&Signature={}", enc(&signature))
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
