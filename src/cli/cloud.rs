//! `alicloud-bgp-operator cloud ...`: support commands that talk to the VPC API.
//!
//! - `cloud check --region R [--endpoint URL] [--signature v1|v3]`: resolves credentials
//!   from the chain, says which provider was used (never the secret), calls
//!   `DescribeBgpPeers` with `PageSize=1` and reports success or the classified error.
//! - `cloud describe-bgp-peers --region R [--group G] [--endpoint URL] [--output table|json]`.

use clap::{Subcommand, ValueEnum};

use crate::cloud::client::{ClientConfig, VpcClient};
use crate::cloud::credentials::{CredentialChain, Credentials};
use crate::cloud::error::{CloudError, ErrorClass};
use crate::cloud::model::{BgpPeerInfo, DescribeBgpPeersRequest};
use crate::cloud::signing::SignatureVersion;

/// Arguments of the `cloud` subcommand.
#[derive(Debug, clap::Args)]
pub struct CloudArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CloudCommand,
}

/// The `cloud` subcommands.
#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Resolve credentials and make one cheap read call (DescribeBgpPeers, PageSize=1).
    Check(ConnectionArgs),
    /// List the BGP peers of a region.
    DescribeBgpPeers(DescribeBgpPeersArgs),
}

/// How to reach the API.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Region id, e.g. cn-hangzhou.
    #[arg(long, env = "ALIBABA_CLOUD_REGION_ID")]
    pub region: String,
    /// Endpoint for every region instead of the regional one (e.g. http://127.0.0.1:8080).
    #[arg(long, env = "ABO_VPC_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Signature version.
    #[arg(long, value_enum, ignore_case = true, default_value_t = SignatureVersion::V3)]
    pub signature: SignatureVersion,
    /// STS endpoint for the OIDC and RAM-role providers.
    #[arg(long, env = "ALIBABA_CLOUD_STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,
}

/// Arguments of `cloud describe-bgp-peers`.
#[derive(Debug, Clone, clap::Args)]
pub struct DescribeBgpPeersArgs {
    /// How to reach the API.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Only peers of this BGP group.
    #[arg(long)]
    pub group: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// A JSON array of peers.
    Json,
}

/// Runs a `cloud` subcommand.
pub async fn run(args: CloudArgs) -> anyhow::Result<()> {
    match args.command {
        CloudCommand::Check(conn) => check(&conn).await,
        CloudCommand::DescribeBgpPeers(args) => describe_bgp_peers(&args).await,
    }
}

async fn connect(conn: &ConnectionArgs) -> Result<(VpcClient, Credentials, String), CloudError> {
    let chain = CredentialChain::from_env(conn.sts_endpoint.clone())?;
    let (creds, source) = chain.credentials_with_source().await?;
    let client = VpcClient::new(ClientConfig {
        endpoint: conn.endpoint.clone(),
        signature_version: conn.signature,
        ..ClientConfig::default()
    })?;
    let who = format!(
        "{source}, access key id {}{}",
        mask(creds.access_key_id()),
        if creds.is_sts() { " (STS)" } else { "" }
    );
    Ok((client, creds, who))
}

async fn check(conn: &ConnectionArgs) -> anyhow::Result<()> {
    let (client, creds, who) = match connect(conn).await {
        Ok(v) => v,
        Err(err) => {
            println!("credentials: FAILED");
            return Err(report(&err));
        }
    };
    println!("credentials: {who}");
    let endpoint = client.config().endpoint.clone().unwrap_or_else(|| {
        format!(
            "https://{}",
            crate::cloud::endpoint::regional_host(&conn.region)
        )
    });
    println!(
        "endpoint: {endpoint} (signature {})",
        client.config().signature_version.as_str()
    );
    let req = DescribeBgpPeersRequest {
        region_id: conn.region.clone(),
        page_size: Some(1),
        ..Default::default()
    };
    match client.describe_bgp_peers(&creds, &req).await {
        Ok(page) => {
            println!(
                "DescribeBgpPeers: OK (region {}, {} peer(s), RequestId {})",
                conn.region, page.total_count, page.request_id
            );
            Ok(())
        }
        Err(err) => {
            println!("DescribeBgpPeers: FAILED");
            Err(report(&err))
        }
    }
}

async fn describe_bgp_peers(args: &DescribeBgpPeersArgs) -> anyhow::Result<()> {
    let (client, creds, _) = connect(&args.connection).await.map_err(|e| report(&e))?;
    let req = DescribeBgpPeersRequest {
        region_id: args.connection.region.clone(),
        bgp_group_id: args.group.clone(),
        ..Default::default()
    };
    let peers = client
        .describe_all_bgp_peers(&creds, &req)
        .await
        .map_err(|e| report(&e))?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&peers)?),
        OutputFormat::Table => print!("{}", render_table(&peers)),
    }
    Ok(())
}

/// Turns an error into a message with its class and a hint.
fn report(err: &CloudError) -> anyhow::Error {
    let class = err.class();
    let hint = match class {
        ErrorClass::Credentials => {
            "check the access key, its permissions (RAM policy) and the credential provider"
        }
        ErrorClass::Transient => "a temporary failure: try again",
        ErrorClass::Throttled => "the API is throttling this account: slow down",
        ErrorClass::DependencyMissing => "a referenced region, VBR or BGP group does not exist",
        ErrorClass::Terminal => "the request is invalid",
        ErrorClass::Quota => "a quota is exhausted",
        ErrorClass::Busy => "the resource is busy: try again later",
        ErrorClass::IdempotencyMismatch => "a ClientToken was reused with other parameters",
        ErrorClass::Unknown => "unrecognised error",
    };
    anyhow::anyhow!("[{}] {err} ({hint})", class.as_str())
}

/// Shows the first 4 and last 3 characters of an access key id.
fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

fn render_table(peers: &[BgpPeerInfo]) -> String {
    let header = [
        "BGP PEER ID",
        "GROUP",
        "PEER IP",
        "STATUS",
        "BGP STATUS",
        "PEER ASN",
        "BFD",
        "HOPS",
        "IP",
    ];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let rows: Vec<[String; 9]> = peers
        .iter()
        .map(|p| {
            [
                p.bgp_peer_id.clone(),
                p.bgp_group_id.clone(),
                or_dash(p.peer_ip_address.clone()),
                p.status.to_string(),
                or_dash(p.bgp_status.as_ref().map(|s| s.to_string())),
                or_dash(p.peer_asn.map(|a| a.to_string())),
                or_dash(p.enable_bfd.map(|b| b.to_string())),
                or_dash(p.bfd_multi_hop.map(|h| h.to_string())),
                or_dash(p.ip_version.clone()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if rows.is_empty() {
        out.push_str("(no BGP peers)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        args: CloudArgs,
    }

    #[test]
    fn parses_check_and_describe() {
        let cli = TestCli::try_parse_from([
            "x",
            "check",
            "--region",
            "cn-hangzhou",
            "--endpoint",
            "http://127.0.0.1:1",
            "--signature",
            "v1",
        ])
        .unwrap();
        match cli.args.command {
            CloudCommand::Check(c) => {
                assert_eq!(c.region, "cn-hangzhou");
                assert_eq!(c.signature, SignatureVersion::V1);
                assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
            }
            other => panic!("{other:?}"),
        }
        let cli = TestCli::try_parse_from([
            "x",
            "describe-bgp-peers",
            "--region",
            "cn-shanghai",
            "--group",
            "bgpg-1",
            "--output",
            "json",
        ])
        .unwrap();
        match cli.args.command {
            CloudCommand::DescribeBgpPeers(d) => {
                assert_eq!(d.group.as_deref(), Some("bgpg-1"));
                assert_eq!(d.output, OutputFormat::Json);
                assert_eq!(d.connection.signature, SignatureVersion::V3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn masks_access_key_ids() {
        assert_eq!(mask("LTAI5tAbCdEfGhIjK"), "LTAI****IjK");
        assert_eq!(mask("short"), "*****");
    }

    #[test]
    fn table_has_aligned_columns() {
        let peers = vec![
            BgpPeerInfo {
                bgp_peer_id: "bgp-1".into(),
                bgp_group_id: "bgpg-long-group".into(),
                peer_ip_address: Some("10.0.0.2".into()),
                status: "Available".into(),
                peer_asn: Some(65001),
                enable_bfd: Some(true),
                bfd_multi_hop: Some(3),
                ..Default::default()
            },
            BgpPeerInfo {
                bgp_peer_id: "bgp-22".into(),
                bgp_group_id: "g".into(),
                status: "Pending".into(),
                ..Default::default()
            },
        ];
        let t = render_table(&peers);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = |l: &str| {
            l.find("STATUS")
                .or_else(|| l.find("Available"))
                .or_else(|| l.find("Pending"))
        };
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[2].contains(" - "), "{}", lines[2]);
        assert!(render_table(&[]).contains("no BGP peers"));
    }

    #[test]
    fn report_names_the_class() {
        let err = CloudError::Api(crate::cloud::ApiError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
            Some("RID".into()),
        ));
        let text = report(&err).to_string();
        assert!(text.starts_with("[Credentials]"), "{text}");
        assert!(text.contains("InvalidAccessKeyId.NotFound"), "{text}");
        assert!(text.contains("RID"), "{text}");
    }
}
