//! Creating a peer without ever making two: the recorded-token-before-create protocol, the
//! replay of an interrupted create, and the verification of one whose token may be gone.
//!
//! 1. [`start_create`] records the ClientToken, the parameters, the time, the account and
//!    the placement (region, group, IP version) in status **before** CreateBgpPeer is called.
//! 2. [`create`] calls it and records the peer ID it answers.
//! 3. After a crash or a lost status write, [`replay`] calls it again with the same token and
//!    parameters: the API answers the peer it already made.
//! 4. Only a refusal that proves no peer was made under the token (the API's own validation
//!    of the parameters, [`proves_nothing_made`]) clears it; anything else keeps it.
//! 5. When a replay cannot settle it (the token is older than the replay window, the API says
//!    the token was used with other parameters, or, during deletion, a quota or missing group
//!    refuses the replay), [`verify_create`] searches a consistent listing of the group for
//!    unclaimed peers with the requested IP: none means nothing was made; some need a person
//!    to say which (annotation `vpc.alicloud.dev/create-result: <token>=<peer ID>|none`).

use std::collections::{BTreeMap, HashSet};

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use tracing::{debug, info, warn};

use crate::api::conditions::{events, reasons};
use crate::api::{CREATE_RESULT_ANNOTATION, CreateParams};
use crate::cloud::{
    BgpPeerInfo, CreateBgpPeerRequest, Credentials, DeleteBgpPeerRequest, ErrorClass,
};
use crate::ops::events::EventType;

use super::super::error::Error;
use super::super::key::same_ip;
use super::super::status::Outcome;
use super::Reconciler;

/// What a replay or a verification settled.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// The peer the create made is now recorded in status.
    Recorded,
    /// No peer that the create may have made exists.
    NoPeer,
    /// Not settled yet (the create is too young to be listed, or the listing was not
    /// consistent): look again.
    NotYet(String),
}

/// Records the token, the parameters, the time, the account and the placement BEFORE the
/// call (after a crash the next reconcile replays this exact create instead of making a
/// second peer), then creates.
pub(super) async fn start_create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    account: &str,
    client_token: String,
    incarnation: u32,
) -> Result<(), Error> {
    let spec = &r.obj.spec;
    let stamp = r.stamp();
    let status = &mut r.status;
    status.bgp_peer_id = None;
    status.cloud = None;
    status.bgp_peer_id_recorded_at = None;
    status.delete_requested_at = None;
    status.waiting_since = None;
    status.adopted = false;
    status.client_token = Some(client_token.clone());
    status.create_params = Some(CreateParams::from_spec(spec));
    status.create_requested_at = Some(stamp);
    status.incarnation = incarnation;
    status.account_id = Some(account.into());
    status.region_id = Some(spec.region_id.clone());
    status.bgp_group_id = Some(spec.bgp_group_id.clone());
    status.ip_version = Some(spec.ip_version);
    r.write_status(&Outcome::Progressing {
        reason: reasons::CREATING,
        message: "Creating the BGP peer".into(),
    })
    .await?;
    create(r, creds, &client_token).await
}

/// True when the API refused a create in a way that proves no peer was made under its token:
/// its own validation of the parameters (the same parameters are replayed, so a create that
/// made a peer would have passed it). Throttling, quota, credentials, gateway and unknown
/// answers prove nothing: the same token may already hold a peer.
pub fn proves_nothing_made(class: ErrorClass) -> bool {
    class == ErrorClass::Terminal
}

/// Calls CreateBgpPeer with `token` and the recorded parameters; records the peer ID.
pub(super) async fn create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
) -> Result<(), Error> {
    let params = r.create_params();
    let req = CreateBgpPeerRequest {
        region_id: r.region().to_owned(),
        bgp_group_id: r.group().to_owned(),
        peer_ip_address: params.peer_ip_address.as_deref().map(str::to_owned),
        enable_bfd: Some(params.enable_bfd),
        bfd_multi_hop: params.bfd_multi_hop,
        ip_version: Some(r.ip_version().as_api_str().to_owned()),
        client_token: Some(token.to_owned()),
    };
    let in_flight = r.ctx.observer.creating(r.account(), r.region(), r.group());
    let result = r.ctx.vpc.create_bgp_peer(creds, &req).await;
    drop(in_flight);
    let resp = match result {
        Ok(resp) => resp,
        Err(source) => {
            if proves_nothing_made(source.class()) {
                // No peer carries this token, so no create is in flight any more (and
                // cleanup needs no replay).
                let status = &mut r.status;
                status.client_token = None;
                status.create_params = None;
                status.create_requested_at = None;
                if status.bgp_peer_id.is_none() {
                    status.account_id = None;
                }
            }
            return Err(Error::Cloud {
                action: "CreateBgpPeer",
                source,
            });
        }
    };
    let id = resp.bgp_peer_id;
    r.ctx.observer.note_created(&id, r.account(), r.region());
    info!(bgp_peer_id = %id, request_id = %resp.request_id, "created BGP peer");
    r.ctx.hooks.after_create()?;
    record_peer(r, &id, None);
    if let Err(e) = r
        .write_status(&Outcome::Progressing {
            reason: reasons::PENDING,
            message: format!("Created BGP peer {id}; waiting for it to become Available"),
        })
        .await
    {
        if e.is_object_gone() {
            // The object vanished while its create was in flight (deleted before its
            // finalizer held it): no object can ever claim this peer (its token is bound to
            // the UID), so it is deleted rather than leaked.
            delete_orphan(r, creds, &id).await;
        }
        return Err(e);
    }
    r.event(
        EventType::Normal,
        events::CREATED,
        "Create",
        format!("Created BGP peer {id} (RequestId {})", resp.request_id),
    );
    Ok(())
}

/// Deletes a peer whose object is gone (best effort, retried by the client like any
/// mutating call; logged either way).
///
/// A peer this young is usually still `Pending` (the API refuses to delete it yet) or not
/// visible yet, so the deletion is retried in the background, every poll interval for up to
/// [`ORPHAN_PATIENCE`], until the API accepts it. (Not durable across a crash of the operator
/// during those minutes: a double fault.) The path exists because the kube-apiserver can
/// carry out a DELETE it decided before the finalizer was added (observed with v1.36: the
/// object vanishes with the finalizer on, after its token was recorded).
async fn delete_orphan(r: &Reconciler<'_>, creds: &Credentials, id: &str) {
    let req = DeleteBgpPeerRequest {
        region_id: r.region().to_owned(),
        bgp_peer_id: id.to_owned(),
        ..Default::default()
    };
    let (vpc, creds, id) = (r.ctx.vpc.clone(), creds.clone(), id.to_owned());
    let every = r
        .ctx
        .config
        .poll_interval
        .max(std::time::Duration::from_millis(200));
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + ORPHAN_PATIENCE;
        loop {
            match vpc.delete_bgp_peer(&creds, &req).await {
                Ok(_) => {
                    info!(bgp_peer_id = %id, "deleted the peer of an object deleted while its create was in flight");
                    return;
                }
                Err(e)
                    if tokio::time::Instant::now() < deadline
                        && !matches!(e.class(), ErrorClass::Terminal | ErrorClass::Credentials) =>
                {
                    debug!(bgp_peer_id = %id, code = e.code().unwrap_or("-"), "the peer of a vanished object cannot be deleted yet; retrying");
                    tokio::time::sleep(every).await;
                }
                Err(e) => {
                    warn!(bgp_peer_id = %id, code = e.code().unwrap_or("-"), "could not delete the peer of a vanished object: it is left in the cloud");
                    return;
                }
            }
        }
    });
}

/// How long the peer of an object that vanished during its create is retried for deletion.
pub const ORPHAN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// Records `id` as this object's peer (seen when `seen` gives its cloud view).
fn record_peer(r: &mut Reconciler<'_>, id: &str, seen: Option<&BgpPeerInfo>) {
    let stamp = r.stamp();
    let status = &mut r.status;
    status.bgp_peer_id = Some(id.to_owned());
    status.bgp_peer_id_recorded_at = Some(stamp);
    status.adopted = false;
    status.cloud = seen.map(Into::into);
}

/// Replays the recorded create. A refusal that leaves the outcome open (the token was used
/// with other parameters; during deletion also a quota, busy or missing-group answer, which
/// would otherwise hold the finalizer until the cloud changes) is settled by
/// [`verify_create`] instead.
pub(super) async fn replay(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
    deleting: bool,
) -> Result<Settled, Error> {
    match create(r, creds, token).await {
        Ok(()) => Ok(Settled::Recorded),
        Err(Error::Cloud { source, .. })
            if source.class() == ErrorClass::IdempotencyMismatch
                || (deleting
                    && matches!(
                        source.class(),
                        ErrorClass::Quota | ErrorClass::Busy | ErrorClass::DependencyMissing
                    )) =>
        {
            debug!(
                code = source.code().unwrap_or("-"),
                "replay refused; verifying instead"
            );
            // A token used with other parameters may have made a peer with another IP:
            // then every unclaimed peer of the group is a candidate.
            let by_ip = source.class() != ErrorClass::IdempotencyMismatch;
            verify(r, creds, token, by_ip).await
        }
        Err(e) => Err(e),
    }
}

/// True when the create in flight was first requested longer ago than the replay window
/// (time paused does not count; a status without the time, written by an older version, is
/// replayed as before).
pub(super) fn replay_expired(r: &Reconciler<'_>) -> bool {
    let Some(at) = &r.status.create_requested_at else {
        return false;
    };
    let age_ms = r.now.as_millisecond() - at.0.as_millisecond();
    r.status.bgp_peer_id.is_none()
        && u128::try_from(age_ms)
            .is_ok_and(|age| age > r.ctx.config.create_replay_window.as_millis())
}

/// What a person said about an unverified create, bound to its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateResult {
    /// The create made no peer.
    None,
    /// The create made this peer.
    Peer(String),
}

/// The `create-result` annotation's answer for `token` (`<token>=<peer ID>` or
/// `<token>=none`). An answer written for another token (an earlier create) is ignored.
pub fn create_result_for(
    annotations: &BTreeMap<String, String>,
    token: &str,
) -> Option<CreateResult> {
    let value = annotations.get(CREATE_RESULT_ANNOTATION)?;
    let (for_token, result) = value.trim().split_once('=')?;
    if for_token.trim() != token {
        return None;
    }
    match result.trim() {
        "none" => Some(CreateResult::None),
        id if !id.is_empty() => Some(CreateResult::Peer(id.to_owned())),
        _ => None,
    }
}

/// The peers an interrupted create may have made: those that no other object claims, with
/// the requested IP when `wanted_ip` is given.
pub fn candidates<'a>(
    listing: &'a [BgpPeerInfo],
    claimed: &HashSet<String>,
    wanted_ip: Option<&str>,
) -> Vec<&'a str> {
    listing
        .iter()
        .filter(|p| !claimed.contains(&p.bgp_peer_id))
        .filter(|p| {
            wanted_ip.is_none_or(|ip| same_ip(p.peer_ip_address.as_deref().unwrap_or_default(), ip))
        })
        .map(|p| p.bgp_peer_id.as_str())
        .collect()
}

/// Looks for the peer an old create may have made, without replaying it: in a consistent
/// listing of the group (no create of ours in the group during the walk), the peers with the
/// requested IP that no other object claims. None: nothing to record. Otherwise a person says
/// which one it made (or none) with the `create-result` annotation; until then the object is
/// Stalled.
pub(super) async fn verify_create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
) -> Result<Settled, Error> {
    verify(r, creds, token, true).await
}

async fn verify(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
    by_ip: bool,
) -> Result<Settled, Error> {
    let obj = r.obj;
    // A create younger than the visibility grace may not be listed yet.
    if let Some(at) = &r.status.create_requested_at {
        let age_ms = r.now.as_millisecond() - at.0.as_millisecond();
        if u128::try_from(age_ms)
            .is_ok_and(|age| age < r.ctx.config.timing.visibility_grace.as_millis())
        {
            return Ok(Settled::NotYet(format!(
                "the create with ClientToken {token} is younger than the visibility grace; verifying it later"
            )));
        }
    }
    let params = r.create_params();
    let group = r.group().to_owned();
    let listing = match r
        .ctx
        .observer
        .list_group_consistently(&r.ctx.vpc, creds, r.account(), r.region(), &group)
        .await
    {
        Ok(Some(peers)) => peers,
        Ok(None) => {
            return Ok(Settled::NotYet(
                "the group changed while it was being listed; listing it again".into(),
            ));
        }
        // The group is gone in the owning account (the account was checked first): it holds
        // no peer, so the create left nothing.
        Err(source) if source.class() == ErrorClass::DependencyMissing => Vec::new(),
        Err(source) => {
            return Err(Error::Cloud {
                action: "DescribeBgpPeers",
                source,
            });
        }
    };
    let claimed: HashSet<String> = r
        .ctx
        .other_objects(obj)
        .iter()
        .filter_map(|o| o.peer_id().map(str::to_owned))
        .collect();
    let wanted = params.peer_ip_address.as_deref().unwrap_or_default();
    let found = candidates(&listing, &claimed, by_ip.then_some(wanted));
    match create_result_for(obj.annotations(), token) {
        Some(CreateResult::None) => {
            forget_create_result(r).await;
            return Ok(Settled::NoPeer);
        }
        Some(CreateResult::Peer(id)) if found.contains(&id.as_str()) => {
            let seen = listing.iter().find(|p| p.bgp_peer_id == id);
            record_peer(r, &id, seen);
            r.write_status(&Outcome::Progressing {
                reason: reasons::CREATING,
                message: format!(
                    "Recorded BGP peer {id} as the result of the interrupted create (annotation {CREATE_RESULT_ANNOTATION})"
                ),
            })
            .await?;
            forget_create_result(r).await;
            r.event(
                EventType::Normal,
                events::CREATE_VERIFIED,
                "Create",
                format!(
                    "Recorded BGP peer {id} as the result of the create with ClientToken {token}"
                ),
            );
            return Ok(Settled::Recorded);
        }
        Some(CreateResult::Peer(id)) => {
            return Err(Error::CreateUnverified(format!(
                "annotation {CREATE_RESULT_ANNOTATION}={token}={id} does not name an unclaimed peer with peer IP {wanted:?} in group {group} (candidates: {})",
                list_or_none(&found)
            )));
        }
        None => {}
    }
    if found.is_empty() {
        return Ok(Settled::NoPeer);
    }
    let at = r
        .status
        .create_requested_at
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    Err(Error::CreateUnverified(format!(
        "the create with ClientToken {token} requested at {at} was never recorded and cannot be replayed safely (its token may be forgotten, or was used with other parameters), so replaying it could make a second peer. Unclaimed peers with peer IP {wanted:?} in group {group}: {}. Annotate this object with {CREATE_RESULT_ANNOTATION}={token}=<peer ID> to take the one it made, or {CREATE_RESULT_ANNOTATION}={token}=none if it made none of them",
        list_or_none(&found)
    )))
}

/// Removes the used `create-result` annotation (best effort: an answer for another token is
/// ignored anyway).
async fn forget_create_result(r: &Reconciler<'_>) {
    let patch = serde_json::json!({"metadata": {"annotations": {CREATE_RESULT_ANNOTATION: null}}});
    if let Err(e) = r
        .api
        .patch(
            &r.obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        debug!(error = %e, "could not remove the create-result annotation");
    }
}

fn list_or_none(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, ip: &str) -> BgpPeerInfo {
        BgpPeerInfo {
            bgp_peer_id: id.into(),
            peer_ip_address: Some(ip.into()),
            ..Default::default()
        }
    }

    #[test]
    fn candidates_are_unclaimed_peers_with_the_requested_ip() {
        let listing = [
            peer("bgp-a", "10.0.0.2"),
            peer("bgp-b", "10.0.0.2"),
            peer("bgp-c", "10.0.0.3"),
            peer("bgp-d", "2408:4000:0::2"),
        ];
        let claimed: HashSet<String> = ["bgp-b".to_owned()].into();
        assert_eq!(
            candidates(&listing, &claimed, Some("10.0.0.2")),
            vec!["bgp-a"]
        );
        assert_eq!(
            candidates(&listing, &claimed, Some("2408:4000::2")),
            vec!["bgp-d"],
            "IPv6 by value"
        );
        assert!(candidates(&listing, &claimed, Some("10.0.0.9")).is_empty());
        // A token used with other parameters: every unclaimed peer may be its result.
        assert_eq!(
            candidates(&listing, &claimed, None),
            vec!["bgp-a", "bgp-c", "bgp-d"]
        );
    }

    #[test]
    fn the_create_result_annotation_only_answers_for_its_token() {
        let ann = |v: &str| BTreeMap::from([(CREATE_RESULT_ANNOTATION.to_owned(), v.to_owned())]);
        assert_eq!(
            create_result_for(&ann("abo-u-1=none"), "abo-u-1"),
            Some(CreateResult::None)
        );
        assert_eq!(
            create_result_for(&ann(" abo-u-1 = bgp-9 "), "abo-u-1"),
            Some(CreateResult::Peer("bgp-9".into()))
        );
        // A stale answer, written for an earlier create, never settles a new one.
        assert_eq!(create_result_for(&ann("abo-u=none"), "abo-u-1"), None);
        // The old unbound form is ignored.
        assert_eq!(create_result_for(&ann("none"), "abo-u-1"), None);
        assert_eq!(create_result_for(&ann("abo-u-1="), "abo-u-1"), None);
        assert_eq!(create_result_for(&BTreeMap::new(), "abo-u-1"), None);
    }

    #[test]
    fn only_parameter_validation_proves_no_peer_was_made() {
        assert!(proves_nothing_made(ErrorClass::Terminal));
        for class in [
            ErrorClass::Throttled,
            ErrorClass::Credentials,
            ErrorClass::Quota,
            ErrorClass::Busy,
            ErrorClass::DependencyMissing,
            ErrorClass::Transient,
            ErrorClass::Unknown,
            ErrorClass::IdempotencyMismatch,
        ] {
            assert!(!proves_nothing_made(class), "{class:?}");
        }
    }
}
