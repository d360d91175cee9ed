//! Conditions as data: the outcome of a reconcile becomes `Ready`/`Reconciling`/`Stalled`,
//! transition times move only on real transitions, and an unchanged status is not written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

use crate::api::conditions::{reasons, status, types};

use super::core::ObjectStatus;

/// What a reconcile concluded, in condition terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The cloud resource is Available and matches the spec.
    Ready,
    /// Work in progress (creating, waiting for Pending, modifying, deleting, retrying).
    Progressing {
        /// Condition reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// Cannot progress until something outside the controller changes.
    Stalled {
        /// Condition reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// Paused by annotation.
    Paused,
    /// `managementPolicy: Observe` found the cloud resource (Ready; never written).
    Observed,
}

struct Desired {
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
}

fn desired(outcome: &Outcome, noun: &str) -> [Desired; 3] {
    let d = |type_, status, reason, message: &str| Desired {
        type_,
        status,
        reason,
        message: message.to_owned(),
    };
    match outcome {
        Outcome::Ready => [
            d(
                types::READY,
                status::TRUE,
                reasons::AVAILABLE,
                &format!("The {noun} is Available and matches the spec"),
            ),
            d(types::RECONCILING, status::FALSE, reasons::AVAILABLE, ""),
            d(types::STALLED, status::FALSE, reasons::AVAILABLE, ""),
        ],
        Outcome::Progressing { reason, message } => [
            d(types::READY, status::FALSE, reason, message),
            d(types::RECONCILING, status::TRUE, reason, message),
            d(types::STALLED, status::FALSE, reason, ""),
        ],
        Outcome::Stalled { reason, message } => [
            d(types::READY, status::FALSE, reason, message),
            d(types::RECONCILING, status::FALSE, reason, ""),
            d(types::STALLED, status::TRUE, reason, message),
        ],
        Outcome::Observed => [
            d(
                types::READY,
                status::TRUE,
                reasons::OBSERVED,
                &format!(
                    "The {noun} exists (managementPolicy: Observe: the operator only reads it; see UpToDate for drift)"
                ),
            ),
            d(types::RECONCILING, status::FALSE, reasons::OBSERVED, ""),
            d(types::STALLED, status::FALSE, reasons::OBSERVED, ""),
        ],
        Outcome::Paused => {
            let msg = format!(
                "Paused by the {} annotation: no cloud calls are made",
                crate::api::PAUSED_ANNOTATION
            );
            [
                d(types::READY, status::UNKNOWN, reasons::PAUSED, &msg),
                d(types::RECONCILING, status::FALSE, reasons::PAUSED, ""),
                d(types::STALLED, status::FALSE, reasons::PAUSED, ""),
            ]
        }
    }
}

/// The conditions for `outcome` at `generation`, keeping each existing condition's
/// `lastTransitionTime` unless its status changes. `noun` names the cloud resource in
/// messages (`BGP peer`).
pub fn conditions_for(
    existing: &[Condition],
    outcome: &Outcome,
    noun: &str,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired(outcome, noun)
        .into_iter()
        .map(|want| {
            let old = existing.iter().find(|c| c.type_ == want.type_);
            let last_transition_time = match old {
                Some(old) if old.status == want.status => old.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: want.type_.into(),
                status: want.status.into(),
                reason: want.reason.into(),
                message: want.message.into(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The status with conditions for `outcome`, and whether it differs from `old` (when it does
/// not, the caller skips the write: no watch-event echo loops).
pub fn with_outcome<S: ObjectStatus>(
    mut status: S,
    old: Option<&S>,
    outcome: &Outcome,
    noun: &str,
    generation: Option<i64>,
    now: &Time,
) -> (S, bool) {
    let existing = old.map(|s| s.conditions()).unwrap_or_default();
    // UpToDate is set from observations (see `set_up_to_date`), not from the outcome.
    let up_to_date: Vec<Condition> = status
        .conditions()
        .iter()
        .filter(|c| c.type_ == types::UP_TO_DATE)
        .cloned()
        .collect();
    let mut conditions = conditions_for(existing, outcome, noun, generation, now);
    // Informational (never feeds Ready/Reconciling/Stalled), e.g. a peer's session.
    conditions.extend(status.derived_conditions(existing, generation, now));
    conditions.extend(up_to_date);
    *status.conditions_mut() = conditions;
    status.set_observed_generation(generation);
    let changed = old != Some(&status);
    (status, changed)
}

/// Whether the cloud peer matches the spec, as the `UpToDate` condition says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sync {
    /// Every managed field matches.
    InSync,
    /// These fields differ (`field: cloud → desired`).
    Drifted(Vec<String>),
    /// Not known (paused).
    Unknown,
}

/// Sets the `UpToDate` condition in `conditions` to `sync`, keeping its transition time
/// unless its status changes. Returns true when it turned `False` (a transition into drift).
pub fn set_up_to_date(
    conditions: &mut Vec<Condition>,
    sync: &Sync,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    use crate::api::conditions::status;
    let (cond_status, reason, message) = match sync {
        Sync::InSync => (
            status::TRUE,
            reasons::IN_SYNC,
            "The cloud peer matches the spec".to_owned(),
        ),
        Sync::Drifted(fields) => (
            status::FALSE,
            reasons::DRIFTED,
            format!("The cloud differs from the spec: {}", fields.join("; ")),
        ),
        Sync::Unknown => (
            status::UNKNOWN,
            reasons::PAUSED,
            "Not compared while paused".to_owned(),
        ),
    };
    let old = conditions.iter().position(|c| c.type_ == types::UP_TO_DATE);
    let was = old.map(|i| conditions[i].status.clone());
    let last_transition_time = match old {
        Some(i) if conditions[i].status == cond_status => {
            conditions[i].last_transition_time.clone()
        }
        _ => now.clone(),
    };
    let cond = Condition {
        type_: types::UP_TO_DATE.into(),
        status: cond_status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    };
    match old {
        Some(i) => conditions[i] = cond,
        None => conditions.push(cond),
    }
    cond_status == status::FALSE && was.as_deref() != Some(status::FALSE)
}

/// The reason of a `Stalled=True` condition, if the status has one.
pub fn stalled_reason<S: ObjectStatus>(status: &S) -> Option<&str> {
    status
        .conditions()
        .iter()
        .find(|c| c.type_ == types::STALLED && c.status == crate::api::conditions::status::TRUE)
        .map(|c| c.reason.as_str())
}

/// The Ready condition of a status, if any.
pub fn ready_condition<S: ObjectStatus>(status: &S) -> Option<&Condition> {
    status.conditions().iter().find(|c| c.type_ == types::READY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BgpPeerStatus;

    const NOUN: &str = "BGP peer";

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    #[test]
    fn ready_sets_all_three_kstatus_conditions() {
        let conds = conditions_for(&[], &Outcome::Ready, NOUN, Some(3), &at(100));
        let find = |t: &str| conds.iter().find(|c| c.type_ == t).expect("present");
        assert_eq!(find(types::READY).status, "True");
        assert_eq!(find(types::RECONCILING).status, "False");
        assert_eq!(find(types::STALLED).status, "False");
        assert!(conds.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let progressing = Outcome::Progressing {
            reason: reasons::PENDING,
            message: "waiting".into(),
        };
        let first = conditions_for(&[], &progressing, NOUN, Some(1), &at(100));
        // Same status, new message: time kept.
        let again = conditions_for(
            &first,
            &Outcome::Progressing {
                reason: reasons::MODIFYING,
                message: "other".into(),
            },
            NOUN,
            Some(1),
            &at(200),
        );
        assert!(again.iter().all(|c| c.last_transition_time == at(100)));
        // Ready flips: Ready and Reconciling move, Stalled (False → False) keeps its time.
        let ready = conditions_for(&again, &Outcome::Ready, NOUN, Some(1), &at(300));
        let time = |t: &str| {
            ready
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| c.last_transition_time.clone())
        };
        assert_eq!(time(types::READY), Some(at(300)));
        assert_eq!(time(types::RECONCILING), Some(at(300)));
        assert_eq!(time(types::STALLED), Some(at(100)));
    }

    #[test]
    fn an_unchanged_status_is_not_written() {
        let (first, changed) = with_outcome(
            BgpPeerStatus::default(),
            None,
            &Outcome::Ready,
            NOUN,
            Some(1),
            &at(1),
        );
        assert!(changed);
        let (_, changed) = with_outcome(
            first.clone(),
            Some(&first),
            &Outcome::Ready,
            NOUN,
            Some(1),
            &at(999),
        );
        assert!(!changed, "a later clock alone must not produce a write");
        let (_, changed) = with_outcome(
            first.clone(),
            Some(&first),
            &Outcome::Ready,
            NOUN,
            Some(2),
            &at(999),
        );
        assert!(changed, "a new generation is recorded");
    }

    #[test]
    fn stalled_is_abnormal_true() {
        let conds = conditions_for(
            &[],
            &Outcome::Stalled {
                reason: reasons::INVALID_SPEC,
                message: "InvalidIP.Malformed".into(),
            },
            NOUN,
            None,
            &at(1),
        );
        let stalled = conds
            .iter()
            .find(|c| c.type_ == types::STALLED)
            .expect("present");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "InvalidSpec")
        );
        assert!(stalled.message.contains("InvalidIP.Malformed"));
    }
}
