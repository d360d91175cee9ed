//! Request signing for the Alibaba Cloud RPC-style APIs, both versions.
//!
//! - **V1** (`SignatureVersion=1.0`, HMAC-SHA1): every parameter, the common ones included,
//!   travels in the query; `StringToSign = METHOD & %2F & encode(canonical query)` and the
//!   key is `secret + "&"`.
//! - **V3** (`ACS3-HMAC-SHA256`, the current SDK default): the API parameters travel in the
//!   query, the action, version, date and nonce in `x-acs-*` headers; the canonical request
//!   is hashed and signed with the bare secret, and the result goes in `Authorization`.
//!
//! The low-level functions (`percent_encode`, `canonical_query`, `v1_*`, `v3_*`) are pure and
//! pinned to the published vectors; [`sign_request`] assembles the wire form of one attempt.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// RFC 3986 encoding set: everything except the unreserved characters `A-Za-z0-9-_.~`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The name of the V3 signature algorithm, first word of the `Authorization` header.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Hex SHA-256 of the empty string: the payload hash of a request without body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which signature scheme to use; also the value of `run --signature-version` and
/// `cloud ... --signature` (any case; `1`, `1.0`, `hmac-sha1`, `3` and `acs3-hmac-sha256` are
/// accepted as aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SignatureVersion {
    /// RPC signature 1.0 (HMAC-SHA1), all parameters in the query, `Format=JSON`.
    #[value(name = "v1", alias = "1", alias = "1.0", alias = "hmac-sha1")]
    #[value(help = "RPC signature 1.0, HMAC-SHA1")]
    V1,
    /// ACS3-HMAC-SHA256 with `x-acs-*` headers (the current SDK default).
    #[default]
    #[value(name = "v3", alias = "3", alias = "acs3-hmac-sha256")]
    #[value(help = "ACS3-HMAC-SHA256")]
    V3,
}

impl SignatureVersion {
    /// `"v1"` or `"v3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "v1",
            SignatureVersion::V3 => "v3",
        }
    }
}

impl std::str::FromStr for SignatureVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown signature version {s:?} (expected v1 or v3)"))
    }
}

/// Percent-encodes `s` as UTF-8 per RFC 3986: unreserved characters stay, everything else
/// becomes `%XX` with upper-case hex (so a space is `%20`, `*` is `%2A`, `~` stays).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Sorts the parameters by key (byte order), encodes keys and values and joins them as
/// `k=v&k=v`. Empty values are kept as `k=`.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V1 string to sign: `METHOD&%2F&percentEncode(canonicalQuery)`. `params` must hold
/// every parameter except `Signature`.
pub fn v1_string_to_sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// The V1 signature: `Base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub fn v1_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    use base64::Engine as _;
    let key = format!("{access_key_secret}&");
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Lower-case hex SHA-256 of `data`.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A V3 canonical request and its signed-headers list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The canonical request text.
    pub text: String,
    /// The sorted, `;`-joined lower-case header names.
    pub signed_headers: String,
}

/// Builds the V3 canonical request.
///
/// `canonical_query` is already canonical (see [`canonical_query`]); `headers` are the
/// headers to sign (names in any case; duplicates are joined with `,`); `hashed_payload` is
/// the hex SHA-256 of the body.
pub fn v3_canonical_request<N: AsRef<str>, V: AsRef<str>>(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(N, V)],
    hashed_payload: &str,
) -> CanonicalRequest {
    let mut merged: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        merged
            .entry(name.as_ref().trim().to_ascii_lowercase())
            .or_default()
            .push(value.as_ref().trim().to_owned());
    }
    let canonical_headers: String = merged
        .iter()
        .map(|(name, values)| format!("{name}:{}\n", values.join(",")))
        .collect();
    let signed_headers = merged.keys().cloned().collect::<Vec<_>>().join(";");
    let encoded_path = path
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/");
    let text = format!(
        "{}\n{encoded_path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{hashed_payload}",
        method.to_ascii_uppercase()
    );
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// The V3 string to sign: `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

/// The V3 signature: lower-case hex `HMAC-SHA256(secret, string_to_sign)` (no `&` suffix).
pub fn v3_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(access_key_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The V3 `Authorization` header value.
pub fn v3_authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// Everything that varies per attempt and goes into a signature. Its `Debug` names the
/// parameters but never shows their values (a BGP group's `AuthKey` is one of them).
#[derive(Clone)]
pub struct SigningInput<'a> {
    /// Signature scheme.
    pub version: SignatureVersion,
    /// API action, e.g. `CreateBgpPeer`.
    pub action: &'a str,
    /// API version, e.g. `2016-04-28`.
    pub api_version: &'a str,
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// The `Host` header value (`host[:port]`).
    pub host: &'a str,
    /// The API parameters (without the common ones).
    pub params: &'a [(String, String)],
    /// A fresh nonce for this attempt.
    pub nonce: &'a str,
    /// The UTC timestamp of this attempt, `yyyy-MM-ddTHH:mm:ssZ`.
    pub timestamp: &'a str,
}

impl std::fmt::Debug for SigningInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SigningInput")
            .field("version", &self.version)
            .field("action", &self.action)
            .field("api_version", &self.api_version)
            .field("method", &self.method)
            .field("host", &self.host)
            .field("params", &names)
            .field("nonce", &self.nonce)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// The wire form of a signed request: the encoded query string (without `?`) and the extra
/// headers to send. The body is empty.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The encoded query string.
    pub query: String,
    /// Headers to send, lower-case names.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for SignedRequest {
    // The query and headers may carry an STS token: show only their names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("query_len", &self.query.len())
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Signs one attempt of an RPC call with `creds` and returns its wire form.
pub fn sign_request(input: &SigningInput<'_>, creds: &Credentials) -> SignedRequest {
    match input.version {
        SignatureVersion::V1 => sign_v1(input, creds),
        SignatureVersion::V3 => sign_v3(input, creds),
    }
}

fn sign_v1(input: &SigningInput<'_>, creds: &Credentials) -> SignedRequest {
    let mut params: Vec<(String, String)> = input.params.to_vec();
    let common = [
        ("AccessKeyId", creds.access_key_id()),
        ("Action", input.action),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", input.nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", input.timestamp),
        ("Version", input.api_version),
    ];
    params.extend(
        common
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    if let Some(token) = creds.security_token() {
        params.push(("SecurityToken".to_owned(), token.to_owned()));
    }
    let string_to_sign = v1_string_to_sign(input.method, &params);
    let signature = v1_signature(creds.access_key_secret(), &string_to_sign);
    let query = format!(
        "{}&Signature={}",
        canonical_query(&params),
        percent_encode(&signature)
    );
    SignedRequest {
        query,
        headers: Vec::new(),
    }
}

fn sign_v3(input: &SigningInput<'_>, creds: &Credentials) -> SignedRequest {
    let query = canonical_query(input.params);
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), input.host.to_owned()),
        ("x-acs-action".into(), input.action.to_owned()),
        ("x-acs-content-sha256".into(), EMPTY_BODY_SHA256.to_owned()),
        ("x-acs-date".into(), input.timestamp.to_owned()),
        ("x-acs-signature-nonce".into(), input.nonce.to_owned()),
        ("x-acs-version".into(), input.api_version.to_owned()),
    ];
    if let Some(token) = creds.security_token() {
        headers.push((
            "x-acs-accesskey-id".into(),
            creds.access_key_id().to_owned(),
        ));
        headers.push(("x-acs-security-token".into(), token.to_owned()));
    }
    let canonical = v3_canonical_request(input.method, "/", &query, &headers, EMPTY_BODY_SHA256);
    let signature = v3_signature(
        creds.access_key_secret(),
        &v3_string_to_sign(&canonical.text),
    );
    headers.push((
        "authorization".into(),
        v3_authorization(creds.access_key_id(), &canonical.signed_headers, &signature),
    ));
    SignedRequest { query, headers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_parameters_but_never_shows_their_values() {
        let params = vec![("AuthKey".to_owned(), "s3cret-md5".to_owned())];
        let input = SigningInput {
            version: SignatureVersion::V3,
            action: "CreateBgpGroup",
            api_version: "2016-04-28",
            method: "POST",
            host: "vpc.aliyuncs.com",
            params: &params,
            nonce: "n",
            timestamp: "2026-12-01T00:00:00Z",
        };
        let shown = format!("{input:?}");
        assert!(shown.contains("AuthKey"), "{shown}");
        assert!(!shown.contains("s3cret-md5"), "{shown}");
    }
    use proptest::prelude::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Official doc vector (DescribeRegions, GET).
    #[test]
    fn v1_official_doc_vector() {
        let params = pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v1_string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    /// darabonba-openapi-util unit test: get_rpcsignature({query: test, body: test}, GET, secret).
    #[test]
    fn v1_darabonba_vector() {
        let params = pairs(&[("query", "test"), ("body", "test")]);
        let sts = v1_string_to_sign("GET", &params);
        assert_eq!(v1_signature("secret", &sts), "XlUyV4sXjOuX5FnjUz9IF9tm5rU=");
    }

    const BGP_V1_STS: &str = "POST&%2F&AccessKeyId%3Dtestid%26Action%3DCreateBgpPeer%26BfdMultiHop%3D3%26BgpGroupId%3Dbgpg-wz9f62v4fbg1234%26ClientToken%3Da%2520b%252Ac~d%252Be%252F%25C3%25A9%26EnableBfd%3Dtrue%26Format%3DJSON%26PeerIpAddress%3D10.0.0.2%26RegionId%3Dcn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2016-04-28";

    fn bgp_api_params() -> Vec<(String, String)> {
        pairs(&[
            ("RegionId", "cn-shanghai"),
            ("BgpGroupId", "bgpg-wz9f62v4fbg1234"),
            ("PeerIpAddress", "10.0.0.2"),
            ("EnableBfd", "true"),
            ("BfdMultiHop", "3"),
            ("ClientToken", "a b*c~d+e/é"),
        ])
    }

    /// BGP vector with awkward characters, from the low-level functions.
    #[test]
    fn v1_bgp_vector_low_level() {
        assert_eq!(percent_encode("a b*c~d+e/é"), "a%20b%2Ac~d%2Be%2F%C3%A9");
        let mut params = bgp_api_params();
        params.extend(pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "CreateBgpPeer"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2016-04-28"),
        ]));
        let sts = v1_string_to_sign("POST", &params);
        assert_eq!(sts, BGP_V1_STS);
        assert_eq!(
            v1_signature("testsecret", &sts),
            "BHRvu7OfRs7s6aPbrpijSyjCJR4="
        );
    }

    /// The same vector through the request assembly the client uses.
    #[test]
    fn v1_bgp_vector_through_sign_request() {
        let params = bgp_api_params();
        let creds = Credentials::new("testid", "testsecret", None);
        let signed = sign_request(
            &SigningInput {
                version: SignatureVersion::V1,
                action: "CreateBgpPeer",
                api_version: "2016-04-28",
                method: "POST",
                host: "vpc.cn-shanghai.aliyuncs.com",
                params: &params,
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                timestamp: "2016-02-23T12:46:24Z",
            },
            &creds,
        );
        assert!(signed.headers.is_empty());
        assert!(
            signed
                .query
                .ends_with("&Signature=BHRvu7OfRs7s6aPbrpijSyjCJR4%3D"),
            "{}",
            signed.query
        );
        assert!(
            signed
                .query
                .contains("ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9")
        );
        assert!(
            signed
                .query
                .starts_with("AccessKeyId=testid&Action=CreateBgpPeer&")
        );
    }

    #[test]
    fn v1_sts_token_is_signed_in_query() {
        let params = pairs(&[("RegionId", "cn-shanghai")]);
        let creds = Credentials::new("STS.id", "s3cr3t", Some("tok/en+1".into()));
        let signed = sign_request(
            &SigningInput {
                version: SignatureVersion::V1,
                action: "DescribeBgpPeers",
                api_version: "2016-04-28",
                method: "POST",
                host: "h",
                params: &params,
                nonce: "n",
                timestamp: "2024-01-01T00:00:00Z",
            },
            &creds,
        );
        assert!(signed.query.contains("SecurityToken=tok%2Fen%2B1"));
    }

    const OFFICIAL_V3_QUERY: &str =
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai";

    fn official_v3_headers(host: &str, action: &str, version: &str) -> Vec<(String, String)> {
        pairs(&[
            ("host", host),
            ("x-acs-action", action),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-version", version),
        ])
    }

    /// Official V3 doc vector (RunInstances).
    #[test]
    fn v3_official_doc_vector() {
        let query = canonical_query(&pairs(&[
            ("RegionId", "cn-shanghai"),
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
        ]));
        assert_eq!(query, OFFICIAL_V3_QUERY);
        let headers =
            official_v3_headers("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26");
        let cr = v3_canonical_request("POST", "/", &query, &headers, EMPTY_BODY_SHA256);
        assert_eq!(
            cr.signed_headers,
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            hex_sha256(cr.text.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        let sig = v3_signature("YourAccessKeySecret", &v3_string_to_sign(&cr.text));
        assert_eq!(
            v3_authorization("YourAccessKeyId", &cr.signed_headers, &sig),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    /// BGP V3 vector (CreateBgpPeer with awkward characters), low level.
    #[test]
    fn v3_bgp_vector_low_level() {
        let params = pairs(&[
            ("RegionId", "cn-shanghai"),
            ("BgpGroupId", "bgpg-wz9f62v4fbg1234"),
            ("EnableBfd", "true"),
            ("BfdMultiHop", "3"),
            ("ClientToken", "a b*c~d+e/é"),
        ]);
        let query = canonical_query(&params);
        assert_eq!(
            query,
            "BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&RegionId=cn-shanghai"
        );
        let headers = official_v3_headers(
            "vpc.cn-shanghai.aliyuncs.com",
            "CreateBgpPeer",
            "2016-04-28",
        );
        let cr = v3_canonical_request("POST", "/", &query, &headers, EMPTY_BODY_SHA256);
        assert_eq!(
            hex_sha256(cr.text.as_bytes()),
            "656faecb6b0054e92d1a9568cc688cc3f5d3d1acf710b46830cee4d34d38a88d"
        );
        assert_eq!(
            v3_signature("YourAccessKeySecret", &v3_string_to_sign(&cr.text)),
            "8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83"
        );
    }

    /// The BGP V3 vector through the request assembly the client uses.
    #[test]
    fn v3_bgp_vector_through_sign_request() {
        let params = pairs(&[
            ("RegionId", "cn-shanghai"),
            ("BgpGroupId", "bgpg-wz9f62v4fbg1234"),
            ("EnableBfd", "true"),
            ("BfdMultiHop", "3"),
            ("ClientToken", "a b*c~d+e/é"),
        ]);
        let creds = Credentials::new("YourAccessKeyId", "YourAccessKeySecret", None);
        let signed = sign_request(
            &SigningInput {
                version: SignatureVersion::V3,
                action: "CreateBgpPeer",
                api_version: "2016-04-28",
                method: "POST",
                host: "vpc.cn-shanghai.aliyuncs.com",
                params: &params,
                nonce: "3156853299f313e23d1673dc12e1703d",
                timestamp: "2023-10-26T10:22:32Z",
            },
            &creds,
        );
        let auth = signed
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            auth,
            Some(
                "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83"
            )
        );
        assert!(!signed.query.contains("Action="));
        assert!(!signed.query.contains("Signature"));
    }

    #[test]
    fn v3_sts_token_headers_are_signed() {
        let params = pairs(&[("RegionId", "cn-shanghai")]);
        let creds = Credentials::new("STS.id", "s3cr3t", Some("sts-token-value".into()));
        let signed = sign_request(
            &SigningInput {
                version: SignatureVersion::V3,
                action: "DescribeBgpPeers",
                api_version: "2016-04-28",
                method: "POST",
                host: "h",
                params: &params,
                nonce: "n",
                timestamp: "2024-01-01T00:00:00Z",
            },
            &creds,
        );
        let get = |name: &str| {
            signed
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("x-acs-security-token").as_deref(),
            Some("sts-token-value")
        );
        assert_eq!(get("x-acs-accesskey-id").as_deref(), Some("STS.id"));
        let auth = get("authorization").unwrap_or_default();
        assert!(auth.contains("x-acs-security-token"), "{auth}");
        assert!(!format!("{signed:?}").contains("sts-token-value"));
    }

    #[test]
    fn canonical_headers_merge_duplicates_and_trim() {
        let headers = pairs(&[("X-B", " 2 "), ("x-a", "1"), ("x-b", "3")]);
        let cr = v3_canonical_request("post", "/", "", &headers, "h");
        assert_eq!(cr.signed_headers, "x-a;x-b");
        assert_eq!(cr.text, "POST\n/\n\nx-a:1\nx-b:2,3\n\nx-a;x-b\nh");
    }

    #[test]
    fn empty_values_are_kept() {
        assert_eq!(canonical_query(&pairs(&[("b", ""), ("a", "1")])), "a=1&b=");
    }

    #[test]
    fn signature_version_parses() {
        assert_eq!("V1".parse::<SignatureVersion>(), Ok(SignatureVersion::V1));
        assert_eq!("v3".parse::<SignatureVersion>(), Ok(SignatureVersion::V3));
        assert!("v2".parse::<SignatureVersion>().is_err());
        assert_eq!(SignatureVersion::default(), SignatureVersion::V3);
        // The aliases `run --signature-version` accepted before it was a clap ValueEnum.
        for (text, version) in [
            ("hmac-sha1", SignatureVersion::V1),
            ("1.0", SignatureVersion::V1),
            ("ACS3-HMAC-SHA256", SignatureVersion::V3),
            ("3", SignatureVersion::V3),
        ] {
            assert_eq!(text.parse::<SignatureVersion>(), Ok(version), "{text}");
        }
    }

    fn is_unreserved(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
    }

    proptest! {
        #[test]
        fn unreserved_strings_are_untouched(s in "[A-Za-z0-9._~-]*") {
            prop_assert_eq!(percent_encode(&s), s);
        }

        #[test]
        fn output_is_unreserved_or_upper_hex_escapes(s in any::<String>()) {
            let enc = percent_encode(&s);
            let bytes = enc.as_bytes();
            let mut i = 0;
            let mut escapes = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    prop_assert!(i + 2 < bytes.len(), "truncated escape");
                    let hex = &enc[i + 1..i + 3];
                    prop_assert!(hex.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)), "bad escape {}", hex);
                    escapes += 1;
                    i += 3;
                } else {
                    prop_assert!(is_unreserved(bytes[i]), "raw reserved byte {:?}", bytes[i] as char);
                    i += 1;
                }
            }
            let expected_escapes = s.bytes().filter(|b| !is_unreserved(*b)).count();
            prop_assert_eq!(escapes, expected_escapes);
        }

        #[test]
        fn decode_inverts_encode(s in any::<String>()) {
            let enc = percent_encode(&s);
            let dec = percent_encoding::percent_decode_str(&enc).decode_utf8();
            prop_assert_eq!(dec.as_deref().ok(), Some(s.as_str()));
        }
    }
}
