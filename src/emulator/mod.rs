//! A high-fidelity emulator of the Alibaba Cloud VPC BGP API (a real HTTP server).
//!
//! It speaks the real wire protocol (RPC V1 HMAC-SHA1 and V3 ACS3-HMAC-SHA256 signatures,
//! query + form parameters, JSON or XML bodies, the documented error codes) so that the
//! official SDKs and our own client work against it unchanged. Layout:
//!
//! - [`config`]: [`EmulatorConfig`] (seed file, the embedded [`EmulatorConfig::demo`]).
//! - [`sign`]: independent server-side signature verification; [`auth`]: keys, STS keys,
//!   timestamp window, nonces.
//! - [`wire`]: request parsing and JSON/XML rendering; [`params`]: typed parameters;
//!   [`error`]: error codes.
//! - [`vpc`]: the BGP operations on [`resources`] ([`network`]: the BGP networks); [`sts`]:
//!   AssumeRole(WithOIDC);
//!   [`idempotency`]: ClientTokens.
//! - [`faults`], [`throttle`], [`counters`], [`clock`]: realism knobs and observation.
//! - [`server`]: the pipeline, [`start`] and [`EmulatorHandle`]; [`admin`]: `/__admin/`;
//!   [`persist`]: the state file; [`state`]: the single mutex-protected state.

pub mod action;
pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod counters;
pub mod error;
pub mod faults;
pub mod idempotency;
pub mod model;
pub mod network;
pub mod params;
pub mod persist;
pub mod resources;
pub mod server;
pub mod sign;
pub mod state;
pub mod sts;
pub mod throttle;
pub mod vpc;
pub mod wire;

pub use config::{EmulatorConfig, Latency, Secret};
pub use counters::Counters;
pub use faults::Fault;
pub use model::{GroupSnapshot, IpVersion, PeerSnapshot, Status, VbrSnapshot};
pub use network::{NetworkChange, NetworkSnapshot};
pub use server::{EmulatorHandle, start};
pub use state::{AdminError, ConfigChange, PeerChange, StateDump};
