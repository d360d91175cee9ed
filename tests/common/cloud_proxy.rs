//! A recording HTTP proxy in front of the emulator, one per controller process: it logs every
//! call it carries (action, when it arrived, when it was passed on, when it was answered),
//! and can hold writes for a while before passing them on.
//!
//! Like a real cloud, it carries out a request it received even when its client hangs up
//! (an aborted reconcile, a killed process): the forwarding runs in a task of its own. So a
//! held write lands at the emulator after the process that sent it may have stopped, and a
//! test can check when that was.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;

/// One call carried to the emulator.
#[derive(Clone, Debug)]
pub struct Call {
    /// The API action (`CreateBgpPeer`, …).
    pub action: String,
    /// When the request reached the proxy.
    pub arrived: SystemTime,
    /// When it was passed on to the emulator (after any hold).
    pub forwarded: SystemTime,
    /// When the emulator answered (the write had landed by then).
    pub answered: SystemTime,
    /// The emulator's HTTP status.
    pub status: u16,
}

impl Call {
    /// True for the actions that change the cloud.
    pub fn is_write(&self) -> bool {
        is_write(&self.action)
    }
}

fn is_write(action: &str) -> bool {
    ["Create", "Delete", "Modify"]
        .iter()
        .any(|p| action.starts_with(p))
}

#[derive(Default)]
struct Shared {
    upstream: String,
    http: Option<reqwest::Client>,
    calls: Mutex<Vec<Call>>,
    /// Calls received and not yet answered.
    in_flight: Mutex<Vec<(String, SystemTime)>>,
    write_hold: Mutex<Duration>,
}

/// A running proxy (stopped on drop).
pub struct CloudProxy {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CloudProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CloudProxy {
    /// Starts a proxy on a free loopback port that passes calls on to `upstream` (the
    /// emulator's endpoint, `http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> Self {
        alicloud_bgp_operator::install_crypto_provider();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: Some(reqwest::Client::new()),
            ..Shared::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let router = axum::Router::new()
            .fallback(carry)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        CloudProxy { shared, addr, task }
    }

    /// The endpoint to give a controller (`--endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds every write this long before passing it on (reads pass at once).
    pub fn hold_writes(&self, hold: Duration) {
        *self.shared.write_hold.lock().expect("lock") = hold;
    }

    /// The calls answered so far, in the order they were answered.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().expect("lock").clone()
    }

    /// The writes answered so far.
    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    /// Calls received and not answered yet: (action, arrival).
    pub fn in_flight(&self) -> Vec<(String, SystemTime)> {
        self.shared.in_flight.lock().expect("lock").clone()
    }
}

/// The action of a request: the `x-acs-action` header (signature v3) or the `Action`
/// parameter of the query or form body (v1).
fn action_of(headers: &http::HeaderMap, query: &str, body: &[u8]) -> String {
    if let Some(a) = headers.get("x-acs-action").and_then(|v| v.to_str().ok()) {
        return a.to_owned();
    }
    let body = String::from_utf8_lossy(body);
    [query, body.as_ref()]
        .iter()
        .flat_map(|s| s.split('&'))
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("?")
        .to_owned()
}

async fn carry(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let arrived = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let query = parts.uri.query().unwrap_or("").to_owned();
    let action = action_of(&parts.headers, &query, &body);
    let hold = if is_write(&action) {
        *shared.write_hold.lock().expect("lock")
    } else {
        Duration::ZERO
    };
    shared
        .in_flight
        .lock()
        .expect("lock")
        .push((action.clone(), arrived));
    // Its own task: the call is carried out even if the client hangs up meanwhile.
    let forward = {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            let forwarded = SystemTime::now();
            let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let url = format!("{}{path_and_query}", shared.upstream);
            let http = shared.http.clone().expect("client");
            // The headers as sent, Host included: the signature covers it.
            let result = http
                .request(parts.method.clone(), url)
                .headers(parts.headers.clone())
                .body(body)
                .send()
                .await;
            let (status, headers, bytes) = match result {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    (status, headers, bytes)
                }
                Err(_) => (
                    http::StatusCode::BAD_GATEWAY,
                    http::HeaderMap::new(),
                    Bytes::new(),
                ),
            };
            let answered = SystemTime::now();
            {
                let mut in_flight = shared.in_flight.lock().expect("lock");
                if let Some(i) = in_flight
                    .iter()
                    .position(|(a, t)| *a == action && *t == arrived)
                {
                    in_flight.remove(i);
                }
            }
            shared.calls.lock().expect("lock").push(Call {
                action,
                arrived,
                forwarded,
                answered,
                status: status.as_u16(),
            });
            (status, headers, bytes)
        })
    };
    let (status, headers, bytes) = match forward.await {
        Ok(r) => r,
        Err(_) => (
            http::StatusCode::BAD_GATEWAY,
            http::HeaderMap::new(),
            Bytes::new(),
        ),
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    for (k, v) in &headers {
        if k != http::header::TRANSFER_ENCODING && k != http::header::CONNECTION {
            resp.headers_mut().append(k, v.clone());
        }
    }
    resp
}
