//! The admin API under `/__admin/`, served only to loopback clients:
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `POST /__admin/faults` | [`Fault`] JSON | add a fault rule; answers the active rules |
//! | `GET /__admin/faults` | | the active rules |
//! | `DELETE /__admin/faults` | | remove every rule |
//! | `GET /__admin/counters` | | [`Counters`] |
//! | `DELETE /__admin/counters` | | zero the counters |
//! | `GET /__admin/state` | | [`StateDump`]: regions, VBRs, groups, peers with status |
//! | `POST /__admin/reset` | | back to the configured world |
//! | `POST /__admin/peers/{id}` | [`PeerChange`] JSON | change a peer out of band |
//! | `POST /__admin/peers/{id}/status` | [`PeerChange`] JSON, e.g. `{"Status":"Modifying","BgpStatus":"Down"}` | same |
//! | `DELETE /__admin/peers/{id}` | | delete a peer out of band |
//! | `POST /__admin/clock/advance` | `{"by":"30s"}` | move the emulator clock forward |
//! | `POST /__admin/config` | [`ConfigChange`] JSON, e.g. `{"visibility_lag":"2s"}` | change run-time knobs; answers them |
//! | `GET /__admin/config` | | the run-time knobs |
//! | `POST /__admin/networks`, `/networks/delete`, `/vbrs/{id}/network-quota` | | BGP networks out of band and a VBR's network quota ([`super::network::admin_routes`]) |
//!
//! Errors are `{"Code","Message"}` with 400 (bad body), 403 (not loopback) or 404 (no such peer).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Path, Request, State as AxumState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::duration::parse as parse_duration;

use super::counters::Counters;
use super::faults::Fault;
use super::server::Shared;
use super::state::{AdminError, ConfigChange, PeerChange, StateDump};

/// Whether a client address may use the admin API: loopback only (IPv4-mapped IPv6 loopback
/// included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn admin_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "Code": code, "Message": message.into() })),
    )
        .into_response()
}

/// Refuses non-loopback clients (and requests without a known peer address).
async fn loopback_only(request: Request, next: Next) -> Response {
    let extensions = request.extensions();
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .or_else(|| {
            extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|MockConnectInfo(addr)| addr.ip())
        });
    match peer {
        Some(ip) if is_loopback(ip) => next.run(request).await,
        _ => admin_error(
            StatusCode::FORBIDDEN,
            "Forbidden.AdminLoopbackOnly",
            "the admin API is only served to loopback clients",
        ),
    }
}

/// The `/__admin` routes.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/counters", get(counters).delete(reset_counters))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .route("/peers/{id}", post(modify_peer).delete(delete_peer))
        .route("/peers/{id}/status", post(modify_peer))
        .route("/clock/advance", post(advance_clock))
        .route("/config", get(get_config).post(set_config))
        .merge(super::network::admin_routes())
        .layer(middleware::from_fn(loopback_only))
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn bad_body(message: String) -> Response {
    admin_error(StatusCode::BAD_REQUEST, "InvalidBody", message)
}

async fn list_faults(AxumState(shared): AxumState<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.lock().faults.list())
}

async fn add_fault(AxumState(shared): AxumState<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let fault: Fault = match parse_json(&body) {
        Ok(f) => f,
        Err(e) => return bad_body(e),
    };
    let mut state = shared.lock();
    match state.faults.add(fault) {
        Ok(()) => (StatusCode::CREATED, Json(state.faults.list())).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, "InvalidFault", e.to_string()),
    }
}

async fn clear_faults(AxumState(shared): AxumState<Arc<Shared>>) -> Json<serde_json::Value> {
    shared.lock().faults.clear();
    Json(json!({}))
}

async fn counters(AxumState(shared): AxumState<Arc<Shared>>) -> Json<Counters> {
    Json(shared.lock().counters.clone())
}

async fn reset_counters(AxumState(shared): AxumState<Arc<Shared>>) -> Json<serde_json::Value> {
    shared.lock().counters = Counters::default();
    Json(json!({}))
}

async fn state(AxumState(shared): AxumState<Arc<Shared>>) -> Json<StateDump> {
    let now = shared.clock().now();
    Json(shared.lock().dump(now))
}

async fn reset(AxumState(shared): AxumState<Arc<Shared>>) -> Json<serde_json::Value> {
    let now = shared.clock().now();
    shared.lock().reset(now);
    shared.persist().await;
    Json(json!({}))
}

async fn modify_peer(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let change: PeerChange = match parse_json(&body) {
        Ok(c) => c,
        Err(e) => return bad_body(e),
    };
    let now = shared.clock().now();
    let result = shared.lock().modify_peer(&id, change, now);
    match result {
        Ok(peer) => {
            shared.persist().await;
            Json(peer).into_response()
        }
        Err(e @ AdminError::PeerNotFound(_)) => {
            admin_error(StatusCode::NOT_FOUND, "PeerNotFound", e.to_string())
        }
        Err(e @ AdminError::GroupNotFound(_)) => {
            admin_error(StatusCode::BAD_REQUEST, "GroupNotFound", e.to_string())
        }
    }
}

async fn delete_peer(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let removed = shared.lock().delete_peer(&id);
    if removed {
        shared.persist().await;
        Json(json!({ "Deleted": id })).into_response()
    } else {
        admin_error(
            StatusCode::NOT_FOUND,
            "PeerNotFound",
            format!("no BGP peer {id}"),
        )
    }
}

/// The run-time knobs as `GET/POST /__admin/config` answer them (durations in ms).
fn knobs(c: &crate::emulator::config::EmulatorConfig) -> serde_json::Value {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    json!({
        "visibility_lag": ms(c.visibility_lag),
        "deleted_linger": ms(c.deleted_linger),
        "pending_delay": ms(c.pending_delay),
        "modify_delay": ms(c.modify_delay),
        "delete_delay": ms(c.delete_delay),
        "session_connect_delay": ms(c.session_connect_delay),
        "session_establish_delay": ms(c.session_establish_delay),
        "token_retention": ms(c.token_retention),
        "throttle_retry_after": c.throttle_retry_after.map(ms),
        "qps_per_key": c.qps_per_key,
        "api_quotas": c.api_quotas,
        "total_count": c.total_count,
        "wrong_secret_incomplete": c.wrong_secret_incomplete,
    })
}

async fn get_config(AxumState(shared): AxumState<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(knobs(&shared.lock().config))
}

async fn set_config(
    AxumState(shared): AxumState<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let change: ConfigChange = match parse_json(&body) {
        Ok(c) => c,
        Err(e) => return bad_body(e),
    };
    let mut state = shared.lock();
    state.update_config(|c| change.apply(c));
    Json(knobs(&state.config)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    by: serde_json::Value,
}

async fn advance_clock(
    AxumState(shared): AxumState<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let advance: Advance = match parse_json(&body) {
        Ok(a) => a,
        Err(e) => return bad_body(e),
    };
    let by = match &advance.by {
        serde_json::Value::Number(n) => n.as_u64().map(std::time::Duration::from_millis),
        serde_json::Value::String(s) => parse_duration(s).ok(),
        _ => None,
    };
    match by {
        Some(by) => {
            shared.clock().advance(by);
            Json(json!({ "Now": shared.clock().now().to_string() })).into_response()
        }
        None => admin_error(
            StatusCode::BAD_REQUEST,
            "InvalidBody",
            "\"by\" must be a duration string (\"30s\") or milliseconds",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::config::EmulatorConfig;
    use crate::emulator::server::{router as app_router, test_shared};
    use axum::body::Body;
    use tower::ServiceExt as _;

    #[test]
    fn loopback_check() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("127.8.9.10".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("192.168.1.2".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("2001:db8::1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
    }

    async fn get_state_from(peer: &str) -> StatusCode {
        let shared = test_shared(EmulatorConfig::demo());
        let app = app_router(shared).layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/__admin/state")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        response.status()
    }

    #[tokio::test]
    async fn admin_is_refused_to_non_loopback_clients() {
        assert_eq!(get_state_from("127.0.0.1:5000").await, StatusCode::OK);
        assert_eq!(get_state_from("[::1]:5000").await, StatusCode::OK);
        assert_eq!(get_state_from("10.1.2.3:5000").await, StatusCode::FORBIDDEN);
        assert_eq!(
            get_state_from("[2001:db8::1]:5000").await,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn admin_without_connect_info_is_refused() {
        let shared = test_shared(EmulatorConfig::demo());
        let response = app_router(shared)
            .oneshot(
                Request::builder()
                    .uri("/__admin/state")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
