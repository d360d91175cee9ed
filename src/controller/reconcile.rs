//! One reconcile: observe → plan → act → status.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::debug;

use crate::api::conditions::{events, reasons, status};
use crate::api::{
    BgpPeer, BgpPeerStatus, CreateParams, DELETION_PROTECTION_ANNOTATION, DeletionPolicy,
    DriftPolicy, FINALIZER, IpVersion, LastError, ManagementPolicy,
};
use crate::cloud::{
    BgpPeerInfo, Credentials, DeleteBgpPeerRequest, ErrorClass, ModifyBgpPeerAttributeRequest,
};
use crate::ops::events::EventType;

use super::claims;
use super::context::Context;
use super::core::{self, CloudObject, ObjectStatus, is_paused};
use super::create::{Settled, replay, replay_expired, start_create, verify_create};
use super::credentials::{account_of, credentials};
use super::error::{Error, delete_found_nothing};
use super::observe::{Lookup, ReadRequest};
use super::plan::{
    ApplyStep, Claim, CleanupStep, Left, Observation, ObservedPeer, PeerDiff, PlanInput,
    describe_drift, diff, modify_call, plan_apply, plan_cleanup,
};
use super::status::{Outcome, Sync, set_up_to_date};
use super::timing::{jittered, next_tick, resync_period};

/// One reconcile of a BgpPeer.
pub(super) type Reconciler<'a> = core::Reconciler<'a, BgpPeer>;

impl ObjectStatus for BgpPeerStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
    fn last_error_mut(&mut self) -> &mut Option<LastError> {
        &mut self.last_error
    }
    fn last_sync_time(&self) -> Option<&Time> {
        self.last_sync_time.as_ref()
    }
    fn last_sync_time_mut(&mut self) -> &mut Option<Time> {
        &mut self.last_sync_time
    }
    /// `SessionEstablished`, from the cloud view (see [`crate::ops::report`]).
    fn derived_conditions(
        &self,
        existing: &[Condition],
        generation: Option<i64>,
        now: &Time,
    ) -> Vec<Condition> {
        vec![crate::ops::report::session_condition(
            existing,
            self.cloud.as_ref(),
            generation,
            now,
        )]
    }
}

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
        super::references::dereference(obj, ctx, deleting).await
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
            deletion_protected: self
                .obj
                .annotations()
                .get(DELETION_PROTECTION_ANNOTATION)
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
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
        status.account_id.get_or_insert_with(|| account.to_owned());
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

    /// Reports a wait that lasted longer than the transition timeout: Stalled, with the
    /// cloud status and how long; a Warning event when it becomes overdue. Polling goes on.
    async fn report_overdue(&mut self, cloud_status: &str, waited: Duration) -> Result<(), Error> {
        let was_overdue =
            super::status::stalled_reason(&self.status) == Some(reasons::TRANSITION_TIMEOUT);
        let minutes = waited.as_secs() / 60;
        let message = format!(
            "The cloud has reported the peer as {cloud_status} for {minutes} min, longer than the transition timeout ({} min); still polling, and this clears by itself when the cloud moves on. If it does not, check the peer in the console or open a ticket with Alibaba Cloud",
            self.ctx.config.timing.transition_timeout.as_secs() / 60
        );
        if !was_overdue {
            self.event(
                EventType::Warning,
                events::TRANSITION_TIMEOUT,
                "Wait",
                message.clone(),
            );
            self.ctx.metrics.transition_overdue();
        }
        self.write_status(&Outcome::Stalled {
            reason: reasons::TRANSITION_TIMEOUT,
            message,
        })
        .await
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

/// Observes the cloud for this object: through the shared observer, which serves a settled
/// object from a group listing up to a resync period old and anything in motion from a
/// listing at most a poll interval old (and fetched after our last change to it), or by ID
/// when that is cheaper.
async fn observe(
    r: &Reconciler<'_>,
    creds: &Credentials,
    for_deletion: bool,
) -> Result<Option<Observed>, Error> {
    let id = r
        .status
        .bgp_peer_id
        .clone()
        .or_else(|| r.obj.spec.adopt_bgp_peer_id.clone());
    let Some(id) = id else {
        return Ok(Some((Observation::NotLookedUp, None)));
    };
    let settled = !for_deletion
        && r.status.bgp_peer_id.is_some()
        && r.status.observed_generation == r.obj.metadata.generation
        && super::status::ready_condition(&r.status).is_some_and(|c| c.status == status::TRUE);
    let poll = r.ctx.config.poll_interval;
    let lookup = if r.status.bgp_peer_id.is_none() {
        // Adoption: the peer may be in another group; ask by ID.
        r.ctx
            .observer
            .lookup_by_id(&r.ctx.vpc, creds, r.region(), &id)
            .await
    } else {
        // Demand is the number of distinct objects of the group that asked within the
        // window: a settled object's resync period, or, for objects in motion, several poll
        // intervals (under load a waiting object may look less often than once per
        // interval, and a busy group must not look idle). Each look of an object in motion
        // must see data newer than its previous one, or a listing taken just after a
        // create would answer "Pending" twice.
        let (max_age, demand_window) = if settled {
            let resync = resync_period(r.obj, r.ctx);
            (resync, resync)
        } else {
            (poll, poll * 6)
        };
        let waiter = ObjectRef::from_obj(r.obj);
        let read = ReadRequest {
            region: r.region(),
            group: r.group(),
            id: &id,
            max_age,
            demand_window,
            newer_than_last: !settled,
            waiter: Some(&waiter),
        };
        match r.ctx.observer.lookup(&r.ctx.vpc, creds, read).await {
            // During deletion, a group (or region) the listing cannot find does not prove the
            // peer gone (another account's credentials, a wrong endpoint): only a by-ID read
            // in the owning account may say so. Its errors keep the finalizer.
            Err(source) if for_deletion && source.class() == ErrorClass::DependencyMissing => {
                debug!(
                    code = source.code().unwrap_or("-"),
                    "group listing failed during deletion; asking by ID"
                );
                r.ctx
                    .observer
                    .lookup_by_id(&r.ctx.vpc, creds, r.region(), &id)
                    .await
            }
            other => other,
        }
    };
    match lookup {
        Ok(Lookup::Found(p)) => Ok(Some((Observation::Found((&*p).into()), Some(*p)))),
        Ok(Lookup::Missing) => Ok(Some((Observation::NotFound, None))),
        // Nothing changes until the cloud has been looked at: no status write, and the
        // object is woken when the listing it waits for lands (or at the next poll tick).
        Ok(Lookup::Pending) => {
            debug!(group = r.group(), "waiting for a listing of the BGP group");
            Ok(None)
        }
        Err(source) => Err(Error::Cloud {
            action: "DescribeBgpPeers",
            source,
        }),
    }
}

/// What an observation found: the plan's view, and the cloud's answer when the peer exists.
type Observed = (Observation, Option<BgpPeerInfo>);

/// Makes the cloud peer exist and match the spec.
async fn ensure_peer(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claim();
    // Decide what needs no cloud first: pause, another owner, a changed immutable field.
    let offline = r.plan_apply(&Observation::NotLookedUp, None, claim.as_ref());
    r.track_pause(offline == ApplyStep::Paused);
    match offline {
        ApplyStep::Paused => return pause(r).await,
        ApplyStep::Refuse { reason, message } => return Err(Error::Refused { reason, message }),
        _ => {}
    }
    let cloud = connect(r, claim.as_ref(), false).await?;
    let poll = r.ctx.config.poll_interval;
    let Some((observation, info)) = observe(r, &cloud.creds, false).await? else {
        return Ok(Action::requeue(next_tick(poll)));
    };
    if let Some(info) = &info
        && r.status.bgp_peer_id.is_some()
    {
        r.note_seen(info, &cloud.account);
    }
    if let Observation::Found(peer) = &observation {
        let d = diff(&r.obj.spec, peer);
        r.note_sync(if d.is_empty() {
            Sync::InSync
        } else {
            Sync::Drifted(describe_drift(&r.obj.spec, peer, &d))
        });
    }
    let step = r.plan_apply(&observation, Some(&cloud.account), claim.as_ref());
    debug!(?step, "plan");
    if !matches!(step, ApplyStep::Wait { .. }) {
        r.status.waiting_since = None;
    }
    let creds = &cloud.creds;
    let pace_key = super::core::object_key(r.obj);
    match step {
        ApplyStep::Create { .. } | ApplyStep::Wait { .. } | ApplyStep::Modify(_) => {}
        // Available: a create's Pending duration is learned.
        ApplyStep::UpToDate | ApplyStep::Drifted(_) | ApplyStep::Observed(_) => {
            r.ctx.pace.settled(&pace_key);
        }
        _ => r.ctx.pace.forget(&pace_key),
    }
    match step {
        ApplyStep::Create {
            client_token,
            incarnation,
            recreate,
        } => {
            if recreate {
                r.event(
                    EventType::Warning,
                    events::PEER_VANISHED,
                    "Recreate",
                    format!(
                        "BGP peer {} no longer exists in the cloud (deleted outside Kubernetes); creating it again",
                        r.status.bgp_peer_id.clone().unwrap_or_default()
                    ),
                );
            }
            start_create(r, creds, &cloud.account, client_token, incarnation).await?;
            // First look when the peer is likely Available (learned), or at the shared tick
            // when many are in motion.
            Ok(Action::requeue(r.ctx.pace.created(&pace_key, poll)))
        }
        ApplyStep::ReplayCreate { client_token } => {
            match replay(r, creds, &client_token, false).await? {
                Settled::NoPeer => create_afresh(r, &cloud).await?,
                Settled::Recorded | Settled::NotYet(_) => {}
            }
            Ok(Action::requeue(next_tick(poll)))
        }
        ApplyStep::VerifyCreate { client_token } => {
            match verify_create(r, creds, &client_token).await? {
                Settled::NoPeer => create_afresh(r, &cloud).await?,
                Settled::Recorded => {}
                Settled::NotYet(why) => debug!(%why, "create not verified yet"),
            }
            Ok(Action::requeue(next_tick(poll)))
        }
        ApplyStep::Adopt { id } => {
            let stamp = r.stamp();
            let status = &mut r.status;
            status.bgp_peer_id = Some(id.clone());
            status.bgp_peer_id_recorded_at = Some(stamp);
            status.adopted = true;
            status.client_token = None;
            status.create_params = None;
            status.create_requested_at = None;
            status.account_id = Some(cloud.account.clone());
            status.region_id = Some(r.obj.spec.region_id.clone());
            status.bgp_group_id = Some(r.obj.spec.bgp_group_id.clone());
            status.ip_version = Some(r.obj.spec.ip_version);
            status.cloud = info.as_ref().map(Into::into);
            r.write_status(&Outcome::Progressing {
                reason: reasons::CREATING,
                message: format!("Adopted existing BGP peer {id}"),
            })
            .await?;
            r.event(
                EventType::Normal,
                events::ADOPTED,
                "Adopt",
                format!("Adopted existing BGP peer {id} (spec.adoptBgpPeerId)"),
            );
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        ApplyStep::AdoptionImpossible { message, missing } => {
            Err(Error::Adoption { message, missing })
        }
        // Observe: a missing peer is looked for again at the resync period, like a found one.
        ApplyStep::ObservedMissing { message } => {
            r.status.cloud = None;
            r.write_status(&Outcome::Stalled {
                reason: reasons::NOT_FOUND,
                message,
            })
            .await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        ApplyStep::Wait {
            cloud_status,
            overdue,
        } => {
            r.start_waiting();
            if let Some(waited) = overdue {
                r.report_overdue(&cloud_status, waited).await?;
                return Ok(Action::requeue(next_tick(poll)));
            }
            let (reason, message) = match cloud_status.as_str() {
                reasons::NOT_YET_VISIBLE => (
                    reasons::NOT_YET_VISIBLE,
                    format!(
                        "BGP peer {} was created but DescribeBgpPeers does not show it yet (read-after-write lag); waiting up to {} s before treating it as deleted",
                        r.status.bgp_peer_id.clone().unwrap_or_default(),
                        r.ctx.config.timing.visibility_grace.as_secs()
                    ),
                ),
                "Pending" => (reasons::PENDING, wait_message(&cloud_status)),
                "Modifying" => (reasons::MODIFYING, wait_message(&cloud_status)),
                "Deleting" => (reasons::DELETING, wait_message(&cloud_status)),
                _ => (reasons::CREATING, wait_message(&cloud_status)),
            };
            r.write_status(&Outcome::Progressing { reason, message })
                .await?;
            Ok(Action::requeue(r.ctx.pace.in_motion(&pace_key, poll)))
        }
        ApplyStep::Modify(diff) => {
            if let Observation::Found(peer) = &observation {
                modify(r, creds, peer, &diff).await?;
            }
            Ok(Action::requeue(r.ctx.pace.in_motion(&pace_key, poll)))
        }
        ApplyStep::UpToDate => {
            let (stamp, resync) = (r.stamp(), resync_period(r.obj, r.ctx));
            let first_ready = crate::ops::report::note_synced(
                &mut r.status,
                r.stored.as_ref(),
                BgpPeer::NOUN,
                r.obj.metadata.generation,
                &stamp,
                resync,
            );
            r.write_status(&Outcome::Ready).await?;
            r.ctx
                .metrics
                .ready(BgpPeer::KIND, &r.obj.metadata, first_ready, r.now);
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        // Report: Ready (the peer is Available and reporting is what was asked) with
        // UpToDate=False naming the differences; no Modify call.
        ApplyStep::Drifted(_) => {
            r.write_status(&Outcome::Ready).await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Observed(_) => {
            r.status.cloud = info.as_ref().map(Into::into);
            r.write_status(&Outcome::Observed).await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Paused => pause(r).await,
    }
}

/// Paused: no cloud call, `Ready=Unknown`; the annotation's removal wakes the object.
async fn pause(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    r.note_sync(Sync::Unknown);
    r.write_status(&Outcome::Paused).await?;
    Ok(Action::await_change())
}

fn wait_message(cloud_status: &str) -> String {
    format!("Waiting: the cloud reports the peer as {cloud_status}")
}

/// Nothing in the cloud came from the recorded create: start afresh under a new incarnation,
/// so no forgotten-or-not token can be involved.
async fn create_afresh(r: &mut Reconciler<'_>, cloud: &Cloud) -> Result<(), Error> {
    let incarnation = r.status.incarnation.saturating_add(1);
    let uid = r.obj.uid().unwrap_or_default();
    let client_token = super::token::client_token_for(&uid, incarnation);
    start_create(r, &cloud.creds, &cloud.account, client_token, incarnation).await
}

async fn modify(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    peer: &ObservedPeer,
    diff: &PeerDiff,
) -> Result<(), Error> {
    let id = r.status.bgp_peer_id.clone().unwrap_or_default();
    let call = modify_call(&r.obj.spec, peer, diff);
    let req = ModifyBgpPeerAttributeRequest {
        region_id: r.region().to_owned(),
        bgp_peer_id: id.clone(),
        bgp_group_id: call.bgp_group_id,
        peer_ip_address: call.peer_ip_address,
        enable_bfd: call.enable_bfd,
        bfd_multi_hop: call.bfd_multi_hop,
        ..Default::default()
    };
    let resp = r
        .ctx
        .vpc
        .modify_bgp_peer_attribute(creds, &req)
        .await
        .map_err(Error::cloud("ModifyBgpPeerAttribute"))?;
    r.ctx.observer.note_mutation(&id);
    let fields = diff.fields().join(", ");
    r.write_status(&Outcome::Progressing {
        reason: reasons::MODIFYING,
        message: format!("Updating {fields}"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::UPDATED,
        "Modify",
        format!("Updated {fields} of BGP peer {id} (RequestId {})", resp.0),
    );
    Ok(())
}

/// Makes the cloud peer go away (or leaves it, as the policy says), then lets the finalizer
/// go. Any `Err` keeps the finalizer: only [`release`] returns `Ok`.
async fn ensure_peer_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claim();
    // Decide without the cloud first: pause, Orphan, another owner, or nothing ever created
    // need no call (and no credentials, so a deleted Secret never wedges the finalizer).
    let offline = r.plan_cleanup(&Observation::NotLookedUp, None, claim.as_ref());
    r.track_pause(offline == CleanupStep::Paused);
    match offline {
        CleanupStep::Paused => return pause_deletion(r).await,
        CleanupStep::ReleaseFinalizer { left } => return release(r, left),
        _ => {}
    }
    let cloud = connect(r, claim.as_ref(), true).await?;
    let creds = &cloud.creds;
    let Some((observation, info)) = observe(r, creds, true).await? else {
        return Err(Error::CleanupPending(format!(
            "waiting for a listing of BGP group {}",
            r.group()
        )));
    };
    if let Some(info) = &info {
        r.note_seen(info, &cloud.account);
    }
    let step = r.plan_cleanup(&observation, Some(&cloud.account), claim.as_ref());
    debug!(?step, "cleanup plan");
    if !matches!(
        step,
        CleanupStep::Wait { .. } | CleanupStep::WaitGone { .. }
    ) {
        r.status.waiting_since = None;
    }
    match step {
        CleanupStep::ReleaseFinalizer { left } => release(r, left),
        CleanupStep::ReplayCreate { client_token } => {
            match replay(r, creds, &client_token, true).await? {
                Settled::NoPeer => release(r, Left::Nothing),
                Settled::NotYet(why) => Err(Error::CleanupPending(why)),
                Settled::Recorded => Err(Error::CleanupPending(
                    "learned the peer ID of an interrupted create; deleting it next".into(),
                )),
            }
        }
        CleanupStep::VerifyCreate { client_token } => {
            match verify_create(r, creds, &client_token).await? {
                // The old create made nothing that is still there: nothing to delete.
                Settled::NoPeer => release(r, Left::Nothing),
                Settled::NotYet(why) => Err(Error::CleanupPending(why)),
                Settled::Recorded => Err(Error::CleanupPending(
                    "recorded the peer of an interrupted create; deleting it next".into(),
                )),
            }
        }
        CleanupStep::Delete { id } => delete(r, creds, &id).await,
        CleanupStep::WaitGone { id, overdue } => {
            r.start_waiting();
            match overdue {
                Some(waited) => r.report_overdue("Deleting", waited).await?,
                None => {
                    r.write_status(&Outcome::Progressing {
                        reason: reasons::DELETING,
                        message: format!("Waiting for BGP peer {id} to be deleted"),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!(
                "waiting for BGP peer {id} to be deleted"
            )))
        }
        CleanupStep::Wait {
            cloud_status,
            overdue,
        } => {
            r.start_waiting();
            match overdue {
                Some(waited) => r.report_overdue(&cloud_status, waited).await?,
                None => {
                    r.write_status(&Outcome::Progressing {
                        reason: reasons::DELETING,
                        message: format!(
                            "Deletion waits: the cloud reports the peer as {cloud_status}"
                        ),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!("peer is {cloud_status}")))
        }
        CleanupStep::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        CleanupStep::Paused => pause_deletion(r).await,
    }
}

/// A paused deletion keeps the finalizer and makes no call.
async fn pause_deletion(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    r.write_status(&Outcome::Paused).await?;
    Err(Error::CleanupPending(
        "deletion waits: the object is paused".to_owned(),
    ))
}

/// Calls DeleteBgpPeer. An answer that the peer is not there is not a failure: the deletion
/// is recorded like an accepted one, and the peer's absence is then confirmed by a read in
/// the owning account (a "not found" right after our create may be read-after-write lag).
async fn delete(r: &mut Reconciler<'_>, creds: &Credentials, id: &str) -> Result<Action, Error> {
    let req = DeleteBgpPeerRequest {
        region_id: r.region().to_owned(),
        bgp_peer_id: id.to_owned(),
        ..Default::default()
    };
    let note = match r.ctx.vpc.delete_bgp_peer(creds, &req).await {
        Ok(resp) => format!("Deleting BGP peer {id} (RequestId {})", resp.0),
        Err(source) if delete_found_nothing(&source) => format!(
            "DeleteBgpPeer found no peer {id} ({}); confirming that it is gone",
            source.code().unwrap_or("-")
        ),
        Err(source) => {
            return Err(Error::Cloud {
                action: "DeleteBgpPeer",
                source,
            });
        }
    };
    r.ctx.observer.note_deleted(id);
    r.status.delete_requested_at = Some(r.stamp());
    r.event(EventType::Normal, events::DELETING, "Delete", note);
    r.write_status(&Outcome::Progressing {
        reason: reasons::DELETING,
        message: format!("Deleting BGP peer {id}"),
    })
    .await?;
    Err(Error::CleanupPending(format!(
        "waiting for BGP peer {id} to be deleted"
    )))
}

fn release(r: &Reconciler<'_>, left: Left) -> Result<Action, Error> {
    if let Some(id) = &r.status.bgp_peer_id {
        r.ctx.observer.forget(id);
    }
    let orphan = r.obj.spec.deletion_policy == DeletionPolicy::Orphan;
    let (reason, note) = match &left {
        Left::Nothing if orphan => (
            events::ORPHANED,
            "Released (deletionPolicy: Orphan): no BGP peer of this object existed in the cloud"
                .to_owned(),
        ),
        Left::Nothing => match &r.status.bgp_peer_id {
            Some(id) => (
                events::DELETED,
                format!("BGP peer {id} is gone from the cloud"),
            ),
            None => return Ok(Action::await_change()),
        },
        Left::Orphaned(id) => (
            events::ORPHANED,
            format!("Left BGP peer {id} in the cloud (deletionPolicy: Orphan)"),
        ),
        Left::OrphanedUnknown(token) => (
            events::ORPHANED,
            format!(
                "Released (deletionPolicy: Orphan) while a create with ClientToken {token} was unrecorded: any peer it made is left in the cloud"
            ),
        ),
        Left::AlreadyDeleting(id) => (
            events::DELETED,
            format!(
                "Released (deletionPolicy: Orphan), but DeleteBgpPeer for {id} had already been accepted: the peer is being deleted, not left"
            ),
        ),
        Left::Observed(id) => (
            events::RELEASED,
            format!("Released without touching BGP peer {id} (managementPolicy: Observe)"),
        ),
        Left::Owned { id, owner } => (
            events::RELEASED,
            format!("Released without touching BGP peer {id}: it is owned by {owner}"),
        ),
    };
    r.event(EventType::Normal, reason, "Delete", note);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("timestamp"))
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
