//! Observing a BgpGroup's cloud side: the group by ID (in the owning account), the key
//! comparison, and, before a deletion, the peers the cloud still lists in the group.
//!
//! Group reads are by ID: a cluster has few groups, and each changes rarely (the peers'
//! coalesced listings in [`super::super::observe`] are not needed here).

use kube::ResourceExt;

use crate::api::group::DEFAULT_LOCAL_ASN;
use crate::cloud::{AuthKey, BgpGroupInfo, Credentials, DescribeBgpPeersRequest, PeerStatus};
use crate::controller::error::Error;

use super::Reconciler;
use super::authkey::{in_sync, read_auth_key};
use super::plan::{GroupObservation, ObservedGroup};

/// What an observation found.
pub(crate) struct Observed {
    /// The plan's view.
    pub(crate) observation: GroupObservation,
    /// The cloud's answer, when the group exists.
    pub(crate) info: Option<BgpGroupInfo>,
    /// The key `spec.authKeySecretRef` names, when it was read (to send it if it differs).
    pub(crate) desired_key: Option<AuthKey>,
}

/// Looks the group up by its recorded ID (or the one to adopt). While the object lives and
/// the group is Available, the Secret's key is read and compared with the cloud's; before a
/// deletion, the cloud's peers of the group are listed.
pub(crate) async fn observe(
    r: &Reconciler<'_>,
    creds: &Credentials,
    for_deletion: bool,
) -> Result<Observed, Error> {
    let id = match (&r.status.bgp_group_id, &r.status.client_token) {
        (Some(id), _) => Some(id.clone()),
        // An unrecorded create is settled by its replay, not by a look-up.
        (None, Some(_)) => None,
        (None, None) if !for_deletion => r.obj.spec.adopt_bgp_group_id.clone(),
        (None, None) => None,
    };
    let Some(id) = id else {
        return Ok(Observed {
            observation: GroupObservation::NotLookedUp,
            info: None,
            desired_key: None,
        });
    };
    let info = r
        .ctx
        .vpc
        .describe_bgp_group(creds, r.region(), &id)
        .await
        .map_err(Error::cloud("DescribeBgpGroups"))?;
    let Some(info) = info else {
        return Ok(Observed {
            observation: GroupObservation::NotFound,
            info: None,
            desired_key: None,
        });
    };
    let mut observed = observed_group(&info);
    let status = PeerStatus::parse(&info.status);
    let mut desired_key = None;
    if !for_deletion && status == PeerStatus::Available {
        if let Some(reference) = &r.obj.spec.auth_key_secret_ref {
            let ns = r.obj.namespace().unwrap_or_default();
            desired_key = Some(read_auth_key(r.ctx, &ns, reference).await?);
        }
        observed.auth_key_in_sync = Some(in_sync(desired_key.as_ref(), info.auth_key.as_ref()));
    }
    if for_deletion && status == PeerStatus::Available {
        let peers = r
            .ctx
            .vpc
            .describe_all_bgp_peers(
                creds,
                &DescribeBgpPeersRequest {
                    region_id: r.region().to_owned(),
                    bgp_group_id: Some(id.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(Error::cloud("DescribeBgpPeers"))?;
        observed.peers = Some(
            peers
                .into_iter()
                .filter(|p| p.bgp_group_id == id)
                .map(|p| p.bgp_peer_id)
                .collect(),
        );
    }
    Ok(Observed {
        observation: GroupObservation::Found(Box::new(observed)),
        info: Some(info),
        desired_key,
    })
}

/// The plan's view of a group (the key comparison is added by [`observe`]).
fn observed_group(info: &BgpGroupInfo) -> ObservedGroup {
    ObservedGroup {
        id: info.bgp_group_id.clone(),
        status: PeerStatus::parse(&info.status),
        region_id: Some(info.region_id.clone()).filter(|s| !s.is_empty()),
        router_id: Some(info.router_id.clone()).filter(|s| !s.is_empty()),
        ip_version: info.ip_version.clone(),
        peer_asn: info.peer_asn.and_then(|v| i64::try_from(v).ok()),
        // An answer without LocalAsn means the default.
        local_asn: info
            .local_asn
            .and_then(|v| i64::try_from(v).ok())
            .or(Some(DEFAULT_LOCAL_ASN)),
        is_fake_asn: info.is_fake,
        route_limit: info
            .route_limit
            .as_deref()
            .and_then(|v| v.trim().parse().ok()),
        name: info.name.clone(),
        description: info.description.clone(),
        auth_key_in_sync: None,
        peers: None,
    }
}
