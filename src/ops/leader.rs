//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager): only the leader
//! reconciles; a standby takes over once the leader's lease expires; a graceful stop releases
//! the lease so the standby takes over at once, and a stop that had to abort reconciles still
//! in flight abandons it (no release: the standby waits for the lease to expire).

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Name of the Lease object.
    pub lease_name: String,
    /// Namespace of the Lease object.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Lease duration: how long a standby waits after the leader stopped renewing.
    pub duration: Duration,
    /// Extra time granted for clock skew and renewal latency.
    pub grace: Duration,
}

/// Held leadership.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Campaigns until this replica leads (Some) or `shutdown` fires first (None).
pub async fn acquire(
    client: kube::Client,
    cfg: &LeaderConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Leadership>> {
    let manager = LeaseManagerBuilder::new(client, &cfg.lease_name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.duration.as_secs().max(2))
        .with_grace(cfg.grace.as_secs().max(1))
        .with_field_manager("alicloud-bgp-operator")
        .build()
        .await?;
    let (mut rx, task) = manager.watch().await;
    info!(lease = %cfg.lease_name, namespace = %cfg.namespace, identity = %cfg.identity, "waiting for leadership");
    loop {
        if *rx.borrow_and_update() {
            info!(identity = %cfg.identity, "became the leader");
            return Ok(Some(Leadership { rx, task }));
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    anyhow::bail!("the lease manager stopped while campaigning");
                }
            }
            _ = shutdown.cancelled() => {
                drop(rx);
                let _ = task.await;
                return Ok(None);
            }
        }
    }
}

impl Leadership {
    /// Resolves when leadership is lost (the lease was taken or could not be renewed).
    pub async fn lost(&mut self) {
        loop {
            if self.rx.changed().await.is_err() || !*self.rx.borrow_and_update() {
                return;
            }
        }
    }

    /// Stops renewing the lease without releasing it: a standby takes over once it expires
    /// (the lease duration after the last renewal). For a stop that may leave cloud writes
    /// landing after this process stopped making them.
    pub async fn abandon(self) {
        // Stop the renewing task first: it releases the lease when it sees the receiver
        // dropped.
        self.task.abort();
        let _ = self.task.await;
        drop(self.rx);
        info!("lease left to expire");
    }

    /// Releases the lease so that a standby takes over at once.
    pub async fn release(self) {
        drop(self.rx);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => info!("lease released"),
            Ok(Ok(Err(e))) => warn!(error = %e, "releasing the lease failed"),
            Ok(Err(e)) => warn!(error = %e, "lease task failed"),
            Err(_) => warn!("releasing the lease timed out"),
        }
    }
}
