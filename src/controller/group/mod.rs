//! The BgpGroup kind on the shared skeleton ([`super::core`]): one BGP group of a VBR per
//! object, its MD5 key from a Secret, and the deletion order with the BgpPeers that use it.
//!
//! - [`plan`]: the pure decision (table-tested in `plan_tests.rs`).
//! - `observe`: the group by ID, the key comparison, and, before a deletion, the cloud's
//!   peers of the group.
//! - `act`: the token-before-create protocol, its replay, ModifyBgpGroupAttribute,
//!   DeleteBgpGroup, and the release of the finalizer.
//! - [`authkey`]: reading the key from its Secret (never logged, never in status).
//!
//! Deletion order: the finalizer stays while any BgpPeer still resolves to the group
//! ([`super::context::Context::dependents_of_group`]: by `bgpGroupRef`, or by its cloud ID)
//! and while the cloud lists a peer in it (condition reason `DependentsExist`, naming them),
//! so DeleteBgpGroup is called once the peers are gone and is never answered
//! `DependencyViolation.BgpPeer`. `deletionPolicy: Orphan` releases at once.

mod act;
pub mod authkey;
mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::debug;

use crate::api::conditions::{events, reasons};
use crate::api::group::{BgpGroup, BgpGroupStatus, CloudGroupView, GROUP_FINALIZER};
use crate::api::{CREATE_RESULT_ANNOTATION, ManagementPolicy, RESYNC_ANNOTATION};
use crate::cloud::{BgpGroupInfo, Credentials};
use crate::ops::events::EventType;

use super::context::Context;
use super::core::{self, CloudObject, is_paused};
use super::credentials::{account_of, credentials};
use super::error::Error;
use super::status::Outcome;
use super::timing::{jittered, next_tick};
use plan::{CreateResult, GroupObservation, GroupPlan, GroupPlanInput, Left, plan};

/// The kind's name in metrics and logs.
pub const KIND_BGP_GROUP: &str = "BgpGroup";

/// One reconcile of a BgpGroup.
pub(crate) type Reconciler<'a> = core::Reconciler<'a, BgpGroup>;

core::object_status!(BgpGroupStatus);

core::credential_refs!(BgpGroup);

impl CloudObject for BgpGroup {
    type Status = BgpGroupStatus;
    const KIND: &'static str = KIND_BGP_GROUP;
    const NOUN: &'static str = "BGP group";
    const FINALIZER: &'static str = GROUP_FINALIZER;

    fn status(&self) -> Option<&BgpGroupStatus> {
        self.status.as_ref()
    }

    fn management_policy(&self) -> ManagementPolicy {
        ManagementPolicy::Full
    }

    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            kind = KIND_BGP_GROUP,
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            bgp_group_id = r.obj.group_id().unwrap_or(""),
            generation = r.obj.metadata.generation.unwrap_or_default(),
        )
    )]
    async fn ensure(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_group(r).await
    }

    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            kind = KIND_BGP_GROUP,
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            bgp_group_id = r.obj.group_id().unwrap_or(""),
            generation = r.obj.metadata.generation.unwrap_or_default(),
            deleting = true,
        )
    )]
    async fn ensure_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_group_absent(r).await
    }
}

/// The credentials a reconcile acts with, and their account.
pub(crate) struct Cloud {
    pub(crate) creds: Credentials,
    pub(crate) account: String,
}

impl Reconciler<'_> {
    /// The region the group lives in: as recorded when it was made, else the spec's.
    pub(crate) fn region(&self) -> &str {
        self.status
            .region_id
            .as_deref()
            .unwrap_or(&self.obj.spec.region_id)
    }

    /// The plan for what is known now.
    fn group_plan(
        &self,
        observed: &GroupObservation,
        account: Option<&str>,
        deleting: bool,
        dependents: &[String],
        claimed_by: Option<&str>,
    ) -> GroupPlan {
        let uid = self.obj.uid().unwrap_or_default();
        let create_result = create_result(self.obj);
        plan(&GroupPlanInput {
            uid: &uid,
            spec: &self.obj.spec,
            status: &self.status,
            observed,
            deleting,
            paused: is_paused(self.obj),
            account,
            dependents,
            replay_expired: self.replay_expired(),
            create_result: create_result.as_ref(),
            claimed_by,
            now: self.now,
            timing: self.ctx.config.timing,
        })
    }

    /// The recorded create is older than the replay window.
    fn replay_expired(&self) -> bool {
        let window =
            i64::try_from(self.ctx.config.create_replay_window.as_millis()).unwrap_or(i64::MAX);
        self.status
            .create_requested_at
            .as_ref()
            .is_some_and(|at| self.now.as_millisecond() - at.0.as_millisecond() > window)
    }

    /// Records what an observation that found the group says.
    fn note_seen(&mut self, info: &BgpGroupInfo, account: &str) {
        let spec = &self.obj.spec;
        let status = &mut self.status;
        status.cloud = Some(cloud_view(info));
        status.account_id.get_or_insert_with(|| account.to_owned());
        status
            .region_id
            .get_or_insert_with(|| spec.region_id.clone());
        status
            .router_id
            .get_or_insert_with(|| spec.router_id.clone());
        status.ip_version.get_or_insert(spec.ip_version);
    }

    /// Starts (or keeps) the clock of a wait on a transition.
    fn start_waiting(&mut self) {
        if self.status.waiting_since.is_none() {
            self.status.waiting_since = Some(self.stamp());
        }
    }

    /// Another BgpGroup of the cluster that owns the cloud group this object names: one that
    /// recorded it (when both did, the older object).
    fn claimed_by(&self) -> Option<String> {
        let id = self.status.bgp_group_id.as_deref().or(self
            .obj
            .spec
            .adopt_bgp_group_id
            .as_deref())?;
        let store = self.ctx.groups.get()?;
        let uid = self.obj.metadata.uid.as_deref();
        let ours_recorded = self.status.bgp_group_id.is_some();
        let key = |g: &BgpGroup| super::key::object_key(g);
        store
            .state()
            .into_iter()
            .filter(|o| o.metadata.uid.as_deref() != uid)
            .filter(|o| o.group_id() == Some(id))
            .find(|o| {
                !ours_recorded
                    || (&o.metadata.creation_timestamp, key(o))
                        < (&self.obj.metadata.creation_timestamp, key(self.obj))
            })
            .map(|o| key(&o))
    }
}

/// The object's resync period: the annotation if valid (at least 10 s), else the operator's.
fn resync_period(obj: &BgpGroup, ctx: &Context) -> Duration {
    obj.annotations()
        .get(RESYNC_ANNOTATION)
        .and_then(|v| crate::duration::parse(v).ok())
        .filter(|d| *d >= Duration::from_secs(10))
        .unwrap_or(ctx.config.resync_period)
}

/// The `vpc.alicloud.dev/create-result` answer, if any (`<token>=<group ID>` or
/// `<token>=none`).
fn create_result(obj: &BgpGroup) -> Option<CreateResult> {
    let value = obj.annotations().get(CREATE_RESULT_ANNOTATION)?;
    let (token, result) = value.trim().split_once('=')?;
    let result = result.trim();
    Some(CreateResult {
        client_token: token.trim().to_owned(),
        group_id: (!result.eq_ignore_ascii_case("none")).then(|| result.to_owned()),
    })
}

/// The cloud's view of a group for `status.cloud` (whether a key is set, never the key).
pub fn cloud_view(info: &BgpGroupInfo) -> CloudGroupView {
    CloudGroupView {
        status: Some(info.status.clone()).filter(|s| !s.is_empty()),
        name: info.name.clone(),
        description: info.description.clone(),
        router_id: Some(info.router_id.clone()).filter(|s| !s.is_empty()),
        peer_asn: info.peer_asn.and_then(|v| i64::try_from(v).ok()),
        local_asn: info.local_asn.and_then(|v| i64::try_from(v).ok()),
        is_fake_asn: info.is_fake,
        ip_version: info.ip_version.clone(),
        route_limit: info.route_limit.clone(),
        hold: info.hold.clone(),
        keepalive: info.keepalive.clone(),
        auth_key_set: Some(info.auth_key.is_some()),
    }
}

/// The object's credentials and their account, refused (`AccountMismatch`) before anything
/// is read with credentials of another account than the group's.
async fn connect(
    r: &Reconciler<'_>,
    deleting: bool,
    claimed_by: Option<&str>,
) -> Result<Cloud, Error> {
    let creds = credentials(r.obj, r.ctx).await?;
    let account = account_of(r.ctx, &creds).await?;
    if let GroupPlan::Refuse { reason, message } = r.group_plan(
        &GroupObservation::NotLookedUp,
        Some(&account),
        deleting,
        &[],
        claimed_by,
    ) {
        return Err(Error::Refused { reason, message });
    }
    Ok(Cloud { creds, account })
}

/// Makes the cloud group exist and match the spec.
async fn ensure_group(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claimed_by();
    let offline = r.group_plan(
        &GroupObservation::NotLookedUp,
        None,
        false,
        &[],
        claim.as_deref(),
    );
    match offline {
        GroupPlan::Paused => {
            r.write_status(&Outcome::Paused).await?;
            return Ok(Action::await_change());
        }
        GroupPlan::Refuse { reason, message } => return Err(Error::Refused { reason, message }),
        _ => {}
    }
    if let Some(wait) = plan::fresh_for(
        &r.status,
        r.obj.metadata.generation,
        r.now,
        resync_period(r.obj, r.ctx),
    ) {
        debug!(
            ?wait,
            "settled and confirmed within the resync period: no cloud read"
        );
        return Ok(Action::requeue(jittered(wait)));
    }
    let cloud = connect(r, false, claim.as_deref()).await?;
    let poll = r.ctx.config.poll_interval;
    let observed = observe::observe(r, &cloud.creds, false).await?;
    if let Some(info) = &observed.info
        && r.status.bgp_group_id.is_some()
    {
        r.note_seen(info, &cloud.account);
    }
    let step = r.group_plan(
        &observed.observation,
        Some(&cloud.account),
        false,
        &[],
        claim.as_deref(),
    );
    debug!(?step, "plan");
    if !matches!(step, GroupPlan::Wait { .. }) {
        r.status.waiting_since = None;
    }
    match step {
        GroupPlan::Create {
            client_token,
            incarnation,
            recreate,
        } => {
            if recreate {
                r.event(
                    EventType::Warning,
                    events::GROUP_VANISHED,
                    "Recreate",
                    format!(
                        "BGP group {} no longer exists in the cloud (deleted outside Kubernetes); creating it again",
                        r.status.bgp_group_id.clone().unwrap_or_default()
                    ),
                );
            }
            act::start_create(r, &cloud, client_token, incarnation).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::ReplayCreate { client_token } => {
            act::replay(r, &cloud, &client_token).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::RecordCreateResult { id } => {
            act::record_create_result(r, &id).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::Adopt { id } => {
            act::adopt(r, &cloud, &id, observed.info.as_ref()).await?;
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        GroupPlan::AdoptionImpossible { message, missing } => {
            Err(Error::Adoption { message, missing })
        }
        GroupPlan::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        GroupPlan::Wait {
            cloud_status,
            overdue,
        } => {
            r.start_waiting();
            if let Some(waited) = overdue {
                r.report_overdue(&cloud_status, waited).await?;
                return Ok(Action::requeue(next_tick(poll)));
            }
            let id = r.status.bgp_group_id.clone().unwrap_or_default();
            let (reason, message) = match cloud_status.as_str() {
                reasons::NOT_YET_VISIBLE => (
                    reasons::NOT_YET_VISIBLE,
                    format!(
                        "BGP group {id} was created but DescribeBgpGroups does not show it yet (read-after-write lag); waiting up to {} s before treating it as deleted",
                        r.ctx.config.timing.visibility_grace.as_secs()
                    ),
                ),
                "Pending" => (reasons::PENDING, wait_message(&id, &cloud_status)),
                "Modifying" => (reasons::MODIFYING, wait_message(&id, &cloud_status)),
                "Deleting" => (reasons::DELETING, wait_message(&id, &cloud_status)),
                _ => (reasons::CREATING, wait_message(&id, &cloud_status)),
            };
            r.write_status(&Outcome::Progressing { reason, message })
                .await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::Modify(fields) => {
            act::modify(r, &cloud, &observed, &fields).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::UpToDate => {
            let (stamp, resync) = (r.stamp(), resync_period(r.obj, r.ctx));
            let first_ready = crate::ops::report::note_synced(
                &mut r.status,
                r.stored.as_ref(),
                BgpGroup::NOUN,
                r.obj.metadata.generation,
                &stamp,
                resync,
            );
            r.write_status(&Outcome::Ready).await?;
            r.ctx
                .metrics
                .ready(KIND_BGP_GROUP, &r.obj.metadata, first_ready, r.now);
            Ok(Action::requeue(jittered(resync)))
        }
        // The apply plan never answers with a deletion step.
        GroupPlan::Paused
        | GroupPlan::WaitForDependents { .. }
        | GroupPlan::Delete { .. }
        | GroupPlan::WaitGone { .. }
        | GroupPlan::ReleaseFinalizer { .. } => Ok(Action::requeue(next_tick(poll))),
    }
}

fn wait_message(id: &str, cloud_status: &str) -> String {
    format!("Waiting: the cloud reports BGP group {id} as {cloud_status}")
}

/// Makes the cloud group go away once nothing uses it (or leaves it, as the policy says),
/// then lets the finalizer go. Any `Err` keeps the finalizer.
async fn ensure_group_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claimed_by();
    // Who still uses the group is known only once the BgpPeer cache has synced.
    let peers_known = r.ctx.store.get().is_some()
        && r.ctx
            .readiness
            .cache_synced
            .load(std::sync::atomic::Ordering::SeqCst);
    let dependents = r.ctx.dependents_of_group(r.obj);
    // Decide without the cloud first: pause, Orphan, never created, another owner, and
    // peers that still use the group need no call (and no credentials).
    let offline = r.group_plan(
        &GroupObservation::NotLookedUp,
        None,
        true,
        &dependents,
        claim.as_deref(),
    );
    match offline {
        GroupPlan::Paused => {
            r.write_status(&Outcome::Paused).await?;
            return Err(Error::CleanupPending(
                "deletion waits: the object is paused".to_owned(),
            ));
        }
        GroupPlan::ReleaseFinalizer { left } => return release(r, left),
        GroupPlan::WaitForDependents { names, in_cloud } => {
            return wait_for_dependents(r, &names, in_cloud).await;
        }
        _ => {}
    }
    if !peers_known {
        return Err(Error::CleanupPending(
            "deletion waits for the BgpPeer cache (which peers still use the group)".to_owned(),
        ));
    }
    let cloud = connect(r, true, claim.as_deref()).await?;
    let observed = observe::observe(r, &cloud.creds, true).await?;
    if let Some(info) = &observed.info {
        r.note_seen(info, &cloud.account);
    }
    let step = r.group_plan(
        &observed.observation,
        Some(&cloud.account),
        true,
        &dependents,
        claim.as_deref(),
    );
    debug!(?step, "cleanup plan");
    if !matches!(step, GroupPlan::Wait { .. } | GroupPlan::WaitGone { .. }) {
        r.status.waiting_since = None;
    }
    match step {
        GroupPlan::ReleaseFinalizer { left } => release(r, left),
        GroupPlan::WaitForDependents { names, in_cloud } => {
            wait_for_dependents(r, &names, in_cloud).await
        }
        GroupPlan::ReplayCreate { client_token } => {
            act::replay(r, &cloud, &client_token).await?;
            Err(Error::CleanupPending(
                "settled an interrupted create; deleting what it made next".into(),
            ))
        }
        GroupPlan::RecordCreateResult { id } => {
            act::record_create_result(r, &id).await?;
            Err(Error::CleanupPending(format!(
                "recorded BGP group {id}; deleting it next"
            )))
        }
        GroupPlan::Delete { id } => act::delete(r, &cloud.creds, &id).await,
        GroupPlan::WaitGone { id, overdue } => {
            r.start_waiting();
            match overdue {
                Some(waited) => r.report_overdue("Deleting", waited).await?,
                None => {
                    r.write_status(&Outcome::Progressing {
                        reason: reasons::DELETING,
                        message: format!("Waiting for BGP group {id} to be deleted"),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!(
                "waiting for BGP group {id} to be deleted"
            )))
        }
        GroupPlan::Wait {
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
                            "Deletion waits: the cloud reports the BGP group as {cloud_status}"
                        ),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!("group is {cloud_status}")))
        }
        GroupPlan::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        other => Err(Error::CleanupPending(format!(
            "unexpected cleanup step {other:?}"
        ))),
    }
}

/// The deletion waits for the peers that still use the group: `DependentsExist` naming them
/// (one Normal event when the wait starts); looked at again every poll interval.
async fn wait_for_dependents(
    r: &mut Reconciler<'_>,
    names: &[String],
    in_cloud: bool,
) -> Result<Action, Error> {
    const SHOWN: usize = 10;
    let mut list = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    let message = if in_cloud {
        format!(
            "Deletion waits: the cloud still lists {} BGP peer(s) in the group that no BgpPeer of this cluster manages ({list}); DeleteBgpGroup is called once they are gone",
            names.len()
        )
    } else {
        format!(
            "Deletion waits for {} BgpPeer(s) that still use the group: {list}; DeleteBgpGroup is called once they are gone",
            names.len()
        )
    };
    let was_waiting = super::status::ready_condition(&r.status)
        .is_some_and(|c| c.reason == reasons::DEPENDENTS_EXIST);
    if !was_waiting {
        r.event(
            EventType::Normal,
            events::DEPENDENTS_EXIST,
            "Delete",
            message.clone(),
        );
    }
    r.write_status(&Outcome::Progressing {
        reason: reasons::DEPENDENTS_EXIST,
        message,
    })
    .await?;
    Err(Error::CleanupPending(format!(
        "waiting for {} dependent peer(s)",
        names.len()
    )))
}

/// Lets the finalizer go, with an event saying what is left in the cloud.
fn release(r: &Reconciler<'_>, left: Left) -> Result<Action, Error> {
    let (reason, note) = match &left {
        Left::Nothing => match &r.status.bgp_group_id {
            Some(id) => (
                events::DELETED,
                format!("BGP group {id} is gone from the cloud"),
            ),
            None => return Ok(Action::await_change()),
        },
        Left::Orphaned(id) => (
            events::ORPHANED,
            format!("Left BGP group {id} in the cloud (deletionPolicy: Orphan)"),
        ),
        Left::OrphanedUnknown(token) => (
            events::ORPHANED,
            format!(
                "Released (deletionPolicy: Orphan) while a create with ClientToken {token} was unrecorded: any group it made is left in the cloud"
            ),
        ),
        Left::Owned { id, owner } => (
            events::RELEASED,
            format!("Released without touching BGP group {id}: it is owned by BgpGroup {owner}"),
        ),
    };
    r.event(EventType::Normal, reason, "Delete", note);
    Ok(Action::await_change())
}
