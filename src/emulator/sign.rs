//! Server-side verification of Alibaba Cloud request signatures: RPC V1 (HMAC-SHA1) and
//! V3 (ACS3-HMAC-SHA256).
//!
//! Written independently of the client signer in `crate::cloud` on purpose: a shared code path
//! could hide a symmetric bug. Both algorithms are pinned to the published vectors in the tests.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Everything except the RFC 3986 unreserved characters `A-Za-z0-9-_.~` is percent-encoded.
const POP_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The V3 signature algorithm name (first word of the `Authorization` header).
pub const ACS3_HMAC_SHA256: &str = "ACS3-HMAC-SHA256";

/// Percent-encodes per RFC 3986 with upper-case hex, as the POP gateway canonicalises.
pub fn pop_encode(s: &str) -> String {
    utf8_percent_encode(s, POP_ENCODE_SET).to_string()
}

/// Decodes one query-string component as clients write it: `+` is a space (the Python SDKs
/// encode spaces that way even in V3), `%XX` escapes are decoded, characters a client left raw
/// (Node leaves `*`) stay as they are. Invalid UTF-8 is replaced.
pub fn query_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The V1 canonicalised query: every parameter except `Signature`, sorted by encoded key, as
/// `k=v` joined with `&`.
pub fn v1_canonical_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| *k != "Signature")
        .map(|(k, v)| (pop_encode(k), pop_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V1 string to sign: `METHOD&%2F&percentEncode(canonicalQuery)`.
pub fn v1_string_to_sign<'a>(
    method: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        pop_encode("/"),
        pop_encode(&v1_canonical_query(params))
    )
}

/// Computes the V1 signature: `Base64(HMAC-SHA1(secret + "&", stringToSign))`.
/// (HMAC accepts keys of any length; the empty string is returned only if that ever changes.)
pub fn v1_signature(secret: &str, string_to_sign: &str) -> String {
    v1_mac(secret, string_to_sign)
        .map(|mac| base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

fn v1_mac(secret: &str, string_to_sign: &str) -> Option<Hmac<Sha1>> {
    let key = format!("{secret}&");
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(string_to_sign.as_bytes());
    Some(mac)
}

/// Checks a V1 signature in constant time. A space in the presented signature is read as `+`
/// (a client that left `+` raw in a query string).
pub fn v1_verify(secret: &str, string_to_sign: &str, presented: &str) -> bool {
    let presented = presented.replace(' ', "+");
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(presented.as_bytes()) else {
        return false;
    };
    v1_mac(secret, string_to_sign).is_some_and(|mac| mac.verify_slice(&tag).is_ok())
}

/// How empty V3 query values are written in the canonical query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyValueStyle {
    /// `key=` (current tea-openapi).
    KeyEquals,
    /// `key` (old darabonba-openapi-util).
    KeyOnly,
}

/// The V3 canonical query from a raw query string: pairs are decoded ([`query_decode`]) and
/// re-encoded per RFC 3986 (so a raw `*` or a `+` for a space canonicalise as the client signed
/// them), then sorted.
pub fn v3_canonical_query(raw_query: &str, empty: EmptyValueStyle) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pop_encode(&query_decode(k)), pop_encode(&query_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| match (v.is_empty(), empty) {
            (true, EmptyValueStyle::KeyOnly) => k.clone(),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The parsed `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Authorization {
    /// The access key id.
    pub credential: String,
    /// Lower-case header names, in the client's order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses a V3 `Authorization` header; `None` if it is not a well-formed ACS3-HMAC-SHA256 one.
pub fn parse_v3_authorization(value: &str) -> Option<V3Authorization> {
    let rest = value.trim().strip_prefix(ACS3_HMAC_SHA256)?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => credential = Some(v.trim().to_owned()),
            "SignedHeaders" => {
                signed_headers = Some(
                    v.trim()
                        .split(';')
                        .filter(|h| !h.is_empty())
                        .map(|h| h.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>(),
                )
            }
            "Signature" => signature = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    Some(V3Authorization {
        credential: credential.filter(|c| !c.is_empty())?,
        signed_headers: signed_headers?,
        signature: signature.filter(|s| !s.is_empty())?,
    })
}

/// The inputs of a V3 canonical request.
#[derive(Clone, Debug)]
pub struct V3Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as received (already URI-encoded), `/` for RPC calls.
    pub path: &'a str,
    /// Raw query string (without `?`).
    pub raw_query: &'a str,
    /// `(lower-case name, value)` for every signed header, values already joined by `,`.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: &'a [u8],
}

/// Hex SHA-256.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The V3 canonical request.
pub fn v3_canonical_request(req: &V3Request<'_>, empty: EmptyValueStyle) -> String {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let mut canonical_headers = String::new();
    for (name, value) in &req.headers {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value.trim());
        canonical_headers.push('\n');
    }
    let signed: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        path,
        v3_canonical_query(req.raw_query, empty),
        canonical_headers,
        signed.join(";"),
        hex_sha256(req.body)
    )
}

/// The V3 string to sign: `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ACS3_HMAC_SHA256}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

fn v3_mac(secret: &str, string_to_sign: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(string_to_sign.as_bytes());
    Some(mac)
}

/// Computes the V3 signature: hex `HMAC-SHA256(secret, stringToSign)`.
pub fn v3_signature(secret: &str, string_to_sign: &str) -> String {
    v3_mac(secret, string_to_sign)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Checks a hex V3 signature in constant time (hex case-insensitive).
pub fn v3_verify(secret: &str, string_to_sign: &str, presented_hex: &str) -> bool {
    let Ok(tag) = hex::decode(presented_hex) else {
        return false;
    };
    v3_mac(secret, string_to_sign).is_some_and(|mac| mac.verify_slice(&tag).is_ok())
}

/// Verifies a V3 request, trying both empty-value styles. On failure returns the string to sign
/// computed with the current (`key=`) style, for the error message.
pub fn v3_verify_request(
    secret: &str,
    req: &V3Request<'_>,
    presented_hex: &str,
) -> Result<(), String> {
    let mut first = None;
    for style in [EmptyValueStyle::KeyEquals, EmptyValueStyle::KeyOnly] {
        let sts = v3_string_to_sign(&v3_canonical_request(req, style));
        if v3_verify(secret, &sts, presented_hex) {
            return Ok(());
        }
        first.get_or_insert(sts);
    }
    Err(first.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";

    #[test]
    fn v1_official_doc_vector() {
        let params = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", NONCE),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ];
        let sts = v1_string_to_sign("GET", params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
        assert!(v1_verify(
            "testsecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        // A '+' read as a space from a raw query string still verifies.
        assert!(v1_verify(
            "testsecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ uX5qY="
        ));
        assert!(!v1_verify(
            "othersecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!v1_verify("testsecret", &sts, "not base64!"));
    }

    #[test]
    fn v1_sdk_unit_test_vector() {
        // darabonba-openapi-util get_rpcsignature({'query':'test','body':'test'}, 'GET', 'secret').
        let sts = v1_string_to_sign("GET", [("query", "test"), ("body", "test")]);
        assert_eq!(v1_signature("secret", &sts), "XlUyV4sXjOuX5FnjUz9IF9tm5rU=");
    }

    #[test]
    fn v1_bgp_vector_with_hard_characters() {
        let params = [
            ("AccessKeyId", "testid"),
            ("Action", "CreateBgpPeer"),
            ("BfdMultiHop", "3"),
            ("BgpGroupId", "bgpg-wz9f62v4fbg1234"),
            ("ClientToken", "a b*c~d+e/é"),
            ("EnableBfd", "true"),
            ("Format", "JSON"),
            ("PeerIpAddress", "10.0.0.2"),
            ("RegionId", "cn-shanghai"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", NONCE),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2016-04-28"),
            ("Signature", "ignored"),
        ];
        assert_eq!(pop_encode("a b*c~d+e/é"), "a%20b%2Ac~d%2Be%2F%C3%A9");
        let sts = v1_string_to_sign("POST", params);
        assert_eq!(
            sts,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DCreateBgpPeer%26BfdMultiHop%3D3%26BgpGroupId%3Dbgpg-wz9f62v4fbg1234%26ClientToken%3Da%2520b%252Ac~d%252Be%252F%25C3%25A9%26EnableBfd%3Dtrue%26Format%3DJSON%26PeerIpAddress%3D10.0.0.2%26RegionId%3Dcn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2016-04-28"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "BHRvu7OfRs7s6aPbrpijSyjCJR4="
        );
    }

    #[test]
    fn v1_empty_values_are_signed() {
        let with = v1_string_to_sign("GET", [("A", "1"), ("SignatureType", "")]);
        assert!(with.ends_with("A%3D1%26SignatureType%3D"), "{with}");
    }

    fn doc_headers(host: &str, action: &str, version: &str) -> Vec<(String, String)> {
        [
            ("host", host),
            ("x-acs-action", action),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-version", version),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn v3_official_doc_vector() {
        let req = V3Request {
            method: "POST",
            path: "/",
            raw_query: "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
            headers: doc_headers("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26"),
            body: b"",
        };
        let cr = v3_canonical_request(&req, EmptyValueStyle::KeyEquals);
        assert_eq!(
            hex_sha256(cr.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        let sig = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";
        assert_eq!(
            v3_signature("YourAccessKeySecret", &v3_string_to_sign(&cr)),
            sig
        );
        assert!(v3_verify_request("YourAccessKeySecret", &req, sig).is_ok());
        assert!(v3_verify_request("YourAccessKeySecret", &req, &sig.to_uppercase()).is_ok());
        let err = v3_verify_request("wrong", &req, sig).unwrap_err();
        assert!(err.starts_with("ACS3-HMAC-SHA256\n7ea06492"), "{err}");
    }

    #[test]
    fn v3_bgp_vector_and_node_raw_star() {
        let headers = doc_headers(
            "vpc.cn-shanghai.aliyuncs.com",
            "CreateBgpPeer",
            "2016-04-28",
        );
        let encoded = "BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a%20b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&RegionId=cn-shanghai";
        // Node leaves '*' raw on the wire; the canonical form must not change.
        let node_style = "RegionId=cn-shanghai&EnableBfd=true&ClientToken=a%20b*c~d%2Be%2F%C3%A9&BgpGroupId=bgpg-wz9f62v4fbg1234&BfdMultiHop=3";
        // The Python SDK writes the space as '+' on the wire.
        let python_style = "BfdMultiHop=3&BgpGroupId=bgpg-wz9f62v4fbg1234&ClientToken=a+b%2Ac~d%2Be%2F%C3%A9&EnableBfd=true&RegionId=cn-shanghai";
        let sig = "8a817d625561532d336c01d4842f0071141b299d327ecbd903a4b218fa08fd83";
        for raw_query in [encoded, node_style, python_style] {
            let req = V3Request {
                method: "POST",
                path: "/",
                raw_query,
                headers: headers.clone(),
                body: b"",
            };
            let cr = v3_canonical_request(&req, EmptyValueStyle::KeyEquals);
            assert_eq!(
                hex_sha256(cr.as_bytes()),
                "656faecb6b0054e92d1a9568cc688cc3f5d3d1acf710b46830cee4d34d38a88d"
            );
            assert!(v3_verify_request("YourAccessKeySecret", &req, sig).is_ok());
        }
    }

    #[test]
    fn v3_empty_values_accept_both_styles() {
        assert_eq!(
            v3_canonical_query("b=&a=1", EmptyValueStyle::KeyEquals),
            "a=1&b="
        );
        assert_eq!(
            v3_canonical_query("b&a=1", EmptyValueStyle::KeyOnly),
            "a=1&b"
        );
        let headers = vec![("host".to_owned(), "h".to_owned())];
        for style in [EmptyValueStyle::KeyEquals, EmptyValueStyle::KeyOnly] {
            let req = V3Request {
                method: "GET",
                path: "/",
                raw_query: "k&a=1",
                headers: headers.clone(),
                body: b"",
            };
            let sig = v3_signature("s", &v3_string_to_sign(&v3_canonical_request(&req, style)));
            assert!(v3_verify_request("s", &req, &sig).is_ok(), "{style:?}");
        }
    }

    #[test]
    fn v3_authorization_header_parses() {
        let a = parse_v3_authorization(
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-date,Signature=abc",
        )
        .unwrap();
        assert_eq!(a.credential, "YourAccessKeyId");
        assert_eq!(a.signed_headers, ["host", "x-acs-action", "x-acs-date"]);
        assert_eq!(a.signature, "abc");
        assert!(parse_v3_authorization("ACS3-HMAC-SHA256 Credential=x,Signature=y").is_none());
        assert!(parse_v3_authorization("Bearer token").is_none());
    }
}
