//! The BgpNetwork apply path: `ensure_network` carries out what the plan says while the object
//! lives.

use super::*;

pub(super) async fn ensure_network(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    if is_paused(r.obj) {
        r.write_status(&Outcome::Paused).await?;
        return Ok(Action::await_change());
    }
    let cloud = connect(r).await?;
    let mut listing: Option<Listing> = None;
    for _ in 0..MAX_STEPS {
        let claim = r.claim();
        match r.plan(Some(&cloud.account), listing.as_ref(), claim.as_deref()) {
            Plan::Paused => {
                r.write_status(&Outcome::Paused).await?;
                return Ok(Action::await_change());
            }
            Plan::Refuse { reason, message } => {
                if reason == reasons::ALREADY_OWNED && r.status.owned {
                    // Another object's claim is stronger: this one no longer owns it.
                    r.status.owned = false;
                    r.status.adopted = false;
                    r.status.adopted_at = None;
                }
                return Err(Error::Refused { reason, message });
            }
            Plan::Observe | Plan::LookAgain if listing.is_none() => {
                listing = Some(r.list(&cloud).await?);
            }
            Plan::LookAgain => {
                r.write_status(&Outcome::Progressing {
                    reason: reasons::INCONSISTENT_LISTING,
                    message: format!(
                        "The listing of {}'s networks changed while it was walked; looking again before concluding {} is absent",
                        r.router(),
                        r.obj.spec.dst_cidr_block
                    ),
                })
                .await?;
                return Ok(Action::requeue(next_tick(r.ctx.config.poll_interval)));
            }
            Plan::Observe => listing = Some(r.list(&cloud).await?),
            Plan::Settle { client_token } => {
                let answer = r.add(&cloud, &client_token).await?;
                if let Some(err) = r.settle(&cloud, answer).await? {
                    return Err(err);
                }
            }
            Plan::Add {
                client_token,
                incarnation,
            } => {
                let seen = listing.clone().unwrap_or(Listing {
                    found: None,
                    consistent: false,
                });
                r.record_intent(&cloud, &client_token, incarnation, &seen)
                    .await?;
                let answer = r.add(&cloud, &client_token).await?;
                if let Some(err) = r.settle(&cloud, answer).await? {
                    return Err(err);
                }
                // Look again: the new network (or someone else's) decides the next step.
                listing = None;
            }
            Plan::Adopt => {
                r.bind(&cloud.account)?;
                r.status.owned = true;
                r.status.adopted = true;
                r.status.adopted_at = Some(r.stamp());
                r.clear_intent();
                r.event(
                    EventType::Normal,
                    events::ADOPTED,
                    "Adopt",
                    format!(
                        "Took over the existing network {} (adopt: true)",
                        r.describe()
                    ),
                );
            }
            Plan::AlreadyExists { message } => {
                return Err(Error::Refused {
                    reason: reasons::ALREADY_EXISTS,
                    message,
                });
            }
            Plan::Unverified { message } => return Err(Error::CreateUnverified(message)),
            Plan::Wait {
                reason,
                message,
                overdue,
            } => return r.wait(reason, message, overdue).await,
            Plan::Ready => return r.ready().await,
            Plan::Vanished => {
                r.event(
                    EventType::Warning,
                    events::NETWORK_VANISHED,
                    "Add",
                    format!(
                        "The network {} is no longer advertised although this object was not deleted; adding it again",
                        r.describe()
                    ),
                );
                let s = &mut r.status;
                s.owned = false;
                s.adopted = false;
                s.adopted_at = None;
                s.add_accepted_at = None;
                s.cloud = None;
                s.incarnation = s.incarnation.saturating_add(1);
                // The next Add uses the new incarnation's token.
                s.client_token = None;
                s.add_requested_at = None;
                s.add_observation = None;
            }
            Plan::Delete | Plan::WaitGone { .. } | Plan::Release(_) => {
                // Only during deletion.
                return Ok(Action::requeue(next_tick(r.ctx.config.poll_interval)));
            }
        }
    }
    Ok(Action::requeue(next_tick(r.ctx.config.poll_interval)))
}
