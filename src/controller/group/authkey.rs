//! The group's MD5 auth key, read from `spec.authKeySecretRef` into a [`AuthKey`] (redacted
//! `Debug`, no `Display`, never serialized). The key is read when the group is created or
//! compared with the cloud's (to notice a rotated Secret or a key changed in the console) and
//! sent only with CreateBgpGroup / ModifyBgpGroupAttribute; it is never in status, an event,
//! a log line, a metric or an error message (messages name the Secret and the key's name).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::api::conditions::reasons;
use crate::api::group::SecretKeyReference;
use crate::cloud::AuthKey;
use crate::controller::context::Context;
use crate::controller::error::{Error, Step};

/// The longest key the operator sends (the emulator's limit; the API documents none).
pub const MAX_AUTH_KEY_LEN: usize = 64;

fn unavailable(message: String) -> Error {
    Error::Refused {
        reason: reasons::AUTH_KEY_UNAVAILABLE,
        message,
    }
}

/// The key `reference` names in namespace `ns`. A missing Secret or key, a value that is not
/// UTF-8 or is empty, or a Secret the operator may not read: `Stalled` with reason
/// `AuthKeyUnavailable`, rechecked periodically (Secrets are not watched).
pub async fn read_auth_key(
    ctx: &Context,
    ns: &str,
    reference: &SecretKeyReference,
) -> Result<AuthKey, Error> {
    let name = &reference.name;
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), ns);
    let secret = match secrets.get_opt(name).await {
        Ok(secret) => secret,
        Err(kube::Error::Api(s)) if s.is_forbidden() => {
            return Err(unavailable(format!(
                "the operator may not read Secret {ns}/{name} (spec.authKeySecretRef): bind its credentials ClusterRole in namespace {ns}"
            )));
        }
        Err(e) => return Err(Error::kube(Step::ReadSecret)(e)),
    };
    let Some(secret) = secret else {
        return Err(unavailable(format!(
            "Secret {ns}/{name} (spec.authKeySecretRef) not found; references are resolved in the object's own namespace only"
        )));
    };
    let key = &reference.key;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
        .ok_or_else(|| {
            unavailable(format!(
                "Secret {ns}/{name} (spec.authKeySecretRef) has no key {key:?}"
            ))
        })?;
    let value = String::from_utf8(bytes).map_err(|_| {
        unavailable(format!(
            "the value of key {key:?} of Secret {ns}/{name} is not UTF-8 text"
        ))
    })?;
    // A trailing newline is what `echo … | kubectl create secret --from-file` leaves; it is
    // never part of an MD5 key.
    let value = value.trim_end_matches(['\n', '\r']).to_owned();
    let key_value = AuthKey::new(value);
    match key_value.char_count() {
        0 => Err(unavailable(format!(
            "the value of key {key:?} of Secret {ns}/{name} is empty"
        ))),
        n if n > MAX_AUTH_KEY_LEN => Err(unavailable(format!(
            "the value of key {key:?} of Secret {ns}/{name} is {n} characters long; at most {MAX_AUTH_KEY_LEN}"
        ))),
        _ => Ok(key_value),
    }
}

/// Whether the cloud holds the key the spec asks for: both none, or the same key.
pub fn in_sync(desired: Option<&AuthKey>, cloud: Option<&AuthKey>) -> bool {
    match (desired, cloud) {
        (None, None) => true,
        (Some(d), Some(c)) => d.matches(c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_agree_only_when_both_absent_or_equal() {
        let a = AuthKey::new("k1");
        assert!(in_sync(None, None));
        assert!(in_sync(Some(&a), Some(&AuthKey::new("k1"))));
        assert!(!in_sync(Some(&a), Some(&AuthKey::new("k2"))));
        assert!(!in_sync(Some(&a), None));
        assert!(!in_sync(None, Some(&a)));
    }
}
