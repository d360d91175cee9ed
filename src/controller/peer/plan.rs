//! The pure heart of the reconcile: from (spec, status, what the cloud returned, the time) to
//! the one next step. No client, no clock of its own: everything here is unit-tested with
//! table-driven cases (`plan_tests.rs`).
//!
//! Two plans: [`plan_apply`] while the object lives, [`plan_cleanup`] once it is being
//! deleted; [`plan`] picks one. Every safety rule of the operator is decided here:
//! - pause holds everything, deletion included;
//! - a peer has one owner in the cluster ([`Claim`]);
//! - the peer is bound to the account, region, group and IP version it was created in;
//! - a peer the operator has not seen yet is "not visible yet", never "deleted", for the
//!   visibility grace period;
//! - a transition that lasts longer than the transition timeout is reported.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::conditions::reasons;
use crate::api::{BgpPeerSpec, BgpPeerStatus, DeletionPolicy, DriftPolicy, ManagementPolicy};
use crate::cloud::PeerStatus;

use super::super::key::same_ip;
pub use super::super::timing::Timing;
use super::super::token::client_token_for;

/// The cloud's view of a peer, reduced to what planning needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPeer {
    /// BgpPeerId.
    pub id: String,
    /// BgpGroupId the peer is in.
    pub bgp_group_id: String,
    /// Lifecycle status.
    pub status: PeerStatus,
    /// Peer IP address.
    pub peer_ip_address: Option<String>,
    /// IP version (`IPv4`/`IPv6`, any case).
    pub ip_version: Option<String>,
    /// BFD enabled.
    pub enable_bfd: Option<bool>,
    /// BFD hop count.
    pub bfd_multi_hop: Option<i32>,
}

/// What observing the cloud found for this object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Nothing was looked up: the object has no peer ID yet, or the plan needs no cloud.
    NotLookedUp,
    /// The peer with the ID in status (or the one to adopt) exists.
    Found(ObservedPeer),
    /// The cloud says there is no such peer, in the owning account (a by-ID read, or a
    /// consistent listing after our own deletion).
    NotFound,
}

/// Another object of the cluster that owns the peer this object names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `namespace/name` of the owner.
    pub owner: String,
}

/// Everything [`plan`] decides on.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// Object UID (the ClientToken's root).
    pub uid: &'a str,
    /// Desired state.
    pub spec: &'a BgpPeerSpec,
    /// Last written status.
    pub status: &'a BgpPeerStatus,
    /// What the cloud returned.
    pub observed: &'a Observation,
    /// The object has a deletion timestamp.
    pub deleting: bool,
    /// The object carries the pause annotation.
    pub paused: bool,
    /// The recorded create in flight was first requested longer ago than the replay window:
    /// its token may have expired at the API.
    pub replay_expired: bool,
    /// The account of the credentials in use (STS GetCallerIdentity); `None` when not
    /// looked up (a plan that needs no cloud).
    pub account: Option<&'a str>,
    /// Another object with a stronger claim on the peer this object names.
    pub claimed_by: Option<&'a Claim>,
    /// The time of this reconcile.
    pub now: Timestamp,
    /// Timing rules.
    pub timing: Timing,
    /// The object carries `vpc.alicloud.dev/deletion-protection: "true"`.
    pub deletion_protected: bool,
}

/// Mutable attributes in which the cloud differs from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerDiff {
    /// New peer IP address.
    pub peer_ip_address: Option<String>,
    /// New BFD flag.
    pub enable_bfd: Option<bool>,
    /// New BFD hop count.
    pub bfd_multi_hop: Option<i32>,
    /// The group the peer must move back to (moved out of band).
    pub bgp_group_id: Option<String>,
}

impl PeerDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        *self == PeerDiff::default()
    }

    /// Names of the fields that differ, for messages and events.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.peer_ip_address.is_some() {
            out.push("peerIpAddress");
        }
        if self.enable_bfd.is_some() {
            out.push("enableBfd");
        }
        if self.bfd_multi_hop.is_some() {
            out.push("bfdMultiHop");
        }
        if self.bgp_group_id.is_some() {
            out.push("bgpGroupId");
        }
        out
    }
}

/// The parameters of one ModifyBgpPeerAttribute call. `EnableBfd` is always stated (the API
/// defaults an absent one to false, which would switch BFD off), and so is the hop count
/// whenever BFD is on (the API wants them together).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModifyCall {
    /// PeerIpAddress, only when it changes.
    pub peer_ip_address: Option<String>,
    /// BgpGroupId, only when the peer must move back.
    pub bgp_group_id: Option<String>,
    /// EnableBfd, always.
    pub enable_bfd: bool,
    /// BfdMultiHop with BFD on: the spec's, else the cloud's current one, else 255.
    pub bfd_multi_hop: Option<i32>,
}

/// The hop count the API assumes when BFD is enabled without one.
pub const DEFAULT_BFD_MULTI_HOP: i32 = 255;

/// Builds the Modify call for `diff`, stating BFD explicitly.
pub fn modify_call(spec: &BgpPeerSpec, peer: &ObservedPeer, diff: &PeerDiff) -> ModifyCall {
    ModifyCall {
        peer_ip_address: diff.peer_ip_address.clone(),
        bgp_group_id: diff.bgp_group_id.clone(),
        enable_bfd: spec.enable_bfd,
        bfd_multi_hop: spec.enable_bfd.then(|| {
            spec.bfd_multi_hop
                .or(peer.bfd_multi_hop)
                .unwrap_or(DEFAULT_BFD_MULTI_HOP)
        }),
    }
}

/// What is left in the cloud when the finalizer is released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Left {
    /// Nothing of this object's is in the cloud (never created, or gone).
    Nothing,
    /// The peer is left on purpose (`deletionPolicy: Orphan`).
    Orphaned(String),
    /// A create may have made a peer whose ID was never learned (Orphan of an object whose
    /// create was in flight): the token names it.
    OrphanedUnknown(String),
    /// The operator had already asked the cloud to delete the peer when the policy became
    /// Orphan: it is going away, not left.
    AlreadyDeleting(String),
    /// `managementPolicy: Observe`: the operator never writes the peer, so it leaves it.
    Observed(String),
    /// The peer belongs to another object of the cluster, which keeps it.
    Owned {
        /// The peer.
        id: String,
        /// Its owner, `namespace/name`.
        owner: String,
    },
}

/// What the plan says while the object lives ([`plan_apply`]). `ensure_peer` carries it out;
/// the README's "How a reconcile works" lists the same steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyStep {
    /// Paused: make no cloud call, say so in the conditions.
    Paused,
    /// Record the token in status, then call CreateBgpPeer with it. `incarnation` is the one
    /// the token belongs to (bumped when a vanished peer is recreated).
    Create {
        /// The deterministic ClientToken.
        client_token: String,
        /// Incarnation number the token was derived from.
        incarnation: u32,
        /// True when the peer existed and vanished outside Kubernetes.
        recreate: bool,
    },
    /// A create with this token may have reached the cloud but its result was not recorded
    /// (crash, failed status write): replay it with the same token and the recorded
    /// parameters, which returns the same peer instead of a second one.
    ReplayCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// Like [`ApplyStep::ReplayCreate`], but the create is older than the replay window:
    /// search the group for a peer it may have made before replaying (a replay after the API
    /// forgot the token would make a second peer).
    VerifyCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// Take over the existing peer named by `spec.adoptBgpPeerId`.
    Adopt {
        /// The peer to adopt.
        id: String,
    },
    /// The peer to adopt does not exist or is in another group: the spec must change (or,
    /// when it is missing, the peer may still appear: read-after-write lag, a peer being
    /// created in the console).
    AdoptionImpossible {
        /// Why.
        message: String,
        /// The peer was not found (re-checked), rather than found somewhere else.
        missing: bool,
    },
    /// Cannot go on until something outside the controller changes (Stalled); no write call.
    Refuse {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong and how to get out.
        message: String,
    },
    /// The peer is in a transitional state (or not visible yet); look again later.
    Wait {
        /// The cloud status being waited on (`NotYetVisible` when the peer is not visible).
        cloud_status: String,
        /// Set once the wait has lasted longer than the transition timeout: report it.
        overdue: Option<Duration>,
    },
    /// Change the differing mutable attributes.
    Modify(PeerDiff),
    /// The cloud differs from the spec and `driftPolicy: Report` says to leave it: report.
    Drifted(PeerDiff),
    /// `managementPolicy: Observe` found the peer: report it and how it differs, never write.
    Observed(PeerDiff),
    /// `managementPolicy: Observe` and the peer does not exist: say so (Stalled), look again
    /// at the resync period.
    ObservedMissing {
        /// What is missing where.
        message: String,
    },
    /// Everything matches: Ready.
    UpToDate,
}

/// What the plan says once the object is being deleted ([`plan_cleanup`]).
/// `ensure_peer_absent` carries it out; only [`CleanupStep::ReleaseFinalizer`] lets the
/// finalizer go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CleanupStep {
    /// Paused: the deletion waits, whatever the deletion policy.
    Paused,
    /// A create may be in flight: learn its peer ID first by replaying it (so that the peer
    /// is deleted instead of leaked).
    ReplayCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// Like [`CleanupStep::ReplayCreate`] for a create older than the replay window: verify
    /// by listing instead.
    VerifyCreate {
        /// The recorded ClientToken.
        client_token: String,
    },
    /// The deletion cannot go on until something outside the controller changes (another
    /// account's credentials, deletion protection); the finalizer stays.
    Refuse {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong and how to get out.
        message: String,
    },
    /// The peer is Pending or Modifying and refuses deletion: wait.
    Wait {
        /// The cloud status being waited on.
        cloud_status: String,
        /// Set once the wait has lasted longer than the transition timeout: report it.
        overdue: Option<Duration>,
    },
    /// Delete the cloud peer (deletionPolicy Delete).
    Delete {
        /// The peer to delete.
        id: String,
    },
    /// Deletion was requested and the peer is going away; wait until it is gone.
    WaitGone {
        /// The peer being deleted.
        id: String,
        /// Set once the wait has lasted longer than the transition timeout: report it.
        overdue: Option<Duration>,
    },
    /// Nothing (more) to do in the cloud: remove the finalizer.
    ReleaseFinalizer {
        /// What is left behind.
        left: Left,
    },
}

/// Either plan: what [`plan`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The object lives.
    Apply(ApplyStep),
    /// The object is being deleted.
    Cleanup(CleanupStep),
}

impl From<ApplyStep> for Plan {
    fn from(step: ApplyStep) -> Self {
        Plan::Apply(step)
    }
}

impl From<CleanupStep> for Plan {
    fn from(step: CleanupStep) -> Self {
        Plan::Cleanup(step)
    }
}

/// The rules both plans check first (see [`guards`]).
enum Guard {
    Paused,
    Refuse {
        reason: &'static str,
        message: String,
    },
}

impl From<Guard> for ApplyStep {
    fn from(g: Guard) -> Self {
        match g {
            Guard::Paused => ApplyStep::Paused,
            Guard::Refuse { reason, message } => ApplyStep::Refuse { reason, message },
        }
    }
}

impl From<Guard> for CleanupStep {
    fn from(g: Guard) -> Self {
        match g {
            Guard::Paused => CleanupStep::Paused,
            Guard::Refuse { reason, message } => CleanupStep::Refuse { reason, message },
        }
    }
}

/// The recorded create, replayed or (past the replay window) verified.
enum Replay {
    Replay(String),
    Verify(String),
}

impl From<Replay> for ApplyStep {
    fn from(r: Replay) -> Self {
        match r {
            Replay::Replay(client_token) => ApplyStep::ReplayCreate { client_token },
            Replay::Verify(client_token) => ApplyStep::VerifyCreate { client_token },
        }
    }
}

impl From<Replay> for CleanupStep {
    fn from(r: Replay) -> Self {
        match r {
            Replay::Replay(client_token) => CleanupStep::ReplayCreate { client_token },
            Replay::Verify(client_token) => CleanupStep::VerifyCreate { client_token },
        }
    }
}

/// Decides the next step. Pure: same input, same plan.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    if input.deleting {
        plan_cleanup(input).into()
    } else {
        plan_apply(input).into()
    }
}

/// The rules every plan checks first: pause, then the account the peer is bound to.
fn guards(input: &PlanInput<'_>) -> Option<Guard> {
    if input.paused {
        return Some(Guard::Paused);
    }
    let status = input.status;
    if let (Some(owner), Some(current)) = (status.account_id.as_deref(), input.account)
        && owner != current
    {
        let what = status
            .bgp_peer_id
            .as_deref()
            .or(status.client_token.as_deref())
            .unwrap_or("the peer");
        return Some(Guard::Refuse {
            reason: reasons::ACCOUNT_MISMATCH,
            message: format!(
                "{what} belongs to Alibaba Cloud account {owner}, but the credentials in use are of account {current}: nothing is created, recreated or released with them (the peer would look absent). Restore credentials of account {owner}, or set deletionPolicy: Orphan to let this object go without touching the peer"
            ),
        });
    }
    None
}

/// The plan while the object lives.
pub fn plan_apply(input: &PlanInput<'_>) -> ApplyStep {
    if input.spec.management_policy == ManagementPolicy::Observe {
        return plan_observe(input);
    }
    if let Some(guard) = guards(input) {
        return guard.into();
    }
    let status = input.status;
    let spec = input.spec;
    if let Some(changed) = immutable_changed(spec, status) {
        return ApplyStep::Refuse {
            reason: reasons::IMMUTABLE_FIELD_CHANGED,
            message: format!(
                "{changed}; the existing peer cannot move. Restore the spec (or delete this object and create a new one)"
            ),
        };
    }
    if let Some(claim) = input.claimed_by {
        let id = status
            .bgp_peer_id
            .as_deref()
            .or(spec.adopt_bgp_peer_id.as_deref())
            .unwrap_or_default();
        return ApplyStep::Refuse {
            reason: reasons::ALREADY_OWNED,
            message: format!(
                "BGP peer {id} is already owned by {}: a cloud peer has one owner in the cluster. Remove spec.adoptBgpPeerId's object or the owner first",
                claim.owner
            ),
        };
    }
    match (&status.bgp_peer_id, input.observed) {
        // Nothing recorded yet.
        (None, _) => {
            if let Some(id) = &spec.adopt_bgp_peer_id {
                return plan_adoption(input, id);
            }
            match &status.client_token {
                Some(token) => replay(token, input.replay_expired).into(),
                None => ApplyStep::Create {
                    client_token: client_token_for(input.uid, status.incarnation),
                    incarnation: status.incarnation,
                    recreate: false,
                },
            }
        }
        (Some(_), Observation::NotLookedUp) => ApplyStep::Wait {
            cloud_status: "Unknown".to_owned(),
            overdue: None,
        },
        (Some(_), Observation::NotFound) => vanished(input),
        (Some(_), Observation::Found(peer)) => match &peer.status {
            // A Deleted peer is gone, as if it were absent.
            PeerStatus::Deleted => vanished(input),
            PeerStatus::Available => {
                let diff = diff(spec, peer);
                if diff.is_empty() {
                    ApplyStep::UpToDate
                } else if spec.drift_policy == DriftPolicy::Report {
                    ApplyStep::Drifted(diff)
                } else {
                    ApplyStep::Modify(diff)
                }
            }
            other => wait(input, other.to_string()),
        },
    }
}

/// `managementPolicy: Observe`: only reads, whatever the cloud says. The account, claim and
/// placement rules guard writes, so they do not apply.
fn plan_observe(input: &PlanInput<'_>) -> ApplyStep {
    if input.paused {
        return ApplyStep::Paused;
    }
    let id = input
        .status
        .bgp_peer_id
        .as_deref()
        .or(input.spec.adopt_bgp_peer_id.as_deref())
        .unwrap_or_default();
    match input.observed {
        Observation::NotLookedUp => ApplyStep::Wait {
            cloud_status: "Unknown".to_owned(),
            overdue: None,
        },
        Observation::NotFound => ApplyStep::ObservedMissing {
            message: format!(
                "BGP peer {id} does not exist in region {} (managementPolicy: Observe: the operator only reads it)",
                input.spec.region_id
            ),
        },
        Observation::Found(peer) => ApplyStep::Observed(diff(input.spec, peer)),
    }
}

fn plan_adoption(input: &PlanInput<'_>, id: &str) -> ApplyStep {
    match input.observed {
        Observation::Found(peer) if peer.bgp_group_id == input.spec.bgp_group_id => {
            ApplyStep::Adopt { id: id.to_owned() }
        }
        Observation::Found(peer) => ApplyStep::AdoptionImpossible {
            message: format!(
                "peer {id} to adopt is in group {}, not in spec.bgpGroupId {}",
                peer.bgp_group_id, input.spec.bgp_group_id
            ),
            missing: false,
        },
        Observation::NotFound => ApplyStep::AdoptionImpossible {
            message: format!(
                "peer {id} to adopt does not exist in region {}",
                input.spec.region_id
            ),
            missing: true,
        },
        // Look it up first.
        Observation::NotLookedUp => ApplyStep::Wait {
            cloud_status: "Unknown".to_owned(),
            overdue: None,
        },
    }
}

/// The recorded peer is absent (or Deleted) in the owning account.
fn vanished(input: &PlanInput<'_>) -> ApplyStep {
    let status = input.status;
    if !status.peer_seen()
        && within(status.bgp_peer_id_recorded_at.as_ref(), input, |t| {
            t.visibility_grace
        })
    {
        return ApplyStep::Wait {
            cloud_status: reasons::NOT_YET_VISIBLE.to_owned(),
            overdue: None,
        };
    }
    if status.adopted {
        // An adopted peer that vanished is not ours to recreate from nothing: the user
        // chose a specific peer. Say so and wait for the spec to change.
        return ApplyStep::AdoptionImpossible {
            message: "the adopted peer no longer exists in the cloud".to_owned(),
            missing: true,
        };
    }
    let incarnation = status.incarnation.saturating_add(1);
    ApplyStep::Create {
        client_token: client_token_for(input.uid, incarnation),
        incarnation,
        recreate: true,
    }
}

/// A wait on `cloud_status`, overdue once it lasted longer than the transition timeout.
fn wait(input: &PlanInput<'_>, cloud_status: String) -> ApplyStep {
    ApplyStep::Wait {
        cloud_status,
        overdue: overdue(input),
    }
}

fn overdue(input: &PlanInput<'_>) -> Option<Duration> {
    let since = input.status.waiting_since.as_ref()?;
    let waited = elapsed(since, input.now);
    (waited > input.timing.transition_timeout).then_some(waited)
}

/// True while less than the chosen timing has passed since `at` (and when `at` is unknown,
/// which a status written before the field existed leaves: such a peer was seen long ago).
fn within(
    at: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    input: &PlanInput<'_>,
    limit: impl Fn(&Timing) -> Duration,
) -> bool {
    at.is_some_and(|t| elapsed(t, input.now) < limit(&input.timing))
}

fn elapsed(at: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time, now: Timestamp) -> Duration {
    let ms = now.as_millisecond() - at.0.as_millisecond();
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The immutable field the spec changed against what the existing peer was made with.
fn immutable_changed(spec: &BgpPeerSpec, status: &BgpPeerStatus) -> Option<String> {
    status.bgp_peer_id.as_ref()?;
    if let Some(region) = &status.region_id
        && *region != spec.region_id
    {
        return Some(format!(
            "spec.regionId is {} but the peer was made in {region}",
            spec.region_id
        ));
    }
    if let Some(group) = &status.bgp_group_id
        && *group != spec.bgp_group_id
    {
        return Some(format!(
            "spec.bgpGroupId is {} but the peer was made in {group}",
            spec.bgp_group_id
        ));
    }
    if let Some(v) = status.ip_version
        && v != spec.ip_version
    {
        return Some(format!(
            "spec.ipVersion is {} but the peer was made as {}",
            spec.ip_version.as_api_str(),
            v.as_api_str()
        ));
    }
    None
}

fn replay(token: &str, expired: bool) -> Replay {
    let client_token = token.to_owned();
    if expired {
        Replay::Verify(client_token)
    } else {
        Replay::Replay(client_token)
    }
}

/// The plan once the object is being deleted.
pub fn plan_cleanup(input: &PlanInput<'_>) -> CleanupStep {
    let status = input.status;
    // Pause holds every deletion, Orphan and never-created objects included.
    if input.paused {
        return CleanupStep::Paused;
    }
    if let Some(claim) = input.claimed_by
        && let Some(id) = status
            .bgp_peer_id
            .clone()
            .or_else(|| input.spec.adopt_bgp_peer_id.clone())
    {
        return CleanupStep::ReleaseFinalizer {
            left: Left::Owned {
                id,
                owner: claim.owner.clone(),
            },
        };
    }
    if input.spec.management_policy == ManagementPolicy::Observe {
        return CleanupStep::ReleaseFinalizer {
            left: match status
                .bgp_peer_id
                .clone()
                .or_else(|| input.spec.adopt_bgp_peer_id.clone())
            {
                Some(id) => Left::Observed(id),
                None => Left::Nothing,
            },
        };
    }
    if input.spec.deletion_policy == DeletionPolicy::Orphan {
        let left = match (&status.bgp_peer_id, &status.client_token) {
            (Some(id), _) if status.delete_requested_at.is_some() => {
                Left::AlreadyDeleting(id.clone())
            }
            (Some(id), _) => Left::Orphaned(id.clone()),
            (None, Some(token)) if input.spec.adopt_bgp_peer_id.is_none() => {
                Left::OrphanedUnknown(token.clone())
            }
            (None, _) => Left::Nothing,
        };
        return CleanupStep::ReleaseFinalizer { left };
    }
    match (&status.bgp_peer_id, input.observed) {
        // Never created (or adoption never completed): nothing of ours in the cloud.
        (None, _) if status.client_token.is_none() || input.spec.adopt_bgp_peer_id.is_some() => {
            CleanupStep::ReleaseFinalizer {
                left: Left::Nothing,
            }
        }
        _ if input.deletion_protected => CleanupStep::Refuse {
            reason: reasons::DELETION_PROTECTED,
            message: format!(
                "the object is being deleted, but {} is \"true\": BGP peer {} is not deleted until the annotation is removed (or deletionPolicy: Orphan leaves it in the cloud)",
                crate::api::DELETION_PROTECTION_ANNOTATION,
                status
                    .bgp_peer_id
                    .as_deref()
                    .unwrap_or("of the create in flight")
            ),
        },
        _ => {
            if let Some(guard) = guards(input) {
                return guard.into();
            }
            cleanup_in_cloud(input)
        }
    }
}

fn cleanup_in_cloud(input: &PlanInput<'_>) -> CleanupStep {
    let status = input.status;
    match (&status.bgp_peer_id, input.observed) {
        // A create may be in flight: learn its peer ID first (replay with the same token),
        // so that the peer is deleted instead of leaked.
        (None, _) => replay(
            status.client_token.as_deref().unwrap_or_default(),
            input.replay_expired,
        )
        .into(),
        (Some(id), Observation::NotFound) => {
            // Absent right after our own create may be read-after-write lag: never release
            // over a peer that may still appear.
            if !status.peer_seen()
                && status.delete_requested_at.is_none()
                && within(status.bgp_peer_id_recorded_at.as_ref(), input, |t| {
                    t.visibility_grace
                })
            {
                return CleanupStep::WaitGone {
                    id: id.clone(),
                    overdue: None,
                };
            }
            CleanupStep::ReleaseFinalizer {
                left: Left::Nothing,
            }
        }
        (Some(id), Observation::NotLookedUp) => CleanupStep::WaitGone {
            id: id.clone(),
            overdue: None,
        },
        (Some(id), Observation::Found(peer)) => match &peer.status {
            PeerStatus::Deleted => CleanupStep::ReleaseFinalizer {
                left: Left::Nothing,
            },
            PeerStatus::Deleting => CleanupStep::WaitGone {
                id: id.clone(),
                overdue: overdue(input),
            },
            // Pending and Modifying refuse deletion (InvalidStatus.CannotOperate): wait.
            PeerStatus::Pending | PeerStatus::Modifying => CleanupStep::Wait {
                cloud_status: peer.status.to_string(),
                overdue: overdue(input),
            },
            _ => CleanupStep::Delete { id: id.clone() },
        },
    }
}

/// The mutable attributes in which the cloud differs from the spec.
pub fn diff(spec: &BgpPeerSpec, peer: &ObservedPeer) -> PeerDiff {
    let mut out = PeerDiff::default();
    if let Some(ip) = &spec.peer_ip_address
        && !same_ip(ip, peer.peer_ip_address.as_deref().unwrap_or_default())
    {
        out.peer_ip_address = Some(ip.to_string());
    }
    if peer.enable_bfd.unwrap_or(false) != spec.enable_bfd {
        out.enable_bfd = Some(spec.enable_bfd);
    }
    // The hop count only matters with BFD on; omitted means "the cloud's default".
    if spec.enable_bfd
        && let Some(hops) = spec.bfd_multi_hop
        && peer.bfd_multi_hop != Some(hops)
    {
        out.bfd_multi_hop = Some(hops);
        // ModifyBgpPeerAttribute wants BFD stated together with the hop count.
        out.enable_bfd = Some(true);
    }
    if !peer.bgp_group_id.is_empty() && peer.bgp_group_id != spec.bgp_group_id {
        out.bgp_group_id = Some(spec.bgp_group_id.to_string());
    }
    out
}

/// Each differing field as `field: cloud → desired`, for the `UpToDate` condition.
pub fn describe_drift(spec: &BgpPeerSpec, peer: &ObservedPeer, diff: &PeerDiff) -> Vec<String> {
    let show = |v: Option<String>| v.unwrap_or_else(|| "unset".to_owned());
    let mut out = Vec::new();
    if let Some(ip) = &diff.peer_ip_address {
        out.push(format!(
            "peerIpAddress: {} → {ip}",
            show(peer.peer_ip_address.clone())
        ));
    }
    if diff.enable_bfd.is_some() && peer.enable_bfd.unwrap_or(false) != spec.enable_bfd {
        out.push(format!(
            "enableBfd: {} → {}",
            peer.enable_bfd.unwrap_or(false),
            spec.enable_bfd
        ));
    }
    if let Some(hops) = diff.bfd_multi_hop {
        out.push(format!(
            "bfdMultiHop: {} → {hops}",
            show(peer.bfd_multi_hop.map(|h| h.to_string()))
        ));
    }
    if let Some(group) = &diff.bgp_group_id {
        out.push(format!("bgpGroupId: {} → {group}", peer.bgp_group_id));
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
