//! Which credentials an object uses, and which Alibaba Cloud account they belong to.
//!
//! An object with `spec.credentialsSecretRef` uses the keys of that Secret (read when the
//! reconcile needs the cloud, never cached); any other object uses the operator-wide chain.
//! The account of a set of credentials comes from STS `GetCallerIdentity`, cached per
//! AccessKey ID: a peer is bound to the account that created or adopted it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use crate::api::{BgpPeer, secret_keys};
use crate::cloud::Credentials;

use super::context::Context;
use super::error::Error;

/// How long the account of an AccessKey ID is remembered (an AccessKey never changes
/// account; the bound only limits the cache).
pub const ACCOUNT_TTL: Duration = Duration::from_secs(3600);

/// The credentials of `obj`: its Secret's keys, or the operator-wide chain.
pub async fn credentials(obj: &BgpPeer, ctx: &Context) -> Result<Credentials, Error> {
    let Some(secret_ref) = &obj.spec.credentials_secret_ref else {
        return ctx
            .credentials
            .credentials()
            .await
            .map_err(|e| Error::Credentials(format!("operator-wide credentials: {e}")));
    };
    let ns = obj.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &ns);
    let secret = secrets.get_opt(&secret_ref.name).await.map_err(|e| {
        if matches!(&e, kube::Error::Api(s) if s.is_forbidden()) {
            Error::Credentials(format!(
                "the operator may not read Secret {ns}/{}: {e}",
                secret_ref.name
            ))
        } else {
            Error::Kube(e)
        }
    })?;
    let Some(secret) = secret else {
        return Err(Error::Credentials(format!(
            "Secret {ns}/{} (spec.credentialsSecretRef) not found",
            secret_ref.name
        )));
    };
    let data = secret.data.unwrap_or_default();
    let get = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing = |key: &str| {
        Error::Credentials(format!(
            "Secret {ns}/{} has no non-empty key {key:?}",
            secret_ref.name
        ))
    };
    let id = get(secret_keys::ACCESS_KEY_ID).ok_or_else(|| missing(secret_keys::ACCESS_KEY_ID))?;
    let secret_value = get(secret_keys::ACCESS_KEY_SECRET)
        .ok_or_else(|| missing(secret_keys::ACCESS_KEY_SECRET))?;
    Ok(Credentials::new(
        id,
        secret_value,
        get(secret_keys::SECURITY_TOKEN),
    ))
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
