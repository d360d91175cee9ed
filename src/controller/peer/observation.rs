//! The BgpPeer's observe step: one read of the cloud through the shared observer.

use super::*;

/// Observes the cloud for this object: through the shared observer, which serves a settled
/// object from a group listing up to a resync period old and anything in motion from a
/// listing at most a poll interval old (and fetched after our last change to it), or by ID
/// when that is cheaper.
pub(super) async fn observe(
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
        && super::super::status::ready_condition(&r.status)
            .is_some_and(|c| c.status == status::TRUE);
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
pub(super) type Observed = (Observation, Option<BgpPeerInfo>);
