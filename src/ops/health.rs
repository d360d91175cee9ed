//! The operations HTTP server: `/metrics`, `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;

/// Readiness inputs, flipped by the controller as it starts.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The BgpPeer CRD is served and listable.
    pub crd_served: AtomicBool,
    /// The controller's cache has synced (or this replica is a standby that needs none).
    pub cache_synced: AtomicBool,
}

impl Readiness {
    /// True when both inputs are.
    pub fn is_ready(&self) -> bool {
        self.crd_served.load(Ordering::SeqCst) && self.cache_synced.load(Ordering::SeqCst)
    }
}

/// Shared state of the server.
#[derive(Clone)]
pub struct OpsState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Readiness inputs.
    pub readiness: Arc<Readiness>,
    /// Called before each scrape to refresh computed gauges.
    pub refresh: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The router (exposed for tests).
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    if let Some(refresh) = &state.refresh {
        refresh();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else if !state.readiness.crd_served.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "BgpPeer CRD not served yet",
        )
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "cache not synced yet")
    }
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: OpsState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "ops server stopped");
        }
    });
    Ok((bound, task))
}
