//! The command line: one subcommand per job, each in its own file.
//!
//! - this file: [`Cli`] (global flags), [`Command`], `crd` and `docs`, the exit code, and
//!   [`shutdown_signal`], the one SIGINT/SIGTERM wait of every long-running command.
//! - [`run`]: `run`, the controller process.
//! - [`emulator`]: `emulator`, the VPC API emulator process.
//! - [`cloud`]: `cloud check` and `cloud describe-bgp-peers`.
//!
//! Durations in every flag are parsed by [`crate::duration::parse`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::api;
use crate::controller;
use crate::ops::logging::{self, LogFormat};

pub mod cloud;
pub mod emulator;
pub mod run;

/// Kubernetes operator for Alibaba Cloud VPC BGP peers.
#[derive(Debug, Parser)]
#[command(name = "alicloud-bgp-operator", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "ABO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    #[arg(long, global = true, env = "ABO_LOG", default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions' YAML (or write them with --output / --output-dir).
    Crd {
        /// Write the BgpPeer CRD to this file instead of standard output.
        #[arg(long, conflicts_with = "output_dir")]
        output: Option<PathBuf>,
        /// Write every CRD into this directory (`vpc.alicloud.dev_<plural>.yaml`).
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Regenerate the generated section of README.md (the error tables).
    Docs {
        /// The README to update in place.
        #[arg(long, default_value = "README.md")]
        readme: PathBuf,
    },
    /// Run the controller (watches BgpPeers and keeps the cloud in sync).
    Run(run::RunArgs),
    /// Run the VPC API emulator (an HTTP server speaking the real wire protocol).
    Emulator(emulator::EmulatorArgs),
    /// Talk to the VPC API: check credentials, list peers.
    Cloud(cloud::CloudArgs),
}

/// Parses the command line, runs the subcommand and maps its result to an exit code.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    crate::install_crypto_provider();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Crd { output, output_dir } => {
            if let Some(dir) = output_dir {
                for (file, yaml) in api::crdgen::all_crd_yamls()? {
                    std::fs::write(dir.join(file), yaml)?;
                }
                return Ok(());
            }
            match output {
                Some(path) => std::fs::write(&path, api::crdgen::bgp_peer_crd_yaml()?)?,
                None => {
                    let docs: Vec<String> = api::crdgen::all_crd_yamls()?
                        .into_iter()
                        .map(|(_, yaml)| yaml)
                        .collect();
                    print!("{}", docs.join("---\n"));
                }
            }
            Ok(())
        }
        Command::Docs { readme } => {
            let text = std::fs::read_to_string(&readme)?;
            let updated = controller::docs::render_into(&text).ok_or_else(|| {
                anyhow::anyhow!("{} has no generated-section markers", readme.display())
            })?;
            std::fs::write(&readme, updated)?;
            Ok(())
        }
        Command::Run(args) => run::run(args).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Cloud(args) => cloud::run(args).await,
    }
}

/// Waits for SIGINT (Ctrl-C) or, on Unix, SIGTERM: the shutdown signal of `run` and `emulator`.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
