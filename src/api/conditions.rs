//! Condition types and reasons of `BgpPeer` (kstatus: `Ready`, plus the abnormal-true
//! `Reconciling` and `Stalled`). Every reason the controller writes is a constant here.
//! Also [`Condition`], the condition every kind's status lists.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::Text;

/// One condition of an object's status: the Kubernetes `Condition`
/// (`io.k8s.apimachinery.pkg.apis.meta.v1.Condition`, same JSON and schema) with [`Text`]
/// fields, so that the cache of thousands of objects holds each type, status, reason and
/// message once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When the condition last changed status.
    pub last_transition_time: Time,
    /// A human-readable message (may be empty).
    #[serde(default)]
    pub message: Text,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// A CamelCase reason (one of [`reasons`] when the controller wrote it).
    #[serde(default)]
    pub reason: Text,
    /// `True`, `False` or `Unknown` ([`status`]).
    #[serde(default)]
    pub status: Text,
    /// The condition type ([`types`]).
    #[serde(default, rename = "type")]
    pub type_: Text,
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as JsonSchema>::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as JsonSchema>::schema_id()
    }
    fn inline_schema() -> bool {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as JsonSchema>::inline_schema()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as JsonSchema>::json_schema(
            generator,
        )
    }
}

/// Condition types.
pub mod types {
    /// The cloud peer exists, is `Available` and matches the spec.
    pub const READY: &str = "Ready";
    /// The controller is working towards the spec (creating, modifying, waiting, retrying).
    pub const RECONCILING: &str = "Reconciling";
    /// The controller cannot make progress until something outside it changes (the spec, a
    /// Secret, permissions, quota).
    pub const STALLED: &str = "Stalled";
    /// The cloud peer matches the spec (`False`, reason `Drifted`, lists each differing
    /// field; `Unknown` while paused or not yet observed).
    pub const UP_TO_DATE: &str = "UpToDate";
    /// The BGP session (`status.cloud.bgpStatus`) was `Established` at the last observation.
    /// Informational: the operator cannot fix a session (the on-premises side must), so it
    /// never makes the object unready, Reconciling or Stalled.
    pub const SESSION_ESTABLISHED: &str = "SessionEstablished";
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
    /// The peer to adopt (or the one recorded in status) is already owned by another object
    /// of the cluster: a cloud peer has at most one owner.
    pub const ALREADY_OWNED: &str = "AlreadyOwned";
    /// A BGP network with the object's identity (VBR, CIDR block) exists and the object did
    /// not add it; a network has no ID, so ownership cannot be proved (`adopt: true` takes it
    /// over).
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// The listing the decision needs changed while it was walked (offset paging): looking
    /// again before concluding that something is absent.
    pub const INCONSISTENT_LISTING: &str = "InconsistentListing";
    /// The credentials now in use belong to another Alibaba Cloud account than the one that
    /// owns the peer: nothing is created, recreated or released until they match again (or
    /// `deletionPolicy: Orphan` lets the object go).
    pub const ACCOUNT_MISMATCH: &str = "AccountMismatch";
    /// `regionId`, `bgpGroupId` or `ipVersion` differs from what the existing peer was
    /// created with (the CRD's immutability rules were bypassed): restore the spec.
    pub const IMMUTABLE_FIELD_CHANGED: &str = "ImmutableFieldChanged";
    /// The peer has stayed in a transitional (or unknown) cloud status for longer than the
    /// transition timeout. Polling goes on; the condition clears when the cloud moves on.
    pub const TRANSITION_TIMEOUT: &str = "TransitionTimeout";
    /// The peer the operator just created (or learned from a token replay) is not visible
    /// to DescribeBgpPeers yet (read-after-write lag): waiting, never recreating.
    pub const NOT_YET_VISIBLE: &str = "NotYetVisible";
    /// A referenced object (a peer's `bgpGroupRef`) does not exist or is not Ready for its
    /// generation yet: the object waits, and is woken when it becomes Ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A referenced object now names another cloud resource than the one this object was
    /// made in (the BgpGroup object was recreated): the object does not move by itself.
    pub const DEPENDENCY_CHANGED: &str = "DependencyChanged";
    /// The cloud peer differs from the spec (`UpToDate=False`).
    pub const DRIFTED: &str = "Drifted";
    /// The cloud peer matches the spec (`UpToDate=True`).
    pub const IN_SYNC: &str = "InSync";
    /// `managementPolicy: Observe`: the peer is observed, never written.
    pub const OBSERVED: &str = "Observed";
    /// `managementPolicy: Observe` and the named peer does not exist.
    pub const NOT_FOUND: &str = "NotFound";
    /// The object is being deleted but carries `vpc.alicloud.dev/deletion-protection: "true"`:
    /// no Delete call until the annotation is removed.
    pub const DELETION_PROTECTED: &str = "DeletionProtected";
    /// `SessionEstablished=True`: the cloud reports the BGP session as `Established`.
    pub const ESTABLISHED: &str = "Established";
    /// `SessionEstablished=False`: the cloud reports another session state (Idle, Connect,
    /// Active, Down, …), named in the message.
    pub const NOT_ESTABLISHED: &str = "NotEstablished";
    /// `SessionEstablished=Unknown`: the peer has not been observed in the cloud yet.
    pub const NOT_OBSERVED: &str = "NotObserved";
    /// A BgpGroup's deletion waits: BgpPeers still resolve to the group (or the cloud still
    /// lists peers in it); DeleteBgpGroup is called once they are gone.
    pub const DEPENDENTS_EXIST: &str = "DependentsExist";
    /// The Secret (or its key) named by a BgpGroup's `spec.authKeySecretRef` is missing,
    /// unreadable, empty or too long.
    pub const AUTH_KEY_UNAVAILABLE: &str = "AuthKeyUnavailable";
}

/// Condition statuses.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Unknown (paused).
    pub const UNKNOWN: &str = "Unknown";
}

/// Event reasons (the `reason` of an Event the controller publishes).
pub mod events {
    /// A peer was created.
    pub const CREATED: &str = "Created";
    /// A peer's attributes were changed.
    pub const UPDATED: &str = "Updated";
    /// An existing peer was adopted.
    pub const ADOPTED: &str = "Adopted";
    /// The peer vanished from the cloud and is created again.
    pub const PEER_VANISHED: &str = "PeerVanished";
    /// An owned BGP network is no longer advertised and is added again.
    pub const NETWORK_VANISHED: &str = "NetworkVanished";
    /// DeleteBgpPeer was accepted.
    pub const DELETING: &str = "Deleting";
    /// The peer is gone; the object is released.
    pub const DELETED: &str = "Deleted";
    /// The object is released and the peer left in the cloud.
    pub const ORPHANED: &str = "Orphaned";
    /// The object is released without touching a peer another object owns.
    pub const RELEASED: &str = "Released";
    /// An unrecorded create's result was settled.
    pub const CREATE_VERIFIED: &str = "CreateVerified";
    /// A transition has lasted longer than the transition timeout.
    pub const TRANSITION_TIMEOUT: &str = "TransitionTimeout";
    /// The credentials belong to another account than the peer's.
    pub const ACCOUNT_MISMATCH: &str = "AccountMismatch";
    /// The cloud peer drifted from the spec (once per transition into drift).
    pub const DRIFTED: &str = "Drifted";
    /// A BGP group vanished from the cloud and is created again.
    pub const GROUP_VANISHED: &str = "GroupVanished";
    /// A BgpGroup's deletion started waiting for the peers that still use it.
    pub const DEPENDENTS_EXIST: &str = "DependentsExist";
}
