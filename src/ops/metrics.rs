//! Prometheus metrics (OpenMetrics text on `/metrics`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::BgpPeer;
use crate::api::conditions::{reasons, status as cond_status, types};

use super::process::ProcessCollector;
use super::report::{self, FirstReady};

/// Whole seconds from `since` to `now` (0 if `now` is earlier), as a float.
fn seconds_between(since: jiff::Timestamp, now: jiff::Timestamp) -> f64 {
    ((now.as_millisecond() - since.as_millisecond()).max(0) as f64) / 1000.0
}

/// Labels of reconcile outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `error`.
    pub result: String,
    /// Error class (`none` on success).
    pub class: String,
}

/// Labels of cloud API calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// API action, e.g. `CreateBgpPeer`.
    pub action: String,
    /// `Success`, the API error code, or `Transport`.
    pub code: String,
}

/// Labels of latency histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// API action.
    pub action: String,
}

/// Labels of the objects-by-condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// Condition type.
    pub condition: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
}

/// Labels of `time_to_ready_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// Resource kind (`BgpPeer`).
    pub kind: String,
    /// `create` (first Ready of generation 1, from creation) or `update` (first Ready of a
    /// later generation, from when the operator first saw it).
    pub trigger: String,
}

/// Labels of per-kind metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Resource kind (`BgpPeer`).
    pub kind: String,
}

/// Labels of the sessions-by-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// BGP session state as the cloud reports it (Idle, Connect, Active, Established, Down),
    /// `Unknown` when it reported none.
    pub state: String,
}

/// Labels of the not-Ready-by-reason gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The `Ready` condition's reason (`NoStatus` before the operator wrote one).
    pub reason: String,
}

/// Labels of the per-object session gauge (opt-in: one series per object).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectSessionLabels {
    /// Namespace of the BgpPeer.
    pub namespace: String,
    /// Name of the BgpPeer.
    pub name: String,
    /// Session state (as in [`StateLabels`]).
    pub state: String,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Buckets of the lifecycle histograms: 0.5 s to about 2.3 h.
fn lifecycle_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 15))
}

/// The kind label of BgpPeer metrics.
pub const KIND_BGP_PEER: &str = "BgpPeer";

/// All metrics of the operator, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result and error class.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Cloud API calls by action and response code.
    pub cloud_calls: Family<CallLabels, Counter>,
    /// Cloud API latency by action.
    pub cloud_latency: Family<ActionLabels, Histogram>,
    /// Waits imposed by the client-side rate limiter.
    pub rate_limit_waits: Counter,
    /// Time spent waiting for the client-side rate limiter, in seconds.
    pub rate_limit_wait_seconds: Counter<f64, AtomicU64>,
    /// BgpPeer objects by condition and status (refreshed at each scrape).
    pub objects: Family<ConditionLabels, Gauge>,
    /// Waits on a cloud transition that outlasted the transition timeout.
    pub transitions_overdue: Counter,
    /// From creation (or a spec change) to Ready for that generation, once per generation.
    pub time_to_ready: Family<ReadyLabels, Histogram>,
    /// From the deletion request to the finalizer's release.
    pub time_to_delete: Family<KindLabels, Histogram>,
    /// Ready BgpPeers by BGP session state (refreshed at each scrape).
    pub sessions: Family<StateLabels, Gauge>,
    /// One series per Ready BgpPeer with its session state (only with
    /// [`Metrics::set_per_object_sessions`]).
    pub object_sessions: Family<ObjectSessionLabels, Gauge>,
    /// Not-Ready BgpPeers by the Ready condition's reason (refreshed at each scrape).
    pub not_ready: Family<ReasonLabels, Gauge>,
    /// Longest time any BgpPeer has been not Ready, in seconds (0 when all are).
    pub longest_not_ready: Gauge<f64, AtomicU64>,
    /// Longest time any BgpPeer has waited for its deletion, in seconds (0 when none does).
    pub longest_deleting: Gauge<f64, AtomicU64>,
    /// Longest time any Ready BgpPeer's session has not been Established, in seconds.
    pub longest_session_down: Gauge<f64, AtomicU64>,
    /// 1 while this replica reconciles (holds the Lease, or runs without leader election).
    pub leader: Gauge,
    per_object_sessions: AtomicBool,
    /// uid → (generation, when this process first saw it), for `update` time-to-ready.
    first_seen: Mutex<HashMap<String, (i64, jiff::Timestamp)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `alicloud_bgp_operator` prefix.
    pub fn new() -> Self {
        // The operator's own metrics carry its prefix; the process's (`process_*`) are the
        // standard unprefixed names, so they sit on the root.
        let mut registry = Registry::default();
        let ours = registry.sub_registry_with_prefix("alicloud_bgp_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = seconds_histogram();
        let cloud_calls = Family::<CallLabels, Counter>::default();
        let cloud_latency = Family::<ActionLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let rate_limit_waits = Counter::default();
        let rate_limit_wait_seconds = Counter::<f64, AtomicU64>::default();
        let objects = Family::<ConditionLabels, Gauge>::default();
        let transitions_overdue = Counter::default();
        let time_to_ready = Family::<ReadyLabels, Histogram>::new_with_constructor(
            lifecycle_histogram as fn() -> Histogram,
        );
        let time_to_delete = Family::<KindLabels, Histogram>::new_with_constructor(
            lifecycle_histogram as fn() -> Histogram,
        );
        let sessions = Family::<StateLabels, Gauge>::default();
        let object_sessions = Family::<ObjectSessionLabels, Gauge>::default();
        let not_ready = Family::<ReasonLabels, Gauge>::default();
        let longest_not_ready = Gauge::<f64, AtomicU64>::default();
        let longest_deleting = Gauge::<f64, AtomicU64>::default();
        let longest_session_down = Gauge::<f64, AtomicU64>::default();
        let leader = Gauge::default();
        ours.register(
            "time_to_ready_seconds",
            "Time from creation (trigger=create) or from the operator first seeing a spec change (trigger=update) to Ready for that generation; counted once per generation",
            time_to_ready.clone(),
        );
        ours.register(
            "time_to_delete_seconds",
            "Time from the deletion request (deletionTimestamp) to the release of the finalizer",
            time_to_delete.clone(),
        );
        ours.register(
            "bgp_sessions",
            "Ready BgpPeers by BGP session state as last observed",
            sessions.clone(),
        );
        ours.register(
            "bgp_session_state",
            "1 per Ready BgpPeer, labelled with its BGP session state (only with --per-object-session-metrics)",
            object_sessions.clone(),
        );
        ours.register(
            "bgppeers_not_ready",
            "BgpPeers not Ready (and not being deleted or paused) by the Ready condition's reason",
            not_ready.clone(),
        );
        ours.register(
            "bgppeers_longest_not_ready_seconds",
            "Longest time any BgpPeer (not being deleted or paused) has been not Ready; 0 when all are Ready",
            longest_not_ready.clone(),
        );
        ours.register(
            "bgppeers_longest_deleting_seconds",
            "Longest time any BgpPeer has been waiting for its deletion (since deletionTimestamp); 0 when none is",
            longest_deleting.clone(),
        );
        ours.register(
            "bgp_sessions_longest_not_established_seconds",
            "Longest time the BGP session of any Ready BgpPeer has not been Established (since the SessionEstablished condition turned False); 0 when all are",
            longest_session_down.clone(),
        );
        ours.register(
            "leader",
            "1 while this replica reconciles (holds the leader Lease, or runs without leader election), 0 otherwise",
            leader.clone(),
        );
        ours.register(
            "reconciles",
            "Reconciles of BgpPeer objects by result and error class",
            reconciles.clone(),
        );
        ours.register(
            "reconcile_duration_seconds",
            "Duration of one BgpPeer reconcile",
            reconcile_duration.clone(),
        );
        ours.register(
            "cloud_api_calls",
            "VPC API calls by action and response code",
            cloud_calls.clone(),
        );
        ours.register(
            "cloud_api_latency_seconds",
            "VPC API call latency by action",
            cloud_latency.clone(),
        );
        ours.register(
            "rate_limiter_waits",
            "Cloud calls that waited for the client-side rate limiter",
            rate_limit_waits.clone(),
        );
        ours.register(
            "rate_limiter_wait_seconds",
            "Total time cloud calls waited for the client-side rate limiter",
            rate_limit_wait_seconds.clone(),
        );
        ours.register(
            "bgppeers",
            "BgpPeer objects by condition type and status",
            objects.clone(),
        );
        ours.register(
            "transitions_overdue",
            "Waits on a cloud transition (Pending, Modifying, Deleting, unknown status) that outlasted the transition timeout",
            transitions_overdue.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            transitions_overdue,
            time_to_ready,
            time_to_delete,
            sessions,
            object_sessions,
            not_ready,
            longest_not_ready,
            longest_deleting,
            longest_session_down,
            leader,
            per_object_sessions: AtomicBool::new(false),
            first_seen: Mutex::default(),
            registry,
            reconciles,
            reconcile_duration,
            cloud_calls,
            cloud_latency,
            rate_limit_waits,
            rate_limit_wait_seconds,
            objects,
        }
    }

    /// Counts one reconcile.
    pub fn reconciled(&self, class: Option<&str>, elapsed: Duration) {
        let labels = ReconcileLabels {
            result: if class.is_some() { "error" } else { "success" }.to_owned(),
            class: class.unwrap_or("none").to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one cloud call.
    pub fn cloud_call(&self, action: &str, code: &str, elapsed: Duration) {
        self.cloud_calls
            .get_or_create(&CallLabels {
                action: action.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.cloud_latency
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one wait that became overdue.
    pub fn transition_overdue(&self) {
        self.transitions_overdue.inc();
    }

    /// Counts one rate-limiter wait.
    pub fn rate_limited(&self, waited: Duration) {
        self.rate_limit_waits.inc();
        self.rate_limit_wait_seconds.inc_by(waited.as_secs_f64());
    }

    /// Replaces the objects-by-condition gauge with `counts`.
    pub fn set_objects(&self, counts: impl IntoIterator<Item = ((String, String), i64)>) {
        self.objects.clear();
        for ((condition, status), n) in counts {
            self.objects
                .get_or_create(&ConditionLabels { condition, status })
                .set(n);
        }
    }

    /// Turns the per-object session gauge on or off (`--per-object-session-metrics`): one
    /// series per Ready object, so off by default.
    pub fn set_per_object_sessions(&self, on: bool) {
        self.per_object_sessions.store(on, Ordering::Relaxed);
        if !on {
            self.object_sessions.clear();
        }
    }

    /// Whether this replica reconciles.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A reconcile of `obj` starts: the first time this process sees a generation the status
    /// does not describe yet, it notes when (the start of `update` time-to-ready).
    pub fn saw(&self, meta: &ObjectMeta, observed: Option<i64>) {
        let Some(generation) = meta.generation.filter(|g| *g > 1) else {
            return;
        };
        if observed == Some(generation) {
            return;
        }
        let Some(uid) = meta.uid.clone() else {
            return;
        };
        if let Ok(mut seen) = self.first_seen.lock() {
            match seen.get(&uid) {
                Some((g, _)) if *g == generation => {}
                _ => {
                    seen.insert(uid, (generation, jiff::Timestamp::now()));
                }
            }
        }
    }

    /// The Ready status `first` describes was written for `obj` at `now`: counts its
    /// time-to-ready once (an `update` first seen by another process is not counted: its
    /// start is unknown here).
    pub fn ready(&self, kind: &str, meta: &ObjectMeta, first: FirstReady, now: jiff::Timestamp) {
        let uid = meta.uid.clone().unwrap_or_default();
        let since = match first {
            FirstReady::No => return,
            FirstReady::Created => {
                self.forget(&uid);
                meta.creation_timestamp.as_ref().map(|t| t.0)
            }
            FirstReady::Updated(generation) => {
                self.first_seen
                    .lock()
                    .ok()
                    .and_then(|mut seen| match seen.get(&uid) {
                        Some((g, at)) if *g == generation => {
                            let at = *at;
                            seen.remove(&uid);
                            Some(at)
                        }
                        _ => None,
                    })
            }
        };
        let Some(since) = since else {
            return;
        };
        let trigger = if first == FirstReady::Created {
            "create"
        } else {
            "update"
        };
        self.time_to_ready
            .get_or_create(&ReadyLabels {
                kind: kind.to_owned(),
                trigger: trigger.to_owned(),
            })
            .observe(seconds_between(since, now));
    }

    /// The finalizer of `obj` was released at `now`: counts its time-to-delete.
    pub fn deleted(&self, kind: &str, meta: &ObjectMeta, now: jiff::Timestamp) {
        self.forget(&meta.uid.clone().unwrap_or_default());
        if let Some(since) = &meta.deletion_timestamp {
            self.time_to_delete
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .observe(seconds_between(since.0, now));
        }
    }

    fn forget(&self, uid: &str) {
        if let Ok(mut seen) = self.first_seen.lock() {
            seen.remove(uid);
        }
    }

    /// Refreshes the gauges computed from the cached objects (at each scrape).
    pub fn observe_objects(&self, objects: &[Arc<BgpPeer>], now: jiff::Timestamp) {
        let per_object = self.per_object_sessions.load(Ordering::Relaxed);
        let mut sessions: HashMap<String, i64> = HashMap::new();
        let mut object_sessions = Vec::new();
        let mut not_ready: HashMap<String, i64> = HashMap::new();
        let (mut longest_not_ready, mut longest_deleting, mut longest_down) = (0f64, 0f64, 0f64);
        for obj in objects {
            if let Some(at) = &obj.metadata.deletion_timestamp {
                longest_deleting = longest_deleting.max(seconds_between(at.0, now));
                continue;
            }
            let status = obj.status.as_ref();
            let condition =
                |type_: &str| status.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
            let ready = condition(types::READY);
            match ready {
                Some(c) if c.status == cond_status::TRUE => {
                    let state = status
                        .and_then(|s| s.cloud.as_ref())
                        .and_then(|c| c.bgp_status.clone())
                        .filter(|s| !s.is_empty())
                        .map_or_else(|| "Unknown".to_owned(), String::from);
                    if state != report::ESTABLISHED {
                        let since = match condition(types::SESSION_ESTABLISHED) {
                            Some(s) if s.status != cond_status::TRUE => &s.last_transition_time,
                            _ => &c.last_transition_time,
                        };
                        longest_down = longest_down.max(seconds_between(since.0, now));
                    }
                    if per_object {
                        object_sessions.push(ObjectSessionLabels {
                            namespace: obj.namespace().unwrap_or_default(),
                            name: obj.name_any(),
                            state: state.clone(),
                        });
                    }
                    *sessions.entry(state).or_default() += 1;
                }
                Some(c) if c.reason == reasons::PAUSED => {}
                other => {
                    let (reason, since) = match other {
                        Some(c) => (c.reason.to_string(), Some(c.last_transition_time.0)),
                        None => (
                            "NoStatus".to_owned(),
                            obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
                        ),
                    };
                    if let Some(since) = since {
                        longest_not_ready = longest_not_ready.max(seconds_between(since, now));
                    }
                    *not_ready.entry(reason).or_default() += 1;
                }
            }
        }
        self.sessions.clear();
        for (state, n) in sessions {
            self.sessions.get_or_create(&StateLabels { state }).set(n);
        }
        self.object_sessions.clear();
        for labels in object_sessions {
            self.object_sessions.get_or_create(&labels).set(1);
        }
        self.not_ready.clear();
        for (reason, n) in not_ready {
            self.not_ready
                .get_or_create(&ReasonLabels { reason })
                .set(n);
        }
        self.longest_not_ready.set(longest_not_ready);
        self.longest_deleting.set(longest_deleting);
        self.longest_session_down.set(longest_down);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.reconciled(None, Duration::from_millis(20));
        m.reconciled(Some("Throttled"), Duration::from_millis(5));
        m.cloud_call("CreateBgpPeer", "Success", Duration::from_millis(30));
        m.cloud_call("CreateBgpPeer", "Throttling.User", Duration::from_millis(3));
        m.rate_limited(Duration::from_millis(250));
        m.set_objects([(("Ready".to_owned(), "True".to_owned()), 3)]);
        let text = m.encode();
        for needle in [
            r#"alicloud_bgp_operator_reconciles_total{result="success",class="none"} 1"#,
            r#"alicloud_bgp_operator_reconciles_total{result="error",class="Throttled"} 1"#,
            r#"alicloud_bgp_operator_cloud_api_calls_total{action="CreateBgpPeer",code="Throttling.User"} 1"#,
            r#"alicloud_bgp_operator_cloud_api_latency_seconds_count{action="CreateBgpPeer"} 2"#,
            "alicloud_bgp_operator_rate_limiter_waits_total 1",
            r#"alicloud_bgp_operator_bgppeers{condition="Ready",status="True"} 3"#,
            "alicloud_bgp_operator_reconcile_duration_seconds_count 2",
        ] {
            assert!(text.contains(needle), "missing {needle} in:\n{text}");
        }
        // The gauge is replaced, not accumulated.
        m.set_objects([(("Ready".to_owned(), "False".to_owned()), 1)]);
        let text = m.encode();
        assert!(!text.contains(r#"condition="Ready",status="True""#));
    }
}
