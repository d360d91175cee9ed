//! The BgpNetwork's pure decision: from (spec, status, the listing of the VBR, the other
//! objects of the cluster, the time) to the one next step. No client, no clock of its own;
//! every rule has a case in `plan_tests.rs`. The argument behind the rules is in
//! `docs/bgp-network-identity.md`; in short:
//!
//! - A network has no ID, so **ownership** (`status.owned`) is proved only by this object's
//!   own AddBgpNetwork succeeding (the API refuses an Add of an existing network, so a success
//!   means the network did not exist and this token made it) or by an explicit adoption
//!   (`adopt: true`). Only an owned network is ever deleted.
//! - Before any Add the VBR is listed, and an existing network is never added over: with
//!   `adopt: true` it is taken over, otherwise the object is `Stalled` (`AlreadyExists`).
//! - The token, the time and what the listing showed are recorded **before** the Add. A
//!   recorded Add whose answer was lost (a crash, a timeout) is settled by **replaying the
//!   same token** within the replay window: success proves the token made the network (then
//!   or now), `AlreadyExists` proves it did not (someone else's network appeared since our
//!   listing). A listing alone cannot tell who made a network, so it never settles ownership.
//! - Absence proves something only from a consistent listing, and only for a network this
//!   object has seen or whose Add was accepted longer than the visibility grace ago
//!   (read-after-write lag).
//! - Of two objects naming one network, only the one with the stronger claim acts
//!   ([`stronger_claim`]); the other is `Stalled` (`AlreadyOwned`) naming it.

use std::time::Duration;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::api::DeletionPolicy;
use crate::api::conditions::reasons;
use crate::api::network::{BgpNetworkSpec, BgpNetworkStatus};
use crate::cloud::NetworkStatus;

use super::super::timing::Timing;
use super::super::token::client_token_for;

/// The network as the listing showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its status.
    pub status: NetworkStatus,
    /// Its VPC.
    pub vpc_id: Option<String>,
}

/// What one walk of the VBR's networks showed about this object's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The network, if listed.
    pub found: Option<Found>,
    /// The walk cannot have skipped a network ([`crate::cloud::NetworkListing::consistent`]).
    pub consistent: bool,
}

/// Everything the plan looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// The object's UID (its ClientTokens).
    pub uid: &'a str,
    /// The spec.
    pub spec: &'a BgpNetworkSpec,
    /// The status as this reconcile holds it.
    pub status: &'a BgpNetworkStatus,
    /// The account the credentials act in (`None`: not known yet).
    pub account: Option<&'a str>,
    /// The listing (`None`: not looked up yet).
    pub listing: Option<&'a Listing>,
    /// Another object of the cluster with a stronger claim on the network (`ns/name`).
    pub claimed_by: Option<&'a str>,
    /// The object is being deleted.
    pub deleting: bool,
    /// The pause annotation is set.
    pub paused: bool,
    /// The recorded Add is older than the replay window.
    pub replay_expired: bool,
    /// Now.
    pub now: Timestamp,
    /// Visibility grace and transition timeout.
    pub timing: Timing,
}

/// What the object leaves behind when it is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// Nothing of this object's is in the cloud (never added, not ours, or gone).
    Nothing,
    /// `deletionPolicy: Orphan`: the network stays advertised.
    Orphaned,
    /// Another object owns the network: untouched.
    OwnedByOther,
}

/// The one next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Paused: no cloud call at all (deletion included).
    Paused,
    /// A safety rule refuses to act: Stalled with `reason`, no write call.
    Refuse {
        /// Condition reason.
        reason: &'static str,
        /// What is wrong and the way out.
        message: String,
    },
    /// List the VBR's networks, then plan again.
    Observe,
    /// Record the intent (token, time, the listing) in status, then AddBgpNetwork.
    Add {
        /// The ClientToken.
        client_token: String,
        /// The incarnation it belongs to.
        incarnation: u32,
    },
    /// Replay the recorded AddBgpNetwork with its token: the answer settles ownership.
    Settle {
        /// The recorded token.
        client_token: String,
    },
    /// Take the listed network over (`adopt: true`).
    Adopt,
    /// A network with this identity exists and this object cannot prove it made it.
    AlreadyExists {
        /// The condition message.
        message: String,
    },
    /// A recorded Add older than the replay window, and the network exists: its token can no
    /// longer tell whether it made it.
    Unverified {
        /// The condition message.
        message: String,
    },
    /// The listing may have skipped the network (offset paging while networks changed):
    /// look again soon before concluding it is absent.
    LookAgain,
    /// Waiting on the cloud (Pending, not yet visible, an unknown status).
    Wait {
        /// Condition reason.
        reason: &'static str,
        /// Condition message.
        message: String,
        /// The wait has lasted longer than the transition timeout.
        overdue: bool,
    },
    /// The network is advertised: Ready.
    Ready,
    /// The owned network is gone although nobody asked: add it again under a new incarnation.
    Vanished,
    /// DeleteBgpNetwork.
    Delete,
    /// The deletion was accepted (or the network is still settling): wait until a consistent
    /// listing no longer shows it.
    WaitGone {
        /// Condition message.
        message: String,
    },
    /// Release the finalizer.
    Release(Left),
}

/// The network's identity as the spec names it: (VBR, canonical prefix). `None` when the
/// prefix does not parse (admission refuses that; an old apiserver might not).
pub fn spec_cidr(spec: &BgpNetworkSpec) -> Option<IpNet> {
    spec.dst_cidr_block
        .trim()
        .parse::<IpNet>()
        .ok()
        .filter(|n| n.trunc() == *n)
}

/// The ClientToken of this object's Add at `incarnation`.
pub fn add_token(uid: &str, incarnation: u32) -> String {
    client_token_for(uid, incarnation)
}

/// The ClientToken of this object's Delete at `incarnation` (`abo-<uid>[-n]-del`, ≤ 64).
pub fn delete_token(uid: &str, incarnation: u32) -> String {
    format!("{}-del", client_token_for(uid, incarnation))
}

/// `a` is at least `d` after `b`.
fn elapsed(now: Timestamp, since: Timestamp, d: Duration) -> bool {
    since
        .checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .is_ok_and(|t| t <= now)
}

fn identity(spec: &BgpNetworkSpec) -> String {
    format!("{} on {}", spec.dst_cidr_block, spec.router_id)
}

/// The plan.
pub fn plan(i: &PlanInput<'_>) -> Plan {
    let s = i.status;
    if i.paused {
        return Plan::Paused;
    }
    if i.deleting && i.spec.deletion_policy == DeletionPolicy::Orphan {
        let left = if s.owned || s.client_token.is_some() {
            Left::Orphaned
        } else {
            Left::Nothing
        };
        return Plan::Release(left);
    }
    if let Some(refusal) = bound_elsewhere(i) {
        return refusal;
    }
    // Settling a recorded Add needs no listing (the replay's answer decides) and comes before
    // the claims of other objects: if the token succeeded this object is the network's
    // creator, which no other claim beats; if it did not, the replay makes nothing.
    if !s.owned
        && !i.replay_expired
        && let Some(token) = &s.client_token
    {
        return Plan::Settle {
            client_token: token.clone(),
        };
    }
    if let Some(other) = i.claimed_by {
        if i.deleting {
            return Plan::Release(Left::OwnedByOther);
        }
        return Plan::Refuse {
            reason: reasons::ALREADY_OWNED,
            message: format!(
                "BgpNetwork {other} already claims the network {}; only one object may own a network. Delete this object (the network is untouched), or delete {other} first",
                identity(i.spec)
            ),
        };
    }
    if i.deleting && !s.owned && s.client_token.is_none() {
        return Plan::Release(Left::Nothing);
    }
    let Some(listing) = i.listing else {
        return Plan::Observe;
    };
    if i.deleting {
        plan_cleanup(i, listing)
    } else {
        plan_apply(i, listing)
    }
}

/// The safety rules that need no listing: the account and the identity the network is bound
/// to.
fn bound_elsewhere(i: &PlanInput<'_>) -> Option<Plan> {
    let s = i.status;
    if let (Some(bound), Some(now)) = (s.account_id.as_deref(), i.account)
        && bound != now
    {
        let way_out = if i.deleting {
            "; or set deletionPolicy: Orphan to release the object without touching the network"
        } else {
            ""
        };
        return Some(Plan::Refuse {
            reason: reasons::ACCOUNT_MISMATCH,
            message: format!(
                "The network {} is bound to account {bound}, but the credentials in use belong to account {now}: nothing is added, adopted or released with them. Restore credentials of account {bound}{way_out}",
                identity(i.spec)
            ),
        });
    }
    let cidr = spec_cidr(i.spec).map(|c| c.to_string());
    let changed: Vec<String> = [
        (
            "regionId",
            s.region_id.as_deref(),
            Some(i.spec.region_id.as_str()),
        ),
        (
            "routerId",
            s.router_id.as_deref(),
            Some(i.spec.router_id.as_str()),
        ),
        ("dstCidrBlock", s.dst_cidr_block.as_deref(), cidr.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, bound, spec)| match (bound, spec) {
        (Some(b), Some(sp)) if b != sp => Some(format!("{field}: {b} → {sp}")),
        (Some(b), None) => Some(format!("{field}: {b} → (invalid)")),
        _ => None,
    })
    .collect();
    if !changed.is_empty() && (s.owned || s.client_token.is_some()) {
        return Some(Plan::Refuse {
            reason: reasons::IMMUTABLE_FIELD_CHANGED,
            message: format!(
                "The spec no longer names the network this object is bound to ({}); restore it. To move the network, create a new object",
                changed.join(", ")
            ),
        });
    }
    None
}

fn plan_apply(i: &PlanInput<'_>, listing: &Listing) -> Plan {
    let s = i.status;
    if s.owned {
        return match &listing.found {
            Some(found) => settled_state(i, &found.status),
            None if !seen_or_past_grace(i) => Plan::Wait {
                reason: reasons::NOT_YET_VISIBLE,
                message: format!(
                    "AddBgpNetwork for {} was accepted; the network is not listed yet (read-after-write lag)",
                    identity(i.spec)
                ),
                overdue: false,
            },
            None if !listing.consistent => Plan::LookAgain,
            None => Plan::Vanished,
        };
    }
    // Not owned, and any recorded Add is older than the replay window (else: Settle).
    match (&listing.found, s.client_token.is_some()) {
        (Some(_), _) if i.spec.adopt => Plan::Adopt,
        (Some(_), true) => Plan::Unverified {
            message: format!(
                "An AddBgpNetwork for {} (ClientToken {}) was never answered and is older than the replay window, and the network exists: the operator cannot prove this object made it. Set adopt: true to take it over, or delete the network and this clears by itself",
                identity(i.spec),
                s.client_token.as_deref().unwrap_or_default()
            ),
        },
        (Some(_), false) => Plan::AlreadyExists {
            message: already_exists(i),
        },
        (None, true) if !listing.consistent => Plan::LookAgain,
        (None, _) => {
            // An expired, unanswered Add whose network a consistent listing does not show made
            // nothing that still exists: a fresh Add under a new incarnation.
            let incarnation = if s.client_token.is_some() {
                s.incarnation.saturating_add(1)
            } else {
                s.incarnation
            };
            Plan::Add {
                client_token: add_token(i.uid, incarnation),
                incarnation,
            }
        }
    }
}

/// The message of `AlreadyExists`.
pub fn already_exists(i: &PlanInput<'_>) -> String {
    format!(
        "The network {} already exists and this object did not add it (a BGP network has no ID, so ownership cannot be proved). Set adopt: true to take it over, or remove it from the VBR",
        identity(i.spec)
    )
}

fn plan_cleanup(i: &PlanInput<'_>, listing: &Listing) -> Plan {
    let s = i.status;
    if !s.owned {
        // A recorded Add older than the replay window (else: Settle).
        return match (&listing.found, listing.consistent) {
            (Some(_), _) => Plan::Unverified {
                message: format!(
                    "An AddBgpNetwork for {} (ClientToken {}) was never answered and is older than the replay window, and the network exists: the operator cannot prove this object made it, so it neither deletes nor forgets it. Set deletionPolicy: Orphan to release the object and leave the network",
                    identity(i.spec),
                    s.client_token.as_deref().unwrap_or_default()
                ),
            },
            (None, true) => Plan::Release(Left::Nothing),
            (None, false) => Plan::LookAgain,
        };
    }
    match &listing.found {
        Some(found) => match found.status {
            NetworkStatus::Available if s.delete_requested_at.is_none() => Plan::Delete,
            // Accepted but still listed Available: ask again (it is ours; Delete is idempotent).
            NetworkStatus::Available => Plan::Delete,
            NetworkStatus::Deleting => Plan::WaitGone {
                message: format!("The network {} is being withdrawn", identity(i.spec)),
            },
            ref other => Plan::WaitGone {
                message: format!(
                    "The network {} is {}; it is withdrawn once it is Available",
                    identity(i.spec),
                    shown(other)
                ),
            },
        },
        None if !seen_or_past_grace(i) && s.delete_requested_at.is_none() => Plan::WaitGone {
            message: format!(
                "AddBgpNetwork for {} was accepted and the network is not listed yet (read-after-write lag); it is withdrawn once it shows",
                identity(i.spec)
            ),
        },
        None if listing.consistent => Plan::Release(Left::Nothing),
        None => Plan::LookAgain,
    }
}

/// The network was seen by this object, or its Add was accepted longer than the visibility
/// grace ago (absence then means something).
fn seen_or_past_grace(i: &PlanInput<'_>) -> bool {
    let s = i.status;
    s.cloud.is_some()
        || s.adopted
        || s.add_accepted_at
            .as_ref()
            .is_none_or(|t| elapsed(i.now, t.0, i.timing.visibility_grace))
}

fn shown(status: &NetworkStatus) -> &str {
    match status {
        NetworkStatus::Unknown => "in no status",
        other => other.as_str(),
    }
}

/// An owned, listed network: Ready when Available, else waiting (and overdue after the
/// transition timeout).
fn settled_state(i: &PlanInput<'_>, status: &NetworkStatus) -> Plan {
    if *status == NetworkStatus::Available {
        return Plan::Ready;
    }
    let overdue = i
        .status
        .waiting_since
        .as_ref()
        .is_some_and(|t| elapsed(i.now, t.0, i.timing.transition_timeout));
    let reason = match status {
        NetworkStatus::Pending => reasons::PENDING,
        NetworkStatus::Deleting => reasons::DELETING,
        _ => reasons::PENDING,
    };
    Plan::Wait {
        reason: if overdue {
            reasons::TRANSITION_TIMEOUT
        } else {
            reason
        },
        message: format!(
            "The cloud reports the network {} as {}",
            identity(i.spec),
            shown(status)
        ),
        overdue,
    }
}

/// What another object's status says about its claim on a network (for [`stronger_claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimView {
    /// `ns/name`.
    pub key: String,
    /// Owns it by its own Add.
    pub created: bool,
    /// Owns it by adoption, since then.
    pub adopted_at: Option<Timestamp>,
    /// Has a recorded Add, since then.
    pub add_requested_at: Option<Timestamp>,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<Timestamp>,
    /// The object's UID (the last tie-break).
    pub uid: String,
}

impl ClaimView {
    /// Claim strength, smaller is stronger: the creator, then the earliest adopter, then the
    /// earliest recorded Add, then the oldest object, then the UID.
    fn rank(&self) -> (u8, Option<Timestamp>, Option<Timestamp>, &str) {
        let (class, at) = if self.created {
            (0, None)
        } else if let Some(at) = self.adopted_at {
            (1, Some(at))
        } else if let Some(at) = self.add_requested_at {
            (2, Some(at))
        } else {
            (3, None)
        };
        // `None` sorts first: an unknown time never beats a known one here, since it only
        // happens for class 0 and 3 where the creation time decides.
        (class, at, self.created_at, &self.uid)
    }
}

/// The `ns/name` of another object naming the same network whose claim is stronger than
/// `me`'s, if any. Only that object acts; `me` is refused (and, being deleted, released
/// without touching the network).
pub fn stronger_claim<'a>(
    me: &ClaimView,
    others: impl IntoIterator<Item = &'a ClaimView>,
) -> Option<String> {
    others
        .into_iter()
        .filter(|o| o.uid != me.uid)
        .filter(|o| o.rank() < me.rank())
        .min_by(|a, b| a.rank().cmp(&b.rank()))
        .map(|o| o.key.clone())
}
