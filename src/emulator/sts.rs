//! The emulated STS (2015-04-01): AssumeRole (signed) and AssumeRoleWithOIDC (unsigned), issuing
//! `STS.` access keys that then authenticate VPC calls with their security token.

use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use rand::Rng as _;
use serde_json::{Map, Value, json};

use super::auth::{AuthState, Caller, StsCredential};
use super::clock;
use super::config::{EmulatorConfig, Secret};
use super::error::ApiError;
use super::params::Params;

/// Default `DurationSeconds`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// Shortest `DurationSeconds`.
pub const MIN_DURATION: Duration = Duration::from_secs(900);

fn random_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// `len` decimal digits derived from `seed` (stable ids for users and roles).
fn stable_digits(seed: &str, len: usize) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut out: String = digest
        .iter()
        .cycle()
        .take(len)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    if out.starts_with('0') {
        out.replace_range(0..1, "1");
    }
    out
}

/// STS `GetCallerIdentity`: who signed the call. A long-term key of the account itself is
/// `Account` (`acs:ram::<uid>:root`), a RAM user's key `RAMUser`
/// (`acs:ram::<uid>:user/<name>`), STS credentials `AssumedRoleUser`
/// (`acs:ram::<uid>:assumed-role/<role>/<session>`, in the role's account).
pub fn caller_identity(
    _auth: &AuthState,
    _config: &EmulatorConfig,
    caller: &Caller,
) -> Map<String, Value> {
    let uid = &caller.account;
    let body = match (&caller.role_arn, &caller.session, &caller.user) {
        (Some(role_arn), Some((session, role_id)), _) => {
            let role = parse_role_arn(role_arn)
                .map(|(_, name)| name)
                .unwrap_or("role");
            let principal = format!("{role_id}:{session}");
            json!({
                "AccountId": uid,
                "Arn": format!("acs:ram::{uid}:assumed-role/{}/{session}", role.to_ascii_lowercase()),
                "IdentityType": "AssumedRoleUser",
                "PrincipalId": principal,
                "RoleId": role_id,
                "UserId": principal,
            })
        }
        (_, _, Some(user)) => {
            let user_id = stable_digits(&format!("{uid}/{user}"), 16);
            json!({
                "AccountId": uid,
                "Arn": format!("acs:ram::{uid}:user/{user}"),
                "IdentityType": "RAMUser",
                "PrincipalId": user_id,
                "UserId": user_id,
            })
        }
        _ => json!({
            "AccountId": uid,
            "Arn": format!("acs:ram::{uid}:root"),
            "IdentityType": "Account",
            "PrincipalId": uid,
            "UserId": uid,
        }),
    };
    match body {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `acs:ram::<uid>:role/<name>` → (uid, name).
pub fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("acs:ram::")?;
    let (uid, role) = rest.split_once(':')?;
    let name = role.strip_prefix("role/")?;
    (!uid.is_empty() && uid.chars().all(|c| c.is_ascii_digit()) && !name.is_empty())
        .then_some((uid, name))
}

/// Which account a role ARN lives in, or the refusal.
fn role_account(
    config: &EmulatorConfig,
    arn: &str,
    fallback: Option<&str>,
) -> Result<String, ApiError> {
    let (uid, _) = parse_role_arn(arn).ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        )
    })?;
    let listed = config
        .accounts
        .iter()
        .any(|a| a.roles.iter().any(|r| r.eq_ignore_ascii_case(arn)));
    if !listed && !config.sts.allow_any_role {
        return Err(ApiError::new(
            404,
            "EntityNotExist.Role",
            format!("The role not exists: {arn}."),
        ));
    }
    let account = config
        .accounts
        .iter()
        .find(|a| a.uid == uid)
        .map(|a| a.uid.clone())
        .or_else(|| fallback.map(str::to_owned))
        .unwrap_or_else(|| uid.to_owned());
    Ok(account)
}

fn duration(config: &EmulatorConfig, p: &Params) -> Result<Duration, ApiError> {
    match p.int::<u64>("DurationSeconds")? {
        None => Ok(DEFAULT_DURATION.min(config.sts.max_duration.max(MIN_DURATION))),
        Some(s) => {
            let d = Duration::from_secs(s);
            if d < MIN_DURATION || d > config.sts.max_duration {
                Err(ApiError::new(
                    400,
                    "InvalidParameter.DurationSeconds",
                    "The parameter DurationSeconds is out of range.",
                ))
            } else {
                Ok(d)
            }
        }
    }
}

/// The payload of a JWT, decoded without verifying its signature (Null if undecodable).
fn jwt_claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// The `aud` claim as a list.
fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Refuses a token the role's trust entries do not accept (see
/// [`super::config::OidcTrust`]); roles without entries accept any token.
fn check_oidc_trust(config: &EmulatorConfig, role_arn: &str, token: &str) -> Result<(), ApiError> {
    let entries: Vec<_> = config
        .sts
        .oidc_trust
        .iter()
        .filter(|t| t.role.eq_ignore_ascii_case(role_arn))
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let claims = jwt_claims(token);
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    let aud = audiences(&claims);
    let accepted = entries.iter().any(|t| {
        t.issuer.as_deref().is_none_or(|i| i == claim("iss"))
            && t.subject.as_deref().is_none_or(|s| s == claim("sub"))
            && t.audience
                .as_deref()
                .is_none_or(|a| aud.iter().any(|x| x == a))
    });
    if accepted {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "AuthenticationFail.NoPermission",
        format!(
            "The OIDC token (iss {:?}, sub {:?}, aud {:?}) is not trusted by role {role_arn}.",
            claim("iss"),
            claim("sub"),
            aud.join(",")
        ),
    ))
}

/// Claims of an OIDC token (best effort: an undecodable token gives empty claims).
fn oidc_token_info(token: &str) -> Value {
    let claims = jwt_claims(token);
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let client_ids = audiences(&claims).join(",");
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_i64)
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    json!({
        "Subject": text("sub"),
        "Issuer": text("iss"),
        "ClientIds": client_ids,
        "ExpirationTime": time("exp"),
        "IssuanceTime": time("iat"),
        "VerificationInfo": "Success",
    })
}

/// AssumeRole (`caller` is the signed caller) or AssumeRoleWithOIDC (`caller` is `None`).
pub fn assume_role(
    auth: &mut AuthState,
    config: &EmulatorConfig,
    caller: Option<&Caller>,
    p: &Params,
    now: Timestamp,
) -> Result<Map<String, Value>, ApiError> {
    let oidc = caller.is_none();
    let role_arn = p.required("RoleArn")?;
    let session = if oidc {
        p.required("OIDCProviderArn")?;
        // The token file content: must be non-empty, and trusted by the role.
        let token = p.required("OIDCToken")?;
        check_oidc_trust(config, role_arn, token)?;
        p.get("RoleSessionName").unwrap_or("emulator-session")
    } else {
        p.required("RoleSessionName")?
    };
    let lifetime = duration(config, p)?;
    let fallback = caller
        .map(|c| c.account.clone())
        .or_else(|| config.accounts.first().map(|a| a.uid.clone()));
    let account = role_account(config, role_arn, fallback.as_deref())?;
    let expiration = clock::add(now, lifetime);
    let role_id = stable_digits(role_arn, 17);
    let access_key_id = format!("STS.{}", random_string(25));
    let secret = random_string(44);
    let mut raw = [0u8; 96];
    rand::rng().fill(&mut raw[..]);
    let token = format!(
        "CAIS{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    auth.add_sts(StsCredential {
        access_key_id: access_key_id.clone(),
        secret: Secret::new(secret.clone()),
        security_token: Secret::new(token.clone()),
        expiration,
        account,
        role_arn: role_arn.to_owned(),
        session_name: session.to_owned(),
        role_id: role_id.clone(),
    });
    let mut body = json!({
        "Credentials": {
            "AccessKeyId": access_key_id,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
        "AssumedRoleUser": {
            "AssumedRoleId": format!("{role_id}:{session}"),
            "Arn": format!("{role_arn}/{session}"),
        },
    });
    if oidc {
        body["OIDCTokenInfo"] = oidc_token_info(p.get("OIDCToken").unwrap_or(""));
    }
    Ok(match body {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::params::params;

    #[test]
    fn caller_identity_shapes() {
        let config = EmulatorConfig::demo();
        let auth = AuthState::from_config(&config);
        let mut caller = Caller {
            access_key_id: "LTAI".into(),
            account: "42".into(),
            role_arn: None,
            session: None,
            user: None,
        };
        let root = caller_identity(&auth, &config, &caller);
        assert_eq!(
            (root["IdentityType"].as_str(), root["Arn"].as_str()),
            (Some("Account"), Some("acs:ram::42:root"))
        );
        caller.user = Some("ops".into());
        let user = caller_identity(&auth, &config, &caller);
        assert_eq!(user["Arn"], "acs:ram::42:user/ops");
        assert_eq!(user["IdentityType"], "RAMUser");
        assert_eq!(user["UserId"].as_str().unwrap().len(), 16);
        caller.role_arn = Some("acs:ram::42:role/Op".into());
        caller.session = Some(("s1".into(), "123".into()));
        let role = caller_identity(&auth, &config, &caller);
        assert_eq!(role["Arn"], "acs:ram::42:assumed-role/op/s1");
        assert_eq!(role["PrincipalId"], "123:s1");
        assert_eq!(stable_digits("x", 17), stable_digits("x", 17));
        assert_ne!(stable_digits("x", 17), stable_digits("y", 17));
    }

    #[test]
    fn role_arns_parse() {
        assert_eq!(parse_role_arn("acs:ram::123:role/op"), Some(("123", "op")));
        assert_eq!(parse_role_arn("acs:ram::abc:role/op"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::1:role/x"), None);
    }

    #[test]
    fn oidc_requires_a_token_and_known_role_when_strict() {
        let mut config = EmulatorConfig::demo();
        let mut auth = AuthState::from_config(&config);
        let now = Timestamp::UNIX_EPOCH;
        let role = "acs:ram::1234567890123456:role/alicloud-bgp-operator";
        let base = [
            ("RoleArn", role),
            (
                "OIDCProviderArn",
                "acs:ram::1234567890123456:oidc-provider/ack",
            ),
        ];
        let err = assume_role(&mut auth, &config, None, &params(&base), now).unwrap_err();
        assert_eq!(err.code, "MissingOIDCToken");
        let mut with_empty = base.to_vec();
        with_empty.push(("OIDCToken", ""));
        assert_eq!(
            assume_role(&mut auth, &config, None, &params(&with_empty), now)
                .unwrap_err()
                .code,
            "MissingOIDCToken"
        );
        let mut ok = base.to_vec();
        ok.push(("OIDCToken", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIiwiaXNzIjoiaHR0cHM6Ly9vaWRjIiwiYXVkIjoic3RzLmFsaXl1bmNzLmNvbSJ9.sig"));
        let body = assume_role(&mut auth, &config, None, &params(&ok), now).unwrap();
        let creds = &body["Credentials"];
        assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("STS."));
        assert_eq!(creds["Expiration"], "1970-01-01T01:00:00Z");
        assert_eq!(
            body["OIDCTokenInfo"]["Subject"],
            "system:serviceaccount:a:b"
        );
        assert_eq!(body["OIDCTokenInfo"]["ClientIds"], "sts.aliyuncs.com");
        assert_eq!(auth.sts_count(), 1);

        config.sts.allow_any_role = false;
        let mut unknown = ok.clone();
        unknown[0] = ("RoleArn", "acs:ram::1234567890123456:role/other");
        let err = assume_role(&mut auth, &config, None, &params(&unknown), now).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_ref()),
            (404, "EntityNotExist.Role")
        );
        assert!(assume_role(&mut auth, &config, None, &params(&ok), now).is_ok());
    }

    #[test]
    fn oidc_trust_checks_issuer_subject_and_audience() {
        use base64::Engine as _;
        let jwt = |claims: serde_json::Value| {
            let enc = |v: &serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            };
            format!("{}.{}.sig", enc(&json!({"alg": "RS256"})), enc(&claims))
        };
        let role = "acs:ram::1234567890123456:role/team-a";
        let mut config = EmulatorConfig::demo();
        config.sts.oidc_trust.push(super::super::config::OidcTrust {
            role: role.to_owned(),
            issuer: Some("https://k8s".into()),
            subject: Some("system:serviceaccount:a:bgp".into()),
            audience: Some("sts.aliyuncs.com".into()),
        });
        let good = json!({"iss": "https://k8s", "sub": "system:serviceaccount:a:bgp", "aud": ["sts.aliyuncs.com"]});
        let cases = [
            ("trusted", good.clone(), true),
            (
                "other namespace",
                json!({"iss": "https://k8s", "sub": "system:serviceaccount:b:bgp", "aud": "sts.aliyuncs.com"}),
                false,
            ),
            (
                "other issuer",
                json!({"iss": "https://evil", "sub": "system:serviceaccount:a:bgp", "aud": "sts.aliyuncs.com"}),
                false,
            ),
            (
                "other audience",
                json!({"iss": "https://k8s", "sub": "system:serviceaccount:a:bgp", "aud": "api"}),
                false,
            ),
        ];
        for (reason, claims, ok) in cases {
            let result = check_oidc_trust(&config, role, &jwt(claims));
            assert_eq!(result.is_ok(), ok, "{reason}: {result:?}");
            if let Err(e) = result {
                assert_eq!(
                    (e.status, e.code.as_ref()),
                    (403, "AuthenticationFail.NoPermission")
                );
            }
        }
        assert!(check_oidc_trust(&config, "acs:ram::1:role/untrusted-any", "x").is_ok());
        assert!(check_oidc_trust(&config, role, "not-a-jwt").is_err());
    }

    #[test]
    fn duration_limits() {
        let config = EmulatorConfig::demo();
        let mut auth = AuthState::from_config(&config);
        let caller = Caller {
            access_key_id: "LTAI".into(),
            account: "1234567890123456".into(),
            role_arn: None,
            session: None,
            user: None,
        };
        let p = params(&[
            (
                "RoleArn",
                "acs:ram::1234567890123456:role/alicloud-bgp-operator",
            ),
            ("RoleSessionName", "s"),
            ("DurationSeconds", "100"),
        ]);
        let err =
            assume_role(&mut auth, &config, Some(&caller), &p, Timestamp::UNIX_EPOCH).unwrap_err();
        assert_eq!(err.code, "InvalidParameter.DurationSeconds");
    }
}
