//! The BgpGroup apply path: `ensure_group` carries out what the plan says while the object lives.

use super::*;

/// Makes the cloud group exist and match the spec.
pub(super) async fn ensure_group(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claimed_by();
    let offline = r.group_plan(
        &GroupObservation::NotLookedUp,
        None,
        false,
        &[],
        claim.as_deref(),
    );
    match offline {
        GroupPlan::Paused => {
            r.write_status(&Outcome::Paused).await?;
            return Ok(Action::await_change());
        }
        GroupPlan::Refuse { reason, message } => return Err(Error::Refused { reason, message }),
        _ => {}
    }
    if let Some(wait) = plan::fresh_for(
        &r.status,
        r.obj.metadata.generation,
        r.now,
        resync_period(r.obj, r.ctx),
    ) {
        debug!(
            ?wait,
            "settled and confirmed within the resync period: no cloud read"
        );
        return Ok(Action::requeue(jittered(wait)));
    }
    let cloud = connect(r, false, claim.as_deref()).await?;
    let poll = r.ctx.config.poll_interval;
    let observed = observe::observe(r, &cloud.creds, false).await?;
    if let Some(info) = &observed.info
        && r.status.bgp_group_id.is_some()
    {
        r.note_seen(info, &cloud.account);
    }
    let step = r.group_plan(
        &observed.observation,
        Some(&cloud.account),
        false,
        &[],
        claim.as_deref(),
    );
    debug!(?step, "plan");
    if !matches!(step, GroupPlan::Wait { .. }) {
        r.status.waiting_since = None;
    }
    match step {
        GroupPlan::Create {
            client_token,
            incarnation,
            recreate,
        } => {
            if recreate {
                r.event(
                    EventType::Warning,
                    events::GROUP_VANISHED,
                    "Recreate",
                    format!(
                        "BGP group {} no longer exists in the cloud (deleted outside Kubernetes); creating it again",
                        r.status.bgp_group_id.clone().unwrap_or_default()
                    ),
                );
            }
            act::start_create(r, &cloud, client_token, incarnation).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::ReplayCreate { client_token } => {
            act::replay(r, &cloud, &client_token).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::RecordCreateResult { id } => {
            act::record_create_result(r, &id).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::Adopt { id } => {
            act::adopt(r, &cloud, &id, observed.info.as_ref()).await?;
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        GroupPlan::AdoptionImpossible { message, missing } => {
            Err(Error::Adoption { message, missing })
        }
        GroupPlan::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        GroupPlan::Wait {
            cloud_status,
            overdue,
        } => {
            r.start_waiting();
            if let Some(waited) = overdue {
                r.report_overdue(&cloud_status, waited).await?;
                return Ok(Action::requeue(next_tick(poll)));
            }
            let id = r.status.bgp_group_id.clone().unwrap_or_default();
            let (reason, message) = match cloud_status.as_str() {
                reasons::NOT_YET_VISIBLE => (
                    reasons::NOT_YET_VISIBLE,
                    format!(
                        "BGP group {id} was created but DescribeBgpGroups does not show it yet (read-after-write lag); waiting up to {} s before treating it as deleted",
                        r.ctx.config.timing.visibility_grace.as_secs()
                    ),
                ),
                "Pending" => (reasons::PENDING, wait_message(&id, &cloud_status)),
                "Modifying" => (reasons::MODIFYING, wait_message(&id, &cloud_status)),
                "Deleting" => (reasons::DELETING, wait_message(&id, &cloud_status)),
                _ => (reasons::CREATING, wait_message(&id, &cloud_status)),
            };
            r.write_status(&Outcome::Progressing { reason, message })
                .await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::Modify(fields) => {
            act::modify(r, &cloud, &observed, &fields).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        GroupPlan::UpToDate => {
            let (stamp, resync) = (r.stamp(), resync_period(r.obj, r.ctx));
            let first_ready = crate::ops::report::note_synced(
                &mut r.status,
                r.stored.as_ref(),
                BgpGroup::NOUN,
                r.obj.metadata.generation,
                &stamp,
                resync,
            );
            r.write_status(&Outcome::Ready).await?;
            r.ctx
                .metrics
                .ready(KIND_BGP_GROUP, &r.obj.metadata, first_ready, r.now);
            Ok(Action::requeue(jittered(resync)))
        }
        // The apply plan never answers with a deletion step.
        GroupPlan::Paused
        | GroupPlan::WaitForDependents { .. }
        | GroupPlan::Delete { .. }
        | GroupPlan::WaitGone { .. }
        | GroupPlan::ReleaseFinalizer { .. } => Ok(Action::requeue(next_tick(poll))),
    }
}

fn wait_message(id: &str, cloud_status: &str) -> String {
    format!("Waiting: the cloud reports BGP group {id} as {cloud_status}")
}
