//! The BgpNetwork kind on the shared skeleton ([`super::core`]): one advertised prefix of a
//! VBR per object. A network has no ID; the rules that keep "never a duplicate, never a leak,
//! never an unrequested deletion" true without one are in [`plan`] and argued in
//! `docs/bgp-network-identity.md`.
//!
//! - [`plan`]: the pure decision (table-tested in `plan_tests.rs`), and [`plan::stronger_claim`]
//!   for two objects naming one network.
//! - this module: observe (one paged DescribeBgpNetworks walk of the VBR, in the owning
//!   account), act (the intent recorded before AddBgpNetwork, the replay that settles an
//!   unanswered Add, adoption, DeleteBgpNetwork, the release) and status.

mod apply;
mod cleanup;
pub mod plan;
#[cfg(test)]
mod plan_tests;

use apply::ensure_network;
use cleanup::ensure_network_absent;
use std::future::Future;
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::info;

use crate::api::ManagementPolicy;
use crate::api::conditions::{events, reasons};
use crate::api::identity::CloudIdentity;
use crate::api::network::{
    AddObservation, BgpNetwork, BgpNetworkStatus, CloudNetworkView, NETWORK_FINALIZER,
};
use crate::cloud::{AddBgpNetworkRequest, CloudError, Credentials, DeleteBgpNetworkRequest};
use crate::ops::events::EventType;

use super::context::Context;
use super::core::{self, CloudObject, is_paused};
use super::credentials::{account_of, credentials};
use super::error::Error;
use super::status::Outcome;
use super::timing::{jittered, next_tick};
use super::{WatchScope, drive, scoped_api, served, triggers, with_credential_triggers};
use plan::{ClaimView, Found, Left, Listing, Plan, PlanInput, spec_cidr};

/// The kind's name in metrics and logs.
pub const KIND_BGP_NETWORK: &str = "BgpNetwork";

/// API error code of an Add of a network that exists (documented).
const ALREADY_EXISTS_CODE: &str = "InvalidParams.AlreadyExists";
/// API error code of a Delete of a network that does not exist (assumed).
const NOT_FOUND_CODE: &str = "InvalidParams.NotFound";

/// At most this many plan steps per reconcile (each act is followed by a fresh plan).
const MAX_STEPS: usize = 8;

/// One reconcile of a BgpNetwork.
pub(crate) type Reconciler<'a> = core::Reconciler<'a, BgpNetwork>;

core::object_status!(BgpNetworkStatus);

core::credential_refs!(BgpNetwork);

impl CloudObject for BgpNetwork {
    type Status = BgpNetworkStatus;
    const KIND: &'static str = KIND_BGP_NETWORK;
    const NOUN: &'static str = "BGP network";
    const FINALIZER: &'static str = NETWORK_FINALIZER;

    fn status(&self) -> Option<&BgpNetworkStatus> {
        self.status.as_ref()
    }

    fn management_policy(&self) -> ManagementPolicy {
        ManagementPolicy::Full
    }

    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            kind = KIND_BGP_NETWORK,
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            router_id = %r.obj.spec.router_id,
            dst_cidr_block = %r.obj.spec.dst_cidr_block,
        )
    )]
    async fn ensure(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_network(r).await
    }

    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            kind = KIND_BGP_NETWORK,
            namespace = %r.obj.namespace().unwrap_or_default(),
            name = %r.obj.name_any(),
            router_id = %r.obj.spec.router_id,
            dst_cidr_block = %r.obj.spec.dst_cidr_block,
            deleting = true,
        )
    )]
    async fn ensure_absent(r: &mut Reconciler<'_>) -> Result<Action, Error> {
        ensure_network_absent(r).await
    }
}

/// The credentials a reconcile acts with, and their account.
struct Cloud {
    creds: Credentials,
    account: String,
}

/// How an AddBgpNetwork (first call or replay) was answered.
enum AddAnswer {
    /// Success: this token made the network (then or now).
    Accepted,
    /// `InvalidParams.AlreadyExists`: the token made nothing; the network is someone else's.
    NotOurs,
    /// A refusal that proves the token made nothing (parameters, a missing VBR or region,
    /// the quota): the error, to report.
    MadeNothing(Error),
    /// An answer that proves nothing (throttling, transport, 5xx, credentials, unknown).
    Unknown(Error),
}

impl Reconciler<'_> {
    /// The region the network lives in: as recorded, else the spec's.
    fn region(&self) -> String {
        self.status
            .region_id
            .clone()
            .unwrap_or_else(|| self.obj.spec.region_id.clone())
    }

    /// The VBR: as recorded, else the spec's.
    fn router(&self) -> String {
        self.status
            .router_id
            .clone()
            .unwrap_or_else(|| self.obj.spec.router_id.clone())
    }

    /// The prefix: as recorded, else the spec's (canonical).
    fn cidr(&self) -> Result<ipnet::IpNet, Error> {
        match &self.status.dst_cidr_block {
            Some(c) => c.parse().ok(),
            None => spec_cidr(&self.obj.spec),
        }
        .ok_or_else(|| {
            Error::InvalidSpec(format!(
                "dstCidrBlock {:?} is not a CIDR block without host bits",
                self.obj.spec.dst_cidr_block
            ))
        })
    }

    fn plan(
        &self,
        account: Option<&str>,
        listing: Option<&Listing>,
        claimed_by: Option<&str>,
    ) -> Plan {
        let uid = self.obj.uid().unwrap_or_default();
        plan::plan(&PlanInput {
            uid: &uid,
            spec: &self.obj.spec,
            status: &self.status,
            account,
            listing,
            claimed_by,
            deleting: self.obj.metadata.deletion_timestamp.is_some(),
            paused: is_paused(self.obj),
            replay_expired: self.replay_expired(),
            now: self.now,
            timing: self.ctx.config.timing,
        })
    }

    /// The recorded Add is older than the replay window.
    fn replay_expired(&self) -> bool {
        let window = jiff::SignedDuration::try_from(self.ctx.config.create_replay_window)
            .unwrap_or(jiff::SignedDuration::MAX);
        self.status
            .add_requested_at
            .as_ref()
            .and_then(|t| t.0.checked_add(window).ok())
            .is_some_and(|until| until <= self.now)
    }

    /// Another object of the cluster with a stronger claim on this object's network.
    fn claim(&self) -> Option<String> {
        let store = self.ctx.networks.get()?;
        let me = claim_view(self.obj, &self.status);
        let mine = identity_key(self.obj, Some(&self.status))?;
        let others: Vec<ClaimView> = store
            .state()
            .iter()
            .filter(|o| identity_key(o, o.status.as_ref()).as_ref() == Some(&mine))
            .map(|o| claim_view(o, &o.status.clone().unwrap_or_default()))
            .collect();
        plan::stronger_claim(&me, &others)
    }

    /// One walk of the VBR's networks in the owning account: is this object's network there?
    async fn list(&mut self, cloud: &Cloud) -> Result<Listing, Error> {
        let cidr = self.cidr()?;
        let router = self.router();
        let listing = self
            .ctx
            .vpc
            .list_bgp_networks(&cloud.creds, &self.region(), &router)
            .await
            .map_err(Error::cloud("DescribeBgpNetworks"))?;
        let found = listing.find(&router, &cidr).map(|n| {
            self.status.cloud = Some(CloudNetworkView {
                status: Some(n.status.to_string()),
                dst_cidr_block: Some(n.dst_cidr_block.clone()),
                vpc_id: n.vpc_id.clone(),
            });
            Found {
                status: n.status.clone(),
                vpc_id: n.vpc_id.clone(),
            }
        });
        Ok(Listing {
            found,
            consistent: listing.consistent,
        })
    }

    /// Records what binds the object to its network (account, region, VBR, prefix).
    fn bind(&mut self, account: &str) -> Result<(), Error> {
        let cidr = self.cidr()?.to_string();
        let (region, router) = (self.region(), self.router());
        let s = &mut self.status;
        s.account_id.get_or_insert_with(|| account.to_owned());
        s.region_id.get_or_insert(region);
        s.router_id.get_or_insert(router);
        s.dst_cidr_block.get_or_insert(cidr);
        Ok(())
    }

    /// AddBgpNetwork with `token` (a first call or a replay), classified.
    async fn add(&mut self, cloud: &Cloud, token: &str) -> Result<AddAnswer, Error> {
        let req = AddBgpNetworkRequest {
            region_id: self.region(),
            router_id: self.router(),
            dst_cidr_block: self.cidr()?.to_string(),
            vpc_id: self.obj.spec.vpc_id.clone(),
            client_token: Some(token.to_owned()),
        };
        Ok(
            match self.ctx.vpc.add_bgp_network(&cloud.creds, &req).await {
                Ok(_) => AddAnswer::Accepted,
                Err(e) if e.code() == Some(ALREADY_EXISTS_CODE) => AddAnswer::NotOurs,
                Err(e) if proves_nothing_made(&e) => {
                    AddAnswer::MadeNothing(Error::cloud("AddBgpNetwork")(e))
                }
                Err(e) => AddAnswer::Unknown(Error::cloud("AddBgpNetwork")(e)),
            },
        )
    }

    /// Acts on an Add's answer: ownership on success, the intent cleared when the token made
    /// nothing. `Ok(Some(err))`: stop with that error.
    async fn settle(&mut self, cloud: &Cloud, answer: AddAnswer) -> Result<Option<Error>, Error> {
        match answer {
            AddAnswer::Accepted => {
                // A simulated crash after a successful Add, before its result is recorded.
                self.ctx.hooks.after_create()?;
                self.bind(&cloud.account)?;
                self.status.owned = true;
                self.status.add_accepted_at = Some(self.stamp());
                self.event(
                    EventType::Normal,
                    events::CREATED,
                    "Add",
                    format!(
                        "AddBgpNetwork for {} accepted (ClientToken {})",
                        self.describe(),
                        self.status.client_token.as_deref().unwrap_or_default()
                    ),
                );
                self.write_status(&Outcome::Progressing {
                    reason: reasons::CREATING,
                    message: format!("AddBgpNetwork for {} was accepted", self.describe()),
                })
                .await?;
                Ok(None)
            }
            AddAnswer::NotOurs => {
                let since = self
                    .status
                    .add_observation
                    .as_ref()
                    .map(|o| format!(" since the listing at {}", o.listed_at.0))
                    .unwrap_or_default();
                self.clear_intent();
                if self.obj.spec.adopt {
                    return Ok(None);
                }
                Ok(Some(Error::Refused {
                    reason: reasons::ALREADY_EXISTS,
                    message: format!(
                        "The network {} appeared{since} and AddBgpNetwork was refused (InvalidParams.AlreadyExists): this object did not add it, and a BGP network has no ID to prove otherwise. Set adopt: true to take it over, or remove it from the VBR",
                        self.describe()
                    ),
                }))
            }
            AddAnswer::MadeNothing(err) => {
                self.clear_intent();
                Ok(Some(err))
            }
            AddAnswer::Unknown(err) => Ok(Some(err)),
        }
    }

    fn clear_intent(&mut self) {
        let s = &mut self.status;
        s.client_token = None;
        s.add_requested_at = None;
        s.add_observation = None;
    }

    fn describe(&self) -> String {
        format!("{} on {}", self.obj.spec.dst_cidr_block, self.router())
    }

    /// Records the intent (token, time, what the listing showed, the binding) and writes it
    /// **before** the Add.
    async fn record_intent(
        &mut self,
        cloud: &Cloud,
        token: &str,
        incarnation: u32,
        listing: &Listing,
    ) -> Result<(), Error> {
        self.bind(&cloud.account)?;
        let stamp = self.stamp();
        let s = &mut self.status;
        s.client_token = Some(token.to_owned());
        s.incarnation = incarnation;
        s.add_requested_at = Some(stamp.clone());
        s.add_observation = Some(AddObservation {
            listed_at: stamp,
            consistent: listing.consistent,
        });
        s.add_accepted_at = None;
        s.cloud = None;
        self.write_status(&Outcome::Progressing {
            reason: reasons::CREATING,
            message: format!("Adding the network {}", self.describe()),
        })
        .await
    }

    /// A wait on the cloud: Reconciling, or Stalled once overdue (with one Warning event).
    async fn wait(
        &mut self,
        reason: &'static str,
        message: String,
        overdue: bool,
    ) -> Result<Action, Error> {
        if self.status.waiting_since.is_none() {
            self.status.waiting_since = Some(self.stamp());
        }
        let outcome = if overdue {
            let was =
                super::status::stalled_reason(&self.status) == Some(reasons::TRANSITION_TIMEOUT);
            self.note_overdue(&message, was);
            Outcome::Stalled { reason, message }
        } else {
            Outcome::Progressing { reason, message }
        };
        self.write_status(&outcome).await?;
        Ok(Action::requeue(next_tick(self.ctx.config.poll_interval)))
    }

    /// The network is advertised and owned: Ready (`lastSyncTime` and time-to-ready as every
    /// kind records them).
    async fn ready(&mut self) -> Result<Action, Error> {
        self.status.waiting_since = None;
        let (stamp, resync) = (self.stamp(), self.ctx.config.resync_period);
        let first_ready = crate::ops::report::note_synced(
            &mut self.status,
            self.stored.as_ref(),
            BgpNetwork::NOUN,
            self.obj.metadata.generation,
            &stamp,
            resync,
        );
        self.write_status(&Outcome::Ready).await?;
        self.ctx
            .metrics
            .ready(KIND_BGP_NETWORK, &self.obj.metadata, first_ready, self.now);
        Ok(Action::requeue(jittered(resync)))
    }
}

/// Whether a refused Add proves that its token made nothing: the API's parameter validation,
/// a missing VBR or region, the quota (a replay of a token that had succeeded would have been
/// answered with that success, not checked again).
fn proves_nothing_made(e: &CloudError) -> bool {
    use crate::cloud::ErrorClass;
    matches!(e, CloudError::Api(_))
        && matches!(
            e.class(),
            ErrorClass::Terminal | ErrorClass::DependencyMissing | ErrorClass::Quota
        )
}

/// The (region, VBR, canonical prefix) an object names: as recorded in its status, else its
/// spec's.
fn identity_key(
    obj: &BgpNetwork,
    status: Option<&BgpNetworkStatus>,
) -> Option<(String, String, String)> {
    let cidr = status
        .and_then(|s| s.dst_cidr_block.clone())
        .or_else(|| spec_cidr(&obj.spec).map(|c| c.to_string()))?;
    let region = status
        .and_then(|s| s.region_id.clone())
        .unwrap_or_else(|| obj.spec.region_id.clone());
    let router = status
        .and_then(|s| s.router_id.clone())
        .unwrap_or_else(|| obj.spec.router_id.clone());
    Some((region, router, cidr))
}

fn claim_view(obj: &BgpNetwork, status: &BgpNetworkStatus) -> ClaimView {
    ClaimView {
        key: format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        created: status.owned && !status.adopted,
        adopted_at: status
            .adopted_at
            .as_ref()
            .filter(|_| status.owned && status.adopted)
            .map(|t| t.0),
        add_requested_at: status
            .add_requested_at
            .as_ref()
            .filter(|_| !status.owned && status.client_token.is_some())
            .map(|t| t.0),
        created_at: obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
        uid: obj.uid().unwrap_or_default(),
    }
}

/// The object's credentials and their account.
async fn connect(r: &Reconciler<'_>) -> Result<Cloud, Error> {
    let creds = credentials(r.obj, r.ctx).await?;
    let account = account_of(r.ctx, &creds).await?;
    Ok(Cloud { creds, account })
}

/// Runs the BgpNetwork controller until `shutdown`; returns at once (with a log line) when the
/// BgpNetwork CRD is not served. The cache it fills (`Context::networks`) is what
/// [`plan::stronger_claim`] compares with; objects stalled on credentials are rechecked and
/// woken by their CloudIdentity's changes as every kind's are. To run it beside the other
/// controllers: `futures::join!(…, network::run(ctx.clone(), scope.clone(), shutdown.clone()))`.
pub async fn run(
    ctx: Arc<Context>,
    scope: WatchScope,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<BgpNetwork> = scoped_api(ctx.kube.clone(), &scope);
    if !served(&api).await {
        info!("the BgpNetwork CRD is not served: no BgpNetwork controller runs");
        return;
    }
    let (trigger, store): (_, Store<BgpNetwork>) = triggers(api, &scope);
    let _ = ctx.networks.set(store.clone());
    let identities: Api<CloudIdentity> = scoped_api(ctx.kube.clone(), &scope);
    let identity_changes = watcher(identities, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let controller = with_credential_triggers(
        super::controller_for(trigger, store.clone()),
        store,
        &ctx,
        identity_changes,
    );
    info!("BgpNetwork controller starting");
    drive(controller, ctx, shutdown).await;
}
