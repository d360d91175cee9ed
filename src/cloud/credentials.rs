//! Credentials and the operator-wide credential provider chain.
//!
//! [`Credentials`] is an access key (optionally with an STS security token); its `Debug`
//! output redacts the secret and the token. [`CredentialChain`] finds operator-wide
//! credentials the way the official SDKs do, trying in order:
//!
//! 1. environment: `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optional
//!    `ALIBABA_CLOUD_SECURITY_TOKEN`;
//! 2. OIDC / RRSA: `ALIBABA_CLOUD_ROLE_ARN` + `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` +
//!    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` → unsigned STS `AssumeRoleWithOIDC` (the token file is
//!    re-read on every refresh);
//! 3. the credentials file (`ALIBABA_CLOUD_CREDENTIALS_FILE` or
//!    `~/.alibabacloud/credentials.ini`, profile `ALIBABA_CLOUD_PROFILE` or `default`):
//!    `type = ram_role_arn` → signed STS `AssumeRole`; `type = oidc_role_arn` → as 2;
//!    `type = access_key` → the static key.
//!
//! The first provider that succeeds is kept for the life of the chain. STS credentials are
//! cached and refreshed [`REFRESH_MARGIN`] before they expire; if a refresh fails while the
//! cached ones are still valid, the cached ones are used.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{ApiError, CloudError, ErrorClass};
use super::signing::{SignatureVersion, SigningInput, sign_request};

/// The default STS endpoint.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
/// STS API version.
pub const STS_API_VERSION: &str = "2015-04-01";
/// Lifetime requested for STS credentials.
pub const STS_DURATION_SECONDS: u32 = 3600;
/// STS credentials are refreshed when less than this is left before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An Alibaba Cloud access key, optionally with an STS security token.
///
/// `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
}

impl Credentials {
    /// Builds credentials from an access key id, its secret and an optional STS token.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: security_token.filter(|t| !t.is_empty()),
        }
    }

    /// The access key id (not a secret: it travels in every request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Whether these are STS credentials (they carry a security token).
    pub fn is_sts(&self) -> bool {
        self.security_token.is_some()
    }

    pub(crate) fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }

    pub(crate) fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Which provider of the chain produced the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` (/ `_SECURITY_TOKEN`).
    Environment,
    /// STS `AssumeRoleWithOIDC` (RRSA).
    OidcRoleArn {
        /// The assumed role.
        role_arn: String,
    },
    /// STS `AssumeRole` with the access key of a credentials-file profile.
    RamRoleArn {
        /// The profile name.
        profile: String,
        /// The assumed role.
        role_arn: String,
    },
    /// A static access key from a credentials-file profile.
    CredentialsFile {
        /// The profile name.
        profile: String,
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Environment => f.write_str("environment variables"),
            CredentialSource::OidcRoleArn { role_arn } => {
                write!(f, "OIDC role (AssumeRoleWithOIDC {role_arn})")
            }
            CredentialSource::RamRoleArn { profile, role_arn } => {
                write!(f, "RAM role (AssumeRole {role_arn}, profile {profile})")
            }
            CredentialSource::CredentialsFile { profile, path } => {
                write!(f, "credentials file {} (profile {profile})", path.display())
            }
        }
    }
}

/// Settings of an OIDC role assumption.
#[derive(Clone)]
struct OidcConfig {
    role_arn: String,
    provider_arn: String,
    token_file: PathBuf,
    session_name: String,
    policy: Option<String>,
}

/// Settings of a RAM role assumption.
#[derive(Clone)]
struct RamRoleConfig {
    base: Credentials,
    role_arn: String,
    session_name: String,
    policy: Option<String>,
    external_id: Option<String>,
}

#[derive(Clone)]
enum StsKind {
    Oidc(OidcConfig),
    RamRole(RamRoleConfig),
}

/// A provider found configured in the environment.
enum Provider {
    Static {
        creds: Credentials,
        source: CredentialSource,
    },
    Sts {
        kind: StsKind,
        source: CredentialSource,
        cached: Option<(Credentials, Timestamp)>,
    },
}

/// The operator-wide credential provider chain (see the module docs for the order).
pub struct CredentialChain {
    env: HashMap<String, String>,
    sts_endpoint: String,
    /// The STS endpoint was configured (argument or environment), not the public default.
    sts_endpoint_explicit: bool,
    http: reqwest::Client,
    pinned: Mutex<Option<Provider>>,
}

impl fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialChain")
            .field("sts_endpoint", &self.sts_endpoint)
            .finish_non_exhaustive()
    }
}

impl CredentialChain {
    /// A chain reading the process environment (snapshotted now). `sts_endpoint` overrides
    /// `ALIBABA_CLOUD_STS_ENDPOINT` and the default `https://sts.aliyuncs.com`; a bare host
    /// gets `https://`.
    pub fn from_env(sts_endpoint: Option<String>) -> Result<Self, CloudError> {
        Self::from_env_map(std::env::vars().collect(), sts_endpoint)
    }

    /// A chain reading `env` instead of the process environment (`HOME` included), so tests
    /// need not mutate the process environment.
    pub fn from_env_map(
        env: HashMap<String, String>,
        sts_endpoint: Option<String>,
    ) -> Result<Self, CloudError> {
        crate::install_crypto_provider();
        let sts_endpoint_explicit =
            resolve_sts_endpoint(&env, sts_endpoint.clone()) != DEFAULT_STS_ENDPOINT;
        let sts_endpoint = resolve_sts_endpoint(&env, sts_endpoint);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("alicloud-bgp-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CloudError::credentials(format!("cannot build the STS HTTP client: {e}"))
            })?;
        Ok(CredentialChain {
            env,
            sts_endpoint,
            sts_endpoint_explicit,
            http,
            pinned: Mutex::new(None),
        })
    }

    /// The STS endpoint in use (scheme and host, no trailing slash).
    pub fn sts_endpoint(&self) -> &str {
        &self.sts_endpoint
    }

    /// STS `AssumeRoleWithOIDC` with a token the caller obtained (e.g. from the TokenRequest
    /// API for a per-namespace identity) instead of a token file. `region` picks the regional
    /// STS endpoint `sts.<region>.aliyuncs.com` when no endpoint is configured. Returns the
    /// credentials and their expiry; nothing is cached here.
    pub async fn assume_role_with_oidc_token(
        &self,
        request: &OidcTokenRequest<'_>,
    ) -> Result<(Credentials, Timestamp), CloudError> {
        let endpoint = match request.region {
            Some(region) if !self.sts_endpoint_explicit => {
                format!("https://sts.{region}.aliyuncs.com")
            }
            _ => self.sts_endpoint.clone(),
        };
        let form = oidc_form(
            request.role_arn,
            request.provider_arn,
            request.token,
            request.session_name,
            request.policy,
        );
        let http = self
            .http
            .post(format!("{endpoint}/"))
            .query(&oidc_query())
            .form(&form);
        self.send_sts("AssumeRoleWithOIDC", http).await
    }

    /// Current credentials from the chain.
    pub async fn credentials(&self) -> Result<Credentials, CloudError> {
        self.credentials_with_source().await.map(|(c, _)| c)
    }

    /// Current credentials and the provider that produced them.
    pub async fn credentials_with_source(
        &self,
    ) -> Result<(Credentials, CredentialSource), CloudError> {
        let mut pinned = self.pinned.lock().await;
        if pinned.is_none() {
            let provider = self.discover().await?;
            // Fresh from discovery: use what it fetched, without a refresh check.
            let fresh = match &provider {
                Provider::Static { creds, source } => (creds.clone(), source.clone()),
                Provider::Sts {
                    source,
                    cached: Some((creds, _)),
                    ..
                } => (creds.clone(), source.clone()),
                Provider::Sts { cached: None, .. } => {
                    return Err(CloudError::credentials(
                        "STS provider returned no credentials",
                    ));
                }
            };
            *pinned = Some(provider);
            return Ok(fresh);
        }
        match pinned.as_mut() {
            Some(Provider::Static { creds, source }) => Ok((creds.clone(), source.clone())),
            Some(Provider::Sts {
                kind,
                source,
                cached,
            }) => {
                let now = Timestamp::now();
                if let Some((creds, expires)) = cached.as_ref()
                    && !needs_refresh(now, *expires)
                {
                    return Ok((creds.clone(), source.clone()));
                }
                match self.assume(kind).await {
                    Ok((creds, expires)) => {
                        *cached = Some((creds.clone(), expires));
                        Ok((creds, source.clone()))
                    }
                    Err(err) => match cached.as_ref() {
                        Some((creds, expires)) if now < *expires => {
                            tracing::warn!(error = %err, source = %source, "STS refresh failed; using cached credentials until they expire");
                            Ok((creds.clone(), source.clone()))
                        }
                        _ => Err(err),
                    },
                }
            }
            None => Err(CloudError::credentials("no credential provider")),
        }
    }

    /// Tries the providers in order and returns the first that works.
    async fn discover(&self) -> Result<Provider, CloudError> {
        let mut failures: Vec<String> = Vec::new();
        let candidates = [
            ("environment", self.env_provider()),
            ("OIDC", self.oidc_provider()),
            ("credentials file", self.file_provider()),
        ];
        for (name, candidate) in candidates {
            let provider = match candidate {
                None => continue,
                Some(Err(err)) => {
                    failures.push(format!("{name}: {err}"));
                    continue;
                }
                Some(Ok(p)) => p,
            };
            match provider {
                Provider::Static { .. } => return Ok(provider),
                Provider::Sts { kind, source, .. } => match self.assume(&kind).await {
                    Ok(fresh) => {
                        return Ok(Provider::Sts {
                            kind,
                            source,
                            cached: Some(fresh),
                        });
                    }
                    Err(err) => failures.push(format!("{source}: {err}")),
                },
            }
        }
        if failures.is_empty() {
            Err(CloudError::credentials(
                "no credentials found: set ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, \
                 ALIBABA_CLOUD_ROLE_ARN/ALIBABA_CLOUD_OIDC_PROVIDER_ARN/ALIBABA_CLOUD_OIDC_TOKEN_FILE, \
                 or a credentials file",
            ))
        } else {
            Err(CloudError::credentials(format!(
                "no provider succeeded: {}",
                failures.join("; ")
            )))
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn session_name(&self) -> String {
        self.var("ALIBABA_CLOUD_ROLE_SESSION_NAME")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("alicloud-bgp-operator-{}", Timestamp::now().as_second()))
    }

    fn env_provider(&self) -> Option<Result<Provider, CloudError>> {
        let id = self.var("ALIBABA_CLOUD_ACCESS_KEY_ID")?;
        let Some(secret) = self.var("ALIBABA_CLOUD_ACCESS_KEY_SECRET") else {
            return Some(Err(CloudError::credentials(
                "ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not",
            )));
        };
        let token = self.var("ALIBABA_CLOUD_SECURITY_TOKEN").map(str::to_owned);
        Some(Ok(Provider::Static {
            creds: Credentials::new(id, secret, token),
            source: CredentialSource::Environment,
        }))
    }

    fn oidc_provider(&self) -> Option<Result<Provider, CloudError>> {
        let role_arn = self.var("ALIBABA_CLOUD_ROLE_ARN")?;
        let provider_arn = self.var("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")?;
        let token_file = self.var("ALIBABA_CLOUD_OIDC_TOKEN_FILE")?;
        Some(Ok(Provider::Sts {
            kind: StsKind::Oidc(OidcConfig {
                role_arn: role_arn.to_owned(),
                provider_arn: provider_arn.to_owned(),
                token_file: PathBuf::from(token_file),
                session_name: self.session_name(),
                policy: None,
            }),
            source: CredentialSource::OidcRoleArn {
                role_arn: role_arn.to_owned(),
            },
            cached: None,
        }))
    }

    fn file_provider(&self) -> Option<Result<Provider, CloudError>> {
        let (path, explicit) = match self.var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
            Some(p) => (PathBuf::from(p), true),
            None => (
                PathBuf::from(self.var("HOME")?)
                    .join(".alibabacloud")
                    .join("credentials.ini"),
                false,
            ),
        };
        if !explicit && !path.exists() {
            return None;
        }
        let profile = self
            .var("ALIBABA_CLOUD_PROFILE")
            .unwrap_or("default")
            .to_owned();
        Some(self.load_profile(&path, &profile))
    }

    fn load_profile(&self, path: &std::path::Path, profile: &str) -> Result<Provider, CloudError> {
        let ini = ini::Ini::load_from_file(path)
            .map_err(|e| CloudError::credentials(format!("cannot read {}: {e}", path.display())))?;
        let section = ini.section(Some(profile)).ok_or_else(|| {
            CloudError::credentials(format!(
                "profile {profile:?} not found in {}",
                path.display()
            ))
        })?;
        let get = |key: &str| section.get(key).map(str::trim).filter(|v| !v.is_empty());
        let need = |key: &str| {
            get(key).ok_or_else(|| {
                CloudError::credentials(format!(
                    "profile {profile:?} in {} lacks {key}",
                    path.display()
                ))
            })
        };
        let kind = get("type").unwrap_or("access_key");
        match kind {
            "access_key" => Ok(Provider::Static {
                creds: Credentials::new(need("access_key_id")?, need("access_key_secret")?, None),
                source: CredentialSource::CredentialsFile {
                    profile: profile.to_owned(),
                    path: path.to_owned(),
                },
            }),
            "ram_role_arn" => {
                let role_arn = need("role_arn")?.to_owned();
                Ok(Provider::Sts {
                    kind: StsKind::RamRole(RamRoleConfig {
                        base: Credentials::new(
                            need("access_key_id")?,
                            need("access_key_secret")?,
                            get("security_token").map(str::to_owned),
                        ),
                        role_arn: role_arn.clone(),
                        session_name: get("role_session_name")
                            .map(str::to_owned)
                            .unwrap_or_else(|| self.session_name()),
                        policy: get("policy").map(str::to_owned),
                        external_id: get("external_id").map(str::to_owned),
                    }),
                    source: CredentialSource::RamRoleArn {
                        profile: profile.to_owned(),
                        role_arn,
                    },
                    cached: None,
                })
            }
            "oidc_role_arn" => {
                let role_arn = need("role_arn")?.to_owned();
                Ok(Provider::Sts {
                    kind: StsKind::Oidc(OidcConfig {
                        role_arn: role_arn.clone(),
                        provider_arn: need("oidc_provider_arn")?.to_owned(),
                        token_file: PathBuf::from(need("oidc_token_file_path")?),
                        session_name: get("role_session_name")
                            .map(str::to_owned)
                            .unwrap_or_else(|| self.session_name()),
                        policy: get("policy").map(str::to_owned),
                    }),
                    source: CredentialSource::OidcRoleArn { role_arn },
                    cached: None,
                })
            }
            other => Err(CloudError::credentials(format!(
                "profile {profile:?}: credential type {other:?} is not supported \
                 (access_key, ram_role_arn, oidc_role_arn)"
            ))),
        }
    }

    async fn assume(&self, kind: &StsKind) -> Result<(Credentials, Timestamp), CloudError> {
        match kind {
            StsKind::Oidc(cfg) => self.assume_role_with_oidc(cfg).await,
            StsKind::RamRole(cfg) => self.assume_role(cfg).await,
        }
    }

    /// Unsigned `AssumeRoleWithOIDC`; the token file is read on every call (it rotates).
    async fn assume_role_with_oidc(
        &self,
        cfg: &OidcConfig,
    ) -> Result<(Credentials, Timestamp), CloudError> {
        let token = tokio::fs::read_to_string(&cfg.token_file)
            .await
            .map_err(|e| {
                CloudError::credentials(format!(
                    "cannot read the OIDC token file {}: {e}",
                    cfg.token_file.display()
                ))
            })?;
        let form = oidc_form(
            &cfg.role_arn,
            &cfg.provider_arn,
            &token,
            &cfg.session_name,
            cfg.policy.as_deref(),
        );
        let request = self
            .http
            .post(format!("{}/", self.sts_endpoint))
            .query(&oidc_query())
            .form(&form);
        self.send_sts("AssumeRoleWithOIDC", request).await
    }

    /// `AssumeRole`, V1-signed with the profile's access key.
    async fn assume_role(
        &self,
        cfg: &RamRoleConfig,
    ) -> Result<(Credentials, Timestamp), CloudError> {
        let mut params = vec![
            (
                "DurationSeconds".to_owned(),
                STS_DURATION_SECONDS.to_string(),
            ),
            ("RoleArn".to_owned(), cfg.role_arn.clone()),
            ("RoleSessionName".to_owned(), cfg.session_name.clone()),
        ];
        if let Some(policy) = &cfg.policy {
            params.push(("Policy".to_owned(), policy.clone()));
        }
        if let Some(external_id) = &cfg.external_id {
            params.push(("ExternalId".to_owned(), external_id.clone()));
        }
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = timestamp_now();
        let signed = sign_request(
            &SigningInput {
                version: SignatureVersion::V1,
                action: "AssumeRole",
                api_version: STS_API_VERSION,
                method: "POST",
                host: "",
                params: &params,
                nonce: &nonce,
                timestamp: &timestamp,
            },
            &cfg.base,
        );
        let request = self
            .http
            .post(format!("{}/?{}", self.sts_endpoint, signed.query))
            .body(Vec::new());
        self.send_sts("AssumeRole", request).await
    }

    async fn send_sts(
        &self,
        action: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(Credentials, Timestamp), CloudError> {
        let response = request
            .send()
            .await
            .map_err(|e| CloudError::transport(action, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| CloudError::transport(action, e))?;
        if !(200..300).contains(&status) {
            let err: StsError = serde_json::from_slice(&body).unwrap_or_default();
            let api = ApiError::new(
                status,
                err.code.unwrap_or_else(|| format!("HttpStatus{status}")),
                err.message.unwrap_or_default(),
                err.request_id,
            );
            // Server trouble and throttling are worth a retry; anything else is an
            // authentication or configuration problem.
            return Err(match api.class() {
                ErrorClass::Transient | ErrorClass::Throttled => CloudError::Api(api),
                _ => CloudError::credentials(format!("STS {action} failed: {api}")),
            });
        }
        let parsed: StsResponse =
            serde_json::from_slice(&body).map_err(|e| CloudError::decode(action, e.to_string()))?;
        let c = parsed.credentials;
        let expires: Timestamp = c.expiration.parse().map_err(|e| {
            CloudError::decode(action, format!("bad Expiration {:?}: {e}", c.expiration))
        })?;
        tracing::debug!(action, access_key_id = %c.access_key_id, expires = %expires, "obtained STS credentials");
        Ok((
            Credentials::new(c.access_key_id, c.access_key_secret, Some(c.security_token)),
            expires,
        ))
    }
}

/// One `AssumeRoleWithOIDC` with a token in hand ([`CredentialChain::assume_role_with_oidc_token`]).
#[derive(Clone, Copy)]
pub struct OidcTokenRequest<'a> {
    /// `RoleArn`.
    pub role_arn: &'a str,
    /// `OIDCProviderArn`.
    pub provider_arn: &'a str,
    /// `OIDCToken` (a JWT; never logged).
    pub token: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// Session `Policy` (a RAM policy document narrowing the role).
    pub policy: Option<&'a str>,
    /// Region of the STS endpoint when none is configured.
    pub region: Option<&'a str>,
}

impl fmt::Debug for OidcTokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcTokenRequest")
            .field("role_arn", &self.role_arn)
            .field("provider_arn", &self.provider_arn)
            .field("token", &"<redacted>")
            .field("session_name", &self.session_name)
            .field("policy", &self.policy)
            .field("region", &self.region)
            .finish()
    }
}

fn oidc_query() -> [(&'static str, String); 4] {
    [
        ("Action", "AssumeRoleWithOIDC".to_owned()),
        ("Format", "JSON".to_owned()),
        ("Version", STS_API_VERSION.to_owned()),
        ("Timestamp", timestamp_now()),
    ]
}

fn oidc_form(
    role_arn: &str,
    provider_arn: &str,
    token: &str,
    session_name: &str,
    policy: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("DurationSeconds", STS_DURATION_SECONDS.to_string()),
        ("RoleArn", role_arn.to_owned()),
        ("OIDCProviderArn", provider_arn.to_owned()),
        ("OIDCToken", token.trim().to_owned()),
        ("RoleSessionName", session_name.to_owned()),
    ];
    if let Some(policy) = policy {
        form.push(("Policy", policy.to_owned()));
    }
    form
}

/// True when STS credentials expiring at `expires` should be refreshed now.
pub fn needs_refresh(now: Timestamp, expires: Timestamp) -> bool {
    let margin =
        jiff::SignedDuration::try_from(REFRESH_MARGIN).unwrap_or(jiff::SignedDuration::ZERO);
    expires.duration_since(now) < margin
}

/// The current UTC time as `yyyy-MM-ddTHH:mm:ssZ`.
pub(crate) fn timestamp_now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn resolve_sts_endpoint(env: &HashMap<String, String>, arg: Option<String>) -> String {
    let var = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let raw = arg
        .filter(|s| !s.trim().is_empty())
        .or_else(|| var("ALIBABA_CLOUD_STS_ENDPOINT").map(str::to_owned))
        .or_else(|| {
            var("ALIBABA_CLOUD_STS_REGION").map(|region| {
                let vpc = var("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                format!("sts{}.{region}.aliyuncs.com", if vpc { "-vpc" } else { "" })
            })
        })
        .unwrap_or_else(|| DEFAULT_STS_ENDPOINT.to_owned());
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    }
}

#[derive(Deserialize)]
struct StsResponse {
    #[serde(rename = "Credentials")]
    credentials: StsCredentials,
}

#[derive(Deserialize)]
struct StsCredentials {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: String,
    #[serde(rename = "SecurityToken")]
    security_token: String,
    #[serde(rename = "Expiration")]
    expiration: String,
}

#[derive(Deserialize, Default)]
struct StsError {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret_and_token() {
        let c = Credentials::new(
            "LTAIid",
            "very-secret-value",
            Some("sts-token-value".into()),
        );
        let text = format!("{c:?}");
        assert!(text.contains("LTAIid"), "{text}");
        assert!(!text.contains("very-secret-value"), "{text}");
        assert!(!text.contains("sts-token-value"), "{text}");
        assert!(c.is_sts());
        assert!(!Credentials::new("a", "b", Some(String::new())).is_sts());
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sts_endpoint_resolution() {
        assert_eq!(resolve_sts_endpoint(&env(&[]), None), DEFAULT_STS_ENDPOINT);
        assert_eq!(
            resolve_sts_endpoint(
                &env(&[("ALIBABA_CLOUD_STS_ENDPOINT", "http://127.0.0.1:9/")]),
                None
            ),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            resolve_sts_endpoint(
                &env(&[("ALIBABA_CLOUD_STS_ENDPOINT", "http://127.0.0.1:9")]),
                Some("sts.example.com".into())
            ),
            "https://sts.example.com"
        );
        assert_eq!(
            resolve_sts_endpoint(&env(&[("ALIBABA_CLOUD_STS_REGION", "cn-beijing")]), None),
            "https://sts.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            resolve_sts_endpoint(
                &env(&[
                    ("ALIBABA_CLOUD_STS_REGION", "cn-beijing"),
                    ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true")
                ]),
                None
            ),
            "https://sts-vpc.cn-beijing.aliyuncs.com"
        );
    }

    #[test]
    fn refresh_margin() {
        let now = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let later = |s: i64| now + jiff::SignedDuration::from_secs(s);
        assert!(!needs_refresh(now, later(3600)));
        assert!(!needs_refresh(now, later(301)));
        assert!(needs_refresh(now, later(299)));
        assert!(needs_refresh(now, later(-10)));
    }

    #[tokio::test]
    async fn env_provider_wins_and_missing_secret_is_reported() {
        crate::install_crypto_provider();
        let chain = CredentialChain::from_env_map(
            env(&[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "id1"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "sec1"),
                ("ALIBABA_CLOUD_SECURITY_TOKEN", "tok1"),
            ]),
            None,
        )
        .unwrap();
        let (c, src) = chain.credentials_with_source().await.unwrap();
        assert_eq!(c, Credentials::new("id1", "sec1", Some("tok1".into())));
        assert_eq!(src, CredentialSource::Environment);

        let chain =
            CredentialChain::from_env_map(env(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "id1")]), None)
                .unwrap();
        let err = chain.credentials().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Credentials);
        assert!(
            err.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn nothing_configured_is_a_credentials_error() {
        let dir = tempfile::tempdir().unwrap();
        let chain =
            CredentialChain::from_env_map(env(&[("HOME", dir.path().to_str().unwrap())]), None)
                .unwrap();
        let err = chain.credentials().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Credentials);
        assert!(err.to_string().contains("no credentials found"), "{err}");
    }
}
