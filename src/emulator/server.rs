//! The HTTP server: the API pipeline (parse → authenticate → throttle → faults → idempotency →
//! operation → render), [`start`] and the in-process [`EmulatorHandle`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::action::{Action, Product};
use super::admin;
use super::auth::{Caller, claimed_access_key};
use super::clock::Clock;
use super::config::EmulatorConfig;
use super::counters::{Counters, OK};
use super::error::ApiError;
use super::faults::{Fault, FaultOutcome};
use super::idempotency::{TokenRecord, fingerprint};
use super::model::{GroupSnapshot, PeerSnapshot, Status, VbrSnapshot};
use super::persist::{self, Persister};
use super::state::{AdminError, PeerChange, State, StateDump};
use super::sts;
use super::vpc::{self, OpContext};
use super::wire::{self, ApiRequest};

/// Largest request body read.
const MAX_BODY: usize = 1 << 20;

/// State shared by the server tasks and the handle.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    clock: Clock,
    persister: Option<Persister>,
}

impl Shared {
    fn new(config: EmulatorConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let clock = Clock::new();
        let persister = config.state_file.clone().map(Persister::new);
        let mut state = State::new(config, clock.now());
        if let Some(p) = &persister
            && let Some(saved) = persist::load(p.path())?
        {
            tracing::info!(
                path = %p.path().display(),
                groups = saved.bgp_groups.len(),
                peers = saved.bgp_peers.len(),
                "loaded emulator state file"
            );
            state.restore(saved);
        }
        Ok(Self {
            state: Mutex::new(state),
            clock,
            persister,
        })
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Writes the state file now, on the calling thread.
    fn persist_blocking(&self) {
        let Some(p) = &self.persister else { return };
        let (revision, snapshot) = {
            let state = self.lock();
            (state.revision, state.persisted())
        };
        if let Err(e) = p.write(revision, &snapshot) {
            tracing::error!(error = %e, "cannot write emulator state file");
        }
    }

    /// Writes the state file if there is one (after a change).
    pub async fn persist(self: &Arc<Self>) {
        if self.persister.is_none() {
            return;
        }
        let (revision, snapshot) = {
            let state = self.lock();
            (state.revision, state.persisted())
        };
        let shared = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            shared
                .persister
                .as_ref()
                .map(|p| p.write(revision, &snapshot))
        })
        .await;
        match result {
            Ok(Some(Err(e))) => tracing::error!(error = %e, "cannot write emulator state file"),
            Err(e) => tracing::error!(error = %e, "state file writer task failed"),
            Ok(_) => {}
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
enum Failure {
    Api(ApiError),
    RawStatus(u16),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// The outcome of one call, for rendering, counting and logging.
struct Call {
    action: String,
    product: Product,
    access_key_id: String,
    result: Result<Map<String, Value>, Failure>,
    mutated: bool,
}

fn now(shared: &Shared) -> jiff::Timestamp {
    shared.clock.now()
}

/// Runs the pipeline for one request.
async fn process(shared: &Arc<Shared>, req: &ApiRequest) -> Call {
    let mut call = Call {
        action: req.action.clone().unwrap_or_else(|| "-".to_owned()),
        product: Product::Vpc,
        access_key_id: claimed_access_key(req).unwrap_or_else(|| "-".to_owned()),
        result: Ok(Map::new()),
        mutated: false,
    };
    match pipeline(shared, req, &mut call).await {
        Ok(fields) => call.result = Ok(fields),
        Err(f) => call.result = Err(f),
    }
    call
}

async fn pipeline(
    shared: &Arc<Shared>,
    req: &ApiRequest,
    call: &mut Call,
) -> Result<Map<String, Value>, Failure> {
    if req.method != Method::GET && req.method != Method::POST {
        return Err(ApiError::from_code("UnsupportedHTTPMethod").into());
    }
    let action = req
        .action
        .as_deref()
        .and_then(Action::parse)
        .ok_or_else(|| ApiError::from_code("InvalidAction.NotFound"))?;
    call.product = action.product();
    match req.version.as_deref() {
        None => return Err(ApiError::missing("Version").into()),
        Some(v) if v != action.product().version() => {
            return Err(ApiError::from_code("InvalidVersion").into());
        }
        Some(_) => {}
    }

    let fault = {
        let mut state = shared.lock();
        let t = now(shared);
        let caller = if action.is_anonymous() {
            None
        } else {
            let window = state.config.timestamp_window;
            let incomplete = state.config.wrong_secret_incomplete;
            Some(state.auth.authenticate(req, t, window, incomplete)?)
        };
        if let (Some(c), Some(qps)) = (&caller, state.config.qps_per_key)
            && !state.throttle.allow(&c.access_key_id, qps, t)
        {
            // "Request was denied due to user flow control."
            return Err(ApiError::from_code("Throttling.User").into());
        }
        if let Some(c) = &caller
            && !state.config.api_quotas.is_empty()
        {
            let State {
                throttle, config, ..
            } = &mut *state;
            let quota_call = super::throttle::QuotaCall {
                product: action.product().name(),
                account: &c.account,
                access_key_id: &c.access_key_id,
                region: req.params.get("RegionId").unwrap_or_default(),
                action: action.name(),
            };
            if !throttle.admit(&config.api_quotas, &quota_call, t) {
                return Err(ApiError::from_code("Throttling.User").into());
            }
        }
        (state.faults.check(action.name()), caller)
    };
    let (hit, caller) = fault;
    if let Some(hit) = hit {
        if !hit.delay.is_zero() {
            tokio::time::sleep(hit.delay).await;
        }
        match hit.outcome {
            Some(FaultOutcome::Error(e)) => return Err(e.into()),
            Some(FaultOutcome::RawStatus(s)) => return Err(Failure::RawStatus(s)),
            None => {}
        }
    }

    let mut state = shared.lock();
    let t = now(shared);
    execute(&mut state, action, caller.as_ref(), req, t, call).map_err(Failure::from)
}

/// Idempotency and the operation itself, under the state lock.
fn execute(
    state: &mut State,
    action: Action,
    caller: Option<&Caller>,
    req: &ApiRequest,
    now: jiff::Timestamp,
    call: &mut Call,
) -> Result<Map<String, Value>, ApiError> {
    let p = &req.params;
    match action.product() {
        Product::Sts if action == Action::GetCallerIdentity => {
            let State { auth, config, .. } = state;
            match caller {
                Some(c) => Ok(sts::caller_identity(auth, config, c)),
                None => Err(ApiError::from_code("IncompleteSignature")),
            }
        }
        Product::Sts => {
            let State { auth, config, .. } = state;
            sts::assume_role(auth, config, caller, p, now)
        }
        Product::Vpc => {
            let account = caller.map(|c| c.account.clone()).unwrap_or_default();
            let token = if action.is_mutating() {
                p.client_token(state.config.client_token_ascii_only)?
            } else {
                None
            };
            let fp = fingerprint(p);
            let retention = state.config.token_retention;
            if let Some(token) = token
                && let Some(original) =
                    state
                        .tokens
                        .lookup(&account, action.name(), token, &fp, now, retention)?
            {
                return Ok(original);
            }
            let ctx = OpContext {
                regions: &state.regions,
                pending_delay: state.config.pending_delay,
                modify_delay: state.config.modify_delay,
                delete_delay: state.config.delete_delay,
                visibility_lag: state.config.visibility_lag,
                total_count: state.config.total_count,
                now,
                client_token: token,
                account: &account,
            };
            let result = vpc::execute(&mut state.res, &ctx, action, p)?;
            if let Some(token) = token {
                state.tokens.remember(TokenRecord {
                    account,
                    action: action.name().to_owned(),
                    token: token.to_owned(),
                    fingerprint: fp,
                    response: result.fields.clone(),
                    created_at: now,
                });
            }
            if result.mutated || token.is_some() {
                state.revision += 1;
                call.mutated = true;
            }
            Ok(result.fields)
        }
    }
}

/// The API endpoint (every path outside `/__admin/`).
async fn api(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let request_id = wire::new_request_id();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let req = ApiRequest::parse(parts.method, &parts.uri, parts.headers, body);
    let on_the_way_in = shared.lock().config.request_latency.sample();
    if !on_the_way_in.is_zero() {
        tokio::time::sleep(on_the_way_in).await;
    }
    let call = process(&shared, &req).await;
    let (latency, retry_after) = {
        let state = shared.lock();
        (
            state.config.latency.sample(),
            state.config.throttle_retry_after,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if call.mutated {
        shared.persist().await;
    }
    let (code, response) = match &call.result {
        Ok(fields) => (
            OK.to_owned(),
            wire::success_response(req.format, &call.action, &request_id, fields),
        ),
        Err(Failure::Api(e)) => {
            let mut response =
                wire::error_response(req.format, e, &request_id, &req.host, call.product.name());
            if let Some(hint) = retry_after.filter(|_| e.code.contains("Throttling"))
                && let Ok(v) = axum::http::HeaderValue::from_str(&hint.as_millis().to_string())
            {
                response.headers_mut().insert("x-acs-retry-after", v);
            }
            (e.code.to_string(), response)
        }
        Err(Failure::RawStatus(s)) => (
            format!("HTTP{s}"),
            wire::raw_status_response(*s, &request_id),
        ),
    };
    {
        let mut state = shared.lock();
        state
            .counters
            .record(&call.action, &code, &call.access_key_id);
        if call.action == "DescribeBgpPeers" {
            state.counters.record_describe_filter(&req.params);
        }
    }
    tracing::info!(
        request_id = %request_id,
        action = %call.action,
        code = %code,
        status = response.status().as_u16(),
        access_key_id = %call.access_key_id,
        format = ?req.format,
        "emulator api call"
    );
    response
}

/// The router: `/__admin/…` (loopback only) and the API on every other path.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .nest("/__admin", admin::router())
        .fallback(api)
        .with_state(shared)
}

/// A running emulator.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts an emulator on `listen` (port 0 picks a free port) and serves until
/// [`EmulatorHandle::shutdown`].
pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> anyhow::Result<EmulatorHandle> {
    let shared = Arc::new(Shared::new(config)?);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let app = router(Arc::clone(&shared)).into_make_service_with_connect_info::<SocketAddr>();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    tracing::info!(%addr, "VPC API emulator listening");
    Ok(EmulatorHandle {
        shared,
        addr,
        cancel,
        task,
    })
}

impl EmulatorHandle {
    /// The shared state (for the per-kind handle methods in sibling modules).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn now(&self) -> jiff::Timestamp {
        self.shared.clock.now()
    }

    /// All peers (transitions due by now applied).
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        let now = self.now();
        let mut state = self.shared.lock();
        state.res.settle(now);
        state.res.bgp_peers.clone()
    }

    /// One peer.
    pub fn peer(&self, id: &str) -> Option<PeerSnapshot> {
        self.peers().into_iter().find(|p| p.bgp_peer_id == id)
    }

    /// All groups.
    pub fn groups(&self) -> Vec<GroupSnapshot> {
        let now = self.now();
        let mut state = self.shared.lock();
        state.res.settle(now);
        state.res.bgp_groups.clone()
    }

    /// All VBRs.
    pub fn vbrs(&self) -> Vec<VbrSnapshot> {
        self.shared.lock().res.vbrs.clone()
    }

    /// Regions, VBRs, groups and peers.
    pub fn state(&self) -> StateDump {
        let now = self.now();
        self.shared.lock().dump(now)
    }

    /// Call counters.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// Zeroes the call counters.
    pub fn reset_counters(&self) {
        self.shared.lock().counters = Counters::default();
    }

    /// Adds a fault rule.
    ///
    /// # Panics
    /// If the rule is invalid (probability outside 0..=1, status outside 100..=599, empty
    /// action); use [`EmulatorHandle::try_inject_fault`] to get the error instead.
    pub fn inject_fault(&self, fault: Fault) {
        if let Err(e) = self.try_inject_fault(fault) {
            panic!("invalid fault rule: {e}");
        }
    }

    /// Adds a fault rule, or says why it is invalid.
    pub fn try_inject_fault(&self, fault: Fault) -> Result<(), super::faults::FaultError> {
        self.shared.lock().faults.add(fault)
    }

    /// Active fault rules.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.list()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Back to the configured world (seed groups and peers; no tokens, faults or counters).
    pub fn reset(&self) {
        let now = self.now();
        self.shared.lock().reset(now);
        self.persist_in_background();
    }

    /// Deletes a peer at once, behind the API's back; `false` if there was none.
    pub fn delete_peer_out_of_band(&self, id: &str) -> bool {
        let removed = self.shared.lock().delete_peer(id);
        if removed {
            self.persist_in_background();
        }
        removed
    }

    /// Changes a peer behind the API's back (fields, `Status`, `BgpStatus`).
    pub fn modify_peer_out_of_band(
        &self,
        id: &str,
        change: PeerChange,
    ) -> Result<PeerSnapshot, AdminError> {
        let now = self.now();
        let result = self.shared.lock().modify_peer(id, change, now);
        if result.is_ok() {
            self.persist_in_background();
        }
        result
    }

    /// Sets a peer's status (sticky); `false` if there is no such peer.
    pub fn set_peer_status(&self, id: &str, status: Status) -> bool {
        self.modify_peer_out_of_band(
            id,
            PeerChange {
                status: Some(status),
                ..PeerChange::default()
            },
        )
        .is_ok()
    }

    /// Moves the emulator's clock forward: pending transitions and token retention see the
    /// later time (signed requests must then carry timestamps within the window of it).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Changes run-time knobs (delays, latency, QPS, windows, STS); topology changes take effect
    /// on [`EmulatorHandle::reset`].
    pub fn update_config(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        self.shared.lock().update_config(f);
    }

    /// The current configuration.
    pub fn config(&self) -> EmulatorConfig {
        self.shared.lock().config.clone()
    }

    /// Writes the state file after an out-of-band change: on the runtime when called from
    /// one, else right away.
    fn persist_in_background(&self) {
        if self.shared.persister.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let shared = Arc::clone(&self.shared);
                runtime.spawn(async move { shared.persist().await });
            }
            Err(_) => self.shared.persist_blocking(),
        }
    }

    /// Writes the state file now (if configured).
    pub async fn flush_state(&self) {
        self.shared.persist().await;
    }

    /// Stops serving, writes the state file, and waits for the server task.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        match self.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "emulator server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "emulator server task failed"),
            Ok(Ok(())) => {}
        }
        self.shared.persist().await;
    }
}

#[cfg(test)]
pub(crate) fn test_shared(config: EmulatorConfig) -> Arc<Shared> {
    Arc::new(Shared::new(config).expect("valid test config"))
}
