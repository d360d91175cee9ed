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
mod apply;
pub mod authkey;
mod cleanup;
mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;

use apply::ensure_group;
use cleanup::ensure_group_absent;
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
