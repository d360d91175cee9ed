//! Kubernetes events (`events.k8s.io/v1`) with series aggregation and a small memory
//! footprint.
//!
//! kube-runtime's `Recorder` keeps every event it published, whole, for six minutes to
//! aggregate repeats; with thousands of objects that cache was the largest single user of
//! the controller's heap (heaptrack at N = 5,000: ~12 MiB of table plus the events' strings).
//! This recorder publishes the same objects the same way (a new Event, then a `series`
//! patch for a repeat within six minutes), but remembers only a hash of the event's identity,
//! the Event's name and the repeat count: ~100 bytes per recent event.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Repeats within this window are counted on one Event (as client-go and kube-runtime do).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// The API limit of `note`.
const MAX_NOTE_BYTES: usize = 1024;
/// Events sent to the apiserver at once; the rest wait their turn. Events are spawned next
/// to the writes a reconcile waits for (finalizer removals, status), and on a small control
/// plane they compete for the same apiserver: at the end of a mass deletion with one shared
/// quota, 1,000 released objects sent 1,000 Events and 1,000 finalizer patches together, and
/// the patches took 5.5 s (README "Performance", session 14). A few at a time, events come a
/// little later and the writes objects wait on go first.
pub const EVENT_PUBLISHES: usize = 4;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Progress worth knowing.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Who reports the events.
#[derive(Clone, Debug)]
pub struct Reporter {
    /// `reportingController`.
    pub controller: String,
    /// `reportingInstance` (the pod name); the controller name when unknown.
    pub instance: Option<String>,
}

struct Recent {
    name: String,
    count: i32,
    last: Instant,
}

#[derive(Default)]
struct Cache {
    recent: HashMap<u64, Recent>,
    prune_above: usize,
}

/// Publishes events; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    reporter: Arc<Reporter>,
    cache: Arc<Mutex<Cache>>,
    sending: Arc<Semaphore>,
}

impl Recorder {
    /// A recorder that reports as `reporter`.
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            reporter: Arc::new(reporter),
            cache: Arc::default(),
            sending: Arc::new(Semaphore::new(EVENT_PUBLISHES)),
        }
    }

    /// Publishes an event about `regarding`: a new Event, or a repeat counted on the Event
    /// published for the same object, type, reason, action and note within six minutes.
    /// At most [`EVENT_PUBLISHES`] are sent at once; the others wait their turn here.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        // Never closed, so acquiring only fails if it were: then send without a turn.
        let _turn = self.sending.acquire().await.ok();
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let key = identity(regarding, type_, reason, action, note);
        let now = Instant::now();
        let repeat = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.prune(now);
            cache
                .recent
                .get_mut(&key)
                .filter(|r| now.duration_since(r.last) < SERIES_WINDOW)
                .map(|r| {
                    r.count += 1;
                    r.last = now;
                    (r.name.clone(), r.count)
                })
        };
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "series": EventSeries {
                    count,
                    last_observed_time: MicroTime(Timestamp::now()),
                }
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // The apiserver dropped the Event (its TTL): publish it anew.
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.new_event(regarding, type_, reason, action, note);
        let name = event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &event).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.recent.insert(
            key,
            Recent {
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// Events remembered for aggregation.
    pub fn remembered(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent
            .len()
    }

    fn new_event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Event {
        let now = Timestamp::now();
        let object = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(event_name(object, now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.as_str().to_owned()),
            reason: Some(reason.to_owned()),
            action: Some(action.to_owned()),
            note: Some(truncate(note, MAX_NOTE_BYTES).to_owned()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Event::default()
        }
    }
}

impl Cache {
    /// Drops entries past the series window, amortised: only when the map doubled since the
    /// last prune.
    fn prune(&mut self, now: Instant) {
        if self.recent.len() >= self.prune_above.max(256) {
            self.recent
                .retain(|_, r| now.duration_since(r.last) < SERIES_WINDOW);
            self.recent.shrink_to_fit();
            self.prune_above = self.recent.len() * 2;
        }
    }
}

fn identity(
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &regarding.uid,
        &regarding.namespace,
        &regarding.name,
        &regarding.kind,
    )
        .hash(&mut h);
    (type_, reason, action, note).hash(&mut h);
    h.finish()
}

/// The longest object name (a DNS subdomain).
const MAX_NAME_BYTES: usize = 253;

/// The Event's name: `<object>.<nanoseconds in hex>`, as client-go names them. Object names
/// may be up to 253 characters themselves, so the object part is cut to leave room for the
/// suffix, and then cut back to end in a letter or digit (a DNS subdomain's labels must).
fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!("{nanos:x}");
    let room = MAX_NAME_BYTES - 1 - suffix.len();
    let prefix = truncate(object, room).trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        suffix
    } else {
        format!("{prefix}.{suffix}")
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            kind: Some("BgpPeer".into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn identity_separates_objects_and_contents() {
        let a = identity(&reference("a"), EventType::Normal, "R", "A", "n");
        assert_eq!(
            a,
            identity(&reference("a"), EventType::Normal, "R", "A", "n")
        );
        assert_ne!(
            a,
            identity(&reference("b"), EventType::Normal, "R", "A", "n")
        );
        assert_ne!(
            a,
            identity(&reference("a"), EventType::Warning, "R", "A", "n")
        );
        assert_ne!(
            a,
            identity(&reference("a"), EventType::Normal, "R", "A", "m")
        );
    }

    #[test]
    fn notes_are_cut_at_the_api_limit_on_a_char_boundary() {
        let long = "é".repeat(600);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(long.starts_with(cut));
        assert_eq!(truncate("short", MAX_NOTE_BYTES), "short");
    }

    /// A DNS subdomain (RFC 1123), as the apiserver checks object names.
    fn is_dns_subdomain(s: &str) -> bool {
        s.len() <= MAX_NAME_BYTES
            && s.split('.').all(|label| {
                let b = label.as_bytes();
                !b.is_empty()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
            })
    }

    #[test]
    fn event_names_stay_valid_for_the_longest_object_names() {
        let nanos = Timestamp::now().as_nanosecond();
        assert_eq!(
            event_name("peer-a", 0x1234),
            "peer-a.1234",
            "short names as client-go"
        );
        let longest = format!("{}z", "a".repeat(252));
        let cuts_at_a_dash = format!("{}-{}", "b".repeat(234), "c".repeat(18));
        let cuts_at_a_dot = format!("{}.{}", "d".repeat(234), "e".repeat(18));
        for object in [
            "peer-a".to_owned(),
            longest.clone(),
            cuts_at_a_dash,
            cuts_at_a_dot,
            "x".repeat(236),
            "a.b-c".repeat(50),
        ] {
            let name = event_name(&object, nanos);
            assert!(is_dns_subdomain(&name), "{name:?} ({} bytes)", name.len());
            assert!(name.ends_with(&format!(".{nanos:x}")), "{name}");
        }
        // Objects that share a long prefix still get distinct names at distinct times.
        assert_ne!(event_name(&longest, nanos), event_name(&longest, nanos + 1));
    }

    #[tokio::test(start_paused = true)]
    async fn old_entries_are_pruned_as_the_cache_grows() {
        let mut cache = Cache::default();
        let start = Instant::now();
        for i in 0..300u64 {
            cache.recent.insert(
                i,
                Recent {
                    name: format!("e{i}"),
                    count: 1,
                    last: start,
                },
            );
        }
        tokio::time::advance(SERIES_WINDOW + Duration::from_secs(1)).await;
        cache.recent.insert(
            1_000,
            Recent {
                name: "fresh".into(),
                count: 1,
                last: Instant::now(),
            },
        );
        cache.prune(Instant::now());
        assert_eq!(cache.recent.len(), 1, "only the fresh entry is kept");
    }

    /// A stand-in apiserver that answers every Event create after a pause and counts how
    /// many requests it holds at once.
    fn counting_client(in_flight: Arc<AtomicUsize>, most: Arc<AtomicUsize>) -> kube::Client {
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let body =
                    br#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e"}}"#;
                http::Response::builder()
                    .status(201)
                    .body(kube::client::Body::from(body.to_vec()))
            }
        });
        kube::Client::new(service, "ns")
    }

    #[tokio::test]
    async fn events_are_sent_a_few_at_a_time_and_all_of_them() {
        let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::default());
        let recorder = Recorder::new(
            counting_client(in_flight.clone(), Arc::clone(&most)),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        );
        let sends: Vec<_> = (0..20)
            .map(|i| {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    recorder
                        .publish(
                            &reference(&format!("o{i}")),
                            EventType::Normal,
                            "R",
                            "A",
                            "n",
                        )
                        .await
                })
            })
            .collect();
        for send in sends {
            assert!(send.await.expect("task").is_ok());
        }
        assert_eq!(most.load(Ordering::SeqCst), EVENT_PUBLISHES);
        assert_eq!(recorder.remembered(), 20, "every event was published");
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }
}
