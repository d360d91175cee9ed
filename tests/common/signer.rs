//! The tests' own signer of the two Alibaba Cloud RPC signatures, written from the published
//! algorithm and independent of both `src` signers (`src/cloud/signing.rs`,
//! `src/emulator/sign.rs`): the emulator tests sign with it, the client tests verify with it.
//! `tests/cloud_client.rs::verifier_reproduces_published_vectors` checks it against the
//! documentation's vectors.
//!
//! - V1 (HMAC-SHA1): `Signature = base64(HMAC-SHA1(secret + "&", METHOD&%2F&enc(query)))`.
//! - V3 (ACS3-HMAC-SHA256): `hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" +
//!   hex(SHA256(canonical request))))`.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Owned `(name, value)` pairs collected into any map (parameters, an environment).
pub fn owned<C: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> C {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// RFC 3986 encoding, byte by byte: unreserved characters stay, the rest is `%XX` (upper case).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a raw query string into decoded pairs (no `+`-as-space: RPC wire rules).
pub fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let d = |x: &str| {
                percent_encoding::percent_decode_str(x)
                    .decode_utf8()
                    .expect("utf-8")
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

/// The canonical query: every pair encoded, sorted, joined as `k=v&k=v`.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (enc(k.as_ref()), enc(v.as_ref())))
        .collect();
    encoded.sort();
    encoded
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V1 signature of a canonical query sent with `method`.
pub fn v1_signature(method: &str, canonical_query: &str, secret: &str) -> String {
    let string_to_sign = format!("{method}&{}&{}", enc("/"), enc(canonical_query));
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("hmac key");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Lower-case hex SHA-256 (the V3 body hash; of `b""` for an empty body).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The V3 canonical request. `canonical_headers` is one `name:value\n` line per signed header.
pub fn v3_canonical_request(
    method: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    body_hash: &str,
) -> String {
    format!("{method}\n/\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{body_hash}")
}

/// The V3 signature of a canonical request: (hashed canonical request, signature).
pub fn v3_signature(canonical_request: &str, secret: &str) -> (String, String) {
    let hashed = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!("ACS3-HMAC-SHA256\n{hashed}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(string_to_sign.as_bytes());
    (hashed, hex::encode(mac.finalize().into_bytes()))
}

/// The current time as the API's `Timestamp` / `x-acs-date` (`2026-12-01T10:00:00Z`).
pub fn utc_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
