//! The controller as a separate process (`alicloud-bgp-operator run`): start, `kill -9`,
//! graceful stop, and what `/proc` and `/metrics` say about it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use alicloud_bgp_operator::emulator::config::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};
use alicloud_bgp_operator::ops::process;

/// How to run the controller.
#[derive(Clone, Debug)]
pub struct ControllerOpts {
    /// The `alicloud-bgp-operator` binary.
    pub bin: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// VPC endpoint (the emulator).
    pub endpoint: String,
    /// Watched namespace.
    pub namespace: String,
    /// `--cloud-qps`.
    pub cloud_qps: f64,
    /// `--cloud-burst`.
    pub cloud_burst: u32,
    /// `--resync-period` in seconds.
    pub resync_secs: u64,
    /// `--poll-interval` in seconds.
    pub poll_secs: u64,
    /// `--concurrency`.
    pub concurrency: u16,
    /// Log file (appended to across restarts).
    pub log: PathBuf,
    /// `ABO_LOG` filter.
    pub log_level: String,
    /// More `run` flags (e.g. `--cloud-quota-model shared`).
    pub extra_args: Vec<String>,
}

/// A running controller process (killed on drop).
pub struct ControllerProcess {
    child: Child,
    /// Where `/metrics` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    started: Instant,
    sampled: Arc<Sampled>,
}

/// The largest `RssAnon` and `RssFile` seen by a sampler thread (every 100 ms): `VmHWM` is
/// their sum at one moment, and only this split says how much of it is heap (anonymous) and
/// how much the binary's own pages (file-backed, shared with the page cache and reclaimable).
/// Once a second it also appends `seconds,anon_kib,file_kib,threads,heap_kib,held_kib` to a
/// timeline, which says in which phase the peak falls; the last two are the allocator's live
/// heap and resident bytes from `/metrics` (0 when the binary does not export them).
#[derive(Debug, Default)]
struct Sampled {
    stop: AtomicBool,
    anon_kib: AtomicU64,
    file_kib: AtomicU64,
    timeline: std::sync::Mutex<String>,
}

impl Sampled {
    fn start(pid: u32, metrics: SocketAddr) -> Arc<Self> {
        let sampled = Arc::new(Self::default());
        let shared = sampled.clone();
        let started = Instant::now();
        std::thread::spawn(move || {
            let mut next_line = Duration::ZERO;
            while !shared.stop.load(Ordering::Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    break;
                };
                let anon = status_kib(&status, "RssAnon:");
                let file = status_kib(&status, "RssFile:");
                shared.anon_kib.fetch_max(anon, Ordering::Relaxed);
                shared.file_kib.fetch_max(file, Ordering::Relaxed);
                let at = started.elapsed();
                if at >= next_line {
                    let threads = process::status_value(&status, "Threads:").unwrap_or(0);
                    let exposition = scrape_blocking(metrics).unwrap_or_default();
                    let kib = |name: &str| {
                        exposition
                            .lines()
                            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .map_or(0, |bytes| (bytes / 1024.0) as u64)
                    };
                    let heap = kib("alicloud_bgp_operator_allocator_allocated_bytes");
                    let held = kib("alicloud_bgp_operator_allocator_resident_bytes");
                    if let Ok(mut timeline) = shared.timeline.lock() {
                        let _ = writeln!(
                            timeline,
                            "{:.0},{anon},{file},{threads},{heap},{held}",
                            at.as_secs_f64()
                        );
                    }
                    next_line += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        sampled
    }
}

/// `GET /metrics` over plain HTTP/1.0 from a std thread (the sampler has no runtime).
fn scrape_blocking(addr: SocketAddr) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// A `kB` field of `/proc/<pid>/status` in KiB, 0 when absent.
fn status_kib(status: &str, key: &str) -> u64 {
    process::status_value(status, key).map_or(0, |bytes| bytes / 1024)
}

/// A free loopback port (bound, then released; a small race that is fine on loopback).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ControllerProcess {
    /// Starts `alicloud-bgp-operator run` with a clean environment: only the kubeconfig and
    /// the emulator's demo key.
    pub fn spawn(opts: &ControllerOpts) -> anyhow::Result<Self> {
        let port = free_port()?;
        let metrics_addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&opts.log)
            .with_context(|| format!("opening {}", opts.log.display()))?;
        // A profiler wrapper for investigations, e.g. ABO_BENCH_WRAP="heaptrack -o /tmp/ht".
        let wrap: Vec<String> = std::env::var("ABO_BENCH_WRAP")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&opts.bin);
                c
            }
            None => Command::new(&opts.bin),
        };
        let child = command
            .arg("run")
            .arg("--endpoint")
            .arg(&opts.endpoint)
            .arg("--sts-endpoint")
            .arg(&opts.endpoint)
            .arg("--namespace")
            .arg(&opts.namespace)
            .arg("--cloud-qps")
            .arg(opts.cloud_qps.to_string())
            .arg("--cloud-burst")
            .arg(opts.cloud_burst.to_string())
            .arg("--resync-period")
            .arg(format!("{}s", opts.resync_secs))
            .arg("--poll-interval")
            .arg(format!("{}s", opts.poll_secs))
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .arg("--shutdown-timeout")
            .arg("10s")
            .args(&opts.extra_args)
            .env_clear()
            .env("KUBECONFIG", &opts.kubeconfig)
            .env("HOME", "/nonexistent")
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)
            .env("ABO_LOG", &opts.log_level)
            // Allocator tuning under test reaches the controller: MALLOC_* for glibc (a
            // `--no-default-features` build), _RJEM_MALLOC_CONF for the jemalloc one.
            .envs(
                std::env::vars()
                    .filter(|(k, _)| k.starts_with("MALLOC_") || k == "_RJEM_MALLOC_CONF"),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", opts.bin.display()))?;
        let sampled = Sampled::start(child.id(), metrics_addr);
        Ok(Self {
            child,
            metrics_addr,
            started: Instant::now(),
            sampled,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long ago it was started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`: no cleanup, in-flight calls are cut.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` (SIGKILL after that). Returns true on a clean exit.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        false
    }

    /// Resource usage from `/proc/<pid>`.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let mut usage = usage_of(self.pid())?;
        usage.peak_anon_kib = self.sampled.anon_kib.load(Ordering::Relaxed);
        usage.peak_file_kib = self.sampled.file_kib.load(Ordering::Relaxed);
        Ok(usage)
    }

    /// The sampler's timeline so far: one `seconds,anon_kib,file_kib,threads,heap_kib,held_kib`
    /// line a second since the start (no header).
    pub fn rss_timeline(&self) -> String {
        self.sampled
            .timeline
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200 (the cache is synced).
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = http_client()?;
        let url = format!("http://{}/readyz", self.metrics_addr);
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                bail!("the controller exited during start-up (see its log)");
            }
            if let Ok(resp) = http.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("controller not ready after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `alicloud_bgp_operator_time_to_ready_seconds_count{kind="BgpPeer",trigger}`: how many
    /// generations the operator itself saw reach Ready (the bench checks it against its own
    /// count of objects).
    pub async fn time_to_ready_count(&self, trigger: &str) -> anyhow::Result<u64> {
        let text = http_client()?
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await?
            .text()
            .await?;
        Ok(parse_time_to_ready_count(&text, trigger))
    }

    /// `alicloud_bgp_operator_cloud_api_calls_total` by (action, code).
    pub async fn cloud_calls(&self) -> anyhow::Result<BTreeMap<(String, String), u64>> {
        let text = http_client()?
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await?
            .text()
            .await?;
        Ok(parse_cloud_calls(&text))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.sampled.stop.store(true, Ordering::Relaxed);
        if self.is_running() {
            self.kill9();
        }
    }
}

/// The `_count` of the time-to-ready histogram for `trigger`, 0 when absent.
fn parse_time_to_ready_count(text: &str, trigger: &str) -> u64 {
    let label = format!("trigger=\"{trigger}\"");
    text.lines()
        .filter(|l| l.starts_with("alicloud_bgp_operator_time_to_ready_seconds_count{"))
        .filter(|l| l.contains(&label) && l.contains("kind=\"BgpPeer\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[cfg(test)]
mod metrics_tests {
    #[test]
    fn time_to_ready_count_is_read_by_trigger() {
        let text = "# TYPE x histogram\nalicloud_bgp_operator_time_to_ready_seconds_count{kind=\"BgpPeer\",trigger=\"create\"} 1000\nalicloud_bgp_operator_time_to_ready_seconds_count{kind=\"BgpPeer\",trigger=\"update\"} 3\n";
        assert_eq!(super::parse_time_to_ready_count(text, "create"), 1000);
        assert_eq!(super::parse_time_to_ready_count(text, "update"), 3);
        assert_eq!(super::parse_time_to_ready_count("", "create"), 0);
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    alicloud_bgp_operator::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

/// Peak RSS, current RSS and CPU time of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// `VmHWM`: peak resident set size, KiB.
    pub peak_rss_kib: u64,
    /// `VmRSS`: current resident set size, KiB.
    pub rss_kib: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// Largest sampled `RssAnon` (heap, stacks), KiB; 0 from [`usage_of`].
    pub peak_anon_kib: u64,
    /// Largest sampled `RssFile` (the binary's pages), KiB; 0 from [`usage_of`].
    pub peak_file_kib: u64,
}

/// Reads `/proc/<pid>/status` (VmHWM, VmRSS) and `/proc/<pid>/stat` (utime, stime).
pub fn usage_of(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| status_kib(&status, key);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let Some((cpu_secs, _)) = process::stat_times(&stat) else {
        bail!("cannot parse /proc/{pid}/stat");
    };
    Ok(Usage {
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
        cpu_secs,
        peak_anon_kib: 0,
        peak_file_kib: 0,
    })
}

/// Parses `alicloud_bgp_operator_cloud_api_calls_total{action="A",code="C"} N` lines.
pub fn parse_cloud_calls(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("alicloud_bgp_operator_cloud_api_calls_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        let (Some(action), Some(code)) = (label("action"), label("code")) else {
            continue;
        };
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *out.entry((action, code)).or_default() += n;
    }
    out
}
