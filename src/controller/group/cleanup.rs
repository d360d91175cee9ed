//! The BgpGroup cleanup path: `ensure_group_absent` carries out what the plan says once the object is
//! being deleted; only a release lets the finalizer go.

use super::*;

/// Makes the cloud group go away once nothing uses it (or leaves it, as the policy says),
/// then lets the finalizer go. Any `Err` keeps the finalizer.
pub(super) async fn ensure_group_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claimed_by();
    // Who still uses the group is known only once the BgpPeer cache has synced.
    let peers_known = r.ctx.store.get().is_some()
        && r.ctx
            .readiness
            .cache_synced
            .load(std::sync::atomic::Ordering::SeqCst);
    let dependents = r.ctx.dependents_of_group(r.obj);
    // Decide without the cloud first: pause, Orphan, never created, another owner, and
    // peers that still use the group need no call (and no credentials).
    let offline = r.group_plan(
        &GroupObservation::NotLookedUp,
        None,
        true,
        &dependents,
        claim.as_deref(),
    );
    match offline {
        GroupPlan::Paused => {
            r.write_status(&Outcome::Paused).await?;
            return Err(Error::CleanupPending(
                "deletion waits: the object is paused".to_owned(),
            ));
        }
        GroupPlan::ReleaseFinalizer { left } => return release(r, left),
        GroupPlan::WaitForDependents { names, in_cloud } => {
            return wait_for_dependents(r, &names, in_cloud).await;
        }
        _ => {}
    }
    if !peers_known {
        return Err(Error::CleanupPending(
            "deletion waits for the BgpPeer cache (which peers still use the group)".to_owned(),
        ));
    }
    let cloud = connect(r, true, claim.as_deref()).await?;
    let observed = observe::observe(r, &cloud.creds, true).await?;
    if let Some(info) = &observed.info {
        r.note_seen(info, &cloud.account);
    }
    let step = r.group_plan(
        &observed.observation,
        Some(&cloud.account),
        true,
        &dependents,
        claim.as_deref(),
    );
    debug!(?step, "cleanup plan");
    if !matches!(step, GroupPlan::Wait { .. } | GroupPlan::WaitGone { .. }) {
        r.status.waiting_since = None;
    }
    match step {
        GroupPlan::ReleaseFinalizer { left } => release(r, left),
        GroupPlan::WaitForDependents { names, in_cloud } => {
            wait_for_dependents(r, &names, in_cloud).await
        }
        GroupPlan::ReplayCreate { client_token } => {
            act::replay(r, &cloud, &client_token).await?;
            Err(Error::CleanupPending(
                "settled an interrupted create; deleting what it made next".into(),
            ))
        }
        GroupPlan::RecordCreateResult { id } => {
            act::record_create_result(r, &id).await?;
            Err(Error::CleanupPending(format!(
                "recorded BGP group {id}; deleting it next"
            )))
        }
        GroupPlan::Delete { id } => act::delete(r, &cloud.creds, &id).await,
        GroupPlan::WaitGone { id, overdue } => {
            r.start_waiting();
            match overdue {
                Some(waited) => r.report_overdue("Deleting", waited).await?,
                None => {
                    r.write_status(&Outcome::Progressing {
                        reason: reasons::DELETING,
                        message: format!("Waiting for BGP group {id} to be deleted"),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!(
                "waiting for BGP group {id} to be deleted"
            )))
        }
        GroupPlan::Wait {
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
                            "Deletion waits: the cloud reports the BGP group as {cloud_status}"
                        ),
                    })
                    .await?
                }
            }
            Err(Error::CleanupPending(format!("group is {cloud_status}")))
        }
        GroupPlan::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        other => Err(Error::CleanupPending(format!(
            "unexpected cleanup step {other:?}"
        ))),
    }
}

/// The deletion waits for the peers that still use the group: `DependentsExist` naming them
/// (one Normal event when the wait starts); looked at again every poll interval.
async fn wait_for_dependents(
    r: &mut Reconciler<'_>,
    names: &[String],
    in_cloud: bool,
) -> Result<Action, Error> {
    const SHOWN: usize = 10;
    let mut list = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    let message = if in_cloud {
        format!(
            "Deletion waits: the cloud still lists {} BGP peer(s) in the group that no BgpPeer of this cluster manages ({list}); DeleteBgpGroup is called once they are gone",
            names.len()
        )
    } else {
        format!(
            "Deletion waits for {} BgpPeer(s) that still use the group: {list}; DeleteBgpGroup is called once they are gone",
            names.len()
        )
    };
    let was_waiting = super::super::status::ready_condition(&r.status)
        .is_some_and(|c| c.reason == reasons::DEPENDENTS_EXIST);
    if !was_waiting {
        r.event(
            EventType::Normal,
            events::DEPENDENTS_EXIST,
            "Delete",
            message.clone(),
        );
    }
    r.write_status(&Outcome::Progressing {
        reason: reasons::DEPENDENTS_EXIST,
        message,
    })
    .await?;
    Err(Error::CleanupPending(format!(
        "waiting for {} dependent peer(s)",
        names.len()
    )))
}

/// Lets the finalizer go, with an event saying what is left in the cloud.
fn release(r: &Reconciler<'_>, left: Left) -> Result<Action, Error> {
    let (reason, note) = match &left {
        Left::Nothing => match &r.status.bgp_group_id {
            Some(id) => (
                events::DELETED,
                format!("BGP group {id} is gone from the cloud"),
            ),
            None => return Ok(Action::await_change()),
        },
        Left::Orphaned(id) => (
            events::ORPHANED,
            format!("Left BGP group {id} in the cloud (deletionPolicy: Orphan)"),
        ),
        Left::OrphanedUnknown(token) => (
            events::ORPHANED,
            format!(
                "Released (deletionPolicy: Orphan) while a create with ClientToken {token} was unrecorded: any group it made is left in the cloud"
            ),
        ),
        Left::Owned { id, owner } => (
            events::RELEASED,
            format!("Released without touching BGP group {id}: it is owned by BgpGroup {owner}"),
        ),
    };
    r.event(EventType::Normal, reason, "Delete", note);
    Ok(Action::await_change())
}
