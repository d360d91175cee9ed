//! A real Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1) for
//! integration tests, shared by all tests of one test binary.
//!
//! `shared()` either
//! * reuses an existing cluster: `ABO_TEST_KUBECONFIG=<path>`, or `KUBECONFIG`
//!   when every `server:` in it is on loopback (so a developer's real cluster
//!   is never touched by accident); or
//! * runs `hack/build-tools.sh` (builds kube-apiserver/etcd/kubectl once into
//!   `~/.cache/alicloud-bgp-operator/tools/...`; the first cold build takes
//!   ~15-20 min on 2 cores) and `hack/controlplane.sh start <tmpdir>`.
//!   Rust statics never drop, so cleanup is done by a watchdog that
//!   controlplane.sh starts: it stops the control plane (and deletes the dir)
//!   within ~1 s after this test process exits, however it exits.
//!   Set `ABO_KEEP_CONTROLPLANE=1` to keep the dir (logs) after exit.
//!
//! No controllers run (as in envtest): namespaces stay Terminating, there is
//! no garbage collection, Deployments create no pods. Give every test its own
//! namespace and do not wait for any of that.
//!
//! The admin identity is in group `system:masters`; `client_as()` impersonates
//! another user/groups so RBAC rules can be tested.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub struct ControlPlane {
    kubeconfig: PathBuf,
    /// Directory of the control plane we started (None when reusing one).
    dir: Option<PathBuf>,
    /// Directory with kubectl/helm/etcd/kube-apiserver, if known.
    bin_dir: Option<PathBuf>,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();

/// The process-wide control plane; started on first use.
pub fn shared() -> &'static ControlPlane {
    SHARED.get_or_init(|| match ControlPlane::from_env() {
        Some(cp) => cp,
        None => ControlPlane::start().unwrap_or_else(|e| panic!("test control plane: {e}")),
    })
}

/// Path of the kubeconfig of the shared control plane.
pub fn kubeconfig_path() -> &'static Path {
    shared().kubeconfig_path()
}

/// A new admin client for the shared control plane. Create one per test
/// (a client is tied to the tokio runtime it was created on).
pub async fn client() -> kube::Client {
    shared().client().await
}

/// Installs rustls' ring crypto provider once; harmless if already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`, passes its stderr through (progress of long builds shows up),
/// returns the last non-empty stdout line.
fn run_last_line(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: failed with {} (see its output above)",
            out.status
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .ok_or_else(|| format!("{what}: printed nothing on stdout"))
}

/// The bin dir of hack/build-tools.sh if the tools are already built there.
fn built_tools_dir() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(repo_root().join("hack/build-tools.sh"))
        .arg("--print-dir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && dir.join("kubectl").exists()).then_some(dir)
}

/// True when every `server:` line of the kubeconfig points at loopback.
fn kubeconfig_is_loopback(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let servers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect();
    !servers.is_empty()
        && servers.iter().all(|s| {
            let rest = s.split_once("://").map_or(*s, |(_, r)| r);
            rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
        })
}

impl ControlPlane {
    fn from_env() -> Option<Self> {
        let bin_dir = std::env::var_os("ABO_TOOLS_BIN")
            .map(PathBuf::from)
            .or_else(built_tools_dir);
        if let Some(p) = std::env::var_os("ABO_TEST_KUBECONFIG").filter(|p| !p.is_empty()) {
            return Some(Self {
                kubeconfig: PathBuf::from(p),
                dir: None,
                bin_dir,
            });
        }
        let p = PathBuf::from(std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty())?);
        if kubeconfig_is_loopback(&p) {
            Some(Self {
                kubeconfig: p,
                dir: None,
                bin_dir,
            })
        } else {
            eprintln!(
                "test control plane: ignoring KUBECONFIG={} (not a loopback cluster); \
                 set ABO_TEST_KUBECONFIG to use it",
                p.display()
            );
            None
        }
    }

    /// Builds the tools if needed and starts a fresh control plane that stops
    /// when this process exits.
    pub fn start() -> Result<Self, String> {
        let root = repo_root();
        let bin_dir = match std::env::var_os("ABO_TOOLS_BIN") {
            Some(b) => PathBuf::from(b),
            None => {
                let mut c = Command::new("bash");
                c.arg(root.join("hack/build-tools.sh")).current_dir(&root);
                PathBuf::from(run_last_line(c, "hack/build-tools.sh")?)
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("abo-cp-{}-{nanos:x}", std::process::id()));
        let mut c = Command::new("bash");
        c.arg(root.join("hack/controlplane.sh"))
            .arg("start")
            .arg(&dir)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .env("ABO_TOOLS_BIN", &bin_dir)
            .current_dir(&root);
        if std::env::var_os("ABO_KEEP_CONTROLPLANE").is_none_or(|v| v.is_empty() || v == "0") {
            c.arg("--purge-on-exit");
        }
        let kubeconfig = PathBuf::from(run_last_line(c, "hack/controlplane.sh start")?);
        Ok(Self {
            kubeconfig,
            dir: Some(dir),
            bin_dir: Some(bin_dir),
        })
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Directory of a control plane started by this process (logs are in
    /// `etcd.log` and `apiserver.log` there).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// `kubectl` (ours if built, else the one on PATH) with `--kubeconfig` set.
    pub fn kubectl(&self) -> Command {
        let exe = self
            .bin_dir
            .as_ref()
            .map(|b| b.join("kubectl"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let mut c = Command::new(exe);
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        c
    }

    /// Path of `helm` built by hack/build-tools.sh, if known.
    pub fn helm_path(&self) -> Option<PathBuf> {
        self.bin_dir
            .as_ref()
            .map(|b| b.join("helm"))
            .filter(|p| p.exists())
    }

    /// The kube client config for the admin identity.
    pub async fn config(&self) -> kube::Config {
        install_crypto_provider();
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig.display()));
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("loading {}: {e}", self.kubeconfig.display()))
    }

    /// A new admin (`system:masters`) client.
    pub async fn client(&self) -> kube::Client {
        let cfg = self.config().await;
        kube::Client::try_from(cfg).expect("creating kube client")
    }

    /// A client that impersonates `user` with `groups` (RBAC applies to them;
    /// `system:authenticated` is added by the apiserver).
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> kube::Client {
        let mut cfg = self.config().await;
        cfg.auth_info.impersonate = Some(user.to_string());
        if !groups.is_empty() {
            cfg.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        }
        kube::Client::try_from(cfg).expect("creating impersonating kube client")
    }
}
