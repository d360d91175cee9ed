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
) -> Result<Look, Error> {
    let id = r
        .status
        .bgp_peer_id
        .clone()
        .or_else(|| r.obj.spec.adopt_bgp_peer_id.clone());
    let Some(id) = id else {
        return Ok(Look::Seen(Box::new((Observation::NotLookedUp, None))));
    };
    let settled = looks_settled(r.obj, &r.status, for_deletion);
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
            account: r.account(),
            region: r.region(),
            group: r.group(),
            id: &id,
            max_age,
            demand_window,
            newer_than_last: !settled,
            removals_settle: r.ctx.pace.deletion_settle(poll),
            creates_settle: r.ctx.pace.creation_settle(poll),
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
        Ok(Lookup::Found(p)) => Ok(Look::Seen(Box::new((
            Observation::Found((&*p).into()),
            Some(*p),
        )))),
        Ok(Lookup::Missing) => Ok(Look::Seen(Box::new((Observation::NotFound, None)))),
        // Nothing changes until the cloud has been looked at: no status write, and the
        // object is woken when the listing it waits for lands (or looks again at its pace).
        Ok(Lookup::Waiting) => {
            debug!(group = r.group(), "waiting for a listing of the BGP peers");
            Ok(Look::Later {
                looked: false,
                woken: true,
                due: None,
            })
        }
        // The listing that shows our newest peers in the region is due then: this object's
        // look then fetches it (it is woken sooner if a listing lands first).
        Ok(Lookup::Due(due)) => {
            debug!(
                group = r.group(),
                ?due,
                "waiting for the listing that shows our newest peers"
            );
            Ok(Look::Later {
                looked: false,
                woken: true,
                due: Some(due),
            })
        }
        Ok(Lookup::Pending) => {
            debug!(group = r.group(), "the peer's absence is not certain yet");
            Ok(Look::Later {
                looked: false,
                woken: false,
                due: None,
            })
        }
        // Our own peer of moments ago, not listed yet: never "missing", look again soon.
        Ok(Lookup::NotYetListed) => {
            debug!(group = r.group(), "our new peer is not listed yet");
            Ok(Look::Later {
                looked: true,
                woken: false,
                due: None,
            })
        }
        Err(source) => Err(Error::Cloud {
            action: "DescribeBgpPeers",
            source,
        }),
    }
}

/// Whether this object's look is answered like a settled object's (from a listing up to a
/// resync period old, started after our last change to the peer) rather than one in motion's
/// (fresh data, each look newer than the last): a Ready object whose spec it has applied, and
/// a Ready object being deleted until our delete is accepted. A mass deletion then sends its
/// deletes without waiting for fresh listings. That is safe: the cloud refuses a delete in a
/// state that does not allow it, a peer already gone answers "not found" (recorded like an
/// accepted delete, then confirmed), and after our delete every look must see newer data
/// (absence trusted only as `observe::decide::verdict` allows). After a failed attempt
/// (`lastError`) the next look is fresh.
///
/// Deleting a custom resource that holds a finalizer bumps its `metadata.generation`, so the
/// generation is not compared for a deletion: with it, every pre-delete look of a mass
/// deletion needed fresh data and was held for a region listing while the other deletes went
/// on (N = 1,000: 116 deletes sent 8 s late, nothing sent meanwhile).
pub(super) fn looks_settled(obj: &BgpPeer, current: &BgpPeerStatus, for_deletion: bool) -> bool {
    let ready = current.bgp_peer_id.is_some()
        && super::super::status::ready_condition(current).is_some_and(|c| c.status == status::TRUE);
    if for_deletion {
        ready && current.delete_requested_at.is_none() && current.last_error.is_none()
    } else {
        ready && current.observed_generation == obj.metadata.generation
    }
}

/// What one observation gave.
pub(super) enum Look {
    /// What it found: the plan's view, and the cloud's answer when the peer exists.
    Seen(Box<Observed>),
    /// No answer yet: a listing to wait for (`woken`: the object is woken when it lands), an
    /// absence not certain yet, or our own peer of moments ago not listed yet (`looked`:
    /// read-after-write lag). Either way nothing is decided; the object looks again.
    Later {
        /// A look happened and did not list the peer yet.
        looked: bool,
        /// The object is registered for the listing it waits for: woken when it lands.
        woken: bool,
        /// That listing is due in this long, and this object's next look fetches it: it
        /// looks again no later than then.
        due: Option<Duration>,
    },
}

/// What an observation found: the plan's view, and the cloud's answer when the peer exists.
pub(super) type Observed = (Observation, Option<BgpPeerInfo>);
