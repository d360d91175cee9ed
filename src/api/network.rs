//! The `BgpNetwork` custom resource (`vpc.alicloud.dev/v1alpha1`): one prefix a virtual border
//! router (VBR) advertises to the on-premises side over BGP (`AddBgpNetwork`).
//!
//! A cloud BGP network has **no ID**: it is the pair (`routerId`, `dstCidrBlock`). So the
//! object records in status what binds it to the network (account, region, router, prefix) and
//! whether the operator proved that this object owns it (`owned`: its own Add succeeded, or it
//! adopted the network with `adopt: true`). How ownership is proved, also across a crash
//! between the Add and the status write, is argued in `docs/bgp-network-identity.md`.
//!
//! Admission refuses what AddBgpNetwork cannot take: a malformed region, a router that is not
//! a VBR ID, a `dstCidrBlock` that is not a CIDR block or has host bits set (CEL `isCIDR`,
//! `cidr().masked()`), a malformed VPC ID, and any change of the identity fields.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::identity::CloudIdentityReference;
use super::{DeletionPolicy, LastError, SecretReference};

/// Finalizer that guards the cloud BGP network.
pub const NETWORK_FINALIZER: &str = "vpc.alicloud.dev/bgp-network";

/// Desired state of one advertised BGP network of an Alibaba Cloud virtual border router.
/// Each field maps to a parameter of AddBgpNetwork; a network cannot be modified, only added
/// and deleted, so every field that reaches the cloud is immutable.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "vpc.alicloud.dev",
    version = "v1alpha1",
    kind = "BgpNetwork",
    plural = "bgpnetworks",
    singular = "bgpnetwork",
    shortname = "bgpn",
    category = "alicloud",
    namespaced,
    status = "BgpNetworkStatus",
    doc = "A network (CIDR block) an Alibaba Cloud virtual border router advertises over BGP, kept by alicloud-bgp-operator.",
    printcolumn = r#"{"name":"Router","type":"string","jsonPath":".spec.routerId"}"#,
    printcolumn = r#"{"name":"CIDR","type":"string","jsonPath":".spec.dstCidrBlock"}"#,
    printcolumn = r#"{"name":"Owned","type":"boolean","jsonPath":".status.owned"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Cloud Status","type":"string","jsonPath":".status.cloud.status","priority":1}"#,
    printcolumn = r#"{"name":"VPC","type":"string","jsonPath":".spec.vpcId","priority":1}"#,
    printcolumn = r#"{"name":"Last Error","type":"string","jsonPath":".status.lastError.code","priority":1}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.vpcId) == has(oldSelf.vpcId) && (!has(self.vpcId) || self.vpcId == oldSelf.vpcId)",
        "message": "vpcId cannot be added, changed or removed after creation",
        "fieldPath": ".vpcId"
    },
    {
        "rule": "!(has(self.cloudIdentityRef) && has(self.credentialsSecretRef))",
        "message": "set at most one of cloudIdentityRef and credentialsSecretRef",
        "fieldPath": ".cloudIdentityRef",
        "reason": "FieldValueForbidden"
    }
]))]
pub struct BgpNetworkSpec {
    /// Region of the virtual border router, for example `cn-shanghai`. Immutable.
    #[schemars(
        length(min = 4, max = 64),
        regex(pattern = r"^[a-z]{2,4}(-[a-z0-9]+){1,4}$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "regionId is immutable"}])
    )]
    pub region_id: String,

    /// ID of the virtual border router (VBR) that advertises the network, for example
    /// `vbr-bp1ctxy813985gkuk0000`. Immutable.
    #[schemars(
        length(min = 8, max = 64),
        regex(pattern = r"^vbr-[a-z0-9]+$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "routerId is immutable"}])
    )]
    pub router_id: String,

    /// The CIDR block to advertise (of a VPC or vSwitch to reach from the data center), for
    /// example `192.168.0.0/24` or `2408:4000:10::/48` (IPv6 needs a VBR with IPv6 enabled).
    /// A prefix without host bits. Together with `routerId` it is the network's identity (a
    /// BGP network has no ID). Immutable.
    #[schemars(
        length(min = 4, max = 43),
        extend("x-kubernetes-validations" = [
            {"rule": "isCIDR(self)", "message": "dstCidrBlock must be a CIDR block such as 192.168.0.0/24"},
            {"rule": "!isCIDR(self) || cidr(self).masked() == cidr(self)", "message": "dstCidrBlock must not have host bits set (use the network address, e.g. 192.168.0.0/24)"},
            {"rule": "self == oldSelf", "message": "dstCidrBlock is immutable"}
        ])
    )]
    pub dst_cidr_block: String,

    /// The VPC the CIDR block belongs to (`VpcId` of AddBgpNetwork), for example
    /// `vpc-bp1qpo0kug3a20qqe9h7v`. Optional; cannot be added, changed or removed after
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 5, max = 64), regex(pattern = r"^vpc-[a-z0-9]+$"))]
    pub vpc_id: Option<String>,

    /// What happens to the cloud network when this object is deleted: `Delete` (default)
    /// withdraws it (DeleteBgpNetwork) and waits until it is gone, `Orphan` leaves it
    /// advertised and releases the object at once.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Take over a network with this identity that already exists in the cloud (made with
    /// Terraform, the console, or an earlier object). Without it, an existing network is never
    /// touched: the object is `Stalled` with reason `AlreadyExists`, because the operator
    /// cannot prove who made it. May be set later to take over the network then. Default
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,

    /// Secret in the same namespace holding the Alibaba Cloud credentials for this network
    /// (keys `accessKeyId`, `accessKeySecret`, optional `securityToken`). When omitted the
    /// namespace's `CloudIdentity` or the operator-wide credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,

    /// `CloudIdentity` in the same namespace to act with (RRSA role or AccessKey Secret).
    /// When neither this nor `credentialsSecretRef` is set, the namespace's identity named
    /// `default` is used, then the operator-wide credentials (if the operator allows them for
    /// this namespace). At most one of the two references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_identity_ref: Option<CloudIdentityReference>,
}

/// What the listing before an AddBgpNetwork showed (recorded with the Add's token, before the
/// call).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddObservation {
    /// When the listing that did not show the network ended.
    pub listed_at: Time,
    /// Whether that listing was consistent (it cannot have skipped a network).
    pub consistent: bool,
}

/// Observed state of a `BgpNetwork`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpNetworkStatus {
    /// The `metadata.generation` that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// True once the operator proved that this object owns the cloud network: its own
    /// AddBgpNetwork (with `clientToken`) succeeded, or it adopted the network (`adopt: true`).
    /// Only an owned network is ever deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owned: bool,
    /// True when the network was adopted rather than added.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// When the network was adopted (the earliest adopter of two objects keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_at: Option<Time>,

    /// The Alibaba Cloud account (STS `GetCallerIdentity`) the network is bound to, recorded
    /// with the Add's token or at adoption. Credentials of another account are never used on
    /// it (`AccountMismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Region the network was added or adopted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// VBR the network was added or adopted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// The prefix (canonical) the network was added or adopted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_cidr_block: Option<String>,

    /// The ClientToken of the AddBgpNetwork in flight or last made (`abo-<uid>`, plus
    /// `-<incarnation>` after a re-add). Recorded before the call, with `addRequestedAt` and
    /// `addObservation`, so that a crash before the answer is recorded is settled by replaying
    /// the same token instead of adding blindly or adopting a network someone else made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// When the Add with `clientToken` was first requested (its replay is trusted only within
    /// the operator's replay window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_requested_at: Option<Time>,
    /// What the listing before the Add showed: the network was absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_observation: Option<AddObservation>,
    /// When the operator's Add (or its replay) was answered with success: until the network is
    /// seen once, its absence from listings is read-after-write lag for the visibility grace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_accepted_at: Option<Time>,
    /// Number of times the network had to be added anew because it vanished from the cloud.
    /// Part of the ClientToken.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(with = "i64", range(min = 0))]
    pub incarnation: u32,

    /// When the operator's DeleteBgpNetwork was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<Time>,
    /// Since when the network has been in the transitional cloud status the object waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,

    /// The cloud's view of the network at the last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudNetworkView>,

    /// The last error a reconcile of this object met, kept until the network is next
    /// confirmed. Never holds a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,
    /// When the operator last confirmed from a cloud read that the network is advertised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Standard conditions: `Ready`, `Reconciling` and `Stalled` (kstatus).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The cloud's view of a BGP network, as DescribeBgpNetworks reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudNetworkView {
    /// Lifecycle status (`Pending`, `Available` — also reported as `Enabled` —, `Deleting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The prefix as the cloud spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_cidr_block: Option<String>,
    /// The VPC as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn every_spec_field_is_documented_and_the_cidr_rules_are_in_the_schema() {
        let crd = serde_json::to_value(BgpNetwork::crd()).expect("json");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut missing = Vec::new();
        for (name, sub) in spec["properties"].as_object().expect("properties") {
            if sub["description"].as_str().is_none_or(str::is_empty) {
                missing.push(name.clone());
            }
        }
        assert!(missing.is_empty(), "undocumented fields: {missing:?}");
        let cidr = spec["properties"]["dstCidrBlock"].to_string();
        assert!(cidr.contains("isCIDR(self)"), "{cidr}");
        assert!(cidr.contains("masked()"), "{cidr}");
        let names = &crd["spec"]["names"];
        assert_eq!(names["shortNames"][0], "bgpn");
        assert_eq!(names["categories"][0], "alicloud");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
    }

    #[test]
    fn checked_in_bgp_network_crd_is_current() {
        let path = crate::api::crdgen::BGP_NETWORK_CRD_PATH;
        let expected = crate::api::crdgen::bgp_network_crd_yaml().expect("render");
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            expected == actual,
            "{path} is stale: run `make crds` (cargo run -- crd --output-dir crds)"
        );
    }

    #[test]
    fn status_round_trips_and_omits_defaults() {
        let status = BgpNetworkStatus::default();
        assert_eq!(
            serde_json::to_value(&status).expect("json"),
            serde_json::json!({"conditions": []})
        );
    }
}
