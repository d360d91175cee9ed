//! Watches the BgpPeers of a namespace and records when each became Ready and when each
//! disappeared, relative to a start instant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use alicloud_bgp_operator::api::BgpPeer;

/// True when the object is Ready=True for its current generation.
pub fn is_ready(obj: &BgpPeer) -> bool {
    let Some(status) = &obj.status else {
        return false;
    };
    status.observed_generation == obj.metadata.generation
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[derive(Default)]
struct Seen {
    /// uid → first time seen Ready (since `start`).
    ready: HashMap<String, Duration>,
    /// uid → time it disappeared.
    gone: HashMap<String, Duration>,
    /// uids currently present.
    present: HashMap<String, bool>,
}

/// A running watch (stopped on drop).
pub struct Tracker {
    start: Instant,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    /// Starts watching `ns`; times are measured from `start`.
    pub fn start(client: &Client, ns: &str, start: Instant) -> Self {
        let api: Api<BgpPeer> = Api::namespaced(client.clone(), ns);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let now = start.elapsed();
                let Ok(mut seen) = sink.lock() else { return };
                match event {
                    watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                        let uid = obj.uid().unwrap_or_default();
                        seen.present.insert(uid.clone(), true);
                        if is_ready(&obj) {
                            seen.ready.entry(uid).or_insert(now);
                        }
                    }
                    watcher::Event::Delete(obj) => {
                        let uid = obj.uid().unwrap_or_default();
                        seen.present.remove(&uid);
                        seen.gone.entry(uid).or_insert(now);
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        });
        Self { start, seen, task }
    }

    /// The start instant.
    pub fn start_instant(&self) -> Instant {
        self.start
    }

    /// Objects seen Ready at least once.
    pub fn ready_count(&self) -> usize {
        self.seen.lock().map(|s| s.ready.len()).unwrap_or(0)
    }

    /// Objects seen disappearing.
    pub fn gone_count(&self) -> usize {
        self.seen.lock().map(|s| s.gone.len()).unwrap_or(0)
    }

    /// Times at which objects first became Ready, sorted.
    pub fn ready_times(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .seen
            .lock()
            .map(|s| s.ready.values().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Times at which objects disappeared, sorted.
    pub fn gone_times(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .seen
            .lock()
            .map(|s| s.gone.values().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Waits until `pred(ready, gone)` holds, polling every 200 ms; false on timeout.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(usize, usize) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self.ready_count(), self.gone_count()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
