//! The BgpNetwork plan, case by case: each case says what it proves.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::DeletionPolicy;
use crate::api::conditions::reasons;
use crate::api::network::{BgpNetworkSpec, BgpNetworkStatus, CloudNetworkView};
use crate::cloud::NetworkStatus;

use super::super::timing::Timing;
use super::plan::{
    ClaimView, Found, Left, Listing, Plan, PlanInput, add_token, delete_token, plan, stronger_claim,
};

const UID: &str = "11111111-2222-3333-4444-555555555555";
const ACCOUNT: &str = "1234567890123456";

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).expect("time")
}

fn time(s: i64) -> Time {
    Time(t(s))
}

fn spec() -> BgpNetworkSpec {
    BgpNetworkSpec {
        region_id: "cn-shanghai".into(),
        router_id: "vbr-a".into(),
        dst_cidr_block: "10.1.0.0/16".into(),
        ..Default::default()
    }
}

/// A status bound to the spec's network in ACCOUNT.
fn bound() -> BgpNetworkStatus {
    BgpNetworkStatus {
        account_id: Some(ACCOUNT.into()),
        region_id: Some("cn-shanghai".into()),
        router_id: Some("vbr-a".into()),
        dst_cidr_block: Some("10.1.0.0/16".into()),
        ..Default::default()
    }
}

/// An Add recorded at `at` whose answer was never recorded.
fn intent(at: i64) -> BgpNetworkStatus {
    BgpNetworkStatus {
        client_token: Some(add_token(UID, 0)),
        add_requested_at: Some(time(at)),
        ..bound()
    }
}

/// Owned by its own Add, accepted at `at`, seen (`seen`) or not.
fn owned(at: i64, seen: bool) -> BgpNetworkStatus {
    BgpNetworkStatus {
        owned: true,
        add_accepted_at: Some(time(at)),
        cloud: seen.then(CloudNetworkView::default),
        ..intent(at)
    }
}

fn listed(status: NetworkStatus) -> Listing {
    Listing {
        found: Some(Found {
            status,
            vpc_id: None,
        }),
        consistent: true,
    }
}

fn absent(consistent: bool) -> Listing {
    Listing {
        found: None,
        consistent,
    }
}

struct Case {
    why: &'static str,
    spec: BgpNetworkSpec,
    status: BgpNetworkStatus,
    account: Option<&'static str>,
    listing: Option<Listing>,
    claimed_by: Option<&'static str>,
    deleting: bool,
    paused: bool,
    replay_expired: bool,
    now: i64,
    want: Want,
}

#[derive(Debug)]
enum Want {
    Exactly(Plan),
    Refused(&'static str),
    AlreadyExists,
    Unverified,
    Wait(&'static str, bool),
    WaitGone,
}

fn case(why: &'static str, status: BgpNetworkStatus, want: Want) -> Case {
    Case {
        why,
        spec: spec(),
        status,
        account: Some(ACCOUNT),
        listing: None,
        claimed_by: None,
        deleting: false,
        paused: false,
        replay_expired: false,
        now: 1000,
        want,
    }
}

impl Case {
    fn listing(mut self, l: Listing) -> Self {
        self.listing = Some(l);
        self
    }
    fn deleting(mut self) -> Self {
        self.deleting = true;
        self
    }
    fn expired(mut self) -> Self {
        self.replay_expired = true;
        self
    }
    fn adopt(mut self) -> Self {
        self.spec.adopt = true;
        self
    }
    fn orphan(mut self) -> Self {
        self.spec.deletion_policy = DeletionPolicy::Orphan;
        self
    }
    fn at(mut self, now: i64) -> Self {
        self.now = now;
        self
    }
}

fn add(incarnation: u32) -> Want {
    Want::Exactly(Plan::Add {
        client_token: add_token(UID, incarnation),
        incarnation,
    })
}

fn settle() -> Want {
    Want::Exactly(Plan::Settle {
        client_token: add_token(UID, 0),
    })
}

fn run(cases: Vec<Case>) {
    let timing = Timing {
        visibility_grace: Duration::from_secs(120),
        transition_timeout: Duration::from_secs(900),
    };
    for c in cases {
        let got = plan(&PlanInput {
            uid: UID,
            spec: &c.spec,
            status: &c.status,
            account: c.account,
            listing: c.listing.as_ref(),
            claimed_by: c.claimed_by,
            deleting: c.deleting,
            paused: c.paused,
            replay_expired: c.replay_expired,
            now: t(c.now),
            timing,
        });
        let ok = match (&c.want, &got) {
            (Want::Exactly(p), got) => p == got,
            (Want::Refused(r), Plan::Refuse { reason, .. }) => r == reason,
            (Want::AlreadyExists, Plan::AlreadyExists { message }) => {
                message.contains("adopt: true")
            }
            (Want::Unverified, Plan::Unverified { message }) => {
                message.contains(&add_token(UID, 0))
            }
            (
                Want::Wait(r, o),
                Plan::Wait {
                    reason, overdue, ..
                },
            ) => r == reason && o == overdue,
            (Want::WaitGone, Plan::WaitGone { .. }) => true,
            _ => false,
        };
        assert!(ok, "{}: want {:?}, got {got:?}", c.why, c.want);
    }
}

#[test]
fn creating_observes_first_and_never_adds_over_an_existing_network() {
    run(vec![
        case("a new object lists the VBR before anything", Default::default(), Want::Exactly(Plan::Observe)),
        case("absent: add with the object's token", Default::default(), add(0))
            .listing(absent(true)),
        case(
            "absent from an inconsistent listing: adding is still safe (the API refuses a duplicate, and the answer tells whose it is)",
            Default::default(),
            add(0),
        )
        .listing(absent(false)),
        case("present and not ours: Stalled AlreadyExists, no call", Default::default(), Want::AlreadyExists)
            .listing(listed(NetworkStatus::Available)),
        case("present, adopt: true: take it over", Default::default(), Want::Exactly(Plan::Adopt))
            .listing(listed(NetworkStatus::Available))
            .adopt(),
        case("adopt: true and absent: add it", Default::default(), add(0))
            .listing(absent(true))
            .adopt(),
    ]);
}

#[test]
fn an_unanswered_add_is_settled_by_its_token_not_by_a_listing() {
    run(vec![
        case(
            "a recorded Add is replayed with its token before any listing (a listing cannot tell who made a network)",
            intent(900),
            settle(),
        ),
        case(
            "even when the listing shows the network (it may be someone else's that appeared since)",
            intent(900),
            settle(),
        )
        .listing(listed(NetworkStatus::Available)),
        case(
            "during deletion too: the replay says whether there is anything of ours to delete",
            intent(900),
            settle(),
        )
        .deleting(),
        case(
            "past the replay window with the network listed: the token proves nothing any more",
            intent(0),
            Want::Unverified,
        )
        .expired()
        .listing(listed(NetworkStatus::Available)),
        case(
            "past the window, listed, adopt: true: taken over explicitly",
            intent(0),
            Want::Exactly(Plan::Adopt),
        )
        .expired()
        .adopt()
        .listing(listed(NetworkStatus::Available)),
        case(
            "past the window and absent from a consistent listing: nothing of that Add exists; a fresh Add under a new incarnation",
            intent(0),
            add(1),
        )
        .expired()
        .listing(absent(true)),
        case(
            "past the window and absent from an inconsistent listing: look again",
            intent(0),
            Want::Exactly(Plan::LookAgain),
        )
        .expired()
        .listing(absent(false)),
        case(
            "deleting, past the window, listed: neither delete nor forget",
            intent(0),
            Want::Unverified,
        )
        .expired()
        .deleting()
        .listing(listed(NetworkStatus::Available)),
        case(
            "deleting, past the window, absent from a consistent listing: release",
            intent(0),
            Want::Exactly(Plan::Release(Left::Nothing)),
        )
        .expired()
        .deleting()
        .listing(absent(true)),
    ]);
}

#[test]
fn an_owned_network_is_ready_waits_or_is_added_again() {
    run(vec![
        case(
            "listed Available: Ready",
            owned(900, true),
            Want::Exactly(Plan::Ready),
        )
        .listing(listed(NetworkStatus::Available)),
        case(
            "Enabled is Available",
            owned(900, true),
            Want::Exactly(Plan::Ready),
        )
        .listing(listed(NetworkStatus::parse("Enabled"))),
        case(
            "Pending: wait",
            owned(900, true),
            Want::Wait(reasons::PENDING, false),
        )
        .listing(listed(NetworkStatus::Pending)),
        case(
            "Pending beyond the transition timeout: Stalled, still polling",
            BgpNetworkStatus {
                waiting_since: Some(time(0)),
                ..owned(0, true)
            },
            Want::Wait(reasons::TRANSITION_TIMEOUT, true),
        )
        .listing(listed(NetworkStatus::Pending)),
        case(
            "accepted, never seen, within the visibility grace: not yet visible, never re-added",
            owned(950, false),
            Want::Wait(reasons::NOT_YET_VISIBLE, false),
        )
        .listing(absent(true))
        .at(1060),
        case(
            "seen before and absent from a consistent listing: vanished, added again",
            owned(0, true),
            Want::Exactly(Plan::Vanished),
        )
        .listing(absent(true)),
        case(
            "never seen, past the grace, consistent absence: vanished",
            owned(0, false),
            Want::Exactly(Plan::Vanished),
        )
        .listing(absent(true)),
        case(
            "absent from an inconsistent listing: look again, never conclude",
            owned(0, true),
            Want::Exactly(Plan::LookAgain),
        )
        .listing(absent(false)),
    ]);
}

#[test]
fn safety_rules_refuse_before_any_call() {
    run(vec![
        Case {
            account: Some("999"),
            ..case(
                "credentials of another account during deletion: the finalizer is held",
                owned(0, true),
                Want::Refused(reasons::ACCOUNT_MISMATCH),
            )
            .deleting()
        },
        Case {
            spec: BgpNetworkSpec {
                dst_cidr_block: "10.2.0.0/16".into(),
                ..spec()
            },
            ..case(
                "the identity changed behind the CRD's back: refused",
                owned(0, true),
                Want::Refused(reasons::IMMUTABLE_FIELD_CHANGED),
            )
        },
        Case {
            claimed_by: Some("ns/first"),
            ..case(
                "another object claims the network: refused, naming it",
                Default::default(),
                Want::Refused(reasons::ALREADY_OWNED),
            )
            .listing(absent(true))
        },
        Case {
            claimed_by: Some("ns/first"),
            ..case(
                "a recorded Add is settled before other objects' claims (if it succeeded, this object is the creator)",
                intent(900),
                settle(),
            )
            .deleting()
        },
        Case {
            claimed_by: Some("ns/first"),
            ..case(
                "another object owns it and this one is deleted: released, the network untouched",
                Default::default(),
                Want::Exactly(Plan::Release(Left::OwnedByOther)),
            )
            .deleting()
        },
        Case {
            paused: true,
            ..case(
                "paused: nothing at all",
                owned(0, true),
                Want::Exactly(Plan::Paused),
            )
            .deleting()
        },
    ]);
    // The account rule is checked against the account now in use.
    let mut c = case(
        "credentials of another account: refused",
        owned(0, true),
        Want::Refused(reasons::ACCOUNT_MISMATCH),
    );
    c.account = Some("999");
    run(vec![c]);
}

#[test]
fn deletion_deletes_only_what_it_owns_and_waits_for_a_consistent_absence() {
    run(vec![
        case(
            "never added: released without a call",
            Default::default(),
            Want::Exactly(Plan::Release(Left::Nothing)),
        )
        .deleting(),
        case(
            "Orphan: released, the network left",
            owned(0, true),
            Want::Exactly(Plan::Release(Left::Orphaned)),
        )
        .deleting()
        .orphan(),
        case(
            "owned: list first",
            owned(0, true),
            Want::Exactly(Plan::Observe),
        )
        .deleting(),
        case(
            "owned and Available: DeleteBgpNetwork",
            owned(0, true),
            Want::Exactly(Plan::Delete),
        )
        .deleting()
        .listing(listed(NetworkStatus::Available)),
        case("Deleting: wait", owned(0, true), Want::WaitGone)
            .deleting()
            .listing(listed(NetworkStatus::Deleting)),
        case(
            "Pending: wait until it can be deleted",
            owned(0, true),
            Want::WaitGone,
        )
        .deleting()
        .listing(listed(NetworkStatus::Pending)),
        case(
            "accepted, not yet visible: wait for it, or it would leak",
            owned(990, false),
            Want::WaitGone,
        )
        .deleting()
        .listing(absent(true)),
        case(
            "gone from a consistent listing: released",
            BgpNetworkStatus {
                delete_requested_at: Some(time(900)),
                ..owned(0, true)
            },
            Want::Exactly(Plan::Release(Left::Nothing)),
        )
        .deleting()
        .listing(absent(true)),
        case(
            "absent from an inconsistent listing: not proof, look again",
            BgpNetworkStatus {
                delete_requested_at: Some(time(900)),
                ..owned(0, true)
            },
            Want::Exactly(Plan::LookAgain),
        )
        .deleting()
        .listing(absent(false)),
        case(
            "an adopted network is deleted like an added one",
            BgpNetworkStatus {
                owned: true,
                adopted: true,
                adopted_at: Some(time(0)),
                ..bound()
            },
            Want::Exactly(Plan::Delete),
        )
        .deleting()
        .listing(listed(NetworkStatus::Available)),
    ]);
}

#[test]
fn tokens_are_per_object_and_incarnation_and_fit_the_api() {
    assert_eq!(add_token(UID, 0), format!("abo-{UID}"));
    assert_eq!(add_token(UID, 2), format!("abo-{UID}-2"));
    assert_eq!(delete_token(UID, 2), format!("abo-{UID}-2-del"));
    assert!(delete_token(UID, u32::MAX).len() <= 64);
}

fn view(key: &str, uid: &str, created_at: i64) -> ClaimView {
    ClaimView {
        key: key.into(),
        created: false,
        adopted_at: None,
        add_requested_at: None,
        created_at: Some(t(created_at)),
        uid: uid.into(),
    }
}

#[test]
fn of_two_objects_naming_one_network_only_one_acts() {
    let older = view("ns/older", "u1", 0);
    let younger = view("ns/younger", "u2", 10);
    assert_eq!(stronger_claim(&younger, [&older]), Some("ns/older".into()));
    assert_eq!(
        stronger_claim(&older, [&younger]),
        None,
        "the oldest acts first"
    );
    // A recorded Add beats age; ownership beats a recorded Add; the creator beats an adopter.
    let adding = ClaimView {
        add_requested_at: Some(t(20)),
        ..younger.clone()
    };
    assert_eq!(stronger_claim(&older, [&adding]), Some("ns/younger".into()));
    let adopter = ClaimView {
        adopted_at: Some(t(30)),
        ..older.clone()
    };
    assert_eq!(stronger_claim(&adding, [&adopter]), Some("ns/older".into()));
    let creator = ClaimView {
        created: true,
        ..younger.clone()
    };
    assert_eq!(
        stronger_claim(&adopter, [&creator]),
        Some("ns/younger".into())
    );
    assert_eq!(stronger_claim(&creator, [&adopter]), None);
    // The earlier of two adopters keeps it; an object never competes with itself.
    let later_adopter = ClaimView {
        adopted_at: Some(t(40)),
        ..view("ns/third", "u3", 0)
    };
    assert_eq!(
        stronger_claim(&later_adopter, [&adopter]),
        Some("ns/older".into())
    );
    assert_eq!(stronger_claim(&older, [&older]), None);
}
