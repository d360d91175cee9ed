//! The BgpGroup's pure decision: from (spec, status, what the cloud and the cluster showed,
//! the time) to the one next step. No client, no clock of its own; every rule has a case in
//! `plan_tests.rs`.
//!
//! The safety rules, as for peers: pause holds everything (deletion included); the group is
//! bound to the account, region, VBR and IP version it was created in; a group the operator
//! created but has not seen yet is "not visible yet", never "deleted", for the visibility
//! grace period; a create whose result was never recorded is replayed with its ClientToken
//! (within the replay window) and never simply made again; a transition that lasts longer
//! than the transition timeout is reported. And the deletion order: the group is deleted only
//! once no `BgpPeer` resolves to it and the cloud lists no peer in it, so DeleteBgpGroup is
//! not answered `DependencyViolation.BgpPeer`.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::DeletionPolicy;
use crate::api::conditions::reasons;
use crate::api::group::{BgpGroupSpec, BgpGroupStatus, DEFAULT_LOCAL_ASN};
use crate::cloud::PeerStatus;

use super::super::timing::Timing;
use super::super::token::client_token_for;

/// The cloud's view of a group, reduced to what planning needs. The auth key is not here:
/// observing compares the Secret's key with the cloud's and says only whether they agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedGroup {
    /// BgpGroupId.
    pub id: String,
    /// Lifecycle status (the peers' state names).
    pub status: PeerStatus,
    /// RegionId.
    pub region_id: Option<String>,
    /// RouterId (the VBR).
    pub router_id: Option<String>,
    /// IP version (`IPv4`/`IPv6`, canonical spelling).
    pub ip_version: Option<String>,
    /// PeerAsn.
    pub peer_asn: Option<i64>,
    /// LocalAsn.
    pub local_asn: Option<i64>,
    /// IsFake.
    pub is_fake_asn: Option<bool>,
    /// RouteLimit.
    pub route_limit: Option<i64>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The cloud holds the key `spec.authKeySecretRef` names (or neither has one). `None`:
    /// not compared (the Secret was not read, e.g. during deletion).
    pub auth_key_in_sync: Option<bool>,
    /// Peers the cloud lists in the group (looked up only before a deletion).
    pub peers: Option<Vec<String>>,
}

/// What observing the cloud found for this object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupObservation {
    /// Nothing was looked up (the plan needs no cloud, or there is no ID yet).
    NotLookedUp,
    /// The group with the recorded ID (or the one to adopt) exists.
    Found(Box<ObservedGroup>),
    /// A by-ID read in the owning account answered no such group.
    NotFound,
}

/// What a person said about a create older than the replay window (annotation
/// `vpc.alicloud.dev/create-result: <clientToken>=<group ID>|none`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateResult {
    /// The token the answer is for.
    pub client_token: String,
    /// The group that create made, or `None` for "it made none".
    pub group_id: Option<String>,
}

/// Everything the plan looks at.
#[derive(Clone, Debug)]
pub struct GroupPlanInput<'a> {
    /// The object's UID (the ClientToken is derived from it).
    pub uid: &'a str,
    /// The spec.
    pub spec: &'a BgpGroupSpec,
    /// The status as this reconcile has it.
    pub status: &'a BgpGroupStatus,
    /// The cloud.
    pub observed: &'a GroupObservation,
    /// The object is being deleted.
    pub deleting: bool,
    /// The pause annotation is set.
    pub paused: bool,
    /// The account of the credentials in use (`None`: not resolved yet).
    pub account: Option<&'a str>,
    /// `namespace/name` of every BgpPeer that still resolves to this group.
    pub dependents: &'a [String],
    /// The recorded create is older than the replay window.
    pub replay_expired: bool,
    /// A person's answer about an old create.
    pub create_result: Option<&'a CreateResult>,
    /// Another BgpGroup of the cluster owns the group this object names.
    pub claimed_by: Option<&'a str>,
    /// Now.
    pub now: Timestamp,
    /// Visibility grace and transition timeout.
    pub timing: Timing,
}

/// A mutable field that differs between the spec and the cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// `peerAsn`.
    PeerAsn,
    /// `localAsn` (45104 when the spec has none).
    LocalAsn,
    /// `isFakeAsn`.
    IsFakeAsn,
    /// `routeQuota` (only when the spec sets one).
    RouteQuota,
    /// `name` (only when the spec sets one).
    Name,
    /// `description` (only when the spec sets one).
    Description,
    /// The auth key: set from the Secret, or cleared when the spec names none.
    AuthKey,
}

impl Field {
    /// The spec field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::PeerAsn => "peerAsn",
            Field::LocalAsn => "localAsn",
            Field::IsFakeAsn => "isFakeAsn",
            Field::RouteQuota => "routeQuota",
            Field::Name => "name",
            Field::Description => "description",
            Field::AuthKey => "authKey",
        }
    }
}

/// Why the object is released, and what it leaves in the cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Left {
    /// No group of this object exists (never created, deleted, or gone).
    Nothing,
    /// The group is left in the cloud (`deletionPolicy: Orphan`).
    Orphaned(String),
    /// `Orphan` while a create was unrecorded: any group it made is left.
    OrphanedUnknown(String),
    /// The group is owned by another BgpGroup object: released without touching it.
    Owned {
        /// The group.
        id: String,
        /// `namespace/name` of its owner.
        owner: String,
    },
}

/// The one next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupPlan {
    /// Paused: no cloud call.
    Paused,
    /// Record the token, then CreateBgpGroup.
    Create {
        /// ClientToken.
        client_token: String,
        /// Incarnation the token belongs to.
        incarnation: u32,
        /// The recorded group vanished from the cloud.
        recreate: bool,
    },
    /// A create's result was never recorded: call it again with the same token.
    ReplayCreate {
        /// The recorded token.
        client_token: String,
    },
    /// A person named the group an old create made.
    RecordCreateResult {
        /// That group.
        id: String,
    },
    /// Take over `spec.adoptBgpGroupId`.
    Adopt {
        /// The group.
        id: String,
    },
    /// The group to adopt is missing or does not match the spec.
    AdoptionImpossible {
        /// What is wrong.
        message: String,
        /// It is missing (it may still appear).
        missing: bool,
    },
    /// A safety rule refuses to act.
    Refuse {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong and how to get out.
        message: String,
    },
    /// The group is in a transition (or not visible yet).
    Wait {
        /// The cloud status, or [`reasons::NOT_YET_VISIBLE`].
        cloud_status: String,
        /// How long the wait has lasted, when longer than the transition timeout.
        overdue: Option<Duration>,
    },
    /// ModifyBgpGroupAttribute with these fields.
    Modify(Vec<Field>),
    /// Available and as specified.
    UpToDate,
    /// Deletion waits for the peers that still use the group.
    WaitForDependents {
        /// `namespace/name` of the BgpPeers, or the cloud's peer IDs.
        names: Vec<String>,
        /// The names are peers the cloud lists, not objects of the cluster.
        in_cloud: bool,
    },
    /// DeleteBgpGroup.
    Delete {
        /// The group.
        id: String,
    },
    /// DeleteBgpGroup was accepted; wait until the group is gone.
    WaitGone {
        /// The group.
        id: String,
        /// How long the wait has lasted, when longer than the transition timeout.
        overdue: Option<Duration>,
    },
    /// Let the finalizer go.
    ReleaseFinalizer {
        /// What stays in the cloud.
        left: Left,
    },
}

/// The plan for `input`.
pub fn plan(input: &GroupPlanInput<'_>) -> GroupPlan {
    if input.paused {
        return GroupPlan::Paused;
    }
    if input.deleting {
        plan_cleanup(input)
    } else {
        plan_apply(input)
    }
}

fn plan_apply(input: &GroupPlanInput<'_>) -> GroupPlan {
    let (spec, status) = (input.spec, input.status);
    if let Some(refusal) = immutable_changed(input).or_else(|| account_mismatch(input)) {
        return refusal;
    }
    if let Some(owner) = input.claimed_by {
        let id = status
            .bgp_group_id
            .as_deref()
            .or(spec.adopt_bgp_group_id.as_deref())
            .unwrap_or_default();
        return GroupPlan::Refuse {
            reason: reasons::ALREADY_OWNED,
            message: format!(
                "BGP group {id} is managed by BgpGroup {owner}; a cloud group has at most one owner in the cluster"
            ),
        };
    }
    let Some(id) = status.bgp_group_id.as_deref() else {
        return plan_without_id(input);
    };
    match input.observed {
        // The offline pass: nothing more to decide without the cloud.
        GroupObservation::NotLookedUp => GroupPlan::Wait {
            cloud_status: "NotLookedUp".to_owned(),
            overdue: None,
        },
        GroupObservation::NotFound => {
            if status.cloud.is_none() && within_grace(input) {
                return GroupPlan::Wait {
                    cloud_status: reasons::NOT_YET_VISIBLE.to_owned(),
                    overdue: None,
                };
            }
            if status.adopted {
                return GroupPlan::AdoptionImpossible {
                    message: format!(
                        "the adopted BGP group {id} no longer exists in the cloud; it is not created again (spec.adoptBgpGroupId)"
                    ),
                    missing: true,
                };
            }
            let incarnation = status.incarnation.saturating_add(1);
            GroupPlan::Create {
                client_token: client_token_for(input.uid, incarnation),
                incarnation,
                recreate: true,
            }
        }
        GroupObservation::Found(g) => match g.status {
            PeerStatus::Available => {
                let fields = diff(spec, g);
                if fields.is_empty() {
                    GroupPlan::UpToDate
                } else {
                    GroupPlan::Modify(fields)
                }
            }
            _ => GroupPlan::Wait {
                cloud_status: g.status.to_string(),
                overdue: overdue(input),
            },
        },
    }
}

/// No group ID recorded: replay an unrecorded create, adopt, or create.
fn plan_without_id(input: &GroupPlanInput<'_>) -> GroupPlan {
    let (spec, status) = (input.spec, input.status);
    if let Some(token) = &status.client_token {
        return unrecorded_create(input, token, false);
    }
    if let Some(id) = &spec.adopt_bgp_group_id {
        return match input.observed {
            GroupObservation::Found(g) => match adoption_mismatch(spec, g) {
                Some(message) => GroupPlan::AdoptionImpossible {
                    message,
                    missing: false,
                },
                None => GroupPlan::Adopt { id: id.clone() },
            },
            GroupObservation::NotFound => GroupPlan::AdoptionImpossible {
                message: format!(
                    "BGP group {id} (spec.adoptBgpGroupId) does not exist in region {}",
                    spec.region_id
                ),
                missing: true,
            },
            GroupObservation::NotLookedUp => GroupPlan::Wait {
                cloud_status: "NotLookedUp".to_owned(),
                overdue: None,
            },
        };
    }
    GroupPlan::Create {
        client_token: client_token_for(input.uid, status.incarnation),
        incarnation: status.incarnation,
        recreate: false,
    }
}

/// A create with `token` whose result was never recorded.
fn unrecorded_create(input: &GroupPlanInput<'_>, token: &str, deleting: bool) -> GroupPlan {
    if !input.replay_expired {
        return GroupPlan::ReplayCreate {
            client_token: token.to_owned(),
        };
    }
    match input.create_result.filter(|r| r.client_token == token) {
        Some(CreateResult {
            group_id: Some(id), ..
        }) => GroupPlan::RecordCreateResult { id: id.clone() },
        Some(CreateResult { group_id: None, .. }) if deleting => GroupPlan::ReleaseFinalizer {
            left: Left::Nothing,
        },
        Some(CreateResult { group_id: None, .. }) => {
            let incarnation = input.status.incarnation.saturating_add(1);
            GroupPlan::Create {
                client_token: client_token_for(input.uid, incarnation),
                incarnation,
                recreate: false,
            }
        }
        None => GroupPlan::Refuse {
            reason: reasons::CREATE_UNVERIFIED,
            message: format!(
                "a CreateBgpGroup with ClientToken {token} was requested but its result was never recorded, and it is older than the replay window (the API may have forgotten the token, so a replay could make a second group); look for the group on VBR {} and annotate {}: \"{token}=<group ID>\" (or \"{token}=none\" if it made none)",
                input.spec.router_id,
                crate::api::CREATE_RESULT_ANNOTATION
            ),
        },
    }
}

fn plan_cleanup(input: &GroupPlanInput<'_>) -> GroupPlan {
    let (spec, status) = (input.spec, input.status);
    let id = status.bgp_group_id.as_deref();
    if spec.deletion_policy == DeletionPolicy::Orphan {
        let left = match (id, &status.client_token) {
            (Some(id), _) => Left::Orphaned(id.to_owned()),
            (None, Some(token)) => Left::OrphanedUnknown(token.clone()),
            (None, None) => Left::Nothing,
        };
        return GroupPlan::ReleaseFinalizer { left };
    }
    if id.is_none() && status.client_token.is_none() {
        // Never created (an adoption that never happened included).
        return GroupPlan::ReleaseFinalizer {
            left: Left::Nothing,
        };
    }
    if let (Some(id), Some(owner)) = (id, input.claimed_by) {
        // Another object owns the group: deleting this one must not delete it.
        return GroupPlan::ReleaseFinalizer {
            left: Left::Owned {
                id: id.to_owned(),
                owner: owner.to_owned(),
            },
        };
    }
    if !input.dependents.is_empty() {
        return GroupPlan::WaitForDependents {
            names: input.dependents.to_vec(),
            in_cloud: false,
        };
    }
    if let Some(refusal) = account_mismatch(input) {
        return refusal;
    }
    let Some(id) = id else {
        let token = status.client_token.clone().unwrap_or_default();
        return unrecorded_create(input, &token, true);
    };
    match input.observed {
        GroupObservation::NotLookedUp => GroupPlan::Wait {
            cloud_status: "NotLookedUp".to_owned(),
            overdue: None,
        },
        GroupObservation::NotFound => {
            if status.delete_requested_at.is_none() && status.cloud.is_none() && within_grace(input)
            {
                // Created a moment ago and not visible yet: deleting "nothing" would leak it.
                return GroupPlan::Wait {
                    cloud_status: reasons::NOT_YET_VISIBLE.to_owned(),
                    overdue: None,
                };
            }
            GroupPlan::ReleaseFinalizer {
                left: Left::Nothing,
            }
        }
        GroupObservation::Found(g) => match g.status {
            PeerStatus::Deleting | PeerStatus::Deleted => GroupPlan::WaitGone {
                id: id.to_owned(),
                overdue: overdue(input),
            },
            _ if status.delete_requested_at.is_some() => GroupPlan::WaitGone {
                id: id.to_owned(),
                overdue: overdue(input),
            },
            PeerStatus::Available => match g.peers.as_deref() {
                Some(peers) if !peers.is_empty() => GroupPlan::WaitForDependents {
                    names: peers.to_vec(),
                    in_cloud: true,
                },
                _ => GroupPlan::Delete { id: id.to_owned() },
            },
            _ => GroupPlan::Wait {
                cloud_status: g.status.to_string(),
                overdue: overdue(input),
            },
        },
    }
}

/// The spec names another region, VBR or IP version than the group was made with (the CRD's
/// immutability rules were bypassed).
fn immutable_changed(input: &GroupPlanInput<'_>) -> Option<GroupPlan> {
    let (spec, status) = (input.spec, input.status);
    let mut changed = Vec::new();
    if status
        .region_id
        .as_deref()
        .is_some_and(|r| r != spec.region_id)
    {
        changed.push(format!(
            "regionId {} → {}",
            status.region_id.as_deref().unwrap_or_default(),
            spec.region_id
        ));
    }
    if status
        .router_id
        .as_deref()
        .is_some_and(|r| r != spec.router_id)
    {
        changed.push(format!(
            "routerId {} → {}",
            status.router_id.as_deref().unwrap_or_default(),
            spec.router_id
        ));
    }
    if status.ip_version.is_some_and(|v| v != spec.ip_version) {
        changed.push(format!(
            "ipVersion {} → {}",
            status
                .ip_version
                .map(|v| v.as_api_str())
                .unwrap_or_default(),
            spec.ip_version.as_api_str()
        ));
    }
    (!changed.is_empty()).then(|| GroupPlan::Refuse {
        reason: reasons::IMMUTABLE_FIELD_CHANGED,
        message: format!(
            "the BGP group was made with other values ({}); these cannot change: restore them, or delete this object and create a new one",
            changed.join(", ")
        ),
    })
}

/// The credentials belong to another account than the one that owns the group.
fn account_mismatch(input: &GroupPlanInput<'_>) -> Option<GroupPlan> {
    let (Some(owner), Some(now)) = (input.status.account_id.as_deref(), input.account) else {
        return None;
    };
    (owner != now).then(|| GroupPlan::Refuse {
        reason: reasons::ACCOUNT_MISMATCH,
        message: format!(
            "the BGP group belongs to account {owner}, but the credentials in use are of account {now}: nothing is created, changed or deleted with them; restore credentials of account {owner} (or set deletionPolicy: Orphan to let the object go)"
        ),
    })
}

/// Why the group to adopt cannot be this object's, if it cannot.
fn adoption_mismatch(spec: &BgpGroupSpec, g: &ObservedGroup) -> Option<String> {
    let mut wrong = Vec::new();
    if g.router_id.as_deref().is_some_and(|r| r != spec.router_id) {
        wrong.push(format!(
            "it is on VBR {}, not {}",
            g.router_id.as_deref().unwrap_or_default(),
            spec.router_id
        ));
    }
    if g.region_id.as_deref().is_some_and(|r| r != spec.region_id) {
        wrong.push(format!(
            "it is in region {}, not {}",
            g.region_id.as_deref().unwrap_or_default(),
            spec.region_id
        ));
    }
    if g.ip_version
        .as_deref()
        .is_some_and(|v| !v.eq_ignore_ascii_case(spec.ip_version.as_api_str()))
    {
        wrong.push(format!(
            "its IP version is {}, not {}",
            g.ip_version.as_deref().unwrap_or_default(),
            spec.ip_version.as_api_str()
        ));
    }
    (!wrong.is_empty())
        .then(|| format!("BGP group {} cannot be adopted: {}", g.id, wrong.join("; ")))
}

/// The mutable fields where the cloud differs from the spec, in a fixed order. Fields the
/// spec leaves out (route quota, name, description) are the cloud's to keep.
pub fn diff(spec: &BgpGroupSpec, g: &ObservedGroup) -> Vec<Field> {
    let mut fields = Vec::new();
    if g.peer_asn != Some(spec.peer_asn) {
        fields.push(Field::PeerAsn);
    }
    if g.local_asn != Some(spec.local_asn.unwrap_or(DEFAULT_LOCAL_ASN)) {
        fields.push(Field::LocalAsn);
    }
    if g.is_fake_asn.unwrap_or(false) != spec.is_fake_asn {
        fields.push(Field::IsFakeAsn);
    }
    if let Some(quota) = spec.route_quota
        && g.route_limit != Some(i64::from(quota))
    {
        fields.push(Field::RouteQuota);
    }
    if spec.name.is_some() && g.name != spec.name {
        fields.push(Field::Name);
    }
    if spec.description.is_some() && g.description != spec.description {
        fields.push(Field::Description);
    }
    if g.auth_key_in_sync == Some(false) {
        fields.push(Field::AuthKey);
    }
    fields
}

/// `field: cloud → desired` for each differing field (the key shown only as set or not).
pub fn describe_diff(spec: &BgpGroupSpec, g: &ObservedGroup, fields: &[Field]) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    fields
        .iter()
        .map(|f| {
            let (cloud, want) = match f {
                Field::PeerAsn => (
                    opt(g.peer_asn.map(|v| v.to_string())),
                    spec.peer_asn.to_string(),
                ),
                Field::LocalAsn => (
                    opt(g.local_asn.map(|v| v.to_string())),
                    spec.local_asn.unwrap_or(DEFAULT_LOCAL_ASN).to_string(),
                ),
                Field::IsFakeAsn => (
                    g.is_fake_asn.unwrap_or(false).to_string(),
                    spec.is_fake_asn.to_string(),
                ),
                Field::RouteQuota => (
                    opt(g.route_limit.map(|v| v.to_string())),
                    opt(spec.route_quota.map(|v| v.to_string())),
                ),
                Field::Name => (opt(g.name.clone()), opt(spec.name.clone())),
                Field::Description => (opt(g.description.clone()), opt(spec.description.clone())),
                Field::AuthKey => (
                    "another key".to_owned(),
                    if spec.auth_key_secret_ref.is_some() {
                        "the key of spec.authKeySecretRef".to_owned()
                    } else {
                        "no key".to_owned()
                    },
                ),
            };
            format!("{}: {cloud} → {want}", f.as_str())
        })
        .collect()
}

/// How long a settled group may go without a cloud read: `Some(remaining)` when it is Ready
/// for `generation`, has a cloud ID, and was confirmed against the cloud (`lastSyncTime`) less
/// than `resync` ago. Wake-ups that change nothing of the group (its peers' status changes,
/// which the BgpGroup controller watches) then cost no DescribeBgpGroups call; a spec change
/// (new generation) or the resync period always reads.
pub fn fresh_for(
    status: &BgpGroupStatus,
    generation: Option<i64>,
    now: Timestamp,
    resync: Duration,
) -> Option<Duration> {
    use crate::api::conditions::{status as cond, types};
    status.bgp_group_id.as_ref()?;
    let ready = status.observed_generation == generation
        && status.conditions.iter().any(|c| {
            c.type_ == types::READY && c.status == cond::TRUE && c.observed_generation == generation
        });
    if !ready {
        return None;
    }
    let synced = status.last_sync_time.as_ref()?;
    resync
        .checked_sub(elapsed(synced.0, now))
        .filter(|d| !d.is_zero())
}

/// A recorded but never seen group is still within its visibility grace.
fn within_grace(input: &GroupPlanInput<'_>) -> bool {
    input
        .status
        .bgp_group_id_recorded_at
        .as_ref()
        .is_none_or(|at| elapsed(at.0, input.now) < input.timing.visibility_grace)
}

/// How long the current wait has lasted, when longer than the transition timeout.
fn overdue(input: &GroupPlanInput<'_>) -> Option<Duration> {
    let since = input.status.waiting_since.as_ref()?;
    let waited = elapsed(since.0, input.now);
    (waited > input.timing.transition_timeout).then_some(waited)
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(now.as_millisecond() - since.as_millisecond()).unwrap_or(0))
}
