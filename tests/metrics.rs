//! What a network team watches, end to end: a scenario against the real apiserver and the
//! emulator (create, the BGP session going down through the emulator's admin API, an
//! injected error, a credentials error, a deletion), scraping `/metrics` of the ops server
//! after each step. Then the Grafana dashboard and the alert rules may only name metrics that
//! this `/metrics` exported.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use alicloud_bgp_operator::emulator::config::DEMO_ACCESS_KEY_ID;
use alicloud_bgp_operator::ops::health::{self, OpsState};
use common::operator::{GROUP, Operator, REGION, condition};

/// One sample of the exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse(text: &str) -> Vec<Sample> {
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)""#).expect("re");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (head, value) = line.rsplit_once(' ')?;
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = label
                .captures_iter(labels)
                .map(|c| (c[1].to_owned(), c[2].to_owned()))
                .collect();
            Some((name.to_owned(), labels, value.parse().ok()?))
        })
        .collect()
}

/// The value of the first sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

struct Scraper {
    url: String,
    http: reqwest::Client,
    /// Every sample name seen in any scrape (for the dashboard and rules check).
    seen: std::sync::Mutex<BTreeSet<String>>,
}

impl Scraper {
    async fn scrape(&self) -> Vec<Sample> {
        let text = self
            .http
            .get(&self.url)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body");
        let samples = parse(&text);
        self.seen
            .lock()
            .expect("lock")
            .extend(samples.iter().map(|(n, _, _)| n.clone()));
        samples
    }

    /// Scrapes until `name{labels}` satisfies `pred` (10 s at most).
    async fn until(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pred: impl Fn(f64) -> bool,
    ) -> Vec<Sample> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let samples = self.scrape().await;
            let v = value(&samples, name, labels);
            if v.is_some_and(&pred) {
                return samples;
            }
            if tokio::time::Instant::now() > deadline {
                let related: Vec<_> = samples.iter().filter(|(n, _, _)| n == name).collect();
                panic!("{name}{labels:?} = {v:?}; samples of {name}: {related:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn serve_metrics(op: &Operator) -> Scraper {
    let ctx = op.ctx.clone();
    ctx.metrics.set_per_object_sessions(true);
    let refresh_ctx = ctx.clone();
    let state = OpsState {
        metrics: ctx.metrics.clone(),
        readiness: ctx.readiness.clone(),
        refresh: Some(Arc::new(move || refresh_ctx.refresh_object_gauge())),
    };
    let (addr, _task) = health::serve(
        "127.0.0.1:0".parse().expect("addr"),
        state,
        std::future::pending(),
    )
    .await
    .expect("ops server");
    Scraper {
        url: format!("http://{addr}/metrics"),
        http: reqwest::Client::new(),
        seen: Default::default(),
    }
}

async fn admin(op: &Operator, path: &str, body: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", op.emu.endpoint()))
        .json(&body)
        .send()
        .await
        .expect("admin call");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

const KIND: (&str, &str) = ("kind", "BgpPeer");

#[tokio::test]
async fn metrics_status_and_dashboard_after_a_scenario() {
    let op = Operator::start("metrics").await;
    let scraper = serve_metrics(&op).await;
    let ns = op.ns.clone();

    // 1. Create: Ready, the session comes up, time-to-ready counted once (create).
    op.create(
        "peer-a",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.15.0.2"}),
    )
    .await;
    let ready = op.wait_ready("peer-a").await;
    let id = ready.peer_id().expect("peer id").to_owned();
    let status = ready.status.as_ref().expect("status");
    assert!(status.last_sync_time.is_some(), "lastSyncTime set on Ready");
    assert!(status.last_error.is_none());
    op.wait_condition("peer-a", "SessionEstablished", "True", "Established")
        .await;
    scraper
        .until(
            "alicloud_bgp_operator_bgp_sessions",
            &[("state", "Established")],
            |v| v == 1.0,
        )
        .await;
    let s = scraper
        .until(
            "alicloud_bgp_operator_time_to_ready_seconds_count",
            &[KIND, ("trigger", "create")],
            |v| v == 1.0,
        )
        .await;
    let per_object = [
        ("namespace", ns.as_str()),
        ("name", "peer-a"),
        ("state", "Established"),
    ];
    assert_eq!(
        value(&s, "alicloud_bgp_operator_bgp_session_state", &per_object),
        Some(1.0)
    );
    let sum = value(
        &s,
        "alicloud_bgp_operator_time_to_ready_seconds_sum",
        &[KIND, ("trigger", "create")],
    )
    .expect("sum");
    assert!(sum > 0.0 && sum < 60.0, "time to ready {sum}");

    // 2. The session goes down (emulator admin API): SessionEstablished=False, still Ready
    // (kstatus Current, Argo CD Healthy), the gauges follow.
    admin(
        &op,
        &format!("/__admin/peers/{id}"),
        json!({"BgpStatus": "Down"}),
    )
    .await;
    let down = op
        .wait_condition("peer-a", "SessionEstablished", "False", "NotEstablished")
        .await;
    assert_eq!(
        condition(&down, "Ready").map(|c| c.status.as_str()),
        Some("True")
    );
    assert_eq!(
        condition(&down, "Reconciling").map(|c| c.status.as_str()),
        Some("False")
    );
    let s = scraper
        .until(
            "alicloud_bgp_operator_bgp_sessions",
            &[("state", "Down")],
            |v| v == 1.0,
        )
        .await;
    assert_eq!(
        value(
            &s,
            "alicloud_bgp_operator_bgp_sessions",
            &[("state", "Established")]
        ),
        None
    );
    assert_eq!(
        value(
            &s,
            "alicloud_bgp_operator_bgp_session_state",
            &[("name", "peer-a"), ("state", "Down")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &s,
            "alicloud_bgp_operator_bgp_sessions_longest_not_established_seconds",
            &[]
        )
        .is_some_and(|v| v >= 0.0)
    );

    // 3. An injected error on a spec change: lastError names it until the next success, the
    // error counters count it, and the new generation's time-to-ready is counted (update).
    admin(
        &op,
        "/__admin/faults",
        json!({"action": "ModifyBgpPeerAttribute", "code": "Throttling.User", "count": 1}),
    )
    .await;
    op.patch_spec("peer-a", json!({"enableBfd": true})).await;
    let failed = op
        .wait("peer-a", "lastError from ModifyBgpPeerAttribute", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.last_error.as_ref())
                .is_some_and(|e| e.action == "ModifyBgpPeerAttribute")
        })
        .await;
    let err = failed
        .status
        .as_ref()
        .and_then(|s| s.last_error.clone())
        .expect("lastError");
    assert_eq!(err.code, "Throttling.User");
    assert!(err.request_id.is_some(), "{err:?}");
    assert!(!err.message.is_empty());
    let ready = op.wait_ready("peer-a").await;
    assert_eq!(ready.metadata.generation, Some(2));
    assert!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.last_error.as_ref())
            .is_none(),
        "lastError is cleared by the next success"
    );
    let s = scraper
        .until(
            "alicloud_bgp_operator_time_to_ready_seconds_count",
            &[KIND, ("trigger", "update")],
            |v| v == 1.0,
        )
        .await;
    assert_eq!(
        value(
            &s,
            "alicloud_bgp_operator_time_to_ready_seconds_count",
            &[KIND, ("trigger", "create")]
        ),
        Some(1.0),
        "a generation is counted once"
    );
    assert_eq!(
        value(
            &s,
            "alicloud_bgp_operator_cloud_api_calls_total",
            &[
                ("action", "ModifyBgpPeerAttribute"),
                ("code", "Throttling.User")
            ]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &s,
            "alicloud_bgp_operator_reconciles_total",
            &[("result", "error"), ("class", "Throttled")]
        )
        .is_some_and(|v| v >= 1.0)
    );

    // 4. Wrong credentials in a Secret: Stalled, lastError without the secret, counted by
    // reason.
    let leaked = "WrongSecretValue-MustNotLeak-4711";
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "bad-creds"},
        "stringData": {"accessKeyId": DEMO_ACCESS_KEY_ID, "accessKeySecret": leaked},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(op.client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    op.create(
        "peer-b",
        json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": "10.15.0.3",
               "credentialsSecretRef": {"name": "bad-creds"}}),
    )
    .await;
    let stalled = op
        .wait("peer-b", "Stalled (CredentialsError) with lastError", |o| {
            condition(o, "Stalled")
                .is_some_and(|c| c.status == "True" && c.reason == "CredentialsError")
                && o.status.as_ref().is_some_and(|s| s.last_error.is_some())
        })
        .await;
    let text = serde_json::to_string(&stalled).expect("json");
    assert!(
        !text.contains(leaked),
        "the secret leaked into the object: {text}"
    );
    assert!(
        !text.to_ascii_lowercase().contains("string to sign"),
        "the string-to-sign leaked: {text}"
    );
    let err = stalled
        .status
        .as_ref()
        .and_then(|s| s.last_error.clone())
        .expect("lastError");
    assert!(!err.code.is_empty() && !err.action.is_empty(), "{err:?}");
    let s = scraper
        .until(
            "alicloud_bgp_operator_bgppeers_not_ready",
            &[("reason", "CredentialsError")],
            |v| v == 1.0,
        )
        .await;
    assert!(
        value(
            &s,
            "alicloud_bgp_operator_reconciles_total",
            &[("result", "error"), ("class", "Credentials")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(
        value(
            &s,
            "alicloud_bgp_operator_bgppeers_longest_not_ready_seconds",
            &[]
        )
        .is_some()
    );

    // 5. Delete: time-to-delete counted once.
    op.delete("peer-a").await;
    op.wait_gone("peer-a").await;
    scraper
        .until(
            "alicloud_bgp_operator_time_to_delete_seconds_count",
            &[KIND],
            |v| v == 1.0,
        )
        .await;
    scraper.scrape().await;

    // 6. The dashboard and the alert rules name only metrics this /metrics exported (the
    // process's own too: its memory panel).
    let seen = scraper.seen.lock().expect("lock").clone();
    // The operator's own names and the standard `process_*` ones it exports beside them.
    let re = regex::Regex::new(r"\b(?:alicloud_bgp_operator|process)_[a-z_]+").expect("re");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "charts/alicloud-bgp-operator/dashboards/alicloud-bgp-operator.json",
        "charts/alicloud-bgp-operator/templates/prometheusrule.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).expect("dashboard JSON");
        }
        let names: BTreeSet<&str> = re.find_iter(&text).map(|m| m.as_str()).collect();
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            assert!(
                seen.contains(name),
                "{file} queries {name}, which /metrics did not export; exported: {seen:?}"
            );
        }
    }
}
