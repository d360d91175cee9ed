//! The VPC API emulator over real HTTP for the `emulator_*` tests: a client that signs its
//! requests with the tests' own [`super::signer`] (independent of both `src` signers), the
//! answers, and fixtures (an emulator with zero delays, a peer, a listing, the seed page's error
//! table).

use std::collections::BTreeMap;
use std::time::Duration;

use alicloud_bgp_operator::cloud::{
    ClientConfig, Credentials, RetryConfig, SignatureVersion, VpcClient,
};
use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_REGION,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, EmulatorHandle, start};
use serde_json::Value;

use super::signer::{self, enc};

// ---------------------------------------------------------------------------------------------
// A test client that signs requests itself.
// ---------------------------------------------------------------------------------------------

/// An access key (and STS token).
#[derive(Clone)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Creds {
    pub fn new(id: &str, secret: &str) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            token: None,
        }
    }

    pub fn demo() -> Self {
        Self::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
    }
}

/// How a V1 request travels.
#[derive(Clone, Copy, PartialEq)]
pub enum V1Style {
    /// POST, everything in the query (Python SDKs).
    PostQuery,
    /// POST, everything in a form body (Node pop-core).
    PostForm,
    /// GET with a query.
    Get,
}

/// Knobs to produce broken requests.
#[derive(Clone, Default)]
pub struct Tweaks {
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub format: Option<&'static str>,
    pub version: Option<&'static str>,
    /// Sign with this secret instead of the key's.
    pub sign_secret: Option<String>,
    /// V3: headers sent but left out of SignedHeaders (a broken signer).
    pub unsigned: Vec<&'static str>,
    /// V3: headers not sent at all.
    pub omit: Vec<&'static str>,
    /// V3: extra headers (a name may repeat), signed unless listed in `unsigned`.
    pub extra: Vec<(&'static str, &'static str)>,
    /// V3: join repeated header values in the order sent, untrimmed (a broken signer).
    pub unsorted_repeats: bool,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or("")
    }

    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.json
    }

    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub endpoint: String,
    pub host: String,
}

impl Api {
    pub fn new(emu: &EmulatorHandle) -> Self {
        Self::at(&emu.endpoint())
    }

    pub fn at(endpoint: &str) -> Self {
        alicloud_bgp_operator::install_crypto_provider();
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
            host: endpoint.trim_start_matches("http://").to_owned(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request reaches the emulator");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, text, json }
    }

    /// The signed V1 parameters (`k=v&…&Signature=…`) of a call.
    pub fn v1_signed_query(
        &self,
        creds: &Creds,
        style: V1Style,
        action: &str,
        params: &[(&str, &str)],
        tweaks: Tweaks,
    ) -> String {
        let mut all: BTreeMap<String, String> = signer::owned(params);
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
                tweaks.timestamp.clone().unwrap_or_else(signer::utc_now),
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
        let canonical = signer::canonical_query(&all);
        let secret = tweaks.sign_secret.unwrap_or_else(|| creds.secret.clone());
        let signature = signer::v1_signature(method, &canonical, &secret);
        format!("{canonical}&Signature={}", enc(&signature))
    }

    /// A V1 (HMAC-SHA1) call.
    pub async fn v1_with(
        &self,
        creds: &Creds,
        style: V1Style,
        action: &str,
        params: &[(&str, &str)],
        tweaks: Tweaks,
    ) -> Resp {
        let signed = self.v1_signed_query(creds, style, action, params, tweaks);
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
    pub async fn v1(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Resp {
        let tweaks = Tweaks {
            format: Some("JSON"),
            ..Tweaks::default()
        };
        self.v1_with(creds, V1Style::PostQuery, action, params, tweaks)
            .await
    }

    /// A V3 (ACS3-HMAC-SHA256) call with the parameters in the query.
    pub async fn v3_with(
        &self,
        creds: &Creds,
        action: &str,
        params: &[(&str, &str)],
        tweaks: Tweaks,
    ) -> Resp {
        let query = signer::canonical_query(params.iter().copied());
        let empty_hash = signer::sha256_hex(b"");
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
            tweaks.timestamp.clone().unwrap_or_else(signer::utc_now),
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
        let canonical_request = signer::v3_canonical_request(
            "POST",
            &query,
            &canonical_headers,
            &signed_headers,
            &empty_hash,
        );
        let secret = tweaks.sign_secret.unwrap_or_else(|| creds.secret.clone());
        let (_, signature) = signer::v3_signature(&canonical_request, &secret);
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

    pub async fn v3(&self, creds: &Creds, action: &str, params: &[(&str, &str)]) -> Resp {
        self.v3_with(creds, action, params, Tweaks::default()).await
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
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
pub fn instant_config() -> EmulatorConfig {
    let mut c = EmulatorConfig::demo();
    c.pending_delay = Duration::ZERO;
    c.modify_delay = Duration::ZERO;
    c.delete_delay = Duration::ZERO;
    c
}

/// Starts an emulator with `config` on a free loopback port.
pub async fn start_emulator(config: EmulatorConfig) -> EmulatorHandle {
    alicloud_bgp_operator::install_crypto_provider();
    start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator starts")
}

/// An emulator and the hand-signing client pointed at it.
pub async fn emulator(config: EmulatorConfig) -> (EmulatorHandle, Api) {
    let emu = start_emulator(config).await;
    let api = Api::new(&emu);
    (emu, api)
}

/// The product's own VPC client against the emulator (and its STS): no client-side rate limit,
/// retries after 5–20 ms.
pub fn vpc_client(emu: &EmulatorHandle, version: SignatureVersion) -> VpcClient {
    VpcClient::new(ClientConfig {
        endpoint: Some(emu.endpoint()),
        sts_endpoint: Some(emu.endpoint()),
        signature_version: version,
        rate_limit: None,
        retry: RetryConfig {
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    })
    .expect("client")
}

/// The demo access key as the client's credentials.
pub fn demo_credentials() -> Credentials {
    Credentials::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, None)
}

pub async fn create_peer(api: &Api, group: &str, ip: &str, token: Option<&str>) -> String {
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

pub async fn describe_peers(api: &Api, filters: &[(&str, &str)]) -> Value {
    let mut params = vec![("RegionId", DEMO_REGION)];
    params.extend_from_slice(filters);
    api.v1(&Creds::demo(), "DescribeBgpPeers", &params)
        .await
        .assert_ok()
        .clone()
}

pub fn peer_ids(body: &Value) -> Vec<String> {
    body["BgpPeers"]["BgpPeer"]
        .as_array()
        .expect("BgpPeer list")
        .iter()
        .map(|p| p["BgpPeerId"].as_str().expect("id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The CreateBgpPeer page's error table.
// ---------------------------------------------------------------------------------------------

/// The seed page's error table (CreateBgpPeer.md).
pub const SEED_ERRORS: &[(u16, &str, &str)] = &[
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

pub fn seed(code: &str) -> (u16, &'static str) {
    SEED_ERRORS
        .iter()
        .find(|(_, c, _)| *c == code)
        .map(|(s, _, m)| (*s, *m))
        .unwrap_or_else(|| panic!("{code} is not on the seed page"))
}

pub fn assert_seed_error(r: &Resp, code: &str) {
    let (status, message) = seed(code);
    r.assert_error(status, code);
    assert_eq!(r.json["Message"], message, "{}", r.text);
}

/// No tweaks: a well-formed request.
pub fn tweaks() -> Tweaks {
    Tweaks::default()
}

/// Kills the child process when dropped (also when an assertion fails).
pub struct Child(pub tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}
