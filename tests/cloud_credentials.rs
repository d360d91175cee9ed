//! The credential provider chain against a fake STS (wiremock) and temporary files. Every
//! test passes its own environment map, so nothing mutates the process environment.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use alicloud_bgp_operator::cloud::{CredentialChain, CredentialSource, Credentials, ErrorClass};
use common::mock::answer_in_turn;
use common::signer;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    signer::owned(pairs)
}

fn sts_ok(id: &str, valid_for_secs: i64) -> ResponseTemplate {
    let expiration = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(valid_for_secs))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    ResponseTemplate::new(200).set_body_json(json!({
        "RequestId": "STS-REQ",
        "AssumedRoleUser": {"Arn": "acs:ram::1:role/r/s", "AssumedRoleId": "3:s"},
        "Credentials": {
            "AccessKeyId": id,
            "AccessKeySecret": format!("{id}-secret"),
            "SecurityToken": format!("{id}-token"),
            "Expiration": expiration,
        }
    }))
}

async fn setup() -> MockServer {
    alicloud_bgp_operator::install_crypto_provider();
    MockServer::start().await
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// A temporary HOME holding a projected service-account token (`token`), for the OIDC provider.
struct Oidc {
    dir: tempfile::TempDir,
    token_file: PathBuf,
}

impl Oidc {
    fn new(token: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        write(&token_file, token);
        Self { dir, token_file }
    }

    /// The OIDC provider's environment (role, provider, token file, session, HOME).
    fn env(&self) -> Vec<(&'static str, String)> {
        let token = self.token_file.to_string_lossy().into_owned();
        let home = self.dir.path().to_string_lossy().into_owned();
        oidc_env(&token, &home)
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect()
    }

    /// A chain from [`Self::env`] plus `extra`, with the fake STS.
    fn chain_with(&self, extra: &[(&str, &str)], sts: &MockServer) -> CredentialChain {
        let env_vars = self.env();
        let mut pairs: Vec<(&str, &str)> = env_vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        CredentialChain::from_env_map(env(&pairs), Some(sts.uri())).expect("chain")
    }

    fn chain(&self, sts: &MockServer) -> CredentialChain {
        self.chain_with(&[], sts)
    }

    /// Writes `~/.alibabacloud/credentials.ini`.
    fn credentials_file(&self, text: &str) {
        let alibaba_dir = self.dir.path().join(".alibabacloud");
        std::fs::create_dir_all(&alibaba_dir).expect("mkdir");
        write(&alibaba_dir.join("credentials.ini"), text);
    }

    fn home(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }
}

fn oidc_env<'a>(token_file: &'a str, home: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/bgp-operator"),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "acs:ram::123:oidc-provider/ack-rrsa",
        ),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file),
        ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "op-session"),
        ("HOME", home),
    ]
}

#[tokio::test]
async fn oidc_assumes_role_unsigned_and_caches_until_near_expiry() {
    let sts = setup().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(query_param("Action", "AssumeRoleWithOIDC"))
        .and(query_param("Version", "2015-04-01"))
        .and(query_param("Format", "JSON"))
        .and(body_string_contains("OIDCToken=jwt-one"))
        .and(body_string_contains("RoleSessionName=op-session"))
        .and(body_string_contains("DurationSeconds=3600"))
        .respond_with(sts_ok("STS.oidc1", 3600))
        .expect(1)
        .mount(&sts)
        .await;
    let oidc = Oidc::new("jwt-one\n");
    let chain = oidc.chain(&sts);
    let (c, source) = chain.credentials_with_source().await.expect("creds");
    assert_eq!(
        c,
        Credentials::new(
            "STS.oidc1",
            "STS.oidc1-secret",
            Some("STS.oidc1-token".into())
        )
    );
    assert_eq!(
        source,
        CredentialSource::OidcRoleArn {
            role_arn: "acs:ram::123:role/bgp-operator".into()
        }
    );
    // Cached: no second STS call.
    assert_eq!(chain.credentials().await.expect("creds"), c);
    let reqs = sts.received_requests().await.expect("recording");
    let body = String::from_utf8_lossy(&reqs[0].body);
    assert!(
        body.contains("RoleArn=acs%3Aram%3A%3A123%3Arole%2Fbgp-operator"),
        "{body}"
    );
    assert!(
        reqs[0]
            .url
            .query()
            .is_some_and(|q| !q.contains("Signature=")),
        "unsigned"
    );
}

#[tokio::test]
async fn oidc_refreshes_near_expiry_and_rereads_the_token_file() {
    let sts = setup().await;
    // Credentials valid for 60 s only: inside the refresh margin, so every call refreshes.
    Mock::given(method("POST"))
        .and(body_string_contains("OIDCToken=jwt-one"))
        .respond_with(sts_ok("STS.first", 60))
        .expect(1)
        .mount(&sts)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("OIDCToken=jwt-two"))
        .respond_with(sts_ok("STS.second", 3600))
        .expect(1)
        .mount(&sts)
        .await;
    let oidc = Oidc::new("jwt-one");
    let chain = oidc.chain(&sts);
    assert_eq!(
        chain.credentials().await.expect("first").access_key_id(),
        "STS.first"
    );
    // The kubelet rotated the projected token.
    write(&oidc.token_file, "jwt-two");
    assert_eq!(
        chain.credentials().await.expect("second").access_key_id(),
        "STS.second"
    );
    // Now valid for an hour: cached.
    assert_eq!(
        chain.credentials().await.expect("third").access_key_id(),
        "STS.second"
    );
}

#[tokio::test]
async fn failed_refresh_falls_back_to_still_valid_cached_credentials() {
    let sts = setup().await;
    answer_in_turn(
        &sts,
        [sts_ok("STS.cached", 200)],
        ResponseTemplate::new(500).set_body_json(json!({"Code": "InternalError", "Message": "x"})),
    )
    .await;
    let oidc = Oidc::new("jwt");
    let chain = oidc.chain(&sts);
    assert_eq!(
        chain.credentials().await.expect("first").access_key_id(),
        "STS.cached"
    );
    // 200 s left < 300 s margin: refresh attempted, fails, cached ones still valid.
    assert_eq!(
        chain.credentials().await.expect("fallback").access_key_id(),
        "STS.cached"
    );
    assert_eq!(sts.received_requests().await.map(|r| r.len()), Some(2));
}

#[tokio::test]
async fn sts_rejection_is_a_credentials_error_without_secrets() {
    let sts = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "RequestId": "STS-ERR", "Code": "AuthenticationFail.OIDCToken.Expired", "Message": "token expired"
        })))
        .mount(&sts)
        .await;
    let oidc = Oidc::new("secret-jwt-content");
    let chain = oidc.chain(&sts);
    let err = chain.credentials().await.expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Credentials);
    let text = err.to_string();
    assert!(
        text.contains("AuthenticationFail.OIDCToken.Expired"),
        "{text}"
    );
    assert!(text.contains("STS-ERR"), "{text}");
    assert!(!text.contains("secret-jwt-content"), "{text}");
    assert!(!format!("{chain:?}").contains("secret"), "{chain:?}");
}

#[tokio::test]
async fn missing_token_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope").to_string_lossy().into_owned();
    let home = dir.path().to_string_lossy().into_owned();
    alicloud_bgp_operator::install_crypto_provider();
    let chain = CredentialChain::from_env_map(
        env(&oidc_env(&missing, &home)),
        Some("http://127.0.0.1:9".into()),
    )
    .expect("chain");
    let err = chain.credentials().await.expect_err("must fail");
    assert_eq!(err.class(), ErrorClass::Credentials);
    assert!(err.to_string().contains("OIDC token file"), "{err}");
}

/// Verifies the V1 signature of the AssumeRole call (the RAM-role provider signs it) with the
/// tests' own signer (`tests/common/signer.rs`).
fn v1_signature_ok(raw_query: &str, secret: &str) -> bool {
    let mut sent = String::new();
    let mut rest = Vec::new();
    for (k, v) in signer::decode_query(raw_query) {
        if k == "Signature" {
            sent = v;
        } else {
            rest.push((k, v));
        }
    }
    signer::v1_signature("POST", &signer::canonical_query(rest), secret) == sent
}

#[tokio::test]
async fn ram_role_arn_profile_assumes_role_with_a_signed_call() {
    let sts = setup().await;
    Mock::given(method("POST"))
        .and(query_param("Action", "AssumeRole"))
        .and(query_param("Version", "2015-04-01"))
        .and(query_param("AccessKeyId", "LTAIbase"))
        .and(query_param("RoleArn", "acs:ram::123:role/bgp"))
        .and(query_param("RoleSessionName", "file-session"))
        .and(query_param("SignatureMethod", "HMAC-SHA1"))
        .respond_with(sts_ok("STS.ram", 3600))
        .expect(1)
        .mount(&sts)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials.ini");
    write(
        &file,
        "[default]\ntype = access_key\naccess_key_id = LTAIdefault\naccess_key_secret = default-secret\n\n\
         [ops]\ntype = ram_role_arn\naccess_key_id = LTAIbase\naccess_key_secret = base-secret\n\
         role_arn = acs:ram::123:role/bgp\nrole_session_name = file-session\n",
    );
    let chain = CredentialChain::from_env_map(
        env(&[
            ("ALIBABA_CLOUD_CREDENTIALS_FILE", &file.to_string_lossy()),
            ("ALIBABA_CLOUD_PROFILE", "ops"),
            ("HOME", &dir.path().to_string_lossy()),
        ]),
        Some(sts.uri()),
    )
    .expect("chain");
    let (c, source) = chain.credentials_with_source().await.expect("creds");
    assert_eq!(c.access_key_id(), "STS.ram");
    assert!(c.is_sts());
    assert_eq!(
        source,
        CredentialSource::RamRoleArn {
            profile: "ops".into(),
            role_arn: "acs:ram::123:role/bgp".into()
        }
    );
    let reqs = sts.received_requests().await.expect("recording");
    assert!(v1_signature_ok(
        reqs[0].url.query().unwrap_or(""),
        "base-secret"
    ));
}

#[tokio::test]
async fn credentials_file_access_key_profiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alibaba_dir = dir.path().join(".alibabacloud");
    std::fs::create_dir_all(&alibaba_dir).expect("mkdir");
    write(
        &alibaba_dir.join("credentials.ini"),
        "[default]\ntype = access_key\naccess_key_id = LTAIdefault\naccess_key_secret = default-secret\n\
         [other]\naccess_key_id = LTAIother\naccess_key_secret = other-secret\n\
         [weird]\ntype = rsa_key_pair\n",
    );
    let home = dir.path().to_string_lossy().into_owned();
    alicloud_bgp_operator::install_crypto_provider();

    // Default location and profile.
    let chain = CredentialChain::from_env_map(env(&[("HOME", &home)]), None).expect("chain");
    let (c, source) = chain.credentials_with_source().await.expect("creds");
    assert_eq!(c, Credentials::new("LTAIdefault", "default-secret", None));
    assert!(
        matches!(source, CredentialSource::CredentialsFile { ref profile, .. } if profile == "default")
    );

    // Profile chosen by ALIBABA_CLOUD_PROFILE (type defaults to access_key).
    let chain = CredentialChain::from_env_map(
        env(&[("HOME", &home), ("ALIBABA_CLOUD_PROFILE", "other")]),
        None,
    )
    .expect("chain");
    assert_eq!(
        chain.credentials().await.expect("creds").access_key_id(),
        "LTAIother"
    );

    // Unsupported type and unknown profile are clear errors.
    for (profile, needle) in [("weird", "not supported"), ("absent", "not found")] {
        let chain = CredentialChain::from_env_map(
            env(&[("HOME", &home), ("ALIBABA_CLOUD_PROFILE", profile)]),
            None,
        )
        .expect("chain");
        let err = chain.credentials().await.expect_err("must fail");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!err.to_string().contains("default-secret"), "{err}");
    }

    // An explicit file that does not exist is an error, not a silent skip.
    let chain = CredentialChain::from_env_map(
        env(&[
            ("HOME", &home),
            ("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent/creds.ini"),
        ]),
        None,
    )
    .expect("chain");
    assert!(chain.credentials().await.is_err());
}

#[tokio::test]
async fn order_env_then_oidc_then_file() {
    let sts = setup().await;
    Mock::given(method("POST"))
        .respond_with(sts_ok("STS.oidc", 3600))
        .mount(&sts)
        .await;
    let oidc = Oidc::new("jwt");
    oidc.credentials_file("[default]\naccess_key_id = LTAIfile\naccess_key_secret = file-secret\n");
    let home = oidc.home();

    let chain = oidc.chain_with(
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret"),
        ],
        &sts,
    );
    let (c, source) = chain.credentials_with_source().await.expect("env");
    assert_eq!(c.access_key_id(), "LTAIenv");
    assert_eq!(source, CredentialSource::Environment);

    let chain = oidc.chain(&sts);
    assert_eq!(
        chain.credentials().await.expect("oidc").access_key_id(),
        "STS.oidc"
    );

    let chain =
        CredentialChain::from_env_map(env(&[("HOME", &home)]), Some(sts.uri())).expect("chain");
    assert_eq!(
        chain.credentials().await.expect("file").access_key_id(),
        "LTAIfile"
    );

    // Only the OIDC chain called STS; the environment and file providers never do.
    assert_eq!(sts.received_requests().await.map(|r| r.len()), Some(1));
}

#[tokio::test]
async fn a_failing_provider_falls_through_to_the_next() {
    let sts = setup().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"Code": "NoPermission", "Message": "no"})),
        )
        .mount(&sts)
        .await;
    let oidc = Oidc::new("jwt");
    oidc.credentials_file("[default]\naccess_key_id = LTAIfile\naccess_key_secret = file-secret\n");
    let chain = oidc.chain(&sts);
    let (c, source) = chain
        .credentials_with_source()
        .await
        .expect("file after OIDC failed");
    assert_eq!(c.access_key_id(), "LTAIfile");
    assert!(matches!(source, CredentialSource::CredentialsFile { .. }));
}

#[tokio::test]
async fn sts_endpoint_from_env_map() {
    alicloud_bgp_operator::install_crypto_provider();
    let chain = CredentialChain::from_env_map(
        env(&[("ALIBABA_CLOUD_STS_ENDPOINT", "http://127.0.0.1:4567")]),
        None,
    )
    .expect("chain");
    assert_eq!(chain.sts_endpoint(), "http://127.0.0.1:4567");
    let chain = CredentialChain::from_env_map(env(&[]), None).expect("chain");
    assert_eq!(chain.sts_endpoint(), "https://sts.aliyuncs.com");
}
