//! The `BgpGroup` custom resource (`vpc.alicloud.dev/v1alpha1`): a BGP group of a virtual
//! border router (the peer ASN, the local ASN and the MD5 key its peers share).
//!
//! The MD5 auth key never sits in the object: `spec.authKeySecretRef` names a key of a Secret
//! in the same namespace, and the status holds no key and no hash of it (the controller
//! compares the Secret's value with the cloud's in memory only).
//!
//! Admission (OpenAPI patterns and ranges, CEL) refuses what CreateBgpGroup documents as
//! invalid (`InvalidBgpName.Malformed`, `InvalidBgpDescription.Malformed`,
//! `InvalidPeerAsn.Malformed`, the LocalAsn ranges) and any change of the fields
//! ModifyBgpGroupAttribute cannot change (`regionId`, `routerId`, `ipVersion`) or that bind the
//! object to a cloud group (`adoptBgpGroupId`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::identity::CloudIdentityReference;
use super::{DeletionPolicy, IpVersion, LastError, SecretReference};

/// Finalizer that guards the cloud BGP group.
pub const GROUP_FINALIZER: &str = "vpc.alicloud.dev/bgp-group";

/// Alibaba Cloud's own ASN: the local ASN by default, never a peer ASN.
pub const ALIYUN_ASN: i64 = 45104;

/// The local ASN the cloud uses when none is given.
pub const DEFAULT_LOCAL_ASN: i64 = ALIYUN_ASN;

/// Whether `asn` is a LocalAsn the API accepts: 45104, 64512–65534 except the reserved 65025,
/// or 4200000000–4294967294 (CreateBgpGroup / ModifyBgpGroupAttribute reference).
pub fn valid_local_asn(asn: i64) -> bool {
    asn == ALIYUN_ASN
        || ((64512..=65534).contains(&asn) && asn != 65025)
        || (4_200_000_000..=4_294_967_294).contains(&asn)
}

/// Desired state of one BGP group of an Alibaba Cloud virtual border router (VBR). Each field
/// maps to a parameter of CreateBgpGroup / ModifyBgpGroupAttribute.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "vpc.alicloud.dev",
    version = "v1alpha1",
    kind = "BgpGroup",
    plural = "bgpgroups",
    singular = "bgpgroup",
    shortname = "bgpg",
    category = "alicloud",
    namespaced,
    status = "BgpGroupStatus",
    doc = "A BGP group of an Alibaba Cloud virtual border router (peer ASN, local ASN, MD5 key), kept in sync by alicloud-bgp-operator.",
    printcolumn = r#"{"name":"Router","type":"string","jsonPath":".spec.routerId"}"#,
    printcolumn = r#"{"name":"Peer ASN","type":"integer","jsonPath":".spec.peerAsn"}"#,
    printcolumn = r#"{"name":"Group ID","type":"string","jsonPath":".status.bgpGroupId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Cloud Status","type":"string","jsonPath":".status.cloud.status","priority":1}"#,
    printcolumn = r#"{"name":"Local ASN","type":"integer","jsonPath":".status.cloud.localAsn","priority":1}"#,
    printcolumn = r#"{"name":"Last Error","type":"string","jsonPath":".status.lastError.code","priority":1}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.adoptBgpGroupId) == has(oldSelf.adoptBgpGroupId) && (!has(self.adoptBgpGroupId) || self.adoptBgpGroupId == oldSelf.adoptBgpGroupId)",
        "message": "adoptBgpGroupId cannot be added, changed or removed after creation",
        "fieldPath": ".adoptBgpGroupId"
    },
    {
        "rule": "!(has(self.cloudIdentityRef) && has(self.credentialsSecretRef))",
        "message": "set at most one of cloudIdentityRef and credentialsSecretRef",
        "fieldPath": ".cloudIdentityRef",
        "reason": "FieldValueForbidden"
    }
]))]
pub struct BgpGroupSpec {
    /// Region of the virtual border router, for example `cn-shanghai`. Immutable.
    #[schemars(
        length(min = 4, max = 64),
        regex(pattern = r"^[a-z]{2,4}(-[a-z0-9]+){1,4}$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "regionId is immutable"}])
    )]
    pub region_id: String,

    /// ID of the virtual border router (VBR) the group belongs to, for example
    /// `vbr-bp1ctxy813985gkuk0000`. Immutable (ModifyBgpGroupAttribute cannot move a group).
    #[schemars(
        length(min = 8, max = 64),
        regex(pattern = r"^vbr-[a-z0-9]+$"),
        extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "routerId is immutable"}])
    )]
    pub router_id: String,

    /// Autonomous system number of the on-premises router, 1 to 4294967295 (2- or 4-byte);
    /// it cannot be Alibaba Cloud's own ASN 45104. Can be changed in place.
    #[schemars(
        range(min = 1, max = 4_294_967_295_i64),
        extend("x-kubernetes-validations" = [{"rule": "self != 45104", "message": "peerAsn cannot be 45104, the ASN of Alibaba Cloud"}])
    )]
    pub peer_asn: i64,

    /// Autonomous system number on the Alibaba Cloud side: 45104 (the cloud's default when
    /// omitted), 64512–65534 except the reserved 65025, or 4200000000–4294967294. A custom
    /// local ASN can cause BGP routing loops with multiple connections. Can be changed in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        range(min = 1, max = 4_294_967_294_i64),
        extend("x-kubernetes-validations" = [{
            "rule": "self == 45104 || (self >= 64512 && self <= 65534 && self != 65025) || (self >= 4200000000 && self <= 4294967294)",
            "message": "localAsn must be 45104, 64512-65534 (not 65025, reserved by Alibaba Cloud) or 4200000000-4294967294"
        }])
    )]
    pub local_asn: Option<i64>,

    /// Use a fake ASN (keeps sessions up while an AS is migrated or merged). Default false.
    /// Can be changed in place.
    #[serde(default)]
    pub is_fake_asn: bool,

    /// IP version of the group: `IPv4` (default) or `IPv6` (the VBR must have IPv6
    /// enabled). Its peers must have the same IP version. Immutable.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "ipVersion is immutable"}]))]
    pub ip_version: IpVersion,

    /// Maximum number of routes a peer of this group may advertise (the cloud's default is 110
    /// when omitted). Can be changed in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub route_quota: Option<i32>,

    /// Name of the group in the cloud: 2 to 128 characters, starting with a letter, then
    /// letters, digits, `.`, `_` or `-`. Can be changed in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 128),
        regex(pattern = r"^\p{L}[\p{L}\p{N}._-]*$")
    )]
    pub name: Option<String>,

    /// Description of the group in the cloud: 2 to 256 characters, starting with a letter and
    /// not with `http://` or `https://`. Can be changed in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = r"^\p{L}"),
        extend("x-kubernetes-validations" = [{
            "rule": "!self.lowerAscii().startsWith('http://') && !self.lowerAscii().startsWith('https://')",
            "message": "description cannot start with http:// or https://"
        }])
    )]
    pub description: Option<String>,

    /// The BGP MD5 authentication key: a key of a Secret in the same namespace. The key is
    /// read only by the controller, sent only with CreateBgpGroup / ModifyBgpGroupAttribute
    /// and never written to the object, events, logs or metrics. Changing the Secret's value
    /// changes the cloud key at the next resync; removing this reference clears the key
    /// (`ClearAuthKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_secret_ref: Option<SecretKeyReference>,

    /// What happens to the cloud group when this object is deleted: `Delete` (default)
    /// deletes it once no `BgpPeer` uses it any more, `Orphan` leaves it in the cloud and
    /// releases the object at once.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Take over an existing cloud group with this ID (for example one made with Terraform)
    /// instead of creating one. Explicit opt-in: the operator never adopts a group it did not
    /// create otherwise. The group must be on `routerId` in `regionId`. Cannot be added,
    /// changed or removed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6, max = 64), regex(pattern = r"^bgpg-[a-z0-9]+$"))]
    pub adopt_bgp_group_id: Option<String>,

    /// Secret in the same namespace holding the Alibaba Cloud credentials for this group
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

/// A key of a Secret in the object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyReference {
    /// Name of the Secret (same namespace as the referring object).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Key within the Secret's `data` whose value is the MD5 auth key.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// The parameters of a CreateBgpGroup call besides the placement (`regionId`, `routerId`,
/// `ipVersion`, taken from the spec), replayed verbatim after a crash. The auth key is not
/// recorded: only whether one was sent.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupCreateParams {
    /// PeerAsn sent.
    pub peer_asn: i64,
    /// LocalAsn sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<i64>,
    /// IsFakeAsn sent.
    #[serde(default)]
    pub is_fake_asn: bool,
    /// RouteQuota sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_quota: Option<i32>,
    /// Name sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether an AuthKey (read from `authKeySecretRef`) was sent. The key itself is never
    /// recorded; a replay reads it from the Secret again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_key_sent: bool,
}

impl GroupCreateParams {
    /// The create parameters for a spec.
    pub fn from_spec(spec: &BgpGroupSpec) -> Self {
        GroupCreateParams {
            peer_asn: spec.peer_asn,
            local_asn: spec.local_asn,
            is_fake_asn: spec.is_fake_asn,
            route_quota: spec.route_quota,
            name: spec.name.clone(),
            description: spec.description.clone(),
            auth_key_sent: spec.auth_key_secret_ref.is_some(),
        }
    }
}

/// Observed state of a `BgpGroup`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpGroupStatus {
    /// ID of the cloud BGP group managed for this object (`bgpg-…`). `BgpPeer`s that reference
    /// this object (`spec.bgpGroupRef`) are created in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_group_id: Option<String>,

    /// When `bgpGroupId` was recorded. Until the group has been seen once (`cloud` is set),
    /// its absence means "not visible yet" (read-after-write lag), never "deleted".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_group_id_recorded_at: Option<Time>,

    /// The `metadata.generation` that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The ClientToken of the create call in flight or last made, derived from the object's
    /// UID and `incarnation` and recorded before the call, so that a create interrupted by a
    /// crash is replayed with the same token instead of creating a second group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,

    /// The parameters sent with `clientToken` (never the auth key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_params: Option<GroupCreateParams>,

    /// When the create with `clientToken` was first requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_requested_at: Option<Time>,

    /// Number of times the group had to be created anew because it vanished from the cloud.
    /// Part of the ClientToken.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(with = "i64", range(min = 0))]
    pub incarnation: u32,

    /// True when the group was adopted (`spec.adoptBgpGroupId`) rather than created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,

    /// The Alibaba Cloud account (STS `GetCallerIdentity`) that owns the group, recorded when
    /// it is created or adopted. Credentials of another account are never used for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,

    /// Region the group was created or adopted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,

    /// VBR the group was created or adopted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,

    /// IP version the group was created or adopted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<IpVersion>,

    /// Since when the group has been in the transitional cloud status the object waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,

    /// When the operator's DeleteBgpGroup for `bgpGroupId` was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<Time>,

    /// The cloud's view of the group at the last observation (never the auth key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudGroupView>,

    /// The last error a reconcile of this object met, kept until the group is next Ready.
    /// Never holds a credential or the auth key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,

    /// When the operator last confirmed, from a cloud read, that the group exists and matches
    /// the spec (refreshed at most once per resync period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Standard conditions: `Ready`, `Reconciling` and `Stalled` (kstatus).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The cloud's view of a BGP group, as DescribeBgpGroups reports it. The auth key is never
/// copied here: only whether the cloud holds one.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudGroupView {
    /// Lifecycle status: Pending, Available, Modifying, Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Name as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ID of the virtual border router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// ASN of the on-premises side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<i64>,
    /// ASN of the Alibaba Cloud side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<i64>,
    /// Whether a fake ASN is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fake_asn: Option<bool>,
    /// IP version as the cloud holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<String>,
    /// Maximum routes per peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_limit: Option<String>,
    /// BGP hold time (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// BGP keepalive interval (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<String>,
    /// Whether the cloud holds an auth key for the group (the key itself is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_set: Option<bool>,
}

impl BgpGroup {
    /// The cloud group this object manages (status), if recorded.
    pub fn group_id(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.bgp_group_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;
    use serde_json::Value;

    use super::*;

    fn crd_json() -> Value {
        serde_json::to_value(BgpGroup::crd()).expect("CRD serialises")
    }

    fn spec_schema(crd: &Value) -> &Value {
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    }

    fn rules(schema: &Value) -> Vec<String> {
        schema["x-kubernetes-validations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["rule"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn identity_of_the_resource() {
        let crd = crd_json();
        assert_eq!(crd["metadata"]["name"], "bgpgroups.vpc.alicloud.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], "BgpGroup");
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "bgpg");
        assert_eq!(crd["spec"]["names"]["categories"][0], "alicloud");
        assert!(crd["spec"]["versions"][0]["subresources"]["status"].is_object());
    }

    #[test]
    fn required_fields_and_immutability() {
        let crd = crd_json();
        let spec = spec_schema(&crd);
        let required: Vec<&str> = spec["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, vec!["peerAsn", "regionId", "routerId"]);
        for field in ["regionId", "routerId", "ipVersion"] {
            assert_eq!(
                rules(&spec["properties"][field]),
                vec!["self == oldSelf".to_owned()],
                "{field} must be immutable"
            );
        }
        for field in [
            "peerAsn",
            "localAsn",
            "isFakeAsn",
            "routeQuota",
            "name",
            "description",
            "authKeySecretRef",
            "deletionPolicy",
        ] {
            assert!(
                !rules(&spec["properties"][field]).contains(&"self == oldSelf".to_owned()),
                "{field} must stay mutable (ModifyBgpGroupAttribute)"
            );
        }
        assert!(
            rules(spec)
                .iter()
                .any(|r| r.contains("oldSelf.adoptBgpGroupId"))
        );
    }

    #[test]
    fn patterns_follow_the_api_rules() {
        let crd = crd_json();
        let props = &spec_schema(&crd)["properties"];
        let re = |field: &str| {
            regex::Regex::new(props[field]["pattern"].as_str().expect("pattern")).expect("regex")
        };
        let name = re("name");
        for ok in ["ab", "core-1.a_b", "中文名称", "Edge01"] {
            assert!(name.is_match(ok), "{ok}");
        }
        for bad in ["1abc", "_x", "has space", "a/b", "http://x"] {
            assert!(!name.is_match(bad), "{bad}");
        }
        assert_eq!(props["name"]["maxLength"], 128);
        assert_eq!(props["description"]["maxLength"], 256);
        assert!(re("description").is_match("描述"));
        assert!(!re("description").is_match("9 lives"));
        assert!(re("routerId").is_match("vbr-bp1ctxy813985gkuk0000"));
        assert!(!re("routerId").is_match("bgpg-abc"));
        assert_eq!(props["peerAsn"]["maximum"].as_f64(), Some(4_294_967_295.0));
        assert_eq!(props["peerAsn"]["minimum"].as_f64(), Some(1.0));
    }

    #[test]
    fn local_asn_ranges_match_the_emulator() {
        for asn in [
            1,
            45104,
            64511,
            64512,
            65025,
            65534,
            65535,
            4_199_999_999,
            4_200_000_000,
            4_294_967_294,
            4_294_967_295,
        ] {
            let emulator = u32::try_from(asn)
                .map(crate::emulator::vpc::valid_local_asn)
                .unwrap_or(false);
            assert_eq!(valid_local_asn(asn), emulator, "{asn}");
        }
    }

    #[test]
    fn every_field_is_documented_and_no_key_in_status() {
        let crd = crd_json();
        let version = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
        let mut missing = Vec::new();
        fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
            if let Some(props) = schema["properties"].as_object() {
                for (name, sub) in props {
                    let p = format!("{path}.{name}");
                    if sub["description"].as_str().is_none_or(|d| d.len() < 5) {
                        missing.push(p.clone());
                    }
                    walk(&p, sub, missing);
                }
            }
        }
        walk("spec", &version["spec"], &mut missing);
        assert!(missing.is_empty(), "undocumented fields: {missing:?}");
        let status_fields = version["status"]["properties"].to_string();
        assert!(
            !status_fields.contains("\"authKey\""),
            "status must not have a key field"
        );
    }

    #[test]
    fn create_params_never_hold_the_key() {
        let spec = BgpGroupSpec {
            peer_asn: 65010,
            auth_key_secret_ref: Some(SecretKeyReference {
                name: "bgp-md5".into(),
                key: "authKey".into(),
            }),
            ..Default::default()
        };
        let params = GroupCreateParams::from_spec(&spec);
        assert!(params.auth_key_sent);
        let json = serde_json::to_value(&params).expect("json");
        assert_eq!(json["authKeySent"], true);
    }
}
