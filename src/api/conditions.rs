//! Condition types and reasons of `BgpPeer` (kstatus: `Ready`, plus the abnormal-true
//! `Reconciling` and `Stalled`). Every reason the controller writes is a constant here.

/// Condition types.
pub mod types {
    /// The cloud peer exists, is `Available` and matches the spec.
    pub const READY: &str = "Ready";
    /// The controller is working towards the spec (creating, modifying, waiting, retrying).
    pub const RECONCILING: &str = "Reconciling";
    /// The controller cannot make progress until something outside it changes (the spec, a
    /// Secret, permissions, quota).
    pub const STALLED: &str = "Stalled";
}

/// Condition reasons (CamelCase, as the Kubernetes API conventions ask).
pub mod reasons {
    /// The peer is `Available` and matches the spec.
    pub const AVAILABLE: &str = "Available";
    /// A create call is being made.
    pub const CREATING: &str = "Creating";
    /// The cloud reports the peer as `Pending`.
    pub const PENDING: &str = "Pending";
    /// A ModifyBgpPeerAttribute call is being made or the peer is `Modifying`.
    pub const MODIFYING: &str = "Modifying";
    /// The object is being deleted and the cloud peer is going away.
    pub const DELETING: &str = "Deleting";
    /// The object carries the pause annotation: no cloud calls are made.
    pub const PAUSED: &str = "Paused";
    /// The spec cannot be satisfied as written; it must change.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A referenced cloud resource (group, VBR, VPC, region) does not exist.
    pub const DEPENDENCY_MISSING: &str = "DependencyMissing";
    /// An account quota is exhausted.
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// The cloud resource is busy with another operation.
    pub const BUSY: &str = "Busy";
    /// The cloud throttled the request.
    pub const THROTTLED: &str = "Throttled";
    /// A transient error (5xx, timeout, connection); retried with backoff.
    pub const TRANSIENT_ERROR: &str = "TransientError";
    /// Credentials are missing, wrong, or lack permission.
    pub const CREDENTIALS_ERROR: &str = "CredentialsError";
    /// A ClientToken was reused with different parameters.
    pub const IDEMPOTENCY_MISMATCH: &str = "IdempotencyMismatch";
    /// The peer to adopt does not exist or does not match the spec.
    pub const ADOPTION_FAILED: &str = "AdoptionFailed";
    /// A create whose result was never recorded is older than the replay window, and the
    /// group holds unclaimed peers with the requested IP: which one (if any) it made is
    /// unknown. `vpc.alicloud.dev/create-result` names it.
    pub const CREATE_UNVERIFIED: &str = "CreateUnverified";
    /// An error the controller does not know; retried with backoff.
    pub const UNKNOWN_ERROR: &str = "UnknownError";
}
