//! The `CloudIdentity` custom resource (`vpc.alicloud.dev/v1alpha1`): how the objects of one
//! namespace reach Alibaba Cloud.
//!
//! A `BgpPeer` acts with, in this order: the identity or Secret it names itself
//! (`spec.cloudIdentityRef`, `spec.credentialsSecretRef`), the `CloudIdentity` named
//! [`DEFAULT_IDENTITY`] of its namespace, then the operator-wide credential chain (which the
//! operator can forbid for all namespaces but an allow-list). Every reference is resolved in
//! the object's own namespace: a namespace can never use another namespace's identity,
//! Secret or ServiceAccount.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretReference;

/// The name of the identity a namespace's objects use when they name none.
pub const DEFAULT_IDENTITY: &str = "default";

/// Audience of the ServiceAccount tokens requested for RRSA when `audience` is omitted (the
/// client ID ACK registers for its OIDC providers).
pub const DEFAULT_AUDIENCE: &str = "sts.aliyuncs.com";

/// How the objects of this namespace authenticate to Alibaba Cloud: exactly one of `rrsa`
/// (a RAM role assumed with a token of a ServiceAccount of this namespace) and `secretRef`
/// (an AccessKey in a Secret of this namespace).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "vpc.alicloud.dev",
    version = "v1alpha1",
    kind = "CloudIdentity",
    plural = "cloudidentities",
    singular = "cloudidentity",
    shortname = "cid",
    category = "alicloud",
    namespaced,
    doc = "How the objects of one namespace reach Alibaba Cloud (RRSA role or AccessKey Secret), used by alicloud-bgp-operator.",
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.rrsa.roleArn"}"#,
    printcolumn = r#"{"name":"ServiceAccount","type":"string","jsonPath":".spec.rrsa.serviceAccountName"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.rrsa) != has(self.secretRef)",
        "message": "set exactly one of rrsa and secretRef"
    }
]))]
pub struct CloudIdentitySpec {
    /// RRSA (RAM Roles for Service Accounts): the operator requests a token of
    /// `serviceAccountName` (TokenRequest API) and exchanges it with STS
    /// `AssumeRoleWithOIDC` for temporary credentials of `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrsa: Option<RrsaIdentity>,

    /// Secret in this namespace holding an AccessKey (keys `accessKeyId`, `accessKeySecret`,
    /// optional `securityToken`). The operator must be allowed to read Secrets here (a
    /// RoleBinding to its credentials ClusterRole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,

    /// Region whose STS endpoint (`sts.<region>.aliyuncs.com`) this identity's role
    /// assumptions use, when the operator has no STS endpoint configured. Informational
    /// otherwise; it never changes the region of a `BgpPeer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 4, max = 64),
        regex(pattern = r"^[a-z]{2,4}(-[a-z0-9]+){1,4}$")
    )]
    pub default_region: Option<String>,
}

/// A RAM role assumed with a ServiceAccount token of the identity's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RrsaIdentity {
    /// The RAM role to assume, `acs:ram::<account>:role/<name>`. Its trust policy should
    /// accept only this namespace's ServiceAccount (`oidc:sub` =
    /// `system:serviceaccount:<namespace>:<serviceAccountName>`).
    #[schemars(
        length(min = 15, max = 256),
        regex(pattern = r"^acs:ram::[0-9]+:role/.+$")
    )]
    pub role_arn: String,

    /// The cluster's OIDC provider in RAM, `acs:ram::<account>:oidc-provider/<name>`.
    #[schemars(
        length(min = 24, max = 256),
        regex(pattern = r"^acs:ram::[0-9]+:oidc-provider/.+$")
    )]
    pub oidc_provider_arn: String,

    /// ServiceAccount of this namespace whose token proves the identity. The operator needs
    /// `create` on `serviceaccounts/token` in this namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub service_account_name: String,

    /// Audience of the requested token (a client ID of the OIDC provider). Default
    /// `sts.aliyuncs.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub audience: Option<String>,

    /// A RAM policy document (JSON) sent as the session `Policy` of `AssumeRoleWithOIDC`:
    /// the session may do only what both the role and this policy allow, e.g. BGP peer
    /// actions on this team's VBRs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 2048))]
    pub session_policy: Option<String>,

    /// `RoleSessionName` of the assumption (visible in ActionTrail). Default
    /// `abo-<namespace>-<identity>`, cut to 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[-a-zA-Z0-9._@]+$"))]
    pub role_session_name: Option<String>,
}

/// A reference to a `CloudIdentity` in the object's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct CloudIdentityReference {
    /// Name of the `CloudIdentity` (same namespace as the referring object).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: crate::api::Text,
}
