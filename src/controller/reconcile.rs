//! One reconcile: observe → plan → act → status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::conditions::reasons;
use crate::api::{
    BgpPeer, BgpPeerStatus, CREATE_RESULT_ANNOTATION, CloudPeerView, CreateParams, FINALIZER,
    PAUSED_ANNOTATION, RESYNC_ANNOTATION, secret_keys,
};
use crate::cloud::{
    BgpPeerInfo, CreateBgpPeerRequest, Credentials, DeleteBgpPeerRequest, DescribeBgpPeersRequest,
    ErrorClass, ModifyBgpPeerAttributeRequest,
};
use crate::ops::events::EventType;

use super::context::Context;
use super::error::Error;
use super::finalizer::{self, Event as FinalizerEvent};
use super::observe::{Lookup, Read};
use super::plan::{Observation, ObservedPeer, PeerDiff, Plan, PlanInput, plan};
use super::status::{Outcome, with_outcome};

/// Entry point given to the kube-runtime Controller. One span per reconcile carries the
/// object and its cloud peer ID, so every log line (cloud request IDs on errors included) can
/// be traced to its object.
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        bgp_peer_id = obj.status.as_ref().and_then(|s| s.bgp_peer_id.as_deref()).unwrap_or(""),
        generation = obj.metadata.generation.unwrap_or_default(),
    )
)]
pub async fn reconcile(obj: Arc<BgpPeer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<BgpPeer> = Api::namespaced(ctx.kube.clone(), &ns);
    let key = object_key(&obj);
    let started = std::time::Instant::now();
    let result = finalizer::finalizer(&api, FINALIZER, obj.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(&api, &obj, &ctx).await,
            FinalizerEvent::Cleanup(obj) => cleanup(&api, &obj, &ctx).await,
        }
    })
    .await;
    let result = match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e)) => {
            Err(Error::Kube(e))
        }
        // The object changed since it was read (a write this reconcile did not see): look
        // again soon, with the object as it is now.
        Err(finalizer::Error::Stale(e)) => {
            info!(error = %e, "object changed since it was read; looking again");
            Ok(Action::requeue(finalizer::STALE_REQUEUE))
        }
        Err(e @ finalizer::Error::UnnamedObject) => Err(Error::InvalidSpec(e.to_string())),
    };
    match &result {
        Ok(_) => {
            ctx.record_success(&key);
            ctx.metrics.reconciled(None, started.elapsed());
        }
        // Waiting in cleanup is progress, not a failure.
        Err(Error::Waiting(_)) => ctx.metrics.reconciled(None, started.elapsed()),
        Err(e) => ctx
            .metrics
            .reconciled(Some(e.class().as_str()), started.elapsed()),
    }
    result
}

/// Requeue policy for errors: per object, by class, exponential with jitter; reset on success.
pub fn error_policy(obj: Arc<BgpPeer>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(&obj);
    if let Error::Waiting(_) = err {
        // Not a failure: cleanup waits for the cloud.
        return Action::requeue(next_tick(ctx.config.poll_interval));
    }
    if let Error::CreateUnverified(_) = err {
        // Stalled, but the stray peers may be deleted in the console meanwhile: look again.
        return Action::requeue(CREATE_UNVERIFIED_RECHECK);
    }
    let class = err.class();
    match ctx.record_failure(&key, class) {
        Some(delay) => {
            debug!(object = %key, class = class.as_str(), ?delay, "requeue after error");
            Action::requeue(delay)
        }
        None => Action::await_change(),
    }
}

/// How often a `CreateUnverified` object looks again (a person may have removed the stray
/// peers in the console meanwhile).
const CREATE_UNVERIFIED_RECHECK: Duration = Duration::from_secs(600);

fn object_key(obj: &BgpPeer) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn is_paused(obj: &BgpPeer) -> bool {
    obj.annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The resync period of one object: the annotation if valid, else the operator's.
fn resync_period(obj: &BgpPeer, ctx: &Context) -> Duration {
    obj.annotations()
        .get(RESYNC_ANNOTATION)
        .and_then(|v| parse_duration(v))
        .filter(|d| *d >= Duration::from_secs(10))
        .unwrap_or(ctx.config.resync_period)
}

/// Parses `90s`, `5m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

struct Reconciler<'a> {
    api: &'a Api<BgpPeer>,
    obj: &'a BgpPeer,
    ctx: &'a Context,
    /// The status as stored in the apiserver (what a write is compared against).
    stored: Option<BgpPeerStatus>,
    /// The status being built.
    status: BgpPeerStatus,
}

impl<'a> Reconciler<'a> {
    fn new(api: &'a Api<BgpPeer>, obj: &'a BgpPeer, ctx: &'a Context) -> Self {
        Reconciler {
            api,
            obj,
            ctx,
            stored: obj.status.clone(),
            status: obj.status.clone().unwrap_or_default(),
        }
    }

    /// The parameters of the create in flight: as recorded with its token, or from the spec.
    fn create_params(&self) -> CreateParams {
        self.status
            .create_params
            .clone()
            .unwrap_or_else(|| CreateParams::from_spec(&self.obj.spec))
    }

    fn spec_region(&self) -> &str {
        &self.obj.spec.region_id
    }

    /// Writes the status with the conditions of `outcome`, unless nothing changed.
    async fn write_status(&mut self, outcome: &Outcome) -> Result<(), Error> {
        // The apiserver keeps whole seconds; so do we, so that a re-read compares equal.
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .map_err(|e| Error::InvalidSpec(format!("clock: {e}")))?;
        let now = Time(now);
        let (status, changed) = with_outcome(
            self.status.clone(),
            self.stored.as_ref(),
            outcome,
            self.obj.metadata.generation,
            &now,
        );
        self.status = status;
        if !changed {
            return Ok(());
        }
        self.patch_status().await
    }

    /// Server-side apply of the whole status; retried on transient failures because a lost
    /// write of a freshly created peer ID must not be ignored.
    async fn patch_status(&mut self) -> Result<(), Error> {
        let body = serde_json::json!({
            "apiVersion": "vpc.alicloud.dev/v1alpha1",
            "kind": "BgpPeer",
            "status": self.status,
        });
        let params = PatchParams::apply(&self.ctx.config.field_manager).force();
        let name = self.obj.name_any();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .api
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await
            {
                Ok(written) => {
                    // A finalizer removal later in this reconcile is conditional on this
                    // version of the object.
                    finalizer::saw(&written);
                    // Later writes in this reconcile compare against what is stored now.
                    self.stored = Some(self.status.clone());
                    return Ok(());
                }
                Err(e) if attempt < 4 && !is_permanent(&e) => {
                    warn!(error = %e, attempt, "status write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }

    fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let recorder = self.ctx.recorder.clone();
        let reference = self.obj.object_ref(&());
        let (reason, action) = (reason.to_owned(), action.to_owned());
        // Events are best effort: a cluster that refuses them must not block reconciles.
        tokio::spawn(async move {
            if let Err(e) = recorder
                .publish(&reference, type_, &reason, &action, &note)
                .await
            {
                debug!(error = %e, "event not published");
            }
        });
    }
}

fn is_permanent(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_forbidden() || s.is_invalid() || s.is_not_found())
}

async fn credentials(obj: &BgpPeer, ctx: &Context) -> Result<Credentials, Error> {
    let Some(secret_ref) = &obj.spec.credentials_secret_ref else {
        return ctx
            .credentials
            .credentials()
            .await
            .map_err(|e| Error::Credentials(format!("operator-wide credentials: {e}")));
    };
    let ns = obj.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &ns);
    let secret = secrets.get_opt(&secret_ref.name).await.map_err(|e| {
        if matches!(&e, kube::Error::Api(s) if s.is_forbidden()) {
            Error::Credentials(format!(
                "the operator may not read Secret {ns}/{}: {e}",
                secret_ref.name
            ))
        } else {
            Error::Kube(e)
        }
    })?;
    let Some(secret) = secret else {
        return Err(Error::Credentials(format!(
            "Secret {ns}/{} (spec.credentialsSecretRef) not found",
            secret_ref.name
        )));
    };
    let data = secret.data.unwrap_or_default();
    let get = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing = |key: &str| {
        Error::Credentials(format!(
            "Secret {ns}/{} has no non-empty key {key:?}",
            secret_ref.name
        ))
    };
    let id = get(secret_keys::ACCESS_KEY_ID).ok_or_else(|| missing(secret_keys::ACCESS_KEY_ID))?;
    let secret_value = get(secret_keys::ACCESS_KEY_SECRET)
        .ok_or_else(|| missing(secret_keys::ACCESS_KEY_SECRET))?;
    Ok(Credentials::new(
        id,
        secret_value,
        get(secret_keys::SECURITY_TOKEN),
    ))
}

fn observed_peer(p: &BgpPeerInfo) -> ObservedPeer {
    ObservedPeer {
        id: p.bgp_peer_id.clone(),
        bgp_group_id: p.bgp_group_id.clone(),
        status: p.status.clone(),
        peer_ip_address: p.peer_ip_address.clone(),
        ip_version: p.ip_version.clone(),
        enable_bfd: p.enable_bfd,
        bfd_multi_hop: p.bfd_multi_hop,
    }
}

fn cloud_view(p: &BgpPeerInfo) -> CloudPeerView {
    let non_empty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    CloudPeerView {
        status: Some(p.status.clone()).filter(|s| !s.is_empty()),
        bgp_status: non_empty(&p.bgp_status),
        local_asn: p.local_asn.map(|n| n.to_string()),
        peer_asn: p.peer_asn.map(|n| n.to_string()),
        router_id: Some(p.router_id.clone()).filter(|v| !v.is_empty()),
        peer_ip_address: non_empty(&p.peer_ip_address),
        ip_version: non_empty(&p.ip_version),
        enable_bfd: p.enable_bfd,
        bfd_multi_hop: p.bfd_multi_hop,
        advertised_route_count: p.advertised_route_count,
        received_route_count: p.received_route_count,
    }
}

/// Observes the cloud for this object: through the shared observer, which serves a settled
/// object from a group listing up to a resync period old and anything in motion from a
/// listing at most a poll interval old (and fetched after our last change to it), or by ID
/// when that is cheaper.
async fn observe(
    r: &Reconciler<'_>,
    creds: &Credentials,
    for_deletion: bool,
) -> Result<(Observation, Option<BgpPeerInfo>), Error> {
    let id = r
        .status
        .bgp_peer_id
        .clone()
        .or_else(|| r.obj.spec.adopt_bgp_peer_id.clone());
    let Some(id) = id else {
        return Ok((Observation::NotLookedUp, None));
    };
    let settled = !for_deletion
        && r.status.bgp_peer_id.is_some()
        && r.status.observed_generation == r.obj.metadata.generation
        && super::status::ready_condition(&r.status).is_some_and(|c| c.status == "True");
    let poll = r.ctx.config.poll_interval;
    let lookup = if r.status.bgp_peer_id.is_none() {
        // Adoption: the peer may be in another group; ask by ID.
        r.ctx
            .observer
            .lookup_by_id(&r.ctx.vpc, creds, r.spec_region(), &id)
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
        let read = Read {
            region: r.spec_region(),
            group: &r.obj.spec.bgp_group_id,
            id: &id,
            max_age,
            demand_window,
            newer_than_last: !settled,
            waiter: Some(&waiter),
        };
        r.ctx.observer.lookup(&r.ctx.vpc, creds, read).await
    };
    match lookup {
        Ok(Lookup::Found(p)) => Ok((Observation::Found(observed_peer(&p)), Some(*p))),
        Ok(Lookup::Missing) => Ok((Observation::NotFound, None)),
        // Nothing changes until the cloud has been looked at: no status write, and the
        // object is woken when the listing it waits for lands (or at the next poll tick).
        Ok(Lookup::Later) => Err(Error::Waiting(format!(
            "waiting for a listing of BGP group {}",
            r.obj.spec.bgp_group_id
        ))),
        // During deletion, a region or group that no longer exists holds no peer: gone.
        Err(source) if for_deletion && source.class() == ErrorClass::DependencyMissing => {
            Ok((Observation::NotFound, None))
        }
        Err(source) => Err(Error::Cloud {
            action: "DescribeBgpPeers",
            source,
        }),
    }
}

async fn apply(api: &Api<BgpPeer>, obj: &BgpPeer, ctx: &Context) -> Result<Action, Error> {
    let mut r = Reconciler::new(api, obj, ctx);
    match apply_inner(&mut r).await {
        Ok(action) => Ok(action),
        Err(err) => {
            report_error(&mut r, &err).await;
            Err(err)
        }
    }
}

/// Writes the error into the conditions and publishes a Warning event (best effort: the
/// error itself is what the controller acts on).
async fn report_error(r: &mut Reconciler<'_>, err: &Error) {
    if let Error::Waiting(_) = err {
        return;
    }
    let message = err.user_message();
    let outcome = if err.is_stalled() {
        Outcome::Stalled {
            reason: err.reason(),
            message: message.clone(),
        }
    } else {
        Outcome::Progressing {
            reason: err.reason(),
            message: message.clone(),
        }
    };
    if let Error::Cloud { source, .. } = err
        && source.class() == ErrorClass::Throttled
        && let Some(creds_id) = r.ctx.last_access_key(r.obj)
    {
        r.ctx.vpc.slow_down(&creds_id, r.spec_region());
    }
    if let Error::Cloud { action, source } = err {
        warn!(
            action,
            code = source.code().unwrap_or("-"),
            request_id = source.request_id().unwrap_or("-"),
            class = source.class().as_str(),
            "cloud call failed"
        );
    }
    r.event(
        EventType::Warning,
        err.class().as_str(),
        "Reconcile",
        message,
    );
    if let Err(e) = r.write_status(&outcome).await {
        warn!(error = %e, "could not record the error in status");
    }
}

async fn apply_inner(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let obj = r.obj;
    if is_paused(obj) {
        r.write_status(&Outcome::Paused).await?;
        return Ok(Action::await_change());
    }
    let creds = credentials(obj, r.ctx).await?;
    r.ctx.remember_access_key(obj, creds.access_key_id());
    let (observation, info) = observe(r, &creds, false).await?;
    if let Some(info) = &info
        && r.status.bgp_peer_id.is_some()
    {
        r.status.cloud = Some(cloud_view(info));
    }
    let uid = obj.uid().unwrap_or_default();
    let step = plan(&PlanInput {
        uid: &uid,
        spec: &obj.spec,
        status: &r.status,
        observed: &observation,
        deleting: false,
        paused: false,
        replay_expired: replay_expired(r),
    });
    debug!(?step, "plan");
    let poll = r.ctx.config.poll_interval;
    match step {
        Plan::Create {
            client_token,
            incarnation,
            recreate,
        } => {
            if recreate {
                r.event(
                    EventType::Warning,
                    "PeerVanished",
                    "Recreate",
                    format!(
                        "BGP peer {} no longer exists in the cloud (deleted outside Kubernetes); creating it again",
                        r.status.bgp_peer_id.clone().unwrap_or_default()
                    ),
                );
            }
            start_create(r, &creds, client_token, incarnation).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        Plan::ReplayCreate { client_token } => {
            create(r, &creds, &client_token).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        Plan::VerifyCreate { client_token } => {
            if verify_create(r, &creds, &client_token).await? == Verified::NoPeer {
                // Nothing in the cloud came from the old create: start afresh under a new
                // incarnation, so no forgotten-or-not token can be involved.
                let incarnation = r.status.incarnation.saturating_add(1);
                let uid = obj.uid().unwrap_or_default();
                let client_token = super::token::client_token_for(&uid, incarnation);
                start_create(r, &creds, client_token, incarnation).await?;
            }
            Ok(Action::requeue(next_tick(poll)))
        }
        Plan::Adopt { id } => {
            r.status.bgp_peer_id = Some(id.clone());
            r.status.adopted = true;
            r.status.client_token = None;
            r.status.create_params = None;
            if let Some(info) = &info {
                r.status.cloud = Some(cloud_view(info));
            }
            r.write_status(&Outcome::Progressing {
                reason: reasons::CREATING,
                message: format!("Adopted existing BGP peer {id}"),
            })
            .await?;
            r.event(
                EventType::Normal,
                "Adopted",
                "Adopt",
                format!("Adopted existing BGP peer {id} (spec.adoptBgpPeerId)"),
            );
            Ok(Action::requeue(Duration::from_millis(100)))
        }
        Plan::AdoptionImpossible { message } => Err(Error::Adoption(message)),
        Plan::Wait { cloud_status } => {
            let reason = match cloud_status.as_str() {
                "Pending" => reasons::PENDING,
                "Modifying" => reasons::MODIFYING,
                "Deleting" | "Deleted" => reasons::DELETING,
                _ => reasons::CREATING,
            };
            r.write_status(&Outcome::Progressing {
                reason,
                message: format!("Waiting: the cloud reports the peer as {cloud_status}"),
            })
            .await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        Plan::Modify(diff) => {
            modify(r, &creds, &diff).await?;
            Ok(Action::requeue(next_tick(poll)))
        }
        Plan::UpToDate => {
            r.write_status(&Outcome::Ready).await?;
            Ok(Action::requeue(jittered(resync_period(obj, r.ctx))))
        }
        // Deletion plans never come out of a non-deleting plan; treat defensively.
        Plan::Paused
        | Plan::Delete { .. }
        | Plan::WaitGone { .. }
        | Plan::ReleaseFinalizer { .. } => Ok(Action::requeue(next_tick(poll))),
    }
}

/// The wait until the next poll tick: wall-clock multiples of the poll interval, shared by
/// every object in motion, so that they look at the same moment and one fresh group listing
/// answers all of them (instead of listings taken moments apart, each too early for some).
/// At least a tenth of the interval, so a reconcile just before a tick waits for the next.
pub fn next_tick(poll: Duration) -> Duration {
    let period = poll.as_millis().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut wait = period - now % period;
    if wait < period / 10 {
        wait += period;
    }
    Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// Resync with ±10 % jitter so that peers created together do not resync together.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// Records the token, the parameters and the time BEFORE the call (after a crash the next
/// reconcile replays this exact create instead of making a second peer), then creates.
async fn start_create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    client_token: String,
    incarnation: u32,
) -> Result<(), Error> {
    r.status.bgp_peer_id = None;
    r.status.cloud = None;
    r.status.client_token = Some(client_token.clone());
    r.status.create_params = Some(CreateParams::from_spec(&r.obj.spec));
    r.status.create_requested_at = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    r.status.incarnation = incarnation;
    r.write_status(&Outcome::Progressing {
        reason: reasons::CREATING,
        message: "Creating the BGP peer".into(),
    })
    .await?;
    create(r, creds, &client_token).await
}

/// True when the create in flight was first requested longer ago than the replay window
/// (a status without the time, written by an older version, is replayed as before).
fn replay_expired(r: &Reconciler<'_>) -> bool {
    let Some(at) = &r.status.create_requested_at else {
        return false;
    };
    let age_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond() - at.0.as_millisecond();
    r.status.bgp_peer_id.is_none()
        && u128::try_from(age_ms)
            .is_ok_and(|age| age > r.ctx.config.create_replay_window.as_millis())
}

/// What [`verify_create`] concluded.
#[derive(Debug, PartialEq, Eq)]
enum Verified {
    /// The peer the create made is now recorded in status.
    Recorded,
    /// No peer that the create may have made exists.
    NoPeer,
}

/// Looks for the peer an old create may have made, without replaying it: in a consistent
/// listing of the group, the peers with the requested IP that no other object claims. None:
/// nothing to record. Otherwise a person says which one it made (or none) with the
/// `vpc.alicloud.dev/create-result` annotation; until then the object is Stalled.
async fn verify_create(
    r: &mut Reconciler<'_>,
    creds: &Credentials,
    token: &str,
) -> Result<Verified, Error> {
    let obj = r.obj;
    let params = r.create_params();
    let req = DescribeBgpPeersRequest {
        region_id: obj.spec.region_id.clone(),
        bgp_group_id: Some(obj.spec.bgp_group_id.clone()),
        ..Default::default()
    };
    let listing = r
        .ctx
        .vpc
        .list_bgp_peers(creds, &req)
        .await
        .map_err(Error::cloud("DescribeBgpPeers"))?;
    if !listing.consistent {
        return Err(Error::Waiting(
            "the group changed while it was being listed; listing it again".into(),
        ));
    }
    let claimed = r.ctx.peers_claimed_by_others(obj);
    let wanted = params.peer_ip_address.as_deref().unwrap_or_default();
    let candidates: Vec<&str> = listing
        .peers
        .iter()
        .filter(|p| !claimed.contains(&p.bgp_peer_id))
        .filter(|p| same_ip(p.peer_ip_address.as_deref().unwrap_or_default(), wanted))
        .map(|p| p.bgp_peer_id.as_str())
        .collect();
    let group = &obj.spec.bgp_group_id;
    match obj
        .annotations()
        .get(CREATE_RESULT_ANNOTATION)
        .map(String::as_str)
    {
        Some("none") => return Ok(Verified::NoPeer),
        Some(id) if candidates.contains(&id) => {
            r.status.bgp_peer_id = Some(id.to_owned());
            r.status.adopted = false;
            r.write_status(&Outcome::Progressing {
                reason: reasons::CREATING,
                message: format!(
                    "Recorded BGP peer {id} as the result of the interrupted create (annotation {CREATE_RESULT_ANNOTATION})"
                ),
            })
            .await?;
            r.event(
                EventType::Normal,
                "CreateVerified",
                "Create",
                format!(
                    "Recorded BGP peer {id} as the result of the create with ClientToken {token}"
                ),
            );
            return Ok(Verified::Recorded);
        }
        Some(id) => {
            return Err(Error::CreateUnverified(format!(
                "annotation {CREATE_RESULT_ANNOTATION}={id} does not name an unclaimed peer with peer IP {wanted:?} in group {group} (candidates: {})",
                list_or_none(&candidates)
            )));
        }
        None => {}
    }
    if candidates.is_empty() {
        return Ok(Verified::NoPeer);
    }
    let at = r
        .status
        .create_requested_at
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    Err(Error::CreateUnverified(format!(
        "the create with ClientToken {token} requested at {at} was never recorded, and is older than the replay window: the API may have forgotten the token, so replaying it could make a second peer. Unclaimed peers with peer IP {wanted:?} in group {group}: {}. Annotate this object with {CREATE_RESULT_ANNOTATION}=<peer ID> to take the one it made, or {CREATE_RESULT_ANNOTATION}=none if it made none of them",
        list_or_none(&candidates)
    )))
}

fn list_or_none(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

/// Same IP address (IPv6 compared by value), or both empty.
fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

async fn create(r: &mut Reconciler<'_>, creds: &Credentials, token: &str) -> Result<(), Error> {
    let obj = r.obj;
    let params = r.create_params();
    let req = CreateBgpPeerRequest {
        region_id: obj.spec.region_id.clone(),
        bgp_group_id: obj.spec.bgp_group_id.clone(),
        peer_ip_address: params.peer_ip_address.clone(),
        enable_bfd: Some(params.enable_bfd),
        bfd_multi_hop: params.bfd_multi_hop,
        ip_version: Some(obj.spec.ip_version.as_api_str().to_owned()),
        client_token: Some(token.to_owned()),
    };
    let in_flight = r
        .ctx
        .observer
        .creating(&obj.spec.region_id, &obj.spec.bgp_group_id);
    let result = r.ctx.vpc.create_bgp_peer(creds, &req).await;
    drop(in_flight);
    let resp = match result {
        Ok(resp) => resp,
        Err(source) => {
            if refused_before_creating(source.class()) {
                // The API refused this create outright: no peer carries this token, so no
                // create is in flight any more (and cleanup needs no replay).
                r.status.client_token = None;
                r.status.create_params = None;
                r.status.create_requested_at = None;
            }
            return Err(Error::Cloud {
                action: "CreateBgpPeer",
                source,
            });
        }
    };
    let id = resp.bgp_peer_id;
    r.ctx.observer.note_mutation(&id);
    info!(bgp_peer_id = %id, request_id = %resp.request_id, "created BGP peer");
    r.ctx.hooks.after_create(obj)?;
    r.status.bgp_peer_id = Some(id.clone());
    r.write_status(&Outcome::Progressing {
        reason: reasons::PENDING,
        message: format!("Created BGP peer {id}; waiting for it to become Available"),
    })
    .await?;
    r.event(
        EventType::Normal,
        "Created",
        "Create",
        format!("Created BGP peer {id} (RequestId {})", resp.request_id),
    );
    Ok(())
}

/// Error classes with which the API refuses a create without making anything: the request
/// never produced a peer. (Transient and unknown failures may have; an idempotency mismatch
/// means the token was used before.)
fn refused_before_creating(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Terminal
            | ErrorClass::DependencyMissing
            | ErrorClass::Quota
            | ErrorClass::Credentials
            | ErrorClass::Busy
            | ErrorClass::Throttled
    )
}

async fn modify(r: &mut Reconciler<'_>, creds: &Credentials, diff: &PeerDiff) -> Result<(), Error> {
    let obj = r.obj;
    let id = r.status.bgp_peer_id.clone().unwrap_or_default();
    let req = ModifyBgpPeerAttributeRequest {
        region_id: obj.spec.region_id.clone(),
        bgp_peer_id: id.clone(),
        peer_ip_address: diff.peer_ip_address.clone(),
        enable_bfd: diff.enable_bfd,
        bfd_multi_hop: diff.bfd_multi_hop,
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
        "Updated",
        "Modify",
        format!("Updated {fields} of BGP peer {id} (RequestId {})", resp.0),
    );
    Ok(())
}

async fn cleanup(api: &Api<BgpPeer>, obj: &BgpPeer, ctx: &Context) -> Result<Action, Error> {
    let mut r = Reconciler::new(api, obj, ctx);
    match cleanup_inner(&mut r).await {
        Ok(action) => Ok(action),
        Err(err) => {
            report_error(&mut r, &err).await;
            Err(err)
        }
    }
}

async fn cleanup_inner(r: &mut Reconciler<'_>) -> Result<Action, Error> {
    let obj = r.obj;
    let uid = obj.uid().unwrap_or_default();
    // Decide without the cloud first: Orphan, or nothing ever created, need no call (and no
    // credentials, so a deleted Secret or an invalid spec never wedges the finalizer).
    let offline = plan(&PlanInput {
        uid: &uid,
        spec: &obj.spec,
        status: &r.status,
        observed: &Observation::NotLookedUp,
        deleting: true,
        paused: false,
        replay_expired: replay_expired(r),
    });
    if let Plan::ReleaseFinalizer { orphaned } = offline {
        return release(r, orphaned);
    }
    if is_paused(obj) {
        r.write_status(&Outcome::Paused).await?;
        return Err(Error::Waiting(
            "deletion waits: the object is paused".to_owned(),
        ));
    }
    let creds = credentials(obj, r.ctx).await?;
    let (observation, info) = observe(r, &creds, true).await?;
    if let Some(info) = &info {
        r.status.cloud = Some(cloud_view(info));
    }
    let step = plan(&PlanInput {
        uid: &uid,
        spec: &obj.spec,
        status: &r.status,
        observed: &observation,
        deleting: true,
        paused: false,
        replay_expired: replay_expired(r),
    });
    debug!(?step, "cleanup plan");
    match step {
        Plan::ReleaseFinalizer { orphaned } => release(r, orphaned),
        Plan::ReplayCreate { client_token } => {
            create(r, &creds, &client_token).await?;
            Err(Error::Waiting(
                "learned the peer ID of an interrupted create; deleting it next".into(),
            ))
        }
        Plan::VerifyCreate { client_token } => match verify_create(r, &creds, &client_token).await?
        {
            // The old create made nothing that is still there: nothing to delete.
            Verified::NoPeer => release(r, false),
            Verified::Recorded => Err(Error::Waiting(
                "recorded the peer of an interrupted create; deleting it next".into(),
            )),
        },
        Plan::Delete { id } => {
            let req = DeleteBgpPeerRequest {
                region_id: obj.spec.region_id.clone(),
                bgp_peer_id: id.clone(),
                ..Default::default()
            };
            let resp = r
                .ctx
                .vpc
                .delete_bgp_peer(&creds, &req)
                .await
                .map_err(Error::cloud("DeleteBgpPeer"))?;
            r.ctx.observer.note_deleted(&id);
            r.event(
                EventType::Normal,
                "Deleting",
                "Delete",
                format!("Deleting BGP peer {id} (RequestId {})", resp.0),
            );
            r.write_status(&Outcome::Progressing {
                reason: reasons::DELETING,
                message: format!("Deleting BGP peer {id}"),
            })
            .await?;
            Err(Error::Waiting(format!(
                "waiting for BGP peer {id} to be deleted"
            )))
        }
        Plan::WaitGone { id } => {
            r.write_status(&Outcome::Progressing {
                reason: reasons::DELETING,
                message: format!("Waiting for BGP peer {id} to be deleted"),
            })
            .await?;
            Err(Error::Waiting(format!(
                "waiting for BGP peer {id} to be deleted"
            )))
        }
        Plan::Wait { cloud_status } => {
            r.write_status(&Outcome::Progressing {
                reason: reasons::DELETING,
                message: format!("Deletion waits: the cloud reports the peer as {cloud_status}"),
            })
            .await?;
            Err(Error::Waiting(format!("peer is {cloud_status}")))
        }
        other => Err(Error::Waiting(format!("unexpected cleanup step {other:?}"))),
    }
}

fn release(r: &Reconciler<'_>, orphaned: bool) -> Result<Action, Error> {
    if let Some(id) = &r.status.bgp_peer_id {
        r.ctx.observer.forget(id);
    }
    match (&r.status.bgp_peer_id, orphaned) {
        (Some(id), true) => r.event(
            EventType::Normal,
            "Orphaned",
            "Delete",
            format!("Left BGP peer {id} in the cloud (deletionPolicy: Orphan)"),
        ),
        (Some(id), false) => r.event(
            EventType::Normal,
            "Deleted",
            "Delete",
            format!("BGP peer {id} is gone from the cloud"),
        ),
        (None, _) => {}
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("42"), Some(Duration::from_secs(42)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn ticks_are_shared_and_never_immediate() {
        let poll = Duration::from_millis(5000);
        for _ in 0..50 {
            let wait = next_tick(poll);
            assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_millis(5500));
        }
        // Two objects asking moments apart land on the same tick.
        let a = std::time::SystemTime::now() + next_tick(poll);
        let b = std::time::SystemTime::now() + next_tick(poll);
        let gap = b.duration_since(a).unwrap_or_else(|e| e.duration());
        assert!(
            gap < Duration::from_millis(100) || gap > Duration::from_millis(4900),
            "{gap:?}"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }
}
