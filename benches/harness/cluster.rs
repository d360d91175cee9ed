//! The Kubernetes side: a control plane of our own (`hack/controlplane.sh`) or an existing
//! kubeconfig, admin clients, the CRD, namespaces.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, CustomResourceExt};

use alicloud_bgp_operator::api::BgpPeer;
use alicloud_bgp_operator::api::identity::CloudIdentity;

/// The repository root (where `hack/` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A control plane started by us in `dir` (stopped on drop).
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    running: bool,
}

fn script() -> PathBuf {
    repo_root().join("hack/controlplane.sh")
}

/// Runs a command and returns its last non-empty stdout line.
fn last_line(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed with {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .with_context(|| format!("{what} printed nothing"))
}

impl ControlPlane {
    /// Starts etcd + kube-apiserver in `dir`; a watchdog stops them once this process is gone.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut c = Command::new("bash");
        c.arg(script())
            .arg("start")
            .arg(dir)
            .arg("--watch-pid")
            .arg(std::process::id().to_string());
        let kubeconfig = PathBuf::from(last_line(c, "hack/controlplane.sh start")?);
        Ok(Self {
            dir: dir.to_path_buf(),
            kubeconfig,
            running: true,
        })
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory (logs: `apiserver.log`, `etcd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops kube-apiserver and starts it again with the same flags (etcd keeps running);
    /// returns once `/readyz` answers.
    pub fn restart_apiserver(&self) -> anyhow::Result<Duration> {
        restart_apiserver(&self.dir)
    }

    /// Stops the control plane (the directory and its logs stay).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `hack/controlplane.sh restart-apiserver <dir>`; returns how long the apiserver took to be
/// ready again.
pub fn restart_apiserver(dir: &Path) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let status = Command::new("bash")
        .arg(script())
        .arg("restart-apiserver")
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .context("running hack/controlplane.sh restart-apiserver")?;
    if !status.success() {
        bail!("hack/controlplane.sh restart-apiserver failed with {status}");
    }
    Ok(started.elapsed())
}

/// An admin client for `kubeconfig`.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    alicloud_bgp_operator::install_crypto_provider();
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    // During an apiserver restart connecting must fail fast (callers retry).
    cfg.connect_timeout = Some(Duration::from_secs(5));
    Ok(Client::try_from(cfg)?)
}

/// Server-side applies the CloudIdentity and BgpPeer CRDs and waits until both are served.
pub async fn install_crd(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // CloudIdentity first: the controller reads and watches them (issue 17); without the CRD
    // every object without its own credentials fails its reconcile with a 404.
    let identities = CloudIdentity::crd();
    crds.patch(
        CloudIdentity::crd_name(),
        &PatchParams::apply("abo-bench").force(),
        &Patch::Apply(&identities),
    )
    .await
    .context("applying the CloudIdentity CRD")?;
    let ids: Api<CloudIdentity> = Api::all(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ids.list(&Default::default()).await.is_err() {
        if std::time::Instant::now() > deadline {
            bail!("CloudIdentities not served 60 s after applying the CRD");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let crd = BgpPeer::crd();
    let name = crd.metadata.name.clone().context("CRD has a name")?;
    crds.patch(
        &name,
        &PatchParams::apply("abo-bench").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("applying the CRD")?;
    let peers: Api<BgpPeer> = Api::all(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if peers.list(&Default::default()).await.is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("BgpPeers not served 60 s after applying the CRD");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates a namespace `<prefix>-<random>` and returns its name.
pub async fn create_namespace(client: &Client, prefix: &str) -> anyhow::Result<String> {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let name = format!("{prefix}-{suffix}");
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("creating the namespace")?;
    Ok(name)
}
