//! The shipped packaging against the real control plane:
//! * `helm install` of `charts/alicloud-bgp-operator`, then its ServiceAccount's RBAC proven
//!   with `kubectl auth can-i` (every call the controller makes: yes; anything more: no), for
//!   the cluster-wide and the single-namespace install (no secrets verb at cluster scope; Secret
//!   `get` only in namespaces that opted in);
//! * the controller running in-process as that ServiceAccount (impersonation) reconciles the
//!   samples in `deploy/samples` to Ready through the emulator, publishes events, removes its
//!   finalizer, and takes the leader Lease;
//! * `deploy/manifests` passes a server-side dry run under the `restricted` Pod Security level;
//! * every environment variable the chart sets is one the binary reads and parses.
//!
//! No controllers run in this control plane: Deployments make no pods, and nothing waits for
//! them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use alicloud_bgp_operator::api::{BgpPeer, FINALIZER, IpVersion};
use alicloud_bgp_operator::controller::{WatchScope, check_crd};
use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::ops::leader::{self, LeaderConfig};

use common::controlplane;
use common::operator::{Operator, PATIENCE, test_controller_config, test_emulator_config};
use common::{client_with_crds, namespace, wait_for};

const CHART: &str = "charts/alicloud-bgp-operator";
const MANIFEST: &str = "deploy/manifests/alicloud-bgp-operator.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A chart release under test: its name, namespace and the names the chart derives.
struct Release {
    name: String,
    ns: String,
    /// ServiceAccount, (Cluster)Role and Lease name: `<release>-alicloud-bgp-operator`.
    fullname: String,
    /// Keeps helm's config/cache/data dirs for the test's lifetime.
    helm_home: tempfile::TempDir,
}

impl Release {
    fn new(ns: &str) -> Self {
        let name = format!("abo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Release {
            fullname: format!("{name}-alicloud-bgp-operator"),
            name,
            ns: ns.to_owned(),
            helm_home: tempfile::tempdir().expect("helm home"),
        }
    }

    /// The ServiceAccount's user name.
    fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.ns, self.fullname)
    }

    /// The groups the apiserver gives this ServiceAccount.
    fn groups(&self) -> [String; 2] {
        [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.ns),
        ]
    }

    /// A kube client that is this ServiceAccount (RBAC applies).
    async fn client(&self) -> kube::Client {
        let groups = self.groups();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        controlplane::shared()
            .client_as(&self.user(), &groups)
            .await
    }

    fn helm(&self) -> Command {
        let cp = controlplane::shared();
        let helm = cp.helm_path().unwrap_or_else(|| {
            panic!("helm is not built: run hack/build-tools.sh (or set ABO_TOOLS_BIN)")
        });
        let mut c = Command::new(helm);
        let home = self.helm_home.path();
        c.current_dir(repo())
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path());
        c
    }

    /// `helm install --skip-crds` (the tests install the CRD from the Rust types) with
    /// `--set` values; returns helm's stderr (warnings).
    fn install(&self, sets: &[&str]) -> String {
        let mut c = self.helm();
        c.args(["install", &self.name, CHART, "--namespace", &self.ns])
            .arg("--skip-crds");
        for s in sets {
            c.args(["--set", s]);
        }
        let out = run(c, "helm install");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn uninstall(&self) {
        let mut c = self.helm();
        c.args(["uninstall", &self.name, "--namespace", &self.ns, "--wait"]);
        run(c, "helm uninstall");
    }

    /// `kubectl auth can-i` as this ServiceAccount.
    fn can_i(&self, check: &Check) -> bool {
        let mut c = controlplane::shared().kubectl();
        c.args(["auth", "can-i", check.verb, &check.resource])
            .arg(format!("--as={}", self.user()));
        for g in self.groups() {
            c.arg(format!("--as-group={g}"));
        }
        if let Some(sub) = check.subresource {
            c.arg(format!("--subresource={sub}"));
        }
        match &check.ns {
            Some(ns) => c.args(["--namespace", ns]),
            None => c.arg("--all-namespaces"),
        };
        let out = c.output().expect("run kubectl auth can-i");
        let answer = String::from_utf8_lossy(&out.stdout);
        match (out.status.code(), answer.lines().next().map(str::trim)) {
            (Some(0), Some("yes")) => true,
            (Some(1), Some("no")) => false,
            _ => panic!(
                "kubectl auth can-i {check}: unexpected answer {answer:?} (exit {:?}); stderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Asserts every check is allowed, or every one denied; reports all mismatches at once.
    fn assert_can(&self, allowed: bool, checks: &[Check]) {
        let wrong: Vec<String> = checks
            .iter()
            .filter(|c| self.can_i(c) != allowed)
            .map(ToString::to_string)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} should {}be allowed: {wrong:#?}",
            self.user(),
            if allowed { "" } else { "NOT " }
        );
    }
}

/// One `kubectl auth can-i` question: a verb on a resource (`TYPE` or `TYPE/NAME`), maybe a
/// subresource, in a namespace or (None) across all namespaces / cluster-scoped.
struct Check {
    verb: &'static str,
    resource: String,
    subresource: Option<&'static str>,
    ns: Option<String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, " (subresource {sub})")?;
        }
        match &self.ns {
            Some(ns) => write!(f, " in {ns}"),
            None => write!(f, " in all namespaces"),
        }
    }
}

/// `verb resource` in `ns` (None: all namespaces or cluster-scoped).
fn can(verb: &'static str, resource: impl Into<String>, ns: Option<&str>) -> Check {
    Check {
        verb,
        resource: resource.into(),
        subresource: None,
        ns: ns.map(str::to_owned),
    }
}

/// `verb resource/subresource` in `ns`.
fn can_sub(verb: &'static str, resource: &str, subresource: &'static str, ns: &str) -> Check {
    Check {
        subresource: Some(subresource),
        ..can(verb, resource, Some(ns))
    }
}

fn run(mut c: Command, what: &str) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Creates (or updates) a namespace labelled to warn on anything below the `restricted`
/// Pod Security level, so the apiserver reports violating pod templates.
async fn restricted_namespace(client: &kube::Client, name: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }},
    });
    nss.patch(
        name,
        &PatchParams::apply("abo-chart-tests").force(),
        &Patch::Apply(&ns),
    )
    .await
    .expect("apply namespace");
}

async fn release_namespace(client: &kube::Client, test: &str) -> String {
    let ns = namespace(client, test).await;
    restricted_namespace(client, &ns).await;
    ns
}

/// The samples of deploy/samples, as shipped.
fn sample(file: &str) -> BgpPeer {
    let path = repo().join("deploy/samples").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Secret the IPv6 sample names in spec.credentialsSecretRef, with the emulator's key.
async fn create_sample_secret(op: &Operator, name: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"accessKeyId": DEMO_ACCESS_KEY_ID, "accessKeySecret": DEMO_ACCESS_KEY_SECRET},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(op.client.clone(), &op.ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create credentials secret");
}

/// Creates both samples (with the Secret the IPv6 one references) in the operator's namespace
/// and waits until both are Ready; returns them.
async fn samples_reach_ready(op: &Operator) -> Vec<BgpPeer> {
    let v4 = sample("bgppeer.yaml");
    let v6 = sample("bgppeer-ipv6-bfd.yaml");
    let secret = v6
        .spec
        .credentials_secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .expect("the IPv6 sample uses per-object credentials");
    create_sample_secret(op, &secret).await;
    let mut ready = Vec::new();
    for obj in [v4, v6] {
        op.api()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create sample");
        ready.push(obj.name_any());
    }
    let mut out = Vec::new();
    for name in ready {
        let obj = op.wait_ready(&name).await;
        assert!(
            obj.finalizers().contains(&FINALIZER.to_owned()),
            "{name}: finalizer added by the ServiceAccount"
        );
        out.push(obj);
    }
    out
}

/// Waits for an events.k8s.io Event of the operator about `name` with `reason`.
async fn wait_event(op: &Operator, name: &str, reason: &str) {
    let events: Api<Event> = Api::namespaced(op.client.clone(), &op.ns);
    wait_for(&format!("event {reason} for {name}"), PATIENCE, || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reporting_controller.as_deref() == Some("alicloud-bgp-operator")
                        && e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                })
                .then_some(())
        }
    })
    .await;
}

/// Deletes the IPv4 sample (deletionPolicy Delete) and waits until the finalizer is gone and
/// the cloud peer deleted.
async fn delete_sample(op: &Operator, obj: &BgpPeer) {
    let name = obj.name_any();
    assert_eq!(op.cloud_peers_of(obj).len(), 1, "{:?}", op.emu.peers());
    op.delete(&name).await;
    op.wait_gone(&name).await;
    assert!(
        op.cloud_peers_of(obj).is_empty(),
        "the cloud peer is deleted with the object: {:?}",
        op.emu.peers()
    );
}

/// Takes and releases the release's leader Lease as the ServiceAccount.
async fn leader_lease_as(rel: &Release, admin: &kube::Client) {
    let client = rel.client().await;
    let cfg = LeaderConfig {
        lease_name: rel.fullname.clone(),
        namespace: rel.ns.clone(),
        identity: "chart-test".to_owned(),
        duration: Duration::from_secs(15),
        grace: Duration::from_secs(2),
    };
    let shutdown = CancellationToken::new();
    let leadership = tokio::time::timeout(PATIENCE, leader::acquire(client, &cfg, &shutdown))
        .await
        .expect("leadership within the patience")
        .expect("lease manager")
        .expect("became the leader");
    let lease = Api::<Lease>::namespaced(admin.clone(), &rel.ns)
        .get(&rel.fullname)
        .await
        .expect("the Lease exists");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("chart-test")
    );
    leadership.release().await;
    // Releasing is a patch too: the holder is cleared so a standby takes over at once.
    let lease = Api::<Lease>::namespaced(admin.clone(), &rel.ns)
        .get(&rel.fullname)
        .await
        .expect("the Lease exists");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        None,
        "the ServiceAccount released the Lease"
    );
}

const PEERS: &str = "bgppeers.vpc.alicloud.dev";
const EVENTS: &str = "events.events.k8s.io";
const LEASES: &str = "leases.coordination.k8s.io";
const CRDS: &str = "customresourcedefinitions.apiextensions.k8s.io";
const IDENTITIES: &str = "cloudidentities.vpc.alicloud.dev";
const GROUPS: &str = "bgpgroups.vpc.alicloud.dev";
const NETWORKS: &str = "bgpnetworks.vpc.alicloud.dev";

/// The verbs the controller needs on namespaced objects in `ns`.
fn needed_in(ns: &str) -> Vec<Check> {
    let n = Some(ns);
    vec![
        can("get", PEERS, n),
        can("list", PEERS, n),
        can("watch", PEERS, n),
        can("patch", PEERS, n),
        can_sub("patch", PEERS, "status", ns),
        can("get", GROUPS, n),
        can("list", GROUPS, n),
        can("watch", GROUPS, n),
        can("patch", GROUPS, n),
        can_sub("patch", GROUPS, "status", ns),
        can("get", NETWORKS, n),
        can("list", NETWORKS, n),
        can("watch", NETWORKS, n),
        can("patch", NETWORKS, n),
        can_sub("patch", NETWORKS, "status", ns),
        can("get", IDENTITIES, n),
        can("list", IDENTITIES, n),
        can("watch", IDENTITIES, n),
        can("create", EVENTS, n),
        can("patch", EVENTS, n),
    ]
}

/// Reading credentials Secrets (by name) in `ns`: only where the namespace opted in.
fn secret_read_in(ns: &str) -> Vec<Check> {
    vec![can("get", "secrets", Some(ns))]
}

/// The controller's watches across all namespaces (cluster-wide install only).
fn needed_everywhere() -> Vec<Check> {
    vec![
        can("list", PEERS, None),
        can("watch", PEERS, None),
        can("list", GROUPS, None),
        can("watch", GROUPS, None),
        can("list", NETWORKS, None),
        can("watch", NETWORKS, None),
        can("list", IDENTITIES, None),
        can("watch", IDENTITIES, None),
    ]
}

/// What the controller must never be able to do in `ns`.
fn forbidden_in(ns: &str) -> Vec<Check> {
    let n = Some(ns);
    vec![
        can("create", PEERS, n),
        can("update", PEERS, n),
        can("delete", PEERS, n),
        can("deletecollection", PEERS, n),
        can_sub("update", PEERS, "status", ns),
        can("create", GROUPS, n),
        can("update", GROUPS, n),
        can("delete", GROUPS, n),
        can_sub("update", GROUPS, "status", ns),
        can_sub("update", GROUPS, "finalizers", ns),
        can("create", NETWORKS, n),
        can("update", NETWORKS, n),
        can("delete", NETWORKS, n),
        can_sub("update", NETWORKS, "status", ns),
        can_sub("update", NETWORKS, "finalizers", ns),
        can("list", "secrets", n),
        can("watch", "secrets", n),
        can("create", "secrets", n),
        can("update", "secrets", n),
        can("patch", "secrets", n),
        can("delete", "secrets", n),
        can("get", "configmaps", n),
        can("list", "pods", n),
        can("create", "pods", n),
        can_sub("create", "pods", "exec", ns),
        can("create", "events", n),
        can("delete", EVENTS, n),
        can_sub("create", "serviceaccounts", "token", ns),
        can("create", "rolebindings.rbac.authorization.k8s.io", n),
        can("get", LEASES, n),
        can("create", LEASES, n),
    ]
}

/// The leader-election rules of the release: (allowed, denied).
fn lease_checks(rel: &Release) -> (Vec<Check>, Vec<Check>) {
    let n = Some(rel.ns.as_str());
    let ours = format!("{LEASES}/{}", rel.fullname);
    let theirs = format!("{LEASES}/someone-else");
    let allowed = vec![
        can("create", LEASES, n),
        can("get", ours.clone(), n),
        can("patch", ours.clone(), n),
        can("update", ours.clone(), n),
    ];
    let denied = vec![
        can("delete", ours, n),
        can("get", theirs.clone(), n),
        can("update", theirs, n),
        can("list", LEASES, n),
        can("create", LEASES, Some("default")),
    ];
    (allowed, denied)
}

/// Cluster-scoped things no install may grant.
fn forbidden_cluster_wide() -> Vec<Check> {
    vec![
        can("get", CRDS, None),
        can("create", CRDS, None),
        can("update", CRDS, None),
        can("patch", CRDS, None),
        can("delete", CRDS, None),
        can("list", "pods", None),
        can("list", "namespaces", None),
        can("list", "nodes", None),
        can(
            "create",
            "clusterrolebindings.rbac.authorization.k8s.io",
            None,
        ),
        can("impersonate", "users", None),
        can("delete", PEERS, None),
        // No secrets verb at cluster scope, and no TokenRequest anywhere by default.
        can("get", "secrets", None),
        can("list", "secrets", None),
        can("watch", "secrets", None),
        Check {
            subresource: Some("token"),
            ..can("create", "serviceaccounts", None)
        },
        can("create", IDENTITIES, None),
        can("patch", IDENTITIES, None),
    ]
}

/// Asserts the release's RBAC in every direction that holds for both install modes.
fn assert_lease_and_cluster_rules(rel: &Release) {
    let (allowed, denied) = lease_checks(rel);
    rel.assert_can(true, &allowed);
    rel.assert_can(false, &denied);
    rel.assert_can(false, &forbidden_cluster_wide());
}

fn assert_no_pod_security_warnings(stderr: &str, what: &str) {
    assert!(
        !stderr.contains("would violate PodSecurity"),
        "{what}: the pod template violates the restricted Pod Security level:\n{stderr}"
    );
}

#[tokio::test]
async fn cluster_wide_install_grants_exactly_what_the_controller_needs() {
    let admin = client_with_crds().await;
    let rel = Release::new(&release_namespace(&admin, "chart-release").await);
    // The controller, as the chart's ServiceAccount, in a namespace other than the release's;
    // that namespace opts in to Secret reads (the IPv6 sample names a Secret).
    let mut op = Operator::new_with_client(
        "chart-cluster",
        rel.client().await,
        test_emulator_config(),
        test_controller_config(),
    )
    .await;
    assert_ne!(op.ns, rel.ns);
    let warnings = rel.install(&[&format!("tenancy.secretNamespaces={{{}}}", op.ns)]);
    assert_no_pod_security_warnings(&warnings, "helm install");

    // What the apiserver stored is the chart's default shape.
    let deploy = Api::<Deployment>::namespaced(admin.clone(), &rel.ns)
        .get(&rel.fullname)
        .await
        .expect("the Deployment exists");
    let spec = deploy.spec.expect("deployment spec");
    assert_eq!(spec.replicas, Some(2), "two replicas by default");
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(rel.fullname.as_str())
    );
    let env: BTreeMap<String, Option<String>> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert_eq!(env.get("ABO_LEADER_ELECT"), Some(&Some("true".to_owned())));
    assert_eq!(env.get("ABO_LEASE_NAME"), Some(&Some(rel.fullname.clone())));
    assert!(!env.contains_key("ABO_WATCH_NAMESPACE"), "all namespaces");

    rel.assert_can(true, &needed_in(&op.ns));
    rel.assert_can(true, &secret_read_in(&op.ns));
    rel.assert_can(true, &needed_in(&rel.ns));
    rel.assert_can(false, &secret_read_in(&rel.ns));
    rel.assert_can(true, &needed_everywhere());
    rel.assert_can(false, &forbidden_in(&op.ns));
    assert_lease_and_cluster_rules(&rel);

    // The startup check of `run` (list BgpPeers everywhere) passes as the ServiceAccount.
    check_crd(&rel.client().await, &WatchScope::default())
        .await
        .expect("the ServiceAccount may list BgpPeers in all namespaces");

    op.start_controller();
    let ready = samples_reach_ready(&op).await;
    for obj in &ready {
        wait_event(&op, &obj.name_any(), "Created").await;
    }
    let v4 = ready
        .iter()
        .find(|o| o.spec.ip_version == IpVersion::IPv4)
        .expect("the IPv4 sample");
    delete_sample(&op, v4).await;
    leader_lease_as(&rel, &admin).await;
    op.stop_controller().await;

    // Uninstalling removes the grants (they belonged to the release).
    rel.uninstall();
    rel.assert_can(
        false,
        &[
            can("list", PEERS, None),
            can("get", "secrets", Some(&op.ns)),
        ],
    );
}

#[tokio::test]
async fn single_namespace_install_grants_nothing_cluster_wide() {
    let admin = client_with_crds().await;
    let rel = Release::new(&release_namespace(&admin, "chart-ns-release").await);
    let mut op = Operator::new_with_client(
        "chart-ns",
        rel.client().await,
        test_emulator_config(),
        test_controller_config(),
    )
    .await;
    let warnings = rel.install(&[&format!("watchNamespace={}", op.ns)]);
    assert_no_pod_security_warnings(&warnings, "helm install");

    rel.assert_can(true, &needed_in(&op.ns));
    rel.assert_can(true, &secret_read_in(&op.ns));
    let other = namespace(&admin, "chart-ns-other").await;
    let mut nowhere_else = needed_in(&other);
    nowhere_else.extend(secret_read_in(&other));
    nowhere_else.extend(needed_in(&rel.ns));
    nowhere_else.extend(needed_everywhere());
    rel.assert_can(false, &nowhere_else);
    rel.assert_can(false, &forbidden_in(&op.ns));
    assert_lease_and_cluster_rules(&rel);

    let scope = WatchScope {
        namespace: Some(op.ns.clone()),
        label_selector: None,
    };
    check_crd(&rel.client().await, &scope)
        .await
        .expect("the ServiceAccount may list BgpPeers in the watched namespace");
    assert!(
        check_crd(&rel.client().await, &WatchScope::default())
            .await
            .is_err(),
        "but not in all namespaces"
    );

    op.start_controller();
    let ready = samples_reach_ready(&op).await;
    for obj in &ready {
        wait_event(&op, &obj.name_any(), "Created").await;
    }
    leader_lease_as(&rel, &admin).await;
    op.stop_controller().await;
    rel.uninstall();
}

#[tokio::test]
async fn rendered_manifests_pass_a_server_side_dry_run_under_restricted_pod_security() {
    let admin = client_with_crds().await;
    let text = std::fs::read_to_string(repo().join(MANIFEST)).expect("rendered manifests");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("rendered manifests parse as YAML");
    let ns = docs
        .iter()
        .find(|d| d["kind"] == "Namespace")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("the manifests create their namespace")
        .to_owned();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&kind), "{MANIFEST} has a {kind}: {kinds:?}");
    }
    // A dry run of namespaced objects needs their namespace to exist.
    restricted_namespace(&admin, &ns).await;
    let mut c = controlplane::shared().kubectl();
    c.current_dir(repo()).args([
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=abo-chart-tests",
        "--dry-run=server",
        "-f",
        MANIFEST,
    ]);
    let out = run(c, "kubectl apply --dry-run=server");
    assert_no_pod_security_warnings(&String::from_utf8_lossy(&out.stderr), MANIFEST);
    let applied = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        applied.matches("(server dry run)").count(),
        docs.len(),
        "every object was accepted: {applied}"
    );
}

/// `helm template` with every option set, returning the operator container's literal env.
fn templated_env(sets: &[&str]) -> BTreeMap<String, String> {
    let rel = Release::new("abo-system");
    let mut c = rel.helm();
    c.args(["template", "t", CHART, "--namespace", "abo-system"])
        .args(["--show-only", "templates/deployment.yaml"]);
    for s in sets {
        c.args(["--set", s]);
    }
    let out = run(c, "helm template");
    let doc: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).expect("deployment YAML");
    doc["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env list")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Runs `alicloud-bgp-operator run` with exactly `env` (and no cluster): returns stderr.
fn run_binary_with(env: &BTreeMap<String, String>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_alicloud-bgp-operator"))
        .arg("run")
        .env_clear()
        .envs(env)
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .env("HOME", dir.path())
        .env("ABO_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .expect("run the operator binary");
    assert!(!out.status.success(), "without a cluster `run` must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_malloc_arena_count_is_glibcs_unless_set() {
    assert!(!templated_env(&[]).contains_key("MALLOC_ARENA_MAX"));
    assert_eq!(
        templated_env(&["mallocArenaMax=2"])
            .get("MALLOC_ARENA_MAX")
            .map(String::as_str),
        Some("2")
    );
}

#[test]
fn every_env_var_the_chart_sets_is_read_and_parsed_by_the_binary() {
    let env = templated_env(&[
        "cloud.endpoint=http://127.0.0.1:9",
        "cloud.signatureVersion=v1",
        "cloud.qps=2.5",
        "cloud.burst=3",
        "cloud.operationQps=CreateBgpPeer=10",
        "cloud.quotaModel=per-operation",
        "cloud.quotaScope=region",
        "controller.resyncPeriod=90",
        "controller.pollInterval=2s",
        "controller.concurrency=4",
        "controller.shutdownTimeout=1h",
        "watchNamespace=team-a",
        "labelSelector=shard=a",
        "logging.format=text",
        "logging.level=debug",
        "leaderElection.leaseDuration=20s",
        "credentials.stsEndpoint=http://127.0.0.1:9",
        "credentials.rrsa.enabled=true",
        "credentials.rrsa.projectedToken.enabled=true",
        "credentials.rrsa.roleArn=acs:ram::1234567890:role/abo",
        "credentials.rrsa.oidcProviderArn=acs:ram::1234567890:oidc-provider/ack-rrsa-c1",
        "credentials.rrsa.sessionName=abo",
    ]);
    // Every ABO_* variable is one `run` documents (so none is silently ignored).
    let help = Command::new(env!("CARGO_BIN_EXE_alicloud-bgp-operator"))
        .args(["run", "--help"])
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for name in env.keys().filter(|k| k.starts_with("ABO_")) {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "the chart sets {name}, which `run` does not read"
        );
    }
    for name in [
        "ABO_VPC_ENDPOINT",
        "ABO_WATCH_NAMESPACE",
        "ABO_LABEL_SELECTOR",
        "ABO_CLOUD_QPS",
        "ABO_CLOUD_OPERATION_QPS",
        "ABO_CLOUD_QUOTA_SCOPE",
    ] {
        assert!(env.contains_key(name), "{name} is set: {env:?}");
    }
    assert_eq!(
        env.get("ALIBABA_CLOUD_OIDC_TOKEN_FILE").map(String::as_str),
        Some("/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token")
    );

    // With the chart's values the binary gets past argument parsing to connecting to
    // Kubernetes (there is none here).
    let stderr = run_binary_with(&env);
    assert!(
        stderr.contains("connecting to Kubernetes"),
        "the chart's environment must parse: {stderr}"
    );
    // The check can fail: a value the binary refuses stops it at parsing.
    let mut bad = env.clone();
    bad.insert("ABO_RESYNC_PERIOD".to_owned(), "10x".to_owned());
    let stderr = run_binary_with(&bad);
    assert!(
        stderr.contains("invalid value") && !stderr.contains("connecting to Kubernetes"),
        "a bad duration is refused at parsing: {stderr}"
    );
}

#[test]
fn dockerfile_runs_as_the_charts_user_and_builds_from_what_its_context_holds() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    let values = std::fs::read_to_string(repo().join(CHART).join("values.yaml")).expect("values");
    let values: serde_json::Value = serde_saphyr::from_str(&values).expect("values.yaml");
    let uid = values["podSecurityContext"]["runAsUser"]
        .as_u64()
        .expect("runAsUser");
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("USER {uid}:{uid}")),
        "the image's USER is the chart's runAsUser {uid}"
    );
    assert!(
        dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/alicloud-bgp-operator\"]"),
        "the entrypoint is the binary (the chart passes `run` as args)"
    );
    // The build context is Cargo.toml, Cargo.lock, .cargo/config.toml and src/ only: cargo
    // must resolve the package from exactly those (no build script or target elsewhere), and
    // the image must be built with the allocator options of `.cargo/config.toml`.
    let ignore = std::fs::read_to_string(repo().join("deploy/Dockerfile.dockerignore"))
        .expect("Dockerfile.dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "!.cargo/config.toml")
            && dockerfile
                .lines()
                .any(|l| l.trim() == "COPY .cargo ./.cargo"),
        "the image build sees .cargo/config.toml (the allocator's compiled-in options)"
    );
    let ctx = tempfile::tempdir().expect("tempdir");
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(f), ctx.path().join(f)).expect("copy manifest");
    }
    std::fs::create_dir_all(ctx.path().join(".cargo")).expect("mkdir .cargo");
    std::fs::copy(
        repo().join(".cargo/config.toml"),
        ctx.path().join(".cargo/config.toml"),
    )
    .expect("copy .cargo/config.toml");
    copy_dir(&repo().join("src"), &ctx.path().join("src"));
    let out = Command::new(env!("CARGO"))
        .current_dir(ctx.path())
        .args([
            "metadata",
            "--format-version=1",
            "--no-deps",
            "--locked",
            "--offline",
        ])
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo cannot load the package from the Docker build context: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let targets = &meta["packages"][0]["targets"];
    assert!(
        targets
            .as_array()
            .expect("targets")
            .iter()
            .all(|t| t["kind"] != json!(["custom-build"])),
        "a build script would need files outside the Docker build context"
    );
    assert!(
        targets
            .as_array()
            .expect("targets")
            .iter()
            .any(|t| t["name"] == "alicloud-bgp-operator" && t["kind"] == json!(["bin"])),
        "the binary the Dockerfile builds exists"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy file");
        }
    }
}
