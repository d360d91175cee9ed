//! A BgpPeer's `bgpGroupRef`: which cloud group it stands for, decided by a pure rule
//! ([`resolve`]), and the group's side of the same relation ([`dependents`]): the peers that
//! still resolve to a group, which keep the group's finalizer.
//!
//! The rules (issue 19):
//! - Only a group that is Ready for its generation and has a `status.bgpGroupId` resolves;
//!   until then the peer is `Reconciling`/`DependencyNotReady` naming the group, and the
//!   watch on BgpGroups wakes it when that changes.
//! - `regionId` must equal the group's (`Stalled`/`InvalidSpec` otherwise).
//! - A peer bound to a cloud group (`status.bgpGroupId`) never moves: a group object that now
//!   names another cloud group (recreated) makes the peer `Stalled`/`DependencyChanged`.
//! - While the peer is being deleted the recorded group is used, so a group deleted
//!   together with its peers never blocks them.

use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use crate::api::conditions::{reasons, status, types};
use crate::api::group::BgpGroup;
use crate::api::{BgpGroupReference, BgpPeer};

use super::super::context::Context;
use super::super::error::{Error, Step};

/// What a peer's reference resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The cloud group ID the peer belongs to.
    Group(String),
    /// Not resolvable yet (why).
    NotReady(String),
    /// Refused: the reference is wrong or moved (condition reason, message).
    Refused(&'static str, String),
}

/// The resolution of `peer`'s `bgpGroupRef` given the group object it names (`None`: no
/// such object). `deleting`: the recorded group is all a deletion needs.
pub fn resolve(
    peer: &BgpPeer,
    reference: &BgpGroupReference,
    group: Option<&BgpGroup>,
    deleting: bool,
) -> Resolution {
    let recorded = peer
        .status
        .as_ref()
        .and_then(|s| s.bgp_group_id.as_deref().map(str::to_owned));
    let name = format!(
        "{}/{}",
        peer.namespace().unwrap_or_default(),
        reference.name
    );
    if deleting {
        return match (recorded, group.and_then(BgpGroup::group_id)) {
            (Some(id), _) => Resolution::Group(id),
            (None, Some(id)) => Resolution::Group(id.to_owned()),
            // Nothing was made in a group (a create records its group first): no group
            // is needed to release.
            (None, None) => Resolution::Group(String::new()),
        };
    }
    let Some(group) = group else {
        return Resolution::NotReady(format!(
            "BgpGroup {name} (spec.bgpGroupRef) does not exist yet"
        ));
    };
    if group.spec.region_id != peer.spec.region_id {
        return Resolution::Refused(
            reasons::INVALID_SPEC,
            format!(
                "regionId {} differs from the region of BgpGroup {name} ({}): a peer must be in its group's region",
                peer.spec.region_id, group.spec.region_id
            ),
        );
    }
    if group.meta().deletion_timestamp.is_some() {
        return Resolution::NotReady(format!("BgpGroup {name} is being deleted"));
    }
    let ready = group.status.as_ref().and_then(|s| {
        let generation = group.meta().generation;
        let ready = s.conditions.iter().any(|c| {
            c.type_ == types::READY
                && c.status == status::TRUE
                && c.observed_generation == generation
        });
        ready.then_some(s.bgp_group_id.clone()).flatten()
    });
    let Some(id) = ready else {
        let why = group
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::READY))
            .map(|c| format!(" (Ready={}, {})", c.status, c.reason))
            .unwrap_or_default();
        return Resolution::NotReady(format!("waiting for BgpGroup {name} to be Ready{why}"));
    };
    match recorded {
        Some(bound) if bound != id => Resolution::Refused(
            reasons::DEPENDENCY_CHANGED,
            format!(
                "BgpGroup {name} now stands for cloud group {id}, but this peer was made in {bound}; it does not move by itself. Delete and re-create the peer to move it (or restore the group)"
            ),
        ),
        _ => Resolution::Group(id),
    }
}

/// The peer with its reference resolved (`Ok(None)` when it uses `bgpGroupId`).
pub async fn dereference(
    peer: &BgpPeer,
    ctx: &Context,
    deleting: bool,
) -> Result<Option<BgpPeer>, Error> {
    let Some(reference) = &peer.spec.bgp_group_ref else {
        return Ok(None);
    };
    let group = group_named(ctx, &peer.namespace().unwrap_or_default(), &reference.name).await?;
    match resolve(peer, reference, group.as_ref(), deleting) {
        Resolution::Group(id) => {
            let mut resolved = peer.clone();
            resolved.spec.bgp_group_id = id.into();
            Ok(Some(resolved))
        }
        Resolution::NotReady(message) => Err(Error::DependencyNotReady(message)),
        Resolution::Refused(reason, message) => Err(Error::Refused { reason, message }),
    }
}

/// The BgpGroup `ns/name`: from the group controller's cache when it runs, else read.
async fn group_named(ctx: &Context, ns: &str, name: &str) -> Result<Option<BgpGroup>, Error> {
    if let Some(store) = ctx.groups.get() {
        return Ok(store
            .get(&ObjectRef::new(name).within(ns))
            .map(|g| (*g).clone()));
    }
    let api: Api<BgpGroup> = Api::namespaced(ctx.kube.clone(), ns);
    match api.get_opt(name).await {
        Ok(group) => Ok(group),
        // No BgpGroup CRD installed (plain 404): no group exists.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::kube(Step::ReadReference)(e)),
    }
}

/// Whether `peer` refers to the BgpGroup `ns/name` by `bgpGroupRef`.
pub fn refers_to(peer: &BgpPeer, ns: Option<&str>, name: &str) -> bool {
    peer.spec
        .bgp_group_ref
        .as_ref()
        .is_some_and(|r| r.name == name)
        && peer.namespace().as_deref() == ns
}

/// The peers (`ns/name`) that still hold, or may still make, a cloud peer in `group`: those
/// that refer to it by `bgpGroupRef`, or whose `bgpGroupId` (spec or recorded) is its cloud
/// ID, and that still exist (being deleted included). The group's deletion waits for them.
pub fn dependents<'a>(
    group: &BgpGroup,
    peers: impl IntoIterator<Item = &'a BgpPeer>,
) -> Vec<String> {
    let ns = group.namespace();
    let name = group.name_any();
    let id = group.group_id();
    let mut found: Vec<String> = peers
        .into_iter()
        .filter(|p| {
            let recorded = p.status.as_ref().and_then(|s| s.bgp_group_id.as_deref());
            refers_to(p, ns.as_deref(), &name)
                || id.is_some_and(|id| recorded == Some(id) || p.spec.bgp_group_id == id)
        })
        .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use crate::api::Condition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::group::{BgpGroupSpec, BgpGroupStatus};
    use crate::api::{BgpPeerSpec, BgpPeerStatus};

    fn peer(recorded: Option<&str>) -> BgpPeer {
        let mut p = BgpPeer::new(
            "p1",
            BgpPeerSpec {
                region_id: "cn-shanghai".into(),
                bgp_group_ref: Some(BgpGroupReference { name: "g".into() }),
                ..Default::default()
            },
        );
        p.metadata.namespace = Some("team".into());
        p.status = recorded.map(|id| BgpPeerStatus {
            bgp_group_id: Some(id.into()),
            ..Default::default()
        });
        p
    }

    fn group(id: Option<&str>, ready: &str, observed: i64) -> BgpGroup {
        let mut g = BgpGroup::new(
            "g",
            BgpGroupSpec {
                region_id: "cn-shanghai".into(),
                ..Default::default()
            },
        );
        g.metadata.namespace = Some("team".into());
        g.metadata.generation = Some(2);
        g.status = Some(BgpGroupStatus {
            bgp_group_id: id.map(Into::into),
            conditions: vec![Condition {
                type_: types::READY.into(),
                status: ready.into(),
                reason: "Pending".into(),
                message: Default::default(),
                observed_generation: Some(observed),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        });
        g
    }

    fn reference() -> BgpGroupReference {
        BgpGroupReference { name: "g".into() }
    }

    #[test]
    fn only_a_group_ready_for_its_generation_resolves() {
        let p = peer(None);
        let r = |g: Option<&BgpGroup>| resolve(&p, &reference(), g, false);
        assert!(matches!(r(None), Resolution::NotReady(m) if m.contains("team/g")));
        assert!(matches!(
            r(Some(&group(Some("bgpg-1"), "False", 2))),
            Resolution::NotReady(m) if m.contains("Ready=False")
        ));
        // Ready, but for an older generation.
        assert!(matches!(
            r(Some(&group(Some("bgpg-1"), "True", 1))),
            Resolution::NotReady(_)
        ));
        assert!(matches!(
            r(Some(&group(None, "True", 2))),
            Resolution::NotReady(_)
        ));
        assert_eq!(
            r(Some(&group(Some("bgpg-1"), "True", 2))),
            Resolution::Group("bgpg-1".into())
        );
    }

    #[test]
    fn a_bound_peer_never_moves_to_a_recreated_group() {
        let p = peer(Some("bgpg-old"));
        let got = resolve(
            &p,
            &reference(),
            Some(&group(Some("bgpg-new"), "True", 2)),
            false,
        );
        assert!(
            matches!(got, Resolution::Refused(reasons::DEPENDENCY_CHANGED, m) if m.contains("bgpg-old"))
        );
        // Same group: fine.
        let got = resolve(
            &p,
            &reference(),
            Some(&group(Some("bgpg-old"), "True", 2)),
            false,
        );
        assert_eq!(got, Resolution::Group("bgpg-old".into()));
    }

    #[test]
    fn the_region_must_be_the_groups() {
        let mut p = peer(None);
        p.spec.region_id = "cn-beijing".into();
        let got = resolve(
            &p,
            &reference(),
            Some(&group(Some("bgpg-1"), "True", 2)),
            false,
        );
        assert!(
            matches!(got, Resolution::Refused(reasons::INVALID_SPEC, m) if m.contains("cn-beijing"))
        );
    }

    #[test]
    fn deletion_uses_what_was_recorded_and_needs_no_group() {
        let p = peer(Some("bgpg-old"));
        assert_eq!(
            resolve(&p, &reference(), None, true),
            Resolution::Group("bgpg-old".into())
        );
        assert_eq!(
            resolve(&peer(None), &reference(), None, true),
            Resolution::Group(String::new())
        );
    }

    #[test]
    fn dependents_are_the_referring_and_the_bound_peers() {
        let g = group(Some("bgpg-1"), "True", 2);
        let referring = peer(None);
        let mut bound = peer(Some("bgpg-1"));
        bound.metadata.name = Some("p2".into());
        bound.spec.bgp_group_ref = None;
        let mut by_id = peer(None);
        by_id.metadata.name = Some("p3".into());
        by_id.metadata.namespace = Some("other".into());
        by_id.spec.bgp_group_ref = None;
        by_id.spec.bgp_group_id = "bgpg-1".into();
        let mut unrelated = peer(None);
        unrelated.metadata.name = Some("p4".into());
        unrelated.spec.bgp_group_ref = Some(BgpGroupReference { name: "h".into() });
        let mut elsewhere = peer(None);
        elsewhere.metadata.name = Some("p5".into());
        elsewhere.metadata.namespace = Some("other".into());
        assert_eq!(
            dependents(&g, [&referring, &bound, &by_id, &unrelated, &elsewhere]),
            vec!["other/p3", "team/p1", "team/p2"]
        );
    }
}
