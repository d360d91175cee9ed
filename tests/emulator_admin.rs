//! The emulator's realism knobs and operations over real HTTP: fault injection, throttling,
//! latency, the admin API and in-process changes, read-after-write lag, session states, the
//! state file across restarts, and the binary with its seed file and flags.

mod common;

use std::time::Duration;

use alicloud_bgp_operator::emulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, DEMO_GROUP_V4, DEMO_GROUP_V6, DEMO_REGION, DEMO_VBR,
};
use alicloud_bgp_operator::emulator::{Fault, PeerChange, Secret, Status};
use common::emulator::*;
use serde_json::Value;

#[tokio::test]
async fn seed_errors_produced_by_fault_injection() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let create = [
        ("RegionId", DEMO_REGION),
        ("BgpGroupId", DEMO_GROUP_V4),
        ("PeerIpAddress", "10.0.0.2"),
    ];
    for (status, code, message) in SEED_ERRORS {
        emu.inject_fault(Fault::error("CreateBgpPeer", *code).times(1));
        for v3 in [false, true] {
            if v3 {
                emu.inject_fault(Fault::error("CreateBgpPeer", *code).times(1));
            }
            let r = if v3 {
                api.v3(&c, "CreateBgpPeer", &create).await
            } else {
                api.v1(&c, "CreateBgpPeer", &create).await
            };
            r.assert_error(*status, code);
            assert_eq!(r.json["Message"], *message);
        }
    }
    assert!(emu.faults().is_empty(), "count-limited faults are used up");
    assert!(emu.peers().is_empty(), "a faulted call has no effect");
    // The next call goes through.
    create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    assert_eq!(
        emu.counters().count("CreateBgpPeer", "QuotaExceeded.Nqa"),
        2
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_per_access_key() {
    let mut config = instant_config();
    config.qps_per_key = Some(2);
    config.add_access_key("LTAIsecond", Secret::new("second-secret"));
    let (emu, api) = emulator(config).await;
    let list = [("RegionId", DEMO_REGION)];
    let started = std::time::Instant::now();
    let mut codes = Vec::new();
    for _ in 0..8 {
        let r = api.v1(&Creds::demo(), "DescribeBgpPeers", &list).await;
        codes.push(if r.status == 200 {
            "OK".to_owned()
        } else {
            r.code().to_owned()
        });
        if r.status != 200 {
            r.assert_error(400, "Throttling.User");
            assert_eq!(
                r.json["Message"],
                "Request was denied due to user flow control."
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = codes.iter().filter(|c| *c == "OK").count();
    // A burst of 2, then 2 per second.
    assert!(ok >= 2, "{codes:?}");
    assert!(
        ok as f64 <= 2.0 + 2.0 * elapsed + 1.0,
        "{codes:?} in {elapsed}s"
    );
    assert!(codes.iter().any(|c| c == "Throttling.User"), "{codes:?}");
    // Another key has its own budget.
    api.v1(
        &Creds::new("LTAIsecond", "second-secret"),
        "DescribeBgpPeers",
        &list,
    )
    .await
    .assert_ok();
    assert!(emu.counters().by_access_key[DEMO_ACCESS_KEY_ID].by_code["Throttling.User"] >= 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_call() {
    let mut config = instant_config();
    config.latency = "150ms".parse().unwrap();
    let (emu, api) = emulator(config).await;
    let started = std::time::Instant::now();
    api.v1(
        &Creds::demo(),
        "DescribeBgpPeers",
        &[("RegionId", DEMO_REGION)],
    )
    .await
    .assert_ok();
    assert!(started.elapsed() >= Duration::from_millis(150));
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_api_faults_counters_state_and_out_of_band_changes() {
    let (emu, api) = emulator(instant_config()).await;
    let c = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];
    use reqwest::Method;

    // A raw 503 for the next call of any action, then normal service.
    let r = api
        .admin(
            Method::POST,
            "faults",
            Some(serde_json::json!({"action": "*", "status": 503, "count": 1})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.v1(&c, "DescribeBgpPeers", &list).await;
    assert_eq!(r.status, 503);
    api.v1(&c, "DescribeBgpPeers", &list).await.assert_ok();
    // An error code with an overridden status and message, with a delay.
    api.admin(
        Method::POST,
        "faults",
        Some(serde_json::json!({"action": "CreateBgpPeer", "code": "ServiceUnavailable", "count": 1, "delay_ms": 120})),
    )
    .await;
    let started = std::time::Instant::now();
    let r = api
        .v1(
            &c,
            "CreateBgpPeer",
            &[("RegionId", DEMO_REGION), ("BgpGroupId", DEMO_GROUP_V4)],
        )
        .await;
    r.assert_error(503, "ServiceUnavailable");
    assert!(started.elapsed() >= Duration::from_millis(120));
    // Probability 1 until cleared; invalid rules are refused.
    api.admin(
        Method::POST,
        "faults",
        Some(serde_json::json!({"code": "Throttling", "probability": 1.0})),
    )
    .await;
    api.v1(&c, "DescribeBgpPeers", &list)
        .await
        .assert_error(400, "Throttling");
    let r = api.admin(Method::GET, "faults", None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1));
    assert_eq!(api.admin(Method::DELETE, "faults", None).await.status, 200);
    api.v1(&c, "DescribeBgpPeers", &list).await.assert_ok();
    let r = api
        .admin(
            Method::POST,
            "faults",
            Some(serde_json::json!({"probability": 2.0, "status": 500})),
        )
        .await;
    assert_eq!(r.status, 400);

    // Counters per action and code, per key.
    let r = api.admin(Method::GET, "counters", None).await;
    assert_eq!(r.json["by_action_code"]["DescribeBgpPeers"]["OK"], 2);
    assert_eq!(r.json["by_action_code"]["DescribeBgpPeers"]["HTTP503"], 1);
    assert_eq!(
        r.json["by_access_key"][DEMO_ACCESS_KEY_ID]["by_code"]["Throttling"],
        1
    );

    // Out-of-band changes through the admin API.
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", None).await;
    let r = api
        .admin(
            Method::POST,
            &format!("peers/{id}/status"),
            Some(serde_json::json!({"Status": "Modifying", "BgpStatus": "Down"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    assert_eq!(body["BgpPeers"]["BgpPeer"][0]["Status"], "Modifying");
    assert_eq!(body["BgpPeers"]["BgpPeer"][0]["BgpStatus"], "Down");
    let r = api
        .admin(
            Method::POST,
            &format!("peers/{id}"),
            Some(serde_json::json!({"peer_ip_address": "10.9.9.9", "Status": "Available"})),
        )
        .await;
    assert_eq!(r.json["PeerIpAddress"], "10.9.9.9");
    let r = api.admin(Method::GET, "state", None).await;
    assert_eq!(
        r.json["Regions"],
        serde_json::json!(["cn-shanghai", "cn-hangzhou"])
    );
    assert_eq!(r.json["Vbrs"][0]["RouterId"], DEMO_VBR);
    assert_eq!(r.json["BgpGroups"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.json["BgpPeers"][0]["BgpPeerId"], id.as_str());
    assert_eq!(r.json["BgpPeers"][0]["Status"], "Available");
    assert!(!r.text.contains(DEMO_ACCESS_KEY_SECRET));
    let r = api
        .admin(Method::DELETE, &format!("peers/{id}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        describe_peers(&api, &[("BgpPeerId", &id)]).await["TotalCount"],
        0
    );
    assert_eq!(
        api.admin(Method::DELETE, &format!("peers/{id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        api.admin(Method::POST, "peers/bgp-nope", Some(serde_json::json!({})))
            .await
            .status,
        404
    );

    // Clock and reset.
    let r = api
        .admin(
            Method::POST,
            "clock/advance",
            Some(serde_json::json!({"by": "1s"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    create_peer(&api, DEMO_GROUP_V4, "10.0.0.3", None).await;
    assert_eq!(api.admin(Method::POST, "reset", None).await.status, 200);
    assert!(emu.peers().is_empty());
    assert_eq!(emu.counters().total, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn in_process_out_of_band_changes() {
    let (emu, api) = emulator(instant_config()).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("t-1")).await;
    let changed = emu
        .modify_peer_out_of_band(
            &id,
            PeerChange {
                bgp_group_id: Some(DEMO_GROUP_V6.to_owned()),
                enable_bfd: Some(true),
                bgp_status: Some("Active".to_owned()),
                ..PeerChange::default()
            },
        )
        .unwrap();
    assert_eq!(changed.bgp_group_id, DEMO_GROUP_V6);
    let body = describe_peers(&api, &[("BgpPeerId", &id)]).await;
    let item = &body["BgpPeers"]["BgpPeer"][0];
    assert_eq!(
        (
            item["BgpGroupId"].as_str(),
            item["EnableBfd"].as_bool(),
            item["BgpStatus"].as_str(),
            item["PeerAsn"].as_str()
        ),
        (
            Some(DEMO_GROUP_V6),
            Some(true),
            Some("Active"),
            Some("65002")
        )
    );
    assert!(
        emu.modify_peer_out_of_band("bgp-nope", PeerChange::default())
            .is_err()
    );
    assert!(emu.set_peer_status(&id, Status::Pending));
    assert_eq!(emu.peer(&id).unwrap().status, Status::Pending);
    assert!(emu.delete_peer_out_of_band(&id));
    assert!(!emu.delete_peer_out_of_band(&id));
    assert_eq!(describe_peers(&api, &[]).await["TotalCount"], 0);
    // The token still answers the original create (the real API behaves the same).
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("t-1")).await,
        id
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator-state.json");
    let mut config = instant_config();
    config.state_file = Some(path.clone());
    let (emu, api) = emulator(config.clone()).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("persist-1")).await;
    let gone = create_peer(&api, DEMO_GROUP_V4, "10.0.0.3", None).await;
    assert!(emu.delete_peer_out_of_band(&gone));
    emu.shutdown().await;
    assert!(path.exists());

    let (emu, api) = emulator(config).await;
    let peers = emu.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].bgp_peer_id, id);
    assert_eq!(peers[0].client_token.as_deref(), Some("persist-1"));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[]).await),
        std::slice::from_ref(&id)
    );
    // The ClientToken survived too.
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.0.2", Some("persist-1")).await,
        id
    );
    assert_eq!(emu.peers().len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn binary_with_seed_file_flags_and_print_endpoint() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        r#"
regions: [eu-central-1]
accounts:
  - uid: "4242"
    access_keys: [{ id: LTAIseed, secret: seed-secret }]
vbrs:
  - { id: vbr-seed000000000000001, region: eu-central-1, ipv6: false, peer_quota: 3, peering_subnets: [172.16.0.0/24] }
groups:
  - { id: bgpg-seed00000000000001, vbr: vbr-seed000000000000001, peer_asn: 65100, name: seeded }
peers:
  - { id: bgp-seed000000000000001, group: bgpg-seed00000000000001, peer_ip_address: 172.16.0.2 }
pending_delay: 5s
"#,
    )
    .unwrap();
    let state_file = dir.path().join("state.json");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_alicloud-bgp-operator"))
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                "--print-endpoint",
                "--config",
            ])
            .arg(&seed)
            .args([
                "--access-key",
                "LTAIflag:flag-secret",
                "--pending-delay",
                "0s",
                "--latency",
                "0ms..1ms",
                "--qps-per-key",
                "100",
                "--state-file",
            ])
            .arg(&state_file)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).read_line(&mut first),
    )
    .await
    .expect("endpoint printed in time")
    .unwrap();
    let endpoint = first.trim_end().to_owned();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"),
        "{first:?}"
    );
    let api = Api::at(&endpoint);

    // The seed file's world; the key from --access-key joined the seed account.
    let flag = Creds::new("LTAIflag", "flag-secret");
    let r = api
        .v1(&flag, "DescribeBgpPeers", &[("RegionId", "eu-central-1")])
        .await;
    assert_eq!(peer_ids(r.assert_ok()), ["bgp-seed000000000000001"]);
    // --pending-delay 0s overrides the file's 5s: a new peer is Available at once.
    let r = api
        .v3(
            &Creds::new("LTAIseed", "seed-secret"),
            "CreateBgpPeer",
            &[
                ("RegionId", "eu-central-1"),
                ("BgpGroupId", "bgpg-seed00000000000001"),
                ("PeerIpAddress", "172.16.0.3"),
            ],
        )
        .await;
    let id = r.assert_ok()["BgpPeerId"].as_str().unwrap().to_owned();
    let state = api.admin(reqwest::Method::GET, "state", None).await;
    assert_eq!(state.json["BgpGroups"][0]["Name"], "seeded");
    assert_eq!(state.json["BgpPeers"][1]["BgpPeerId"], id.as_str());
    assert_eq!(state.json["BgpPeers"][1]["Status"], "Available");
    // The demo key is not configured with a seed file.
    api.v1(
        &Creds::demo(),
        "DescribeBgpPeers",
        &[("RegionId", "eu-central-1")],
    )
    .await
    .assert_error(404, "InvalidAccessKeyId.NotFound");
    // The state file was written on the change.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(saved["BgpPeers"].as_array().map(Vec::len), Some(2));

    child.0.start_kill().unwrap();
    let _ = child.0.wait().await;
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(log.contains("emulator api call"), "{log}");
    for secret in ["flag-secret", "seed-secret"] {
        assert!(!log.contains(secret), "secret in the log: {log}");
    }
}

#[tokio::test]
async fn visibility_lag_hides_new_peers_but_not_their_token_replay() {
    let mut config = instant_config();
    config.visibility_lag = Duration::from_secs(2);
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.6.2", Some("lag-1")).await;
    assert!(peer_ids(&describe_peers(&api, &[("BgpPeerId", &id)]).await).is_empty());
    assert!(peer_ids(&describe_peers(&api, &[("BgpGroupId", DEMO_GROUP_V4)]).await).is_empty());
    // The replay of the create answers the hidden peer's ID (no second peer).
    assert_eq!(
        create_peer(&api, DEMO_GROUP_V4, "10.0.6.2", Some("lag-1")).await,
        id
    );
    assert_eq!(emu.peers().len(), 1);
    emu.advance_clock(Duration::from_secs(2));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpPeerId", &id)]).await),
        std::slice::from_ref(&id)
    );
    // Through the admin API: 5 s for new peers.
    let r = api
        .admin(
            reqwest::Method::POST,
            "config",
            Some(serde_json::json!({"visibility_lag": "5s"})),
        )
        .await;
    assert_eq!(r.assert_ok()["visibility_lag"], 5000);
    let late = create_peer(&api, DEMO_GROUP_V4, "10.0.6.3", None).await;
    emu.advance_clock(Duration::from_secs(4));
    assert!(peer_ids(&describe_peers(&api, &[("BgpPeerId", &late)]).await).is_empty());
    emu.advance_clock(Duration::from_secs(1));
    assert_eq!(
        peer_ids(&describe_peers(&api, &[("BgpPeerId", &late)]).await),
        [late]
    );
    let _ = c;
    emu.shutdown().await;
}

#[tokio::test]
async fn session_state_is_settable_through_the_admin_api() {
    let mut config = instant_config();
    config.session_connect_delay = Duration::ZERO;
    config.session_establish_delay = Duration::ZERO;
    let (emu, api) = emulator(config).await;
    let id = create_peer(&api, DEMO_GROUP_V4, "10.0.8.2", None).await;
    let session = |body: Value| body["BgpPeers"]["BgpPeer"][0]["BgpStatus"].clone();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Established"
    );
    let set = |v: &'static str| serde_json::json!({ "BgpStatus": v });
    api.admin(
        reqwest::Method::POST,
        &format!("peers/{id}"),
        Some(set("Down")),
    )
    .await
    .assert_ok();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Down"
    );
    // "" hands the session back to the lifecycle.
    api.admin(reqwest::Method::POST, &format!("peers/{id}"), Some(set("")))
        .await
        .assert_ok();
    assert_eq!(
        session(describe_peers(&api, &[("BgpPeerId", &id)]).await),
        "Established"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_carries_the_configured_retry_after() {
    let mut config = instant_config();
    config.qps_per_key = Some(1);
    config.throttle_retry_after = Some(Duration::from_millis(1500));
    let (emu, api) = emulator(config).await;
    let c = Creds::demo();
    let list = [("RegionId", DEMO_REGION)];
    let request = |nonce: String| {
        api.http.post(format!(
            "{}/?{}",
            api.endpoint,
            api.v1_signed_query(
                &c,
                V1Style::PostQuery,
                "DescribeBgpPeers",
                &list,
                Tweaks {
                    format: Some("JSON"),
                    nonce: Some(nonce),
                    ..tweaks()
                },
            )
        ))
    };
    let first = request("n-1".to_owned()).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("x-acs-retry-after").is_none());
    let second = request("n-2".to_owned()).send().await.unwrap();
    assert_eq!(second.status(), 400);
    assert_eq!(second.headers()["x-acs-retry-after"], "1500");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["Code"], "Throttling.User");
    assert_eq!(
        body["Message"],
        "Request was denied due to user flow control."
    );
    emu.shutdown().await;
}
