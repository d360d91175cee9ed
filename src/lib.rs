//! alicloud-bgp-operator: declare Alibaba Cloud VPC BGP peers as Kubernetes objects.
//!
//! - [`api`]: the `BgpPeer` custom resource (spec, status, conditions) and CRD generation.
//! - [`cloud`]: the VPC API client (signing, credentials, typed operations and errors).
//! - [`emulator`]: a high-fidelity VPC API emulator for the demo, tests and benchmarks.
//! - [`ops`]: logging, metrics, health, leader election.
//! - [`cli`]: the command line.
//! - [`duration`]: the one duration syntax of flags, annotations and the emulator's documents.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod cli;
pub mod cloud;
pub mod controller;
pub mod duration;
pub mod emulator;
pub mod ops;

/// Installs the process-wide rustls crypto provider (ring). Both kube and reqwest use rustls
/// and need exactly one provider; call this once before creating any client. Calling it again
/// is harmless.
pub fn install_crypto_provider() {
    // An Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
