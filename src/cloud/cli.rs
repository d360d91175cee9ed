//! `alicloud-bgp-operator cloud ...`: support commands that talk to the VPC API.

/// Arguments of the `cloud` subcommand.
#[derive(Debug, clap::Args)]
pub struct CloudArgs {}

/// Runs a `cloud` subcommand.
pub async fn run(_args: CloudArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
