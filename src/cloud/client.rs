//! [`VpcClient`]: typed BGP operations over one pooled HTTP client.
//!
//! Each attempt takes a slot of the rate limiter's budget for its operation (per account, see
//! [`super::ratelimit`]), is signed afresh
//! (new nonce and timestamp) and is sent as `POST /?<params>` with an empty body. Retries:
//!
//! - **Describe** calls retry transient failures (transport errors, 5xx, clock/nonce errors)
//!   up to [`RetryConfig::max_read_retries`] times.
//! - **Create/Modify/Delete** are never retried, except when the request carries a
//!   ClientToken and the failure was a transport error or a 5xx: then the same request
//!   (same token, new nonce and timestamp) is retried up to
//!   [`RetryConfig::max_mutating_retries`] times.
//!
//! Throttling is not retried here: the error carries the server's `x-acs-retry-after` hint
//! and the caller decides; the client slows the throttled operation's budget by itself.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use rand::Rng;
use serde::Deserialize;
use tokio::time::Instant;

use super::credentials::{Credentials, DEFAULT_STS_ENDPOINT, STS_API_VERSION, timestamp_now};
use super::endpoint::{endpoint_url, host_header, validate_region};
use super::error::{ApiError, CloudError, ErrorClass, MAX_RETRY_AFTER};
use super::model::CallerIdentity;
use super::model::{
    BgpGroupInfo, BgpPeerInfo, CreateBgpPeerRequest, CreateBgpPeerResponse, DeleteBgpPeerRequest,
    DescribeBgpGroupsPage, DescribeBgpGroupsRequest, DescribeBgpGroupsWire, DescribeBgpPeersPage,
    DescribeBgpPeersRequest, DescribeBgpPeersWire, MAX_PAGE_SIZE, ModifyBgpPeerAttributeRequest,
    Params, PeerListing, RequestId, RequestIdWire, VPC_API_VERSION, decode_json,
};
use super::ratelimit::{CallKind, Permit, RateLimitConfig, RateLimiter};
use super::signing::{SignatureVersion, SigningInput, sign_request};

/// Hook for metrics: told about every attempt and every rate-limiter wait.
pub trait CallObserver: Send + Sync {
    /// One attempt of `action` finished: `outcome` is `"Success"`, the API error code, or
    /// `"Transport"` / `"Decode"` / `"InvalidRequest"`.
    fn on_call(&self, action: &str, outcome: &str, elapsed: Duration);
    /// The rate limiter made a call wait this long.
    fn on_rate_limit_wait(&self, waited: Duration);
    /// The rate limiter made a call of `action` wait this long (by default: told to
    /// [`CallObserver::on_rate_limit_wait`]).
    fn on_rate_limit_wait_of(&self, action: &str, waited: Duration) {
        let _ = action;
        self.on_rate_limit_wait(waited);
    }
}

/// Retry settings of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Extra attempts for Describe calls after a transient failure.
    pub max_read_retries: u32,
    /// Extra attempts for mutating calls that carry a ClientToken, after a transport error
    /// or 5xx (at most 2 is the project rule).
    pub max_mutating_retries: u32,
    /// First backoff delay; doubles each attempt, with jitter.
    pub base_backoff: Duration,
    /// Largest backoff delay (a server `x-acs-retry-after` may ask for more, up to 120 s).
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_read_retries: 2,
            max_mutating_retries: 2,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Settings of a [`VpcClient`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Endpoint used for every region instead of the regional one, e.g.
    /// `http://127.0.0.1:PORT` for the emulator. Without a scheme, `https://` is assumed.
    pub endpoint: Option<String>,
    /// STS endpoint for [`VpcClient::get_caller_identity`] (default `https://sts.aliyuncs.com`;
    /// the emulator serves STS on its own address).
    pub sts_endpoint: Option<String>,
    /// Signature scheme (V3 by default).
    pub signature_version: SignatureVersion,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Client-side rate limits per (account, operation); `None` disables them.
    pub rate_limit: Option<RateLimitConfig>,
    /// Retry settings.
    pub retry: RetryConfig,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Metrics hook.
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: None,
            sts_endpoint: None,
            signature_version: SignatureVersion::V3,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            rate_limit: Some(RateLimitConfig::default()),
            retry: RetryConfig::default(),
            user_agent: concat!("alicloud-bgp-operator/", env!("CARGO_PKG_VERSION")).to_owned(),
            observer: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("signature_version", &self.signature_version)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .field("observer", &self.observer.as_ref().map(|_| "<observer>"))
            .finish()
    }
}

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryPolicy {
    /// A read: retry transient failures.
    Read,
    /// A mutating call with a ClientToken: retry transport errors and 5xx only.
    MutatingWithToken,
    /// A mutating call without a ClientToken: never retry.
    Mutating,
}

/// Which API a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// VPC 2016-04-28 at the regional (or overridden) endpoint.
    Vpc,
    /// STS 2015-04-01 at the STS endpoint.
    Sts,
}

/// The rate-limiter key region of STS calls (STS is not regional).
const STS_LIMITER_REGION: &str = "sts";

impl RetryPolicy {
    pub(crate) fn mutating(client_token: &Option<String>) -> Self {
        if client_token.is_some() {
            RetryPolicy::MutatingWithToken
        } else {
            RetryPolicy::Mutating
        }
    }
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: Option<RateLimiter>,
}

/// The VPC API client. Cheap to clone; clones share the connection pool and rate limiter.
#[derive(Clone)]
pub struct VpcClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for VpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VpcClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl VpcClient {
    /// Builds a client. Installs the ring crypto provider if none is installed yet.
    pub fn new(config: ClientConfig) -> Result<Self, CloudError> {
        crate::install_crypto_provider();
        if let Some(endpoint) = &config.endpoint {
            // Validate the override once, up front.
            endpoint_url("cn-hangzhou", Some(endpoint))?;
        }
        if let Some(endpoint) = &config.sts_endpoint {
            endpoint_url("cn-hangzhou", Some(endpoint))?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| {
                CloudError::invalid_request(format!("cannot build the HTTP client: {e}"))
            })?;
        let limiter = config.rate_limit.clone().map(RateLimiter::new);
        Ok(VpcClient {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Halves the client-side budget of `action` for (access key id, region) after the API
    /// throttled it; the rate recovers gradually. No-op when rate limiting is off.
    pub fn slow_down(&self, access_key_id: &str, region: &str, action: &str) {
        if let Some(limiter) = &self.inner.limiter {
            limiter.slow_down(access_key_id, region, action);
        }
    }

    /// The current client-side rate (calls per second) of `action` for (access key id,
    /// region), if rate limiting is on.
    pub fn current_rate(&self, access_key_id: &str, region: &str, action: &str) -> Option<f64> {
        self.inner
            .limiter
            .as_ref()
            .map(|l| l.current_rate(access_key_id, region, action))
    }

    /// `CreateBgpPeer`. Retried (same ClientToken) only if `client_token` is set and the
    /// failure was a transport error or 5xx.
    pub async fn create_bgp_peer(
        &self,
        creds: &Credentials,
        req: &CreateBgpPeerRequest,
    ) -> Result<CreateBgpPeerResponse, CloudError> {
        let params = req.to_params()?;
        self.call(
            creds,
            Api::Vpc,
            "CreateBgpPeer",
            &req.region_id,
            params,
            RetryPolicy::mutating(&req.client_token),
        )
        .await
    }

    /// `ModifyBgpPeerAttribute`. Same retry rule as [`VpcClient::create_bgp_peer`].
    pub async fn modify_bgp_peer_attribute(
        &self,
        creds: &Credentials,
        req: &ModifyBgpPeerAttributeRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "ModifyBgpPeerAttribute",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// `DeleteBgpPeer`. Same retry rule as [`VpcClient::create_bgp_peer`].
    pub async fn delete_bgp_peer(
        &self,
        creds: &Credentials,
        req: &DeleteBgpPeerRequest,
    ) -> Result<RequestId, CloudError> {
        self.request_id_call(
            creds,
            "DeleteBgpPeer",
            &req.region_id,
            req.to_params()?,
            &req.client_token,
        )
        .await
    }

    /// STS `GetCallerIdentity`: the account, ARN and user id `creds` act as. Sent to the STS
    /// endpoint ([`ClientConfig::sts_endpoint`]), signed like every call, rate-limited and
    /// retried like a read.
    pub async fn get_caller_identity(
        &self,
        creds: &Credentials,
    ) -> Result<CallerIdentity, CloudError> {
        let identity: CallerIdentity = self
            .call(
                creds,
                Api::Sts,
                "GetCallerIdentity",
                STS_LIMITER_REGION,
                Vec::new(),
                RetryPolicy::Read,
            )
            .await?;
        if identity.account_id.is_empty() {
            return Err(CloudError::decode(
                "GetCallerIdentity",
                "the answer has no AccountId",
            ));
        }
        // Quotas are per account: the key's calls now share the account's budgets.
        if let Some(limiter) = &self.inner.limiter {
            limiter.bind_account(creds.access_key_id(), &identity.account_id);
        }
        Ok(identity)
    }

    /// One page of `DescribeBgpPeers`. A filter that matches nothing gives an empty page,
    /// not an error.
    pub async fn describe_bgp_peers(
        &self,
        creds: &Credentials,
        req: &DescribeBgpPeersRequest,
    ) -> Result<DescribeBgpPeersPage, CloudError> {
        let params = req.to_params()?;
        let wire: DescribeBgpPeersWire = self
            .call(
                creds,
                Api::Vpc,
                "DescribeBgpPeers",
                &req.region_id,
                params,
                RetryPolicy::Read,
            )
            .await?;
        Ok(wire.into())
    }

    /// Every peer matching `req`'s filters, page by page (PageSize 50; `req`'s paging is
    /// ignored), without duplicates.
    pub async fn describe_all_bgp_peers(
        &self,
        creds: &Credentials,
        req: &DescribeBgpPeersRequest,
    ) -> Result<Vec<BgpPeerInfo>, CloudError> {
        let mut seen = HashSet::new();
        self.bgp_peers_stream(creds, req)
            .try_filter(|p| futures::future::ready(seen.insert(p.bgp_peer_id.clone())))
            .try_collect()
            .await
    }

    /// Every peer matching `req`'s filters, page by page, and whether the walk was
    /// consistent (see [`PeerListing::consistent`]). Paging is by offset: when peers are
    /// removed between two pages, later peers shift forward and some are never returned. The
    /// walk stops on a short or empty page; `TotalCount` is only a hint (one SDK documents it
    /// as the total, another as the entries of the page): it ends a walk early only when it
    /// has shown itself to be a total (more than one page holds) and that many distinct peers
    /// have come.
    pub async fn list_bgp_peers(
        &self,
        creds: &Credentials,
        req: &DescribeBgpPeersRequest,
    ) -> Result<PeerListing, CloudError> {
        let mut peers: Vec<BgpPeerInfo> = Vec::new();
        let mut seen = HashSet::new();
        let walked = self
            .walk_bgp_peers(creds, req, |_, page| {
                for peer in page {
                    if seen.insert(peer.bgp_peer_id.clone()) {
                        peers.push(peer);
                    }
                }
                peers.len()
            })
            .await?;
        Ok(PeerListing {
            peers,
            pages: walked.pages,
            consistent: walked.consistent,
        })
    }

    /// The walk of [`Self::list_bgp_peers`], handing each page to `on_page` as it comes
    /// (with that page's `TotalCount`) instead of collecting the peers: the caller keeps
    /// what it needs, deduplicated by ID, and returns how many distinct peers it holds so far
    /// (the walk's stop and consistency rules count them).
    pub async fn walk_bgp_peers(
        &self,
        creds: &Credentials,
        req: &DescribeBgpPeersRequest,
        mut on_page: impl FnMut(u64, Vec<BgpPeerInfo>) -> usize + Send,
    ) -> Result<Walked, CloudError> {
        /// Guards against a server that never stops returning full pages.
        const MAX_PAGES: u32 = 10_000;
        let mut walk = Walk::default();
        let mut page_number = 1;
        let mut distinct;
        loop {
            let page = self
                .describe_bgp_peers(creds, &page_of(req, page_number))
                .await?;
            let on_this_page = page.peers.len();
            distinct = on_page(page.total_count, page.peers);
            let step = walk.page(page.total_count, on_this_page, distinct);
            if step != WalkStep::Next || page_number >= MAX_PAGES {
                break;
            }
            page_number += 1;
        }
        Ok(Walked {
            consistent: walk.consistent(distinct),
            pages: walk.totals.len(),
        })
    }

    /// Every peer matching `req`'s filters as a stream, fetching pages of 50 lazily.
    pub fn bgp_peers_stream<'a>(
        &'a self,
        creds: &'a Credentials,
        req: &'a DescribeBgpPeersRequest,
    ) -> impl Stream<Item = Result<BgpPeerInfo, CloudError>> + Send + 'a {
        paged(move |page_number| async move {
            let page = self
                .describe_bgp_peers(creds, &page_of(req, page_number))
                .await?;
            Ok((page.total_count, page.peers))
        })
    }

    /// One page of `DescribeBgpGroups`.
    pub async fn describe_bgp_groups(
        &self,
        creds: &Credentials,
        req: &DescribeBgpGroupsRequest,
    ) -> Result<DescribeBgpGroupsPage, CloudError> {
        let params = req.to_params()?;
        let wire: DescribeBgpGroupsWire = self
            .call(
                creds,
                Api::Vpc,
                "DescribeBgpGroups",
                &req.region_id,
                params,
                RetryPolicy::Read,
            )
            .await?;
        Ok(wire.into())
    }

    /// Every group matching `req`'s filters (PageSize 50; `req`'s paging is ignored).
    pub async fn describe_all_bgp_groups(
        &self,
        creds: &Credentials,
        req: &DescribeBgpGroupsRequest,
    ) -> Result<Vec<BgpGroupInfo>, CloudError> {
        let mut seen = HashSet::new();
        paged(move |page_number| async move {
            let page = self
                .describe_bgp_groups(
                    creds,
                    &DescribeBgpGroupsRequest {
                        page_number: Some(page_number),
                        page_size: Some(MAX_PAGE_SIZE),
                        ..req.clone()
                    },
                )
                .await?;
            Ok((page.total_count, page.groups))
        })
        .try_filter(|g| futures::future::ready(seen.insert(g.bgp_group_id.clone())))
        .try_collect()
        .await
    }

    /// A mutating VPC call whose answer is only a RequestId (Modify, Delete, AddBgpNetwork):
    /// retried with the same ClientToken only if one is set and the failure was a transport
    /// error or 5xx.
    pub(crate) async fn request_id_call(
        &self,
        creds: &Credentials,
        action: &'static str,
        region: &str,
        params: Params,
        client_token: &Option<String>,
    ) -> Result<RequestId, CloudError> {
        let wire: RequestIdWire = self
            .call(
                creds,
                Api::Vpc,
                action,
                region,
                params,
                RetryPolicy::mutating(client_token),
            )
            .await?;
        Ok(RequestId(wire.request_id))
    }

    /// Runs `action` with retries per `policy` and decodes the JSON answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        api: Api,
        action: &'static str,
        region: &str,
        params: Params,
        policy: RetryPolicy,
    ) -> Result<T, CloudError> {
        validate_region(region)?;
        let retry = self.inner.config.retry;
        let max_retries = match policy {
            RetryPolicy::Read => retry.max_read_retries,
            RetryPolicy::MutatingWithToken => retry.max_mutating_retries,
            RetryPolicy::Mutating => 0,
        };
        let mut attempt: u32 = 0;
        loop {
            // Wait for the rate limiter first, so the observed call latency excludes it. The
            // permit is held until the answer is back (`attempt`): the call counts in the
            // budget's window from its grant to a window after its answer.
            let mut permit = None;
            if let Some(limiter) = &self.inner.limiter {
                let kind = match policy {
                    RetryPolicy::Read => CallKind::Read,
                    _ => CallKind::Write,
                };
                let granted = limiter
                    .acquire(creds.access_key_id(), region, action, kind)
                    .await;
                if !granted.waited().is_zero()
                    && let Some(observer) = &self.inner.config.observer
                {
                    observer.on_rate_limit_wait_of(action, granted.waited());
                }
                permit = Some(granted);
            }
            let started = Instant::now();
            let result = self
                .attempt::<T>(creds, api, action, region, &params, permit)
                .await;
            let elapsed = started.elapsed();
            let outcome = match &result {
                Ok(_) => "Success",
                Err(e) => e.outcome_label(),
            };
            if let Some(observer) = &self.inner.config.observer {
                observer.on_call(action, outcome, elapsed);
            }
            let err = match result {
                Ok(value) => {
                    tracing::debug!(
                        action,
                        region,
                        attempt,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "VPC call succeeded"
                    );
                    return Ok(value);
                }
                Err(err) => err,
            };
            // The API throttled this operation: the client's own budget of it halves (and
            // recovers gradually), so every object sharing the account backs off together,
            // and the other operations keep their rate.
            if err.class() == ErrorClass::Throttled {
                self.slow_down(creds.access_key_id(), region, action);
            }
            if attempt >= max_retries || !should_retry(policy, &err) {
                tracing::debug!(action, region, attempt, error = %err, class = err.class().as_str(), "VPC call failed");
                return Err(err);
            }
            let delay = backoff(&retry, attempt, err.retry_after());
            tracing::warn!(action, region, attempt, error = %err, delay_ms = delay.as_millis() as u64, "VPC call failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One signed attempt. The rate limiter's `permit` is given back as soon as the answer's
    /// headers are in (the server counted the call before it answered), before its body is
    /// read and decoded.
    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        api: Api,
        action: &'static str,
        region: &str,
        params: &Params,
        permit: Option<Permit<'_>>,
    ) -> Result<T, CloudError> {
        let config = &self.inner.config;
        let (base, api_version) = match api {
            Api::Vpc => (
                endpoint_url(region, config.endpoint.as_deref())?,
                VPC_API_VERSION,
            ),
            Api::Sts => (
                endpoint_url(
                    "cn-hangzhou",
                    Some(
                        config
                            .sts_endpoint
                            .as_deref()
                            .unwrap_or(DEFAULT_STS_ENDPOINT),
                    ),
                )?,
                STS_API_VERSION,
            ),
        };
        let host = host_header(&base);
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = timestamp_now();
        let signed = sign_request(
            &SigningInput {
                version: config.signature_version,
                action,
                api_version,
                method: "POST",
                host: &host,
                params,
                nonce: &nonce,
                timestamp: &timestamp,
            },
            creds,
        );
        let mut url = base;
        url.set_path("/");
        url.set_query(Some(&signed.query));
        let mut request = self.inner.http.post(url).body(Vec::new());
        for (name, value) in &signed.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await;
        drop(permit);
        let response = response.map_err(|e| CloudError::transport(action, e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let header_request_id = header("x-acs-request-id");
        let retry_after = header("x-acs-retry-after").and_then(|v| parse_retry_after(&v));
        let body = response
            .bytes()
            .await
            .map_err(|e| CloudError::transport(action, e))?;
        if (200..300).contains(&status) {
            return decode_json(action, &body);
        }
        let mut api = parse_error_body(status, &body);
        api.request_id = api.request_id.or(header_request_id);
        api.retry_after = retry_after;
        api.message = scrub(&api.message, creds);
        Err(CloudError::Api(api))
    }
}

/// Whether `err` may be retried under `policy` (the attempt budget is checked elsewhere).
fn should_retry(policy: RetryPolicy, err: &CloudError) -> bool {
    match policy {
        RetryPolicy::Mutating => false,
        RetryPolicy::MutatingWithToken => match err {
            CloudError::Transport { .. } => true,
            CloudError::Api(api) => api.http_status >= 500,
            _ => false,
        },
        RetryPolicy::Read => {
            matches!(err, CloudError::Transport { .. }) || err.class() == ErrorClass::Transient
        }
    }
}

/// Exponential backoff with jitter (50–100 % of the nominal delay), at least `retry_after`.
fn backoff(cfg: &RetryConfig, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let nominal = cfg
        .base_backoff
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(cfg.max_backoff);
    let jitter: f64 = rand::rng().random_range(0.5..=1.0);
    let delay = nominal.mul_f64(jitter);
    match retry_after {
        Some(hint) => delay.max(hint),
        None => delay,
    }
}

/// `x-acs-retry-after`: milliseconds, capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let ms: f64 = value.trim().parse().ok()?;
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        (ms / 1000.0).min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ErrorWire {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// Reads an error answer: JSON `{Code, Message, RequestId}`, else XML `<Error>…</Error>`,
/// else `HttpStatus<NNN>` with the start of the body as message.
fn parse_error_body(status: u16, body: &[u8]) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorWire>(body)
        .ok()
        .or_else(|| {
            std::str::from_utf8(body)
                .ok()
                .and_then(|text| quick_xml::de::from_str::<ErrorWire>(text).ok())
        })
        .filter(|w| w.code.as_deref().is_some_and(|c| !c.is_empty()));
    match parsed {
        Some(w) => ApiError::new(
            status,
            w.code.unwrap_or_default(),
            w.message.unwrap_or_default(),
            w.request_id,
        ),
        None => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.trim().chars().take(200).collect();
            ApiError::new(status, format!("HttpStatus{status}"), snippet, None)
        }
    }
}

/// Removes anything secret from a server message: the server's string-to-sign echo (a V1
/// one contains the STS token) and any literal occurrence of the secret or the token.
fn scrub(message: &str, creds: &Credentials) -> String {
    let mut out = match message
        .find("string to sign is")
        .or_else(|| message.find("StringToSign is"))
    {
        Some(i) => format!("{}string to sign is <omitted>", &message[..i]),
        None => message.to_owned(),
    };
    for secret in [Some(creds.access_key_secret()), creds.security_token()]
        .into_iter()
        .flatten()
        .filter(|s| s.len() >= 4)
    {
        out = out.replace(secret, "<redacted>");
    }
    out
}

/// Page `page_number` (of the largest size) of a DescribeBgpPeers request.
fn page_of(req: &DescribeBgpPeersRequest, page_number: u32) -> DescribeBgpPeersRequest {
    DescribeBgpPeersRequest {
        page_number: Some(page_number),
        page_size: Some(MAX_PAGE_SIZE),
        ..req.clone()
    }
}

/// What a paged walk does after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkStep {
    /// Fetch the next page.
    Next,
    /// A short (or empty) page: the listing ended.
    EndedShort,
    /// A `TotalCount` shown to be a total was reached on a full page.
    EndedAtTotal,
}

/// How a walk of [`VpcClient::walk_bgp_peers`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// The walk cannot have skipped a peer (see [`PeerListing::consistent`]).
    pub consistent: bool,
    /// Pages fetched.
    pub pages: usize,
}

/// The paging decisions of a walk (pure, unit-tested): stop on a short or empty page; treat
/// `TotalCount` as a hint that ends the walk early only once it has proven to count the whole
/// listing (a `TotalCount` above what one page can hold).
#[derive(Debug, Default, Clone)]
pub(crate) struct Walk {
    /// `TotalCount` of each page.
    pub(crate) totals: Vec<u64>,
    /// Some page's `TotalCount` exceeded the page size: it is a total.
    total_is_listing: bool,
    /// How the walk ended.
    ended: Option<WalkStep>,
}

impl Walk {
    /// Records one page (`fetched` = distinct items so far) and says what to do next.
    pub(crate) fn page(&mut self, total_count: u64, on_page: usize, fetched: usize) -> WalkStep {
        self.totals.push(total_count);
        if total_count > u64::from(MAX_PAGE_SIZE) {
            self.total_is_listing = true;
        }
        let step = if on_page < MAX_PAGE_SIZE as usize {
            WalkStep::EndedShort
        } else if self.total_is_listing && fetched as u64 >= total_count {
            WalkStep::EndedAtTotal
        } else {
            WalkStep::Next
        };
        if step != WalkStep::Next {
            self.ended = Some(step);
        }
        step
    }

    /// Whether the walk cannot have skipped an item (see [`PeerListing::consistent`]).
    pub(crate) fn consistent(&self, distinct: usize) -> bool {
        let ended = self.ended.is_some();
        let one_page = self.totals.len() == 1 && self.ended == Some(WalkStep::EndedShort);
        let stable_total = self.totals.windows(2).all(|w| w[0] == w[1])
            && self.total_is_listing
            && self.totals.first() == Some(&(distinct as u64));
        ended && (one_page || stable_total)
    }
}

/// Walks pages 1, 2, … of a Describe call until a short page comes (or a proven total is
/// reached).
fn paged<'a, T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, CloudError>> + Send + 'a
where
    T: Send + 'a,
    F: Fn(u32) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<(u64, Vec<T>), CloudError>> + Send + 'a,
{
    /// Guards against a server that never stops returning full pages.
    const MAX_PAGES: u32 = 10_000;
    struct State<F> {
        fetch: F,
        next_page: Option<u32>,
        fetched: usize,
        walk: Walk,
    }
    let state = State {
        fetch,
        next_page: Some(1),
        fetched: 0,
        walk: Walk::default(),
    };
    futures::stream::try_unfold(state, |mut st| async move {
        let Some(page_number) = st.next_page else {
            return Ok::<_, CloudError>(None);
        };
        let (total, items) = (st.fetch)(page_number).await?;
        st.fetched += items.len();
        let step = st.walk.page(total, items.len(), st.fetched);
        st.next_page = if step != WalkStep::Next || page_number >= MAX_PAGES {
            None
        } else {
            Some(page_number + 1)
        };
        Ok(Some((items, st)))
    })
    .map_ok(|items| futures::stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn retry_rules() {
        let transport = CloudError::Transport {
            action: "X".into(),
            message: "reset".into(),
            timeout: false,
        };
        let e500 = CloudError::Api(ApiError::new(500, "InternalError", "", None));
        let e503 = CloudError::Api(ApiError::new(503, "ServiceUnavailable", "", None));
        let nonce = CloudError::Api(ApiError::new(400, "SignatureNonceUsed", "", None));
        let throttled = CloudError::Api(ApiError::new(400, "Throttling.User", "", None));
        let terminal = CloudError::Api(ApiError::new(400, "InvalidIP.Malformed", "", None));
        let busy = CloudError::Api(ApiError::new(400, "OperationConflict", "", None));

        for e in [
            &transport, &e500, &e503, &nonce, &throttled, &terminal, &busy,
        ] {
            assert!(!should_retry(RetryPolicy::Mutating, e), "{e}");
        }
        assert!(should_retry(RetryPolicy::MutatingWithToken, &transport));
        assert!(should_retry(RetryPolicy::MutatingWithToken, &e500));
        assert!(should_retry(RetryPolicy::MutatingWithToken, &e503));
        assert!(!should_retry(RetryPolicy::MutatingWithToken, &nonce));
        assert!(!should_retry(RetryPolicy::MutatingWithToken, &throttled));
        assert!(!should_retry(RetryPolicy::MutatingWithToken, &terminal));

        assert!(should_retry(RetryPolicy::Read, &transport));
        assert!(should_retry(RetryPolicy::Read, &e500));
        assert!(should_retry(RetryPolicy::Read, &nonce));
        assert!(!should_retry(RetryPolicy::Read, &throttled));
        assert!(!should_retry(RetryPolicy::Read, &terminal));
        assert!(!should_retry(RetryPolicy::Read, &busy));
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_hints() {
        let cfg = RetryConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..Default::default()
        };
        for _ in 0..50 {
            let d0 = backoff(&cfg, 0, None);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d3 = backoff(&cfg, 3, None);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            let d9 = backoff(&cfg, 9, None);
            assert!(d9 <= Duration::from_millis(1000), "{d9:?}");
            assert!(backoff(&cfg, 0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        }
    }

    #[test]
    fn error_bodies() {
        let e = parse_error_body(
            400,
            br#"{"RequestId":"R1","HostId":"vpc.aliyuncs.com","Code":"InvalidBgpGroup","Message":"bgp group not exists","Recommend":"https://x"}"#,
        );
        assert_eq!(e.code, "InvalidBgpGroup");
        assert_eq!(e.message, "bgp group not exists");
        assert_eq!(e.request_id.as_deref(), Some("R1"));
        assert_eq!(e.http_status, 400);

        let e = parse_error_body(
            404,
            b"<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R2</RequestId><HostId>h</HostId><Code>InvalidRegionId.NotFound</Code><Message>nope</Message></Error>",
        );
        assert_eq!(e.code, "InvalidRegionId.NotFound");
        assert_eq!(e.request_id.as_deref(), Some("R2"));

        let e = parse_error_body(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.code, "HttpStatus502");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.message.contains("Bad Gateway"));
    }

    #[test]
    fn scrub_removes_string_to_sign_and_secrets() {
        let creds = Credentials::new("id", "the-secret", Some("the-sts-token".into()));
        let m = scrub(
            "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3Dthe-sts-token",
            &creds,
        );
        assert!(!m.contains("the-sts-token"), "{m}");
        assert!(m.starts_with("Specified signature is not matched"));
        let m = scrub("echo the-secret and the-sts-token", &creds);
        assert_eq!(m, "echo <redacted> and <redacted>");
    }

    /// Feeds `pages` of (TotalCount, items on the page) to a walk; returns the pages it asked
    /// for and whether it calls the result consistent.
    fn walk(pages: &[(u64, usize)]) -> (usize, bool) {
        let mut w = Walk::default();
        let mut fetched = 0;
        for (i, (total, on_page)) in pages.iter().enumerate() {
            fetched += on_page;
            if w.page(*total, *on_page, fetched) != WalkStep::Next {
                return (i + 1, w.consistent(fetched));
            }
        }
        (pages.len(), w.consistent(fetched))
    }

    #[test]
    fn walk_stops_on_short_pages_and_trusts_total_count_only_when_proven() {
        // One short page: the whole listing in one answer.
        assert_eq!(walk(&[(3, 3)]), (1, true));
        assert_eq!(walk(&[(0, 0)]), (1, true));
        // TotalCount = the whole listing (> one page): stable and complete, consistent; a
        // proven total also ends a walk on a full page.
        assert_eq!(walk(&[(120, 50), (120, 50), (120, 20)]), (3, true));
        assert_eq!(walk(&[(100, 50), (100, 50), (100, 0)]), (2, true));
        // A removal between pages changes TotalCount: not consistent.
        assert_eq!(walk(&[(120, 50), (119, 50), (119, 19)]), (3, false));
        // TotalCount per page (the other SDK wording): every page is walked until a short one,
        // and the walk can never be shown consistent.
        assert_eq!(walk(&[(50, 50), (50, 50), (3, 3)]), (3, false));
        assert_eq!(walk(&[(50, 50), (50, 50), (0, 0)]), (3, false));
        // A full first page whose TotalCount equals it is ambiguous: look at the next page,
        // and do not call it consistent (50 in all, or 50 on this page?).
        assert_eq!(walk(&[(50, 50), (50, 0)]), (2, false));
        // A walk cut off before its end is never consistent.
        assert_eq!(walk(&[(50, 50), (50, 50)]), (2, false));
    }

    #[tokio::test]
    async fn paging_walks_until_total_or_short_page() {
        let calls = std::sync::Mutex::new(Vec::new());
        let calls_ref = &calls;
        let items: Vec<u32> = paged(move |page| async move {
            calls_ref.lock().unwrap().push(page);
            let total = 120u64;
            let start = (page - 1) * 50;
            let end = (start + 50).min(total as u32);
            Ok((total, (start..end).collect::<Vec<u32>>()))
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, (0..120).collect::<Vec<_>>());
        assert_eq!(*calls.lock().unwrap(), vec![1, 2, 3]);

        // Exactly 100: stops after page 2 because the total is reached.
        let calls = std::sync::Mutex::new(Vec::new());
        let calls_ref = &calls;
        let n = paged(move |page| async move {
            calls_ref.lock().unwrap().push(page);
            Ok((100u64, vec![0u8; 50]))
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
        assert_eq!(n, 100);
        assert_eq!(*calls.lock().unwrap(), vec![1, 2]);

        // Errors stop the walk.
        let r: Result<Vec<u8>, _> =
            paged(|_| async { Err::<(u64, Vec<u8>), _>(CloudError::invalid_request("x")) })
                .try_collect()
                .await;
        assert!(r.is_err());
    }
}
