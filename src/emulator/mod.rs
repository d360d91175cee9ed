//! A high-fidelity emulator of the Alibaba Cloud VPC BGP API (a real HTTP server).

pub mod clock;
pub mod config;
pub mod counters;
pub mod error;
pub mod faults;
pub mod idempotency;
pub mod model;
pub mod params;
pub mod sign;
pub mod throttle;
pub mod wire;

/// Arguments of the `emulator` subcommand.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {}

/// Runs the emulator until interrupted.
pub async fn run(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
