//! The `BgpPeer` custom resource (`vpc.alicloud.dev/v1alpha1`): spec, status, conditions.
//!
//! Everything a user can get wrong is refused at admission where the apiserver can check it
//! (OpenAPI patterns, ranges, enums and CEL rules generated from these types); the rest is
//! reported by the controller in the `Stalled` condition.

pub mod conditions;
pub mod crdgen;
pub mod group;
pub mod identity;
pub mod network;
mod text;

pub use conditions::Condition;
pub use text::Text;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the operator's resources.
pub const GROUP: &str = "vpc.alicloud.dev";
/// Finalizer that guards the cloud peer.
pub const FINALIZER: &str = "vpc.alicloud.dev/bgp-peer";
/// Annotation that pauses all cloud calls for one object when set to `"true"`.
pub const PAUSED_ANNOTATION: &str = "vpc.alicloud.dev/paused";
/// Annotation that overrides the operator-wide resync period for one object (e.g. `"5m"`).
pub const RESYNC_ANNOTATION: &str = "vpc.alicloud.dev/resync-period";
/// Protects the cloud peer from deletion while set to `"true"`: the chart's admission policy
/// refuses to delete the object, and the controller (the backstop when the policy is not
/// installed) makes no Delete call and reports `Stalled` (`DeletionProtected`).
pub const DELETION_PROTECTION_ANNOTATION: &str = "vpc.alicloud.dev/deletion-protection";
/// Names the peer that an interrupted create older than the replay window made (or `none`),
/// when the operator cannot tell it apart from other peers with the same IP.
pub const CREATE_RESULT_ANNOTATION: &str = "vpc.alicloud.dev/create-result";

/// Secret keys read from `spec.credentialsSecretRef`.
pub mod secret_keys {
    /// The AccessKey ID.
    pub const ACCESS_KEY_ID: &str = "accessKeyId";
    /// The AccessKey secret.
    pub const ACCESS_KEY_SECRET: &str = "accessKeySecret";
    /// An optional STS security token.
    pub const SECURITY_TOKEN: &str = "securityToken";
}

/// Desired state of one BGP peer in an Alibaba Cloud VPC BGP group (the peer of a virtual
/// border router). Each field maps to a parameter of CreateBgpPeer / ModifyBgpPeerAttribute.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "vpc.alicloud.dev",
    version = "v1alpha1",
    kind = "BgpPeer",
    plural = "bgppeers",
    singular = "bgppeer",
    shortname = "bgpp",
    category = "alicloud",
    namespaced,
    status = "BgpPeerStatus",
    doc = "A BGP peer of an Alibaba Cloud VPC BGP group, kept in sync by alicloud-bgp-operator.",
    printcolumn = r#"{"name":"Peer IP","type":"string","jsonPath":".spec.peerIpAddress"}"#,
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".status.bgpGroupId"}"#,
    printcolumn = r#"{"name":"Group Ref","type":"string","jsonPath":".spec.bgpGroupRef.name","priority":1}"#,
    printcolumn = r#"{"name":"Peer ID","type":"string","jsonPath":".status.bgpPeerId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Cloud Status","type":"string","jsonPath":".status.cloud.status","priority":1}"#,
    printcolumn = r#"{"name":"Session","type":"string","jsonPath":".status.cloud.bgpStatus","priority":1}"#,
    printcolumn = r#"{"name":"Last Error","type":"string","jsonPath":".status.lastError.code","priority":1}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.bfdMultiHop) || (has(self.enableBfd) && self.enableBfd)",
        "message": "bfdMultiHop can only be set when enableBfd is true",
        "fieldPath": ".bfdMultiHop",
        "reason": "FieldValueForbidden"
    },
    {
        "rule": "!has(self.peerIpAddress) || !isIP(self.peerIpAddress) || ip(self.peerIpAddress).family() == ((has(self.ipVersion) && self.ipVersion == 'IPv6') ? 6 : 4)",
        "message": "peerIpAddress must be an address of the family given by ipVersion (IPv4 by default)",
        "fieldPath": ".peerIpAddress"
    },
    {
        "rule": "!has(self.managementPolicy) || self.managementPolicy != 'Observe' || has(self.adoptBgpPeerId)",
        "message": "managementPolicy Observe needs adoptBgpPeerId: the peer to observe",
        "fieldPath": ".managementPolicy",
        "reason": "FieldValueRequired"
    },
    {
        "rule": "has(self.adoptBgpPeerId) == has(oldSelf.adoptBgpPeerId) && (!has(self.adoptBgpPeerId) || self.adoptBgpPeerId == oldSelf.adoptBgpPeerId)",
        "message": "adoptBgpPeerId cannot be added, changed or removed after creation",
        "fieldPath": ".adoptBgpPeerId"
    },
    {
        "rule": "!(has(self.cloudIdentityRef) && has(self.credentialsSecretRef))",
        "message": "set at most one of cloudIdentityRef and credentialsSecretRef",
        "fieldPath": ".cloudIdentityRef",
        "reason": "FieldValueForbidden"
    },
    {
        "rule": "has(self.bgpGroupId) != has(self.bgpGroupRef)",
        "message": "set exactly one of bgpGroupId and bgpGroupRef",
        "fieldPath": ".bgpGroupId",
        "reason": "FieldValueRequired"
    },
    {
        "rule": "has(self.bgpGroupRef) == has(oldSelf.bgpGroupRef)",
        "message": "a peer cannot switch between bgpGroupId and bgpGroupRef after creation",
        "fieldPath": ".bgpGroupRef"
    }
]))]
pub struct BgpPeerSpec {
    /// Region of the BGP group, for example `cn-shanghai`. Immutable.
    #[schemars(
        length(min = 4, max = 64),
        regex(pattern = r"^[a-z]{2,4}(-[a-z0-9]+){1,4}$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "regionId is immutable"}])
    )]
    pub region_id: Text,

    /// ID of the BGP group the peer belongs to, for example `bgpg-wz9f62v4fbg2gwwwasa`.
    /// The group fixes the peer's ASNs and virtual border router. Exactly one of this and
    /// `bgpGroupRef`. Immutable.
    #[serde(default, skip_serializing_if = "Text::is_empty")]
    #[schemars(
        length(min = 9, max = 64),
        regex(pattern = r"^bgpg-[a-z0-9]+$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "bgpGroupId is immutable"}])
    )]
    pub bgp_group_id: Text,

    /// The `BgpGroup` object in the same namespace whose group the peer belongs to (instead
    /// of `bgpGroupId`): the peer is created once the group is Ready, in the group's cloud
    /// ID, and `regionId` must be the group's. Exactly one of this and `bgpGroupId`.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "bgpGroupRef is immutable"}]))]
    pub bgp_group_ref: Option<BgpGroupReference>,

    /// IP address of the on-premises BGP peer, of the family given by `ipVersion`. It may
    /// be omitted only for groups whose VBR has a single physical connection. Can be changed
    /// in place (ModifyBgpPeerAttribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 45),
        extend("x-kubernetes-validations" = [
            {"rule": "isIP(self)", "message": "peerIpAddress must be a valid IPv4 or IPv6 address"},
            {"rule": "!isIP(self) || ip(self).isGlobalUnicast()", "message": "peerIpAddress must be a unicast address (not loopback, link-local, multicast, broadcast or unspecified)"}
        ])
    )]
    pub peer_ip_address: Option<Text>,

    /// IP version of the peer: `IPv4` (default) or `IPv6` (the VBR must have IPv6 enabled).
    /// Immutable.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "ipVersion is immutable"}]))]
    pub ip_version: IpVersion,

    /// Enable Bidirectional Forwarding Detection for the session. Default false.
    #[serde(default)]
    pub enable_bfd: bool,

    /// BFD hop count, 1 to 255 (use 1 for a direct fibre connection). Only with
    /// `enableBfd: true`; the cloud uses 255 when BFD is enabled and this is omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub bfd_multi_hop: Option<i32>,

    /// What happens to the cloud peer when this object is deleted: `Delete` (default)
    /// deletes it, `Orphan` leaves it in the cloud (the "no delete" management policy: every
    /// other write still happens).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// `Full` (default): create, repair and delete the peer. `Observe`: only read the peer
    /// named by `adoptBgpPeerId` (required) and report it in status; no write call ever, no
    /// finalizer, and deleting the object leaves the cloud untouched. Switching to `Full`
    /// takes the peer over (as adoption, only if no other object owns it).
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// What to do when the cloud differs from the spec: `Repair` (default) changes the peer
    /// back; `Report` only says so (`UpToDate=False`, reason `Drifted`, listing each field).
    #[serde(default)]
    pub drift_policy: DriftPolicy,

    /// Take over an existing cloud peer with this ID instead of creating one. Explicit opt-in:
    /// the operator never adopts a peer it did not create otherwise. The peer must be in
    /// `bgpGroupId`. Cannot be added, changed or removed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 5, max = 64), regex(pattern = r"^bgp-[a-z0-9]+$"))]
    pub adopt_bgp_peer_id: Option<String>,

    /// Secret in the same namespace holding the Alibaba Cloud credentials for this peer
    /// (keys `accessKeyId`, `accessKeySecret`, optional `securityToken`). When omitted the
    /// operator-wide credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,

    /// `CloudIdentity` in the same namespace to act with (RRSA role or AccessKey Secret).
    /// When neither this nor `credentialsSecretRef` is set, the namespace's identity named
    /// `default` is used, then the operator-wide credentials (if the operator allows them
    /// for this namespace). At most one of the two references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_identity_ref: Option<identity::CloudIdentityReference>,
}

/// A `BgpGroup` in the peer's namespace (cross-namespace references are not allowed: a
/// tenant must not be able to place peers in another tenant's group).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpGroupReference {
    /// Name of the BgpGroup.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: Text,
}

/// IP version of a BGP peer.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum IpVersion {
    /// IPv4 (the API's default).
    #[default]
    IPv4,
    /// IPv6.
    IPv6,
}

impl IpVersion {
    /// The value the VPC API uses.
    pub fn as_api_str(self) -> &'static str {
        match self {
            IpVersion::IPv4 => "IPv4",
            IpVersion::IPv6 => "IPv6",
        }
    }
}

/// What to do with the cloud peer when the `BgpPeer` is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the cloud peer, then release the object.
    #[default]
    Delete,
    /// Leave the cloud peer in place and release the object.
    Orphan,
}

/// How much of the cloud peer the operator manages.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create, repair and delete.
    #[default]
    Full,
    /// Read only: never a write call.
    Observe,
}

/// What to do about drift.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DriftPolicy {
    /// Change the cloud peer back to the spec.
    #[default]
    Repair,
    /// Report the differences only.
    Report,
}

/// A reference to a Secret in the object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Text,
}

/// Observed state of a `BgpPeer`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerStatus {
    /// ID of the cloud BGP peer managed for this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_peer_id: Option<String>,

    /// The `metadata.generation` that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The ClientToken of the create call in flight or last made. It is derived from the
    /// object's UID and `incarnation`, and recorded before the call so that a create
    /// interrupted by a crash is replayed with the same token instead of creating a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,

    /// The parameters sent with `clientToken`, replayed verbatim when a create interrupted by a
    /// crash is retried (the API refuses a token reused with other parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_params: Option<CreateParams>,

    /// When the create with `clientToken` was first requested. A create whose result was never
    /// recorded is replayed with its token only within the operator's replay window (the API
    /// does not document how long it remembers a token); after that the group is searched for
    /// a peer the create may have made before anything is created again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_requested_at: Option<Time>,

    /// Number of times the peer had to be created anew because it vanished from the cloud
    /// (deleted outside Kubernetes). Part of the ClientToken.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(with = "i64", range(min = 0))]
    pub incarnation: u32,

    /// True when the peer was adopted (`spec.adoptBgpPeerId`) rather than created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// The Alibaba Cloud account (STS `GetCallerIdentity`) that owns the peer, recorded when
    /// it is created or adopted. Credentials of another account are never used to create,
    /// recreate or confirm the absence of this object's peer (`AccountMismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Text>,
    /// Region the peer was created or adopted in: cleanup always acts here, and a spec that
    /// names another region is refused (`ImmutableFieldChanged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<Text>,
    /// BGP group the peer was created or adopted in (see `regionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_group_id: Option<Text>,
    /// IP version the peer was created or adopted with (see `regionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<IpVersion>,
    /// When `bgpPeerId` was recorded. Until the peer has been seen once (`cloud` is set), its
    /// absence means "not visible yet" (read-after-write lag) for the operator's visibility
    /// grace period, never "deleted outside Kubernetes".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_peer_id_recorded_at: Option<Time>,
    /// Since when the peer has been in the transitional cloud status the object waits on
    /// (Pending, Modifying, Deleting or an unknown status); after the transition timeout the
    /// object reports `Stalled` (`TransitionTimeout`) while polling goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,
    /// When the operator's DeleteBgpPeer for `bgpPeerId` was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<Time>,
    /// Since when the object has been paused (time paused does not count against the create
    /// replay window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Time>,

    /// The cloud's view of the peer at the last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudPeerView>,

    /// The last error a reconcile of this object met, kept until the operator next confirms
    /// the peer matches the spec (Ready). Never holds a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,

    /// When the operator last confirmed, from a cloud read, that the peer exists and matches
    /// the spec. Written with every Ready transition, otherwise refreshed at most once per
    /// resync period (so it lags the latest confirmation by up to one period): a value much
    /// older than the resync period means the object is not being checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Standard conditions: `Ready`, `Reconciling` and `Stalled` (kstatus), and
    /// `SessionEstablished` (the BGP session as last observed; informational, it never makes
    /// the object unready).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl BgpPeerStatus {
    /// True once the peer whose ID is recorded has been seen in the cloud (`cloud` is
    /// cleared whenever a new ID is recorded and set by every observation that finds it).
    pub fn peer_seen(&self) -> bool {
        self.bgp_peer_id.is_some() && self.cloud.is_some()
    }
}

impl BgpPeer {
    /// The cloud peer this object manages (status), if recorded.
    pub fn peer_id(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.bgp_peer_id.as_deref())
    }
}

/// The last error of a reconcile, as `status.lastError` records it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// The VPC API action that failed (e.g. `CreateBgpPeer`), or the step for errors that
    /// are not the cloud's (`ResolveCredentials`, `WriteStatus`, `Validate`, `Adopt`,
    /// `VerifyCreate`, `Reconcile`).
    pub action: String,
    /// The API error code (e.g. `QuotaExceeded.Bgp`; `Transport` when no answer came), or the
    /// condition reason for errors that are not the cloud's.
    pub code: String,
    /// What went wrong: the API's message, or the operator's. Never a credential, and never
    /// the signature's string-to-sign.
    pub message: String,
    /// The API's RequestId, for a ticket with Alibaba Cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When this error was recorded. A retry that fails with the same action, code, message
    /// and RequestId keeps the earlier time (and so writes nothing).
    pub time: Time,
}

/// The mutable parameters of a CreateBgpPeer call (region, group and IP version are immutable
/// and taken from the spec).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateParams {
    /// PeerIpAddress sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_ip_address: Option<Text>,
    /// EnableBfd sent.
    #[serde(default)]
    pub enable_bfd: bool,
    /// BfdMultiHop sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_multi_hop: Option<i32>,
}

impl CreateParams {
    /// The create parameters for a spec.
    pub fn from_spec(spec: &BgpPeerSpec) -> Self {
        CreateParams {
            peer_ip_address: spec.peer_ip_address.clone(),
            enable_bfd: spec.enable_bfd,
            bfd_multi_hop: if spec.enable_bfd {
                spec.bfd_multi_hop
            } else {
                None
            },
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The cloud's view of a BGP peer, as DescribeBgpPeers reports it. Secrets (the group's
/// auth key) are never copied here.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudPeerView {
    /// Lifecycle status: Pending, Available, Modifying, Deleting, Deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Text>,
    /// BGP group the cloud holds the peer in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_group_id: Option<Text>,
    /// BGP session state: Idle, Connect, Active, Established, Down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_status: Option<Text>,
    /// ASN on the Alibaba Cloud side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<Text>,
    /// ASN of the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<Text>,
    /// ID of the virtual border router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<Text>,
    /// Peer IP address as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_ip_address: Option<Text>,
    /// IP version as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<Text>,
    /// BFD as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_bfd: Option<bool>,
    /// BFD hop count as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_multi_hop: Option<i32>,
    /// Routes advertised to the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_route_count: Option<i64>,
    /// Routes received from the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_route_count: Option<i64>,
}

#[cfg(test)]
mod tests;
