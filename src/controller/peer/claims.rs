//! One owner per cloud peer in the cluster.
//!
//! An object claims a peer by naming it in `status.bgpPeerId` (it created or adopted it) or,
//! before adoption completes, in `spec.adoptBgpPeerId`. When two objects name the same peer:
//! - the object that **created** it always owns it (no other object can hold its token);
//! - otherwise a **recorded** adoption beats a pending one;
//! - between two recorded adoptions (two adopters raced on stale caches), the older object
//!   (creation time, then UID) owns it.
//!
//! The loser is refused (`Stalled`, `AlreadyOwned`), calls no write API, and its deletion
//! releases it without touching the peer. Pure: decided from the cache's objects.

use crate::api::BgpPeer;

use super::plan::Claim;

/// The object among `others` that owns the peer `me` names, when it is not `me`.
pub fn stronger_claim<'a>(
    me: &BgpPeer,
    others: impl IntoIterator<Item = &'a BgpPeer>,
) -> Option<Claim> {
    let status = me.status.as_ref();
    let recorded = status.and_then(|s| s.bgp_peer_id.as_deref());
    let adopted = status.is_some_and(|s| s.adopted);
    let id = recorded.or(me.spec.adopt_bgp_peer_id.as_deref())?;
    if recorded.is_some() && !adopted {
        // The creator: nobody else can have made this peer.
        return None;
    }
    let uid = me.metadata.uid.as_deref();
    others
        .into_iter()
        .filter(|o| o.metadata.uid.as_deref() != uid)
        .filter(|o| o.peer_id() == Some(id))
        .find(|o| {
            let o_adopted = o.status.as_ref().is_some_and(|s| s.adopted);
            !o_adopted || recorded.is_none() || older(o, me)
        })
        .map(|o| Claim {
            owner: super::super::key::object_key(o),
        })
}

/// `a` was created before `b` (creation time, then UID, so exactly one of two is older).
fn older(a: &BgpPeer, b: &BgpPeer) -> bool {
    let key = |o: &BgpPeer| {
        (
            o.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            o.metadata.uid.clone(),
        )
    };
    key(a) < key(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BgpPeerSpec, BgpPeerStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn obj(name: &str, created: i64, adopt: Option<&str>, status: Option<(&str, bool)>) -> BgpPeer {
        let mut o = BgpPeer::new(
            name,
            BgpPeerSpec {
                region_id: "cn-shanghai".into(),
                bgp_group_id: "bgpg-aaaa".into(),
                peer_ip_address: None,
                ip_version: Default::default(),
                enable_bfd: false,
                bfd_multi_hop: None,
                deletion_policy: Default::default(),
                adopt_bgp_peer_id: adopt.map(Into::into),
                ..Default::default()
            },
        );
        o.metadata.namespace = Some("ns".into());
        o.metadata.uid = Some(format!("uid-{name}"));
        o.metadata.creation_timestamp = Some(Time(
            jiff::Timestamp::from_second(created).expect("timestamp"),
        ));
        o.status = status.map(|(id, adopted)| BgpPeerStatus {
            bgp_peer_id: Some(id.into()),
            adopted,
            ..Default::default()
        });
        o
    }

    #[test]
    fn an_adopter_of_a_created_peer_is_refused_naming_the_creator() {
        let creator = obj("a", 10, None, Some(("bgp-1", false)));
        let adopter = obj("b", 20, Some("bgp-1"), None);
        let all = [creator.clone(), adopter.clone()];
        assert_eq!(
            stronger_claim(&adopter, &all),
            Some(Claim {
                owner: "ns/a".into()
            })
        );
        assert_eq!(stronger_claim(&creator, &all), None);
    }

    #[test]
    fn a_recorded_adopter_that_lost_to_the_creator_yields() {
        // Both recorded it (the adopter raced the creator's status write): the creator wins.
        let creator = obj("a", 30, None, Some(("bgp-1", false)));
        let adopter = obj("b", 20, Some("bgp-1"), Some(("bgp-1", true)));
        let all = [creator.clone(), adopter.clone()];
        assert!(stronger_claim(&adopter, &all).is_some());
        assert_eq!(stronger_claim(&creator, &all), None);
    }

    #[test]
    fn between_two_recorded_adopters_the_older_owns() {
        let old = obj("old", 10, Some("bgp-1"), Some(("bgp-1", true)));
        let young = obj("young", 20, Some("bgp-1"), Some(("bgp-1", true)));
        let all = [old.clone(), young.clone()];
        assert_eq!(stronger_claim(&old, &all), None);
        assert_eq!(
            stronger_claim(&young, &all).map(|c| c.owner),
            Some("ns/old".into())
        );
    }

    #[test]
    fn a_pending_adopter_never_outranks_a_recorded_one() {
        let recorded = obj("young", 20, Some("bgp-1"), Some(("bgp-1", true)));
        let pending = obj("old", 10, Some("bgp-1"), None);
        let all = [recorded.clone(), pending.clone()];
        assert_eq!(stronger_claim(&recorded, &all), None);
        assert!(stronger_claim(&pending, &all).is_some());
    }

    #[test]
    fn different_peers_do_not_conflict() {
        let a = obj("a", 10, None, Some(("bgp-1", false)));
        let b = obj("b", 20, Some("bgp-2"), None);
        assert_eq!(stronger_claim(&b, &[a.clone(), b.clone()]), None);
    }
}
