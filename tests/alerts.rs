//! The chart's alert rules and dashboard, checked offline: the PrometheusRule rendered by
//! `helm template` passes `promtool check rules` and the unit tests of
//! `tests/rules/alerts.test.yaml` (`promtool test rules`); the Grafana dashboard is valid
//! JSON whose every panel has a query naming an operator metric. (That each of those metrics
//! is really exported is checked against a live `/metrics` in `tests/metrics.rs`.)
//!
//! promtool and helm come from `hack/build-tools.sh` (`ABO_TOOLS_BIN`, or it is run here):
//! built or the test fails, never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ABO_TOOLS_BIN") {
        return PathBuf::from(dir);
    }
    let out = Command::new("bash")
        .arg(repo().join("hack/build-tools.sh"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run hack/build-tools.sh");
    assert!(out.status.success(), "hack/build-tools.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("bin dir").trim())
}

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// The rule groups of the chart's PrometheusRule, as a Prometheus rule file (JSON is YAML).
fn rendered_rules(bin: &Path) -> serde_json::Value {
    let mut c = Command::new(bin.join("helm"));
    c.current_dir(repo()).args([
        "template",
        "alicloud-bgp-operator",
        "charts/alicloud-bgp-operator",
        "--namespace",
        "network",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--show-only",
        "templates/prometheusrule.yaml",
    ]);
    let yaml = run(c, "helm template");
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml).expect("rendered YAML");
    assert_eq!(doc["kind"], "PrometheusRule");
    doc["spec"].clone()
}

#[test]
fn alert_rules_pass_promtool_unit_tests() {
    let bin = tools_bin();
    let promtool = bin.join("promtool");
    assert!(
        promtool.exists(),
        "{} missing: run hack/build-tools.sh",
        promtool.display()
    );
    let spec = rendered_rules(&bin);
    let alerts: Vec<&str> = spec["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    // Every alert has unit tests that see it fire.
    let tests = std::fs::read_to_string(repo().join("tests/rules/alerts.test.yaml"))
        .expect("tests/rules/alerts.test.yaml");
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no promtool test"
        );
    }
    assert_eq!(alerts.len(), 6, "{alerts:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string_pretty(&spec).expect("json"),
    )
    .expect("write rules");
    std::fs::write(dir.path().join("alerts.test.yaml"), &tests).expect("write tests");
    let mut check = Command::new(&promtool);
    check
        .current_dir(dir.path())
        .args(["check", "rules", "rules.yaml"]);
    run(check, "promtool check rules");
    let mut test = Command::new(&promtool);
    test.current_dir(dir.path())
        .args(["test", "rules", "alerts.test.yaml"]);
    let out = run(test, "promtool test rules");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The metric names a PromQL expression uses (operator metrics only).
pub fn metric_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"alicloud_bgp_operator_[a-z_]+").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

#[test]
fn dashboard_is_valid_json_and_every_panel_queries_operator_metrics() {
    let path = repo().join("charts/alicloud-bgp-operator/dashboards/alicloud-bgp-operator.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    assert_eq!(dash["uid"], "alicloud-bgp-operator");
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = std::collections::HashSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_i64().expect("id")), "duplicate id");
        assert!(p["gridPos"]["w"].as_i64().is_some(), "{}", p["title"]);
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(!metric_names(expr).is_empty(), "{}: {expr}", p["title"]);
            assert_eq!(t["datasource"]["uid"], "${datasource}");
        }
    }
    // What the issue asks the dashboard to show.
    let all: String = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for needle in [
        "_bgppeers{",
        "_bgp_sessions",
        "_cloud_api_calls_total",
        "_rate_limiter_wait",
        "_reconcile_duration_seconds_bucket",
        "_time_to_ready_seconds_bucket",
        // The operator's own memory, against the chart's limit.
        "process_resident_memory_bytes",
        "_allocator_allocated_bytes",
    ] {
        assert!(all.contains(needle), "no panel queries {needle}");
    }
}
