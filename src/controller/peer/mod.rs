//! The BgpPeer kind on the shared skeleton ([`super::core`]): one BGP peer of a BGP group
//! per object.
//!
//! - [`plan`]: the pure decision (`plan_apply` → [`plan::ApplyStep`], `plan_cleanup` →
//!   [`plan::CleanupStep`]), table-tested in `plan_tests.rs`.
//! - `observation`: the read of the cloud (through the shared [`super::observe`] observer).
//! - `apply` / `cleanup`: the steps carried out (`ensure_peer`, `ensure_peer_absent`).
//! - [`create`]: the token-before-create protocol, replay and verification.
//! - [`claims`]: one owner per cloud peer. [`references`]: `bgpGroupRef`.
//! - [`convert`]: the cloud's answer as status.
//! - this file: the kind's `CloudObject` impl and what every step of a peer shares
//!   (credentials and account, plan inputs, pause, waits).

mod apply;
pub mod claims;
mod cleanup;
pub mod convert;
pub mod create;
mod observation;
pub mod plan;
pub mod references;

use apply::ensure_peer;
use cleanup::ensure_peer_absent;
use observation::{Look, observe};

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::debug;

use crate::api::conditions::{events, reasons, status};
use crate::api::{
    BgpPeer, BgpPeerStatus, CreateParams, DELETION_PROTECTION_ANNOTATION, DeletionPolicy,
    DriftPolicy, FINALIZER, IpVersion, ManagementPolicy,
};
use crate::cloud::{
    BgpPeerInfo, Credentials, DeleteBgpPeerRequest, ErrorClass, ModifyBgpPeerAttributeRequest,
};
use crate::ops::events::EventType;

use super::context::Context;
use super::core::{self, CloudObject, is_paused};
use super::credentials::{account_of, credentials};
use super::error::{Error, delete_found_nothing};
use super::observe::{Lookup, ReadRequest};
use super::status::{Outcome, Sync, set_up_to_date};
use super::timing::{jittered, next_tick, resync_period};
use create::{Settled, replay, replay_expired, start_create, verify_create};
use plan::{
    ApplyStep, Claim, CleanupStep, Left, Observation, ObservedPeer, PeerDiff, PlanInput,
    describe_drift, diff, modify_call, plan_apply, plan_cleanup,
};

/// One reconcile of a BgpPeer.
pub(super) type Reconciler<'a> = core::Reconciler<'a, BgpPeer>;

/// The region of an object that will create its peer and has not yet (its create is not in
/// flight and has not failed): managed fully, not adopting, not paused, not deleting, no
/// peer recorded, no error or wait reported. The observer holds region listings back while
/// such objects remain (see [`crate::controller::observe::PeerObserver::set_awaiting_writes`]).
pub fn awaits_create(obj: &BgpPeer) -> Option<&str> {
    let idle = obj.status.as_ref().is_none_or(|s| {
        s.bgp_peer_id.is_none()
            && s.last_error.is_none()
            && s.waiting_since.is_none()
            && !s.conditions.iter().any(|c| {
                c.type_ == crate::api::conditions::types::STALLED && c.status == status::TRUE
            })
    });
    (idle
        && obj.metadata.deletion_timestamp.is_none()
        && obj.spec.management_policy == ManagementPolicy::Full
        && obj.spec.adopt_bgp_peer_id.is_none()
        && !is_paused(obj))
    .then_some(obj.spec.region_id.as_str())
}

/// Whether the object carries the deletion protection annotation set to `"true"`.
fn deletion_protected(obj: &BgpPeer) -> bool {
    obj.annotations()
        .get(DELETION_PROTECTION_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The region and group of an object being deleted whose peer we will delete and have not asked the
/// cloud to yet (recorded, ours to delete, no delete accepted, no error or protection in the
/// way). While such objects remain, the region's removals go on: the observer does not list
/// a paged region for readers awaiting their deletes (such a listing is inconsistent and
/// confirms nobody; see [`crate::controller::observe::PeerObserver::set_awaiting_writes`]).
pub fn awaits_delete(obj: &BgpPeer) -> Option<(&str, &str)> {
    let status = obj.status.as_ref()?;
    (obj.metadata.deletion_timestamp.is_some()
        && obj.finalizers().iter().any(|f| f == FINALIZER)
        && status.bgp_peer_id.is_some()
        && status.delete_requested_at.is_none()
        && status.last_error.is_none()
        && obj.spec.deletion_policy == DeletionPolicy::Delete
        && obj.spec.management_policy == ManagementPolicy::Full
        && !is_paused(obj)
        && !deletion_protected(obj))
    .then(|| {
        (
            status.region_id.as_deref().unwrap_or(&obj.spec.region_id),
            status
                .bgp_group_id
                .as_deref()
                .unwrap_or(&obj.spec.bgp_group_id),
        )
    })
}

core::object_status!(
    BgpPeerStatus,
    // `SessionEstablished`, from the cloud view (see [`crate::ops::report`]).
    derived = |s: &BgpPeerStatus, existing, generation, now| {
        vec![crate::ops::report::session_condition(
            existing,
            s.cloud.as_ref(),
            generation,
            now,
        )]
    }
);

impl CloudObject for BgpPeer {
    type Status = BgpPeerStatus;
    const KIND: &'static str = crate::ops::metrics::KIND_BGP_PEER;
    const NOUN: &'static str = "BGP peer";
    const FINALIZER: &'static str = FINALIZER;

    fn status(&self) -> Option<&BgpPeerStatus> {
        self.status.as_ref()
    }

    fn management_policy(&self) -> ManagementPolicy {
        self.spec.management_policy
    }

    async fn dereference(
        obj: &BgpPeer,
        ctx: &Context,
        deleting: bool,
    ) -> Result<Option<BgpPeer>, Error> {
        references::dereference(obj, ctx, deleting).await
    }

    /// One span per reconcile carries the object and its cloud peer ID, so every log line
    /// (cloud request IDs on errors included) can be traced to its object.
    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            bgp_peer_id = r.obj.peer_id().unwrap_or(""),
            generation = r.obj.metadata.generation.unwrap_or_default(),
        )
    )]
    async fn ensure(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_peer(r).await
    }

    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            bgp_peer_id = r.obj.peer_id().unwrap_or(""),
            generation = r.obj.metadata.generation.unwrap_or_default(),
            deleting = true,
        )
    )]
    async fn ensure_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_peer_absent(r).await
    }
}

impl Reconciler<'_> {
    /// The parameters of the create in flight: as recorded with its token, or from the spec.
    pub(super) fn create_params(&self) -> CreateParams {
        self.status
            .create_params
            .clone()
            .unwrap_or_else(|| CreateParams::from_spec(&self.obj.spec))
    }

    /// The region the peer lives in: as recorded when it was made, else the spec's.
    pub(super) fn region(&self) -> &str {
        self.status
            .region_id
            .as_deref()
            .unwrap_or(&self.obj.spec.region_id)
    }

    /// The group the peer was made in: as recorded, else the spec's.
    pub(super) fn group(&self) -> &str {
        self.status
            .bgp_group_id
            .as_deref()
            .unwrap_or(&self.obj.spec.bgp_group_id)
    }

    /// The account the peer is bound to, as recorded ("" before it is known): the observer
    /// counts our writes per account (see `observe::PeerObserver::set_awaiting_writes`).
    pub(super) fn account(&self) -> &str {
        self.status.account_id.as_deref().unwrap_or("")
    }

    /// The IP version the peer was made with: as recorded, else the spec's.
    pub(super) fn ip_version(&self) -> IpVersion {
        self.status.ip_version.unwrap_or(self.obj.spec.ip_version)
    }
}

/// The credentials a reconcile acts with, and the account they belong to.
struct Cloud {
    creds: Credentials,
    account: String,
}

/// The object's credentials and their account, refused (`AccountMismatch`) before anything is
/// read with credentials of another account than the one the peer is bound to.
async fn connect(
    r: &Reconciler<'_>,
    claim: Option<&Claim>,
    deleting: bool,
) -> Result<Cloud, Error> {
    let creds = credentials(r.obj, r.ctx).await?;
    let account = account_of(r.ctx, &creds).await?;
    let refused = if deleting {
        match r.plan_cleanup(&Observation::NotLookedUp, Some(&account), claim) {
            CleanupStep::Refuse { reason, message } => Some((reason, message)),
            _ => None,
        }
    } else {
        match r.plan_apply(&Observation::NotLookedUp, Some(&account), claim) {
            ApplyStep::Refuse { reason, message } => Some((reason, message)),
            _ => None,
        }
    };
    if let Some((reason, message)) = refused {
        return Err(Error::Refused { reason, message });
    }
    Ok(Cloud { creds, account })
}

impl Reconciler<'_> {
    /// The apply plan for what is known now.
    fn plan_apply(
        &self,
        observed: &Observation,
        account: Option<&str>,
        claim: Option<&Claim>,
    ) -> ApplyStep {
        let uid = self.obj.uid().unwrap_or_default();
        plan_apply(&self.plan_input(&uid, observed, account, claim, false))
    }

    /// The cleanup plan for what is known now.
    fn plan_cleanup(
        &self,
        observed: &Observation,
        account: Option<&str>,
        claim: Option<&Claim>,
    ) -> CleanupStep {
        let uid = self.obj.uid().unwrap_or_default();
        plan_cleanup(&self.plan_input(&uid, observed, account, claim, true))
    }

    fn plan_input<'i>(
        &'i self,
        uid: &'i str,
        observed: &'i Observation,
        account: Option<&'i str>,
        claim: Option<&'i Claim>,
        deleting: bool,
    ) -> PlanInput<'i> {
        PlanInput {
            uid,
            spec: &self.obj.spec,
            status: &self.status,
            observed,
            deleting,
            paused: is_paused(self.obj),
            replay_expired: replay_expired(self),
            account,
            claimed_by: claim,
            now: self.now,
            timing: self.ctx.config.timing,
            deletion_protected: deletion_protected(self.obj),
        }
    }

    /// Records in `UpToDate` whether the observed peer matches the spec; one Warning event
    /// per transition into drift.
    fn note_sync(&mut self, sync: Sync) {
        let now = self.stamp();
        let generation = self.obj.metadata.generation;
        if set_up_to_date(&mut self.status.conditions, &sync, generation, &now)
            && let Sync::Drifted(fields) = &sync
        {
            let action = match self.obj.spec.drift_policy {
                DriftPolicy::Repair
                    if self.obj.spec.management_policy == ManagementPolicy::Full =>
                {
                    "repairing"
                }
                _ => "reporting only",
            };
            self.event(
                EventType::Warning,
                events::DRIFTED,
                "Compare",
                format!(
                    "The cloud differs from the spec ({action}): {}",
                    fields.join("; ")
                ),
            );
        }
    }

    /// Tells the pace when the data of a look that saw the peer (or did not list it yet) was
    /// read, so that what it learns is the data's age, not the reconcile's.
    fn note_data_read(&self, look: &Look) {
        let saw = matches!(look, Look::Seen(_) | Look::Later { looked: true, .. });
        if let Some(id) = self.status.bgp_peer_id.as_deref()
            && saw
            && let Some(window) = self.ctx.observer.answered_window(id)
        {
            self.ctx
                .pace
                .data_read(&super::core::object_key(self.obj), window);
        }
    }

    /// Another object's stronger claim on the peer this object names.
    fn claim(&self) -> Option<Claim> {
        let others = self.ctx.other_objects(self.obj);
        claims::stronger_claim(self.obj, others.iter().map(|o| &**o))
    }

    /// Keeps `pausedSince`, and moves the replay window's start by the time spent paused.
    fn track_pause(&mut self, paused: bool) {
        let stamp = self.stamp();
        track_pause(&mut self.status, paused, &stamp);
    }

    /// Records what an observation that found the peer says: the cloud view, and (for
    /// objects written by an older version) the account and placement it is bound to.
    fn note_seen(&mut self, info: &BgpPeerInfo, account: &str) {
        let spec = &self.obj.spec;
        let status = &mut self.status;
        status.cloud = Some(info.into());
        status.account_id.get_or_insert_with(|| account.into());
        status
            .region_id
            .get_or_insert_with(|| spec.region_id.clone());
        status
            .bgp_group_id
            .get_or_insert_with(|| spec.bgp_group_id.clone());
        status.ip_version.get_or_insert(spec.ip_version);
    }

    /// Starts (or keeps) the clock of a wait on a transition.
    fn start_waiting(&mut self) {
        if self.status.waiting_since.is_none() {
            self.status.waiting_since = Some(self.stamp());
        }
    }
}

/// Records when a pause began and, when it ends, moves `createRequestedAt` forward by the
/// time paused, so that time spent paused never counts against the create replay window.
fn track_pause(status: &mut BgpPeerStatus, paused: bool, now: &Time) {
    match (paused, &status.paused_since) {
        (true, None) => status.paused_since = Some(now.clone()),
        (false, Some(since)) => {
            let paused_for = (now.0.as_millisecond() - since.0.as_millisecond()).max(0);
            if let Some(at) = &status.create_requested_at
                && let Ok(shifted) =
                    jiff::Timestamp::from_millisecond(at.0.as_millisecond() + paused_for)
            {
                status.create_requested_at = Some(Time(shifted));
            }
            status.paused_since = None;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("timestamp"))
    }

    fn object(status: Option<BgpPeerStatus>) -> BgpPeer {
        let spec: crate::api::BgpPeerSpec = serde_json::from_value(serde_json::json!({
            "regionId": "cn-shanghai",
            "bgpGroupId": "bgpg-1",
            "peerIpAddress": "10.0.0.2",
        }))
        .expect("spec");
        let mut obj = BgpPeer::new("p", spec);
        obj.status = status;
        obj
    }

    #[test]
    fn only_objects_about_to_create_their_peer_await_a_create() {
        assert_eq!(awaits_create(&object(None)), Some("cn-shanghai"));
        assert_eq!(
            awaits_create(&object(Some(BgpPeerStatus::default()))),
            Some("cn-shanghai")
        );
        let with = |f: fn(&mut BgpPeerStatus)| {
            let mut s = BgpPeerStatus::default();
            f(&mut s);
            awaits_create(&object(Some(s))).map(str::to_owned)
        };
        assert_eq!(with(|s| s.bgp_peer_id = Some("bgp-1".into())), None);
        assert_eq!(with(|s| s.waiting_since = Some(at(1))), None);
        assert_eq!(
            with(|s| {
                s.last_error = Some(Box::new(crate::api::LastError {
                    action: "CreateBgpPeer".into(),
                    code: "Throttling.User".into(),
                    message: "slow down".into(),
                    request_id: None,
                    time: at(1),
                }))
            }),
            None
        );
        assert_eq!(
            with(|s| {
                s.conditions.push(crate::api::Condition {
                    type_: "Stalled".into(),
                    status: "True".into(),
                    reason: "CredentialsError".into(),
                    message: Default::default(),
                    last_transition_time: at(1),
                    observed_generation: None,
                })
            }),
            None
        );
        let mut observe = object(None);
        observe.spec.management_policy = ManagementPolicy::Observe;
        assert_eq!(awaits_create(&observe), None);
        let mut adopting = object(None);
        adopting.spec.adopt_bgp_peer_id = Some("bgp-9".into());
        assert_eq!(awaits_create(&adopting), None);
        let mut deleting = object(None);
        deleting.metadata.deletion_timestamp = Some(at(1));
        assert_eq!(awaits_create(&deleting), None);
        let mut paused = object(None);
        paused.metadata.annotations =
            Some([(crate::api::PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert_eq!(awaits_create(&paused), None);
    }

    #[test]
    fn only_objects_whose_delete_is_still_to_send_await_a_delete() {
        let recorded = || {
            let mut obj = object(Some(BgpPeerStatus {
                bgp_peer_id: Some("bgp-1".into()),
                ..Default::default()
            }));
            obj.metadata.deletion_timestamp = Some(at(1));
            obj.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
            obj
        };
        assert_eq!(awaits_delete(&recorded()), Some(("cn-shanghai", "bgpg-1")));
        let mut alive = recorded();
        alive.metadata.deletion_timestamp = None;
        assert_eq!(awaits_delete(&alive), None);
        let mut released = recorded();
        released.metadata.finalizers = None;
        assert_eq!(awaits_delete(&released), None);
        let mut sent = recorded();
        if let Some(s) = sent.status.as_mut() {
            s.delete_requested_at = Some(at(2));
        }
        assert_eq!(awaits_delete(&sent), None);
        let mut never_made = recorded();
        if let Some(s) = never_made.status.as_mut() {
            s.bgp_peer_id = None;
        }
        assert_eq!(awaits_delete(&never_made), None);
        let mut orphan = recorded();
        orphan.spec.deletion_policy = DeletionPolicy::Orphan;
        assert_eq!(awaits_delete(&orphan), None);
        let mut observed = recorded();
        observed.spec.management_policy = ManagementPolicy::Observe;
        assert_eq!(awaits_delete(&observed), None);
        let mut protected = recorded();
        protected.metadata.annotations =
            Some([(DELETION_PROTECTION_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert_eq!(awaits_delete(&protected), None);
    }

    #[test]
    fn a_ready_object_being_deleted_is_looked_at_like_a_settled_one_until_its_delete() {
        let ready = |generation: i64, observed: i64| {
            let mut obj = object(Some(BgpPeerStatus {
                bgp_peer_id: Some("bgp-1".into()),
                observed_generation: Some(observed),
                conditions: vec![crate::api::Condition {
                    type_: crate::api::conditions::types::READY.into(),
                    status: status::TRUE.into(),
                    reason: "Available".into(),
                    message: Default::default(),
                    last_transition_time: at(1),
                    observed_generation: Some(observed),
                }],
                ..Default::default()
            }));
            obj.metadata.generation = Some(generation);
            obj
        };
        let settled = |obj: &BgpPeer, for_deletion| {
            observation::looks_settled(obj, obj.status.as_ref().expect("status"), for_deletion)
        };
        assert!(settled(&ready(1, 1), false));
        // A spec change not applied yet: in motion.
        assert!(!settled(&ready(2, 1), false));
        // Deleting the object bumped its generation (the apiserver does so for a custom
        // resource with a finalizer): still settled until our delete is accepted.
        let mut deleting = ready(2, 1);
        deleting.metadata.deletion_timestamp = Some(at(5));
        assert!(settled(&deleting, true));
        let mut sent = deleting.clone();
        if let Some(s) = sent.status.as_mut() {
            s.delete_requested_at = Some(at(6));
        }
        assert!(!settled(&sent, true));
        let mut failed = deleting.clone();
        if let Some(s) = failed.status.as_mut() {
            s.last_error = Some(Box::new(crate::api::LastError {
                action: "DeleteBgpPeer".into(),
                code: "IncorrectStatus".into(),
                message: "busy".into(),
                request_id: None,
                time: at(6),
            }));
        }
        assert!(!settled(&failed, true));
        let mut not_ready = deleting;
        if let Some(s) = not_ready.status.as_mut() {
            s.conditions[0].status = status::FALSE.into();
        }
        assert!(!settled(&not_ready, true));
        // Never made: nothing to answer from a listing.
        assert!(!settled(&object(Some(BgpPeerStatus::default())), true));
    }

    #[test]
    fn time_paused_does_not_count_against_the_replay_window() {
        let mut status = BgpPeerStatus {
            create_requested_at: Some(at(1_000)),
            ..Default::default()
        };
        track_pause(&mut status, true, &at(1_100));
        assert_eq!(status.paused_since, Some(at(1_100)));
        // Still paused: nothing moves.
        track_pause(&mut status, true, &at(5_000));
        assert_eq!(status.paused_since, Some(at(1_100)));
        // Resumed after 3,900 s: the create counts as requested 3,900 s later.
        track_pause(&mut status, false, &at(5_000));
        assert_eq!(status.paused_since, None);
        assert_eq!(status.create_requested_at, Some(at(4_900)));
        // No create in flight: only the pause mark goes.
        let mut idle = BgpPeerStatus::default();
        track_pause(&mut idle, true, &at(1));
        track_pause(&mut idle, false, &at(9));
        assert_eq!(idle, BgpPeerStatus::default());
    }
}
