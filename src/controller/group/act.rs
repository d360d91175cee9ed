//! The BgpGroup's writes: the token-before-create protocol and its replay, adoption,
//! ModifyBgpGroupAttribute and DeleteBgpGroup.
//!
//! 1. [`start_create`] reads the key (a missing Secret stops here, before any token), then
//!    records the ClientToken, the parameters (never the key), the time, the account and the
//!    placement (region, VBR, IP version) in status **before** CreateBgpGroup is called.
//! 2. [`create`] calls it and records the group ID.
//! 3. After a crash or a lost status write, [`replay`] calls it again with the same token and
//!    parameters (the key read again): the API answers the group it already made.
//! 4. Only the API's own parameter validation (class Terminal) proves no group was made and
//!    clears the token; anything else keeps it for the next replay.

use kube::ResourceExt;
use tracing::{debug, info};

use crate::api::conditions::{events, reasons};
use crate::api::group::GroupCreateParams;
use crate::cloud::{
    AuthKey, CreateBgpGroupRequest, Credentials, DeleteBgpGroupRequest, ErrorClass,
    ModifyBgpGroupAttributeRequest,
};
use crate::controller::error::{Error, Step, delete_found_nothing};
use crate::controller::status::Outcome;
use crate::ops::events::EventType;

use super::authkey::read_auth_key;
use super::observe::Observed;
use super::plan::{Field, describe_diff, diff};
use super::{Cloud, Reconciler, cloud_view};

/// The key `spec.authKeySecretRef` names, if the spec names one.
async fn spec_key(r: &Reconciler<'_>) -> Result<Option<AuthKey>, Error> {
    match &r.obj.spec.auth_key_secret_ref {
        Some(reference) => {
            let ns = r.obj.namespace().unwrap_or_default();
            read_auth_key(r.ctx, &ns, reference).await.map(Some)
        }
        None => Ok(None),
    }
}

/// Whether the object as stored now is the copy this reconcile works from. The controller's
/// cache can lag behind our own last status write (the one that recorded the group's ID): a
/// create or replay from such a copy would call CreateBgpGroup again (the token makes it the
/// same group, but it is a call nobody needs), so both look at the stored object first.
async fn copy_is_current(r: &Reconciler<'_>) -> Result<bool, Error> {
    let stored = r
        .api
        .get(&r.obj.name_any())
        .await
        .map_err(Error::kube(Step::WriteObject))?;
    let current = stored.metadata.resource_version == r.obj.metadata.resource_version;
    if !current {
        debug!("the cached copy is older than the stored object; looking again");
    }
    Ok(current)
}

/// Records the token and everything the create depends on, then creates.
pub(super) async fn start_create(
    r: &mut Reconciler<'_>,
    cloud: &Cloud,
    client_token: String,
    incarnation: u32,
) -> Result<(), Error> {
    if !copy_is_current(r).await? {
        return Ok(());
    }
    let key = spec_key(r).await?;
    let spec = &r.obj.spec;
    let stamp = r.stamp();
    let status = &mut r.status;
    status.bgp_group_id = None;
    status.bgp_group_id_recorded_at = None;
    status.cloud = None;
    status.delete_requested_at = None;
    status.waiting_since = None;
    status.adopted = false;
    status.client_token = Some(client_token.clone());
    status.create_params = Some(GroupCreateParams::from_spec(spec));
    status.create_requested_at = Some(stamp);
    status.incarnation = incarnation;
    status.account_id = Some(cloud.account.clone());
    status.region_id = Some(spec.region_id.clone());
    status.router_id = Some(spec.router_id.clone());
    status.ip_version = Some(spec.ip_version);
    r.write_status(&Outcome::Progressing {
        reason: reasons::CREATING,
        message: "Creating the BGP group".into(),
    })
    .await?;
    create(r, &cloud.creds, &client_token, key).await
}

/// A replay of the create recorded with `client_token`: the same parameters, the key read
/// from the Secret again.
pub(super) async fn replay(
    r: &mut Reconciler<'_>,
    cloud: &Cloud,
    client_token: &str,
) -> Result<(), Error> {
    if !copy_is_current(r).await? {
        return Ok(());
    }
    let sent_key = r
        .status
        .create_params
        .as_ref()
        .is_some_and(|p| p.auth_key_sent);
    let key = if sent_key { spec_key(r).await? } else { None };
    if sent_key && key.is_none() {
        return Err(Error::InvalidSpec(format!(
            "the interrupted create with ClientToken {client_token} sent an auth key, but spec.authKeySecretRef is gone, so it cannot be replayed with the same parameters; restore spec.authKeySecretRef"
        )));
    }
    create(r, &cloud.creds, client_token, key).await
}

/// Calls CreateBgpGroup with `token` and the recorded parameters; records the group ID.
async fn create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
    key: Option<AuthKey>,
) -> Result<(), Error> {
    let params = r
        .status
        .create_params
        .clone()
        .unwrap_or_else(|| GroupCreateParams::from_spec(&r.obj.spec));
    let asn = |v: i64, what: &str| {
        u32::try_from(v).map_err(|_| Error::InvalidSpec(format!("{what} {v} is out of range")))
    };
    let req = CreateBgpGroupRequest {
        region_id: r.region().to_owned(),
        router_id: r
            .status
            .router_id
            .clone()
            .unwrap_or_else(|| r.obj.spec.router_id.clone()),
        peer_asn: asn(params.peer_asn, "peerAsn")?,
        local_asn: params.local_asn.map(|v| asn(v, "localAsn")).transpose()?,
        auth_key: key,
        is_fake_asn: Some(params.is_fake_asn),
        ip_version: Some(
            r.status
                .ip_version
                .unwrap_or(r.obj.spec.ip_version)
                .as_api_str()
                .to_owned(),
        ),
        route_quota: params.route_quota.and_then(|v| u32::try_from(v).ok()),
        name: params.name.clone(),
        description: params.description.clone(),
        client_token: Some(token.to_owned()),
    };
    let resp = match r.ctx.vpc.create_bgp_group(creds, &req).await {
        Ok(resp) => resp,
        Err(source) => {
            if source.class() == ErrorClass::Terminal {
                // The API's own validation refused the parameters: no group carries the
                // token, so no create is in flight any more.
                let status = &mut r.status;
                status.client_token = None;
                status.create_params = None;
                status.create_requested_at = None;
                status.account_id = None;
            }
            return Err(Error::Cloud {
                action: "CreateBgpGroup",
                source,
            });
        }
    };
    let id = resp.bgp_group_id;
    info!(bgp_group_id = %id, request_id = %resp.request_id, "created BGP group");
    r.ctx.hooks.after_create()?;
    record_group(r, &id);
    r.write_status(&Outcome::Progressing {
        reason: reasons::PENDING,
        message: format!("Created BGP group {id}; waiting for it to become Available"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::CREATED,
        "Create",
        format!(
            "Created BGP group {id} on VBR {} (RequestId {})",
            r.obj.spec.router_id, resp.request_id
        ),
    );
    Ok(())
}

/// Records `id` as the object's group (not seen yet: its absence is "not visible yet" for
/// the visibility grace period).
fn record_group(r: &mut Reconciler<'_>, id: &str) {
    let stamp = r.stamp();
    let status = &mut r.status;
    status.bgp_group_id = Some(id.to_owned());
    status.bgp_group_id_recorded_at = Some(stamp);
    status.cloud = None;
}

/// A person named the group an old create made (`vpc.alicloud.dev/create-result`).
pub(super) async fn record_create_result(r: &mut Reconciler<'_>, id: &str) -> Result<(), Error> {
    record_group(r, id);
    r.write_status(&Outcome::Progressing {
        reason: reasons::PENDING,
        message: format!("Recorded BGP group {id} as the result of the interrupted create"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::CREATE_VERIFIED,
        "VerifyCreate",
        format!(
            "Recorded BGP group {id} as the result of the interrupted create ({})",
            crate::api::CREATE_RESULT_ANNOTATION
        ),
    );
    Ok(())
}

/// Takes over `spec.adoptBgpGroupId`.
pub(super) async fn adopt(
    r: &mut Reconciler<'_>,
    cloud: &Cloud,
    id: &str,
    info: Option<&crate::cloud::BgpGroupInfo>,
) -> Result<(), Error> {
    let stamp = r.stamp();
    let spec = &r.obj.spec;
    let status = &mut r.status;
    status.bgp_group_id = Some(id.to_owned());
    status.bgp_group_id_recorded_at = Some(stamp);
    status.adopted = true;
    status.client_token = None;
    status.create_params = None;
    status.create_requested_at = None;
    status.account_id = Some(cloud.account.clone());
    status.region_id = Some(spec.region_id.clone());
    status.router_id = Some(spec.router_id.clone());
    status.ip_version = Some(spec.ip_version);
    status.cloud = info.map(cloud_view);
    r.write_status(&Outcome::Progressing {
        reason: reasons::CREATING,
        message: format!("Adopted existing BGP group {id}"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::ADOPTED,
        "Adopt",
        format!("Adopted existing BGP group {id} (spec.adoptBgpGroupId)"),
    );
    Ok(())
}

/// ModifyBgpGroupAttribute with the differing `fields` (IsFakeAsn always stated: the API's
/// default for an absent one is false). The key goes only when it differs.
pub(super) async fn modify(
    r: &mut Reconciler<'_>,
    cloud: &Cloud,
    observed: &Observed,
    fields: &[Field],
) -> Result<(), Error> {
    let spec = &r.obj.spec;
    let id = r.status.bgp_group_id.clone().unwrap_or_default();
    let has = |f: Field| fields.contains(&f);
    let asn = |v: i64| u32::try_from(v).ok();
    let key_change = has(Field::AuthKey);
    let req = ModifyBgpGroupAttributeRequest {
        region_id: r.region().to_owned(),
        bgp_group_id: id.clone(),
        peer_asn: has(Field::PeerAsn).then(|| asn(spec.peer_asn)).flatten(),
        local_asn: has(Field::LocalAsn)
            .then(|| {
                asn(spec
                    .local_asn
                    .unwrap_or(crate::api::group::DEFAULT_LOCAL_ASN))
            })
            .flatten(),
        is_fake_asn: spec.is_fake_asn,
        auth_key: if key_change {
            observed.desired_key.clone()
        } else {
            None
        },
        clear_auth_key: key_change && observed.desired_key.is_none(),
        route_quota: has(Field::RouteQuota)
            .then(|| spec.route_quota.and_then(|v| u32::try_from(v).ok()))
            .flatten(),
        name: has(Field::Name).then(|| spec.name.clone()).flatten(),
        description: has(Field::Description)
            .then(|| spec.description.clone())
            .flatten(),
        client_token: None,
    };
    let described = match &observed.observation {
        super::plan::GroupObservation::Found(g) => describe_diff(spec, g, &diff(spec, g)),
        _ => fields.iter().map(|f| f.as_str().to_owned()).collect(),
    };
    let resp = r
        .ctx
        .vpc
        .modify_bgp_group_attribute(&cloud.creds, &req)
        .await
        .map_err(Error::cloud("ModifyBgpGroupAttribute"))?;
    let names = fields
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    r.write_status(&Outcome::Progressing {
        reason: reasons::MODIFYING,
        message: format!("Updating {names}"),
    })
    .await?;
    r.event(
        EventType::Normal,
        events::UPDATED,
        "Modify",
        format!(
            "Updated BGP group {id} ({}) (RequestId {})",
            described.join("; "),
            resp.0
        ),
    );
    Ok(())
}

/// DeleteBgpGroup. An answer that the group is not there counts as accepted; its absence is
/// then confirmed by a read.
pub(super) async fn delete(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    id: &str,
) -> Result<kube::runtime::controller::Action, Error> {
    let req = DeleteBgpGroupRequest {
        region_id: r.region().to_owned(),
        bgp_group_id: id.to_owned(),
        client_token: None,
    };
    let note = match r.ctx.vpc.delete_bgp_group(creds, &req).await {
        Ok(resp) => format!("Deleting BGP group {id} (RequestId {})", resp.0),
        Err(source) if delete_found_nothing(&source) => format!(
            "DeleteBgpGroup found no group {id} ({}); confirming that it is gone",
            source.code().unwrap_or("-")
        ),
        Err(source) => {
            return Err(Error::Cloud {
                action: "DeleteBgpGroup",
                source,
            });
        }
    };
    r.status.delete_requested_at = Some(r.stamp());
    r.event(EventType::Normal, events::DELETING, "Delete", note);
    r.write_status(&Outcome::Progressing {
        reason: reasons::DELETING,
        message: format!("Deleting BGP group {id}"),
    })
    .await?;
    Err(Error::CleanupPending(format!(
        "waiting for BGP group {id} to be deleted"
    )))
}
