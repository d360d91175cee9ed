//! The BgpNetwork cleanup path: `ensure_network_absent` carries out what the plan says once the
//! object is being deleted; only a release lets the finalizer go.

use super::*;

pub(super) async fn ensure_network_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    // What needs no cloud call (pause, Orphan, nothing of ours) is decided before credentials.
    let claim = r.claim();
    match r.plan(None, None, claim.as_deref()) {
        Plan::Paused => {
            r.write_status(&Outcome::Paused).await?;
            return Err(Error::CleanupPending(
                "paused: the deletion waits until the pause annotation is removed".into(),
            ));
        }
        Plan::Release(left) => return Ok(release(r, left)),
        _ => {}
    }
    let cloud = connect(r).await?;
    let mut listing: Option<Listing> = None;
    for _ in 0..MAX_STEPS {
        let claim = r.claim();
        match r.plan(Some(&cloud.account), listing.as_ref(), claim.as_deref()) {
            Plan::Release(left) => return Ok(release(r, left)),
            Plan::Refuse { reason, message } => return Err(Error::Refused { reason, message }),
            Plan::Observe => listing = Some(r.list(&cloud).await?),
            Plan::Settle { client_token } => match r.add(&cloud, &client_token).await? {
                AddAnswer::Accepted => {
                    r.settle(&cloud, AddAnswer::Accepted).await?;
                }
                AddAnswer::NotOurs | AddAnswer::MadeNothing(_) => {
                    r.clear_intent();
                    return Ok(release(r, Left::Nothing));
                }
                AddAnswer::Unknown(err) => return Err(err),
            },
            Plan::Delete => {
                delete(r, &cloud).await?;
                return Err(Error::CleanupPending(format!(
                    "DeleteBgpNetwork for {} accepted",
                    r.describe()
                )));
            }
            Plan::WaitGone { message } => {
                r.write_status(&Outcome::Progressing {
                    reason: reasons::DELETING,
                    message: message.clone(),
                })
                .await?;
                return Err(Error::CleanupPending(message));
            }
            Plan::LookAgain if listing.is_none() => listing = Some(r.list(&cloud).await?),
            Plan::LookAgain => {
                return Err(Error::CleanupPending(format!(
                    "the listing of {}'s networks changed while it was walked; looking again",
                    r.router()
                )));
            }
            Plan::Unverified { message } => return Err(Error::CreateUnverified(message)),
            Plan::Paused
            | Plan::Add { .. }
            | Plan::Adopt
            | Plan::AlreadyExists { .. }
            | Plan::Wait { .. }
            | Plan::Ready
            | Plan::Vanished => break,
        }
    }
    Err(Error::CleanupPending(format!(
        "withdrawing the network {}",
        r.describe()
    )))
}

/// DeleteBgpNetwork; "not there" counts as accepted (the listing confirms the absence).
async fn delete(r: &mut Reconciler<'_>, cloud: &Cloud) -> Result<(), Error> {
    let uid = r.obj.uid().unwrap_or_default();
    let req = DeleteBgpNetworkRequest {
        region_id: r.region(),
        router_id: r.router(),
        dst_cidr_block: r.cidr()?.to_string(),
        client_token: Some(plan::delete_token(&uid, r.status.incarnation)),
    };
    match r.ctx.vpc.delete_bgp_network(&cloud.creds, &req).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(NOT_FOUND_CODE) => {}
        Err(e) => return Err(Error::cloud("DeleteBgpNetwork")(e)),
    }
    if r.status.delete_requested_at.is_none() {
        r.status.delete_requested_at = Some(r.stamp());
        r.event(
            EventType::Normal,
            events::DELETING,
            "Delete",
            format!("DeleteBgpNetwork for {} accepted", r.describe()),
        );
    }
    r.write_status(&Outcome::Progressing {
        reason: reasons::DELETING,
        message: format!(
            "DeleteBgpNetwork for {} was accepted; waiting until the VBR no longer lists it",
            r.describe()
        ),
    })
    .await
}

/// Releases the object with an event saying what is left.
fn release(r: &Reconciler<'_>, left: Left) -> Action {
    let (reason, note) = match left {
        Left::Nothing if r.status.delete_requested_at.is_some() => (
            events::DELETED,
            format!("The network {} is withdrawn", r.describe()),
        ),
        Left::Nothing => (
            events::RELEASED,
            "Released: no network of this object's is advertised".to_owned(),
        ),
        Left::Orphaned => (
            events::ORPHANED,
            format!(
                "deletionPolicy: Orphan: the network {} stays advertised",
                r.describe()
            ),
        ),
        Left::OwnedByOther => (
            events::RELEASED,
            format!(
                "Released without touching {}: another object owns it",
                r.describe()
            ),
        ),
    };
    r.event(EventType::Normal, reason, "Release", note);
    Action::await_change()
}
