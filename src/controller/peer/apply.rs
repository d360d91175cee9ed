//! The BgpPeer's apply path: `ensure_peer` carries out the [`ApplyStep`] of `plan_apply`.

use super::*;

/// Makes the cloud peer exist and match the spec.
pub(super) async fn ensure_peer(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let claim = r.claim();
    // Decide what needs no cloud first: pause, another owner, a changed immutable field.
    let offline = r.plan_apply(&Observation::NotLookedUp, None, claim.as_ref());
    r.track_pause(offline == ApplyStep::Paused);
    match offline {
        ApplyStep::Paused => return pause(r).await,
        ApplyStep::Refuse { reason, message } => return Err(Error::Refused { reason, message }),
        _ => {}
    }
    let cloud = connect(r, claim.as_ref(), false).await?;
    let poll = r.ctx.config.poll_interval;
    let pace_key = super::super::core::object_key(r.obj);
    let look = observe(r, &cloud.creds, false).await?;
    r.note_data_read(&look);
    let (observation, info) = match look {
        Look::Seen(seen) => *seen,
        // An object in motion looks again at its pace (a new peer hidden by read-after-write
        // lag is looked at again soon while few are in motion), others at the shared tick.
        Look::Later { looked, woken, due } => {
            if woken {
                r.ctx.pace.waited(&pace_key);
            }
            let pace = r.ctx.pace.not_yet(&pace_key, poll, looked);
            return Ok(Action::requeue(due.map_or(pace, |due| due.min(pace))));
        }
    };
    if let Some(info) = &info
        && r.status.bgp_peer_id.is_some()
    {
        r.note_seen(info, &cloud.account);
    }
    if let Observation::Found(peer) = &observation {
        let d = diff(&r.obj.spec, peer);
        r.note_sync(if d.is_empty() {
            Sync::InSync
        } else {
            Sync::Drifted(describe_drift(&r.obj.spec, peer, &d))
        });
    }
    let step = r.plan_apply(&observation, Some(&cloud.account), claim.as_ref());
    debug!(?step, "plan");
    if !matches!(step, ApplyStep::Wait { .. }) {
        r.status.waiting_since = None;
    }
    let creds = &cloud.creds;
    match step {
        ApplyStep::Create { .. } | ApplyStep::Wait { .. } | ApplyStep::Modify(_) => {}
        // Available: a create's Pending duration is learned.
        ApplyStep::UpToDate | ApplyStep::Drifted(_) | ApplyStep::Observed(_) => {
            r.ctx.pace.settled(&pace_key);
        }
        _ => r.ctx.pace.forget(&pace_key),
    }
    match step {
        ApplyStep::Create {
            client_token,
            incarnation,
            recreate,
        } => {
            if recreate {
                r.event(
                    EventType::Warning,
                    events::PEER_VANISHED,
                    "Recreate",
                    format!(
                        "BGP peer {} no longer exists in the cloud (deleted outside Kubernetes); creating it again",
                        r.status.bgp_peer_id.clone().unwrap_or_default()
                    ),
                );
            }
            start_create(r, creds, &cloud.account, client_token, incarnation).await?;
            // First look when the peer is likely Available (learned), or at the shared tick
            // when many are in motion.
            Ok(Action::requeue(r.ctx.pace.created(&pace_key, poll)))
        }
        ApplyStep::ReplayCreate { client_token } => {
            match replay(r, creds, &client_token, false).await? {
                Settled::NoPeer => create_afresh(r, &cloud).await?,
                Settled::Recorded | Settled::NotYet(_) => {}
            }
            Ok(Action::requeue(next_tick(poll)))
        }
        ApplyStep::VerifyCreate { client_token } => {
            match verify_create(r, creds, &client_token).await? {
                Settled::NoPeer => create_afresh(r, &cloud).await?,
                Settled::Recorded => {}
                Settled::NotYet(why) => debug!(%why, "create not verified yet"),
            }
            Ok(Action::requeue(next_tick(poll)))
        }
        ApplyStep::Adopt { id } => {
            let stamp = r.stamp();
            let status = &mut r.status;
            status.bgp_peer_id = Some(id.clone());
            status.bgp_peer_id_recorded_at = Some(stamp);
            status.adopted = true;
            status.client_token = None;
            status.create_params = None;
            status.create_requested_at = None;
            status.account_id = Some(cloud.account.as_str().into());
            status.region_id = Some(r.obj.spec.region_id.clone());
            status.bgp_group_id = Some(r.obj.spec.bgp_group_id.clone());
            status.ip_version = Some(r.obj.spec.ip_version);
            status.cloud = info.as_ref().map(Into::into);
            r.write_status(&Outcome::Progressing {
                reason: reasons::CREATING,
                message: format!("Adopted existing BGP peer {id}"),
            })
            .await?;
            r.event(
                EventType::Normal,
                events::ADOPTED,
                "Adopt",
                format!("Adopted existing BGP peer {id} (spec.adoptBgpPeerId)"),
            );
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        ApplyStep::AdoptionImpossible { message, missing } => {
            Err(Error::Adoption { message, missing })
        }
        // Observe: a missing peer is looked for again at the resync period, like a found one.
        ApplyStep::ObservedMissing { message } => {
            r.status.cloud = None;
            r.write_status(&Outcome::Stalled {
                reason: reasons::NOT_FOUND,
                message,
            })
            .await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Refuse { reason, message } => Err(Error::Refused { reason, message }),
        ApplyStep::Wait {
            cloud_status,
            overdue,
        } => {
            r.start_waiting();
            if let Some(waited) = overdue {
                r.report_overdue(&cloud_status, waited).await?;
                return Ok(Action::requeue(next_tick(poll)));
            }
            let (reason, message) = match cloud_status.as_str() {
                reasons::NOT_YET_VISIBLE => (
                    reasons::NOT_YET_VISIBLE,
                    format!(
                        "BGP peer {} was created but DescribeBgpPeers does not show it yet (read-after-write lag); waiting up to {} s before treating it as deleted",
                        r.status.bgp_peer_id.clone().unwrap_or_default(),
                        r.ctx.config.timing.visibility_grace.as_secs()
                    ),
                ),
                "Pending" => (reasons::PENDING, wait_message(&cloud_status)),
                "Modifying" => (reasons::MODIFYING, wait_message(&cloud_status)),
                "Deleting" => (reasons::DELETING, wait_message(&cloud_status)),
                _ => (reasons::CREATING, wait_message(&cloud_status)),
            };
            r.write_status(&Outcome::Progressing { reason, message })
                .await?;
            Ok(Action::requeue(r.ctx.pace.in_motion(&pace_key, poll)))
        }
        ApplyStep::Modify(diff) => {
            if let Observation::Found(peer) = &observation {
                modify(r, creds, peer, &diff).await?;
            }
            Ok(Action::requeue(r.ctx.pace.in_motion(&pace_key, poll)))
        }
        ApplyStep::UpToDate => {
            let (stamp, resync) = (r.stamp(), resync_period(r.obj, r.ctx));
            let first_ready = crate::ops::report::note_synced(
                &mut r.status,
                r.stored.as_ref(),
                BgpPeer::NOUN,
                r.obj.metadata.generation,
                &stamp,
                resync,
            );
            r.write_status(&Outcome::Ready).await?;
            r.ctx
                .metrics
                .ready(BgpPeer::KIND, &r.obj.metadata, first_ready, r.now);
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        // Report: Ready (the peer is Available and reporting is what was asked) with
        // UpToDate=False naming the differences; no Modify call.
        ApplyStep::Drifted(_) => {
            r.write_status(&Outcome::Ready).await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Observed(_) => {
            r.status.cloud = info.as_ref().map(Into::into);
            r.write_status(&Outcome::Observed).await?;
            Ok(Action::requeue(jittered(resync_period(r.obj, r.ctx))))
        }
        ApplyStep::Paused => pause(r).await,
    }
}

/// Paused: no cloud call, `Ready=Unknown`; the annotation's removal wakes the object.
async fn pause(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    r.note_sync(Sync::Unknown);
    r.write_status(&Outcome::Paused).await?;
    Ok(Action::await_change())
}

fn wait_message(cloud_status: &str) -> String {
    format!("Waiting: the cloud reports the peer as {cloud_status}")
}

/// Nothing in the cloud came from the recorded create: start afresh under a new incarnation,
/// so no forgotten-or-not token can be involved.
async fn create_afresh(r: &mut Reconciler<'_>, cloud: &Cloud) -> Result<(), Error> {
    let incarnation = r.status.incarnation.saturating_add(1);
    let uid = r.obj.uid().unwrap_or_default();
    let client_token = super::super::token::client_token_for(&uid, incarnation);
    start_create(r, &cloud.creds, &cloud.account, client_token, incarnation).await
}

async fn modify(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    peer: &ObservedPeer,
    diff: &PeerDiff,
) -> Result<(), Error> {
    let id = r.status.bgp_peer_id.clone().unwrap_or_default();
    let call = modify_call(&r.obj.spec, peer, diff);
    let req = ModifyBgpPeerAttributeRequest {
        region_id: r.region().to_owned(),
        bgp_peer_id: id.clone(),
        bgp_group_id: call.bgp_group_id,
        peer_ip_address: call.peer_ip_address,
        enable_bfd: call.enable_bfd,
        bfd_multi_hop: call.bfd_multi_hop,
        ..Default::default()
    };
    let resp = r
        .ctx
        .vpc
        .modify_bgp_peer_attribute(creds, &req)
        .await
        .map_err(Error::cloud("ModifyBgpPeerAttribute"))?;
    r.ctx.observer.note_mutation(&id);
    let fields = diff.fields().join(", ");
    r.write_status(&Outcome::Progressing {
        reason: reasons::MODIFYING,
        message: format!("Updating {fields}"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::UPDATED,
        "Modify",
        format!("Updated {fields} of BGP peer {id} (RequestId {})", resp.0),
    );
    Ok(())
}
