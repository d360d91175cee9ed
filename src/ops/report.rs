//! What the status says beyond `Ready`/`Reconciling`/`Stalled`: `status.lastError`,
//! `status.lastSyncTime` and the `SessionEstablished` condition. Pure functions of the
//! status, the error and the time, so that none of them can make a status write happen that
//! would not be honest (and the tests need no client).
//!
//! - `lastError` is written by the error path and kept until the next confirmation that the
//!   peer matches the spec ([`note_synced`]); an identical repeat keeps its time, so a retry
//!   that fails the same way writes nothing.
//! - `lastSyncTime` is set by that confirmation when the status is written anyway (a Ready
//!   transition, a changed cloud view) and otherwise only when the stored value is at least
//!   a resync period old: at most one extra write per object per resync period, never one
//!   per reconcile.
//! - `SessionEstablished` follows `status.cloud.bgpStatus` and is informational: it never
//!   feeds `Ready`, `Reconciling` or `Stalled`, so kstatus and Argo CD see a Ready peer with
//!   a down session as Current/Healthy, never Progressing (the operator cannot bring a
//!   session up; the alert and the metrics report it).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

use crate::api::conditions::{reasons, status, types};
use crate::api::{CloudPeerView, LastError};
use crate::cloud::CloudError;
use crate::controller::core::ObjectStatus;
use crate::controller::error::Error;
use crate::controller::status::{Outcome, with_outcome};

/// The session state that counts as up.
pub const ESTABLISHED: &str = "Established";

/// The `status.lastError` for `err` at `now`.
pub fn last_error(err: &Error, now: &Time) -> LastError {
    let (action, code, message, request_id) = match err {
        Error::Cloud { action, source } => (
            (*action).to_owned(),
            source.outcome_label().to_owned(),
            cloud_message(source),
            source.request_id().map(str::to_owned),
        ),
        other => (
            other.step().to_owned(),
            other.reason().to_owned(),
            other.user_message(),
            None,
        ),
    };
    LastError {
        action,
        code,
        message: sanitize(&message),
        request_id,
        time: now.clone(),
    }
}

/// The API's own message (code and RequestId have their own fields); the whole error
/// otherwise.
fn cloud_message(source: &CloudError) -> String {
    match source {
        CloudError::Api(api) => api.message.clone(),
        other => other.to_string(),
    }
}

/// Cuts what must never reach the status: the echo of the string-to-sign in a signature
/// mismatch (it carries the AccessKey ID and the signed request), and anything after a
/// `Signature=` or a secret's key name. Also bounds the length.
fn sanitize(message: &str) -> String {
    const CUT_AT: [&str; 5] = [
        "server string to sign is",
        "string to sign",
        "Signature=",
        "AccessKeySecret",
        "accessKeySecret=",
    ];
    let lower = message.to_ascii_lowercase();
    let cut = CUT_AT
        .iter()
        .filter_map(|needle| lower.find(&needle.to_ascii_lowercase()))
        .min();
    let text = match cut {
        Some(i) => format!("{}…", message[..i].trim_end()),
        None => message.to_owned(),
    };
    let mut end = text.len().min(1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text
    }
}

/// Records `err` as `status.lastError`: a repeat of the recorded error (same action, code,
/// message and RequestId) keeps the recorded time, so it changes nothing.
pub fn record_error(recorded: &mut Option<Box<LastError>>, err: &Error, now: &Time) {
    let mut next = last_error(err, now);
    if let Some(prev) = recorded.as_ref()
        && (&prev.action, &prev.code, &prev.message, &prev.request_id)
            == (&next.action, &next.code, &next.message, &next.request_id)
    {
        next.time = prev.time.clone();
    }
    *recorded = Some(Box::new(next));
}

/// What a confirmation ([`note_synced`]) means for `time_to_ready_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstReady {
    /// The object was already Ready for this generation: nothing to count.
    No,
    /// First Ready of generation 1, and the object was never confirmed before: counted from
    /// `metadata.creationTimestamp`.
    Created,
    /// First Ready of a later generation: counted from when the operator first saw it.
    Updated(i64),
}

/// A reconcile confirmed that the peer exists and matches the spec (`Plan::UpToDate`):
/// clears `lastError` and sets `lastSyncTime` (see the module doc for when), before the
/// `Ready` status is written. Says whether this makes the object Ready for its generation
/// for the first time.
pub fn note_synced<S: ObjectStatus>(
    status: &mut S,
    stored: Option<&S>,
    noun: &str,
    generation: Option<i64>,
    now: &Time,
    resync_period: Duration,
) -> FirstReady {
    *status.last_error_mut() = None;
    *status.last_sync_time_mut() = stored.and_then(|s| s.last_sync_time().cloned());
    let due = match status.last_sync_time() {
        None => true,
        Some(at) => {
            now.0.as_millisecond() - at.0.as_millisecond()
                >= i64::try_from(resync_period.as_millis()).unwrap_or(i64::MAX)
        }
    };
    // Written anyway (a Ready transition, a new cloud view, a cleared error)? Then the
    // confirmation time costs nothing.
    let (_, changed) = with_outcome(
        status.clone(),
        stored,
        &Outcome::Ready,
        noun,
        generation,
        now,
    );
    let never_synced = status.last_sync_time().is_none();
    if due || changed {
        *status.last_sync_time_mut() = Some(now.clone());
    }
    let ready_before = stored.is_some_and(|s| {
        s.observed_generation() == generation
            && s.conditions().iter().any(|c| {
                c.type_ == types::READY
                    && c.status == status::TRUE
                    && c.observed_generation == generation
            })
    });
    match generation {
        _ if ready_before => FirstReady::No,
        Some(1) | None if never_synced => FirstReady::Created,
        Some(g) if g > 1 => FirstReady::Updated(g),
        _ => FirstReady::No,
    }
}

/// The `SessionEstablished` condition for the cloud view `cloud`, keeping the existing
/// condition's `lastTransitionTime` unless its status changes.
pub fn session_condition(
    existing: &[Condition],
    cloud: Option<&CloudPeerView>,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let state = cloud
        .and_then(|c| c.bgp_status.as_deref())
        .filter(|s| !s.is_empty());
    let (cond_status, reason, message) = match state {
        Some(ESTABLISHED) => (
            status::TRUE,
            reasons::ESTABLISHED,
            "The cloud reports the BGP session as Established".to_owned(),
        ),
        Some(other) => (
            status::FALSE,
            reasons::NOT_ESTABLISHED,
            format!(
                "The cloud reports the BGP session as {other} (read every resync period; the on-premises peer must bring it up)"
            ),
        ),
        None => (
            status::UNKNOWN,
            reasons::NOT_OBSERVED,
            "The BGP session has not been observed yet".to_owned(),
        ),
    };
    let old = existing
        .iter()
        .find(|c| c.type_ == types::SESSION_ESTABLISHED);
    let last_transition_time = match old {
        Some(old) if old.status == cond_status => old.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: types::SESSION_ESTABLISHED.into(),
        status: cond_status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BgpPeerStatus;
    use crate::cloud::ApiError;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    fn api_error(code: &str, message: &str, request_id: &str) -> Error {
        Error::Cloud {
            action: "CreateBgpPeer",
            source: CloudError::Api(ApiError::new(
                400,
                code,
                message,
                Some(request_id.to_owned()),
            )),
        }
    }

    #[test]
    fn last_error_of_a_cloud_call_names_action_code_and_request_id() {
        let e = last_error(
            &api_error("QuotaExceeded.Bgp", "Quota exceeded", "REQ-1"),
            &at(10),
        );
        assert_eq!(e.action, "CreateBgpPeer");
        assert_eq!(e.code, "QuotaExceeded.Bgp");
        assert_eq!(e.message, "Quota exceeded");
        assert_eq!(e.request_id.as_deref(), Some("REQ-1"));
        assert_eq!(e.time, at(10));
    }

    #[test]
    fn last_error_never_carries_the_string_to_sign_or_a_secret() {
        let secret = "EmulatorDemoSecretNotForProduction01";
        let e = last_error(
            &api_error(
                "SignatureDoesNotMatch",
                &format!(
                    "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&AccessKeyId%3DLTAI5t... {secret}"
                ),
                "REQ-2",
            ),
            &at(1),
        );
        let json = serde_json::to_string(&e).expect("json");
        assert!(!json.contains(secret), "{json}");
        assert!(
            !json.to_ascii_lowercase().contains("string to sign"),
            "{json}"
        );
        assert!(e.message.starts_with("Specified signature is not matched"));
        let e = last_error(
            &Error::Credentials(format!(
                "bad request Signature=abc accessKeySecret={secret}"
            )),
            &at(1),
        );
        assert!(!e.message.contains(secret), "{}", e.message);
        assert_eq!(
            (e.action.as_str(), e.code.as_str()),
            ("ResolveCredentials", "CredentialsError")
        );
    }

    #[test]
    fn an_identical_repeat_keeps_the_time_a_new_request_id_does_not() {
        let mut s = BgpPeerStatus::default();
        record_error(
            &mut s.last_error,
            &Error::Credentials("no Secret x".into()),
            &at(1),
        );
        record_error(
            &mut s.last_error,
            &Error::Credentials("no Secret x".into()),
            &at(50),
        );
        assert_eq!(s.last_error.as_ref().map(|e| e.time.clone()), Some(at(1)));
        record_error(
            &mut s.last_error,
            &api_error("Throttling.User", "slow", "A"),
            &at(60),
        );
        record_error(
            &mut s.last_error,
            &api_error("Throttling.User", "slow", "B"),
            &at(70),
        );
        let e = s.last_error.expect("recorded");
        assert_eq!((e.request_id.as_deref(), e.time), (Some("B"), at(70)));
    }

    fn ready_at(generation: i64, synced: Option<i64>) -> BgpPeerStatus {
        let (status, _) = with_outcome(
            BgpPeerStatus {
                last_sync_time: synced.map(at),
                ..BgpPeerStatus::default()
            },
            None,
            &Outcome::Ready,
            "BGP peer",
            Some(generation),
            &at(100),
        );
        status
    }

    #[test]
    fn sync_time_is_refreshed_at_most_once_per_resync_period() {
        let period = Duration::from_secs(600);
        let stored = ready_at(1, Some(100));
        // A resync 5 minutes later that finds nothing new: no write, time kept.
        let mut s = stored.clone();
        assert_eq!(
            note_synced(&mut s, Some(&stored), "BGP peer", Some(1), &at(400), period),
            FirstReady::No
        );
        assert_eq!(s.last_sync_time, Some(at(100)));
        let (_, changed) = with_outcome(
            s,
            Some(&stored),
            &Outcome::Ready,
            "BGP peer",
            Some(1),
            &at(400),
        );
        assert!(
            !changed,
            "a resync within the period must not write the status"
        );
        // A period later: refreshed (one write).
        let mut s = stored.clone();
        note_synced(&mut s, Some(&stored), "BGP peer", Some(1), &at(700), period);
        assert_eq!(s.last_sync_time, Some(at(700)));
        // Written anyway (the session state changed): refreshed too.
        let mut s = stored.clone();
        s.cloud = Some(CloudPeerView {
            bgp_status: Some("Down".into()),
            ..CloudPeerView::default()
        });
        note_synced(&mut s, Some(&stored), "BGP peer", Some(1), &at(400), period);
        assert_eq!(s.last_sync_time, Some(at(400)));
    }

    #[test]
    fn first_ready_is_counted_once_per_generation() {
        let period = Duration::from_secs(600);
        // Never synced, generation 1: a create.
        let pending = BgpPeerStatus::default();
        let mut s = pending.clone();
        assert_eq!(
            note_synced(&mut s, Some(&pending), "BGP peer", Some(1), &at(5), period),
            FirstReady::Created
        );
        // Ready at 1, then an error flipped Ready off at the same generation: not again.
        let mut failed = ready_at(1, Some(100));
        failed.conditions.retain(|c| c.type_ != types::READY);
        let mut s = failed.clone();
        assert_eq!(
            note_synced(&mut s, Some(&failed), "BGP peer", Some(1), &at(500), period),
            FirstReady::No
        );
        // A new generation.
        let stored = ready_at(1, Some(100));
        let mut s = stored.clone();
        assert_eq!(
            note_synced(&mut s, Some(&stored), "BGP peer", Some(2), &at(500), period),
            FirstReady::Updated(2)
        );
        // Written by an older version (Ready, no lastSyncTime): not a create.
        let old = ready_at(1, None);
        let mut s = old.clone();
        assert_eq!(
            note_synced(&mut s, Some(&old), "BGP peer", Some(1), &at(500), period),
            FirstReady::No
        );
    }

    #[test]
    fn session_condition_follows_the_cloud_and_keeps_its_transition_time() {
        let view = |s: &str| CloudPeerView {
            bgp_status: Some(s.into()),
            ..CloudPeerView::default()
        };
        let none = session_condition(&[], None, Some(1), &at(1));
        assert_eq!(
            (none.status.as_str(), none.reason.as_str()),
            ("Unknown", "NotObserved")
        );
        let up = session_condition(&[none], Some(&view("Established")), Some(1), &at(2));
        assert_eq!(
            (up.status.as_str(), up.reason.as_str()),
            ("True", "Established")
        );
        let still = session_condition(
            std::slice::from_ref(&up),
            Some(&view("Established")),
            Some(1),
            &at(9),
        );
        assert_eq!(still.last_transition_time, at(2));
        let down = session_condition(&[still], Some(&view("Down")), Some(1), &at(10));
        assert_eq!(
            (down.status.as_str(), down.reason.as_str()),
            ("False", "NotEstablished")
        );
        assert!(down.message.contains("Down"));
        assert_eq!(down.last_transition_time, at(10));
    }

    #[test]
    fn kubectl_explain_documents_every_new_status_field() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::api::BgpPeer::crd()).expect("json");
        let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"];
        let described =
            |v: &serde_json::Value| v["description"].as_str().is_some_and(|d| d.len() > 20);
        assert!(described(&status["lastSyncTime"]), "lastSyncTime");
        assert!(described(&status["lastError"]), "lastError");
        for field in ["action", "code", "message", "requestId", "time"] {
            assert!(
                described(&status["lastError"]["properties"][field]),
                "lastError.{field}"
            );
        }
    }
}
