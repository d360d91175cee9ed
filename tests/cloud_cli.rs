//! `alicloud-bgp-operator cloud …` as a user runs it: the real binary, a clean environment
//! holding only what each case sets, and the emulator as the API.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_GROUP_V4, DEMO_REGION,
};
use alicloud_bgp_operator::emulator::{EmulatorConfig, EmulatorHandle, Latency};
use common::emulator::start_emulator;

async fn emulator() -> EmulatorHandle {
    let config = EmulatorConfig {
        pending_delay: Duration::from_millis(50),
        latency: Latency::fixed(Duration::ZERO),
        ..EmulatorConfig::demo()
    };
    start_emulator(config).await
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str], env: &[(&str, &str)], home: &std::path::Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_alicloud-bgp-operator"));
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("finishes")
        .expect("runs");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const GOOD_ENV: [(&str, &str); 2] = [
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID),
    ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET),
];

#[tokio::test]
async fn check_reports_provider_and_success_in_both_signature_versions() {
    let emu = emulator().await;
    let home = tempfile::tempdir().expect("home");
    let endpoint = emu.endpoint();
    for sig in ["v1", "v3"] {
        let out = run(
            &[
                "cloud",
                "check",
                "--region",
                DEMO_REGION,
                "--endpoint",
                &endpoint,
                "--signature",
                sig,
            ],
            &GOOD_ENV,
            home.path(),
        )
        .await;
        assert!(out.ok, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("credentials: environment variables"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("DescribeBgpPeers: OK"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("signature {sig}")),
            "{}",
            out.stdout
        );
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(DEMO_ACCESS_KEY_SECRET),
                "secret leaked: {text}"
            );
        }
    }
}

#[tokio::test]
async fn check_reports_the_classified_error() {
    let emu = emulator().await;
    let home = tempfile::tempdir().expect("home");
    let out = run(
        &[
            "cloud",
            "check",
            "--region",
            DEMO_REGION,
            "--endpoint",
            &emu.endpoint(),
        ],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-value"),
        ],
        home.path(),
    )
    .await;
    assert!(!out.ok, "must fail: {}", out.stdout);
    assert!(
        out.stdout.contains("DescribeBgpPeers: FAILED"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("[Credentials]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-secret-value"), "{}", out.stderr);

    // No credentials at all.
    let out = run(
        &[
            "cloud",
            "check",
            "--region",
            DEMO_REGION,
            "--endpoint",
            &emu.endpoint(),
        ],
        &[],
        home.path(),
    )
    .await;
    assert!(!out.ok);
    assert!(out.stdout.contains("credentials: FAILED"), "{}", out.stdout);
    assert!(
        out.stderr.contains("no credentials found"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn describe_bgp_peers_table_and_json() {
    let emu = emulator().await;
    let home = tempfile::tempdir().expect("home");
    let creds = alicloud_bgp_operator::cloud::Credentials::new(
        DEMO_ACCESS_KEY_ID,
        DEMO_ACCESS_KEY_SECRET,
        None,
    );
    let client =
        alicloud_bgp_operator::cloud::VpcClient::new(alicloud_bgp_operator::cloud::ClientConfig {
            endpoint: Some(emu.endpoint()),
            ..Default::default()
        })
        .expect("client");
    let created = client
        .create_bgp_peer(
            &creds,
            &alicloud_bgp_operator::cloud::CreateBgpPeerRequest {
                region_id: DEMO_REGION.into(),
                bgp_group_id: DEMO_GROUP_V4.into(),
                peer_ip_address: Some("10.0.0.7".into()),
                ..Default::default()
            },
        )
        .await
        .expect("create");

    let endpoint = emu.endpoint();
    let base = [
        "cloud",
        "describe-bgp-peers",
        "--region",
        DEMO_REGION,
        "--group",
        DEMO_GROUP_V4,
        "--endpoint",
        endpoint.as_str(),
    ];
    let out = run(&base, &GOOD_ENV, home.path()).await;
    assert!(out.ok, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("BGP PEER ID"), "{}", out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&created.bgp_peer_id) && l.contains("10.0.0.7")),
        "{}",
        out.stdout
    );

    let mut json_args = base.to_vec();
    json_args.extend(["--output", "json"]);
    let out = run(&json_args, &GOOD_ENV, home.path()).await;
    assert!(out.ok, "{}", out.stderr);
    let peers: serde_json::Value = serde_json::from_str(&out.stdout).expect("json output");
    let list = peers.as_array().expect("array");
    assert!(
        list.iter()
            .any(|p| p["BgpPeerId"] == created.bgp_peer_id.as_str()
                && p["PeerIpAddress"] == "10.0.0.7"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("AuthKey"));
}
