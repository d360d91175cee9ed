//! One reconcile of one object: what it read, the status it builds, the time it runs at, and
//! the two ways it talks back (status and events).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tracing::{debug, warn};

use crate::ops::events::EventType;

use super::super::context::Context;
use super::super::error::{Error, Step};
use super::super::finalizer;
use super::super::status::{Outcome, with_outcome};
use super::{CloudObject, ObjectStatus};

/// One reconcile of one object of kind `K`. One clock reading per reconcile, so every rule
/// sees the same "now".
pub struct Reconciler<'a, K: CloudObject> {
    /// The object's API (its namespace).
    pub api: &'a Api<K>,
    /// The object as this reconcile read it.
    pub obj: &'a K,
    /// Everything reconciles share.
    pub ctx: &'a Context,
    /// The status as stored in the apiserver (what a write is compared against).
    pub(crate) stored: Option<K::Status>,
    /// The object's resourceVersion as this reconcile last saw it: every status write is
    /// conditional on it, so a write made from a stale copy (a second controller, a new
    /// leader's cache) fails instead of wiping a ClientToken someone else recorded.
    resource_version: Option<String>,
    /// The status being built.
    pub status: K::Status,
    /// The time of this reconcile.
    pub now: jiff::Timestamp,
}

impl<'a, K: CloudObject> Reconciler<'a, K> {
    /// A reconcile of `obj` starting now.
    pub fn new(api: &'a Api<K>, obj: &'a K, ctx: &'a Context) -> Self {
        Self::at(api, obj, ctx, jiff::Timestamp::now())
    }

    /// A reconcile of `obj` at `now` (tests fix the clock).
    pub fn at(api: &'a Api<K>, obj: &'a K, ctx: &'a Context, now: jiff::Timestamp) -> Self {
        Reconciler {
            api,
            obj,
            ctx,
            stored: obj.status().cloned(),
            status: obj.status().cloned().unwrap_or_default(),
            resource_version: obj.meta().resource_version.clone(),
            now,
        }
    }

    /// The status as stored when this reconcile started (or last wrote it).
    pub fn stored(&self) -> Option<&K::Status> {
        self.stored.as_ref()
    }

    /// The time of this reconcile as status records it: whole seconds, which is what the
    /// apiserver keeps, so that a re-read status compares equal.
    pub fn stamp(&self) -> Time {
        Time(jiff::Timestamp::from_second(self.now.as_second()).unwrap_or(self.now))
    }

    /// Writes the status with the conditions of `outcome`, unless nothing changed.
    pub async fn write_status(&mut self, outcome: &Outcome) -> Result<(), Error> {
        let now = self.stamp();
        let (status, changed) = with_outcome(
            self.status.clone(),
            self.stored.as_ref(),
            outcome,
            K::NOUN,
            self.obj.meta().generation,
            &now,
        );
        self.status = status;
        if !changed {
            return Ok(());
        }
        self.patch_status().await
    }

    /// Server-side apply of the whole status; retried on transient failures because a lost
    /// write of a freshly created cloud ID must not be ignored.
    async fn patch_status(&mut self) -> Result<(), Error> {
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            // A precondition: the write fails with 409 if the object changed meanwhile.
            "metadata": {"resourceVersion": self.resource_version},
            "status": self.status,
        });
        let params = PatchParams::apply(&self.ctx.config.field_manager).force();
        let name = self.obj.name_any();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .api
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await
            {
                Ok(written) => {
                    // A finalizer removal later in this reconcile is conditional on this
                    // version of the object, and so is the next status write.
                    finalizer::saw(&written);
                    self.ctx.writes.wrote(
                        written.meta().uid.as_deref(),
                        written.meta().resource_version.as_deref(),
                    );
                    self.resource_version = written.meta().resource_version.clone();
                    // Later writes in this reconcile compare against what is stored now.
                    self.stored = Some(self.status.clone());
                    return Ok(());
                }
                Err(e) if attempt < 4 && !is_permanent(&e) => {
                    warn!(error = %e, attempt, "status write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(Error::kube(Step::WriteStatus)(e)),
            }
        }
    }

    /// Publishes an event about the object (best effort: a cluster that refuses events must
    /// not block reconciles).
    pub fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let recorder = self.ctx.recorder.clone();
        let reference = self.obj.object_ref(&());
        let (reason, action) = (reason.to_owned(), action.to_owned());
        tokio::spawn(async move {
            if let Err(e) = recorder
                .publish(&reference, type_, &reason, &action, &note)
                .await
            {
                debug!(error = %e, "event not published");
            }
        });
    }

    /// Reports a wait on a cloud transition (`cloud_status`) that lasted `waited`, longer than
    /// the transition timeout: `Stalled`/`TransitionTimeout` with the cloud status and how
    /// long, and one Warning event (and `transitions_overdue`) when it becomes overdue.
    /// Polling goes on; the condition clears by itself when the cloud moves on.
    pub async fn report_overdue(
        &mut self,
        cloud_status: &str,
        waited: std::time::Duration,
    ) -> Result<(), Error> {
        use crate::api::conditions::reasons;
        let was_overdue =
            super::super::status::stalled_reason(&self.status) == Some(reasons::TRANSITION_TIMEOUT);
        let message = format!(
            "The cloud has reported the {} as {cloud_status} for {} min, longer than the transition timeout ({} min); still polling, and this clears by itself when the cloud moves on. If it does not, check it in the console or open a ticket with Alibaba Cloud",
            K::NOUN,
            waited.as_secs() / 60,
            self.ctx.config.timing.transition_timeout.as_secs() / 60
        );
        self.note_overdue(&message, was_overdue);
        self.write_status(&Outcome::Stalled {
            reason: reasons::TRANSITION_TIMEOUT,
            message,
        })
        .await
    }

    /// The event and metric of a wait that became overdue (`was_overdue`: it already was).
    pub fn note_overdue(&self, message: &str, was_overdue: bool) {
        if !was_overdue {
            self.event(
                EventType::Warning,
                crate::api::conditions::events::TRANSITION_TIMEOUT,
                "Wait",
                message.to_owned(),
            );
            self.ctx.metrics.transition_overdue();
        }
    }

    /// Writes a failed step into the conditions and `lastError`, and publishes a Warning
    /// event (best effort: the error itself is what the controller acts on).
    pub async fn report_error(&mut self, err: &Error) {
        if !err.is_reported() {
            return;
        }
        let message = err.user_message();
        let outcome = if err.is_stalled() {
            Outcome::Stalled {
                reason: err.reason(),
                message: message.clone(),
            }
        } else {
            Outcome::Progressing {
                reason: err.reason(),
                message: message.clone(),
            }
        };
        // (A throttled answer has already slowed the client's limiter: `VpcClient::call`.)
        if let Error::Cloud { action, source } = err {
            warn!(
                action,
                code = source.code().unwrap_or("-"),
                request_id = source.request_id().unwrap_or("-"),
                class = source.class().as_str(),
                "cloud call failed"
            );
        }
        // Waiting for a dependency is expected (a group and its peers applied together).
        let type_ = match err {
            Error::DependencyNotReady(_) => EventType::Normal,
            _ => EventType::Warning,
        };
        self.event(type_, err.event_reason(), "Reconcile", message);
        let stamp = self.stamp();
        crate::ops::report::record_error(self.status.last_error_mut(), err, &stamp);
        if let Err(e) = self.write_status(&outcome).await {
            warn!(error = %e, "could not record the error in status");
        }
    }
}

/// Status write failures that a retry of the same write cannot fix (a conflict means the
/// object changed: the next reconcile starts from the fresh one).
fn is_permanent(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_forbidden() || s.is_invalid() || s.is_not_found() || s.is_conflict())
}
