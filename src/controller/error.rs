//! Reconcile errors, their class, and the requeue rule of each class.

use std::time::Duration;

use crate::api::conditions::reasons;
use crate::cloud::{CloudError, ErrorClass};

/// An error of one reconcile. Each knows its [`ErrorClass`], which decides the condition
/// and the requeue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A VPC API call failed.
    #[error("{action} failed: {source}")]
    Cloud {
        /// The API action.
        action: &'static str,
        /// The classified cloud error.
        #[source]
        source: CloudError,
    },
    /// Credentials could not be resolved (Secret missing, key missing, chain empty).
    #[error("{0}")]
    Credentials(String),
    /// The spec cannot be satisfied as written (found by the controller, not the apiserver).
    #[error("{0}")]
    InvalidSpec(String),
    /// Adoption is impossible as specified. A missing peer is re-checked like a missing
    /// dependency (it may still appear); one in another group waits for the spec to change.
    #[error("{message}")]
    Adoption {
        /// Why.
        message: String,
        /// The peer was not found.
        missing: bool,
    },
    /// An old create's result cannot be told apart from other peers: a person must say which
    /// peer it made (or that it made none). Re-checked periodically.
    #[error("{0}")]
    CreateUnverified(String),
    /// A safety rule refuses to act (another owner, another account, a changed immutable
    /// field): Stalled with its own reason, no write call, re-checked periodically.
    #[error("{message}")]
    Refused {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong and how to get out.
        message: String,
    },
    /// An object this one refers to (a peer's `bgpGroupRef`) does not exist or is not Ready
    /// yet: `Reconciling`, not `Stalled`; the object is woken when the dependency changes.
    #[error("{0}")]
    DependencyNotReady(String),
    /// A Kubernetes API call of `step` failed.
    #[error("{step}: Kubernetes API: {source}")]
    Kube {
        /// The step that made the call.
        step: Step,
        /// The apiserver's answer.
        #[source]
        source: kube::Error,
    },
    /// The object has no name (never the case for objects from the apiserver).
    #[error("the object has no name")]
    UnnamedObject,
    /// A failure injected by a test hook (a simulated crash): not reported in status, as a
    /// real crash would not be.
    #[error("{0}")]
    Injected(&'static str),
    /// Not a failure: cleanup waits for the cloud, so the finalizer must stay (the finalizer
    /// helper releases only on `Ok`). The apply path requeues instead.
    #[error("{0}")]
    CleanupPending(String),
}

/// The step of a reconcile that called the Kubernetes API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Writing the object's status.
    WriteStatus,
    /// Reading a credentials Secret.
    ReadSecret,
    /// Reading a CloudIdentity.
    ReadIdentity,
    /// Requesting a ServiceAccount token for a CloudIdentity.
    RequestToken,
    /// Adding or removing the finalizer.
    Finalizer,
    /// Reading or writing the object itself (annotations).
    WriteObject,
    /// Reading an object this one refers to (a peer's BgpGroup).
    ReadReference,
}

impl Step {
    /// The step's name, as `status.lastError.action` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::WriteStatus => "WriteStatus",
            Step::ReadSecret => "ReadSecret",
            Step::ReadIdentity => "ReadIdentity",
            Step::RequestToken => "RequestToken",
            Step::Finalizer => "Finalizer",
            Step::WriteObject => "WriteObject",
            Step::ReadReference => "ReadReference",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// Wraps a failed VPC call of `action` (for `map_err`).
    pub fn cloud(action: &'static str) -> impl FnOnce(CloudError) -> Error {
        move |source| Error::Cloud { action, source }
    }

    /// Wraps a failed Kubernetes call of `step` (for `map_err`).
    pub fn kube(step: Step) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { step, source }
    }

    /// The step that failed, as `status.lastError.action` names it.
    pub fn step(&self) -> &'static str {
        match self {
            Error::Cloud { action, .. } => action,
            Error::Credentials(_) => "ResolveCredentials",
            Error::InvalidSpec(_) | Error::UnnamedObject => "Validate",
            Error::Adoption { .. } => "Adopt",
            Error::DependencyNotReady(_) => "ResolveReferences",
            Error::CreateUnverified(_) => "VerifyCreate",
            Error::Kube { step, .. } => step.as_str(),
            Error::Refused { .. } | Error::Injected(_) | Error::CleanupPending(_) => "Reconcile",
        }
    }

    /// The object is gone (or was replaced by another with the same name).
    pub fn is_object_gone(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(s), .. } if s.is_not_found())
    }

    /// Whether the error is written into status and published as an event (progress and
    /// simulated crashes are not).
    pub fn is_reported(&self) -> bool {
        !matches!(self, Error::CleanupPending(_) | Error::Injected(_))
    }

    /// The class that decides the condition and the requeue.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Cloud { source, .. } => source.class(),
            Error::Credentials(_) => ErrorClass::Credentials,
            Error::Adoption { missing: true, .. } => ErrorClass::DependencyMissing,
            Error::InvalidSpec(_)
            | Error::UnnamedObject
            | Error::Adoption { .. }
            | Error::CreateUnverified(_)
            | Error::Refused { .. } => ErrorClass::Terminal,
            Error::DependencyNotReady(_) => ErrorClass::DependencyMissing,
            Error::Kube { source, .. } if is_kube_conflict(source) => ErrorClass::Busy,
            Error::Kube { .. } | Error::Injected(_) => ErrorClass::Transient,
            Error::CleanupPending(_) => ErrorClass::Busy,
        }
    }

    /// The condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Adoption { .. } => reasons::ADOPTION_FAILED,
            Error::CreateUnverified(_) => reasons::CREATE_UNVERIFIED,
            Error::Refused { reason, .. } => reason,
            Error::CleanupPending(_) => reasons::DELETING,
            Error::DependencyNotReady(_) => reasons::DEPENDENCY_NOT_READY,
            _ => reason_for(self.class()),
        }
    }

    /// True when the object cannot progress until something outside the controller changes
    /// (the spec, a Secret, permissions): the `Stalled` condition.
    pub fn is_stalled(&self) -> bool {
        !matches!(self, Error::DependencyNotReady(_)) && stalls(self.class())
    }

    /// The reason of the Warning event for this error: the condition reason for the safety
    /// refusals, the error class otherwise.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Error::Refused { reason, .. } => reason,
            Error::CreateUnverified(_) => reasons::CREATE_UNVERIFIED,
            Error::DependencyNotReady(_) => reasons::DEPENDENCY_NOT_READY,
            _ => self.class().as_str(),
        }
    }

    /// A message for conditions and events: the API's code, message and RequestId, never a
    /// credential. The signature-mismatch message's echo of the string-to-sign is cut.
    pub fn user_message(&self) -> String {
        let text = self.to_string();
        let text = match text.find("server string to sign is") {
            Some(i) => format!("{}…", text[..i].trim_end()),
            None => text,
        };
        truncate(&text, 1024)
    }
}

fn is_kube_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.is_conflict())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// True for the classes that leave the object `Stalled`: it cannot progress until something
/// outside the controller changes (the spec, a Secret, permissions, a deleted BGP group or
/// region). Retries still follow [`retry_rule`].
pub fn stalls(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Terminal
            | ErrorClass::Credentials
            | ErrorClass::IdempotencyMismatch
            | ErrorClass::DependencyMissing
    )
}

/// Rules that depend on the action as well as the class: the same code means something else
/// for another call. Data, so that the README's table is generated from it.
pub const ACTION_RULES: &[(&str, ErrorClass, &str)] = &[
    (
        "DeleteBgpPeer",
        ErrorClass::DependencyMissing,
        "not a failure: the peer is not there to delete. Recorded like an accepted delete; the finalizer goes once a read in the owning account confirms the absence",
    ),
    (
        "CreateBgpPeer (replay of a recorded create)",
        ErrorClass::Terminal,
        "the API's parameter validation proves no peer was made: the recorded token is cleared",
    ),
    (
        "CreateBgpPeer (replay of a recorded create)",
        ErrorClass::IdempotencyMismatch,
        "settled by verification: a consistent listing of the group with no unclaimed peer at all (the token may have made one with other parameters) moves to a new incarnation; otherwise `CreateUnverified`",
    ),
    (
        "CreateBgpPeer (replay during deletion)",
        ErrorClass::Quota,
        "settled by verification (as above; also for `Busy` and `DependencyMissing`), so a quota cannot hold the finalizer",
    ),
    (
        "CreateBgpPeer (replay of a recorded create)",
        ErrorClass::Throttled,
        "proves nothing (nor do credentials, gateway or unknown errors): the token is kept and the replay retried",
    ),
    (
        "AddBgpNetwork",
        ErrorClass::Terminal,
        "`InvalidParams.AlreadyExists`: the network exists and this object did not add it (a network has no ID): `Stalled`, reason `AlreadyExists`, never deleted by this object; `adopt: true` takes it over. Any other refusal of the parameters proves the recorded token made nothing: it is cleared",
    ),
    (
        "AddBgpNetwork (replay of a recorded add)",
        ErrorClass::Quota,
        "proves the token made nothing (a token that had succeeded is answered with that success): retried with the same token; during deletion the object is released",
    ),
    (
        "AddBgpNetwork (replay of a recorded add)",
        ErrorClass::Transient,
        "proves nothing (nor do throttling, credentials or unknown errors): the token is kept and the replay retried; only a success makes the network this object's",
    ),
    (
        "DeleteBgpNetwork",
        ErrorClass::DependencyMissing,
        "`InvalidParams.NotFound`: not a failure; recorded like an accepted delete, and the finalizer goes once a consistent listing of the VBR in the owning account no longer shows the network",
    ),
    (
        "DescribeBgpPeers (group listing during deletion)",
        ErrorClass::DependencyMissing,
        "does not prove the peer gone: it is read by ID in the owning account, and any error of that read keeps the finalizer",
    ),
];

/// True when DeleteBgpPeer's answer says there is no such peer (see [`ACTION_RULES`]).
pub fn delete_found_nothing(source: &CloudError) -> bool {
    source.class() == ErrorClass::DependencyMissing
}

/// The condition reason of each error class.
pub fn reason_for(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Terminal => reasons::INVALID_SPEC,
        ErrorClass::DependencyMissing => reasons::DEPENDENCY_MISSING,
        ErrorClass::Quota => reasons::QUOTA_EXCEEDED,
        ErrorClass::Busy => reasons::BUSY,
        ErrorClass::Throttled => reasons::THROTTLED,
        ErrorClass::Transient => reasons::TRANSIENT_ERROR,
        ErrorClass::Credentials => reasons::CREDENTIALS_ERROR,
        ErrorClass::IdempotencyMismatch => reasons::IDEMPOTENCY_MISMATCH,
        ErrorClass::Unknown => reasons::UNKNOWN_ERROR,
    }
}

/// Retry timing of one error class: `None` means "no retry until the object changes".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRule {
    /// First delay.
    pub base: Duration,
    /// Upper bound of the exponential growth.
    pub cap: Duration,
}

/// The requeue rule of each class (see the README's error table).
pub fn retry_rule(class: ErrorClass) -> Option<RetryRule> {
    let rule = |base: u64, cap: u64| {
        Some(RetryRule {
            base: Duration::from_secs(base),
            cap: Duration::from_secs(cap),
        })
    };
    match class {
        // The spec must change; the watch brings that change.
        ErrorClass::Terminal => None,
        // Replays send the recorded parameters, so no spec change can help: the next look
        // verifies the recorded create by listing and moves to a new incarnation when it
        // made nothing (see `create::replay`).
        ErrorClass::IdempotencyMismatch => rule(10, 600),
        ErrorClass::DependencyMissing => rule(30, 600),
        ErrorClass::Quota => rule(120, 1800),
        ErrorClass::Busy => rule(2, 60),
        ErrorClass::Throttled => rule(5, 300),
        ErrorClass::Transient | ErrorClass::Unknown => rule(1, 300),
        // Slowly, because operator-wide credentials (environment, RRSA token file) change
        // without an event; an object whose Secret or CloudIdentity is unreadable is also
        // re-queued every `--credentials-recheck` (Secrets are re-read, not watched).
        ErrorClass::Credentials => rule(300, 1800),
    }
}

/// Delay before retry number `failures` (1-based) of `class`: `base·2^(n-1)` capped, with
/// `jitter` in [0, 1) adding up to 20 % so that objects failing together spread out.
pub fn backoff(class: ErrorClass, failures: u32, jitter: f64) -> Option<Duration> {
    let rule = retry_rule(class)?;
    let exp = failures.saturating_sub(1).min(20);
    let raw = rule.base.saturating_mul(1u32 << exp).min(rule.cap);
    let jitter = jitter.clamp(0.0, 1.0);
    Some(raw.mul_f64(1.0 + 0.2 * jitter).min(rule.cap.mul_f64(1.2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_waits_for_a_spec_change() {
        assert_eq!(backoff(ErrorClass::Terminal, 1, 0.0), None);
    }

    #[test]
    fn transient_grows_exponentially_to_the_cap() {
        let d = |n| backoff(ErrorClass::Transient, n, 0.0).map(|d| d.as_secs());
        assert_eq!(d(1), Some(1));
        assert_eq!(d(2), Some(2));
        assert_eq!(d(5), Some(16));
        assert_eq!(d(30), Some(300));
    }

    #[test]
    fn classes_are_ordered_by_patience() {
        let first = |c| backoff(c, 1, 0.0).map(|d| d.as_secs()).unwrap_or(u64::MAX);
        assert!(first(ErrorClass::Busy) < first(ErrorClass::Throttled));
        assert!(first(ErrorClass::Throttled) < first(ErrorClass::DependencyMissing));
        assert!(first(ErrorClass::DependencyMissing) < first(ErrorClass::Quota));
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        let plain = backoff(ErrorClass::Busy, 3, 0.0).map(|d| d.as_millis());
        let jittered = backoff(ErrorClass::Busy, 3, 0.999).map(|d| d.as_millis());
        assert_eq!(plain, Some(8000));
        assert!(jittered > plain && jittered <= Some(9600));
    }

    #[test]
    fn messages_never_echo_the_string_to_sign() {
        let err = Error::Credentials(
            "SignatureDoesNotMatch: Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId..."
                .into(),
        );
        let msg = err.user_message();
        assert!(!msg.contains("AccessKeyId"), "{msg}");
        assert!(msg.contains("SignatureDoesNotMatch"));
    }
}
