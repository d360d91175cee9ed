//! Which credentials an object uses, and which Alibaba Cloud account they belong to.
//!
//! Precedence (every reference is resolved in the object's own namespace, never another):
//! 1. the object's own reference: `spec.cloudIdentityRef` (a [`CloudIdentity`]) or
//!    `spec.credentialsSecretRef` (a Secret; at most one of the two, by CEL);
//! 2. the namespace's `CloudIdentity` named `default`;
//! 3. the operator-wide [`crate::cloud::CredentialChain`], unless the operator forbids it for
//!    the namespace ([`TenancyConfig::operator_credentials`]).
//!
//! Secrets are read by name with `get` when the reconcile needs the cloud, never cached and
//! never listed or watched: the operator needs no `list`/`watch` on Secrets anywhere, and
//! only `get` in namespaces that opted in (a RoleBinding to its credentials ClusterRole). An
//! object stalled on credentials is re-read every [`TenancyConfig::credentials_recheck`]
//! (see `run`), which replaces the Secret watch.
//!
//! RRSA identities: the operator requests a token of the identity's ServiceAccount (TokenRequest
//! API, in the identity's namespace) and exchanges it with STS `AssumeRoleWithOIDC`; the
//! temporary credentials are cached per identity (UID and generation) until shortly before they
//! expire, failures for one recheck interval.
//!
//! The account of a set of credentials comes from STS `GetCallerIdentity`, cached per
//! AccessKey ID: a peer is bound to the account that created or adopted it, whichever identity
//! brought the credentials (`AccountMismatch` otherwise).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use crate::api::identity::{
    CloudIdentity, CloudIdentityReference, DEFAULT_AUDIENCE, DEFAULT_IDENTITY, RrsaIdentity,
};
use crate::api::{BgpPeer, SecretReference, secret_keys};
use crate::cloud::Credentials;
use crate::cloud::credentials::{OidcTokenRequest, STS_DURATION_SECONDS, needs_refresh};

use super::context::Context;
use super::error::{Error, Step};

/// How long the account of an AccessKey ID is remembered (an AccessKey never changes
/// account; the bound only limits the cache).
pub const ACCOUNT_TTL: Duration = Duration::from_secs(3600);

/// Default name of the ClusterRole (and of the RoleBinding that opts a namespace in) that lets
/// the operator read credentials Secrets.
pub const DEFAULT_CREDENTIALS_CLUSTER_ROLE: &str = "alicloud-bgp-operator-credentials";
/// Default name of the ClusterRole (and RoleBinding) that lets the operator request
/// ServiceAccount tokens for RRSA identities.
pub const DEFAULT_TOKEN_CLUSTER_ROLE: &str = "alicloud-bgp-operator-tokens";

/// Which namespaces may use the operator-wide credentials.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum OperatorCredentials {
    /// Every namespace (the default).
    #[default]
    AllNamespaces,
    /// Only these (empty: none).
    Only(BTreeSet<String>),
}

impl OperatorCredentials {
    /// Whether objects of `ns` may act with the operator-wide credentials.
    pub fn allows(&self, ns: &str) -> bool {
        match self {
            OperatorCredentials::AllNamespaces => true,
            OperatorCredentials::Only(set) => set.contains(ns),
        }
    }
}

/// Multi-tenancy settings of the controller.
#[derive(Clone, Debug)]
pub struct TenancyConfig {
    /// Who may use the operator-wide credentials.
    pub operator_credentials: OperatorCredentials,
    /// The ClusterRole granting `get` on Secrets; a namespace opts in with a RoleBinding of the
    /// same name to it (named in error messages).
    pub credentials_cluster_role: String,
    /// The ClusterRole granting `create` on `serviceaccounts/token` (RRSA identities).
    pub token_cluster_role: String,
    /// The operator's ServiceAccount as `namespace:name` (for the messages' RoleBinding).
    pub service_account: Option<String>,
    /// How often an object stalled on credentials is looked at again (bounded re-read of its
    /// Secret or identity, instead of a Secret watch).
    pub credentials_recheck: Duration,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        TenancyConfig {
            operator_credentials: OperatorCredentials::AllNamespaces,
            credentials_cluster_role: DEFAULT_CREDENTIALS_CLUSTER_ROLE.to_owned(),
            token_cluster_role: DEFAULT_TOKEN_CLUSTER_ROLE.to_owned(),
            service_account: None,
            credentials_recheck: Duration::from_secs(30),
        }
    }
}

impl TenancyConfig {
    /// The `kubectl` command that creates the RoleBinding of `cluster_role` in `ns`.
    fn binding_hint(&self, cluster_role: &str, ns: &str) -> String {
        let sa = self
            .service_account
            .as_deref()
            .unwrap_or("<operator-namespace>:<operator-serviceaccount>");
        format!(
            "create RoleBinding {cluster_role} in namespace {ns} to ClusterRole {cluster_role} for \
             ServiceAccount {sa} (kubectl -n {ns} create rolebinding {cluster_role} \
             --clusterrole={cluster_role} --serviceaccount={sa}, or add {ns} to the chart's \
             tenancy values)"
        )
    }
}

/// Cached STS credentials of one RRSA identity (or its last failure).
#[derive(Default)]
struct StsEntry {
    creds: Option<(Credentials, Timestamp)>,
    failure: Option<(String, Instant)>,
}

/// Identity key: namespace, name, UID and generation (a changed spec is a new identity).
type IdentityKey = (String, String, String, i64);

/// Runtime state of per-namespace identities, shared by all reconciles.
#[derive(Default)]
pub struct Identities {
    store: OnceLock<Store<CloudIdentity>>,
    synced: AtomicBool,
    sts: Mutex<HashMap<IdentityKey, Arc<tokio::sync::Mutex<StsEntry>>>>,
}

impl Identities {
    /// Hands the controller's CloudIdentity cache over (from `run`).
    pub fn set_store(&self, store: Store<CloudIdentity>) {
        let _ = self.store.set(store);
    }

    /// Marks the cache as complete (its first listing arrived).
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
    }

    fn entry(&self, key: IdentityKey) -> Arc<tokio::sync::Mutex<StsEntry>> {
        let Ok(mut map) = self.sts.lock() else {
            return Arc::default();
        };
        if map.len() > 4096 {
            map.clear();
        }
        map.entry(key).or_default().clone()
    }
}

/// Where an object's credentials come from (for messages and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `spec.cloudIdentityRef` or the namespace's `default` identity.
    Identity {
        /// `namespace/name` of the CloudIdentity.
        name: String,
    },
    /// `spec.credentialsSecretRef`.
    Secret {
        /// `namespace/name` of the Secret.
        name: String,
    },
    /// The operator-wide chain.
    OperatorWide,
}

/// What credential resolution needs of an object: its namespace (a `ResourceExt`) and its
/// `spec.cloudIdentityRef` / `spec.credentialsSecretRef`. Every cloud-backed kind has both.
pub trait CredentialRefs: ResourceExt {
    /// `spec.cloudIdentityRef`.
    fn cloud_identity_ref(&self) -> Option<&CloudIdentityReference>;
    /// `spec.credentialsSecretRef`.
    fn credentials_secret_ref(&self) -> Option<&SecretReference>;
}

super::core::credential_refs!(BgpPeer);

/// The credentials of `obj` (see the module docs for the precedence).
pub async fn credentials<O: CredentialRefs>(obj: &O, ctx: &Context) -> Result<Credentials, Error> {
    resolve(obj, ctx).await.map(|(c, _)| c)
}

/// The credentials of `obj` and where they came from.
pub async fn resolve<O: CredentialRefs>(
    obj: &O,
    ctx: &Context,
) -> Result<(Credentials, Source), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let tenancy = &ctx.config.tenancy;
    if let Some(r) = obj.cloud_identity_ref() {
        let Some(identity) = find_identity(ctx, &ns, &r.name).await? else {
            return Err(Error::Credentials(format!(
                "CloudIdentity {ns}/{} (spec.cloudIdentityRef) not found; references are resolved \
                 in the object's own namespace only",
                r.name
            )));
        };
        return identity_credentials(ctx, &identity).await;
    }
    if let Some(r) = obj.credentials_secret_ref() {
        let creds = secret_credentials(ctx, &ns, &r.name, "spec.credentialsSecretRef").await?;
        return Ok((
            creds,
            Source::Secret {
                name: format!("{ns}/{}", r.name),
            },
        ));
    }
    if let Some(identity) = find_identity(ctx, &ns, DEFAULT_IDENTITY).await? {
        return identity_credentials(ctx, &identity).await;
    }
    if !tenancy.operator_credentials.allows(&ns) {
        return Err(Error::Credentials(format!(
            "no credentials for namespace {ns}: the object names no identity \
             (spec.cloudIdentityRef, spec.credentialsSecretRef), the namespace has no \
             CloudIdentity \"{DEFAULT_IDENTITY}\", and the operator-wide credentials are \
             forbidden for this namespace (--forbid-operator-credentials); create CloudIdentity \
             {ns}/{DEFAULT_IDENTITY} or name one"
        )));
    }
    let creds = ctx
        .credentials
        .credentials()
        .await
        .map_err(|e| Error::Credentials(format!("operator-wide credentials: {e}")))?;
    Ok((creds, Source::OperatorWide))
}

/// The CloudIdentity `ns/name`: from the cache once it has synced, else read directly.
async fn find_identity(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<Option<Arc<CloudIdentity>>, Error> {
    let ids = &ctx.identities;
    if let Some(store) = ids.store.get()
        && ids.synced.load(Ordering::SeqCst)
    {
        return Ok(store.get(&ObjectRef::new(name).within(ns)));
    }
    let api: Api<CloudIdentity> = Api::namespaced(ctx.kube.clone(), ns);
    match api.get_opt(name).await {
        Ok(found) => Ok(found.map(Arc::new)),
        // No CloudIdentity CRD installed (a plain-text "404 page not found" that `get_opt`
        // does not read as "absent"): no identity exists.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(kube::Error::Api(s)) if s.is_forbidden() => Err(Error::Credentials(format!(
            "the operator may not read CloudIdentity {ns}/{name}: {}",
            s.message
        ))),
        Err(e) => Err(Error::kube(Step::ReadIdentity)(e)),
    }
}

async fn identity_credentials(
    ctx: &Context,
    identity: &CloudIdentity,
) -> Result<(Credentials, Source), Error> {
    let ns = identity.namespace().unwrap_or_default();
    let name = identity.name_any();
    let source = Source::Identity {
        name: super::key::namespaced_key(&ns, &name),
    };
    let spec = &identity.spec;
    let creds = match (&spec.rrsa, &spec.secret_ref) {
        (Some(rrsa), _) => rrsa_credentials(ctx, identity, rrsa).await?,
        (None, Some(secret)) => {
            secret_credentials(
                ctx,
                &ns,
                &secret.name,
                &format!("CloudIdentity {name} spec.secretRef"),
            )
            .await?
        }
        (None, None) => {
            return Err(Error::Credentials(format!(
                "CloudIdentity {ns}/{name} sets neither rrsa nor secretRef"
            )));
        }
    };
    Ok((creds, source))
}

/// STS credentials of an RRSA identity: cached, or a fresh TokenRequest + AssumeRoleWithOIDC.
async fn rrsa_credentials(
    ctx: &Context,
    identity: &CloudIdentity,
    rrsa: &RrsaIdentity,
) -> Result<Credentials, Error> {
    let ns = identity.namespace().unwrap_or_default();
    let name = identity.name_any();
    let key = (
        ns.clone(),
        name.clone(),
        identity.uid().unwrap_or_default(),
        identity.metadata.generation.unwrap_or_default(),
    );
    let entry = ctx.identities.entry(key);
    let mut entry = entry.lock().await;
    let now = Timestamp::now();
    if let Some((creds, expires)) = &entry.creds
        && !needs_refresh(now, *expires)
    {
        return Ok(creds.clone());
    }
    if let Some((message, at)) = &entry.failure
        && at.elapsed() < ctx.config.tenancy.credentials_recheck
    {
        return Err(Error::Credentials(message.clone()));
    }
    match assume_identity(ctx, &ns, &name, identity, rrsa).await {
        Ok((creds, expires)) => {
            entry.creds = Some((creds.clone(), expires));
            entry.failure = None;
            Ok(creds)
        }
        Err(err) => {
            // Still-valid cached credentials outlive a failed refresh.
            if let Some((creds, expires)) = &entry.creds
                && now < *expires
            {
                tracing::warn!(identity = %super::key::namespaced_key(&ns, &name), error = %err, "STS refresh failed; using cached credentials until they expire");
                return Ok(creds.clone());
            }
            if let Error::Credentials(message) = &err {
                entry.failure = Some((message.clone(), Instant::now()));
            }
            Err(err)
        }
    }
}

async fn assume_identity(
    ctx: &Context,
    ns: &str,
    name: &str,
    identity: &CloudIdentity,
    rrsa: &RrsaIdentity,
) -> Result<(Credentials, Timestamp), Error> {
    let token = service_account_token(ctx, ns, rrsa).await?;
    let session_name = rrsa
        .role_session_name
        .clone()
        .unwrap_or_else(|| default_session_name(ns, name));
    let request = OidcTokenRequest {
        role_arn: &rrsa.role_arn,
        provider_arn: &rrsa.oidc_provider_arn,
        token: &token,
        session_name: &session_name,
        policy: rrsa.session_policy.as_deref(),
        region: identity.spec.default_region.as_deref(),
    };
    ctx.credentials
        .assume_role_with_oidc_token(&request)
        .await
        .map_err(|e| match e.class() {
            crate::cloud::ErrorClass::Credentials => Error::Credentials(format!(
                "CloudIdentity {ns}/{name} (role {}): {e}",
                rrsa.role_arn
            )),
            _ => Error::cloud("AssumeRoleWithOIDC")(e),
        })
}

/// `abo-<namespace>-<identity>`, reduced to the characters and length STS accepts.
fn default_session_name(ns: &str, name: &str) -> String {
    let raw: String = format!("abo-{ns}-{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    raw
}

/// A token of the identity's ServiceAccount (same namespace) for the identity's audience.
async fn service_account_token(
    ctx: &Context,
    ns: &str,
    rrsa: &RrsaIdentity,
) -> Result<String, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.kube.clone(), ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![
                rrsa.audience
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
            ],
            expiration_seconds: Some(i64::from(STS_DURATION_SECONDS)),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let sa = &rrsa.service_account_name;
    let answer = api
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.is_forbidden() => {
                let hint = ctx
                    .config
                    .tenancy
                    .binding_hint(&ctx.config.tenancy.token_cluster_role, ns);
                Error::Credentials(format!(
                    "the operator may not request tokens of ServiceAccount {ns}/{sa} (RRSA identities \
                     of namespace {ns} are not enabled): {hint}"
                ))
            }
            kube::Error::Api(s) if s.is_not_found() => Error::Credentials(format!(
                "ServiceAccount {ns}/{sa} (rrsa.serviceAccountName) not found"
            )),
            _ => Error::kube(Step::RequestToken)(e),
        })?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Credentials(format!("TokenRequest for {ns}/{sa} returned no token")))
}

/// The AccessKey in Secret `ns/name`; `what` names the reference in messages.
async fn secret_credentials(
    ctx: &Context,
    ns: &str,
    name: &str,
    what: &str,
) -> Result<Credentials, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), ns);
    let secret = secrets.get_opt(name).await.map_err(|e| {
        if matches!(&e, kube::Error::Api(s) if s.is_forbidden()) {
            let hint = ctx
                .config
                .tenancy
                .binding_hint(&ctx.config.tenancy.credentials_cluster_role, ns);
            Error::Credentials(format!(
                "the operator may not read Secret {ns}/{name} ({what}): namespace {ns} has not \
                 opted in; {hint}"
            ))
        } else {
            Error::kube(Step::ReadSecret)(e)
        }
    })?;
    let Some(secret) = secret else {
        return Err(Error::Credentials(format!(
            "Secret {ns}/{name} ({what}) not found; references are resolved in the object's own \
             namespace only"
        )));
    };
    let data = secret.data.unwrap_or_default();
    let get = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing =
        |key: &str| Error::Credentials(format!("Secret {ns}/{name} has no non-empty key {key:?}"));
    let id = get(secret_keys::ACCESS_KEY_ID).ok_or_else(|| missing(secret_keys::ACCESS_KEY_ID))?;
    let secret_value = get(secret_keys::ACCESS_KEY_SECRET)
        .ok_or_else(|| missing(secret_keys::ACCESS_KEY_SECRET))?;
    Ok(Credentials::new(
        id,
        secret_value,
        get(secret_keys::SECURITY_TOKEN),
    ))
}

/// Whether a change of `identity` can change the credentials of `obj`: it names it, or it is
/// its namespace's `default` and `obj` names nothing.
pub fn uses_identity(obj: &BgpPeer, identity_ns: Option<&str>, identity: &str) -> bool {
    refers_to_identity(obj, identity_ns, identity)
}

/// [`uses_identity`] for any kind with credential references.
pub fn refers_to_identity<O: CredentialRefs>(
    obj: &O,
    identity_ns: Option<&str>,
    identity: &str,
) -> bool {
    if obj.namespace().as_deref() != identity_ns {
        return false;
    }
    match (obj.cloud_identity_ref(), obj.credentials_secret_ref()) {
        (Some(r), _) => r.name == identity,
        (None, Some(_)) => false,
        (None, None) => identity == DEFAULT_IDENTITY,
    }
}

/// The Alibaba Cloud account ID of `creds` (cached per AccessKey ID).
pub async fn account_of(ctx: &Context, creds: &Credentials) -> Result<String, Error> {
    if let Some(account) = ctx.cached_account(creds.access_key_id()) {
        return Ok(account);
    }
    let identity = ctx
        .vpc
        .get_caller_identity(creds)
        .await
        .map_err(Error::cloud("GetCallerIdentity"))?;
    ctx.remember_account(creds.access_key_id(), &identity.account_id);
    Ok(identity.account_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::identity::CloudIdentityReference;
    use crate::api::{BgpPeerSpec, SecretReference};

    fn peer(ns: &str, identity: Option<&str>, secret: Option<&str>) -> BgpPeer {
        let mut spec: BgpPeerSpec = serde_json::from_value(serde_json::json!({
            "regionId": "cn-shanghai", "bgpGroupId": "bgpg-aaaa",
        }))
        .expect("spec");
        spec.cloud_identity_ref = identity.map(|n| CloudIdentityReference { name: n.into() });
        spec.credentials_secret_ref = secret.map(|n| SecretReference { name: n.into() });
        let mut o = BgpPeer::new("p", spec);
        o.metadata.namespace = Some(ns.into());
        o
    }

    #[test]
    fn identity_changes_wake_the_objects_that_use_them() {
        let cases = [
            // (reason, object, identity namespace, identity name, woken)
            ("named", peer("a", Some("x"), None), "a", "x", true),
            ("other name", peer("a", Some("x"), None), "a", "y", false),
            (
                "other namespace",
                peer("a", Some("x"), None),
                "b",
                "x",
                false,
            ),
            ("default used", peer("a", None, None), "a", "default", true),
            (
                "default of another namespace",
                peer("a", None, None),
                "b",
                "default",
                false,
            ),
            (
                "named overrides default",
                peer("a", Some("x"), None),
                "a",
                "default",
                false,
            ),
            (
                "secret overrides default",
                peer("a", None, Some("s")),
                "a",
                "default",
                false,
            ),
        ];
        for (reason, obj, ns, name, woken) in cases {
            assert_eq!(uses_identity(&obj, Some(ns), name), woken, "{reason}");
        }
    }

    #[test]
    fn operator_credentials_allow_list() {
        assert!(OperatorCredentials::AllNamespaces.allows("a"));
        let only = OperatorCredentials::Only(["a".to_owned()].into());
        assert!(only.allows("a"));
        assert!(!only.allows("b"));
        assert!(!OperatorCredentials::Only(BTreeSet::new()).allows("a"));
    }

    #[test]
    fn messages_name_the_exact_role_binding() {
        let t = TenancyConfig {
            service_account: Some("ops:abo".into()),
            ..TenancyConfig::default()
        };
        let hint = t.binding_hint(DEFAULT_CREDENTIALS_CLUSTER_ROLE, "team-b");
        assert!(
            hint.contains(
                "kubectl -n team-b create rolebinding alicloud-bgp-operator-credentials \
                 --clusterrole=alicloud-bgp-operator-credentials --serviceaccount=ops:abo"
            ),
            "{hint}"
        );
    }

    #[test]
    fn session_names_are_valid() {
        assert_eq!(
            default_session_name("team-a", "default"),
            "abo-team-a-default"
        );
        assert_eq!(default_session_name(&"n".repeat(80), "x").len(), 64);
    }
}
