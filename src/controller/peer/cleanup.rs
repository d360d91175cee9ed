//! The BgpPeer's cleanup path: `ensure_peer_absent` carries out the [`CleanupStep`] of
//! `plan_cleanup`; only a release lets the finalizer go.

use super::*;

/// Makes the cloud peer go away (or leaves it, as the policy says), then lets the finalizer
/// go. Any `Err` keeps the finalizer: only [`release`] returns `Ok`.
pub(super) async fn ensure_peer_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claim();
    // Decide without the cloud first: pause, Orphan, another owner, or nothing ever created
    // need no call (and no credentials, so a deleted Secret never wedges the finalizer).
    let offline = r.plan_cleanup(&Observation::NotLookedUp, None, claim.as_ref());
    r.track_pause(offline == CleanupStep::Paused);
    match offline {
        CleanupStep::Paused => return pause_deletion(r).await,
        CleanupStep::ReleaseFinalizer { left } => return release(r, left),
        _ => {}
    }
    let cloud = connect(r, claim.as_ref(), true).await?;
    let creds = &cloud.creds;
    let look = observe(r, creds, true).await?;
    r.note_data_read(&look);
    let (observation, info) = match look {
        Look::Seen(seen) => *seen,
        Look::Later { woken, due, .. } => {
            // Woken when the listing it waits for lands (during a mass deletion, the one
            // after our last removal in the region): its own next look is only a fallback.
            // (A listing due at a given time is fetched by whoever looks then: not parked.)
            if woken && due.is_none() {
                r.ctx.pace.park(&super::super::core::object_key(r.obj));
            }
            return Err(Error::CleanupPending(format!(
                "waiting for a listing of BGP group {}",
                r.group()
            )));
        }
    };
    if let Some(info) = &info {
        r.note_seen(info, &cloud.account);
    }
    let step = r.plan_cleanup(&observation, Some(&cloud.account), claim.as_ref());
    debug!(?step, "cleanup plan");
    if !matches!(
        step,
        CleanupStep::Wait { .. } | CleanupStep::WaitGone { .. }
    ) {
        r.status.waiting_since = None;
    }
    let pace_key = super::super::core::object_key(r.obj);
    match step {
        // Each look after our delete that still finds the peer counts for the learned
        // Deleting time; the next look's wait is the pace's (`core::error_policy`).
        CleanupStep::WaitGone { .. } | CleanupStep::Wait { .. } => {
            r.ctx
                .pace
                .seen_in_motion(&pace_key, r.ctx.config.poll_interval);
        }
        CleanupStep::ReleaseFinalizer { .. } => r.ctx.pace.settled(&pace_key),
        _ => {}
    }
    match step {
        CleanupStep::ReleaseFinalizer { left } => release(r, left),
        CleanupStep::ReplayCreate { client_token } => {
            match replay(r, creds, &client_token, true).await? {
                Settled::NoPeer => release(r, Left::Nothing),
                Settled::NotYet(why) => Err(Error::CleanupPending(why)),
                Settled::Recorded => Err(Error::CleanupPending(
                    "learned the peer ID of an interrupted create; deleting it next".into(),
                )),
            }
        }
        CleanupStep::VerifyCreate { client_token } => {
            match verify_create(r, creds, &client_token).await? {
                // The old create made nothing that is still there: nothing to delete.
                Settled::NoPeer => release(r, Left::Nothing),
                Settled::NotYet(why) => Err(Error::CleanupPending(why)),
                Settled::Recorded => Err(Error::CleanupPending(
                    "recorded the peer of an interrupted create; deleting it next".into(),
                )),
            }
        }
        CleanupStep::Delete { id } => delete(r, creds, &id).await,
        CleanupStep::WaitGone { id, overdue } => {
            r.start_waiting();
            match overdue {
                Some(waited) => r.report_overdue("Deleting", waited).await?,
                None => {
                    r.write_status(&Outcome::Progressing {
                        reason: reasons::DELETING,
                        message: format!("Waiting for BGP peer {id} to be deleted"),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!(
                "waiting for BGP peer {id} to be deleted"
            )))
        }
        CleanupStep::Wait {
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
                            "Deletion waits: the cloud reports the peer as {cloud_status}"
                        ),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!("peer is {cloud_status}")))
        }
        CleanupStep::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        CleanupStep::Paused => pause_deletion(r).await,
    }
}

/// A paused deletion keeps the finalizer and makes no call.
async fn pause_deletion(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    r.write_status(&Outcome::Paused).await?;
    Err(Error::CleanupPending(
        "deletion waits: the object is paused".to_owned(),
    ))
}

/// Calls DeleteBgpPeer. An answer that the peer is not there is not a failure: the deletion
/// is recorded like an accepted one, and the peer's absence is then confirmed by a read in
/// the owning account (a "not found" right after our create may be read-after-write lag).
async fn delete(r: &mut Reconciler<'_>, creds: &Credentials, id: &str) -> Result<Action, Error> {
    let req = DeleteBgpPeerRequest {
        region_id: r.region().to_owned(),
        bgp_peer_id: id.to_owned(),
        ..Default::default()
    };
    let note = match r.ctx.vpc.delete_bgp_peer(creds, &req).await {
        Ok(resp) => format!("Deleting BGP peer {id} (RequestId {})", resp.0),
        Err(source) if delete_found_nothing(&source) => format!(
            "DeleteBgpPeer found no peer {id} ({}); confirming that it is gone",
            source.code().unwrap_or("-")
        ),
        Err(source) => {
            return Err(Error::Cloud {
                action: "DeleteBgpPeer",
                source,
            });
        }
    };
    r.ctx.observer.note_deleted(id, r.account());
    // In motion until released: its first look comes when the peer is likely gone.
    r.ctx.pace.deleted(
        &super::super::core::object_key(r.obj),
        r.ctx.config.poll_interval,
    );
    r.status.delete_requested_at = Some(r.stamp());
    r.event(EventType::Normal, events::DELETING, "Delete", note);
    r.write_status(&Outcome::Progressing {
        reason: reasons::DELETING,
        message: format!("Deleting BGP peer {id}"),
    })
    .await?;
    Err(Error::CleanupPending(format!(
        "waiting for BGP peer {id} to be deleted"
    )))
}

fn release(r: &Reconciler<'_>, left: Left) -> Result<Action, Error> {
    if let Some(id) = &r.status.bgp_peer_id {
        r.ctx.observer.forget(id);
    }
    let orphan = r.obj.spec.deletion_policy == DeletionPolicy::Orphan;
    let (reason, note) = match &left {
        Left::Nothing if orphan => (
            events::ORPHANED,
            "Released (deletionPolicy: Orphan): no BGP peer of this object existed in the cloud"
                .to_owned(),
        ),
        Left::Nothing => match &r.status.bgp_peer_id {
            Some(id) => (
                events::DELETED,
                format!("BGP peer {id} is gone from the cloud"),
            ),
            None => return Ok(Action::await_change()),
        },
        Left::Orphaned(id) => (
            events::ORPHANED,
            format!("Left BGP peer {id} in the cloud (deletionPolicy: Orphan)"),
        ),
        Left::OrphanedUnknown(token) => (
            events::ORPHANED,
            format!(
                "Released (deletionPolicy: Orphan) while a create with ClientToken {token} was unrecorded: any peer it made is left in the cloud"
            ),
        ),
        Left::AlreadyDeleting(id) => (
            events::DELETED,
            format!(
                "Released (deletionPolicy: Orphan), but DeleteBgpPeer for {id} had already been accepted: the peer is being deleted, not left"
            ),
        ),
        Left::Observed(id) => (
            events::RELEASED,
            format!("Released without touching BGP peer {id} (managementPolicy: Observe)"),
        ),
        Left::Owned { id, owner } => (
            events::RELEASED,
            format!("Released without touching BGP peer {id}: it is owned by {owner}"),
        ),
    };
    r.event(EventType::Normal, reason, "Delete", note);
    Ok(Action::await_change())
}
