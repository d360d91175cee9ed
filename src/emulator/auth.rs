//! Authentication of API calls: long-term and STS access keys, timestamp window, nonce replay
//! and the V1 / V3 signature checks.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

use super::clock;
use super::config::{EmulatorConfig, Secret};
use super::error::ApiError;
use super::sign;
use super::wire::{ApiRequest, Auth};

/// The authenticated caller of an API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Access key id (long-term `LTAI…` or `STS.…`).
    pub access_key_id: String,
    /// Account uid the key belongs to.
    pub account: String,
    /// For STS keys, the assumed role ARN.
    pub role_arn: Option<String>,
    /// For STS keys, the role session name and the role id.
    pub session: Option<(String, String)>,
    /// For long-term keys, the RAM user the key belongs to (none: the account's own key).
    pub user: Option<String>,
}

/// Temporary credentials issued by the emulated STS.
#[derive(Clone, Debug)]
pub struct StsCredential {
    /// `STS.…`.
    pub access_key_id: String,
    /// Secret.
    pub secret: Secret,
    /// Security token (checked on every call).
    pub security_token: Secret,
    /// End of validity.
    pub expiration: Timestamp,
    /// Account uid of the role.
    pub account: String,
    /// Assumed role ARN.
    pub role_arn: String,
    /// Role session name.
    pub session_name: String,
    /// Role id (digits, as GetCallerIdentity reports it).
    pub role_id: String,
}

/// What an access key resolves to.
struct KeyInfo {
    secret: Secret,
    account: String,
    user: Option<String>,
    /// For STS keys: the expected security token, the role, and (session, role id).
    sts: Option<(Secret, String, (String, String))>,
}

/// Credentials and replay protection.
#[derive(Clone, Debug, Default)]
pub struct AuthState {
    keys: HashMap<String, (Secret, String, Option<String>)>,
    sts: HashMap<String, StsCredential>,
    nonces: HashMap<(String, String), Timestamp>,
    last_purge: Option<Timestamp>,
}

/// Stands in for a security token in messages and logs.
const REDACTED: &str = "***";

fn code(code: &str) -> ApiError {
    ApiError::from_code(code)
}

/// Parses `yyyy-MM-ddTHH:mm:ssZ` (any RFC 3339 instant is accepted).
fn parse_timestamp(value: &str) -> Result<Timestamp, ApiError> {
    value
        .parse::<Timestamp>()
        .map_err(|_| code("InvalidTimeStamp.Format"))
}

impl AuthState {
    /// The long-term keys of a configuration.
    pub fn from_config(config: &EmulatorConfig) -> Self {
        let mut keys = HashMap::new();
        for account in &config.accounts {
            for key in &account.access_keys {
                keys.insert(
                    key.id.clone(),
                    (key.secret.clone(), account.uid.clone(), key.user.clone()),
                );
            }
        }
        Self {
            keys,
            ..Self::default()
        }
    }

    /// Account uid of a long-term key.
    pub fn account_of(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(|(_, a, _)| a.as_str())
    }

    /// Stores issued STS credentials.
    pub fn add_sts(&mut self, credential: StsCredential) {
        self.sts
            .insert(credential.access_key_id.clone(), credential);
    }

    /// Number of issued STS credentials still stored.
    pub fn sts_count(&self) -> usize {
        self.sts.len()
    }

    /// Forgets nonces older than the window and expired STS credentials (at most once a
    /// second: the sweep is linear in the number of remembered nonces).
    fn purge(&mut self, now: Timestamp, window: Duration) {
        if self
            .last_purge
            .is_some_and(|last| clock::add(last, Duration::from_secs(1)) > now)
        {
            return;
        }
        self.last_purge = Some(now);
        self.nonces
            .retain(|_, seen| clock::add(*seen, window) > now);
        self.sts.retain(|_, c| c.expiration > now);
    }

    fn check_timestamp(ts: Timestamp, now: Timestamp, window: Duration) -> Result<(), ApiError> {
        let distance = now.duration_since(ts).abs();
        let window = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        if distance > window {
            Err(code("InvalidTimeStamp.Expired"))
        } else {
            Ok(())
        }
    }

    /// The secret, account and expected security token of an access key.
    fn lookup(&self, access_key_id: &str, now: Timestamp) -> Result<KeyInfo, ApiError> {
        if let Some((secret, account, user)) = self.keys.get(access_key_id) {
            return Ok(KeyInfo {
                secret: secret.clone(),
                account: account.clone(),
                user: user.clone(),
                sts: None,
            });
        }
        match self.sts.get(access_key_id) {
            // An expired STS key is "not found", as the real gateway reports it.
            Some(c) if c.expiration > now => Ok(KeyInfo {
                secret: c.secret.clone(),
                account: c.account.clone(),
                user: None,
                sts: Some((
                    c.security_token.clone(),
                    c.role_arn.clone(),
                    (c.session_name.clone(), c.role_id.clone()),
                )),
            }),
            _ => Err(code("InvalidAccessKeyId.NotFound")),
        }
    }

    /// Authenticates a signed call. Order: timestamp, access key, signature, security token,
    /// nonce (a nonce is remembered only once the signature verified). With
    /// `wrong_secret_incomplete`, a V1 signature made with a wrong secret is answered
    /// `IncompleteSignature` (as the gateway does for some wrong secrets), not
    /// `SignatureDoesNotMatch`.
    pub fn authenticate(
        &mut self,
        req: &ApiRequest,
        now: Timestamp,
        window: Duration,
        wrong_secret_incomplete: bool,
    ) -> Result<Caller, ApiError> {
        self.purge(now, window);
        let (access_key_id, nonce, token) = match &req.auth {
            Auth::V1 => self.verify_v1(req, now, window, wrong_secret_incomplete)?,
            Auth::V3(auth) => self.verify_v3(req, auth.as_ref(), now, window)?,
        };
        let KeyInfo {
            account, sts, user, ..
        } = self.lookup(&access_key_id, now)?;
        let (role_arn, session) = match sts {
            Some((expected, role, session)) => {
                if token.as_deref() != Some(expected.expose()) {
                    return Err(code("InvalidSecurityToken.MismatchWithAccessKey"));
                }
                (Some(role), Some(session))
            }
            None => (None, None),
        };
        let key = (access_key_id.clone(), nonce);
        if self.nonces.contains_key(&key) {
            return Err(code("SignatureNonceUsed"));
        }
        self.nonces.insert(key, now);
        Ok(Caller {
            access_key_id,
            account,
            role_arn,
            session,
            user,
        })
    }

    /// V1: returns (access key id, nonce, security token).
    fn verify_v1(
        &self,
        req: &ApiRequest,
        now: Timestamp,
        window: Duration,
        wrong_secret_incomplete: bool,
    ) -> Result<(String, String, Option<String>), ApiError> {
        let p = &req.params;
        let signature = p
            .get("Signature")
            .ok_or_else(|| code("IncompleteSignature"))?;
        match p.get("SignatureMethod") {
            Some("HMAC-SHA1") => {}
            None => return Err(ApiError::missing("SignatureMethod")),
            Some(_) => return Err(code("InvalidSignatureMethod")),
        }
        match p.get("SignatureVersion") {
            Some("1.0") => {}
            None => return Err(ApiError::missing("SignatureVersion")),
            Some(_) => return Err(code("InvalidSignatureVersion")),
        }
        let ts = parse_timestamp(p.required("Timestamp")?)?;
        Self::check_timestamp(ts, now, window)?;
        let nonce = p.required("SignatureNonce")?.to_owned();
        let access_key_id = p.required("AccessKeyId")?.to_owned();
        let secret = self.lookup(&access_key_id, now)?.secret;
        let string_to_sign = sign::v1_string_to_sign(
            req.method.as_str(),
            p.raw().iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        if !sign::v1_verify(secret.expose(), &string_to_sign, signature) {
            // The real gateway quotes the whole string; the security token is masked here so
            // that it never ends up in a client's error log.
            let shown = match p.get("SecurityToken") {
                Some(token) => {
                    string_to_sign.replace(&sign::pop_encode(&sign::pop_encode(token)), REDACTED)
                }
                None => string_to_sign,
            };
            if wrong_secret_incomplete {
                return Err(ApiError::incomplete_signature(&format!(
                    "server string to sign is:{shown}"
                )));
            }
            return Err(ApiError::signature_mismatch(&shown));
        }
        Ok((
            access_key_id,
            nonce,
            p.get("SecurityToken").map(str::to_owned),
        ))
    }

    /// V3: returns (access key id, nonce, security token).
    fn verify_v3(
        &self,
        req: &ApiRequest,
        auth: Option<&sign::V3Authorization>,
        now: Timestamp,
        window: Duration,
    ) -> Result<(String, String, Option<String>), ApiError> {
        let auth = auth.ok_or_else(|| code("IncompleteSignature"))?;
        v3_required_headers_signed(req, &auth.signed_headers)?;
        let date = req
            .header("x-acs-date")
            .ok_or_else(|| code("InvalidTimeStamp.Format"))?;
        Self::check_timestamp(parse_timestamp(date)?, now, window)?;
        let nonce = req
            .header("x-acs-signature-nonce")
            .ok_or_else(|| ApiError::missing("SignatureNonce"))?
            .to_owned();
        let secret = self.lookup(&auth.credential, now)?.secret;
        let headers = auth
            .signed_headers
            .iter()
            .map(|name| (name.clone(), req.joined_header(name)))
            .collect();
        let v3 = sign::V3Request {
            method: req.method.as_str(),
            path: &req.path,
            raw_query: &req.raw_query,
            headers,
            body: &req.body,
        };
        if let Err(string_to_sign) = sign::v3_verify_request(secret.expose(), &v3, &auth.signature)
        {
            let mut canonical = sign::v3_canonical_request(&v3, sign::EmptyValueStyle::KeyEquals);
            if let Some(token) = req.header("x-acs-security-token") {
                canonical = canonical.replace(token, REDACTED);
            }
            tracing::debug!(canonical_request = %canonical, "V3 signature mismatch");
            return Err(ApiError::signature_mismatch_v3(&string_to_sign));
        }
        // The signature covers the declared body hash; the body must have that hash.
        if req
            .header("x-acs-content-sha256")
            .is_some_and(|h| !h.eq_ignore_ascii_case(&sign::hex_sha256(&req.body)))
        {
            return Err(ApiError::signature_mismatch_v3(
                "x-acs-content-sha256 does not match the body",
            ));
        }
        Ok((
            auth.credential.clone(),
            nonce,
            req.header("x-acs-security-token").map(str::to_owned),
        ))
    }
}

/// The gateway's V3 rule (V3 request structure page: "all common request headers except
/// Authorization, if present, must be signed"): `host`, every `x-acs-*` header and
/// `content-type` (when sent) must be in `SignedHeaders`, and `x-acs-content-sha256` must be
/// sent. Otherwise `IncompleteSignature`, naming what is wrong.
pub fn v3_required_headers_signed(req: &ApiRequest, signed: &[String]) -> Result<(), ApiError> {
    if req.header("x-acs-content-sha256").is_none() {
        return Err(ApiError::incomplete_signature(
            "header x-acs-content-sha256 is required",
        ));
    }
    let mut unsigned: Vec<String> = req
        .headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .filter(|name| name == "host" || name == "content-type" || name.starts_with("x-acs-"))
        .filter(|name| !signed.iter().any(|s| s == name))
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort();
    unsigned.dedup();
    Err(ApiError::incomplete_signature(&format!(
        "headers not in SignedHeaders: {}",
        unsigned.join(",")
    )))
}

/// The access key id a request claims (for counters and logs), if any.
pub fn claimed_access_key(req: &ApiRequest) -> Option<String> {
    match &req.auth {
        Auth::V3(Some(a)) => Some(a.credential.clone()),
        Auth::V3(None) => None,
        Auth::V1 => req.params.get("AccessKeyId").map(str::to_owned),
    }
}
