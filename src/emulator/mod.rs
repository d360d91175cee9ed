//! A high-fidelity emulator of the Alibaba Cloud VPC BGP API (a real HTTP server).

pub mod config;
pub mod error;
pub mod model;
pub mod sign;

/// Arguments of the `emulator` subcommand.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {}

/// Runs the emulator until interrupted.
pub async fn run(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
