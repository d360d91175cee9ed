//! Tenancy and least privilege (issue 17), against the real apiserver and the emulator:
//! * a default chart install reads no Secret of a namespace that did not opt in (`kubectl
//!   auth can-i` says no, the object says which RoleBinding to create), and an opted-in
//!   namespace works; creating that RoleBinding unsticks the object by the bounded re-read,
//!   whose Kubernetes API cost is measured;
//! * two namespaces with their own RRSA `CloudIdentity` (ServiceAccount tokens from the
//!   TokenRequest API, checked by the emulator's STS against the role's trusted subject)
//!   create peers in two emulator accounts;
//! * an object naming another namespace's identity or Secret, or none while the operator-wide
//!   credentials are forbidden, is refused with 0 cloud calls.
//!
//! The controller runs in-process as the chart's ServiceAccount (impersonation), cluster-wide
//! but limited to this test's objects by a label selector.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::api::identity::CloudIdentity;
use alicloud_bgp_operator::controller::credentials::{OperatorCredentials, TenancyConfig};
use alicloud_bgp_operator::controller::{self, WatchScope};
use alicloud_bgp_operator::emulator::config::{
    AccountConfig, DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_ACCOUNT_UID, OidcTrust,
};

use common::controlplane;
use common::operator::{
    GROUP, Operator, PATIENCE, REGION, condition, test_controller_config, test_emulator_config,
};
use common::{client_with_crds, namespace};

const CHART: &str = "charts/alicloud-bgp-operator";
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const SECOND_ACCOUNT: &str = "2222222222222222";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A chart release: helm install/uninstall and `kubectl auth can-i` as its ServiceAccount.
struct Release {
    name: String,
    ns: String,
    fullname: String,
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

    fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.ns, self.fullname)
    }

    fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.ns),
        ]
    }

    async fn client(&self) -> Client {
        let groups = self.groups();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        controlplane::shared()
            .client_as(&self.user(), &groups)
            .await
    }

    /// The TenancyConfig the chart gives the operator (its env), for the in-process controller.
    fn tenancy(&self) -> TenancyConfig {
        TenancyConfig {
            credentials_cluster_role: format!("{}-credentials", self.fullname),
            token_cluster_role: format!("{}-tokens", self.fullname),
            service_account: Some(format!("{}:{}", self.ns, self.fullname)),
            credentials_recheck: Duration::from_secs(2),
            ..TenancyConfig::default()
        }
    }

    fn install(&self, sets: &[String]) {
        let cp = controlplane::shared();
        let helm = cp.helm_path().expect("helm is built (hack/build-tools.sh)");
        let home = self.helm_home.path();
        let mut c = Command::new(helm);
        c.current_dir(repo())
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path())
            .args([
                "install",
                &self.name,
                CHART,
                "--namespace",
                &self.ns,
                "--skip-crds",
            ]);
        for s in sets {
            c.args(["--set", s]);
        }
        let out = c.output().expect("run helm");
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl auth can-i VERB RESOURCE [--subresource] (-n NS | --all-namespaces)`.
    fn can_i(&self, verb: &str, resource: &str, sub: Option<&str>, ns: Option<&str>) -> bool {
        let mut c = controlplane::shared().kubectl();
        c.args(["auth", "can-i", verb, resource])
            .arg(format!("--as={}", self.user()));
        for g in self.groups() {
            c.arg(format!("--as-group={g}"));
        }
        if let Some(sub) = sub {
            c.arg(format!("--subresource={sub}"));
        }
        match ns {
            Some(ns) => c.args(["--namespace", ns]),
            None => c.arg("--all-namespaces"),
        };
        let out = c.output().expect("kubectl auth can-i");
        match String::from_utf8_lossy(&out.stdout).trim() {
            "yes" => true,
            "no" => false,
            other => panic!(
                "can-i {verb} {resource}: {other:?} {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    fn assert_can(&self, expected: bool, checks: &[(&str, &str, Option<&str>, Option<&str>)]) {
        let wrong: Vec<String> = checks
            .iter()
            .filter(|(v, r, s, n)| self.can_i(v, r, *s, *n) != expected)
            .map(|c| format!("{c:?}"))
            .collect();
        assert!(
            wrong.is_empty(),
            "{} should {}be allowed: {wrong:#?}",
            self.user(),
            if expected { "" } else { "NOT " }
        );
    }
}

/// Counts the Kubernetes API requests a client makes, by "VERB path-kind".
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestLog {
    fn secrets(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .expect("log")
            .iter()
            .filter(|(k, _)| k.contains("secrets"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn reset(&self) {
        self.0.lock().expect("log").clear();
    }
}

/// A client impersonating `rel`'s ServiceAccount that records every request in `log`.
async fn counting_client(rel: &Release, log: &RequestLog) -> Client {
    let mut cfg = controlplane::shared().config().await;
    cfg.auth_info.impersonate = Some(rel.user());
    cfg.auth_info.impersonate_groups = Some(rel.groups());
    let log = log.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let path = req.uri().path();
        let kind = if path.contains("/secrets") {
            let watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
            let named = path.split("/secrets").nth(1).is_some_and(|r| r.len() > 1);
            match (req.method().as_str(), watch, named) {
                (_, true, _) => "WATCH secrets",
                ("GET", _, true) => "GET secrets",
                ("GET", _, false) => "LIST secrets",
                _ => "other secrets",
            }
        } else {
            "other"
        };
        *log.0
            .lock()
            .expect("log")
            .entry(kind.to_owned())
            .or_default() += 1;
        req
    });
    kube::client::ClientBuilder::try_from(cfg)
        .expect("client builder")
        .with_layer(&layer)
        .build()
}

/// Runs the controller of `op` cluster-wide over the objects labelled `abo-test=<label>`.
fn start_cluster_wide(op: &Operator, label: &str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let scope = WatchScope {
        namespace: None,
        label_selector: Some(format!("abo-test={label}")),
    };
    tokio::spawn(controller::run(
        op.ctx.clone(),
        scope,
        cancel.clone().cancelled_owned(),
    ));
    cancel
}

async fn create_peer(client: &Client, ns: &str, name: &str, label: &str, spec: serde_json::Value) {
    let obj: BgpPeer = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": name, "labels": {"abo-test": label}},
        "spec": spec,
    }))
    .expect("BgpPeer");
    Api::<BgpPeer>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create BgpPeer");
}

/// Creates `raw` (JSON) as-is; unknown fields are dropped by the apiserver (pruning).
async fn create_raw_peer(client: &Client, ns: &str, raw: serde_json::Value) {
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<BgpPeer>(&()),
    );
    let obj: kube::api::DynamicObject = serde_json::from_value(raw).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create raw BgpPeer");
}

async fn create_secret(client: &Client, ns: &str, name: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"accessKeyId": DEMO_ACCESS_KEY_ID, "accessKeySecret": DEMO_ACCESS_KEY_SECRET},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}

async fn create_service_account(client: &Client, ns: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name},
    }))
    .expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
}

async fn create_identity(client: &Client, ns: &str, name: &str, spec: serde_json::Value) {
    let id: CloudIdentity = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "CloudIdentity",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("CloudIdentity");
    Api::<CloudIdentity>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &id)
        .await
        .expect("create CloudIdentity");
}

fn peer_spec(ip: &str) -> serde_json::Value {
    json!({"regionId": REGION, "bgpGroupId": GROUP, "peerIpAddress": ip})
}

async fn get(client: &Client, ns: &str, name: &str) -> Option<BgpPeer> {
    Api::<BgpPeer>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// Waits until `ns/name` has condition `type_`=`status` with `reason`; returns the object.
async fn wait_condition(
    client: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> BgpPeer {
    let what = format!("{ns}/{name} {type_}={status} ({reason})");
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(o) = get(client, ns, name).await
                && condition(&o, type_).is_some_and(|c| c.status == status && c.reason == reason)
            {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    match result {
        Ok(o) => o,
        Err(_) => panic!(
            "timed out waiting for {what}; last status: {:?}",
            get(client, ns, name).await.and_then(|o| o.status)
        ),
    }
}

fn stalled_message(obj: &BgpPeer) -> String {
    condition(obj, "Stalled")
        .map(|c| c.message.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn default_install_reads_no_secret_of_a_namespace_that_did_not_opt_in() {
    let admin = client_with_crds().await;
    let rel = Release::new(&namespace(&admin, "tenancy-release").await);
    let opted_in = namespace(&admin, "tenancy-optin").await;
    let other = namespace(&admin, "tenancy-other").await;
    rel.install(&[format!("tenancy.secretNamespaces={{{opted_in}}}")]);

    // RBAC: no secrets verb at cluster scope; get (never list/watch) where opted in only; no
    // TokenRequest anywhere (no namespace uses RRSA identities).
    rel.assert_can(true, &[("get", "secrets", None, Some(&opted_in))]);
    let denied = [
        ("get", "secrets", None, None),
        ("list", "secrets", None, None),
        ("watch", "secrets", None, None),
        ("get", "secrets", None, Some(other.as_str())),
        ("get", "secrets", None, Some(rel.ns.as_str())),
        ("list", "secrets", None, Some(opted_in.as_str())),
        ("watch", "secrets", None, Some(opted_in.as_str())),
        (
            "create",
            "serviceaccounts",
            Some("token"),
            Some(opted_in.as_str()),
        ),
        (
            "create",
            "serviceaccounts",
            Some("token"),
            Some(other.as_str()),
        ),
    ];
    rel.assert_can(false, &denied);

    let log = RequestLog::default();
    let mut config = test_controller_config();
    config.tenancy = rel.tenancy();
    let op = Operator::new_with_client(
        "tenancy-secrets",
        counting_client(&rel, &log).await,
        test_emulator_config(),
        config,
    )
    .await;
    let label = op.ns.clone();
    let stop = start_cluster_wide(&op, &label);

    create_secret(&admin, &opted_in, "creds").await;
    create_secret(&admin, &other, "creds").await;
    let with_secret = |ip: &str| {
        let mut s = peer_spec(ip);
        s["credentialsSecretRef"] = json!({"name": "creds"});
        s
    };
    create_peer(&admin, &opted_in, "ok", &label, with_secret("10.71.0.1")).await;
    create_peer(&admin, &other, "refused", &label, with_secret("10.71.0.2")).await;

    wait_condition(&admin, &opted_in, "ok", "Ready", "True", "Available").await;
    let refused = wait_condition(
        &admin,
        &other,
        "refused",
        "Stalled",
        "True",
        "CredentialsError",
    )
    .await;
    let message = stalled_message(&refused);
    let binding = format!(
        "kubectl -n {other} create rolebinding {f}-credentials --clusterrole={f}-credentials \
         --serviceaccount={}:{f}",
        rel.ns,
        f = rel.fullname
    );
    assert!(
        message.contains(&binding),
        "names the RoleBinding: {message}"
    );
    assert!(
        refused
            .status
            .as_ref()
            .is_some_and(|s| s.account_id.is_none() && s.bgp_peer_id.is_none()),
        "no cloud call for the refused object: {:?}",
        refused.status
    );

    // The bounded re-read, measured: one Secret GET per stalled object per recheck (2 s
    // here), one per reconcile of a Ready object (its resync, 2 s here); never a LIST or WATCH.
    log.reset();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let secrets = log.secrets();
    eprintln!(
        "Secret requests of the controller in {window:?} (1 stalled + 1 Ready object, recheck 2 s, resync 2 s): {secrets:?}"
    );
    assert!(
        !secrets.contains_key("LIST secrets") && !secrets.contains_key("WATCH secrets"),
        "{secrets:?}"
    );
    let gets = secrets.get("GET secrets").copied().unwrap_or(0);
    assert!((4..=20).contains(&gets), "about 5 + 5 GETs: {secrets:?}");

    // Opting the namespace in exactly as the message says unsticks the object (re-read).
    let rb: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": format!("{}-credentials", rel.fullname)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-credentials", rel.fullname)},
        "subjects": [{"kind": "ServiceAccount", "name": rel.fullname, "namespace": rel.ns}],
    }))
    .expect("RoleBinding");
    Api::<RoleBinding>::namespaced(admin.clone(), &other)
        .create(&PostParams::default(), &rb)
        .await
        .expect("create RoleBinding");
    wait_condition(&admin, &other, "refused", "Ready", "True", "Available").await;
    stop.cancel();
}

/// Emulator: role A (demo account) trusts only `system:serviceaccount:<a>:bgp`, role B (a
/// second account) only `system:serviceaccount:<b>:bgp`.
fn two_account_emulator(
    a: &str,
    b: &str,
) -> alicloud_bgp_operator::emulator::config::EmulatorConfig {
    let mut cfg = test_emulator_config();
    let role_a = format!("acs:ram::{DEMO_ACCOUNT_UID}:role/team-a");
    let role_b = format!("acs:ram::{SECOND_ACCOUNT}:role/team-b");
    cfg.accounts[0].roles.push(role_a.clone());
    cfg.accounts.push(AccountConfig {
        uid: SECOND_ACCOUNT.to_owned(),
        access_keys: Vec::new(),
        roles: vec![role_b.clone()],
    });
    cfg.sts.allow_any_role = false;
    for (role, ns) in [(role_a, a), (role_b, b)] {
        cfg.sts.oidc_trust.push(OidcTrust {
            role,
            issuer: Some(ISSUER.to_owned()),
            subject: Some(format!("system:serviceaccount:{ns}:bgp")),
            audience: Some("sts.aliyuncs.com".to_owned()),
        });
    }
    cfg
}

fn rrsa(account: &str, role: &str) -> serde_json::Value {
    json!({"rrsa": {
        "roleArn": format!("acs:ram::{account}:role/{role}"),
        "oidcProviderArn": format!("acs:ram::{account}:oidc-provider/test-cluster"),
        "serviceAccountName": "bgp",
        "sessionPolicy": r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["vpc:*BgpPeer*"],"Resource":["acs:vpc:*:*:virtualborderrouter/vbr-emu00000000000000001"]}]}"#,
    }})
}

#[tokio::test]
async fn two_namespaces_with_their_own_identities_create_peers_in_two_accounts() {
    let admin = client_with_crds().await;
    let rel = Release::new(&namespace(&admin, "tenancy-rrsa-release").await);
    let a = namespace(&admin, "tenancy-team-a").await;
    let b = namespace(&admin, "tenancy-team-b").await;
    rel.install(&[format!("tenancy.tokenNamespaces={{{a},{b}}}")]);
    rel.assert_can(
        true,
        &[
            ("create", "serviceaccounts", Some("token"), Some(a.as_str())),
            ("create", "serviceaccounts", Some("token"), Some(b.as_str())),
        ],
    );
    rel.assert_can(
        false,
        &[
            ("create", "serviceaccounts", Some("token"), None),
            (
                "create",
                "serviceaccounts",
                Some("token"),
                Some(rel.ns.as_str()),
            ),
            ("get", "secrets", None, Some(a.as_str())),
            ("get", "serviceaccounts", None, Some(a.as_str())),
        ],
    );

    let mut config = test_controller_config();
    config.tenancy = TenancyConfig {
        // Nothing may fall back to the operator's own (demo) key.
        operator_credentials: OperatorCredentials::Only(Default::default()),
        ..rel.tenancy()
    };
    let op = Operator::new_with_client(
        "tenancy-rrsa",
        rel.client().await,
        two_account_emulator(&a, &b),
        config,
    )
    .await;
    let label = op.ns.clone();
    let stop = start_cluster_wide(&op, &label);

    for ns in [&a, &b] {
        create_service_account(&admin, ns, "bgp").await;
    }
    // A: its `default` identity; B: a named one (and B's `default` is absent).
    create_identity(&admin, &a, "default", rrsa(DEMO_ACCOUNT_UID, "team-a")).await;
    create_identity(&admin, &b, "team-b", rrsa(SECOND_ACCOUNT, "team-b")).await;
    create_peer(&admin, &a, "peer-a", &label, peer_spec("10.72.0.1")).await;
    let mut spec_b = peer_spec("10.72.0.2");
    spec_b["cloudIdentityRef"] = json!({"name": "team-b"});
    create_peer(&admin, &b, "peer-b", &label, spec_b).await;
    // B's identity naming A's role: STS refuses B's ServiceAccount token.
    create_identity(
        &admin,
        &b,
        "borrowed-role",
        rrsa(DEMO_ACCOUNT_UID, "team-a"),
    )
    .await;
    let mut spec_c = peer_spec("10.72.0.3");
    spec_c["cloudIdentityRef"] = json!({"name": "borrowed-role"});
    create_peer(&admin, &b, "peer-c", &label, spec_c).await;

    let pa = wait_condition(&admin, &a, "peer-a", "Ready", "True", "Available").await;
    let pb = wait_condition(&admin, &b, "peer-b", "Ready", "True", "Available").await;
    let account = |o: &BgpPeer| o.status.as_ref().and_then(|s| s.account_id.clone());
    assert_eq!(account(&pa).as_deref(), Some(DEMO_ACCOUNT_UID));
    assert_eq!(account(&pb).as_deref(), Some(SECOND_ACCOUNT));
    // Each peer was created with STS credentials (no long-term key made a write).
    let counters = op.emu.counters();
    let creators: Vec<&String> = counters
        .by_access_key
        .iter()
        .filter(|(_, k)| k.by_action.contains_key("CreateBgpPeer"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(creators.len(), 2, "{creators:?}");
    assert!(
        creators.iter().all(|id| id.starts_with("STS.")),
        "{creators:?}"
    );

    let pc = wait_condition(&admin, &b, "peer-c", "Stalled", "True", "CredentialsError").await;
    let message = stalled_message(&pc);
    assert!(
        message.contains(&format!("system:serviceaccount:{b}:bgp"))
            && message.contains("not trusted"),
        "STS refused B's token for A's role: {message}"
    );
    assert!(pc.status.as_ref().is_some_and(|s| s.account_id.is_none()));
    stop.cancel();
    for (ns, name) in [(&a, "peer-a"), (&b, "peer-b"), (&b, "peer-c")] {
        let _ = Api::<BgpPeer>::namespaced(admin.clone(), ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
}

#[tokio::test]
async fn another_namespaces_identity_or_secret_and_a_forbidden_operator_chain_are_refused_without_cloud_calls()
 {
    let admin = client_with_crds().await;
    let a = namespace(&admin, "tenancy-victim").await;
    create_secret(&admin, &a, "team-a-creds").await;
    create_identity(
        &admin,
        &a,
        "team-a",
        json!({"secretRef": {"name": "team-a-creds"}}),
    )
    .await;
    create_identity(
        &admin,
        &a,
        "default",
        json!({"secretRef": {"name": "team-a-creds"}}),
    )
    .await;

    // The controller (admin: RBAC is not what refuses here) watches namespace B only, with
    // the operator-wide chain forbidden everywhere.
    let mut config = test_controller_config();
    config.tenancy.operator_credentials = OperatorCredentials::Only(Default::default());
    let op = Operator::start_with("tenancy-intruder", test_emulator_config(), config).await;
    let b = op.ns.clone();

    let mut by_identity = peer_spec("10.73.0.1");
    by_identity["cloudIdentityRef"] = json!({"name": "team-a"});
    op.create("uses-a-identity", by_identity).await;
    let mut by_secret = peer_spec("10.73.0.2");
    by_secret["credentialsSecretRef"] = json!({"name": "team-a-creds"});
    op.create("uses-a-secret", by_secret).await;
    // A namespace field is not part of the schema: pruned, so the name resolves in B.
    let mut explicit = peer_spec("10.73.0.3");
    explicit["credentialsSecretRef"] = json!({"name": "team-a-creds", "namespace": a});
    create_raw_peer(
        &admin,
        &b,
        json!({"apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
               "metadata": {"name": "names-a-namespace"}, "spec": explicit}),
    )
    .await;
    // Nothing named, no `default` in B (A's does not count), operator chain forbidden.
    op.create("no-identity", peer_spec("10.73.0.4")).await;

    let expect = [
        (
            "uses-a-identity",
            format!("CloudIdentity {b}/team-a (spec.cloudIdentityRef) not found"),
        ),
        (
            "uses-a-secret",
            format!("Secret {b}/team-a-creds (spec.credentialsSecretRef) not found"),
        ),
        (
            "names-a-namespace",
            format!("Secret {b}/team-a-creds (spec.credentialsSecretRef) not found"),
        ),
        (
            "no-identity",
            "operator-wide credentials are forbidden for this namespace".to_owned(),
        ),
    ];
    for (name, needle) in &expect {
        let obj = op
            .wait_condition(name, "Stalled", "True", "CredentialsError")
            .await;
        let message = stalled_message(&obj);
        assert!(message.contains(needle.as_str()), "{name}: {message}");
    }
    // The CEL rule refuses both references at once.
    let mut both = peer_spec("10.73.0.5");
    both["credentialsSecretRef"] = json!({"name": "x"});
    both["cloudIdentityRef"] = json!({"name": "y"});
    let obj: BgpPeer = serde_json::from_value(json!({
        "apiVersion": "vpc.alicloud.dev/v1alpha1", "kind": "BgpPeer",
        "metadata": {"name": "both"}, "spec": both,
    }))
    .expect("BgpPeer");
    let err = op
        .api()
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("both references are refused at admission");
    assert!(
        err.to_string()
            .contains("at most one of cloudIdentityRef and credentialsSecretRef"),
        "{err}"
    );

    // Recheck passes happen (2 s resync, 30 s recheck): still no cloud call at all.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counters = op.emu.counters();
    assert_eq!(counters.total, 0, "0 cloud calls: {:?}", counters.by_action);
    for (name, _) in &expect {
        let obj = get(&admin, &b, name).await.expect("object");
        assert!(
            obj.status.as_ref().is_some_and(|s| s.account_id.is_none()),
            "{name}"
        );
        let _ = obj.name_any();
    }
}
