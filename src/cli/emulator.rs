//! `alicloud-bgp-operator emulator`: the VPC API emulator as a process (flags over the seed
//! file, `--print-endpoint`, until SIGINT or SIGTERM).

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::duration;
use crate::emulator::config::{ConfigError, TotalCountMode};
use crate::emulator::{self, ConfigChange, EmulatorConfig, Latency, Secret};

/// An `--access-key ID:SECRET` value (the secret is redacted in `Debug`).
#[derive(Clone)]
pub struct AccessKeyArg {
    /// Access key id.
    pub id: String,
    /// Secret.
    pub secret: Secret,
}

impl fmt::Debug for AccessKeyArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeyArg")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .finish()
    }
}

impl FromStr for AccessKeyArg {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(Self {
                id: id.to_owned(),
                secret: Secret::new(secret),
            }),
            _ => Err(ConfigError::AccessKey),
        }
    }
}

/// Arguments of the `emulator` subcommand.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
    /// Seed configuration (YAML or JSON); default: the embedded demo configuration.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra access key, added to the first account (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET")]
    pub access_keys: Vec<AccessKeyArg>,
    /// Pending → Available delay (e.g. 2s, 0s).
    #[arg(long, value_parser = duration::parse)]
    pub pending_delay: Option<Duration>,
    /// Modifying → Available delay.
    #[arg(long, value_parser = duration::parse)]
    pub modify_delay: Option<Duration>,
    /// Deleting → gone delay.
    #[arg(long, value_parser = duration::parse)]
    pub delete_delay: Option<Duration>,
    /// Added latency per call, on the way out: fixed (`20ms`) or uniform (`10ms..50ms`).
    #[arg(long)]
    pub latency: Option<Latency>,
    /// Added latency per call on the way in, before the call is counted against the quotas.
    #[arg(long)]
    pub request_latency: Option<Latency>,
    /// Calls per second per access key before `Throttling.User`.
    #[arg(long)]
    pub qps_per_key: Option<u32>,
    /// Peers per VBR (all its groups counted) for every VBR; default: each VBR's own, 8.
    #[arg(long)]
    pub peer_quota: Option<u32>,
    /// Hide a created peer from DescribeBgpPeers this long (its ClientToken replay still answers).
    #[arg(long, value_parser = duration::parse)]
    pub visibility_lag: Option<Duration>,
    /// List a deleted peer as `Deleted` this long before it disappears.
    #[arg(long, value_parser = duration::parse)]
    pub deleted_linger: Option<Duration>,
    /// BgpStatus Idle → Connect this long after the peer became Available.
    #[arg(long, value_parser = duration::parse)]
    pub session_connect_delay: Option<Duration>,
    /// BgpStatus Connect → Established.
    #[arg(long, value_parser = duration::parse)]
    pub session_establish_delay: Option<Duration>,
    /// What `TotalCount` counts: `total` (all matches) or `page` (this page's entries).
    #[arg(long)]
    pub total_count: Option<TotalCountMode>,
    /// Add `x-acs-retry-after` (this duration, in ms) to Throttling answers.
    #[arg(long, value_parser = duration::parse)]
    pub throttle_retry_after: Option<Duration>,
    /// How long ClientTokens are remembered (per account and action).
    #[arg(long, value_parser = duration::parse)]
    pub token_retention: Option<Duration>,
    /// Keep groups, peers and ClientTokens in this file across restarts.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Print `http://ADDR` alone on the first line of standard output once listening.
    #[arg(long)]
    pub print_endpoint: bool,
}

impl EmulatorArgs {
    /// The configuration these arguments describe.
    pub fn to_config(&self) -> anyhow::Result<EmulatorConfig> {
        let mut config = match &self.config {
            Some(path) => EmulatorConfig::from_file(path)?,
            None => EmulatorConfig::demo(),
        };
        for key in &self.access_keys {
            config.add_access_key(key.id.clone(), key.secret.clone());
        }
        // The run-time knobs, exactly as `POST /__admin/config` changes them.
        ConfigChange {
            visibility_lag: self.visibility_lag,
            deleted_linger: self.deleted_linger,
            pending_delay: self.pending_delay,
            modify_delay: self.modify_delay,
            delete_delay: self.delete_delay,
            session_connect_delay: self.session_connect_delay,
            session_establish_delay: self.session_establish_delay,
            token_retention: self.token_retention,
            throttle_retry_after: self.throttle_retry_after,
            qps_per_key: self.qps_per_key,
            total_count: self.total_count,
            ..ConfigChange::default()
        }
        .apply(&mut config);
        if let Some(l) = self.latency {
            config.latency = l;
        }
        if let Some(l) = self.request_latency {
            config.request_latency = l;
        }
        if let Some(q) = self.peer_quota {
            for vbr in &mut config.vbrs {
                vbr.peer_quota = q;
            }
        }
        if let Some(p) = &self.state_file {
            config.state_file = Some(p.clone());
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the emulator until interrupted (SIGINT or SIGTERM).
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let handle = emulator::start(config, args.listen).await?;
    if args.print_endpoint {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", handle.endpoint())?;
        stdout.flush()?;
    }
    super::shutdown_signal().await;
    tracing::info!("emulator shutting down");
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn flags_build_the_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            "AK1:S1",
            "--access-key",
            "AK2:S:2",
            "--pending-delay",
            "0s",
            "--latency",
            "10ms..50ms",
            "--qps-per-key",
            "7",
            "--visibility-lag",
            "3s",
            "--total-count",
            "page",
            "--throttle-retry-after",
            "1500ms",
            "--peer-quota",
            "3",
            "--print-endpoint",
        ])
        .unwrap();
        let c = cli.args.to_config().unwrap();
        let keys = &c.accounts[0].access_keys;
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[2].id, "AK2");
        assert_eq!(keys[2].secret.expose(), "S:2");
        assert_eq!(c.pending_delay, Duration::ZERO);
        assert_eq!(c.latency.max, Duration::from_millis(50));
        assert_eq!(c.qps_per_key, Some(7));
        assert_eq!(c.visibility_lag, Duration::from_secs(3));
        assert_eq!(c.total_count, TotalCountMode::Page);
        assert_eq!(c.throttle_retry_after, Some(Duration::from_millis(1500)));
        assert!(c.vbrs.iter().all(|v| v.peer_quota == 3));
        let defaults = Cli::try_parse_from(["x"])
            .unwrap()
            .args
            .to_config()
            .unwrap();
        assert_eq!(defaults.visibility_lag, Duration::ZERO);
        assert!(defaults.vbrs.iter().all(|v| v.peer_quota == 8));
        assert!(!format!("{cli:?}").contains("S1"));
        assert!(Cli::try_parse_from(["x", "--access-key", "nocolon"]).is_err());
    }
}
