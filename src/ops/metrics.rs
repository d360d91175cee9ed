//! Prometheus metrics (OpenMetrics text on `/metrics`).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

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
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `alicloud_bgp_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("alicloud_bgp_operator");
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
        registry.register(
            "reconciles",
            "Reconciles of BgpPeer objects by result and error class",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one BgpPeer reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "cloud_api_calls",
            "VPC API calls by action and response code",
            cloud_calls.clone(),
        );
        registry.register(
            "cloud_api_latency_seconds",
            "VPC API call latency by action",
            cloud_latency.clone(),
        );
        registry.register(
            "rate_limiter_waits",
            "Cloud calls that waited for the client-side rate limiter",
            rate_limit_waits.clone(),
        );
        registry.register(
            "rate_limiter_wait_seconds",
            "Total time cloud calls waited for the client-side rate limiter",
            rate_limit_wait_seconds.clone(),
        );
        registry.register(
            "bgppeers",
            "BgpPeer objects by condition type and status",
            objects.clone(),
        );
        registry.register(
            "transitions_overdue",
            "Waits on a cloud transition (Pending, Modifying, Deleting, unknown status) that outlasted the transition timeout",
            transitions_overdue.clone(),
        );
        Metrics {
            transitions_overdue,
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
